//! The `shell` tool: runs an operator-enabled command under limits, in a sandbox of its own:
//! - its own network namespace with no interfaces up (no network at all);
//! - its own mount and PID namespaces with a private root: read-only `/usr`, `/bin`, `/sbin`,
//!   `/lib*` and `/etc` (minus `/etc/splai` and any [`ShellLimits::hidden`] path, overmounted
//!   empty), its working directory at `/work` (writable, also `HOME`), a private `/tmp`, a
//!   minimal `/dev` and a `/proc` of its own processes only. Nothing else of the host is there:
//!   not the data directory, the read model, the embedded log, other attempts' or tenants'
//!   artifacts, nor the configuration;
//! - an empty environment (PATH, HOME, LANG), an address-space and CPU-time rlimit, a
//!   wall-clock limit and a cap on captured output.
//!
//! Every breach fails the attempt, non-retryably, naming the limit. Isolation is mandatory: where
//! the host cannot build the sandbox the tool refuses to run rather than run unisolated.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::AttemptError;

/// Limits an operator sets for the `shell` tool (config `executor.shell`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShellLimits {
    /// Wall-clock limit; a task may ask for less (`timeout_ms` input), never more.
    pub timeout: Duration,
    /// Address-space limit of the command, bytes.
    pub memory_bytes: u64,
    /// Cap on stdout + stderr captured, bytes.
    pub max_output_bytes: usize,
    /// Host paths hidden even where they lie under a path the sandbox shows (the data
    /// directory, the configuration file).
    pub hidden: Vec<PathBuf>,
}

impl Default for ShellLimits {
    fn default() -> Self {
        Self {
            timeout: Duration::from_secs(30),
            memory_bytes: 512 << 20,
            max_output_bytes: 1 << 20,
            hidden: Vec::new(),
        }
    }
}

fn fail(message: impl std::fmt::Display) -> AttemptError {
    AttemptError::fatal(format!("tool `shell`: {message}"))
}

/// Builds the private root in the new namespaces, then runs the command in it: `$1` the root's
/// mount point, `$2` the working directory, `$3` 1 to drop to uid/gid 65534 (the executor is root:
/// outside a user namespace the command would be root too), `$SPLAI_HIDE` the paths to hide
/// (newline separated), the rest the command. A failed step stops it (`set -e`): no command runs
/// half-isolated.
const SANDBOX: &str = r#"set -eu
root=$1; work=$2; drop=$3; shift 3
mount -t tmpfs -o size=16m,mode=755 splai-root "$root"
for d in usr bin sbin lib lib32 lib64 libx32; do
  if [ -L "/$d" ]; then ln -s "$(readlink "/$d")" "$root/$d"
  elif [ -d "/$d" ]; then mkdir "$root/$d"; mount --rbind "/$d" "$root/$d"; mount -o remount,bind,ro "$root/$d"
  fi
done
# Of /etc only what programs need to run: no shadow files, keys, credentials or service configs.
mkdir "$root/etc"
for e in passwd group hosts host.conf nsswitch.conf resolv.conf gai.conf localtime timezone \
         os-release debian_version ld.so.cache ld.so.conf ld.so.conf.d alternatives ssl \
         ca-certificates mime.types protocols services inputrc profile bash.bashrc magic \
         python3 python3.11 perl; do
  if [ -L "/etc/$e" ]; then ln -s "$(readlink "/etc/$e")" "$root/etc/$e"
  elif [ -d "/etc/$e" ]; then mkdir "$root/etc/$e"; mount --rbind "/etc/$e" "$root/etc/$e"; mount -o remount,bind,ro "$root/etc/$e"
  elif [ -f "/etc/$e" ]; then touch "$root/etc/$e"; mount --bind "/etc/$e" "$root/etc/$e"; mount -o remount,bind,ro "$root/etc/$e"
  fi
