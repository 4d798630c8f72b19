//! Dense f32 products for encoders that keep their weights in f32 (MiniLM's embeddings must stay
//! within cosine 0.9999 of the reference, which 8-bit weights do not promise): the `gemm` crate's
//! packed, cache-blocked micro-kernels (AVX2/FMA, AVX-512 where present), checked shapes around
//! its raw-pointer interface.

use crate::KernelError;

/// A weight matrix as a linear layer stores it: `rows` outputs × `cols` inputs.
#[derive(Debug, Clone)]
pub struct F32Matrix {
    /// Transposed (`cols` × `rows`, row-major): the product then reads consecutive outputs'
    /// weights from consecutive addresses, which gemm's micro-kernel takes without repacking.
    transposed: Vec<f32>,
    rows: usize,
    cols: usize,
}

impl F32Matrix {
    pub fn new(values: Vec<f32>, rows: usize, cols: usize) -> Result<Self, KernelError> {
        if values.len() != rows * cols {
            return Err(KernelError::Shape(format!("{} values for {rows} × {cols}", values.len())));
        }
        let mut transposed = vec![0f32; values.len()];
        for (r, row) in values.chunks_exact(cols.max(1)).enumerate() {
            for (c, v) in row.iter().enumerate() {
                transposed[c * rows + r] = *v;
            }
        }
        Ok(Self { transposed, rows, cols })
    }

    /// Row `r`'s values (the weights of output `r`).
    pub fn row(&self, r: usize) -> Vec<f32> {
        (0..self.cols).map(|c| self.transposed[c * self.rows + r]).collect()
    }

    /// Matrices of the same width stacked: one product computes all their outputs side by side
    /// (a layer's query, key and value projections read their input once).
    pub fn stack(parts: &[&F32Matrix]) -> Result<Self, KernelError> {
        let cols = parts.first().map_or(0, |p| p.cols);
        if parts.iter().any(|p| p.cols != cols) {
            return Err(KernelError::Shape("stacked matrices differ in width".into()));
        }
        let values: Vec<f32> = parts.iter().flat_map(|p| (0..p.rows).flat_map(|r| p.row(r))).collect();
        Self::new(values, parts.iter().map(|p| p.rows).sum(), cols)
    }

    pub fn rows(&self) -> usize {
        self.rows
    }

    pub fn cols(&self) -> usize {
        self.cols
    }

    /// `out[i][n] = x[i] · self[n]` for every row `i` of `x` (`cols` values each), `out` being
    /// `x`'s rows × `self.rows()`, on up to `threads` threads of the current rayon pool.
    pub fn matmul(&self, x: &[f32], out: &mut [f32], threads: usize) -> Result<(), KernelError> {
        if self.cols == 0 || !x.len().is_multiple_of(self.cols) {
            return Err(KernelError::Shape(format!("{} input values in rows of {}", x.len(), self.cols)));
        }
        let m = x.len() / self.cols;
        if out.len() != m * self.rows {
            return Err(KernelError::Shape(format!(
                "output of {} values for {m} × {}",
                out.len(),
                self.rows
            )));
        }
        if m == 0 || self.rows == 0 {
            return Ok(());
        }
        let parallelism =
            if threads > 1 { gemm::Parallelism::Rayon(threads) } else { gemm::Parallelism::None };
        let (k, n) = (self.cols as isize, self.rows as isize);
        // SAFETY: the shapes were checked above, so every element gemm reads or writes lies
        // inside `x` (m × k, row stride k), `self.transposed` (the k × n matrix whose
        // element (p, j) is transposed[p·n + j]) and `out` (m × n, row stride n); `out` is borrowed
        // mutably and aliases neither input.
        #[allow(unsafe_code)]
        unsafe {
            gemm::gemm(
                m,
                self.rows,
                self.cols,
                out.as_mut_ptr(),
                1,
                n,
                false,
                x.as_ptr(),
                1,
                k,
                self.transposed.as_ptr(),
                1,
                n,
                0.0,
                1.0,
                false,
                false,
                false,
                parallelism,
            );
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matmul_equals_the_definition() {
        let (m, k, n) = (7, 19, 13);
        let x: Vec<f32> = (0..m * k).map(|i| (i % 11) as f32 - 5.0).collect();
        let w: Vec<f32> = (0..n * k).map(|i| (i % 7) as f32 * 0.5 - 1.0).collect();
        let w = F32Matrix::new(w, n, k).unwrap();
        for threads in [1, 2] {
            let mut out = vec![f32::NAN; m * n];
            w.matmul(&x, &mut out, threads).unwrap();
            for i in 0..m {
                for j in 0..n {
                    let want: f32 = (0..k).map(|p| x[i * k + p] * w.row(j)[p]).sum();
                    assert_eq!(out[i * n + j], want, "({i}, {j}) at {threads} threads");
                }
            }
        }
    }

    #[test]
    fn shapes_that_do_not_fit_are_refused() {
        let w = F32Matrix::new(vec![0.0; 6], 2, 3).unwrap();
        assert!(w.matmul(&[0.0; 4], &mut [0.0; 2], 1).is_err());
        assert!(w.matmul(&[0.0; 6], &mut [0.0; 3], 1).is_err());
        assert!(F32Matrix::new(vec![0.0; 5], 2, 3).is_err());
        let stacked = F32Matrix::stack(&[&w, &w]).unwrap();
        assert_eq!((stacked.rows(), stacked.cols()), (4, 3));
    }
}
