//! Real inference with SmolLM2-135M-Instruct from `./models` (filled by `scripts/models`; the
//! suite run by `scripts/test` always has it). Skipped with a message only when the model is absent
//! and SPLAI_TEST_REQUIRE_MODELS is not set.

use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use splai_executor::llm::{GenParams, LlmModel};

use splai_executor::test_models::smollm2 as model_path;

#[test]
fn smollm2_answers_and_is_deterministic_and_bounded() {
    let Some(path) = model_path() else { return };
    let model = LlmModel::load(&path, "smollm2-135m-instruct").unwrap();
    let prompt = LlmModel::chat_prompt(&[("user".into(), "What is the capital of France?".into())]);
    let params = GenParams { max_tokens: 24, seed: 7, ..GenParams::default() };
    let never = Arc::new(AtomicBool::new(false));
    let mut streamed = String::new();
    let first = model.generate(&prompt, &params, &never, &mut |_, delta| streamed.push_str(delta)).unwrap();
    assert!(first.text.contains("Paris"), "{first:?}");
    assert!(first.prompt_tokens > 5 && first.completion_tokens > 0);
    assert_eq!(streamed.trim(), first.text, "streamed deltas add up to the text");
    let second = model.generate(&prompt, &params, &never, &mut |_, _| {}).unwrap();
    assert_eq!(first, second, "greedy decoding is reproducible");

    // Cancellation stops between steps (the engine may have run a step or two more by the time
    // the flag is seen: the callback runs on this thread, the steps on the engine's).
    let cancel = Arc::new(AtomicBool::new(false));
    let long = GenParams { max_tokens: 200, ..params.clone() };
    let err = model
        .generate(&prompt, &long, &cancel, &mut |n, _| {
            if n == 3 {
                cancel.store(true, std::sync::atomic::Ordering::SeqCst)
            }
        })
        .unwrap_err();
    let after: usize = err
        .message
        .strip_prefix("cancelled after ")
        .and_then(|m| m.split(' ').next()?.parse().ok())
        .unwrap_or(0);
    assert!((3..20).contains(&after), "{err:?}");

    // A prompt over the context is a specific, non-retryable error.
    let huge = GenParams { max_tokens: 100_000, ..params };
    let err = model.generate(&prompt, &huge, &never, &mut |_, _| {}).unwrap_err();
    assert!(!err.retryable && err.message.contains("exceeds the context"), "{err:?}");
}
