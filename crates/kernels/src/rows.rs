//! Row operations of an f32 encoder layer on plain `[rows][width]` buffers, each compiled for
//! AVX2 when the CPU has it (see `x86::twin`): layer norm with the residual folded in, bias with
//! an activation, and softmax attention of one sequence. They work on the slice they are given;
//! callers split rows across threads.
//!
//! `erf` and `exp` are branch-free rational/polynomial forms so the loops around them vectorise
//! (libm's scalar calls, once per value, cost more than the matrix products at MiniLM's size).

use crate::x86::twin;

/// The feed-forward activation of a BERT config (`hidden_act`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Activation {
    /// `x·Φ(x)` with the exact normal CDF (BERT's and MiniLM's "gelu").
    Gelu,
    /// The tanh approximation ("gelu_new", "gelu_pytorch_tanh").
    GeluTanh,
    Relu,
}

impl Activation {
    pub fn parse(name: &str) -> Option<Self> {
        match name {
            "gelu" => Some(Self::Gelu),
            "gelu_new" | "gelu_pytorch_tanh" => Some(Self::GeluTanh),
            "relu" => Some(Self::Relu),
            _ => None,
        }
    }
}

twin! {
    /// `x[r] = act(x[r] + bias)` for every row of `bias.len()` values.
    pub fn bias_activation(x: &mut [f32], bias: &[f32], act: Activation) {
        #[inline(always)]
        fn each(x: &mut [f32], bias: &[f32], f: impl Fn(f32) -> f32) {
            for row in x.chunks_exact_mut(bias.len()) {
                row.iter_mut().zip(bias).for_each(|(v, b)| *v = f(*v + b));
            }
        }
        // One loop per activation, so each vectorises (a `match` per value keeps them scalar).
        match act {
            Activation::Gelu => each(x, bias, gelu),
            Activation::GeluTanh => each(x, bias, gelu_tanh),
            Activation::Relu => each(x, bias, |z| z.max(0.0)),
        }
    }
}

twin! {
    /// `x[r] += bias` for every row.
    pub fn add_bias(x: &mut [f32], bias: &[f32]) {
        for row in x.chunks_exact_mut(bias.len()) {
            row.iter_mut().zip(bias).for_each(|(v, b)| *v += b);
        }
    }
}

twin! {
    /// `x[r] = norm(x[r] + y[r] + bias)` for every row: the residual, a sublayer's output and its
    /// bias, then layer norm with `gain`, `shift` and `eps`.
    pub fn residual_norm(x: &mut [f32], y: &[f32], bias: &[f32], gain: &[f32], shift: &[f32], eps: f32) {
        for (row, y) in x.chunks_exact_mut(gain.len()).zip(y.chunks_exact(gain.len())) {
            for ((v, a), b) in row.iter_mut().zip(y).zip(bias) {
                *v += a + b;
            }
            norm_row(row, gain, shift, eps);
        }
    }
}

twin! {
    /// `x[r] = norm(x[r])` for every row.
    pub fn norm(x: &mut [f32], gain: &[f32], shift: &[f32], eps: f32) {
        for row in x.chunks_exact_mut(gain.len()) {
            norm_row(row, gain, shift, eps);
        }
    }
}

