//! `splai up` as a child process on a data directory of its own, for benchmarks that need whole
//! processes (thread layouts fixed at process start, SIGKILL and restart).

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

use crate::client::Client;

#[derive(Debug)]
pub struct UpProcess {
    child: Child,
    pub client: Client,
}

impl UpProcess {
    /// Start `splai up --executors N` on `data` (created if missing), listening on a free port.
    pub async fn start(data: &Path, executors: u32, sets: &[String]) -> anyhow::Result<UpProcess> {
        std::fs::create_dir_all(data)?;
        let port = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        let d = data.display();
        let mut all: Vec<String> = vec![
            format!("log.embedded.path={d}/log.sqlite"),
            format!("store.url=sqlite://{d}/splai.sqlite"),
            format!("artifacts.url=file://{d}/artifacts"),
            format!("gateway.listen=127.0.0.1:{port}"),
            "gateway.auth=false".into(),
        ];
        all.extend(sets.iter().cloned());
        let mut cmd = Command::new(std::env::current_exe()?);
        for s in &all {
            cmd.args(["--set", s]);
        }
        splai_config::without_settings_env(&mut cmd);
        cmd.args(["up", "--executors", &executors.to_string()]).stdout(Stdio::null()).stderr(Stdio::null());
        let child = cmd.spawn().context("starting splai up")?;
        let url = format!("http://127.0.0.1:{port}");
        let up = UpProcess { child, client: crate::client::local(&url)? };
        up.wait_ready(executors).await?;
        Ok(up)
    }

    async fn wait_ready(&self, executors: u32) -> anyhow::Result<()> {
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            let ready = self.client.get("/readyz").await.is_ok_and(|r| r["ready"] == true);
            let live = self.client.get("/v1/workers").await.map_or(0, |w| {
                w["workers"].as_array().map_or(0, |ws| ws.iter().filter(|x| x["live"] == true).count())
            });
            if ready && live >= executors as usize {
                return Ok(());
            }
            if Instant::now() > deadline {
                bail!("splai up did not become ready with {executors} live executors in 120 s");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// SIGKILL: no chance to hand anything back.
    pub fn kill(mut self) {
        self.child.kill().ok();
        self.child.wait().ok();
    }

    /// SIGTERM and wait.
    pub fn stop(mut self) {
        Command::new("kill").args(["-TERM", &self.child.id().to_string()]).status().ok();
        self.child.wait().ok();
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

/// Whole-machine CPU time (total, idle) from /proc/stat, in ticks.
pub fn cpu_times() -> (u64, u64) {
    let stat = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    let fields: Vec<u64> =
        stat.lines().next().unwrap_or("").split_whitespace().skip(1).filter_map(|x| x.parse().ok()).collect();
    let idle = fields.get(3).copied().unwrap_or(0) + fields.get(4).copied().unwrap_or(0);
    (fields.iter().sum(), idle)
}

/// A fresh scratch directory under the system temp dir.
pub fn scratch(name: &str) -> anyhow::Result<tempfile::TempDir> {
    Ok(tempfile::Builder::new().prefix(&format!("splai-{name}-")).tempdir()?)
}
