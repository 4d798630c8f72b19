//! KV memory in blocks (paged attention's layout, issue 17): a sequence's keys and values are a
//! list of full blocks of [`BLOCK`] positions (every layer's rows for those positions) and a tail
//! of the positions after them. A full block never changes, so it is shared by reference: the
//! prefix cache and every sequence whose prompt starts with the same blocks hold the same memory,
//! computed once and counted once.
//!
//! Memory is counted in blocks of one [`KvPool`]. A sequence reserves the blocks it can ever fill
//! when it joins (its prompt and `max_tokens`, less the shared blocks it starts from), so a
//! running sequence never runs out; each full block it seals takes one of its reserved blocks as
//! a [`Lease`] that the block gives back when its last holder drops it. Owning plain rows (not
//! candle tensors) lets attention read the blocks in place.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use candle_core::Result;

/// Positions in one block.
pub const BLOCK: usize = 16;

/// One layer's keys and values, `[position][kv_heads × head_dim]`.
#[derive(Debug, Clone, Default)]
pub struct LayerKv {
    pub(crate) k: Vec<f32>,
    pub(crate) v: Vec<f32>,
}

/// [`BLOCK`] positions of every layer; immutable once sealed.
#[derive(Debug)]
pub struct KvBlock {
    pub(crate) layers: Vec<LayerKv>,
    _lease: Option<Lease>,
}

/// A budget of blocks shared by an engine's sequences and its prefix cache.
#[derive(Debug)]
pub struct KvPool {
    capacity: usize,
    /// Blocks leased to live blocks or reserved by running sequences.
    taken: AtomicUsize,
}

impl KvPool {
    pub fn new(capacity: usize) -> Arc<Self> {
        Arc::new(Self { capacity, taken: AtomicUsize::new(0) })
    }

    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Blocks held by live blocks or reserved for blocks to come.
    pub fn taken(&self) -> usize {
        self.taken.load(Ordering::SeqCst)
    }

    /// `blocks` more blocks for one sequence, if the pool has them now.
    pub fn reserve(self: &Arc<Self>, blocks: usize) -> Option<Reservation> {
        self.taken
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |t| {
                (t + blocks <= self.capacity).then_some(t + blocks)
            })
            .ok()
            .map(|_| Reservation { pool: self.clone(), left: blocks })
    }

    fn give_back(&self, blocks: usize) {
        self.taken.fetch_sub(blocks, Ordering::SeqCst);
    }
}

/// Blocks a sequence may still seal; what is left returns to the pool when it drops.
#[derive(Debug)]
pub struct Reservation {
    pool: Arc<KvPool>,
    left: usize,
}

impl Reservation {
    fn lease(&mut self) -> Option<Lease> {
        self.left = self.left.checked_sub(1)?;
        Some(Lease { pool: self.pool.clone() })
    }
}

impl Drop for Reservation {
    fn drop(&mut self) {
        self.pool.give_back(self.left);
    }
}

/// One block of a pool, held by the block it counts.
#[derive(Debug)]
struct Lease {
    pool: Arc<KvPool>,
}

impl Drop for Lease {
    fn drop(&mut self) {
        self.pool.give_back(1);
    }
}

/// Layer `l`'s keys and values as segments in position order: each block's, then the tail's.
pub(crate) fn segments<'a>(
    blocks: &'a [Arc<KvBlock>],
    l: usize,
    tail: &'a LayerKv,
) -> Vec<(&'a [f32], &'a [f32])> {
    blocks
        .iter()
        .map(|b| &b.layers[l])
        .chain(std::iter::once(tail))
        .map(|kv| (&kv.k[..], &kv.v[..]))
        .collect()
}

/// One sequence's cache over all layers.
#[derive(Debug)]
pub struct SeqCache {
    pub(crate) blocks: Vec<Arc<KvBlock>>,
    /// Positions after the blocks (fewer than [`BLOCK`] between forward passes).
    pub(crate) tail: Vec<LayerKv>,
    /// Values per position (kv_heads × head_dim); 0 until the first append.
    pub(crate) width: usize,
    /// Where sealed blocks take their memory from (none: not counted, a lone sequence).
    budget: Option<Reservation>,
}

impl SeqCache {
    pub fn new(layers: usize) -> Self {
        Self { blocks: Vec::new(), tail: vec![LayerKv::default(); layers], width: 0, budget: None }
    }