twin! {
    /// Softmax self-attention of one sequence: `qkv` holds each of its rows' query, key and value
    /// projections side by side (`3 × width` values, `heads` heads each), `out` gets each row's
    /// attended values (`width`). No mask: the caller passes exactly the sequence's rows.
    pub fn attend(qkv: &[f32], width: usize, heads: usize, out: &mut [f32]) {
        let len = out.len().checked_div(width).unwrap_or(0).min(qkv.len() / (3 * width).max(1));
        let d = width / heads.max(1);
        let scale = 1.0 / (d as f32).sqrt();
        // A head's keys transposed into lanes of eight keys (`d` rows of `len` rounded up to
        // eight), so a query's scores against eight keys accumulate in one vector per query
        // value, with no horizontal sum per pair.
        let lanes = len.div_ceil(8);
        let mut keys = vec![[0f32; 8]; d * lanes];
        let mut scores = vec![[0f32; 8]; lanes];
        for h in 0..heads {
            let (q0, k0, v0) = (h * d, width + h * d, 2 * width + h * d);
            for j in 0..len {
                for (c, k) in qkv[j * 3 * width + k0..][..d].iter().enumerate() {
                    keys[c * lanes + j / 8][j % 8] = *k;
                }
            }
            for i in 0..len {
                let q = &qkv[i * 3 * width + q0..][..d];
                // Loops ordered so the innermost is a float sum the compiler must keep in order:
                // it then vectorises the eight lanes beside it (with a short lane loop
                // innermost, it vectorised across a handful of blocks and ran them scalar).
                for (b, s) in scores.iter_mut().enumerate() {
                    let mut acc = [0f32; 8];
                    for (c, qc) in q.iter().enumerate() {
                        let k = &keys[c * lanes + b];
                        for l in 0..8 {
                            acc[l] += qc * scale * k[l];
                        }
                    }
                    *s = acc;
                }
                let flat = scores.as_flattened_mut();
                let max = flat[..len].iter().fold(f32::NEG_INFINITY, |m, s| m.max(*s));
                for s in flat.iter_mut() {
                    *s = exp(*s - max);
                }
                let total: f32 = flat[..len].iter().sum();
                let o = &mut out[i * width + h * d..][..d];
                let mut blocks = o.chunks_exact_mut(8);
                for (b, o) in blocks.by_ref().enumerate() {
                    let mut acc = [0f32; 8];
                    for (j, p) in flat[..len].iter().enumerate() {
                        let v: &[f32; 8] = qkv[j * 3 * width + v0 + b * 8..][..8].try_into().expect("eight values");
                        for l in 0..8 {
                            acc[l] += p * v[l];
                        }
                    }
                    for l in 0..8 {
                        o[l] = acc[l] / total;
                    }
                }
                // Heads narrower than a multiple of eight: the last values one by one.
                let done = d - d % 8;
                for (c, o) in blocks.into_remainder().iter_mut().enumerate() {
                    let sum: f32 = flat[..len].iter().enumerate().map(|(j, p)| p * qkv[j * 3 * width + v0 + done + c]).sum();
                    *o = sum / total;
                }
            }
        }
    }
}

#[inline(always)]
fn norm_row(row: &mut [f32], gain: &[f32], shift: &[f32], eps: f32) {
    let n = row.len() as f32;
    let mean = sum(row) / n;
    let mut centered = [0f32; 8];
    let chunks = row.chunks_exact(8);
    let tail: f32 = chunks.remainder().iter().map(|v| (v - mean) * (v - mean)).sum();
    for c in chunks {
        for (acc, v) in centered.iter_mut().zip(c) {
            *acc += (v - mean) * (v - mean);
        }
    }
    let var = (centered.iter().sum::<f32>() + tail) / n;
    let scale = 1.0 / (var + eps).sqrt();
    for ((v, g), b) in row.iter_mut().zip(gain).zip(shift) {
        *v = (*v - mean) * scale * g + b;
    }
}

/// A sum with eight partial sums (vectorises; the order is fixed, so results repeat).
#[inline(always)]
pub(crate) fn sum(v: &[f32]) -> f32 {
    let mut acc = [0f32; 8];
    let chunks = v.chunks_exact(8);
    let tail: f32 = chunks.remainder().iter().sum();
    for c in chunks {
        acc.iter_mut().zip(c).for_each(|(a, x)| *a += x);
    }
    acc.iter().sum::<f32>() + tail
}

#[inline(always)]
fn gelu(z: f32) -> f32 {
    0.5 * z * (1.0 + erf(z * std::f32::consts::FRAC_1_SQRT_2))
}

#[inline(always)]
fn gelu_tanh(z: f32) -> f32 {
    let inner = 0.797_884_6 * (z + 0.044_715 * z * z * z);
    0.5 * z * (1.0 + inner.tanh())
}

/// `erf(x)` as a rational function of `x` clamped to [-4, 4] (erf is ±1 to f32 precision
/// beyond). Absolute error below 1e-6 (tested).
#[inline(always)]
fn erf(x: f32) -> f32 {
    let x = x.clamp(-4.0, 4.0);
    let x2 = x * x;
    let mut p = x2 * -2.726_142_3e-10 + 2.770_681_4e-8;
    p = x2 * p - 2.101_024e-6;
    p = x2 * p - 5.692_506_4e-5;
    p = x2 * p - 7.349_906_3e-4;
    p = x2 * p - 2.954_600_1e-3;
    p = x2 * p - 1.609_603_3e-2;
    let mut q = x2 * -1.456_607_2e-5 - 2.133_740_6e-4;
    q = x2 * q - 1.682_827e-3;
    q = x2 * q - 7.373_329_2e-3;
    q = x2 * q - 1.426_473_9e-2;
    x * p / q
}

