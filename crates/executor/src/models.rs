//! Models found in the model directory, loaded on first use and kept warm.
//!
//! `DIR/<name>/*.gguf` is an LLM named `<name>` (e.g. `smollm2-135m-instruct`). A missing
//! directory or model is not an error at start: the executor simply does not advertise it, and
//! the scheduler never sends it tasks that need it (the policy documented in `docs/design/`).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use crate::AttemptError;
use crate::embed::Embedder;
use crate::llama::Padding;
use crate::llm::{LlmModel, Weights};

#[derive(Debug, Default)]
pub struct Models {
    llm_files: BTreeMap<String, PathBuf>,
    embed_dirs: BTreeMap<String, PathBuf>,
    llm_weights: Weights,
    llm_padding: Padding,
    loaded: Mutex<BTreeMap<String, Arc<Mutex<LlmModel>>>>,
    embedders: Mutex<BTreeMap<String, Arc<Embedder>>>,
}

impl Models {
    /// Scan `dir` (absent → no models).
    pub fn discover(dir: &Path) -> Self {
        let mut llm_files = BTreeMap::new();
        let mut embed_dirs = BTreeMap::new();
        for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
            let sub = entry.path();
            let gguf = std::fs::read_dir(&sub)
                .into_iter()
                .flatten()
                .flatten()
                .map(|f| f.path())
                .find(|p| p.extension().and_then(|e| e.to_str()) == Some("gguf"));
            let Some(name) = sub.file_name().and_then(|n| n.to_str()).map(str::to_string) else { continue };
            if let Some(file) = gguf {
                llm_files.insert(name, file);
            } else if ["model.safetensors", "config.json", "tokenizer.json"]
                .iter()
                .all(|f| sub.join(f).is_file())
            {
                embed_dirs.insert(name, sub);
            }
        }
        Self { llm_files, embed_dirs, ..Self::default() }
    }

    /// Hold LLM weights as `weights` and `padding` say when loading them (defaults:
    /// [`Weights::default`], [`Padding::Auto`]).
    pub fn with_llm_weights(mut self, weights: Weights, padding: Padding) -> Self {
        self.llm_weights = weights;
        self.llm_padding = padding;
        self
    }

    /// Model names to advertise.
    pub fn names(&self) -> Vec<String> {
        self.llm_files.keys().chain(self.embed_dirs.keys()).cloned().collect()
    }

    /// Models loaded in memory.
    pub fn warm(&self) -> Vec<String> {
        let mut warm: Vec<String> = self.loaded.lock().expect("models lock").keys().cloned().collect();
        warm.extend(self.embedders.lock().expect("models lock").keys().cloned());
        warm
    }

    /// The embedding model `name` (or the first one when `None`), loading it on first use.
    pub fn embedder(&self, name: Option<&str>) -> Result<Arc<Embedder>, AttemptError> {
        let name = match name {
            Some(n) => n.to_string(),
            None => self.embed_dirs.keys().next().cloned().ok_or_else(|| {
                AttemptError::fatal("this executor has no embedding model (its model directory holds none)")
            })?,
        };
        let dir = self.embed_dirs.get(&name).ok_or_else(|| {
            AttemptError::fatal(format!(
                "embedding model `{name}` is not available on this executor (it has: {:?})",
                self.names()
            ))
        })?;
        let mut loaded = self.embedders.lock().expect("models lock");
        if let Some(m) = loaded.get(&name) {
            return Ok(m.clone());
        }
        let model = Arc::new(Embedder::load(dir, &name)?);
        loaded.insert(name, model.clone());
        Ok(model)
    }

    /// The model `name` (or the first LLM when `None`), loading it on first use.
    pub fn llm(&self, name: Option<&str>) -> Result<Arc<Mutex<LlmModel>>, AttemptError> {
        let name = match name {
            Some(n) => n.to_string(),
            None => self.llm_files.keys().next().cloned().ok_or_else(|| {
                AttemptError::fatal("this executor has no language model (its model directory holds none)")
            })?,
        };
        let path = self.llm_files.get(&name).ok_or_else(|| {
            AttemptError::fatal(format!(
                "model `{name}` is not available on this executor (it has: {:?})",
                self.names()
            ))
        })?;
        let mut loaded = self.loaded.lock().expect("models lock");
        if let Some(m) = loaded.get(&name) {
            return Ok(m.clone());
        }
        let model =
            Arc::new(Mutex::new(LlmModel::load_padded(path, &name, self.llm_weights, self.llm_padding)?));
        loaded.insert(name, model.clone());
        Ok(model)
    }
}
