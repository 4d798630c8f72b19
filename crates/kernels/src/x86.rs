//! The AVX2 product: per 32-value block, `vpmaddubsw` multiplies |w| by x carrying w's sign (the
//! trick of GGML's `mul_sum_i8_pairs`), `vpmaddwd` sums pairs into eight i32 lanes, and an FMA
//! adds them, scaled by the two blocks' scales, to an f32 accumulator. A tile of 4 activation
//! rows × 2 weight rows keeps its 8 accumulators in registers and loads each weight block once
//! for the 4 rows.
//!
//! Why `unsafe` is sound here: every intrinsic call sits in a function compiled with
//! `#[target_feature(enable = "avx2,fma")]`, which is only called after `Kernel::detect` found
//! both features on this CPU at run time; loads are unaligned loads from slices whose bounds are
//! checked before the pointers are formed (a tile asserts that each of its rows holds every block
//! the loop reads).

use crate::{Q4Matrix, Q8Matrix, Q8Rows};

/// The instruction set the product runs with on this CPU.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kernel {
    #[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
    Avx2,
    Portable,
}

impl Kernel {
    pub(crate) fn detect() -> Self {
        static DETECTED: std::sync::OnceLock<Kernel> = std::sync::OnceLock::new();
        *DETECTED.get_or_init(Self::probe)
    }