/// `e^x` for `x` ≤ 0 (softmax after subtracting the maximum): `2^n · p(r)` with `r = x − n·ln 2`
/// and Cephes' polynomial for `e^r`. Relative error below 1e-6 (tested).
#[inline(always)]
pub(crate) fn exp(x: f32) -> f32 {
    let x = x.max(-87.0);
    let n = (x * std::f32::consts::LOG2_E).round();
    let r = x - n * 0.693_359_4 + n * 2.121_944_4e-4;
    let mut p = 1.987_569_1e-4f32;
    p = p * r + 1.398_199_9e-3;
    p = p * r + 8.333_452e-3;
    p = p * r + 4.166_579_6e-2;
    p = p * r + 0.166_666_65;
    p = p * r + 0.5;
    let e = p * r * r + r + 1.0;
    e * f32::from_bits(((n as i32 + 127) as u32) << 23)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn erf_is_within_a_millionth_of_a_reference() {
        // erf by its Taylor series in f64 (exact to ~1e-10 for |x| ≤ 4.5; beyond, erf is ±1
        // within 1e-9).
        let reference = |x: f64| -> f64 {
            if x.abs() > 4.5 {
                return x.signum();
            }
            let (mut term, mut total) = (x, x);
            for n in 1..200 {
                term *= -x * x / n as f64;
                total += term / (2 * n + 1) as f64;
            }
            total * 2.0 / std::f64::consts::PI.sqrt()
        };
        let worst = (-6000..=6000)
            .map(|i| i as f64 / 1000.0)
            .map(|x| (f64::from(erf(x as f32)) - reference(x)).abs())
            .fold(0f64, f64::max);
        assert!(worst < 1e-6, "largest error {worst}");
    }

    #[test]
    fn exp_is_within_a_millionth_relative_of_std() {
        let worst = (0..=87_000)
            .map(|i| -(i as f32) / 1000.0)
            .map(|x| ((exp(x) - x.exp()) / x.exp()).abs())
            .fold(0f32, f32::max);
        assert!(worst < 1e-6, "largest relative error {worst}");
    }

    #[test]
    fn norm_gives_zero_mean_unit_variance_rows() {
        let mut x = vec![1.0, 2.0, 3.0, 4.0, 0.0, 0.0, 0.0, 8.0];
        residual_norm(&mut x, &[0.0; 8], &[0.0; 4], &[1.0; 4], &[0.5; 4], 0.0);
        for row in x.chunks(4) {
            let mean = row.iter().sum::<f32>() / 4.0;
            let var = row.iter().map(|v| (v - mean).powi(2)).sum::<f32>() / 4.0;
            assert!((mean - 0.5).abs() < 1e-6 && (var - 1.0).abs() < 1e-5, "{row:?}");
        }
    }

    #[test]
    fn attention_of_one_key_returns_its_value() {
        // One row: softmax over one score is 1, so each head's output is that row's value.
        let qkv: Vec<f32> = (0..12).map(|i| i as f32).collect();
        let mut out = vec![0.0; 4];
        attend(&qkv, 4, 2, &mut out);
        assert_eq!(out, vec![8.0, 9.0, 10.0, 11.0]);
    }

    #[test]
    fn attention_of_heads_wider_than_eight_weights_every_value() {
        // Two rows, one head of width 10 (a block of eight and a tail of two): equal scores
        // (zero queries), so each output is the mean of the two rows' values.
        let row = |v: f32| -> Vec<f32> { [vec![0.0; 20], vec![v; 10]].concat() };
        let qkv = [row(1.0), row(3.0)].concat();
        let mut out = vec![0.0; 20];
        attend(&qkv, 10, 1, &mut out);
        assert!(out.iter().all(|v| (v - 2.0).abs() < 1e-6), "{out:?}");
    }

    #[test]
    fn attention_weights_keys_by_softmax_of_scores() {
        // Two rows, one head of width 1: row 0 attends with q=1 to keys 0 and ln 3, so its
        // output is (1·v0 + 3·v1) / 4.
        let qkv = [1.0, 0.0, 2.0, 1.0, 3f32.ln(), 6.0];
        let mut out = vec![0.0; 2];
        attend(&qkv, 1, 1, &mut out);
        assert!((out[0] - (2.0 + 18.0) / 4.0).abs() < 1e-5, "{out:?}");
    }
}
