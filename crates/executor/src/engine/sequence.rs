//! One request inside the engine: its cache, where its prompt stands, its sampler and its text.

use std::sync::atomic::Ordering;
use std::time::Instant;

use candle_core::Tensor;
use candle_transformers::generation::LogitsProcessor;
use tokenizers::Tokenizer;

use super::{Event, Request};
use crate::AttemptError;
use crate::llama::SeqCache;
use crate::llm::Generation;

pub(super) struct Sequence {
    pub(super) req: Request,
    pub(super) cache: SeqCache,
    /// Prompt tokens already in the cache.
    pub(super) fed: usize,
    /// The token sampled last, to be fed in the next step.
    pub(super) next: Option<u32>,
    /// KV positions reserved for this sequence (prompt + max_tokens).
    pub(super) reserved: usize,
    sampler: LogitsProcessor,
    out: Vec<u32>,
    text: String,
    /// Tokens before `shown` have been turned into `text`.
    shown: usize,
}

/// Why a sequence left the engine.
pub(super) enum Finish {
    Done(&'static str),
    Failed(AttemptError),
}

impl Sequence {
    pub(super) fn new(req: Request, cache: SeqCache, fed: usize) -> Self {
        let temperature = req.params.temperature.filter(|t| *t > 0.0);
        let sampler = LogitsProcessor::new(req.params.seed, temperature, None);
        let reserved = req.prompt.len() + req.params.max_tokens;
        Self {
            req,
            cache,
            fed,
            next: None,
            reserved,
            sampler,
            out: Vec::new(),
            text: String::new(),
            shown: 0,
        }
    }

    pub(super) fn prefilling(&self) -> bool {
        self.fed < self.req.prompt.len()
    }

    /// Cancelled or past its deadline: the error it ends with.
    pub(super) fn stopped(&self, now: Instant) -> Option<AttemptError> {
        if self.req.cancel.load(Ordering::SeqCst) {
            return Some(AttemptError::transient(format!("cancelled after {} tokens", self.out.len())));
        }
        match self.req.params.deadline {
            Some(d) if now >= d => {
                Some(AttemptError::transient(format!("deadline passed after {} tokens", self.out.len())))
            }
            _ => None,
        }
    }

    /// Sample the next token from `logits` (`[vocab]`) and take it: stream its text, and say
    /// whether the sequence ends.
    pub(super) fn take(&mut self, logits: &Tensor, tokenizer: &Tokenizer, eos: &[u32]) -> Option<Finish> {
        match self.sample(logits) {
            Ok(token) => self.accept(token, tokenizer, eos),
            Err(e) => Some(Finish::Failed(AttemptError::transient(format!("inference failed: {e}")))),
        }
    }

    fn sample(&mut self, logits: &Tensor) -> candle_core::Result<u32> {
        let p = &self.req.params;
        let logits = if p.repeat_penalty != 1.0 && !self.out.is_empty() {
            let recent = &self.out[self.out.len().saturating_sub(p.repeat_last_n)..];
            candle_transformers::utils::apply_repeat_penalty(logits, p.repeat_penalty, recent)?
        } else {
            logits.clone()
        };
        self.sampler.sample(&logits)
    }

    fn accept(&mut self, token: u32, tokenizer: &Tokenizer, eos: &[u32]) -> Option<Finish> {
        if eos.contains(&token) {
            return Some(Finish::Done("stop"));
        }
        self.out.push(token);
        let delta = match self.pending(tokenizer, false) {
            Ok(d) => d,
            Err(e) => return Some(Finish::Failed(e)),
        };
        self.text.push_str(&delta);
        self.emit(delta);
        if let Some(cut) = self.req.params.stop.iter().filter_map(|s| self.text.find(s.as_str())).min() {
            self.text.truncate(cut);
            self.shown = self.out.len(); // nothing after a stop sequence is shown
            return Some(Finish::Done("stop"));
        }
        if self.out.len() >= self.req.params.max_tokens {
            return Some(Finish::Done("length"));
        }
        self.next = Some(token);
        None
    }

    fn emit(&self, delta: String) {
        if !delta.is_empty() {
            let _ = self.req.events.send(Event::Token { count: self.out.len() as u32, delta });
        }
    }

    /// The text of `out[shown..]`, advancing `shown`, unless it ends inside a UTF-8 character
    /// split across tokens (byte-level BPE), which waits for the next token unless `flush`.
    fn pending(&mut self, tokenizer: &Tokenizer, flush: bool) -> Result<String, AttemptError> {
        if self.shown == self.out.len() {
            return Ok(String::new());
        }
        let text = tokenizer
            .decode(&self.out[self.shown..], true)
            .map_err(|e| AttemptError::transient(format!("decode failed: {e}")))?;
        if text.ends_with('\u{FFFD}') && !flush {
            return Ok(String::new());
        }
        self.shown = self.out.len();
        Ok(text)
    }

    /// Report the end to the requester.
    pub(super) fn finish(mut self, how: Finish, tokenizer: &Tokenizer) {
        let result = match how {
            Finish::Failed(e) => Err(e),
            Finish::Done(reason) => match self.pending(tokenizer, true) {
                Err(e) => Err(e),
                Ok(delta) => {
                    self.text.push_str(&delta);
                    self.emit(delta);
                    Ok(Generation {
                        text: self.text.trim().to_string(),
                        prompt_tokens: self.req.prompt.len() as u32,
                        completion_tokens: self.out.len() as u32,
                        finish_reason: reason,
                    })
                }
            },
        };
        let _ = self.req.events.send(Event::Done(result));
    }
}
