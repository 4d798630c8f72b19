//! The engine against the real model (SmolLM2 from `./models`).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, mpsc};
use std::time::{Duration, Instant};

use super::*;
use crate::llama::Padding;
use crate::llm::tests::smollm2;
use crate::llm::{LlmModel, Weights};

fn load(config: EngineConfig) -> Option<LlmModel> {
    let path = smollm2()?;
    Some(LlmModel::load_engine(&path, "smollm2", Weights::default(), Padding::Auto, config).unwrap())
}

fn chat(text: &str) -> String {
    LlmModel::chat_prompt(&[("user".into(), text.into())])
}

const QUESTIONS: [&str; 6] = [
    "What is the capital of France?",
    "Name three colours of the rainbow.",
    "Write one sentence about the sea.",
    "What is two plus two?",
    "Say hello in Spanish.",
    "Which planet is the largest?",
];

fn params(max_tokens: usize) -> GenParams {
    GenParams { max_tokens, ..GenParams::default() }
}

/// Requests sent at once run in shared steps, and each gets the text it gets alone.
#[test]
fn concurrent_requests_share_steps_and_get_their_solo_answers() {
    let Some(model) = load(EngineConfig { prefix_cache_mb: 0, ..EngineConfig::default() }) else { return };
    let model = Arc::new(model);
    let p = params(12);
    let alone: Vec<Generation> = QUESTIONS
        .iter()
        .map(|q| model.generate(&chat(q), &p, &Arc::default(), &mut |_, _| {}).unwrap())
        .collect();
    assert_eq!(model.engine().stats().widest_step.load(Ordering::Relaxed), 1, "alone, one sequence a step");
    let together: Vec<Generation> = std::thread::scope(|s| {
        let handles: Vec<_> = QUESTIONS
            .iter()
            .map(|q| {
                let (model, p) = (model.clone(), p.clone());
                s.spawn(move || model.generate(&chat(q), &p, &Arc::default(), &mut |_, _| {}).unwrap())
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert!(model.engine().stats().widest_step.load(Ordering::Relaxed) > 1, "requests shared a step");
    assert_eq!(together, alone);
    assert!(alone[0].text.contains("Paris"), "{:?}", alone[0]);
}

/// A cancelled sequence ends with the reason between steps; the others run to their end.
#[test]
fn a_cancelled_sequence_ends_and_the_others_finish() {
    let Some(model) = load(EngineConfig::default()) else { return };
    let cancel = Arc::new(AtomicBool::new(false));
    let (tx, rx) = mpsc::channel();
    let long = GenParams { max_tokens: 200, repeat_penalty: 1.0, ..GenParams::default() };
    let ids = |q: &str| model.tokenizer.encode(chat(q), false).unwrap().get_ids().to_vec();
    model
        .engine()
        .submit(Request { prompt: ids(QUESTIONS[2]), params: long, cancel: cancel.clone(), events: tx })
        .unwrap();
    // Cancel once it has produced tokens.
    let first = rx.recv_timeout(Duration::from_secs(60)).unwrap();
    assert!(matches!(first, Event::Token { .. }), "{first:?}");
    let other = std::thread::scope(|s| {
        let h = s.spawn(|| model.generate(&chat(QUESTIONS[0]), &params(8), &Arc::default(), &mut |_, _| {}));
        cancel.store(true, Ordering::SeqCst);
        h.join().unwrap()
    });
    let end = rx.iter().find_map(|e| match e {
        Event::Done(r) => Some(r),
        Event::Token { .. } => None,
    });
    let err = end.unwrap().unwrap_err();
    assert!(err.to_string().contains("cancelled after"), "{err}");
    assert!(other.unwrap().text.contains("Paris"));
}

/// A generation past its deadline fails with that reason.
#[test]
fn a_deadline_ends_a_generation() {
    let Some(model) = load(EngineConfig::default()) else { return };
    let p = GenParams { deadline: Some(Instant::now()), ..params(50) };
    let err = model.generate(&chat(QUESTIONS[0]), &p, &Arc::default(), &mut |_, _| {}).unwrap_err();
    assert!(
        err.to_string().contains("cancelled before it started") || err.to_string().contains("deadline"),
        "{err}"
    );
}

/// A request that could never fit the KV budget is refused with the setting's name; one that
/// does not fit yet waits for memory instead of failing.
#[test]
fn the_kv_budget_refuses_what_never_fits_and_queues_what_fits_later() {
    // 1 MiB holds ~22 positions of SmolLM2 (46 KiB each).
    let Some(model) = load(EngineConfig { kv_cache_mb: 1, prefix_cache_mb: 0, ..EngineConfig::default() })
    else {
        return;
    };
    let err = model.generate(&chat(QUESTIONS[0]), &params(64), &Arc::default(), &mut |_, _| {}).unwrap_err();
    assert!(err.to_string().contains("executor.kv_cache_mb"), "{err}");
    let Some(model) = load(EngineConfig { kv_cache_mb: 2, prefix_cache_mb: 0, ..EngineConfig::default() })
    else {
        return;
    };
    let model = Arc::new(model);
    // Each needs ~20 + 8 positions; 2 MiB holds ~45: they run one after the other, never together.
    let outs: Vec<_> = std::thread::scope(|s| {
        let hs: Vec<_> = QUESTIONS[..3]
            .iter()
            .map(|q| {
                let model = model.clone();
                s.spawn(move || model.generate(&chat(q), &params(8), &Arc::default(), &mut |_, _| {}))
            })
            .collect();
        hs.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert!(outs.iter().all(Result::is_ok), "{outs:?}");
    assert_eq!(model.engine().stats().widest_step.load(Ordering::Relaxed), 1, "never two at once");
}

/// A prompt that shares a prefix with an earlier one reuses its cached keys and values, and
/// answers as it does without the cache.
#[test]
fn shared_prompt_prefixes_are_reused() {
    let system = "You are a careful assistant. Answer in one short sentence, plainly, without lists.";
    let prompt =
        |q: &str| LlmModel::chat_prompt(&[("system".into(), system.into()), ("user".into(), q.into())]);
    let Some(plain) = load(EngineConfig { prefix_cache_mb: 0, ..EngineConfig::default() }) else { return };
    let Some(cached) = load(EngineConfig::default()) else { return };
    for q in &QUESTIONS[..3] {
        let a = plain.generate(&prompt(q), &params(10), &Arc::default(), &mut |_, _| {}).unwrap();
        let b = cached.generate(&prompt(q), &params(10), &Arc::default(), &mut |_, _| {}).unwrap();
        assert_eq!(a.text, b.text, "{q}");
    }
    let reused = cached.engine().stats().prefix_tokens_reused.load(Ordering::Relaxed);
    assert!(reused >= 2 * 16, "the system prompt's blocks were reused by the later prompts: {reused}");
    assert_eq!(plain.engine().stats().prefix_tokens_reused.load(Ordering::Relaxed), 0);
}

/// Requests that arrive together with a shared system prompt compute it once: the later ones
/// wait a step for the first to read it, then copy it from the prefix cache.
#[test]
fn requests_arriving_together_share_their_prompt_prefix() {
    let system = "You are a careful assistant. Answer in one short sentence, plainly, without lists.";
    let prompt =
        |q: &str| LlmModel::chat_prompt(&[("system".into(), system.into()), ("user".into(), q.into())]);
    let Some(model) = load(EngineConfig::default()) else { return };
    let (tx, rx) = mpsc::channel();
    for q in &QUESTIONS[..4] {
        let ids = model.tokenizer.encode(prompt(q), false).unwrap().get_ids().to_vec();
        model
            .engine()
            .submit(Request { prompt: ids, params: params(4), cancel: Arc::default(), events: tx.clone() })
            .unwrap();
    }
    drop(tx);
    let done = rx.iter().filter(|e| matches!(e, Event::Done(Ok(_)))).count();
    assert_eq!(done, 4);
    let reused = model.engine().stats().prefix_tokens_reused.load(Ordering::Relaxed);
    assert!(reused >= 3 * 16, "the three later requests reused the system prompt: {reused}");
}

fn ticket_shape() -> Arc<splai_ingest::structured::Shape> {
    let format = serde_json::json!({"type": "json_schema", "json_schema": {"name": "ticket", "strict": true, "schema": {
        "type": "object", "additionalProperties": false,
        "required": ["id", "component", "problem", "affected_users"],
        "properties": {
            "id": {"type": "integer"},
            "component": {"enum": ["login", "billing", "search", "mobile"]},
            "problem": {"type": "string", "maxLength": 80},
            "affected_users": {"type": "integer"}}}}});
    Arc::new(splai_ingest::structured::response_format(&format).unwrap().unwrap())
}

fn check_ticket(text: &str) {
    let v: serde_json::Value =
        serde_json::from_str(text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"));
    assert!(v["id"].is_i64() && v["affected_users"].is_i64(), "{v}");
    assert!(["login", "billing", "search", "mobile"].contains(&v["component"].as_str().unwrap_or("")), "{v}");
    assert!(v["problem"].as_str().is_some_and(|p| p.chars().count() <= 80), "{v}");
}

/// A structured output parses and has the schema's fields — greedy, sampled, and cut short by
/// max_tokens (closed by the automaton's completion).
#[test]
fn structured_outputs_always_parse_and_fit_the_schema() {
    let Some(model) = load(EngineConfig::default()) else { return };
    let prompt = chat(
        "Extract the ticket as JSON: #4471 [billing] The invoice PDF is blank. Seen by 12 users since Monday.",
    );
    let shape = ticket_shape();
    for (temperature, max_tokens) in [(None, 96), (Some(0.8), 96), (None, 6)] {
        let p = GenParams {
            max_tokens,
            temperature,
            seed: 3,
            response: Some(shape.clone()),
            ..GenParams::default()
        };
        let g = model.generate(&prompt, &p, &Arc::default(), &mut |_, _| {}).unwrap();
        check_ticket(&g.text);
        if max_tokens == 96 && temperature.is_none() {
            assert_eq!(g.finish_reason, "stop", "{g:?}");
            let v: serde_json::Value = serde_json::from_str(&g.text).unwrap();
            assert_eq!(v["component"], "billing", "the model read the ticket: {v}");
        }
    }
}

/// Sequences that start from a cached prefix hold its blocks, not copies: a KV pool too small
/// for four prompts' worth of blocks runs all four together when they share a system prompt.
#[test]
fn shared_prefix_blocks_count_once_in_the_kv_pool() {
    let system = "You are a careful assistant. Answer in one short sentence, plainly, without lists. \
                  Never use more words than the question needs.";
    let prompt =
        |q: &str| LlmModel::chat_prompt(&[("system".into(), system.into()), ("user".into(), q.into())]);
    let Some(probe) = load(EngineConfig { kv_cache_mb: 1, ..EngineConfig::default() }) else { return };
    let ids: Vec<Vec<u32>> = QUESTIONS[..4]
        .iter()
        .map(|q| probe.tokenizer.encode(prompt(q), false).unwrap().get_ids().to_vec())
        .collect();
    let max_tokens = 6;
    let need = ids.iter().map(|p| (p.len() + max_tokens).div_ceil(BLOCK)).max().unwrap();
    let shared = (prefix::common(&ids[0], &ids[1]).min(ids[1].len() - 1)) / BLOCK;
    assert!(shared >= 2, "the system prompt spans whole blocks");
    let block_bytes =
        (1usize << 20) / probe.engine().stats().kv_blocks.load(Ordering::Relaxed).max(1) as usize;
    let block_bytes = block_bytes.max(1);
    drop(probe);
    // Room for the first prompt whole and three more that share its system prompt's blocks,
    // and not for four prompts that each hold their own.
    let fits_shared = need + 3 * (need - shared);
    let mb = (fits_shared * block_bytes).div_ceil(1 << 20);
    let Some(model) = load(EngineConfig { kv_cache_mb: mb, ..EngineConfig::default() }) else { return };
    let capacity = model.engine().stats().kv_blocks.load(Ordering::Relaxed) as usize;
    assert!(
        capacity >= fits_shared && capacity < 4 * need,
        "{capacity} blocks, need {need}, shared {shared}"
    );
    let (tx, rx) = mpsc::channel();
    for prompt in &ids {
        let request = Request {
            prompt: prompt.clone(),
            params: params(max_tokens),
            cancel: Arc::default(),
            events: tx.clone(),
        };
        model.engine().submit(request).unwrap();
    }
    drop(tx);
    let done = rx.iter().filter(|e| matches!(e, Event::Done(Ok(_)))).count();
    assert_eq!(done, 4);
    let widest = model.engine().stats().widest_step.load(Ordering::Relaxed);
    assert_eq!(widest, 4, "all four ran together in {capacity} blocks (each alone needs {need})");
}
