//! `splai up` as a child process: for tests and benchmarks that need whole processes (SIGKILL and
//! restart, thread layouts fixed at process start, peak memory of one process).

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use splai_client::Client;

/// A running `splai up`, killed when dropped.
#[derive(Debug)]
pub struct UpProcess {
    child: Child,
    /// The gateway's base URL, as the process printed it.
    pub url: String,
}

impl UpProcess {
    /// Start `exe [--config CONFIG] [--set S]… up ARGS…` with none of this process's `SPLAI_`
    /// variables (they would be settings to it), and read the API address it prints (so
    /// `gateway.listen` may use port 0). Blocks until that line is printed.
    pub fn spawn(
        exe: &Path,
        config: Option<&Path>,
        sets: &[String],
        args: &[String],
        stderr: Stdio,
    ) -> anyhow::Result<UpProcess> {
        let mut cmd = Command::new(exe);
        splai_config::without_settings_env(&mut cmd);
        if let Some(config) = config {
            cmd.arg("--config").arg(config);
        }
        for s in sets {
            cmd.args(["--set", s]);
        }
        cmd.arg("up").args(args).stdout(Stdio::piped()).stderr(stderr);
        let mut child = cmd.spawn().with_context(|| format!("starting {} up", exe.display()))?;
        let stdout = child.stdout.take().context("the child's stdout")?;
        let mut lines = BufReader::new(stdout).lines();
        let url = lines.by_ref().map_while(Result::ok).find_map(|line| {
            let rest = line.trim().strip_prefix("API")?;
            rest.split_whitespace().next().map(|u| u.trim_end_matches("/v1/jobs").to_string())
        });
        // Keep draining stdout so the process never blocks on a full pipe.
        std::thread::spawn(move || for _ in lines {});
        let mut up = UpProcess { child, url: String::new() };
        match url {
            Some(url) => up.url = url,
            None => bail!("splai up exited before printing its API address ({:?})", up.child.wait()?),
        }
        Ok(up)
    }

    /// A client of this process's gateway.
    pub fn client(&self, token: Option<&str>) -> anyhow::Result<Client> {
        Ok(Client::new(&self.url, token.map(str::to_string))?)
    }

    /// Wait until the gateway is ready and at least `executors` executors are live; fail at once
    /// if the process exits first.
    pub async fn wait_ready(
        &mut self,
        token: Option<&str>,
        executors: usize,
        within: Duration,
    ) -> anyhow::Result<()> {
        let client = self.client(token)?;
        let deadline = Instant::now() + within;
        while !client.is_ready(executors).await {
            if let Some(status) = self.child.try_wait()? {
                bail!("splai up exited ({status}) before it was ready");
            }
            if Instant::now() > deadline {
                bail!(
                    "splai up at {} was not ready with {executors} live executor(s) within {within:?}",
                    self.url
                );
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        Ok(())
    }

    /// The process id (for signals and `/proc`).
    pub fn id(&self) -> u32 {
        self.child.id()
    }

    /// Whether the process is still running.
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// SIGKILL: no chance to hand anything back.
    pub fn kill(mut self) {
        self.child.kill().ok();
        self.child.wait().ok();
    }

    /// SIGTERM, then wait up to 30 s for it to exit on its own.
    pub fn stop(mut self) -> anyhow::Result<ExitStatus> {
        Command::new("kill").args(["-TERM", &self.child.id().to_string()]).status()?;
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(status) = self.child.try_wait()? {
                return Ok(status);
            }
            if Instant::now() > deadline {
                bail!("splai up did not stop within 30 s of SIGTERM");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for UpProcess {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            self.child.kill().ok();
            self.child.wait().ok();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_process_that_exits_before_printing_its_address_is_an_error() {
        let error = UpProcess::spawn(Path::new("/bin/true"), None, &[], &[], Stdio::null()).unwrap_err();
        assert!(error.to_string().starts_with("splai up exited before printing its API address"), "{error}");
    }

    #[test]
    fn a_missing_binary_is_named() {
        let error = UpProcess::spawn(Path::new("/no/such/splai"), None, &[], &[], Stdio::null()).unwrap_err();
        assert_eq!(error.to_string(), "starting /no/such/splai up");
    }
}
