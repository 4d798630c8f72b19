//! `splai bench …`: measurements anyone can reproduce.

pub mod analysis;
pub mod chat;
mod decision_latency;
pub mod embed;
pub mod failover;
pub mod fanout;
pub mod hops;
pub mod infer;
pub mod log;
pub mod noop;
pub mod recovery;
pub mod report;
pub mod resume;
pub mod scale;
pub mod tickets;
pub mod up_proc;

/// `settings` pointed at a fresh temporary directory for a benchmark's in-process stack:
/// embedded log, SQLite read model and artifacts inside it, topics prefixed with `tag`, any free
/// port, auth off. Keep the directory alive for as long as the stack runs.
pub fn scratch_settings(
    settings: &splai_config::Settings,
    tag: &str,
) -> anyhow::Result<(tempfile::TempDir, splai_config::Settings)> {
    let dir = tempfile::tempdir()?;
    let mut s = settings.clone();
    let d = dir.path().display();
    s.log.embedded.path = format!("{d}/log.sqlite");
    s.log.topic_prefix = format!("{}{tag}{}.", s.log.topic_prefix, std::process::id());
    s.store.url = format!("sqlite://{d}/splai.sqlite");
    s.artifacts.url = format!("file://{d}/artifacts");
    s.gateway.listen = "127.0.0.1:0".into();
    s.gateway.auth = false;
    Ok((dir, s))
}

/// The number after `key=` in `text` (last occurrence), e.g. `tasks_per_s=310`.
pub fn kv(text: &str, key: &str) -> Option<f64> {
    let pat = format!("{key}=");
    let at = text.rfind(&pat)? + pat.len();
    let num: String =
        text[at..].chars().take_while(|c| c.is_ascii_digit() || *c == '.' || *c == '-').collect();
    num.parse().ok()
}

/// [`kv`] on the first line of `text` that starts with `line`.
pub fn line_kv(text: &str, line: &str, key: &str) -> Option<f64> {
    text.lines().find(|l| l.starts_with(line)).and_then(|l| kv(l, key))
}

/// The `p` quantile (0–1, nearest rank) of ascending `sorted`; NaN when it is empty.
pub fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}
