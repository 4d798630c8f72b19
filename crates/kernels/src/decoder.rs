//! Row operations of a decoder layer (Llama family) on plain buffers, each compiled for AVX2
//! when the CPU has it (see `x86::twin`): RMS norm, SwiGLU and causal attention of one query row
//! against a sequence's cached keys and values. Each works on the rows it is given, the same way
//! whatever else is in the batch; callers split rows across threads.

use crate::rows::{exp, sum};
use crate::x86::twin;

twin! {
    /// `out[r] = x[r] / rms(x[r]) · weight` for every row of `weight.len()` values.
    pub fn rms_norm(x: &[f32], weight: &[f32], eps: f32, out: &mut [f32]) {
        let w = weight.len();
        for (row, out) in x.chunks_exact(w).zip(out.chunks_exact_mut(w)) {
            let mean = dot(row, row) / w as f32;
            let scale = 1.0 / (mean + eps).sqrt();
            for ((o, v), g) in out.iter_mut().zip(row).zip(weight) {
                *o = v * scale * g;
            }
        }
    }
}

twin! {
    /// `gate = silu(gate) · up`, in place.
    pub fn silu_mul(gate: &mut [f32], up: &[f32]) {
        for (g, u) in gate.iter_mut().zip(up) {
            // e^-|g| never overflows; σ(g) = 1/(1+e^-g) for g ≥ 0, e^g/(1+e^g) below.
            let e = exp(-g.abs());
            let sigmoid = if *g >= 0.0 { 1.0 / (1.0 + e) } else { e / (1.0 + e) };
            *g *= sigmoid * u;
        }
    }
}

twin! {
    /// Softmax attention of one query row `q` (`heads` heads of `head_dim`) against the first
    /// `seen` cached positions, held in `segments` in order (a sequence's KV blocks, then its
    /// tail): each segment is `(keys, values)` of `kv_width` values a position (the key/value
    /// heads, each shared by `heads / (kv_width / head_dim)` query heads). Into `out` (like `q`).
    /// The arithmetic runs in position order whatever the segmentation, so a cache split into
    /// blocks gives the bits one contiguous buffer gives.
    pub fn attend_cached(q: &[f32], segments: &[(&[f32], &[f32])], seen: usize, kv_width: usize, head_dim: usize, out: &mut [f32]) {
        let hd = head_dim;
        let shared = (q.len() / kv_width.max(1)).max(1);
        let scale = 1.0 / (hd as f32).sqrt();
        let mut scores = vec![0f32; seen];
        // The positions each segment contributes, up to `seen`.
        let mut spans = Vec::with_capacity(segments.len());
        let mut left = seen;
        for (keys, values) in segments {
            let n = (keys.len() / kv_width.max(1)).min(left);
            spans.push((*keys, *values, n));
            left -= n;
        }
        for (h, (qh, oh)) in q.chunks_exact(hd).zip(out.chunks_exact_mut(hd)).enumerate() {
            let at = (h / shared) * hd;
            let mut s = scores.iter_mut();
            for (keys, _, n) in &spans {
                for (j, s) in (0..*n).zip(&mut s) {
                    *s = dot(qh, &keys[j * kv_width + at..][..hd]) * scale;
                }
            }
            let max = scores.iter().fold(f32::NEG_INFINITY, |m, s| m.max(*s));
            for s in scores.iter_mut() {
                *s = exp(*s - max);
            }
            let total = sum(&scores);
            oh.fill(0.0);
            let mut p = scores.iter();
            for (_, values, n) in &spans {
                for (j, p) in (0..*n).zip(&mut p) {
                    let weight = p / total;
                    for (o, v) in oh.iter_mut().zip(&values[j * kv_width + at..][..hd]) {
                        *o += weight * v;
                    }
                }
            }
        }
    }
}

/// Dot product with eight partial sums (vectorises; the order is fixed, so results repeat).
#[inline(always)]
// Lanes indexed by one counter over two arrays read plainer than zips.
#[allow(clippy::needless_range_loop)]
fn dot(a: &[f32], b: &[f32]) -> f32 {
    let mut acc = [0f32; 8];
    let (ca, cb) = (a.chunks_exact(8), b.chunks_exact(8));
    let tail: f32 = ca.remainder().iter().zip(cb.remainder()).map(|(x, y)| x * y).sum();
    for (x, y) in ca.zip(cb) {
        for i in 0..8 {
            acc[i] += x[i] * y[i];
        }
    }
    acc.iter().sum::<f32>() + tail
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn silu_mul_is_within_a_millionth_of_the_definition() {
        let mut gate: Vec<f32> = (-4000..=4000).map(|i| i as f32 / 200.0).collect();
        let up: Vec<f32> = gate.iter().map(|g| 1.0 + g.abs()).collect();
        let want: Vec<f64> = gate
            .iter()
            .zip(&up)
            .map(|(g, u)| f64::from(*g) / (1.0 + (-f64::from(*g)).exp()) * f64::from(*u))
            .collect();
        silu_mul(&mut gate, &up);
        for (got, want) in gate.iter().zip(want) {
            assert!((f64::from(*got) - want).abs() <= 1e-6 * want.abs().max(1.0), "{got} vs {want}");
        }
    }

    #[test]
    fn attention_of_one_cached_row_returns_its_values() {
        // Two query heads share one key/value head of width 4.
        let (keys, values) = ([1.0, 0.0, 0.0, 0.0], [0.5, -1.0, 2.0, 3.0]);
        let mut out = [0f32; 8];
        attend_cached(&[1.0; 8], &[(&keys, &values)], 1, 4, 4, &mut out);
        assert_eq!(out, [0.5, -1.0, 2.0, 3.0, 0.5, -1.0, 2.0, 3.0]);
    }

    #[test]
    fn attention_over_blocks_is_bit_identical_to_one_buffer() {
        let (width, hd, seen) = (8, 4, 37);
        let vals = |seed: u32| -> Vec<f32> {
            (0..seen * width)
                .map(|i| (((i as u32).wrapping_mul(2654435761) ^ seed) % 1000) as f32 / 500.0 - 1.0)
                .collect()
        };
        let (keys, values) = (vals(1), vals(2));
        let q: Vec<f32> = (0..16).map(|i| i as f32 / 8.0 - 1.0).collect();
        let mut whole = [0f32; 16];
        attend_cached(&q, &[(&keys, &values)], seen, width, hd, &mut whole);
        // Blocks of 16 positions and a tail of 5, with one position more than `seen` in the tail.
        let (k, v) = (&keys, &values);
        let b = 16 * width;
        let mut tail_k = k[2 * b..].to_vec();
        let mut tail_v = v[2 * b..].to_vec();
        tail_k.extend_from_slice(&[9.0; 8]);
        tail_v.extend_from_slice(&[9.0; 8]);
        let segments = [(&k[..b], &v[..b]), (&k[b..2 * b], &v[b..2 * b]), (&tail_k[..], &tail_v[..])];
        let mut paged = [0f32; 16];
        attend_cached(&q, &segments, seen, width, hd, &mut paged);
        assert_eq!(whole, paged);
    }
}
