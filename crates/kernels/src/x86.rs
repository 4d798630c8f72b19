//! The AVX2 product: per 32-value block, `vpmaddubsw` multiplies |w| by x carrying w's sign (the
//! trick of GGML's `mul_sum_i8_pairs`), `vpmaddwd` sums pairs into eight i32 lanes, and an FMA
//! adds them, scaled by the two blocks' scales, to an f32 accumulator. A tile of 4 activation
//! rows × 2 weight rows keeps its 8 accumulators in registers and loads each weight block once
//! for the 4 rows.
//!
//! Why `unsafe` is sound here: every intrinsic call sits in a function compiled with
//! `#[target_feature(enable = "avx2,fma")]`, which is only called after `Kernel::detect` found
//! both features on this CPU at run time; loads are unaligned loads from slices whose bounds are
//! checked before the pointer is formed (`slice[a..a + 32]`).

use crate::{Q8Matrix, Q8Rows};

/// The instruction set the product runs with on this CPU.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kernel {
    #[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
    Avx2,
    Portable,
}

impl Kernel {
    pub(crate) fn detect() -> Self {
        #[cfg(target_arch = "x86_64")]
        if std::env::var_os("SPLAI_KERNELS_PORTABLE").is_none()
            && is_x86_feature_detected!("avx2")
            && is_x86_feature_detected!("fma")
        {
            return Self::Avx2;
        }
        Self::Portable
    }

    /// Run the product of weight rows `rows` if this kernel has an implementation here; `false`
    /// leaves it to the portable one.
    pub(crate) fn run(self, w: &Q8Matrix, rows: std::ops::Range<usize>, x: &Q8Rows, out: &mut [f32]) -> bool {
        match self {
            #[cfg(target_arch = "x86_64")]
            Self::Avx2 => {
                avx2::run(w, rows, x, out);
                true
            }
            _ => false,
        }
    }
}

#[cfg(target_arch = "x86_64")]
#[allow(unsafe_code)]
mod avx2 {
    use std::arch::x86_64::*;

    use crate::{BLOCK, Q8Matrix, Q8Rows};

    /// Activation rows and weight rows of a tile.
    const MR: usize = 4;
    const NR: usize = 2;

    pub(super) fn run(w: &Q8Matrix, rows: std::ops::Range<usize>, x: &Q8Rows, out: &mut [f32]) {
        let m = x.rows();
        let mut n = rows.start;
        while n < rows.end {
            let nr = NR.min(rows.end - n);
            let mut i = 0;
            while i < m {
                let mr = MR.min(m - i);
                let mut tile = [[0f32; MR]; NR];
                // SAFETY: `Kernel::Avx2` exists only where AVX2 and FMA were detected.
                unsafe {
                    match (mr, nr) {
                        (4, 2) => block_tile::<4, 2>(w, n, x, i, &mut tile),
                        (3, 2) => block_tile::<3, 2>(w, n, x, i, &mut tile),
                        (2, 2) => block_tile::<2, 2>(w, n, x, i, &mut tile),
                        (1, 2) => block_tile::<1, 2>(w, n, x, i, &mut tile),
                        (4, _) => block_tile::<4, 1>(w, n, x, i, &mut tile),
                        (3, _) => block_tile::<3, 1>(w, n, x, i, &mut tile),
                        (2, _) => block_tile::<2, 1>(w, n, x, i, &mut tile),
                        _ => block_tile::<1, 1>(w, n, x, i, &mut tile),
                    }
                }
                for (r, row) in tile.iter().enumerate().take(nr) {
                    let base = (n + r - rows.start) * m + i;
                    out[base..base + mr].copy_from_slice(&row[..mr]);
                }
                i += mr;
            }
            n += nr;
        }
    }

    /// 32 quants at `q[at..]` as one vector.
    #[inline]
    #[target_feature(enable = "avx2,fma")]
    fn load(q: &[i8], at: usize) -> __m256i {
        let block: &[i8] = &q[at..at + BLOCK];
        // SAFETY: `block` holds 32 bytes; the load is unaligned.
        unsafe { _mm256_loadu_si256(block.as_ptr().cast()) }
    }

    /// The 8 lanes of `v` summed, always in the same order.
    #[inline]
    #[target_feature(enable = "avx2,fma")]
    fn hsum(v: __m256) -> f32 {
        let s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
        let s = _mm_add_ps(s, _mm_movehl_ps(s, s));
        let s = _mm_add_ss(s, _mm_movehdup_ps(s));
        _mm_cvtss_f32(s)
    }

    /// Activation rows `i..i + R` times weight rows `n..n + C` into `tile[c][r]`.
    // Indices over three small arrays (weights, activations, accumulators) read plainer than zips.
    #[allow(clippy::needless_range_loop)]
    #[target_feature(enable = "avx2,fma")]
    fn block_tile<const R: usize, const C: usize>(
        w: &Q8Matrix,
        n: usize,
        x: &Q8Rows,
        i: usize,
        tile: &mut [[f32; MR]; NR],
    ) {
        let k = w.cols();
        let blocks = k / BLOCK;
        let ones = _mm256_set1_epi16(1);
        let mut acc = [[_mm256_setzero_ps(); R]; C];
        for b in 0..blocks {
            let mut wv = [_mm256_setzero_si256(); C];
            let mut abs = [_mm256_setzero_si256(); C];
            for c in 0..C {
                wv[c] = load(&w.quants, (n + c) * k + b * BLOCK);
                abs[c] = _mm256_sign_epi8(wv[c], wv[c]);
            }
            for r in 0..R {
                let xv = load(&x.quants, (i + r) * k + b * BLOCK);
                let xs = x.scales[(i + r) * blocks + b];
                for c in 0..C {
                    let signed = _mm256_sign_epi8(xv, wv[c]);
                    let dot = _mm256_madd_epi16(_mm256_maddubs_epi16(abs[c], signed), ones);
                    let scale = _mm256_set1_ps(w.scales[(n + c) * blocks + b] * xs);
                    acc[c][r] = _mm256_fmadd_ps(scale, _mm256_cvtepi32_ps(dot), acc[c][r]);
                }
            }
        }
        for (out, acc) in tile.iter_mut().zip(&acc) {
            for (o, a) in out.iter_mut().zip(acc) {
                *o = hsum(*a);
            }
        }
    }
}
