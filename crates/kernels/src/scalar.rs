//! The portable product, for CPUs without the instructions of `x86.rs`.

use crate::{BLOCK, Q4Matrix, Q8Matrix, Q8Rows};

// Loops index activations, weights and outputs at once: plainer than zips.

/// Weight rows `rows` against every row `i` of `x` into `out[i][n - rows.start]`.
#[allow(clippy::needless_range_loop)]
pub(crate) fn run_q8(w: &Q8Matrix, rows: std::ops::Range<usize>, x: &Q8Rows, out: &mut [&mut [f32]]) {
    let (k, blocks, m) = (w.cols(), w.cols() / BLOCK, x.rows());
    for (j, n) in rows.clone().enumerate() {
        for i in 0..m {
            let xq = &x.quants[i * k..(i + 1) * k];
            let xs = &x.scales[i * blocks..(i + 1) * blocks];
            let mut acc = 0f32;
            for b in 0..blocks {
                let dot: i32 =
                    (b * BLOCK..(b + 1) * BLOCK).map(|t| i32::from(w.quant(n, t)) * i32::from(xq[t])).sum();
                acc += w.scale(n, b) * xs[b] * dot as f32;
            }
            out[i][j] = acc;
        }
    }
}

/// As [`run_q8`] for Q4_1 weights: Σ_b d_w·d_x·(q_w · q_x) + m_w·(d_x·Σ q_x).
#[allow(clippy::needless_range_loop)]
pub(crate) fn run_q4(w: &Q4Matrix, rows: std::ops::Range<usize>, x: &Q8Rows, out: &mut [&mut [f32]]) {
    let (k, blocks, m) = (w.cols(), w.cols() / BLOCK, x.rows());
    for (j, n) in rows.clone().enumerate() {
        for i in 0..m {
            let mut acc = 0f32;
            for b in 0..blocks {
                let xq = &x.quants[i * k..(i + 1) * k];
                let dot: i32 =
                    (b * BLOCK..(b + 1) * BLOCK).map(|t| i32::from(w.quant(n, t)) * i32::from(xq[t])).sum();
                let (d, min) = w.scale_min(n, b);
                acc += d * x.scales[i * blocks + b] * dot as f32 + min * x.sums[i * blocks + b];
            }
            out[i][j] = acc;
        }
    }
}
