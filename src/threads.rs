//! CPU threads per inference. candle sizes its compute pools once, from `CANDLE_NUM_THREADS` /
//! `RAYON_NUM_THREADS`, when first used; several attempts at once each using every core spin
//! against each other (measured: the demo job 37 s with all cores per attempt, 15 s with one).
//! So a process that runs inference sets them before anything starts — by re-executing itself
//! with them set (the same pid; setting the environment of a running process is not safe Rust).

use std::os::unix::process::CommandExt;

/// Ensure candle uses `threads` threads, unless the environment already says how many.
pub fn pin_inference_threads(threads: u32) -> anyhow::Result<()> {
    if std::env::var_os("CANDLE_NUM_THREADS").is_some() || std::env::var_os("RAYON_NUM_THREADS").is_some() {
        return Ok(());
    }
    let n = threads.max(1).to_string();
    let error = std::process::Command::new(std::env::current_exe()?)
        .args(std::env::args_os().skip(1))
        .env("CANDLE_NUM_THREADS", &n)
        .env("RAYON_NUM_THREADS", &n)
        .exec();
    Err(anyhow::anyhow!("re-executing with {n} inference threads failed: {error}"))
}

/// Threads per attempt: the setting, or the cores shared out among `attempts_at_once`.
pub fn per_attempt(setting: u32, attempts_at_once: u32) -> u32 {
    if setting > 0 {
        return setting;
    }
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get() as u32);
    (cores / attempts_at_once.max(1)).max(1)
}
