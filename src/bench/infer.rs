//! `splai bench infer`: CPU inference speed of the models in the model directory — SmolLM2 prompt
//! (prefill) and decode tokens/s, MiniLM embeddings/s. Threads follow `RAYON_NUM_THREADS`
//! (candle's CPU thread count); run it with 1 and 2 to compare. `--weights` picks how the GGUF's
//! matrices are held in memory (as in the file, or converted at load), and
//! `scripts/bench-llamacpp` measures llama.cpp on the same file and prompt the same way.

use std::path::PathBuf;
use std::sync::atomic::AtomicBool;
use std::time::Instant;

use anyhow::Context;
use splai_executor::embed::Embedder;
use splai_executor::llama::Padding;
use splai_executor::llm::{GenParams, LlmModel, Weights};

/// The benchmark prompt's user turn; `scripts/bench_llamacpp.py` sends the same text.
pub const QUESTION: &str = "Summarise the main problems customers report: login fails after a password reset; \
                            the invoice PDF is blank; search is slow in the afternoon; the mobile app logs users \
                            out; exports time out for large accounts.";

#[derive(Debug, clap::Args)]
pub struct InferBenchArgs {
    /// Model directory (default: executor.model_dir).
    #[arg(long)]
    pub models: Option<PathBuf>,
    /// Tokens to generate per run.
    #[arg(long, default_value_t = 64)]
    pub tokens: usize,
    /// Generation runs (the first also loads the model and is reported separately).
    #[arg(long, default_value_t = 3)]
    pub runs: usize,
    /// Sentences to embed per run.
    #[arg(long, default_value_t = 256)]
    pub sentences: usize,
    /// SmolLM2 weights in memory: `as-is` (the file's Q4_1) or a type to convert to at load
    /// (f32, f16, q4_0, q8_0, q4k, q6k, …). Default: the executor's built-in default.
    #[arg(long)]
    pub weights: Option<Weights>,
    /// Zero padding of the matrices to whole 256-value blocks: `auto` (Q8_0 on a VNNI CPU) or
    /// `off` (config `executor.llm_padding`).
    #[arg(long, default_value = "auto")]
    pub padding: Padding,
    /// Skip the MiniLM embedding runs.
    #[arg(long)]
    pub llm_only: bool,
}

pub fn run(model_dir: &str, args: &InferBenchArgs) -> anyhow::Result<()> {
    let dir = args.models.clone().unwrap_or_else(|| PathBuf::from(model_dir));
    let threads = std::env::var("RAYON_NUM_THREADS").unwrap_or_else(|_| "default".into());
    println!("threads={threads} models={}", dir.display());

    let gguf = dir.join("smollm2-135m-instruct/SmolLM2-135M-Instruct.Q4_1.gguf");
    let weights = args.weights.unwrap_or_default();
    let types =
        LlmModel::weight_types(&gguf, weights, args.padding).map_err(|e| anyhow::anyhow!(e.message))?;
    let types: Vec<String> = types.iter().map(|(t, n)| format!("{t}x{n}")).collect();
    let loaded = Instant::now();
    // No prefix cache: every run reads its whole prompt, so prefill is measured, not skipped.
    let engine = splai_executor::engine::EngineConfig {
        prefix_cache_mb: 0,
        ..splai_executor::engine::EngineConfig::default()
    };
    let llm = LlmModel::load_engine(&gguf, "smollm2-135m-instruct", weights, args.padding, engine)
        .map_err(|e| anyhow::anyhow!(e.message))
        .context("loading SmolLM2")?;
    println!(
        "smollm2 weights={weights} padded={} tensors={} load_s={:.2}",
        args.padding.applies(weights),
        types.join(","),
        loaded.elapsed().as_secs_f64()
    );
    let prompt = LlmModel::chat_prompt(&[("user".into(), QUESTION.into())]);
    let never = std::sync::Arc::new(AtomicBool::new(false));
    for run in 0..args.runs {
        let params = GenParams { max_tokens: args.tokens, repeat_penalty: 1.0, ..GenParams::default() };
        let start = Instant::now();
        let mut first_token = None;
        let g = llm
            .generate(&prompt, &params, &never, &mut |n, _| {
                if n == 1 {
                    first_token = Some(start.elapsed());
                }
            })
            .map_err(|e| anyhow::anyhow!(e.message))?;
        let total = start.elapsed().as_secs_f64();
        let prefill = first_token.map_or(total, |d| d.as_secs_f64());
        // Each token after the first costs one forward pass (`generate` runs none after the last).
        let decode_tokens = g.completion_tokens.saturating_sub(1).max(1);
        println!(
            "smollm2 run={run} prompt_tokens={} prefill_tok_per_s={:.1} completion_tokens={} decode_tok_per_s={:.1}",
            g.prompt_tokens,
            f64::from(g.prompt_tokens) / prefill,
            g.completion_tokens,
            f64::from(decode_tokens) / (total - prefill).max(1e-9),
        );
        if run == 0 {
            println!("smollm2 text={:?}", g.text);
        }
    }
    structured(&llm, args.tokens, &never)?;
    if args.llm_only {
        return Ok(());
    }

    let embedder = Embedder::load(&dir.join("all-minilm-l6-v2"), "all-minilm-l6-v2")
        .map_err(|e| anyhow::anyhow!(e.message))?;
    let sentences: Vec<String> = (0..args.sentences)
        .map(|i| format!("Ticket {i}: the customer reports that the invoice export fails with an error."))
        .collect();
    for run in 0..args.runs {
        let start = Instant::now();
        for batch in sentences.chunks(32) {
            embedder.embed(batch).map_err(|e| anyhow::anyhow!(e.message))?;
        }
        println!(
            "minilm run={run} sentences={} embeddings_per_s={:.1}",
            sentences.len(),
            sentences.len() as f64 / start.elapsed().as_secs_f64()
        );
    }
    Ok(())
}

