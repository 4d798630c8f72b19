//! The inference engine of one loaded model (issue 17, ARCHITECTURE §11): every request for the
//! model — concurrent `llm_inference` attempts, OpenAI chat requests — becomes a sequence of one
//! engine, and each step runs one forward pass over all of them ([`Llama::forward_batch`]): the
//! next token of every decoding sequence plus prompt chunks of sequences still prefilling, up to
//! `prefill_chunk` prompt tokens a step, so a long prompt never stalls running decodes. New
//! sequences join between steps, up to `max_batch` at once and within the KV budget: one pool of
//! blocks ([`crate::kv`]) that running sequences and cached prefixes share. A sequence reserves
//! the blocks its prompt and `max_tokens` can fill when it joins, less the blocks of a cached
//! prefix it starts from (held by reference, [`prefix`]), so a running sequence never runs out of
//! memory; one that does not fit waits (cached prefixes nobody holds give way first), one that
//! could never fit is refused. Cancellation and deadlines are checked between steps.
//!
//! The engine owns the model and its inference threads: one thread runs the loop inside a rayon
//! pool of `threads` threads, which the products of every step use.

mod constrain;
mod hot;
mod prefix;
mod sequence;

pub use constrain::token_bytes;

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, mpsc};
use std::time::Instant;

use tokenizers::Tokenizer;

use crate::AttemptError;
use crate::batch::Part;
use crate::kv::{BLOCK, KvPool};
use crate::llama::{Llama, SeqCache};
use crate::llm::{GenParams, Generation};
use prefix::PrefixCache;
use sequence::{Finish, Sequence};

/// Sizes of an engine (config `executor.max_batch`, `prefill_chunk`, `kv_cache_mb`,
/// `prefix_cache_mb`, `engine_threads`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EngineConfig {
    /// Sequences in one step at most.
    pub max_batch: usize,
    /// Prompt tokens one step computes at most (over all prefilling sequences).
    pub prefill_chunk: usize,
    /// KV memory of the engine, running sequences and cached prefixes together (MiB).
    pub kv_cache_mb: usize,
    /// Of that, what cached prompt prefixes may keep (MiB; 0: no prefix caching).
    pub prefix_cache_mb: usize,
    /// Inference threads (0: as many as the process's rayon pool has, which honours
    /// `RAYON_NUM_THREADS`, else one per core).
    pub threads: usize,
}

impl Default for EngineConfig {
    fn default() -> Self {
        Self { max_batch: 32, prefill_chunk: 256, kv_cache_mb: 1024, prefix_cache_mb: 128, threads: 0 }
    }
}

/// One generation request.
#[derive(Debug)]
pub struct Request {
    pub prompt: Vec<u32>,
    pub params: GenParams,
    pub cancel: Arc<AtomicBool>,
    pub events: mpsc::Sender<Event>,
}

/// What a request hears back: text as it is generated, then the end.
#[derive(Debug)]
pub enum Event {
    /// Tokens generated so far and the text they added.
    Token {
        count: u32,
        delta: String,
    },
    Done(Result<Generation, AttemptError>),
}

/// Counters an engine keeps (metrics, tests).
#[derive(Debug, Default)]
pub struct EngineStats {
    pub steps: AtomicU64,
    /// Sum over steps of the sequences in the step (÷ steps = mean batch).
    pub sequences_stepped: AtomicU64,
    /// Most sequences seen in one step.
    pub widest_step: AtomicU64,
    /// Prompt tokens taken from the prefix cache instead of computed.
    pub prefix_tokens_reused: AtomicU64,
    /// Time spent choosing tokens under structured-output automata (ns).
    pub constrained_nanos: AtomicU64,
    /// Sequences running, and requests waiting for room, as of the last step.
    pub active: AtomicU64,
    pub waiting: AtomicU64,
    /// KV blocks held or reserved, as of the last step, and the pool's size.
    pub kv_blocks_taken: AtomicU64,
    pub kv_blocks: AtomicU64,
}

/// The handle: submit requests; dropping it ends the engine once its sequences are done.
#[derive(Debug)]
pub struct Engine {
    tx: mpsc::Sender<Request>,
    capacity: usize,
    stats: Arc<EngineStats>,
}

