//! The portable product, for CPUs without the instructions of `x86.rs`.

use crate::{BLOCK, Q4Matrix, Q8Matrix, Q8Rows};

/// Weight rows `rows` against every row of `x` into `out[(n - rows.start) * m + i]`.
pub(crate) fn run_q8(w: &Q8Matrix, rows: std::ops::Range<usize>, x: &Q8Rows, out: &mut [f32]) {
    let (k, blocks, m) = (w.cols(), w.cols() / BLOCK, x.rows());
    for (j, n) in rows.clone().enumerate() {
        let wq = &w.quants[n * k..(n + 1) * k];
        let ws = &w.scales[n * blocks..(n + 1) * blocks];
        for i in 0..m {
            let xq = &x.quants[i * k..(i + 1) * k];
            let xs = &x.scales[i * blocks..(i + 1) * blocks];
            let mut acc = 0f32;
            for b in 0..blocks {
                let r = b * BLOCK..(b + 1) * BLOCK;
                let dot: i32 =
                    wq[r.clone()].iter().zip(&xq[r]).map(|(a, b)| i32::from(*a) * i32::from(*b)).sum();
                acc += ws[b] * xs[b] * dot as f32;
            }
            out[j * m + i] = acc;
        }
    }
}

/// As [`run_q8`] for Q4_1 weights: Σ_b d_w·d_x·(q_w · q_x) + m_w·(d_x·Σ q_x).
pub(crate) fn run_q4(w: &Q4Matrix, rows: std::ops::Range<usize>, x: &Q8Rows, out: &mut [f32]) {
    let (k, blocks, m) = (w.cols(), w.cols() / BLOCK, x.rows());
    for (j, n) in rows.clone().enumerate() {
        for i in 0..m {
            let mut acc = 0f32;
            for b in 0..blocks {
                let wb = n * blocks + b;
                let xq = &x.quants[i * k + b * BLOCK..][..BLOCK];
                let dot: i32 =
                    xq.iter().enumerate().map(|(t, q)| i32::from(w.quant(wb, t)) * i32::from(*q)).sum();
                acc += w.scales[wb] * x.scales[i * blocks + b] * dot as f32
                    + w.mins[wb] * x.sums[i * blocks + b];
            }
            out[j * m + i] = acc;
        }
    }
}