done
mkdir "$root/work" "$root/tmp" "$root/dev" "$root/proc"
# A root executor's command runs as nobody: it owns only its working directory.
if [ "$drop" = 1 ]; then chown 65534:65534 "$work"; fi
mount --bind "$work" "$root/work"
mount -t tmpfs -o size=64m,mode=1777 splai-tmp "$root/tmp"
for f in null zero full random urandom; do touch "$root/dev/$f"; mount --bind "/dev/$f" "$root/dev/$f"; done
mount -t proc proc "$root/proc"
printf '%s\n' "/etc/splai" "$SPLAI_HIDE" | while IFS= read -r h; do
  [ -n "$h" ] || continue
  if [ -d "$root$h" ]; then mount -t tmpfs -o size=4k,mode=000 splai-hidden "$root$h"
  elif [ -e "$root$h" ]; then mount --bind /dev/null "$root$h"
  fi
done
unset SPLAI_HIDE
if [ "$drop" = 1 ]; then
  exec chroot "$root" /usr/bin/setpriv --reuid=65534 --regid=65534 --clear-groups --inh-caps=-all \
    /bin/sh -c 'cd /work && exec "$@"' sh "$@"
fi
exec chroot "$root" /bin/sh -c 'cd /work && exec "$@"' sh "$@"
"#;

/// `1` when the command must drop root: the prefix makes no user namespace and we are root.
fn drop_flag(prefix: &[&str]) -> &'static str {
    if !prefix.contains(&"--user") && nix::unistd::geteuid().is_root() { "1" } else { "0" }
}

/// The `unshare` prefix that gives the command its own network, mount and PID namespaces,
/// probed once (with the whole sandbox): as is when we may (root), else in a user namespace that
/// maps us to root first.
fn isolation() -> Result<&'static [&'static str], AttemptError> {
    static PROBE: OnceLock<Option<&'static [&'static str]>> = OnceLock::new();
    const ROOT: &[&str] = &["unshare", "--net", "--mount", "--pid", "--fork", "--"];
    const USER: &[&str] =
        &["unshare", "--user", "--map-root-user", "--net", "--mount", "--pid", "--fork", "--"];
    let found = PROBE.get_or_init(|| {
        [ROOT, USER].into_iter().find(|prefix| {
            let (Ok(root), Ok(work)) = (tempfile::tempdir(), tempfile::tempdir()) else { return false };
            Command::new(prefix[0])
                .args(&prefix[1..])
                .args(["/bin/sh", "-c", SANDBOX, "sandbox"])
                .arg(root.path())
                .arg(work.path())
                .arg(drop_flag(prefix))
                .arg("true")
                .env("SPLAI_HIDE", "")
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|s| s.success())
        })
    });
    found.ok_or_else(|| {
        fail("this host cannot build the sandbox (`unshare --net --mount --pid` with a private root failed); refusing to run without isolation")
    })
}

