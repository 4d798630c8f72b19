//! Row-wise operations of the forward pass on plain `[rows][width]` buffers, spread over the
//! rayon pool in chunks (a wide step has tens of thousands of values per operation; done on one
//! thread they left the others idle). Every value is computed the same way however the rows are
//! split, so results do not depend on the batch.

use rayon::prelude::*;

/// Values one task takes at least.
const CHUNK: usize = 16 * 1024;

/// `out[r] = x[r] / rms(x[r]) * weight` for every row of `weight.len()` values.
pub(crate) fn rms_norm(x: &[f32], weight: &[f32], eps: f32, out: &mut [f32]) {
    let w = weight.len();
    let rows = CHUNK.div_ceil(w).max(1) * w;
    x.par_chunks(rows).zip(out.par_chunks_mut(rows)).for_each(|(x, out)| {
        for (row, out) in x.chunks_exact(w).zip(out.chunks_exact_mut(w)) {
            let mean = sum_squares(row) / w as f32;
            let scale = 1.0 / (mean + eps).sqrt();
            for ((o, v), g) in out.iter_mut().zip(row).zip(weight) {
                *o = v * scale * g;
            }
        }
    });
}

fn sum_squares(v: &[f32]) -> f32 {
    dot(v, v)
}

/// Dot product with eight partial sums (vectorises; the order is fixed, so results repeat).
pub(crate) fn dot(a: &[f32], b: &[f32]) -> f32 {
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

/// `out += w · v`.
pub(crate) fn axpy(w: f32, v: &[f32], out: &mut [f32]) {
    for (o, x) in out.iter_mut().zip(v) {
        *o += w * x;
    }
}

/// `gate = silu(gate) × up`, in place.
pub(crate) fn swiglu(gate: &mut [f32], up: &[f32]) {
    gate.par_chunks_mut(CHUNK).zip(up.par_chunks(CHUNK)).for_each(|(gate, up)| {
        for (g, u) in gate.iter_mut().zip(up) {
            *g = *g / (1.0 + (-*g).exp()) * u;
        }
    });
}

/// `x += y`.
pub(crate) fn add(x: &mut [f32], y: &[f32]) {
    x.par_chunks_mut(CHUNK).zip(y.par_chunks(CHUNK)).for_each(|(x, y)| {
        for (a, b) in x.iter_mut().zip(y) {
            *a += b;
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rms_norm_scales_each_row_to_unit_rms() {
        let x = [3.0, 4.0, 0.0, 0.0, 1.0, 1.0, 1.0, 1.0];
        let mut out = [0.0; 8];
        rms_norm(&x, &[1.0, 1.0, 1.0, 2.0], 0.0, &mut out);
        assert!((out[0] - 1.2).abs() < 1e-6 && (out[1] - 1.6).abs() < 1e-6, "{out:?}");
        assert_eq!(&out[4..], &[1.0, 1.0, 1.0, 2.0]);
    }

    #[test]
    fn dot_handles_tails() {
        let a: Vec<f32> = (0..11).map(|i| i as f32).collect();
        assert_eq!(dot(&a, &a), (0..11).map(|i| (i * i) as f32).sum::<f32>());
    }
}
