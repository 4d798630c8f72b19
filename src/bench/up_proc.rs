//! `splai up` as a child process on a data directory of its own, for benchmarks that need whole
//! processes (thread layouts fixed at process start, SIGKILL and restart).

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use splai_stack::UpProcess;

/// Start this binary's `splai up --executors N` on `data` (created if missing), listening on a
/// free port, and wait until all its executors are live.
pub async fn start_up(data: &Path, executors: u32, sets: &[String]) -> anyhow::Result<UpProcess> {
    std::fs::create_dir_all(data)?;
    let d = data.display();
    let mut all: Vec<String> = vec![
        format!("log.embedded.path={d}/log.sqlite"),
        format!("store.url=sqlite://{d}/splai.sqlite"),
        format!("artifacts.url=file://{d}/artifacts"),
        "gateway.listen=127.0.0.1:0".into(),
        "gateway.auth=false".into(),
    ];
    all.extend(sets.iter().cloned());
    let args = ["--executors".to_string(), executors.to_string()];
    let mut up = UpProcess::spawn(&std::env::current_exe()?, None, &all, &args, Stdio::null())?;
    up.wait_ready(None, executors as usize, Duration::from_secs(120)).await?;
    Ok(up)
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
