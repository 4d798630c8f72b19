//! Matrix products of Q8_0 weights (blocks of 32 signed bytes sharing one scale) and Q4_1 weights
//! (blocks of 32 four-bit values sharing a scale and a minimum: half the bytes to stream), GGML's
//! formats, with activations quantized to 8 bits per 32-value block, for one row or many: continuous batching (issue 17)
//! multiplies the current row of every running sequence by each weight matrix in one call, so
//! the weights stream from memory once per step instead of once per sequence.
//!
//! Every output element is computed by the same sequence of operations whatever the number of
//! rows and however they are tiled, so a sequence decoded in a batch gets bit-for-bit the logits
//! it gets alone (the exactness that `splai-executor`'s batching test checks).

mod decoder;
mod dense;
mod error;
mod group;
mod q4;
mod quantize;
pub mod rows;
mod scalar;
mod x86;

pub use decoder::{attend_cached, rms_norm, silu_mul};
pub use dense::F32Matrix;
pub use error::KernelError;
pub use q4::Q4Matrix;
pub use quantize::{Q8Matrix, Q8Rows};

/// Values per block (one scale each).
pub const BLOCK: usize = 32;

/// Weight rows one task of the parallel product takes (whole groups of 8): small enough that a
/// chunk of weights stays in L1 while every activation row passes over it, large enough to
/// amortise the task.
const ROWS_PER_TASK: usize = 32;

/// A weight matrix the kernels multiply: its shape and its per-CPU products of a range of rows.
pub(crate) trait Weights: Sync {
    fn shape(&self) -> (usize, usize);
    /// Weight rows `rows` against every row `i` of `x` into `out[i][n - rows.start]`.
    fn product(&self, kernel: x86::Kernel, rows: std::ops::Range<usize>, x: &Q8Rows, out: &mut [&mut [f32]]);
}

impl Weights for Q8Matrix {
    fn shape(&self) -> (usize, usize) {
        (self.rows(), self.cols())
    }

    fn product(&self, kernel: x86::Kernel, rows: std::ops::Range<usize>, x: &Q8Rows, out: &mut [&mut [f32]]) {
        if !kernel.run_q8(self, rows.clone(), x, out) {
            scalar::run_q8(self, rows, x, out);
        }
    }
}

impl Weights for Q4Matrix {
    fn shape(&self) -> (usize, usize) {
        (self.rows(), self.cols())
    }

    fn product(&self, kernel: x86::Kernel, rows: std::ops::Range<usize>, x: &Q8Rows, out: &mut [&mut [f32]]) {
        if !kernel.run_q4(self, rows.clone(), x, out) {
            scalar::run_q4(self, rows, x, out);
        }
    }
}

impl Q8Matrix {
    /// `out[m][n]` = row `m` of `x` · row `n` of this matrix, for `out` of `x.rows() × self.rows()`
    /// values, computed on the current rayon pool.
    pub fn matmul(&self, x: &Q8Rows, out: &mut [f32]) -> Result<(), KernelError> {
        matmul(self, x, out)
    }
}

impl Q4Matrix {
    /// As [`Q8Matrix::matmul`].
    pub fn matmul(&self, x: &Q8Rows, out: &mut [f32]) -> Result<(), KernelError> {
        matmul(self, x, out)
    }
}

fn matmul(w: &impl Weights, x: &Q8Rows, out: &mut [f32]) -> Result<(), KernelError> {
    let (n, cols) = w.shape();
    if x.cols() != cols {
        return Err(KernelError::Shape(format!(
            "activations of {} columns times weights of {cols} columns",
            x.cols()
        )));
    }
    let m = x.rows();
    if out.len() != m * n {
        return Err(KernelError::Shape(format!("output of {} values for {m} × {n}", out.len())));
    }
    if m == 0 {
        return Ok(());
    }
    use rayon::prelude::*;
    let kernel = x86::Kernel::detect();
    // Enough tasks per thread that none waits long for the last one, never so small that the
    // tasks cost more than they do (every task reloads its activation rows).
    let per_task = (n / (rayon::current_num_threads() * 8)).clamp(group::GROUP, ROWS_PER_TASK) / group::GROUP
        * group::GROUP;
    let tasks = n.div_ceil(per_task);
    // Each task gets, of every output row, the columns of its weight rows: disjoint slices, so
    // the tasks write the output in place, task-major.
    let mut columns: Vec<_> = out.chunks_exact_mut(n).map(|row| row.chunks_mut(per_task)).collect();
    let mut parts: Vec<&mut [f32]> = Vec::with_capacity(tasks * m);
    for _ in 0..tasks {
        for row in columns.iter_mut() {
            parts.extend(row.next());
        }
    }
    parts.par_chunks_mut(m).enumerate().for_each(|(t, rows)| {
        let n0 = t * per_task;
        w.product(kernel, n0..(n0 + per_task).min(n), x, rows);
    });
    Ok(())
}

#[cfg(test)]
mod tests;