impl Engine {
    /// Start the engine of `model` on a thread of its own.
    pub fn start(
        name: &str,
        model: Llama,
        tokenizer: Arc<Tokenizer>,
        eos: Vec<u32>,
        bytes: Arc<Vec<Option<Vec<u8>>>>,
        config: EngineConfig,
    ) -> Result<Self, AttemptError> {
        let threads = match config.threads {
            0 => rayon::current_num_threads(),
            n => n,
        };
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .thread_name({
                let name = name.to_string();
                move |i| format!("llm-{name}-{i}")
            })
            .build()
            .map_err(|e| AttemptError::fatal(format!("cannot start the inference threads: {e}")))?;
        let (tx, rx) = mpsc::channel();
        let stats = Arc::new(EngineStats::default());
        let bytes_per_position =
            SeqCache::bytes_per_position(model.layer_count(), model.dims.n_kv_head, model.dims.head_dim);
        let kv = KvPool::new((config.kv_cache_mb << 20) / (bytes_per_position * BLOCK).max(1));
        stats.kv_blocks.store(kv.capacity() as u64, Ordering::Relaxed);
        let looped =
            Loop { bytes_per_position, pool: kv, model, tokenizer, eos, bytes, config, stats: stats.clone() };
        std::thread::Builder::new()
            .name(format!("engine-{name}"))
            .spawn(move || pool.install(|| looped.run(rx)))
            .map_err(|e| AttemptError::fatal(format!("cannot start the engine thread: {e}")))?;
        Ok(Self { tx, capacity: config.max_batch, stats })
    }

    /// Queue `request`; its events arrive on its own channel.
    pub fn submit(&self, request: Request) -> Result<(), AttemptError> {
        self.tx.send(request).map_err(|_| AttemptError::transient("the inference engine has stopped"))
    }

    /// Sequences one step runs at most.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    pub fn stats(&self) -> &EngineStats {
        &self.stats
    }
}

struct Loop {
    model: Llama,
    tokenizer: Arc<Tokenizer>,
    eos: Vec<u32>,
    /// Each token's bytes, for structured outputs.
    bytes: Arc<Vec<Option<Vec<u8>>>>,
    config: EngineConfig,
    stats: Arc<EngineStats>,
    bytes_per_position: usize,
    pool: Arc<KvPool>,
}

/// What a step did for one sequence: its index, prompt tokens it fed, whether it got logits.
struct Slot {
    seq: usize,
    fed: usize,
    logits: bool,
}

impl Loop {
    fn positions(&self, mb: usize) -> usize {
        (mb << 20) / self.bytes_per_position.max(1)
    }

    fn run(self, rx: mpsc::Receiver<Request>) {
        let mut prefixes = PrefixCache::new(self.positions(self.config.prefix_cache_mb));
        let mut waiting: VecDeque<Request> = VecDeque::new();
        let mut active: Vec<Sequence> = Vec::new();
        loop {
            if active.is_empty() && waiting.is_empty() {
                match rx.recv() {
                    Ok(r) => waiting.push_back(r),
                    Err(_) => return, // every handle dropped and nothing left to do
                }
            }
            waiting.extend(rx.try_iter());
            self.admit(&mut waiting, &mut active, &mut prefixes);
            let now = Instant::now();
            let mut i = 0;
            while i < active.len() {
                if let Some(e) = active[i].stopped(now) {
                    let seq = active.swap_remove(i);
                    seq.finish(Finish::Failed(e), &self.tokenizer);
                } else {
                    i += 1;
                }
            }
            self.stats.active.store(active.len() as u64, Ordering::Relaxed);
            self.stats.waiting.store(waiting.len() as u64, Ordering::Relaxed);
            self.stats.kv_blocks_taken.store(self.pool.taken() as u64, Ordering::Relaxed);
            if active.is_empty() {
                continue;
            }
            let ended = hot::with_hot_pool(|| self.step(&mut active, &mut prefixes));
            for (i, how) in ended.into_iter().rev() {
                let seq = active.remove(i);
                seq.finish(how, &self.tokenizer);
            }
        }
    }

    /// Move waiting requests into the batch while there is room, in arrival order.
    fn admit(&self, waiting: &mut VecDeque<Request>, active: &mut Vec<Sequence>, prefixes: &mut PrefixCache) {
        waiting.retain(|r| {
            let gone =
                r.cancel.load(Ordering::SeqCst) || r.params.deadline.is_some_and(|d| Instant::now() >= d);
            if gone {
                let _ =
                    r.events.send(Event::Done(Err(AttemptError::transient("cancelled before it started"))));
            }
            !gone
        });
        while active.len() < self.config.max_batch {
            let Some(front) = waiting.front() else { break };
            let positions = front.prompt.len() + front.params.max_tokens;
            let need = positions.div_ceil(BLOCK);
            if need > self.pool.capacity() {
                let r = waiting.pop_front().expect("front exists");
                let _ = r.events.send(Event::Done(Err(AttemptError::fatal(format!(
                    "a prompt of {} tokens plus max_tokens {} needs {positions} KV positions; the \
                     engine's budget (executor.kv_cache_mb) holds {}",
                    r.prompt.len(),
                    r.params.max_tokens,
                    self.pool.capacity() * BLOCK
                )))));
                continue;
            }
            // A prompt with nothing cached that shares whole blocks with one still being read
            // waits for that read to end (a step or two), then takes the shared part from the
            // prefix cache instead of computing it again: requests that arrive together share
            // their system prompt too.
            let usable = front.prompt.len().saturating_sub(1);
            if prefixes.enabled()
                && prefixes.cached(&front.prompt) < prefix::BLOCK
                && active.iter().any(|s| {
                    s.prefilling()
                        && prefix::common(&s.req.prompt, &front.prompt).min(usable) >= prefix::BLOCK
                })
            {
                break;
            }
            if front.params.max_tokens == 0 {
                let r = waiting.pop_front().expect("front exists");
                let _ = r.events.send(Event::Done(Ok(Generation {
                    text: String::new(),
                    prompt_tokens: r.prompt.len() as u32,
                    completion_tokens: 0,
                    finish_reason: "length",
                })));
                continue;
            }
            let shared = prefixes.lookup(&front.prompt);
            let own = need - shared.len();
            let reservation = loop {
                match self.pool.reserve(own) {
                    Some(r) => break Some(r),
                    None if prefixes.evict_unheld() => {}
                    None => break None,
                }
            };
            let Some(reservation) = reservation else {
                break; // waits for running sequences to end
            };
            let r = waiting.pop_front().expect("front exists");
            let fed = shared.len() * BLOCK;
            self.stats.prefix_tokens_reused.fetch_add(fed as u64, Ordering::Relaxed);
            let cache = SeqCache::with_blocks(self.model.layer_count(), shared, reservation);
            active.push(Sequence::new(r, cache, fed));
        }
    }

