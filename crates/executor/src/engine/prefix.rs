//! Prefix caching: KV caches of prompt prefixes that later sequences reuse instead of computing
//! again (a system prompt, a chat template, a batch_analysis instruction shared by every item).
//!
//! Entries are the sealed KV blocks ([`crate::kv`]) of a prompt's whole blocks of `BLOCK`
//! tokens. A new sequence starts from the longest block-aligned prefix it shares with any entry
//! (always leaving at least one prompt token to compute, whose logits start the reply), holding
//! the very same blocks: nothing is copied, and a block many sequences share is in memory once.
//! Sealed blocks never change, and the keys and values of a position depend only on the tokens
//! up to it, so a shared prefix is the prefix the sequence would have computed. What the entries
//! keep is bounded by a token budget, and they give way when running sequences need the pool;
//! the least recently used go first.

use std::sync::Arc;

pub(super) use crate::kv::BLOCK;
use crate::kv::KvBlock;

#[derive(Debug)]
struct Entry {
    tokens: Vec<u32>,
    blocks: Vec<Arc<KvBlock>>,
    last_used: u64,
}

#[derive(Debug)]
pub(super) struct PrefixCache {
    entries: Vec<Entry>,
    budget: usize,
    clock: u64,
}

pub(super) fn common(a: &[u32], b: &[u32]) -> usize {
    a.iter().zip(b).take_while(|(x, y)| x == y).count()
}

impl PrefixCache {
    pub(super) fn new(budget_tokens: usize) -> Self {
        Self { entries: Vec::new(), budget: budget_tokens, clock: 0 }
    }

    /// The blocks of the longest cached prefix of `prompt` (none shorter than a block).
    pub(super) fn lookup(&mut self, prompt: &[u32]) -> Vec<Arc<KvBlock>> {
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
                entry.blocks[..n / BLOCK].to_vec()
            }
            _ => Vec::new(),
        }
    }

    /// Keep the block-aligned prefix of `prompt`, whose keys and values are the first of
    /// `blocks` (called when its prefill ends, so every whole block of the prompt is sealed).
    pub(super) fn insert(&mut self, prompt: &[u32], blocks: &[Arc<KvBlock>]) {
        let len = (prompt.len() / BLOCK) * BLOCK;
        if len < BLOCK || len > self.budget || blocks.len() < len / BLOCK {
            return;
        }
        self.clock += 1;
        if let Some(e) =
            self.entries.iter_mut().find(|e| e.tokens.len() >= len && e.tokens[..len] == prompt[..len])
        {
            e.last_used = self.clock;
            return;
        }
        // A longer entry replaces the shorter ones it extends.
        self.entries.retain(|e| !(e.tokens.len() < len && prompt[..e.tokens.len()] == e.tokens[..]));
        while self.used() + len > self.budget && self.evict_oldest() {}
        self.entries.push(Entry {
            tokens: prompt[..len].to_vec(),
            blocks: blocks[..len / BLOCK].to_vec(),
            last_used: self.clock,
        });
    }

    /// Drop the least recently used entry; false when there is none.
    fn evict_oldest(&mut self) -> bool {
        self.evict_where(|_| true)
    }

    /// Drop the least recently used entry that alone holds some block, so dropping it returns
    /// memory to the pool; false when every entry's blocks are also held elsewhere (by running
    /// sequences), and dropping one would lose the cache and free nothing.
    pub(super) fn evict_unheld(&mut self) -> bool {
        self.evict_where(|e| e.blocks.iter().any(|b| Arc::strong_count(b) == 1))
    }

    fn evict_where(&mut self, eligible: impl Fn(&Entry) -> bool) -> bool {
        let oldest = self
            .entries
            .iter()
            .enumerate()
            .filter(|(_, e)| eligible(e))
            .min_by_key(|(_, e)| e.last_used)
            .map(|(i, _)| i);
        oldest.map(|i| self.entries.swap_remove(i)).is_some()
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
