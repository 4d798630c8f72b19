//! The portable product, for CPUs without the instructions of `x86.rs`.

use crate::{BLOCK, Q8Matrix, Q8Rows};

/// Weight rows `rows` against every row of `x` into `out[(n - rows.start) * m + i]`.
pub(crate) fn run(w: &Q8Matrix, rows: std::ops::Range<usize>, x: &Q8Rows, out: &mut [f32]) {
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