    /// One forward pass over `active`; the sequences that ended, by index (ascending).
    fn step(&self, active: &mut [Sequence], prefixes: &mut PrefixCache) -> Vec<(usize, Finish)> {
        let mut chunk = self.config.prefill_chunk.max(1);
        let mut slots = Vec::with_capacity(active.len());
        let mut parts = Vec::with_capacity(active.len());
        // Decoding sequences first: every one of them advances every step.
        let (decoding, prefilling): (Vec<_>, Vec<_>) =
            active.iter_mut().enumerate().partition(|(_, s)| !s.prefilling());
        for (i, seq) in decoding.into_iter().chain(prefilling) {
            let Sequence { req, cache, fed, next, .. } = seq;
            let prefill = next.is_none();
            let tokens: &[u32] = match next {
                Some(t) if *fed == req.prompt.len() => std::slice::from_ref(t),
                _ if chunk == 0 => continue,
                _ => {
                    let take = (req.prompt.len() - *fed).min(chunk);
                    chunk -= take;
                    &req.prompt[*fed..*fed + take]
                }
            };
            let logits = !prefill || *fed + tokens.len() == req.prompt.len();
            slots.push(Slot { seq: i, fed: if prefill { tokens.len() } else { 0 }, logits });
            parts.push(Part { tokens, cache, logits });
        }
        let begun = Instant::now();
        let rows: usize = parts.iter().map(|p| p.tokens.len()).sum();
        let result = self.model.forward_batch(&mut parts);
        tracing::trace!(
            sequences = parts.len(),
            rows,
            ms = begun.elapsed().as_secs_f64() * 1e3,
            "engine step"
        );
        drop(parts);
        self.count(slots.len());
        let logits = match result {
            Ok(l) => l,
            Err(e) => {
                let mut ended: Vec<(usize, Finish)> = slots
                    .iter()
                    .map(|s| {
                        (s.seq, Finish::Failed(AttemptError::transient(format!("inference failed: {e}"))))
                    })
                    .collect();
                ended.sort_by_key(|(i, _)| *i);
                return ended;
            }
        };
        // Per sequence: the logits row it samples from, if any.
        let mut rows: Vec<Option<usize>> = vec![None; active.len()];
        let mut row = 0;
        for slot in slots {
            let seq = &mut active[slot.seq];
            seq.fed += slot.fed;
            if !slot.logits {
                continue;
            }
            if slot.fed > 0 {
                // The prompt is in: its prefix may serve later sequences.
                prefixes.insert(&seq.req.prompt, seq.cache.blocks());
            }
            rows[slot.seq] = Some(row);
            row += 1;
        }
        // Sampling, stop checks and detokenizing run per sequence on the engine's threads (on
        // one, they left the others idle for a tenth of each wide step).
        use rayon::prelude::*;
        let mut ended: Vec<(usize, Finish)> = active
            .par_iter_mut()
            .zip(rows)
            .enumerate()
            .filter_map(|(i, (seq, row))| {
                let row = row?;
                let before = seq.constrained_nanos;
                let how = match logits.get(row) {
                    Ok(l) => seq.take(&l, &self.tokenizer, &self.eos, &self.bytes),
                    Err(e) => Some(Finish::Failed(AttemptError::transient(format!("inference failed: {e}")))),
                };
                self.stats.constrained_nanos.fetch_add(seq.constrained_nanos - before, Ordering::Relaxed);
                how.map(|h| (i, h))
            })
            .collect();
        ended.sort_by_key(|(i, _)| *i);
        ended
    }

    fn count(&self, width: usize) {
        self.stats.steps.fetch_add(1, Ordering::Relaxed);
        self.stats.sequences_stepped.fetch_add(width as u64, Ordering::Relaxed);
        self.stats.widest_step.fetch_max(width as u64, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests;
