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
use sha2::Digest;
use splai_events::TaskKind;

use crate::embed::Embedder;
use crate::engine::EngineConfig;
use crate::llama::Padding;
use crate::llm::{LlmModel, Weights};

#[derive(Debug, Default)]
pub struct Models {
    llm_files: BTreeMap<String, PathBuf>,
    embed_dirs: BTreeMap<String, PathBuf>,
    llm_weights: Weights,
    llm_padding: Padding,
    engine: EngineConfig,
    loaded: Cells<Arc<LlmModel>>,
    embedders: Cells<Arc<Embedder>>,
    embedding_turns: Turns,
    /// Weights file → its sha256 (hashed once, on first need).
    weight_hashes: Mutex<BTreeMap<PathBuf, String>>,
}

/// At most one embedding batch per core at once: the executor's slots are sized for the LLM
/// engine's sequences, and dozens of embedding attempts let in by them would spin against each
/// other on the same cores.
#[derive(Debug)]
struct Turns {
    free: Mutex<usize>,
    freed: std::sync::Condvar,
}

impl Default for Turns {
    fn default() -> Self {
        Self::new(std::thread::available_parallelism().map_or(1, |n| n.get()))
    }
}

impl Turns {
    fn new(turns: usize) -> Self {
        Self { free: Mutex::new(turns), freed: std::sync::Condvar::new() }
    }

    fn take(&self) -> Turn<'_> {
        let mut free = self.free.lock().expect("turns lock");
        while *free == 0 {
            free = self.freed.wait(free).expect("turns lock");
        }
        *free -= 1;
        Turn(self)
    }
}

/// One embedding batch's turn; the next waiting one goes when it drops.
#[derive(Debug)]
pub struct Turn<'a>(&'a Turns);

impl Drop for Turn<'_> {
    fn drop(&mut self) {
        *self.0.free.lock().expect("turns lock") += 1;
        self.0.freed.notify_one();
    }
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

    /// Size the engine of each LLM as `engine` says (default [`EngineConfig::default`]).
    pub fn with_engine(mut self, engine: EngineConfig) -> Self {
        self.engine = engine;
        self
    }

    /// Per language model here, the sequences its engine decodes at once.
    pub fn engines(&self) -> std::collections::BTreeMap<String, u32> {
        self.llm_files.keys().map(|m| (m.clone(), self.engine.max_batch as u32)).collect()
    }

    /// Model names to advertise.
    pub fn names(&self) -> Vec<String> {
        self.llm_files.keys().chain(self.embed_dirs.keys()).cloned().collect()
    }

    /// The language models loaded so far (their engines' counters).
    pub fn loaded_llms(&self) -> Vec<Arc<LlmModel>> {
        let map = self.loaded.0.lock().expect("models lock");
        map.values().filter_map(|cell| cell.get().cloned()).collect()
    }

    /// Models loaded in memory.
    pub fn warm(&self) -> Vec<String> {
        let mut warm = self.loaded.loaded();
        warm.extend(self.embedders.loaded());
        warm
    }

    /// Wait for a turn to run an embedding batch (one per core at once).
    pub fn embedding_turn(&self) -> Turn<'_> {
        self.embedding_turns.take()
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

    /// What an output of `kind` on model `name` (the default when `None`) depends on besides
    /// its inputs: `name:sha256-of-weights` (plus how LLM weights are held), for the cache key.
    /// `None` for kinds without a model. Hashing a file reads it once per process
    /// ([`Self::identity_needs_reading`] says when).
    pub fn identity(
        &self,
        kind: TaskKind,
        name: Option<&str>,
    ) -> Result<Option<(String, String)>, AttemptError> {
        let Some((name, file, held)) = self.weights_file(kind, name) else { return Ok(None) };
        let mut hashes = self.weight_hashes.lock().expect("hashes lock");
        let sha = match hashes.get(&file) {
            Some(sha) => sha.clone(),
            None => {
                let mut hasher = sha2::Sha256::new();
                let mut f = std::fs::File::open(&file)
                    .map_err(|e| AttemptError::transient(format!("cannot read {}: {e}", file.display())))?;
                std::io::copy(&mut f, &mut hasher)
                    .map_err(|e| AttemptError::transient(format!("cannot read {}: {e}", file.display())))?;
                let sha = hex::encode(sha2::Digest::finalize(hasher));
                hashes.insert(file, sha.clone());
                sha
            }
        };
        Ok(Some((format!("{name}:{sha}:{held}"), sha)))
    }

    /// Whether [`Self::identity`] would read a weights file (its hash is not known yet): only
    /// then is it worth a blocking thread.
    pub fn identity_needs_reading(&self, kind: TaskKind, name: Option<&str>) -> bool {
        self.weights_file(kind, name)
            .is_some_and(|(_, file, _)| !self.weight_hashes.lock().expect("hashes lock").contains_key(&file))
    }

    /// The model's name, its weights file and how its weights are held, for kinds with a model.
    fn weights_file(
        &self,
        kind: TaskKind,
        name: Option<&str>,
    ) -> Option<(String, std::path::PathBuf, String)> {
        let (files, held) = match kind {
            TaskKind::LlmInference => {
                (&self.llm_files, format!("{:?}/{:?}", self.llm_weights, self.llm_padding))
            }
            TaskKind::Embedding => (&self.embed_dirs, String::new()),
            _ => return None,
        };
        let name = name.map(str::to_string).or_else(|| files.keys().next().cloned())?;
        let path = files.get(&name)?;
        let file = if kind == TaskKind::Embedding { path.join("model.safetensors") } else { path.clone() };
        Some((name, file, held))
    }

    /// The model `name` (or the first LLM when `None`), loading it on first use.
    pub fn llm(&self, name: Option<&str>) -> Result<Arc<LlmModel>, AttemptError> {
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
            Ok(Arc::new(LlmModel::load_engine(path, &name, self.llm_weights, self.llm_padding, self.engine)?))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::{Cells, Turns};
    use std::sync::{Arc, mpsc};

    /// A batch waits for a turn while every turn is taken, and gets one when a turn ends.
    #[test]
    fn embedding_turns_bound_batches_at_once() {
        let turns = Turns::new(1);
        let first = turns.take();
        let (got, got_rx) = mpsc::channel();
        std::thread::scope(|s| {
            s.spawn(|| {
                let _second = turns.take();
                got.send(()).unwrap();
            });
            assert!(got_rx.recv_timeout(std::time::Duration::from_millis(100)).is_err(), "waits while taken");
            drop(first);
            got_rx.recv_timeout(std::time::Duration::from_secs(10)).expect("a turn once the first ends");
        });
    }

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
