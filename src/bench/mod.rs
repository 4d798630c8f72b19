//! `splai bench …`: measurements anyone can reproduce.

pub mod analysis;
pub mod chat;
mod decision_latency;
pub mod embed;
pub mod fanout;
pub mod hops;
pub mod infer;
pub mod log;
pub mod noop;
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
