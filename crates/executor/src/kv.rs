//! A sequence's KV cache: the keys and values of every position in every layer, as plain rows
//! (`[position][kv_heads × head_dim]`), grown in place. Owning the memory (rather than candle
//! tensors) lets attention read it without copies and a prefix be copied exactly.

use candle_core::Result;

/// One layer's keys and values.
#[derive(Debug, Clone, Default)]
pub struct LayerKv {
    pub(crate) k: Vec<f32>,
    pub(crate) v: Vec<f32>,
}

/// One sequence's cache over all layers.
#[derive(Debug, Clone)]
pub struct SeqCache {
    pub(crate) layers: Vec<LayerKv>,
    /// Values per position (kv_heads × head_dim); 0 until the first append.
    pub(crate) width: usize,
}

impl SeqCache {
    pub fn new(layers: usize) -> Self {
        Self { layers: vec![LayerKv::default(); layers], width: 0 }
    }

    /// Positions cached (in every layer, between forward passes).
    pub fn len(&self) -> usize {
        match (self.width, self.layers.first()) {
            (0, _) | (_, None) => 0,
            (w, Some(l)) => l.k.len() / w,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn reset(&mut self) {
        for l in &mut self.layers {
            l.k.clear();
            l.v.clear();
        }
    }

    /// A copy of the first `len` positions.
    pub fn prefix(&self, len: usize) -> Result<Self> {
        if len > self.len() {
            candle_core::bail!("prefix of {len} positions from a cache of {}", self.len());
        }
        let n = len * self.width;
        let layers =
            self.layers.iter().map(|l| LayerKv { k: l.k[..n].to_vec(), v: l.v[..n].to_vec() }).collect();
        Ok(Self { layers, width: self.width })
    }

    /// Bytes one position takes in every layer's keys and values (f32).
    pub fn bytes_per_position(layers: usize, kv_heads: usize, head_dim: usize) -> usize {
        layers * 2 * kv_heads * head_dim * 4
    }
}
