//! The `shell` tool cannot read what is not its own (issue 16 item 5): real commands through the
//! real sandbox, next to a fake data directory on the host (a SQLite file, an artifact, a
//! config file), which the command must not see; its own files and the system paths it needs
//! work.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use serde_json::{Value, json};
use splai_executor::shell::{ShellLimits, run};

fn limits(hidden: Vec<PathBuf>) -> ShellLimits {
    ShellLimits { timeout: Duration::from_secs(20), memory_bytes: 256 << 20, max_output_bytes: 65536, hidden }
}

/// Run `command` (failures allowed): exit code, stdout, stderr.
fn sh(command: &str, hidden: Vec<PathBuf>) -> (i64, String, String) {
    let inputs: BTreeMap<String, Value> =
        serde_json::from_value(json!({"command": command, "allow_failure": true})).unwrap();
    let out = run(&inputs, &limits(hidden), &AtomicBool::new(false)).expect("the sandbox runs");
    let text = |k: &str| out[k].as_str().unwrap_or_default().to_string();
    (out["exit_code"].as_i64().unwrap(), text("stdout"), text("stderr"))
}

/// A data directory as `splai up` leaves one: the read model, an artifact, the config.
struct DataDir {
    dir: tempfile::TempDir,
}

impl DataDir {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("read-model.sqlite"), "SQLite format 3\0secret rows").unwrap();
        std::fs::create_dir_all(dir.path().join("artifacts/globex/job-1/t/1")).unwrap();
        std::fs::write(dir.path().join("artifacts/globex/job-1/t/1/output.json"), "{\"secret\": 1}").unwrap();
        std::fs::write(dir.path().join("splai.toml"), "[gateway]\nsigning_key = \"secret\"\n").unwrap();
        Self { dir }
    }

    fn path(&self, rel: &str) -> String {
        self.dir.path().join(rel).display().to_string()
    }
}

#[test]
fn the_artifact_store_is_not_there() {
    let data = DataDir::new();
    let (code, out, _) = sh(&format!("cat {}", data.path("artifacts/globex/job-1/t/1/output.json")), vec![]);
    assert_ne!(code, 0, "read another tenant's artifact: {out}");
    assert!(!out.contains("secret"));
}

#[test]
fn the_read_model_is_not_there() {
    let data = DataDir::new();
    let (code, out, _) = sh(&format!("cat {}", data.path("read-model.sqlite")), vec![]);
    assert_ne!(code, 0, "read the SQLite read model: {out}");
}

#[test]
fn the_config_is_not_there() {
    let data = DataDir::new();
    let (code, out, _) = sh(&format!("cat {}", data.path("splai.toml")), vec![]);
    assert_ne!(code, 0, "read the config: {out}");
}

#[test]
fn parent_paths_lead_nowhere_private() {
    let data = DataDir::new();
    // From its working directory, `..` is the sandbox's root: no host temp directory is there.
    let name = data.dir.path().file_name().unwrap().to_str().unwrap().to_string();
    let (_, out, _) =
        sh(&format!("cat ../{name}/splai.toml ../../tmp/{name}/splai.toml; echo \"cat=$?\"; ls .."), vec![]);
    assert!(out.contains("cat=1") && !out.contains("signing_key"), "{out}");
    assert!(!out.contains(&name), "the host's /tmp is not there: {out}");
}

#[test]
fn a_hidden_path_under_a_shown_one_is_empty() {
    let (code, out, _) = sh("cat /etc/os-release", vec![PathBuf::from("/etc/os-release")]);
    assert_eq!((code, out.as_str()), (0, ""), "overmounted empty");
}

#[test]
fn its_own_files_and_the_system_work() {
    let (code, out, err) =
        sh("echo mine > note && cat note && cat /etc/os-release | head -1 && ls /usr/bin/env && pwd", vec![]);
    assert_eq!(code, 0, "{err}");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "mine");
    assert!(lines[1].contains('='), "{out}");
    assert_eq!(lines.last(), Some(&"/work"));
}

#[test]
fn system_paths_are_read_only() {
    let (code, _, err) = sh("touch /usr/splai-was-here", vec![]);
    assert_ne!(code, 0);
    assert!(err.contains("Read-only") || err.contains("read-only"), "{err}");
    assert!(!std::path::Path::new("/usr/splai-was-here").exists());
}

#[test]
fn tmp_is_private() {
    let host = tempfile::Builder::new().prefix("splai-host-secret").tempfile_in("/tmp").unwrap();
    let name = host.path().file_name().unwrap().to_str().unwrap().to_string();
    let (code, out, _) =
        sh(&format!("echo x > /tmp/scratch && cat /tmp/scratch && ls -a /tmp && cat /tmp/{name}"), vec![]);
    assert_ne!(code, 0, "the host's file in /tmp is not there");
    assert!(out.starts_with("x\n") && !out.contains(&name), "{out}");
}

#[test]
fn it_sees_only_its_own_processes() {
    let (code, out, err) = sh("ls /proc | grep -c '^[0-9]'", vec![]);
    assert_eq!(code, 0, "{err}");
    let n: u32 = out.trim().parse().unwrap();
    assert!(n <= 5, "{n} processes visible: not the host's");
}

#[test]
fn etc_holds_only_what_programs_need() {
    let (code, out, _) = sh("cat /etc/shadow; echo \"shadow=$?\"; ls /etc", vec![]);
    assert_eq!(code, 0);
    assert!(out.contains("shadow=1"), "no shadow file: {out}");
    assert!(!out.contains("gitconfig") && !out.contains("ssh"), "no credentials or keys: {out}");
    assert!(out.contains("passwd"), "what programs need is there: {out}");
}

#[test]
fn a_root_executors_command_is_not_root() {
    let (code, out, err) = sh("id -u", vec![]);
    assert_eq!(code, 0, "{err}");
    let uid: u32 = out.trim().parse().unwrap();
    let executor_is_root = nix::unistd::geteuid().is_root();
    assert!(uid != 0 || !executor_is_root, "a root executor's command runs as uid {uid}");
}
