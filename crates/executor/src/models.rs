//! Models found in the model directory, loaded on first use and kept warm.
//!
//! `DIR/<name>/*.gguf` is an LLM named `<name>` (e.g. `smollm2-135m-instruct`). A missing
//! directory or model is not an error at start: the executor simply does not advertise it, and
//! the scheduler never sends it tasks that need it (the policy documented in `docs/design/`).
//!
//! A load takes seconds, so it never holds a lock that anything else waits on: the map of
//! models is locked only to find a model's cell, and the cell lets one thread load while others
//! that need the same model wait for it. [`Models::warm`], which the heartbeat loop calls on the
//! async runtime, never waits for a load (it once did, and a model load stalled every
//! executor's heartbeats until the scheduler declared them lost).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use once_cell::sync::OnceCell;

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
    loaded: Cells<Arc<Mutex<LlmModel>>>,
    embedders: Cells<Arc<Embedder>>,
}

/// A model per name, each loaded at most once, outside the map's lock.
#[derive(Debug)]
struct Cells<T>(Mutex<BTreeMap<String, Arc<OnceCell<T>>>>);

impl<T> Default for Cells<T> {
    fn default() -> Self {
        Self(Mutex::default())
    }
}

impl<T: Clone> Cells<T> {
    /// The model `name`, loaded by `load` unless it is loaded already; concurrent callers for
    /// the same name wait for one load, callers for other names do not wait at all.
    fn get_or_load(
        &self,
        name: &str,
        load: impl FnOnce() -> Result<T, AttemptError>,
    ) -> Result<T, AttemptError> {
        let cell = self.0.lock().expect("models lock").entry(name.to_string()).or_default().clone();
        cell.get_or_try_init(load).cloned()
    }

    /// Names of the models loaded so far (never waits for a load under way).
    fn loaded(&self) -> Vec<String> {
        let map = self.0.lock().expect("models lock");
        map.iter().filter(|(_, cell)| cell.get().is_some()).map(|(name, _)| name.clone()).collect()
    }
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
        let mut warm = self.loaded.loaded();
        warm.extend(self.embedders.loaded());
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
        self.embedders.get_or_load(&name, || Ok(Arc::new(Embedder::load(dir, &name)?)))
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
        self.loaded.get_or_load(&name, || {
            Ok(Arc::new(Mutex::new(LlmModel::load_padded(path, &name, self.llm_weights, self.llm_padding)?)))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::Cells;
    use std::sync::{Arc, mpsc};

    /// The heartbeat's view of warm models answers while a load is under way (a load once held
    /// the lock it needs, and stalled every heartbeat for the seconds a model takes to load).
    #[test]
    fn listing_loaded_models_never_waits_for_a_load() {
        let cells: Arc<Cells<u32>> = Arc::default();
        let (started_tx, started) = mpsc::channel();
        let (release, release_rx) = mpsc::channel::<()>();
        let loader = {
            let cells = cells.clone();
            std::thread::spawn(move || {
                cells.get_or_load("m", || {
                    started_tx.send(()).unwrap();
                    release_rx.recv().unwrap();
                    Ok(7)
                })
            })
        };
        started.recv().unwrap();
        assert!(cells.loaded().is_empty(), "a model under load is not warm yet");
        assert_eq!(cells.get_or_load("other", || Ok(1)).unwrap(), 1, "other models load meanwhile");
        release.send(()).unwrap();
        assert_eq!(loader.join().unwrap().unwrap(), 7);
        assert_eq!(cells.get_or_load("m", || panic!("loaded once")).unwrap(), 7);
        assert_eq!(cells.loaded(), vec!["m".to_string(), "other".to_string()]);
    }
}