/// Run the command named by `command` (a string for `/bin/sh -c`) or `argv` (a list), with
/// optional `stdin` text and `timeout_ms`.
pub fn run(
    inputs: &BTreeMap<String, Value>,
    limits: &ShellLimits,
    cancel: &AtomicBool,
) -> Result<Value, AttemptError> {
    let argv: Vec<String> = match (inputs.get("command"), inputs.get("argv")) {
        (Some(Value::String(c)), None) => vec!["/bin/sh".into(), "-c".into(), c.clone()],
        (None, Some(Value::Array(a))) if !a.is_empty() => a
            .iter()
            .map(|v| v.as_str().map(str::to_string))
            .collect::<Option<_>>()
            .ok_or_else(|| fail("input `argv` must be a list of strings"))?,
        (Some(_), Some(_)) => return Err(fail("give either `command` or `argv`, not both")),
        _ => return Err(fail("input `command` (a string) or `argv` (a non-empty list) is required")),
    };
    let stdin = match inputs.get("stdin") {
        None => String::new(),
        Some(Value::String(s)) => s.clone(),
        Some(_) => return Err(fail("input `stdin` must be a string")),
    };
    let timeout = match inputs.get("timeout_ms") {
        None => limits.timeout,
        Some(v) => {
            let ms = v.as_u64().ok_or_else(|| fail("input `timeout_ms` must be a whole number"))?;
            Duration::from_millis(ms).min(limits.timeout)
        }
    };
    let workdir = tempfile::tempdir().map_err(|e| fail(format!("cannot create a working directory: {e}")))?;
    let root = tempfile::tempdir().map_err(|e| fail(format!("cannot create the sandbox's root: {e}")))?;
    let hidden: Vec<String> = limits.hidden.iter().map(|p| p.display().to_string()).collect();
    let cpu_s = timeout.as_secs().max(1) + 1;
    let mut cmd = Command::new(isolation()?[0]);
    cmd.args(&isolation()?[1..])
        .args(["/bin/sh", "-c", SANDBOX, "sandbox"])
        .arg(root.path())
        .arg(workdir.path())
        .arg(drop_flag(isolation()?))
        .arg("prlimit")
        .arg(format!("--as={}", limits.memory_bytes))
        .arg(format!("--cpu={cpu_s}"))
        .arg(format!("--fsize={}", 64u64 << 20))
        .arg("--")
        .args(&argv)
        .current_dir(workdir.path())
        .env_clear()
        .env("PATH", "/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin")
        .env("HOME", "/work")
        .env("SPLAI_HIDE", hidden.join("\n"))
        .env("LANG", "C.UTF-8")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    // Its own process group, so a limit kills everything the command started.
    std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
    let started = Instant::now();
    let mut child = cmd.spawn().map_err(|e| fail(format!("cannot start `{}`: {e}", argv[0])))?;
    let group = nix::unistd::Pid::from_raw(child.id() as i32);
    let kill_group = || {
        let _ = nix::sys::signal::killpg(group, nix::sys::signal::Signal::SIGKILL);
    };

    let overflow = Arc::new(AtomicBool::new(false));
    let captured = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let reader = |pipe: Option<Box<dyn Read + Send>>| {
        let (overflow, captured, cap) = (overflow.clone(), captured.clone(), limits.max_output_bytes);
        std::thread::spawn(move || {
            let mut out = Vec::new();
            let Some(mut pipe) = pipe else { return out };
            let mut buf = [0u8; 8192];
            while let Ok(n) = pipe.read(&mut buf) {
                if n == 0 {
                    break;
                }
                if captured.fetch_add(n, Ordering::SeqCst) + n > cap {
                    overflow.store(true, Ordering::SeqCst);
                    break;
                }
                out.extend_from_slice(&buf[..n]);
            }
            out
        })
    };
    let stdout = reader(child.stdout.take().map(|p| Box::new(p) as Box<dyn Read + Send>));
    let stderr = reader(child.stderr.take().map(|p| Box::new(p) as Box<dyn Read + Send>));
    if let Some(mut pipe) = child.stdin.take() {
        // A command that never reads its stdin must not block us: write from a thread.
        std::thread::spawn(move || {
            let _ = pipe.write_all(stdin.as_bytes());
        });
    }

    let breach = loop {
        match child.try_wait() {
            Ok(Some(_)) => break None,
            Ok(None) => {}
            Err(e) => break Some(fail(format!("waiting for the command failed: {e}"))),
        }
        if overflow.load(Ordering::SeqCst) {
            break Some(fail(format!("output exceeded the limit of {} bytes", limits.max_output_bytes)));
        }
        if started.elapsed() > timeout {
            break Some(fail(format!("command exceeded its time limit of {} ms", timeout.as_millis())));
        }
        if cancel.load(Ordering::SeqCst) {
            break Some(AttemptError::transient("tool `shell`: cancelled"));
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    // Whatever happened, nothing the command started outlives the attempt.
    kill_group();
    let status = child.wait().map_err(|e| fail(format!("waiting for the command failed: {e}")))?;
    let stdout = stdout.join().unwrap_or_default();
    let stderr = stderr.join().unwrap_or_default();
    if let Some(err) = breach {
        return Err(err);
    }
    if overflow.load(Ordering::SeqCst) {
        return Err(fail(format!("output exceeded the limit of {} bytes", limits.max_output_bytes)));
    }
    let stderr = String::from_utf8_lossy(&stderr).into_owned();
    let Some(code) = status.code() else {
        let signal = std::os::unix::process::ExitStatusExt::signal(&status).unwrap_or(0);
        return Err(fail(format!(
            "command was killed by signal {signal} (memory limit {} MiB, CPU limit {cpu_s} s){}",
            limits.memory_bytes >> 20,
            tail(&stderr)
        )));
    };
    if code != 0 && !inputs.get("allow_failure").and_then(Value::as_bool).unwrap_or(false) {
        return Err(fail(format!("command exited with status {code}{}", tail(&stderr))));
    }
    Ok(json!({
        "exit_code": code,
        "stdout": String::from_utf8_lossy(&stdout),
        "stderr": stderr,
        "duration_ms": started.elapsed().as_millis() as u64,
    }))
}

/// The end of stderr, for an error message.
fn tail(stderr: &str) -> String {
    let t = stderr.trim_end();
    if t.is_empty() {
        return String::new();
    }
    let start = t.char_indices().rev().nth(299).map_or(0, |(i, _)| i);
    format!(": {}", &t[start..])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn inputs(v: Value) -> BTreeMap<String, Value> {
        serde_json::from_value(v).unwrap()
    }

    fn limits() -> ShellLimits {
        ShellLimits {
            timeout: Duration::from_secs(20),
            memory_bytes: 256 << 20,
            max_output_bytes: 4096,
            hidden: Vec::new(),
        }
    }

    fn go(v: Value) -> Result<Value, AttemptError> {
        run(&inputs(v), &limits(), &AtomicBool::new(false))
    }

    #[test]
    fn runs_a_command_with_stdin_in_a_clean_environment() {
        let out = go(json!({"command": "tr a-z A-Z; echo \"home=$HOME secret=${SECRET:-unset}\" >&2",
                             "stdin": "hello"}))
        .unwrap();
        assert_eq!(out["stdout"], "HELLO");
        assert_eq!(out["exit_code"], 0);
        assert!(out["stderr"].as_str().unwrap().contains("secret=unset"));
        let out = go(json!({"argv": ["printf", "%s-%s", "a b", "c"]})).unwrap();
        assert_eq!(out["stdout"], "a b-c");
    }

    #[test]
    fn non_zero_exit_fails_unless_allowed() {
        let err = go(json!({"command": "echo boom >&2; exit 3"})).unwrap_err();
        assert!(!err.retryable);
        assert_eq!(err.message, "tool `shell`: command exited with status 3: boom");
        let out = go(json!({"command": "exit 3", "allow_failure": true})).unwrap();
        assert_eq!(out["exit_code"], 3);
    }

    #[test]
    fn time_limit_kills_the_whole_process_group() {
        let start = Instant::now();
        let err = go(json!({"command": "sleep 30 & sleep 30; echo never", "timeout_ms": 300})).unwrap_err();
        assert_eq!(err.message, "tool `shell`: command exceeded its time limit of 300 ms");
        // Killed, not waited out (generous bound: this only proves we did not wait 30 s).
        assert!(start.elapsed() < Duration::from_secs(20));
    }

    #[test]
    fn output_limit_is_enforced() {
        let err = go(json!({"command": "yes splai"})).unwrap_err();
        assert_eq!(err.message, "tool `shell`: output exceeded the limit of 4096 bytes");
    }

    #[test]
    fn memory_limit_is_enforced() {
        let ok = go(json!({"argv": ["python3", "-c", "x = bytearray(16 << 20); print(len(x))"]})).unwrap();
        assert_eq!(ok["stdout"], "16777216\n");
        let err = go(json!({"argv": ["python3", "-c", "x = bytearray(600 << 20)"]})).unwrap_err();
        assert!(err.message.contains("MemoryError"), "{}", err.message);
    }

    #[test]
    fn there_is_no_network() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let port = listener.local_addr().unwrap().port();
        let script = format!(
            "import socket\ntry:\n    socket.create_connection(('127.0.0.1', {port}), timeout=2)\n    print('connected')\nexcept OSError as e:\n    print('refused', e)"
        );
        let out = go(json!({"argv": ["python3", "-c", script]})).unwrap();
        let said = out["stdout"].as_str().unwrap();
        assert!(said.starts_with("refused"), "{said}");
        assert!(listener.accept().is_err(), "the command reached a host socket");
    }

    #[test]
    fn bad_inputs_are_specific() {
        let err = go(json!({})).unwrap_err();
        assert!(err.message.contains("`command` (a string) or `argv`"));
        let err = go(json!({"command": "true", "argv": ["true"]})).unwrap_err();
        assert!(err.message.contains("not both"));
        let err = go(json!({"argv": ["/no/such/program"]})).unwrap_err();
        assert!(!err.retryable && err.message.contains("exited with status"), "{}", err.message);
    }
}
