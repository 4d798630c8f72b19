//! Q8_0 matrices and rows held as separate arrays of quants and scales, the layout the kernels
//! read (GGML interleaves a 2-byte scale before every 32 quants).

use half::f16;

use crate::group::{self, GROUP};
use crate::{BLOCK, KernelError};

/// GGML's Q8_0 block: an f16 scale, then 32 signed quants.
const GGML_BLOCK_BYTES: usize = 2 + BLOCK;

/// A weight matrix of `rows × cols` Q8_0 values (`cols` a whole number of blocks).
#[derive(Debug, Clone)]
pub struct Q8Matrix {
    rows: usize,
    cols: usize,
    /// In groups of 8 rows, 256 bytes per group and block (`group::q8_offset`).
    pub(crate) quants: Vec<i8>,
    /// One per block, 8 per group and block (`group::per_block`).
    pub(crate) scales: Vec<f32>,
}

/// Activation rows quantized like [`Q8Matrix`]: the left side of a product.
#[derive(Debug, Clone, Default)]
pub struct Q8Rows {
    rows: usize,
    cols: usize,
    pub(crate) quants: Vec<i8>,
    pub(crate) scales: Vec<f32>,
    /// Per block: scale × the sum of its quants (what a Q4_1 block's minimum multiplies).
    pub(crate) sums: Vec<f32>,
}

pub(crate) fn whole_blocks(cols: usize) -> Result<usize, KernelError> {
    if cols == 0 || !cols.is_multiple_of(BLOCK) {
        return Err(KernelError::Shape(format!("{cols} columns are not whole blocks of {BLOCK}")));
    }
    Ok(cols / BLOCK)
}

/// Quantize `values` (whole rows of `cols`) as GGML's reference does: per block, scale =
/// max |v| / 127 rounded to f16, quants = round(v / scale).
/// Blocks one task of a parallel quantization takes at least (a decode row is a few dozen, done
/// inline) and at most (a prompt chunk's rows are many blocks).
const MIN_BLOCKS_PER_TASK: usize = 64;
const MAX_BLOCKS_PER_TASK: usize = 1024;

fn quantize_into(values: &[f32], quants: &mut Vec<i8>, scales: &mut Vec<f32>) {
    use rayon::prelude::*;
    let blocks = values.len() / BLOCK;
    quants.resize(blocks * BLOCK, 0);
    scales.resize(blocks, 0.0);
    // About two tasks per thread, so the threads end together (fixed tasks of 256 blocks split a
    // 32-row step's 576 blocks 256 + 256 + 64), and never under `MIN_BLOCKS_PER_TASK`.
    let per =
        blocks.div_ceil(rayon::current_num_threads() * 2).clamp(MIN_BLOCKS_PER_TASK, MAX_BLOCKS_PER_TASK);
    // Each block on its own: the same values give the same quants however the work is split.
    values
        .par_chunks(BLOCK * per)
        .zip(quants.par_chunks_mut(BLOCK * per))
        .zip(scales.par_chunks_mut(per))
        .for_each(|((values, quants), scales)| quantize_blocks(values, quants, scales));
}

crate::x86::twin! {
    /// Quantize whole blocks of `values` into `quants` and `scales` (compiled for AVX2 where
    /// present: the rounding of every value then vectorises instead of calling `roundf`).
    fn quantize_blocks(values: &[f32], quants: &mut [i8], scales: &mut [f32]) {
        for ((block, q), scale) in values.chunks_exact(BLOCK).zip(quants.chunks_exact_mut(BLOCK)).zip(scales) {
            let amax = block.iter().fold(0f32, |m, v| m.max(v.abs()));
            let d = amax / 127.0;
            let id = if d == 0.0 { 0.0 } else { 1.0 / d };
            for (q, v) in q.iter_mut().zip(block) {
                *q = (v * id).round() as i8;
            }
            *scale = f16::from_f32(d).to_f32();
        }
    }
}

/// Per block: scale × sum of quants.
fn block_sums(quants: &[i8], scales: &[f32], sums: &mut Vec<f32>) {
    sums.clear();
    sums.extend(
        quants
            .chunks_exact(BLOCK)
            .zip(scales)
            .map(|(q, d)| d * q.iter().map(|v| i32::from(*v)).sum::<i32>() as f32),
    );
}

