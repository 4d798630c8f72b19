//! The AVX2 product over weights in the groups of `group.rs`: per block and group of 8 weight
//! rows, each 8 quants of an activation row are broadcast and `vpmaddubsw` multiplies them with
//! 8 quants of 4 weight rows at once (for Q8_0, |w| by x carrying w's sign: the trick of GGML's
//! `mul_sum_i8_pairs`); `vpmaddwd` and a horizontal add leave the block's 8 row sums in one
//! register, converted and added to an f32 accumulator by one FMA with the 8 rows' scales. A tile
//! is one group × up to 4 activation rows: each weight block is loaded once for the 4 rows.
//! Where the CPU has AVX-512 VNNI, the same tiles use `vpdpbusd` (same registers, same sums) in
//! place of the `vpmaddubsw` + `vpmaddwd` + `vpaddd` steps.
//!
//! Why `unsafe` is sound here: every intrinsic call sits in a function compiled with
//! `#[target_feature(enable = "avx2,fma")]` (the VNNI tiles also `avx512vnni,avx512vl`), which is
//! only called after `Kernel::detect` found those features on this CPU at run time; loads are unaligned loads from slices whose bounds are
//! checked before the pointers are formed (a tile asserts that its group and each of its
//! activation rows hold every block the loop reads).

use crate::{Q4Matrix, Q8Matrix, Q8Rows};

