//! `embedding` on the CPU (default all-MiniLM-L6-v2) through SPLAI's own BERT forward pass
//! ([`bert`]): the texts of a batch packed without padding, mean-pooled over their tokens and
//! L2-normalised, so cosine similarity is a dot product.

mod bert;
mod layers;

use std::path::Path;

use tokenizers::{Tokenizer, TruncationParams};

use crate::AttemptError;

/// Longest input, in tokens; longer texts are truncated.
const MAX_TOKENS: usize = 256;

/// Tokens one forward pass takes at most (bounds the activations' memory whatever the number of
/// texts in a task: ~40 MB for MiniLM's widest buffer).
const TOKENS_PER_PASS: usize = 8192;

pub struct Embedder {
    pub name: String,
    model: bert::Bert,
    tokenizer: Tokenizer,
}

impl std::fmt::Debug for Embedder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Embedder").field("name", &self.name).finish()
    }
}

fn load_err(dir: &Path, e: impl std::fmt::Display) -> AttemptError {
    AttemptError::fatal(format!("cannot load embedding model {}: {e}", dir.display()))
}

impl Embedder {
    /// Load `config.json`, `tokenizer.json` and `model.safetensors` from `dir`.
    pub fn load(dir: &Path, name: &str) -> Result<Self, AttemptError> {
        let model = bert::Bert::load(dir).map_err(|e| {
            AttemptError::fatal_caused(format_args!("cannot load embedding model {}", dir.display()), &e)
        })?;
        let mut tokenizer = Tokenizer::from_file(dir.join("tokenizer.json")).map_err(|e| load_err(dir, e))?;
        // Packed batches need no padding; a tokenizer.json that asks for it is overridden.
        tokenizer.with_padding(None);
        let max_length = MAX_TOKENS.min(model.max_positions());
        tokenizer
            .with_truncation(Some(TruncationParams { max_length, ..TruncationParams::default() }))
            .map_err(|e| load_err(dir, e))?;
        Ok(Self { name: name.to_string(), model, tokenizer })
    }

    /// One unit vector per text, computed on the current rayon pool.
    pub fn embed(&self, texts: &[String]) -> Result<Vec<Vec<f32>>, AttemptError> {
        if texts.is_empty() {
            return Ok(Vec::new());
        }
        let encodings = self
            .tokenizer
            .encode_batch(texts.to_vec(), true)
            .map_err(|e| AttemptError::fatal(format!("cannot tokenize the texts: {e}")))?;
        let ids: Vec<&[u32]> = encodings.iter().map(|e| e.get_ids()).collect();
        let threads = rayon::current_num_threads();
        let mut vectors = Vec::with_capacity(texts.len());
        let mut start = 0;
        while start < ids.len() {
            let mut end = start + 1;
            let mut tokens = ids[start].len();
            while end < ids.len() && tokens + ids[end].len() <= TOKENS_PER_PASS {
                tokens += ids[end].len();
                end += 1;
            }
            let batch = &ids[start..end];
            let width = self.model.width();
            self.model
                .forward(batch, threads, |hidden| vectors.extend(mean_unit_vectors(hidden, batch, width)))
                .map_err(|e| AttemptError::fatal_caused("embedding failed", &e))?;
            start = end;
        }
        Ok(vectors)
    }
}

/// Each sequence's token vectors averaged, then scaled to length 1.
fn mean_unit_vectors<'a>(
    hidden: &'a [f32],
    sequences: &'a [&[u32]],
    width: usize,
) -> impl Iterator<Item = Vec<f32>> + 'a {
    let mut rows = hidden.chunks_exact(width);
    sequences.iter().map(move |seq| {
        let mut mean = vec![0f32; width];
        for row in rows.by_ref().take(seq.len()) {
            mean.iter_mut().zip(row).for_each(|(m, v)| *m += v);
        }
        let norm = mean.iter().map(|v| v * v).sum::<f32>().sqrt();
        // An empty text (no tokens even for special ones) gives the zero vector, not NaNs.
        let scale = if norm > 0.0 { 1.0 / norm } else { 0.0 };
        mean.iter_mut().for_each(|v| *v *= scale);
        mean
    })
}

#[cfg(test)]
mod tests;