impl Q8Matrix {
    /// From GGML Q8_0 bytes (34 per block) of a `rows × cols` matrix.
    pub fn from_ggml(bytes: &[u8], rows: usize, cols: usize) -> Result<Self, KernelError> {
        let blocks = whole_blocks(cols)? * rows;
        if bytes.len() != blocks * GGML_BLOCK_BYTES {
            return Err(KernelError::Shape(format!(
                "{} bytes for {rows} × {cols} Q8_0 values ({} expected)",
                bytes.len(),
                blocks * GGML_BLOCK_BYTES
            )));
        }
        let mut quants = Vec::with_capacity(rows * cols);
        let mut scales = Vec::with_capacity(blocks);
        for block in bytes.chunks_exact(GGML_BLOCK_BYTES) {
            scales.push(f16::from_le_bytes([block[0], block[1]]).to_f32());
            quants.extend(block[2..].iter().map(|b| *b as i8));
        }
        Ok(Self::grouped(rows, cols, &quants, &scales))
    }

    /// From row-major quants and scales, into the grouped layout.
    fn grouped(rows: usize, cols: usize, quants: &[i8], scales: &[f32]) -> Self {
        let blocks = cols / BLOCK;
        let mut grouped = vec![0i8; group::groups(rows) * GROUP * cols];
        for (n, row) in quants.chunks_exact(cols).enumerate() {
            for (b, block) in row.chunks_exact(BLOCK).enumerate() {
                let base = ((n / GROUP) * blocks + b) * GROUP * BLOCK;
                for (j, q) in block.iter().enumerate() {
                    grouped[base + group::q8_offset(n % GROUP, j)] = *q;
                }
            }
        }
        Self { rows, cols, quants: grouped, scales: group::regroup_per_block(scales, rows, blocks) }
    }

    /// Quantize `values`, a row-major `rows × cols` matrix.
    pub fn quantize(values: &[f32], rows: usize, cols: usize) -> Result<Self, KernelError> {
        whole_blocks(cols)?;
        if values.len() != rows * cols {
            return Err(KernelError::Shape(format!("{} values for {rows} × {cols}", values.len())));
        }
        let (mut quants, mut scales) = (Vec::new(), Vec::new());
        quantize_into(values, &mut quants, &mut scales);
        Ok(Self::grouped(rows, cols, &quants, &scales))
    }

    pub fn rows(&self) -> usize {
        self.rows
    }

    pub fn cols(&self) -> usize {
        self.cols
    }

    /// Quant `j` (0..cols) of row `n`.
    pub(crate) fn quant(&self, n: usize, j: usize) -> i8 {
        let base = ((n / GROUP) * (self.cols / BLOCK) + j / BLOCK) * GROUP * BLOCK;
        self.quants[base + group::q8_offset(n % GROUP, j % BLOCK)]
    }

    /// Scale of block `b` of row `n`.
    pub(crate) fn scale(&self, n: usize, b: usize) -> f32 {
        self.scales[group::per_block(n, b, self.cols / BLOCK)]
    }

    /// Row `n`, dequantized (tests and embeddings lookups).
    pub fn row(&self, n: usize) -> Vec<f32> {
        (0..self.cols).map(|j| f32::from(self.quant(n, j)) * self.scale(n, j / BLOCK)).collect()
    }
}

impl Q8Rows {
    /// Quantize `values`, whole rows of `cols` values.
    pub fn quantize(values: &[f32], cols: usize) -> Result<Self, KernelError> {
        let mut rows = Self::default();
        rows.requantize(values, cols)?;
        Ok(rows)
    }

    /// Quantize `values` into this buffer, reusing its memory.
    pub fn requantize(&mut self, values: &[f32], cols: usize) -> Result<(), KernelError> {
        whole_blocks(cols)?;
        if !values.len().is_multiple_of(cols) {
            return Err(KernelError::Shape(format!("{} values are not rows of {cols}", values.len())));
        }
        quantize_into(values, &mut self.quants, &mut self.scales);
        block_sums(&self.quants, &self.scales, &mut self.sums);
        self.rows = values.len() / cols;
        self.cols = cols;
        Ok(())
    }

    pub fn rows(&self) -> usize {
        self.rows
    }

    pub fn cols(&self) -> usize {
        self.cols
    }
}
