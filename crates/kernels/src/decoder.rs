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
    /// `seen` rows of `keys` and `values` (`kv_width` values each: the key/value heads, each
    /// shared by `heads / (kv_width / head_dim)` query heads), into `out` (like `q`).
    pub fn attend_cached(q: &[f32], keys: &[f32], values: &[f32], seen: usize, kv_width: usize, head_dim: usize, out: &mut [f32]) {
        let hd = head_dim;
        let shared = (q.len() / kv_width.max(1)).max(1);
        let scale = 1.0 / (hd as f32).sqrt();
        let mut scores = vec![0f32; seen];
        for (h, (qh, oh)) in q.chunks_exact(hd).zip(out.chunks_exact_mut(hd)).enumerate() {
            let at = (h / shared) * hd;
            for (j, s) in scores.iter_mut().enumerate() {
                *s = dot(qh, &keys[j * kv_width + at..][..hd]) * scale;
            }
            let max = scores.iter().fold(f32::NEG_INFINITY, |m, s| m.max(*s));
            for s in scores.iter_mut() {
                *s = exp(*s - max);
            }
            let total = sum(&scores);
            oh.fill(0.0);
            for (j, p) in scores.iter().enumerate() {
                let weight = p / total;
                for (o, v) in oh.iter_mut().zip(&values[j * kv_width + at..][..hd]) {
                    *o += weight * v;
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
        attend_cached(&[1.0; 8], &keys, &values, 1, 4, 4, &mut out);
        assert_eq!(out, [0.5, -1.0, 2.0, 3.0, 0.5, -1.0, 2.0, 3.0]);
    }
}
