//! `llm_inference` on the CPU with candle: a quantized Llama-family GGUF (default SmolLM2-135M-
//! Instruct), its tokenizer rebuilt from the GGUF metadata (byte-level BPE, control tokens
//! registered as special), the ChatML template, greedy decoding by default (seeded sampling when a
//! temperature is given), `max_tokens` and stop sequences, and cancellation between tokens.
//!
//! The weights are held as the file stores them by default (Q4_1 and Q8_0 multiply through
//! `splai-kernels`); they can be converted at load ([`Weights`]) for types only candle's kernels
//! multiply. `docs/benchmarks.md` has the measurements behind the default.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use candle_core::Device;
use candle_core::quantized::gguf_file;
use tokenizers::models::bpe::BPE;
use tokenizers::pre_tokenizers::byte_level::ByteLevel;
use tokenizers::{AddedToken, Tokenizer};

use crate::AttemptError;
use crate::engine::{Engine, EngineConfig, Event, Request};
use crate::llama::{Llama, Padding, target_for};
pub use crate::weights::Weights;

/// A loaded model, kept warm between attempts: its tokenizer, and the engine that owns its
/// weights and runs every generation for it ([`crate::engine`]).
pub struct LlmModel {
    pub name: String,
    engine: Engine,
    pub(crate) tokenizer: Arc<Tokenizer>,
    context: usize,
}

impl std::fmt::Debug for LlmModel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LlmModel")
            .field("name", &self.name)
            .field("context", &self.context)
            .field("capacity", &self.engine.capacity())
            .finish()
    }
}

/// Generation parameters.
#[derive(Debug, Clone, PartialEq)]
pub struct GenParams {
    pub max_tokens: usize,
    /// 0 or absent: greedy.
    pub temperature: Option<f64>,
    pub seed: u64,
    pub stop: Vec<String>,
    /// Divides the logits of tokens generated in the last `repeat_last_n` (1.0: off). Small models
    /// decoding greedily fall into loops without it; 1.1 over 64 tokens is llama.cpp's default.
    pub repeat_penalty: f32,
    pub repeat_last_n: usize,
    /// The generation fails once this passes (checked between steps).
    pub deadline: Option<std::time::Instant>,
    /// A structured output: the text is a JSON value of this shape (stop sequences do not
    /// apply; out of tokens, the value is closed).
    pub response: Option<Arc<splai_ingest::structured::Shape>>,
}