    fn probe() -> Self {
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
    pub(crate) fn run_q8(
        self,
        w: &Q8Matrix,
        rows: std::ops::Range<usize>,
        x: &Q8Rows,
        out: &mut [f32],
    ) -> bool {
        match self {
            #[cfg(target_arch = "x86_64")]
            Self::Avx2 => {
                avx2::run(w, rows, x, out, avx2::Q8);
                true
            }
            _ => false,
        }
    }

    /// As [`Kernel::run_q8`] for Q4_1 weights.
    pub(crate) fn run_q4(
        self,
        w: &Q4Matrix,
        rows: std::ops::Range<usize>,
        x: &Q8Rows,
        out: &mut [f32],
    ) -> bool {
        match self {
            #[cfg(target_arch = "x86_64")]
            Self::Avx2 => {
                avx2::run(w, rows, x, out, avx2::Q4);
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

    use crate::{BLOCK, Q4Matrix, Q8Matrix, Q8Rows};

    /// Activation rows and weight rows of a tile.
    const MR: usize = 4;
    const NR: usize = 2;

    /// The tiles of one weight format, by shape.
    pub(super) trait Tiles<W> {
        /// Activation rows × weight rows `shape` from rows `i` and `n` into `out`.
        ///
        /// # Safety
        /// Callable only where AVX2 and FMA were detected.
        unsafe fn tile(&self, shape: (usize, usize), w: &W, n: usize, x: &Q8Rows, i: usize, out: &mut Tile);
    }

    pub(super) type Tile = [[f32; MR]; NR];

    pub(super) struct Q8;
    pub(super) struct Q4;

    macro_rules! dispatch {
        ($f:ident, $r:expr, $c:expr, $($arg:expr),*) => {
            match ($r, $c) {
                (4, 2) => $f::<4, 2>($($arg),*),
                (3, 2) => $f::<3, 2>($($arg),*),
                (2, 2) => $f::<2, 2>($($arg),*),
                (1, 2) => $f::<1, 2>($($arg),*),
                (4, _) => $f::<4, 1>($($arg),*),
                (3, _) => $f::<3, 1>($($arg),*),
                (2, _) => $f::<2, 1>($($arg),*),
                _ => $f::<1, 1>($($arg),*),
            }
        };
    }

    impl Tiles<Q8Matrix> for Q8 {
        unsafe fn tile(
            &self,
            (r, c): (usize, usize),
            w: &Q8Matrix,
            n: usize,
            x: &Q8Rows,
            i: usize,
            out: &mut Tile,
        ) {
            // SAFETY: the caller's promise (AVX2 and FMA present) is what these functions need.
            unsafe { dispatch!(block_tile, r, c, w, n, x, i, out) }
        }
    }

    impl Tiles<Q4Matrix> for Q4 {
        unsafe fn tile(
            &self,
            (r, c): (usize, usize),
            w: &Q4Matrix,
            n: usize,
            x: &Q8Rows,
            i: usize,
            out: &mut Tile,
        ) {
            // SAFETY: as above.
            unsafe { dispatch!(q4_tile, r, c, w, n, x, i, out) }
        }
    }

    pub(super) fn run<W>(
        w: &W,
        rows: std::ops::Range<usize>,
        x: &Q8Rows,
        out: &mut [f32],
        tiles: impl Tiles<W>,
    ) {
        let m = x.rows();
        let mut n = rows.start;
        while n < rows.end {
            let nr = NR.min(rows.end - n);
            let mut i = 0;
            while i < m {
                let mr = MR.min(m - i);
                let mut tile = [[0f32; MR]; NR];
                // SAFETY: `Kernel::Avx2` exists only where AVX2 and FMA were detected.
                unsafe { tiles.tile((mr, nr), w, n, x, i, &mut tile) };
                for (r, row) in tile.iter().enumerate().take(nr) {
                    let base = (n + r - rows.start) * m + i;
                    out[base..base + mr].copy_from_slice(&row[..mr]);
                }
                i += mr;
            }
            n += nr;
        }
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

    /// `a · b` in eight lanes, then summed: always the same order for the same lengths.
    #[inline]
    #[target_feature(enable = "avx2,fma")]
    fn dot(a: &[f32], b: &[f32]) -> f32 {
        let mut acc = _mm256_setzero_ps();
        let (ca, cb) = (a.chunks_exact(8), b.chunks_exact(8));
        let tail: f32 = ca.remainder().iter().zip(cb.remainder()).map(|(x, y)| x * y).sum();
        for (x, y) in ca.zip(cb) {
            // SAFETY: both chunks hold 8 floats; the loads are unaligned.
            let (x, y) = unsafe { (_mm256_loadu_ps(x.as_ptr()), _mm256_loadu_ps(y.as_ptr())) };
            acc = _mm256_fmadd_ps(x, y, acc);
        }
        hsum(acc) + tail
    }

    /// Row starts of a tile: `C` weight rows from `n`, `R` activation rows from `i`, each
    /// checked to hold `blocks` blocks, so the block loop reads through raw pointers.
    struct Rows<const R: usize, const C: usize> {
        xq: [*const i8; R],
        xs: [*const f32; R],
        ws: [*const f32; C],
    }

    impl<const R: usize, const C: usize> Rows<R, C> {
        fn new(x: &Q8Rows, i: usize, w_scales: &[f32], n: usize, blocks: usize) -> Self {
            let k = blocks * BLOCK;
            assert!((i + R) * k <= x.quants.len() && (i + R) * blocks <= x.scales.len(), "activation rows");
            assert!((n + C) * blocks <= w_scales.len(), "weight rows");
            Self {
                xq: std::array::from_fn(|r| x.quants[(i + r) * k..].as_ptr()),
                xs: std::array::from_fn(|r| x.scales[(i + r) * blocks..].as_ptr()),
                ws: std::array::from_fn(|c| w_scales[(n + c) * blocks..].as_ptr()),
            }
        }
    }

    /// Activation rows `i..i + R` times Q8_0 weight rows `n..n + C` into `tile[c][r]`.
    // Indices over three small arrays (weights, activations, accumulators) read plainer than zips.
    #[allow(clippy::needless_range_loop)]
    #[target_feature(enable = "avx2,fma")]
    fn block_tile<const R: usize, const C: usize>(
        w: &Q8Matrix,
        n: usize,
        x: &Q8Rows,
        i: usize,
        tile: &mut Tile,
    ) {
        let k = w.cols();
        let blocks = k / BLOCK;
        let rows = Rows::<R, C>::new(x, i, &w.scales, n, blocks);
        assert!((n + C) * k <= w.quants.len(), "weight rows");
        let wq: [*const i8; C] = std::array::from_fn(|c| w.quants[(n + c) * k..].as_ptr());
        let ones = _mm256_set1_epi16(1);
        let mut acc = [[_mm256_setzero_ps(); R]; C];
        for b in 0..blocks {
            // SAFETY: every row holds `blocks` blocks (asserted above), so the 32 bytes at
            // `b * 32` and the scale at `b` are inside it; the loads are unaligned.
            unsafe {
                let mut wv = [_mm256_setzero_si256(); C];
                let mut abs = [_mm256_setzero_si256(); C];
                let mut ws = [_mm256_setzero_ps(); C];
                for c in 0..C {
                    wv[c] = _mm256_loadu_si256(wq[c].add(b * BLOCK).cast());
                    abs[c] = _mm256_sign_epi8(wv[c], wv[c]);
                    ws[c] = _mm256_broadcast_ss(&*rows.ws[c].add(b));
                }
                for r in 0..R {
                    let xv = _mm256_loadu_si256(rows.xq[r].add(b * BLOCK).cast());
                    let xs = _mm256_broadcast_ss(&*rows.xs[r].add(b));
                    for c in 0..C {
                        let signed = _mm256_sign_epi8(xv, wv[c]);
                        let dot = _mm256_madd_epi16(_mm256_maddubs_epi16(abs[c], signed), ones);
                        let scale = _mm256_mul_ps(ws[c], xs);
                        acc[c][r] = _mm256_fmadd_ps(scale, _mm256_cvtepi32_ps(dot), acc[c][r]);
                    }
                }
            }
        }
        for (out, acc) in tile.iter_mut().zip(&acc) {
            for (o, a) in out.iter_mut().zip(acc) {
                *o = hsum(*a);
            }
        }
    }

    /// Q4_1 weights: the 4-bit quants are unsigned, so `vpmaddubsw` takes them as they are (no
    /// sign trick); each block's minimum adds `m_w · d_x·Σq_x`, summed over blocks at the end.
    #[allow(clippy::needless_range_loop)]
    #[target_feature(enable = "avx2,fma")]
    fn q4_tile<const R: usize, const C: usize>(
        w: &Q4Matrix,
        n: usize,
        x: &Q8Rows,
        i: usize,
        tile: &mut Tile,
    ) {
        let k = w.cols();
        let blocks = k / BLOCK;
        let rows = Rows::<R, C>::new(x, i, &w.scales, n, blocks);
        let half = BLOCK / 2;
        assert!((n + C) * blocks * half <= w.packed.len(), "weight rows");
        let wq: [*const u8; C] = std::array::from_fn(|c| w.packed[(n + c) * blocks * half..].as_ptr());
        let ones = _mm256_set1_epi16(1);
        let nibble = _mm256_set1_epi8(0x0F);
        let mut acc = [[_mm256_setzero_ps(); R]; C];
        for b in 0..blocks {
            // SAFETY: as in `block_tile`: offsets inside rows of `blocks` blocks (asserted).
            unsafe {
                let mut wv = [_mm256_setzero_si256(); C];
                let mut ws = [_mm256_setzero_ps(); C];
                for c in 0..C {
                    let raw = _mm_loadu_si128(wq[c].add(b * half).cast());
                    wv[c] = _mm256_and_si256(_mm256_set_m128i(_mm_srli_epi16(raw, 4), raw), nibble);
                    ws[c] = _mm256_broadcast_ss(&*rows.ws[c].add(b));
                }
                for r in 0..R {
                    let xv = _mm256_loadu_si256(rows.xq[r].add(b * BLOCK).cast());
                    let xs = _mm256_broadcast_ss(&*rows.xs[r].add(b));
                    for c in 0..C {
                        let dot = _mm256_madd_epi16(_mm256_maddubs_epi16(wv[c], xv), ones);
                        let scale = _mm256_mul_ps(ws[c], xs);
                        acc[c][r] = _mm256_fmadd_ps(scale, _mm256_cvtepi32_ps(dot), acc[c][r]);
                    }
                }
            }
        }
        for c in 0..C {
            let mins = &w.mins[(n + c) * blocks..][..blocks];
            for r in 0..R {
                tile[c][r] = hsum(acc[c][r]) + dot(mins, &x.sums[(i + r) * blocks..][..blocks]);
            }
        }
    }
}

/// Define `fn $name(args)` whose body is compiled twice: once for AVX2 and FMA, taken when this
/// CPU has them, and once for the baseline. Loops in the body vectorise eight lanes wide in the
/// first copy, four in the second. The body must not hand work to other functions that are not
/// inlined into it (rayon tasks, closures passed elsewhere): those keep the baseline.
macro_rules! twin {
    ($(#[$meta:meta])* $vis:vis fn $name:ident($($arg:ident: $ty:ty),* $(,)?) $body:block) => {
        $(#[$meta])*
        $vis fn $name($($arg: $ty),*) {
            #[inline(always)]
            fn body($($arg: $ty),*) $body
            #[cfg(target_arch = "x86_64")]
            #[target_feature(enable = "avx2,fma")]
            fn avx2($($arg: $ty),*) {
                body($($arg),*)
            }
            #[cfg(target_arch = "x86_64")]
            if $crate::x86::Kernel::detect() == $crate::x86::Kernel::Avx2 {
                // SAFETY: `detect` found AVX2 and FMA on this CPU, the features `avx2` is built
                // for; the body itself is safe code.
                #[allow(unsafe_code)]
                unsafe {
                    return avx2($($arg),*);
                }
            }
            body($($arg),*)
        }
    };
}
pub(crate) use twin;
