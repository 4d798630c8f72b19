//! `embedding` on the CPU with candle BERT (default all-MiniLM-L6-v2): batched, mean-pooled over
//! the attention mask and L2-normalised, so cosine similarity is a dot product.

use std::path::Path;

use candle_core::{DType, Device, Tensor};
use candle_nn::VarBuilder;
use candle_transformers::models::bert::{BertModel, Config};
use tokenizers::{PaddingParams, Tokenizer, TruncationParams};

use crate::AttemptError;

/// Longest input, in tokens; longer texts are truncated.
const MAX_TOKENS: usize = 256;

pub struct Embedder {
    pub name: String,
    model: BertModel,
    tokenizer: Tokenizer,
    device: Device,
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
        let config: Config =
            serde_json::from_slice(&std::fs::read(dir.join("config.json")).map_err(|e| load_err(dir, e))?)
                .map_err(|e| load_err(dir, e))?;
        let mut tokenizer = Tokenizer::from_file(dir.join("tokenizer.json")).map_err(|e| load_err(dir, e))?;
        tokenizer.with_padding(Some(PaddingParams::default()));
        tokenizer
            .with_truncation(Some(TruncationParams { max_length: MAX_TOKENS, ..TruncationParams::default() }))
            .map_err(|e| load_err(dir, e))?;
        let device = Device::Cpu;
        let weights = std::fs::read(dir.join("model.safetensors")).map_err(|e| load_err(dir, e))?;
        let vb = VarBuilder::from_buffered_safetensors(weights, DType::F32, &device)
            .map_err(|e| load_err(dir, e))?;
        let model = BertModel::load(vb, &config).map_err(|e| load_err(dir, e))?;
        Ok(Self { name: name.to_string(), model, tokenizer, device })
    }

    /// One unit vector per text.
    pub fn embed(&self, texts: &[String]) -> Result<Vec<Vec<f32>>, AttemptError> {
        if texts.is_empty() {
            return Ok(Vec::new());
        }
        let fail = |e: candle_core::Error| AttemptError::transient(format!("embedding failed: {e}"));
        let encodings = self
            .tokenizer
            .encode_batch(texts.to_vec(), true)
            .map_err(|e| AttemptError::fatal(format!("cannot tokenize the texts: {e}")))?;
        let ids: Vec<Tensor> = encodings
            .iter()
            .map(|e| Tensor::new(e.get_ids(), &self.device))
            .collect::<Result<_, _>>()
            .map_err(fail)?;
        let masks: Vec<Tensor> = encodings
            .iter()
            .map(|e| Tensor::new(e.get_attention_mask(), &self.device))
            .collect::<Result<_, _>>()
            .map_err(fail)?;
        let ids = Tensor::stack(&ids, 0).map_err(fail)?;
        let mask = Tensor::stack(&masks, 0).map_err(fail)?;
        let types = ids.zeros_like().map_err(fail)?;
        let hidden = self.model.forward(&ids, &types, Some(&mask)).map_err(fail)?;
        // Mean over real tokens only.
        let mask = mask.to_dtype(DType::F32).and_then(|m| m.unsqueeze(2)).map_err(fail)?;
        let summed = hidden.broadcast_mul(&mask).and_then(|h| h.sum(1)).map_err(fail)?;
        let counts = mask.sum(1).map_err(fail)?;
        let mean = summed.broadcast_div(&counts).map_err(fail)?;
        let norm = mean.sqr().and_then(|s| s.sum_keepdim(1)).and_then(|s| s.sqrt()).map_err(fail)?;
        let unit = mean.broadcast_div(&norm).map_err(fail)?;
        unit.to_vec2::<f32>().map_err(fail)
    }
}