impl Default for GenParams {
    fn default() -> Self {
        Self {
            max_tokens: 128,
            temperature: None,
            seed: 0,
            stop: vec![],
            repeat_penalty: 1.1,
            repeat_last_n: 64,
            deadline: None,
            response: None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Generation {
    pub text: String,
    pub prompt_tokens: u32,
    pub completion_tokens: u32,
    pub finish_reason: &'static str,
}

fn load_err(path: &Path, e: impl std::fmt::Display) -> AttemptError {
    AttemptError::fatal(format!("cannot load model {}: {e}", path.display()))
}

impl LlmModel {
    /// Load a GGUF file with the default [`Weights`].
    pub fn load(path: &Path, name: &str) -> Result<Self, AttemptError> {
        Self::load_with(path, name, Weights::default())
    }

    /// Load a GGUF file, converting its weights as `weights` says.
    pub fn load_with(path: &Path, name: &str, weights: Weights) -> Result<Self, AttemptError> {
        Self::load_padded(path, name, weights, Padding::Auto)
    }

    /// Load a GGUF file, converting its weights as `weights` says and padding them as `padding`
    /// says.
    pub fn load_padded(
        path: &Path,
        name: &str,
        weights: Weights,
        padding: Padding,
    ) -> Result<Self, AttemptError> {
        Self::load_engine(path, name, weights, padding, EngineConfig::default())
    }

    /// Load a GGUF file as [`LlmModel::load_padded`] does, its engine sized by `engine`.
    pub fn load_engine(
        path: &Path,
        name: &str,
        weights: Weights,
        padding: Padding,
        engine: EngineConfig,
    ) -> Result<Self, AttemptError> {
        let mut file = std::fs::File::open(path).map_err(|e| load_err(path, e))?;
        let content = gguf_file::Content::read(&mut file).map_err(|e| load_err(path, e))?;
        let md = |k: &str| {
            content.metadata.get(k).ok_or_else(|| load_err(path, format!("metadata `{k}` missing")))
        };
        let tokens: Vec<String> = md("tokenizer.ggml.tokens")?
            .to_vec()
            .map_err(|e| load_err(path, e))?
            .iter()
            .map(|t| t.to_string().cloned().unwrap_or_default())
            .collect();
        let types: Vec<i32> = match content.metadata.get("tokenizer.ggml.token_type") {
            Some(v) => {
                v.to_vec().map_err(|e| load_err(path, e))?.iter().map(|t| t.to_i32().unwrap_or(1)).collect()
            }
            None => vec![1; tokens.len()],
        };
        let merges: Vec<(String, String)> = md("tokenizer.ggml.merges")?
            .to_vec()
            .map_err(|e| load_err(path, e))?
            .iter()
            .filter_map(|m| m.to_string().ok()?.split_once(' ').map(|(a, b)| (a.to_string(), b.to_string())))
            .collect();
        let vocab: tokenizers::models::bpe::Vocab =
            tokens.iter().enumerate().map(|(i, t)| (t.clone(), i as u32)).collect();
        let bpe = BPE::builder().vocab_and_merges(vocab, merges).build().map_err(|e| load_err(path, e))?;
        let mut tokenizer = Tokenizer::new(bpe);
        tokenizer.with_pre_tokenizer(Some(ByteLevel::new(false, true, true)));
        tokenizer.with_decoder(Some(ByteLevel::default()));
        // Control tokens (type 3) are special: matched whole in text, never split by BPE.
        let special: Vec<AddedToken> = tokens
            .iter()
            .zip(&types)
            .filter(|(_, t)| **t == 3)
            .map(|(tok, _)| AddedToken::from(tok.clone(), true))
            .collect();
        tokenizer.add_special_tokens(special).map_err(|e| load_err(path, e))?;
        let mut eos = vec![md("tokenizer.ggml.eos_token_id")?.to_u32().map_err(|e| load_err(path, e))?];
        if let Some(id) = tokenizer.token_to_id("<|im_end|>") {
            eos.push(id);
        }
        let context =
            content.metadata.get("llama.context_length").and_then(|v| v.to_u32().ok()).unwrap_or(2048)
                as usize;
        let device = Device::Cpu;
        let weights = Llama::load(&content, &mut file, &device, weights, padding.applies(weights), context)
            .map_err(|e| load_err(path, e))?;
        let tokenizer = Arc::new(tokenizer);
        let bytes = Arc::new(crate::engine::token_bytes(&tokens, &types));
        let engine = Engine::start(name, weights, tokenizer.clone(), eos, bytes, engine)?;
        Ok(Self { name: name.to_string(), engine, tokenizer, context })
    }

    /// The engine (its capacity and counters).
    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// How many weight tensors of each type a GGUF file holds after conversion by `weights`, for
    /// reports (`splai bench infer`).
    pub fn weight_types(
        path: &Path,
        weights: Weights,
        padding: Padding,
    ) -> Result<Vec<(String, usize)>, AttemptError> {
        let pad = padding.applies(weights);
        let mut file = std::fs::File::open(path).map_err(|e| load_err(path, e))?;
        let content = gguf_file::Content::read(&mut file).map_err(|e| load_err(path, e))?;
        let mut counts = std::collections::BTreeMap::new();
        for info in content.tensor_infos.values() {
            let dims = info.shape.dims();
            let dtype = match (weights, dims) {
                (Weights::Convert(target), [.., cols]) if dims.len() >= 2 => {
                    target_for(info.ggml_dtype, crate::llama::held(*cols, pad), target)
                }
                _ => info.ggml_dtype,
            };
            *counts.entry(crate::weights::dtype_name(dtype).to_string()).or_insert(0) += 1;
        }
        Ok(counts.into_iter().collect())
    }

    /// The ChatML prompt for `messages` (role, content), ending with the assistant's turn.
    pub fn chat_prompt(messages: &[(String, String)]) -> String {
        let mut p = String::new();
        for (role, content) in messages {
            p.push_str(&format!("<|im_start|>{role}\n{content}<|im_end|>\n"));
        }
        p.push_str("<|im_start|>assistant\n");
        p
    }

    /// Generate a reply as one sequence of the model's engine, alongside whatever else it runs.
    /// `on_token(tokens_so_far, delta)` streams progress; `cancel` stops it between steps.
    pub fn generate(
        &self,
        prompt: &str,
        params: &GenParams,
        cancel: &Arc<AtomicBool>,
        on_token: &mut dyn FnMut(u32, &str),
    ) -> Result<Generation, AttemptError> {
        let encoding = self
            .tokenizer
            .encode(prompt, false)
            .map_err(|e| AttemptError::fatal(format!("cannot tokenize the prompt: {e}")))?;
        let prompt_ids = encoding.get_ids().to_vec();
        if prompt_ids.is_empty() {
            return Err(AttemptError::fatal("the prompt is empty"));
        }
        if prompt_ids.len() + params.max_tokens > self.context {
            return Err(AttemptError::fatal(format!(
                "prompt of {} tokens plus max_tokens {} exceeds the context of {} tokens of model {}",
                prompt_ids.len(),
                params.max_tokens,
                self.context,
                self.name
            )));
        }
        let (events, heard) = std::sync::mpsc::channel();
        self.engine.submit(Request {
            prompt: prompt_ids,
            params: params.clone(),
            cancel: cancel.clone(),
            events,
        })?;
        for event in heard {
            match event {
                Event::Token { count, delta } => on_token(count, &delta),
                Event::Done(result) => return result,
            }
        }
        Err(AttemptError::transient("the inference engine stopped mid-generation"))
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use candle_core::quantized::GgmlDType;

    #[test]
    fn rows_that_do_not_fit_the_blocks_fall_back() {
        assert_eq!(target_for(GgmlDType::Q4_1, 1536, GgmlDType::Q4K), GgmlDType::Q4K);
        assert_eq!(target_for(GgmlDType::Q4_1, 576, GgmlDType::Q4K), GgmlDType::Q8_0);
        assert_eq!(target_for(GgmlDType::F32, 40, GgmlDType::Q8_0), GgmlDType::F32);
        assert_eq!(target_for(GgmlDType::Q4_1, 576, GgmlDType::F16), GgmlDType::F16);
    }

    pub(crate) use crate::test_models::smollm2;

    /// Every conversion still answers correctly (greedy). Needs `./models` like `tests/llm.rs`.
    #[test]
    fn every_weights_format_answers_paris() {
        let Some(path) = smollm2() else { return };
        let prompt = LlmModel::chat_prompt(&[("user".into(), "What is the capital of France?".into())]);
        let params = GenParams { max_tokens: 16, ..GenParams::default() };
        for name in ["as-is", "q8_0", "q4_0", "q4k", "q6k", "f16"] {
            let weights: Weights = name.parse().unwrap();
            let model = LlmModel::load_with(&path, "smollm2", weights).unwrap();
            let mut streamed = String::new();
            let g =
                model.generate(&prompt, &params, &Arc::default(), &mut |_, d| streamed.push_str(d)).unwrap();
            assert!(g.text.contains("Paris"), "{name}: {g:?}");
            assert_eq!(streamed.trim(), g.text, "{name}: streamed deltas add up to the text");
        }
    }
}
