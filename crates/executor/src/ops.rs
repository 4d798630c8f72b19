//! Row-wise operations of the forward pass on plain `[rows][width]` buffers, spread over the
//! rayon pool in chunks (a wide step has tens of thousands of values per operation; done on one
//! thread they left the others idle). Every value is computed the same way however the rows are
//! split, so results do not depend on the batch.

use rayon::prelude::*;

/// Values one task takes at least.
const CHUNK: usize = 4 * 1024;

/// Values per task for `len` values in whole units of `unit` (a row, or 1): about two tasks per
/// thread, so the threads end together (chunks of a fixed size left one thread alone with the
/// last chunk: 18 432 values of a 32-row step were 16 384 + 2 048), and never under [`CHUNK`].
fn per_task(len: usize, unit: usize) -> usize {
    let unit = unit.max(1);
    let even = len.div_ceil(rayon::current_num_threads() * 2).max(CHUNK);
    even.div_ceil(unit) * unit
}

/// `out[r] = x[r] / rms(x[r]) * weight` for every row of `weight.len()` values.
pub(crate) fn rms_norm(x: &[f32], weight: &[f32], eps: f32, out: &mut [f32]) {
    let rows = per_task(x.len(), weight.len());
    x.par_chunks(rows).zip(out.par_chunks_mut(rows)).for_each(|(x, out)| {
        splai_kernels::rms_norm(x, weight, eps, out);
    });
}

/// `gate = silu(gate) × up`, in place.
pub(crate) fn swiglu(gate: &mut [f32], up: &[f32]) {
    let per = per_task(gate.len(), 1);
    gate.par_chunks_mut(per).zip(up.par_chunks(per)).for_each(|(gate, up)| {
        splai_kernels::silu_mul(gate, up);
    });
}

/// `x += y`.
pub(crate) fn add(x: &mut [f32], y: &[f32]) {
    let per = per_task(x.len(), 1);
    x.par_chunks_mut(per).zip(y.par_chunks(per)).for_each(|(x, y)| {
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
