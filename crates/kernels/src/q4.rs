//! Q4_1 matrices: per block of 32 values a scale `d`, a minimum `m` and 32 four-bit quants `q`
//! (value = d·q + m), as GGML stores them (byte j holds quant j in its low nibble and quant j + 16
//! in its high one), held as separate arrays of packed quants, scales and minimums, rows in the
//! groups of `group.rs`.

use half::f16;

use crate::group::{self, GROUP};
use crate::quantize::whole_blocks;
use crate::{BLOCK, KernelError};

/// GGML's Q4_1 block: f16 scale, f16 minimum, 16 bytes of quants.
const GGML_BLOCK_BYTES: usize = 4 + BLOCK / 2;

/// A weight matrix of `rows × cols` Q4_1 values (`cols` a whole number of blocks).
#[derive(Debug, Clone)]
pub struct Q4Matrix {
    rows: usize,
    cols: usize,
    /// 128 bytes per group of 8 rows and block (`group::q4_offset`), GGML's nibble pairs.
    pub(crate) packed: Vec<u8>,
    /// One per block, 8 per group and block (`group::per_block`).
    pub(crate) scales: Vec<f32>,
    pub(crate) mins: Vec<f32>,
}

impl Q4Matrix {
    /// From GGML Q4_1 bytes (20 per block) of a `rows × cols` matrix.
    pub fn from_ggml(bytes: &[u8], rows: usize, cols: usize) -> Result<Self, KernelError> {
        let blocks = whole_blocks(cols)? * rows;
        if bytes.len() != blocks * GGML_BLOCK_BYTES {
            return Err(KernelError::Shape(format!(
                "{} bytes for {rows} × {cols} Q4_1 values ({} expected)",
                bytes.len(),
                blocks * GGML_BLOCK_BYTES
            )));
        }
        let per_row = cols / BLOCK;
        let half = BLOCK / 2;
        let mut packed = vec![0u8; group::groups(rows) * GROUP * per_row * half];
        let (mut scales, mut mins) = (Vec::with_capacity(blocks), Vec::with_capacity(blocks));
        for (i, block) in bytes.chunks_exact(GGML_BLOCK_BYTES).enumerate() {
            let (n, b) = (i / per_row, i % per_row);
            scales.push(f16::from_le_bytes([block[0], block[1]]).to_f32());
            mins.push(f16::from_le_bytes([block[2], block[3]]).to_f32());
            let base = ((n / GROUP) * per_row + b) * GROUP * half;
            for (t, byte) in block[4..].iter().enumerate() {
                packed[base + group::q4_offset(n % GROUP, t)] = *byte;
            }
        }
        Ok(Self {
            rows,
            cols,
            packed,
            scales: group::regroup_per_block(&scales, rows, per_row),
            mins: group::regroup_per_block(&mins, rows, per_row),
        })
    }

    /// Quantize `values`, a row-major `rows × cols` matrix, as GGML's reference does.
    pub fn quantize(values: &[f32], rows: usize, cols: usize) -> Result<Self, KernelError> {
        whole_blocks(cols)?;
        if values.len() != rows * cols {
            return Err(KernelError::Shape(format!("{} values for {rows} × {cols}", values.len())));
        }
        let mut bytes = Vec::with_capacity(values.len() / BLOCK * GGML_BLOCK_BYTES);
        for block in values.chunks_exact(BLOCK) {
            let min = block.iter().copied().fold(f32::INFINITY, f32::min);
            let max = block.iter().copied().fold(f32::NEG_INFINITY, f32::max);
            let d = (max - min) / 15.0;
            let id = if d == 0.0 { 0.0 } else { 1.0 / d };
            bytes.extend(f16::from_f32(d).to_le_bytes());
            bytes.extend(f16::from_f32(min).to_le_bytes());
            let q = |v: f32| (((v - min) * id + 0.5) as u8).min(15);
            bytes.extend((0..BLOCK / 2).map(|j| q(block[j]) | (q(block[j + BLOCK / 2]) << 4)));
        }
        Self::from_ggml(&bytes, rows, cols)
    }

    pub fn rows(&self) -> usize {
        self.rows
    }

    pub fn cols(&self) -> usize {
        self.cols
    }

    /// Quant `j` (0..cols) of row `n`.
    pub(crate) fn quant(&self, n: usize, j: usize) -> u8 {
        let half = BLOCK / 2;
        let base = ((n / GROUP) * (self.cols / BLOCK) + j / BLOCK) * GROUP * half;
        let byte = self.packed[base + group::q4_offset(n % GROUP, j % half)];
        if j % BLOCK < half { byte & 0x0F } else { byte >> 4 }
    }

    /// Scale and minimum of block `b` of row `n`.
    pub(crate) fn scale_min(&self, n: usize, b: usize) -> (f32, f32) {
        let at = group::per_block(n, b, self.cols / BLOCK);
        (self.scales[at], self.mins[at])
    }

    /// Row `n`, dequantized.
    pub fn row(&self, n: usize) -> Vec<f32> {
        (0..self.cols)
            .map(|j| {
                let (d, m) = self.scale_min(n, j / BLOCK);
                d * f32::from(self.quant(n, j)) + m
            })
            .collect()
    }
}