    /// A cache that starts with `shared` blocks (a cached prompt prefix) and seals its own
    /// blocks within `budget`.
    pub fn with_blocks(layers: usize, shared: Vec<Arc<KvBlock>>, budget: Reservation) -> Self {
        let width = shared.first().and_then(|b| b.layers.first()).map_or(0, |l| l.k.len() / BLOCK);
        Self { blocks: shared, tail: vec![LayerKv::default(); layers], width, budget: Some(budget) }
    }

    /// Positions cached (in every layer, between forward passes).
    pub fn len(&self) -> usize {
        let tail = match (self.width, self.tail.first()) {
            (0, _) | (_, None) => 0,
            (w, Some(l)) => l.k.len() / w,
        };
        self.blocks.len() * BLOCK + tail
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn reset(&mut self) {
        self.blocks.clear();
        for l in &mut self.tail {
            l.k.clear();
            l.v.clear();
        }
    }

    /// The full blocks, in position order.
    pub fn blocks(&self) -> &[Arc<KvBlock>] {
        &self.blocks
    }

    /// Layer `l`'s keys and values as segments in position order.
    #[cfg(test)]
    fn segments(&self, l: usize) -> Vec<(&[f32], &[f32])> {
        segments(&self.blocks, l, &self.tail[l])
    }

    /// Move every whole block at the front of the tail into a block of its own (after a forward
    /// pass has appended to every layer).
    pub(crate) fn seal(&mut self) -> Result<()> {
        let n = BLOCK * self.width;
        while n > 0 && self.tail.first().is_some_and(|l| l.k.len() >= n) {
            let lease = match &mut self.budget {
                None => None,
                Some(r) => match r.lease() {
                    Some(lease) => Some(lease),
                    None => candle_core::bail!("a sequence filled more KV blocks than it reserved"),
                },
            };
            let layers = self
                .tail
                .iter_mut()
                .map(|l| {
                    let (k, v) = (l.k.split_off(n), l.v.split_off(n));
                    LayerKv { k: std::mem::replace(&mut l.k, k), v: std::mem::replace(&mut l.v, v) }
                })
                .collect();
            self.blocks.push(Arc::new(KvBlock { layers, _lease: lease }));
        }
        Ok(())
    }

    /// Bytes one position takes in every layer's keys and values (f32).
    pub fn bytes_per_position(layers: usize, kv_heads: usize, head_dim: usize) -> usize {
        layers * 2 * kv_heads * head_dim * 4
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn filled(cache: &mut SeqCache, positions: usize) {
        cache.width = 2;
        for (i, l) in cache.tail.iter_mut().enumerate() {
            l.k.extend((0..positions * 2).map(|x| (x + i) as f32));
            l.v.extend((0..positions * 2).map(|x| -((x + i) as f32)));
        }
    }

    #[test]
    fn sealing_moves_whole_blocks_and_keeps_the_order() {
        let pool = KvPool::new(4);
        let mut cache = SeqCache::with_blocks(2, Vec::new(), pool.reserve(3).unwrap());
        filled(&mut cache, 2 * BLOCK + 3);
        cache.seal().unwrap();
        assert_eq!((cache.blocks.len(), cache.len()), (2, 2 * BLOCK + 3));
        let keys: Vec<f32> = cache.segments(1).iter().flat_map(|(k, _)| k.iter().copied()).collect();
        assert_eq!(keys, (0..(2 * BLOCK + 3) * 2).map(|x| (x + 1) as f32).collect::<Vec<_>>());
        assert_eq!(pool.taken(), 3, "two leased, one still reserved");
    }

    #[test]
    fn blocks_return_to_the_pool_when_their_last_holder_drops() {
        let pool = KvPool::new(2);
        let mut first = SeqCache::with_blocks(1, Vec::new(), pool.reserve(2).unwrap());
        filled(&mut first, BLOCK);
        first.seal().unwrap();
        assert!(pool.reserve(1).is_none(), "the pool is full");
        let shared = first.blocks().to_vec();
        drop(first);
        assert_eq!(pool.taken(), 1, "the unused reservation came back; the shared block is held");
        let second = SeqCache::with_blocks(1, shared.clone(), pool.reserve(1).unwrap());
        assert_eq!(second.len(), BLOCK);
        drop((second, shared));
        assert_eq!(pool.taken(), 0);
    }

    #[test]
    fn a_sequence_cannot_seal_more_than_it_reserved() {
        let pool = KvPool::new(4);
        let mut cache = SeqCache::with_blocks(1, Vec::new(), pool.reserve(1).unwrap());
        filled(&mut cache, 2 * BLOCK);
        assert!(cache.seal().is_err());
    }
}