/// The instruction set the product runs with on this CPU.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kernel {
    /// AVX2 with AVX-512 VNNI (and VL): `vpdpbusd` on the same 256-bit registers does in one
    /// instruction what `vpmaddubsw` + `vpmaddwd` + `vpaddd` do, with the same integer sums.
    #[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
    Vnni,
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
            // `SPLAI_KERNELS_AVX2` keeps the AVX2 tiles on a VNNI CPU (to compare the two).
            if std::env::var_os("SPLAI_KERNELS_AVX2").is_none()
                && is_x86_feature_detected!("avx512vnni")
                && is_x86_feature_detected!("avx512vl")
            {
                return Self::Vnni;
            }
            return Self::Avx2;
        }
        Self::Portable
    }

    /// Whether AVX2 and FMA are there (every kernel but the portable one).
    pub(crate) fn avx2(self) -> bool {
        self != Self::Portable
    }

    /// Run the product of weight rows `rows` if this kernel has an implementation here; `false`
    /// leaves it to the portable one.
    pub(crate) fn run_q8(
        self,
        w: &Q8Matrix,
        rows: std::ops::Range<usize>,
        x: &Q8Rows,
        out: &mut [&mut [f32]],
    ) -> bool {
        match self {
            #[cfg(target_arch = "x86_64")]
            Self::Avx2 => {
                avx2::run(w, rows, x, out, avx2::Q8);
                true
            }
            #[cfg(target_arch = "x86_64")]
            Self::Vnni => {
                avx2::run(w, rows, x, out, avx2::Q8Vnni);
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
        out: &mut [&mut [f32]],
    ) -> bool {
        match self {
            #[cfg(target_arch = "x86_64")]
            Self::Avx2 => {
                avx2::run(w, rows, x, out, avx2::Q4);
                true
            }
            #[cfg(target_arch = "x86_64")]
            Self::Vnni => {
                avx2::run(w, rows, x, out, avx2::Q4Vnni);
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

    use crate::group::GROUP;
    use crate::{BLOCK, Q4Matrix, Q8Matrix, Q8Rows};

    /// Activation rows of a tile (its weight rows are one group).
    const MR: usize = 4;

    /// A tile's results: per activation row, the group's 8 weight rows.
    pub(super) type Tile = [[f32; GROUP]; MR];

    /// The tiles of one weight format.
    pub(super) trait Tiles<W> {
        /// `r` activation rows from row `i` times group `g` into `out`.
        ///
        /// # Safety
        /// Callable only where AVX2 and FMA were detected.
        unsafe fn tile(&self, r: usize, w: &W, g: usize, x: &Q8Rows, i: usize, out: &mut Tile);
    }

    pub(super) struct Q8;
    pub(super) struct Q4;
    /// The same tiles with `vpdpbusd` (AVX-512 VNNI on 256-bit registers).
    pub(super) struct Q8Vnni;
    pub(super) struct Q4Vnni;

    macro_rules! dispatch {
        ($f:ident, $r:expr, $($arg:expr),*) => {
            match $r {
                4 => $f::<4>($($arg),*),
                3 => $f::<3>($($arg),*),
                2 => $f::<2>($($arg),*),
                _ => $f::<1>($($arg),*),
            }
        };
    }

    impl Tiles<Q8Matrix> for Q8 {
        unsafe fn tile(&self, r: usize, w: &Q8Matrix, g: usize, x: &Q8Rows, i: usize, out: &mut Tile) {
            // SAFETY: the caller's promise (AVX2 and FMA present) is what these functions need.
            unsafe { dispatch!(q8_tile, r, w, g, x, i, out) }
        }
    }

    impl Tiles<Q4Matrix> for Q4 {
        unsafe fn tile(&self, r: usize, w: &Q4Matrix, g: usize, x: &Q8Rows, i: usize, out: &mut Tile) {
            // SAFETY: as above.
            unsafe { dispatch!(q4_tile, r, w, g, x, i, out) }
        }
    }

    impl Tiles<Q8Matrix> for Q8Vnni {
        unsafe fn tile(&self, r: usize, w: &Q8Matrix, g: usize, x: &Q8Rows, i: usize, out: &mut Tile) {
            // SAFETY: built only as `Kernel::Vnni`, which `detect` picks where AVX2, FMA,
            // AVX-512 VNNI and VL are present.
            unsafe { dispatch!(q8_tile_vnni, r, w, g, x, i, out) }
        }
    }

    impl Tiles<Q4Matrix> for Q4Vnni {
        unsafe fn tile(&self, r: usize, w: &Q4Matrix, g: usize, x: &Q8Rows, i: usize, out: &mut Tile) {
            // SAFETY: as above.
            unsafe { dispatch!(q4_tile_vnni, r, w, g, x, i, out) }
        }
    }

    /// Weight rows `rows` (starting on a group) against every row `i` of `x` into
    /// `out[i][n - rows.start]`.
    pub(super) fn run<W>(
        w: &W,
        rows: std::ops::Range<usize>,
        x: &Q8Rows,
        out: &mut [&mut [f32]],
        tiles: impl Tiles<W>,
    ) {
        assert!(rows.start.is_multiple_of(GROUP), "a task starts on a group");
        let m = x.rows();
        for g in rows.start / GROUP..rows.end.div_ceil(GROUP) {
            let n0 = g * GROUP;
            let nr = GROUP.min(rows.end - n0);
            let mut i = 0;
            while i < m {
                let mr = MR.min(m - i);
                let mut tile = [[0f32; GROUP]; MR];
                // SAFETY: `Kernel::Avx2` and `Kernel::Vnni` (whose tiles these are) exist only where
                // their features were detected.
                unsafe { tiles.tile(mr, w, g, x, i, &mut tile) };
                for (r, row) in tile.iter().enumerate().take(mr) {
                    out[i + r][n0 - rows.start..][..nr].copy_from_slice(&row[..nr]);
                }
                i += mr;
            }
        }
    }

    /// Activation rows `i..i + R`, checked to hold `blocks` blocks, so the block loop reads
    /// through raw pointers.
    struct Act<const R: usize> {
        quants: [*const i8; R],
        scales: [*const f32; R],
        sums: [*const f32; R],
    }

    impl<const R: usize> Act<R> {
        fn new(x: &Q8Rows, i: usize, blocks: usize) -> Self {
            let k = blocks * BLOCK;
            assert!(
                (i + R) * k <= x.quants.len()
                    && (i + R) * blocks <= x.scales.len()
                    && (i + R) * blocks <= x.sums.len(),
                "activation rows"
            );
            Self {
                quants: std::array::from_fn(|r| x.quants[(i + r) * k..].as_ptr()),
                scales: std::array::from_fn(|r| x.scales[(i + r) * blocks..].as_ptr()),
                sums: std::array::from_fn(|r| x.sums[(i + r) * blocks..].as_ptr()),
            }
        }
    }

    /// The 8 quants of chunk `c` of activation block `b`, in each 64-bit lane.
    ///
    /// # Safety
    /// `q` points at a row holding block `b`.
    #[inline]
    #[target_feature(enable = "avx2,fma")]
    unsafe fn chunk(q: *const i8, b: usize, c: usize) -> __m256i {
        // SAFETY: the caller's promise; an unaligned 8-byte read inside the block.
        unsafe { _mm256_set1_epi64x(q.add(b * BLOCK + c * 8).cast::<i64>().read_unaligned()) }
    }

    /// Group `g`'s 8 sums (i32 pairs of its two sets) as one f32 vector in row order.
    #[inline]
    #[target_feature(enable = "avx2,fma")]
    fn row_sums(sets: [__m256i; 2]) -> __m256 {
        _mm256_cvtepi32_ps(_mm256_hadd_epi32(sets[0], sets[1]))
    }

    /// `acc + Σ u·s` over each 4 adjacent bytes (u unsigned, s signed), per i32 lane: two
    /// steps through 16-bit pairs on AVX2 (no pair saturates: |u| ≤ 128, |s| ≤ 127).
    #[inline]
    #[target_feature(enable = "avx2,fma")]
    fn dot_avx2(acc: __m256i, u: __m256i, s: __m256i) -> __m256i {
        _mm256_add_epi32(acc, _mm256_madd_epi16(_mm256_maddubs_epi16(u, s), _mm256_set1_epi16(1)))
    }

    /// As [`dot_avx2`] in one `vpdpbusd`.
    #[inline]
    #[target_feature(enable = "avx2,fma,avx512vnni,avx512vl")]
    fn dot_vnni(acc: __m256i, u: __m256i, s: __m256i) -> __m256i {
        _mm256_dpbusd_epi32(acc, u, s)
    }

    /// Q4_1 on AVX2: four chunks' 16-bit pair sums add up without overflow (≤ 2·15·127 each)
    /// before one widening per set ([`widen_avx2`]).
    #[inline]
    #[target_feature(enable = "avx2,fma")]
    fn pairs_avx2(acc: __m256i, u: __m256i, s: __m256i) -> __m256i {
        _mm256_add_epi16(acc, _mm256_maddubs_epi16(u, s))
    }

    #[inline]
    #[target_feature(enable = "avx2,fma")]
    fn widen_avx2(sets: [__m256i; 2]) -> [__m256i; 2] {
        let ones = _mm256_set1_epi16(1);
        [_mm256_madd_epi16(sets[0], ones), _mm256_madd_epi16(sets[1], ones)]
    }

    /// `vpdpbusd` sums into 32-bit lanes already.
    #[inline]
    fn widened(sets: [__m256i; 2]) -> [__m256i; 2] {
        sets
    }

    /// `q8_tile!(name, features, dot)`: activation rows `i..i + R` times the Q8_0 weight rows of
    /// group `g` into `tile[r]`, with `dot` (compiled for `features`) summing each 4 products.
    macro_rules! q8_tile {
        ($name:ident, $features:literal, $dot:ident) => {
            // Indices over small arrays (runs, activations, accumulators) read plainer than zips.
            #[allow(clippy::needless_range_loop)]
            #[target_feature(enable = $features)]
            fn $name<const R: usize>(w: &Q8Matrix, g: usize, x: &Q8Rows, i: usize, tile: &mut Tile) {
                let blocks = w.cols() / BLOCK;
                let act = Act::<R>::new(x, i, blocks);
                let span = blocks * GROUP * BLOCK;
                assert!(
                    (g + 1) * span <= w.quants.len() && (g + 1) * blocks * GROUP <= w.scales.len(),
                    "group"
                );
                let wq = w.quants[g * span..].as_ptr();
                let ws = w.scales[g * blocks * GROUP..].as_ptr();
                let mut acc = [_mm256_setzero_ps(); R];
                for b in 0..blocks {
                    // SAFETY: the group holds `blocks` blocks of 8 runs of 32 bytes and 8 scales, each
                    // activation row `blocks` blocks (asserted above); the loads are unaligned.
                    unsafe {
                        let base = wq.add(b * GROUP * BLOCK);
                        let mut run = [_mm256_setzero_si256(); 8];
                        let mut abs = [_mm256_setzero_si256(); 8];
                        for p in 0..8 {
                            run[p] = _mm256_loadu_si256(base.add(p * 32).cast());
                            abs[p] = _mm256_sign_epi8(run[p], run[p]);
                        }
                        let scale = _mm256_loadu_ps(ws.add(b * GROUP));
                        for r in 0..R {
                            let mut sets = [_mm256_setzero_si256(); 2];
                            for c in 0..4 {
                                let xc = chunk(act.quants[r], b, c);
                                for s in 0..2 {
                                    let p = c * 2 + s;
                                    sets[s] = $dot(sets[s], abs[p], _mm256_sign_epi8(xc, run[p]));
                                }
                            }
                            let xs = _mm256_broadcast_ss(&*act.scales[r].add(b));
                            acc[r] = _mm256_fmadd_ps(row_sums(sets), _mm256_mul_ps(scale, xs), acc[r]);
                        }
                    }
                }
                for r in 0..R {
                    // SAFETY: a row of the tile holds 8 floats; the store is unaligned.
                    unsafe { _mm256_storeu_ps(tile[r].as_mut_ptr(), acc[r]) };
                }
            }
        };
    }
    q8_tile!(q8_tile, "avx2,fma", dot_avx2);
    q8_tile!(q8_tile_vnni, "avx2,fma,avx512vnni,avx512vl", dot_vnni);

    /// `q4_tile!(name, features, dot, widen)`: Q4_1 weights. The 4-bit quants are unsigned, so
    /// they multiply as they are (no sign trick); `dot` accumulates each chunk, `widen` turns the
    /// sums into 32-bit lanes; each block's minimums add `m_w · d_x·Σq_x`.
    macro_rules! q4_tile {
        ($name:ident, $features:literal, $dot:ident, $widen:ident) => {
            #[allow(clippy::needless_range_loop)]
            #[target_feature(enable = $features)]
            fn $name<const R: usize>(w: &Q4Matrix, g: usize, x: &Q8Rows, i: usize, tile: &mut Tile) {
                let blocks = w.cols() / BLOCK;
                let act = Act::<R>::new(x, i, blocks);
                let half = BLOCK / 2;
                let span = blocks * GROUP * half;
                let per = blocks * GROUP;
                assert!((g + 1) * span <= w.packed.len(), "group");
                assert!((g + 1) * per <= w.scales.len() && (g + 1) * per <= w.mins.len(), "group");
                let wq = w.packed[g * span..].as_ptr();
                let (ws, wm) = (w.scales[g * per..].as_ptr(), w.mins[g * per..].as_ptr());
                let nibble = _mm256_set1_epi8(0x0F);
                let mut acc = [_mm256_setzero_ps(); R];
                for b in 0..blocks {
                    // SAFETY: as in `q8_tile`: the group holds `blocks` blocks of 4 runs of 32 bytes, 8
                    // scales and 8 minimums, each activation row `blocks` blocks (asserted above).
                    unsafe {
                        let base = wq.add(b * GROUP * half);
                        // Chunk c of set s: run (c % 2) * 2 + s, low nibbles for c < 2, high ones after.
                        let mut quants = [_mm256_setzero_si256(); 8];
                        for p in 0..4 {
                            let raw = _mm256_loadu_si256(base.add(p * 32).cast());
                            quants[p] = _mm256_and_si256(raw, nibble);
                            quants[p + 4] = _mm256_and_si256(_mm256_srli_epi16(raw, 4), nibble);
                        }
                        let scale = _mm256_loadu_ps(ws.add(b * GROUP));
                        let min = _mm256_loadu_ps(wm.add(b * GROUP));
                        for r in 0..R {
                            let mut sets = [_mm256_setzero_si256(); 2];
                            for c in 0..4 {
                                let xc = chunk(act.quants[r], b, c);
                                for s in 0..2 {
                                    let q = quants[(c / 2) * 4 + (c % 2) * 2 + s];
                                    sets[s] = $dot(sets[s], q, xc);
                                }
                            }
                            let sets = $widen(sets);
                            let xs = _mm256_broadcast_ss(&*act.scales[r].add(b));
                            let xsum = _mm256_broadcast_ss(&*act.sums[r].add(b));
                            acc[r] = _mm256_fmadd_ps(row_sums(sets), _mm256_mul_ps(scale, xs), acc[r]);
                            acc[r] = _mm256_fmadd_ps(min, xsum, acc[r]);
                        }
                    }
                }
                for r in 0..R {
                    // SAFETY: a row of the tile holds 8 floats; the store is unaligned.
                    unsafe { _mm256_storeu_ps(tile[r].as_mut_ptr(), acc[r]) };
                }
            }
        };
    }
    q4_tile!(q4_tile, "avx2,fma", pairs_avx2, widen_avx2);
    q4_tile!(q4_tile_vnni, "avx2,fma,avx512vnni,avx512vl", dot_vnni, widened);
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
            if $crate::x86::Kernel::detect().avx2() {
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
