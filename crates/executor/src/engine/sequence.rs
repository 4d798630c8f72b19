//! One request inside the engine: its cache, where its prompt stands, its sampler and its text.

use std::sync::atomic::Ordering;
use std::time::Instant;

use candle_core::Tensor;
use candle_transformers::generation::LogitsProcessor;
use tokenizers::Tokenizer;

use splai_ingest::structured::Machine;

use super::constrain::{self, TokenBytes};
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
    sampler: LogitsProcessor,
    /// The structured-output automaton, when the request asked for a response format.
    machine: Option<Machine>,
    /// Time spent choosing tokens under the automaton (ns).
    pub(super) constrained_nanos: u64,
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
        let machine = req.params.response.clone().map(Machine::new);
        Self {
            req,
            cache,
            fed,
            next: None,
            sampler,
            machine,
            constrained_nanos: 0,
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
    pub(super) fn take(
        &mut self,
        logits: &Tensor,
        tokenizer: &Tokenizer,
        eos: &[u32],
        bytes: &TokenBytes,
    ) -> Option<Finish> {
        match self.sample(logits, bytes) {
            Ok(Some(token)) => self.accept(token, tokenizer, eos, bytes),
            // No token fits the response format (a vocabulary without the bytes it needs): the
            // machine's completion closes the value.
            Ok(None) => Some(Finish::Done("length")),
            Err(e) => Some(Finish::Failed(AttemptError::transient(format!("inference failed: {e}")))),
        }
    }

    fn sample(&mut self, logits: &Tensor, bytes: &TokenBytes) -> candle_core::Result<Option<u32>> {
        let p = &self.req.params;
        let logits = if p.repeat_penalty != 1.0 && !self.out.is_empty() {
            let recent = &self.out[self.out.len().saturating_sub(p.repeat_last_n)..];
            candle_transformers::utils::apply_repeat_penalty(logits, p.repeat_penalty, recent)?
        } else {
            logits.clone()
        };
        match &self.machine {
            None => self.sampler.sample(&logits).map(Some),
            Some(machine) => {
                let greedy = p.temperature.is_none_or(|t| t <= 0.0);
                let begun = Instant::now();
                let picked = constrain::pick(&logits, machine, bytes, (!greedy).then_some(&mut self.sampler));
                self.constrained_nanos += begun.elapsed().as_nanos() as u64;
                picked
            }
        }
    }

    fn accept(
        &mut self,
        token: u32,
        tokenizer: &Tokenizer,
        eos: &[u32],
        bytes: &TokenBytes,
    ) -> Option<Finish> {
        if let Some(machine) = &mut self.machine {
            let fed = bytes.get(token as usize).and_then(Option::as_ref).is_some_and(|b| machine.feed_all(b));
            if !fed {
                return Some(Finish::Failed(AttemptError::transient(
                    "a token outside the response format was picked",
                )));
            }
        } else if eos.contains(&token) {
            return Some(Finish::Done("stop"));
        }
        self.out.push(token);
        let delta = match self.pending(tokenizer, false) {
            Ok(d) => d,
            Err(e) => return Some(Finish::Failed(e)),
        };
        self.text.push_str(&delta);
        self.emit(delta);
        if let Some(machine) = &self.machine {
            if machine.is_complete() {
                return Some(Finish::Done("stop")); // the value is whole: nothing may follow
            }
        } else if let Some(cut) = self.req.params.stop.iter().filter_map(|s| self.text.find(s.as_str())).min()
        {
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
                    // Out of tokens inside a structured value: close it, so it still parses.
                    if let Some(machine) = &self.machine {
                        let tail = String::from_utf8_lossy(&machine.completion()).into_owned();
                        self.text.push_str(&tail);
                        self.emit(tail);
                    }
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
