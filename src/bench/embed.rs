//! `splai bench embed`: MiniLM sentence embeddings through SPLAI's embedder on 512 sentences
//! (8 subjects × 8 verbs × 8 objects, "The cat quickly finds the red door."), batch 32, threads
//! from `RAYON_NUM_THREADS`; with `--reference`, sentence-transformers on torch CPU on the same
//! files and sentences (`scripts/bench-torch`, same thread count) and the ratio, plus the lowest
//! cosine similarity between the two sides' vectors.

use std::time::Instant;

use anyhow::{Context, bail};

const SUBJECTS: [&str; 8] = ["cat", "dog", "engineer", "teacher", "robot", "child", "pilot", "farmer"];
const VERBS: [&str; 8] = [
    "quickly finds",
    "slowly opens",
    "carefully paints",
    "happily carries",
    "quietly closes",
    "proudly shows",
    "barely sees",
    "gladly fixes",
];
const OBJECTS: [&str; 8] = [
    "the red door",
    "a heavy box",
    "the old map",
    "a small boat",
    "the broken clock",
    "a green lamp",
    "the new bridge",
    "a wooden chair",
];

#[derive(Debug, clap::Args)]
pub struct EmbedBenchArgs {
    /// Sentences per batch.
    #[arg(long, default_value_t = 32)]
    pub batch: usize,
    /// Timed passes over the 512 sentences.
    #[arg(long, default_value_t = 3)]
    pub runs: usize,
    /// Also run sentence-transformers on torch CPU (scripts/bench-torch) and print the ratio.
    #[arg(long)]
    pub reference: bool,
}

/// The 512 sentences, in the reference script's order.
pub fn sentences() -> Vec<String> {
    let mut out = Vec::new();
    for s in SUBJECTS {
        for v in VERBS {
            for o in OBJECTS {
                out.push(format!("The {s} {v} {o}."));
            }
        }
    }
    out
}

pub fn run(model_dir: &str, args: &EmbedBenchArgs) -> anyhow::Result<()> {
    if args.batch == 0 || args.runs == 0 {
        bail!("--batch and --runs must be at least 1");
    }
    let dir = std::path::Path::new(model_dir).join("all-minilm-l6-v2");
    let embedder = splai_executor::embed::Embedder::load(&dir, "all-minilm-l6-v2")
        .map_err(|e| anyhow::anyhow!(e.message))
        .context("loading MiniLM (run scripts/models)")?;
    let texts = sentences();
    // candle sizes its pools from RAYON_NUM_THREADS, else one thread per core.
    let threads = std::env::var("RAYON_NUM_THREADS")
        .ok()
        .and_then(|t| t.parse::<usize>().ok())
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    embedder.embed(&texts[..args.batch.min(texts.len())]).map_err(|e| anyhow::anyhow!(e.message))?;
    let mut ours = Vec::new();
    let mut best = 0f64;
    for run in 0..args.runs {
        let start = Instant::now();
        ours.clear();
        for batch in texts.chunks(args.batch) {
            ours.extend(embedder.embed(batch).map_err(|e| anyhow::anyhow!(e.message))?);
        }
        let rate = texts.len() as f64 / start.elapsed().as_secs_f64();
        best = best.max(rate);
        println!("splai threads={threads} run={run} sentences={} sentences_per_s={rate:.1}", texts.len());
    }
    if !args.reference {
        return Ok(());
    }
    let out = tempfile::NamedTempFile::new()?;
    let reference = std::process::Command::new("scripts/bench-torch")
        .args(["--threads", &threads.to_string(), "--batch", &args.batch.to_string()])
        .args(["--runs", &args.runs.to_string(), "--model"])
        .arg(&dir)
        .arg("--vectors")
        .arg(out.path())
        .output()?;
    if !reference.status.success() {
        bail!("the torch reference failed: {}", String::from_utf8_lossy(&reference.stderr));
    }
    let text = String::from_utf8_lossy(&reference.stdout);
    let mut theirs_best = 0f64;
    for line in text.lines().filter(|l| l.starts_with("torch ")) {
        println!("{line}");
        let rate =
            line.split_whitespace().find_map(|kv| kv.strip_prefix("sentences_per_s=")?.parse::<f64>().ok());
        theirs_best = theirs_best.max(rate.unwrap_or(0.0));
    }
    let theirs: Vec<Vec<f32>> = serde_json::from_slice(&std::fs::read(out.path())?)?;
    let cosine = ours
        .iter()
        .zip(&theirs)
        .map(|(a, b)| a.iter().zip(b).map(|(x, y)| f64::from(x * y)).sum::<f64>())
        .fold(f64::INFINITY, f64::min);
    println!(
        "ratio threads={threads}: splai/torch {:.2}x (best runs), lowest cosine between the two sides' vectors {cosine:.6}",
        best / theirs_best.max(1e-9)
    );
    Ok(())
}
