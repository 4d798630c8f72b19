//! Models found in the model directory, loaded on first use and kept warm.
//!
//! `DIR/<name>/*.gguf` is an LLM named `<name>` (e.g. `smollm2-135m-instruct`). A missing
//! directory or model is not an error at start: the executor simply does not advertise it, and
//! the scheduler never sends it tasks that need it (the policy documented in `docs/design/`).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use crate::AttemptError;
use crate::llm::LlmModel;

#[derive(Debug, Default)]
pub struct Models {
    llm_files: BTreeMap<String, PathBuf>,
    loaded: Mutex<BTreeMap<String, Arc<Mutex<LlmModel>>>>,
}

impl Models {
    /// Scan `dir` (absent → no models).
    pub fn discover(dir: &Path) -> Self {
        let mut llm_files = BTreeMap::new();
        for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
            let sub = entry.path();
            let gguf = std::fs::read_dir(&sub)
                .into_iter()
                .flatten()
                .flatten()
                .map(|f| f.path())
                .find(|p| p.extension().and_then(|e| e.to_str()) == Some("gguf"));
            if let (Some(file), Some(name)) = (gguf, sub.file_name().and_then(|n| n.to_str())) {
                llm_files.insert(name.to_string(), file);
            }
        }
        Self { llm_files, loaded: Mutex::default() }
    }

    /// Model names to advertise.
    pub fn names(&self) -> Vec<String> {
        self.llm_files.keys().cloned().collect()
    }

    /// Models loaded in memory.
    pub fn warm(&self) -> Vec<String> {
        self.loaded.lock().expect("models lock").keys().cloned().collect()
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
        let model = Arc::new(Mutex::new(LlmModel::load(path, &name)?));
        loaded.insert(name, model.clone());
        Ok(model)
    }
}
