//! Where tests and benchmarks find the real models: the repository's `./models` (filled by
//! `scripts/models`), or `SPLAI_TEST_MODELS_DIR`. A missing model skips the caller with a message,
//! unless `SPLAI_TEST_REQUIRE_MODELS` is set (the README's test command sets it): then it fails.

use std::path::{Path, PathBuf};

/// The models directory.
pub fn models_dir() -> PathBuf {
    std::env::var("SPLAI_TEST_MODELS_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|_| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../models"))
}

/// `relative` under [`models_dir`] when it exists; `None` (skip) with a message when it does not.
///
/// Panics when `SPLAI_TEST_REQUIRE_MODELS` is set and it is missing.
pub fn model(relative: &str) -> Option<PathBuf> {
    let path = models_dir().join(relative);
    if path.exists() {
        return Some(path);
    }
    assert!(std::env::var("SPLAI_TEST_REQUIRE_MODELS").is_err(), "model missing at {}", path.display());
    eprintln!("skipped: {} missing (run scripts/models)", path.display());
    None
}

/// SmolLM2-135M-Instruct's GGUF.
pub fn smollm2() -> Option<PathBuf> {
    model("smollm2-135m-instruct/SmolLM2-135M-Instruct.Q4_1.gguf")
}

/// all-MiniLM-L6-v2's directory.
pub fn minilm() -> Option<PathBuf> {
    model("all-minilm-l6-v2/model.safetensors").map(|p| p.with_file_name(""))
}
