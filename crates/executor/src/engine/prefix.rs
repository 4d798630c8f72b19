//! Prefix caching: KV caches of prompt prefixes that later sequences reuse instead of computing
//! again (a system prompt, a chat template, a batch_analysis instruction shared by every item).
//!
//! Entries are whole blocks of `BLOCK` tokens. A new sequence takes the longest block-aligned
//! prefix it shares with any entry (always leaving at least one prompt token to compute, whose
//! logits start the reply) as a copy, so entries are never written by the sequences that use
//! them. The keys and values of a position depend only on the tokens up to it, so a copied prefix
//! is the prefix the sequence would have computed. Memory is bounded by a token budget; the least
//! recently used entries go first.

use crate::llama::SeqCache;

/// Granularity of shared prefixes (tokens).
pub(super) const BLOCK: usize = 16;

#[derive(Debug)]
struct Entry {
    tokens: Vec<u32>,
    cache: SeqCache,
    last_used: u64,
}

#[derive(Debug)]
pub(super) struct PrefixCache {
    entries: Vec<Entry>,
    budget: usize,
    clock: u64,
    /// Prompt tokens served from the cache (a counter for metrics and tests).
    pub(super) hits: u64,
}

pub(super) fn common(a: &[u32], b: &[u32]) -> usize {
    a.iter().zip(b).take_while(|(x, y)| x == y).count()
}

impl PrefixCache {
    pub(super) fn new(budget_tokens: usize) -> Self {
        Self { entries: Vec::new(), budget: budget_tokens, clock: 0, hits: 0 }
    }

    /// A copy of the longest cached prefix of `prompt` and its length, if one is a block long.
    pub(super) fn lookup(&mut self, prompt: &[u32]) -> candle_core::Result<Option<(SeqCache, usize)>> {
        let usable = (prompt.len().saturating_sub(1) / BLOCK) * BLOCK;
        let best = self
            .entries
            .iter_mut()
            .map(|e| {
                let n = (common(&e.tokens, prompt).min(usable) / BLOCK) * BLOCK;
                (n, e)
            })
            .max_by_key(|(n, _)| *n);
        match best {
            Some((n, entry)) if n >= BLOCK => {
                self.clock += 1;
                entry.last_used = self.clock;
                self.hits += n as u64;
                Ok(Some((entry.cache.prefix(n)?, n)))
            }
            _ => Ok(None),
        }
    }

    /// Keep the block-aligned prefix of `prompt`, whose keys and values `cache` holds (exactly
    /// the prompt's positions: called when its prefill ends).
    pub(super) fn insert(&mut self, prompt: &[u32], cache: &SeqCache) -> candle_core::Result<()> {
        let len = (prompt.len() / BLOCK) * BLOCK;
        if len < BLOCK || len > self.budget {
            return Ok(());
        }
        self.clock += 1;
        if let Some(e) =
            self.entries.iter_mut().find(|e| e.tokens.len() >= len && e.tokens[..len] == prompt[..len])
        {
            e.last_used = self.clock;
            return Ok(());
        }
        // A longer entry replaces the shorter ones it extends.
        self.entries.retain(|e| !(e.tokens.len() < len && prompt[..e.tokens.len()] == e.tokens[..]));
        while self.used() + len > self.budget {
            let Some(oldest) =
                self.entries.iter().enumerate().min_by_key(|(_, e)| e.last_used).map(|(i, _)| i)
            else {
                break;
            };
            self.entries.swap_remove(oldest);
        }
        self.entries.push(Entry {
            tokens: prompt[..len].to_vec(),
            cache: cache.prefix(len)?,
            last_used: self.clock,
        });
        Ok(())
    }

    /// Prompt tokens of `prompt` a lookup would take from the cache now.
    pub(super) fn cached(&self, prompt: &[u32]) -> usize {
        let usable = (prompt.len().saturating_sub(1) / BLOCK) * BLOCK;
        let n = self.entries.iter().map(|e| common(&e.tokens, prompt).min(usable)).max().unwrap_or(0);
        (n / BLOCK) * BLOCK
    }

    /// Whether prefixes are kept at all.
    pub(super) fn enabled(&self) -> bool {
        self.budget >= BLOCK
    }

    fn used(&self) -> usize {
        self.entries.iter().map(|e| e.tokens.len()).sum()
    }
}
