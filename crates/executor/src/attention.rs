//! Rotary attention of one sequence's new rows against its KV cache (grouped-query heads,
//! causal), on plain buffers: no tensor ops per sequence, so a step over many sequences costs
//! their arithmetic and not hundreds of small operator dispatches each.

use rayon::prelude::*;

use std::sync::Arc;

use crate::kv::{KvBlock, LayerKv, segments};
use crate::llama::Dims;

/// Cosine and sine of the rotary embedding, `[position][head_dim / 2]`.
#[derive(Debug)]
pub(crate) struct Rope {
    pub(crate) cos: Vec<f32>,
    pub(crate) sin: Vec<f32>,
    pub(crate) half: usize,
}

impl Rope {
    pub(crate) fn new(rope_dim: usize, base: f32, positions: usize) -> Self {
        let half = rope_dim / 2;
        let theta: Vec<f32> = (0..half).map(|i| 1.0 / base.powf((2 * i) as f32 / rope_dim as f32)).collect();
        let (mut cos, mut sin) = (Vec::with_capacity(positions * half), Vec::with_capacity(positions * half));
        for p in 0..positions {
            for t in &theta {
                let angle = p as f32 * t;
                cos.push(angle.cos());
                sin.push(angle.sin());
            }
        }
        Self { cos, sin, half }
    }

    /// Positions the tables cover.
    pub(crate) fn positions(&self) -> usize {
        self.cos.len() / self.half.max(1)
    }

    /// Rotate each head of each row (`[rows][heads × 2·half]`) in place, row `t` at position
    /// `start + t`, pairs interleaved (GGUF Llama layout).
    fn apply(&self, x: &mut [f32], start: usize, heads: usize) {
        let hd = 2 * self.half;
        for (t, row) in x.chunks_exact_mut(heads * hd).enumerate() {
            let at = (start + t) * self.half;
            let (cos, sin) = (&self.cos[at..at + self.half], &self.sin[at..at + self.half]);
            for head in row.chunks_exact_mut(hd) {
                for (i, pair) in head.chunks_exact_mut(2).enumerate() {
                    let (a, b) = (pair[0], pair[1]);
                    pair[0] = a * cos[i] - b * sin[i];
                    pair[1] = a * sin[i] + b * cos[i];
                }
            }
        }
    }
}

/// Attention of `len` new rows starting at position `start`: `q` `[len][n_head × hd]`, `k` and
/// `v` `[len][n_kv × hd]` (appended to `tail`, after layer `l` of `blocks`), into `out`
/// `[len][n_head × hd]`.
#[allow(clippy::too_many_arguments)]
pub(crate) fn attend(
    mut q: Vec<f32>,
    mut k: Vec<f32>,
    v: &[f32],
    (blocks, l, tail): (&[Arc<KvBlock>], usize, &mut LayerKv),
    start: usize,
    d: &Dims,
    rope: &Rope,
    out: &mut [f32],
) {
    let (hd, n_head, n_kv) = (d.head_dim, d.n_head, d.n_kv_head);
    rope.apply(&mut q, start, n_head);
    rope.apply(&mut k, start, n_kv);
    tail.k.extend_from_slice(&k);
    tail.v.extend_from_slice(v);
    let segments = segments(blocks, l, tail);
    let width = n_kv * hd;
    // Causal: row `t` sees positions up to its own.
    let row = |t: usize, q: &[f32], out: &mut [f32]| {
        splai_kernels::attend_cached(q, &segments, start + t + 1, width, hd, out)
    };
    let qrow = n_head * hd;
    // Prompt chunks have many rows: spread them over the threads; a decode row runs inline.
    if q.len() > qrow {
        q.par_chunks(qrow).zip(out.par_chunks_mut(qrow)).enumerate().for_each(|(t, (q, o))| row(t, q, o));
    } else {
        row(0, &q, out);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{Device, Tensor};

    fn values(n: usize, seed: u32) -> Vec<f32> {
        (0..n)
            .map(|i| {
                (((i as u32).wrapping_mul(2654435761).wrapping_add(seed) >> 8) % 2000) as f32 / 1000.0 - 1.0
            })
            .collect()
    }

    /// The same attention with candle's operators (rope_i, matmul, causal mask, softmax).
    fn reference(q: &[f32], k: &[f32], v: &[f32], len: usize, d: &Dims, rope: &Rope) -> Vec<f32> {
        let dev = Device::Cpu;
        let heads = |x: &[f32], n: usize| {
            Tensor::from_slice(x, (1, len, n, d.head_dim), &dev)
                .unwrap()
                .transpose(1, 2)
                .unwrap()
                .contiguous()
                .unwrap()
        };
        let cos = Tensor::from_slice(&rope.cos[..len * rope.half], (len, rope.half), &dev).unwrap();
        let sin = Tensor::from_slice(&rope.sin[..len * rope.half], (len, rope.half), &dev).unwrap();
        let q = candle_nn::rotary_emb::rope_i(&heads(q, d.n_head), &cos, &sin).unwrap();
        let k = candle_nn::rotary_emb::rope_i(&heads(k, d.n_kv_head), &cos, &sin).unwrap();
        let v = heads(v, d.n_kv_head);
        let groups = d.n_head / d.n_kv_head;
        let rep = |t: Tensor| {
            t.unsqueeze(2)
                .unwrap()
                .expand((1, d.n_kv_head, groups, len, d.head_dim))
                .unwrap()
                .reshape((1, d.n_head, len, d.head_dim))
                .unwrap()
        };
        let (k, v) = (rep(k), rep(v));
        let att = (q.matmul(&k.t().unwrap()).unwrap() / (d.head_dim as f64).sqrt()).unwrap();
        let mask: Vec<f32> =
            (0..len * len).map(|i| if i % len > i / len { f32::NEG_INFINITY } else { 0.0 }).collect();
        let mask = Tensor::from_vec(mask, (len, len), &dev).unwrap();
        let att = att.broadcast_add(&mask).unwrap();
        let y = candle_nn::ops::softmax_last_dim(&att).unwrap().matmul(&v).unwrap();
        y.transpose(1, 2).unwrap().flatten_all().unwrap().to_vec1().unwrap()
    }

    #[test]
    fn attention_equals_candle_operators() {
        let d = Dims { hidden: 6 * 8, hidden_held: 6 * 8, ffn_held: 0, n_head: 6, n_kv_head: 2, head_dim: 8 };
        let rope = Rope::new(8, 10_000.0, 64);
        let len = 5;
        let (q, k, v) = (values(len * 48, 1), values(len * 16, 2), values(len * 16, 3));
        let mut kv = LayerKv::default();
        let mut out = vec![0f32; len * 48];
        attend(q.clone(), k.clone(), &v, (&[], 0, &mut kv), 0, &d, &rope, &mut out);
        let expected = reference(&q, &k, &v, len, &d, &rope);
        for (a, b) in out.iter().zip(&expected) {
            assert!((a - b).abs() < 1e-5, "{a} vs {b}");
        }
        // The same rows one at a time against the growing cache.
        let mut kv = LayerKv::default();
        for t in 0..len {
            let mut row = vec![0f32; 48];
            attend(
                q[t * 48..][..48].to_vec(),
                k[t * 16..][..16].to_vec(),
                &v[t * 16..][..16],
                (&[], 0, &mut kv),
                t,
                &d,
                &rope,
                &mut row,
            );
            for (a, b) in row.iter().zip(&expected[t * 48..]) {
                assert!((a - b).abs() < 1e-5, "row {t}: {a} vs {b}");
            }
        }
    }
}
