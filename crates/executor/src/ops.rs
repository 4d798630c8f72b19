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
        splai_kernels::rms_norm(x, weight, eps, out);
    });
}

/// `gate = silu(gate) × up`, in place.
pub(crate) fn swiglu(gate: &mut [f32], up: &[f32]) {
    gate.par_chunks_mut(CHUNK).zip(up.par_chunks(CHUNK)).for_each(|(gate, up)| {
        splai_kernels::silu_mul(gate, up);
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
}