/// The cost of structured outputs: one extraction under a JSON schema, with the time spent
/// choosing tokens under the automaton as a share of the decode time.
fn structured(llm: &LlmModel, tokens: usize, never: &std::sync::Arc<AtomicBool>) -> anyhow::Result<()> {
    use std::sync::atomic::Ordering;
    let format = serde_json::json!({"type": "json_schema", "json_schema": {"name": "ticket", "schema": {
        "type": "object", "additionalProperties": false,
        "required": ["id", "component", "problem", "severity", "affected_users"],
        "properties": {"id": {"type": "integer"}, "component": {"enum": ["login", "billing", "search", "mobile"]},
            "problem": {"type": "string", "maxLength": 120}, "severity": {"enum": ["low", "medium", "high"]},
            "affected_users": {"type": "integer"}}}}});
    let shape = splai_ingest::structured::response_format(&format)?.context("a json_schema format")?;
    let prompt = LlmModel::chat_prompt(&[(
        "user".into(),
        "Extract this ticket as JSON: #4471 [billing] The invoice PDF is blank when exported. Seen by 12 users \
         since Monday; finance is blocked."
            .into(),
    )]);
    let params = GenParams {
        max_tokens: tokens.max(96),
        response: Some(std::sync::Arc::new(shape)),
        ..GenParams::default()
    };
    let stats = llm.engine().stats();
    let before = stats.constrained_nanos.load(Ordering::Relaxed);
    let start = Instant::now();
    let mut first = None;
    let g = llm
        .generate(&prompt, &params, never, &mut |n, _| {
            if n == 1 {
                first = Some(start.elapsed());
            }
        })
        .map_err(|e| anyhow::anyhow!(e.message))?;
    let decode = (start.elapsed() - first.unwrap_or_default()).as_secs_f64();
    let masked = (stats.constrained_nanos.load(Ordering::Relaxed) - before) as f64 / 1e9;
    println!(
        "smollm2 structured completion_tokens={} decode_tok_per_s={:.1} mask_share_of_decode={:.1}% mask_us_per_token={:.0} text={:?}",
        g.completion_tokens,
        f64::from(g.completion_tokens.saturating_sub(1).max(1)) / decode.max(1e-9),
        100.0 * masked / decode.max(1e-9),
        1e6 * masked / f64::from(g.completion_tokens.max(1)),
        g.text
    );
    Ok(())
}
