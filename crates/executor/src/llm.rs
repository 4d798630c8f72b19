//! `llm_inference` on the CPU with candle: a quantized Llama-family GGUF (default SmolLM2-135M-
//! Instruct), its tokenizer rebuilt from the GGUF metadata (byte-level BPE, control tokens
//! registered as special), the ChatML template, greedy decoding by default (seeded sampling when a
//! temperature is given), `max_tokens` and stop sequences, and cancellation between tokens.

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};

use candle_core::quantized::gguf_file;
use candle_core::{Device, Tensor};
use candle_transformers::generation::LogitsProcessor;
use candle_transformers::models::quantized_llama::ModelWeights;
use tokenizers::models::bpe::BPE;
use tokenizers::pre_tokenizers::byte_level::ByteLevel;
use tokenizers::{AddedToken, Tokenizer};

use crate::AttemptError;

/// A loaded model, kept warm between attempts.
pub struct LlmModel {
    pub name: String,
    weights: ModelWeights,
    tokenizer: Tokenizer,
    eos: Vec<u32>,
    context: usize,
    device: Device,
}

impl std::fmt::Debug for LlmModel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LlmModel").field("name", &self.name).field("context", &self.context).finish()
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
    /// Load a GGUF file.
    pub fn load(path: &Path, name: &str) -> Result<Self, AttemptError> {
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
        let weights = ModelWeights::from_gguf(content, &mut file, &device).map_err(|e| load_err(path, e))?;
        Ok(Self { name: name.to_string(), weights, tokenizer, eos, context, device })
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

    /// Generate a reply. `on_token(tokens_so_far, delta)` streams progress; `cancel` stops between
    /// tokens.
    pub fn generate(
        &mut self,
        prompt: &str,
        params: &GenParams,
        cancel: &AtomicBool,
        on_token: &mut dyn FnMut(u32, &str),
    ) -> Result<Generation, AttemptError> {
        let infer = |e: candle_core::Error| AttemptError::transient(format!("inference failed: {e}"));
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
        self.weights.clear_kv_cache();
        let temperature = params.temperature.filter(|t| *t > 0.0);
        let mut sampler = LogitsProcessor::new(params.seed, temperature, None);
        let mut out_ids: Vec<u32> = Vec::new();
        let mut text = String::new();
        let mut finish = "length";
        let input =
            Tensor::new(prompt_ids.as_slice(), &self.device).and_then(|t| t.unsqueeze(0)).map_err(infer)?;
        let mut logits = self.weights.forward(&input, 0).and_then(|l| l.squeeze(0)).map_err(infer)?;
        for step in 0..params.max_tokens {
            if cancel.load(Ordering::SeqCst) {
                return Err(AttemptError::transient(format!("cancelled after {step} tokens")));
            }
            let next = sampler.sample(&logits).map_err(infer)?;
            if self.eos.contains(&next) {
                finish = "stop";
                break;
            }
            out_ids.push(next);
            let decoded = self
                .tokenizer
                .decode(&out_ids, true)
                .map_err(|e| AttemptError::transient(format!("decode failed: {e}")))?;
            let delta = decoded.get(text.len()..).unwrap_or("").to_string();
            text = decoded;
            on_token(out_ids.len() as u32, &delta);
            if let Some(cut) = params.stop.iter().filter_map(|s| text.find(s.as_str())).min() {
                text.truncate(cut);
                finish = "stop";
                break;
            }
            let input = Tensor::new(&[next], &self.device).and_then(|t| t.unsqueeze(0)).map_err(infer)?;
            logits = self
                .weights
                .forward(&input, prompt_ids.len() + step)
                .and_then(|l| l.squeeze(0))
                .map_err(infer)?;
        }
        Ok(Generation {
            text: text.trim().to_string(),
            prompt_tokens: prompt_ids.len() as u32,
            completion_tokens: out_ids.len() as u32,
            finish_reason: finish,
        })
    }
}
