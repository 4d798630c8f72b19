//! The weights' layout: rows in groups of 8 (the last padded with zero rows), and within a
//! group, per block, 32-byte runs holding 8 consecutive quants of 4 of its rows. One load then
//! feeds `vpmaddubsw` for 4 rows at once against a broadcast of 8 activation quants, and a
//! horizontal add of the two runs of a chunk leaves the block's 8 row sums in one register in row
//! order: one int→float conversion and one FMA per block for 8 rows instead of one per row (the
//! repacking GGML's CPU backend does for its AVX2 GEMM, done here for Q8_0 and Q4_1).
//!
//! Row `r` of a group sits in set `(r / 2) % 2` (rows 0, 1, 4, 5 or rows 2, 3, 6, 7: the order a
//! 256-bit horizontal add interleaves its 128-bit halves in) at place `(r / 4) * 2 + r % 2`.
//! Per-block values (scales, minimums) are stored per group and block as 8 floats in row order.

/// Weight rows per group.
pub(crate) const GROUP: usize = 8;

/// Number of groups holding `rows` rows.
pub(crate) fn groups(rows: usize) -> usize {
    rows.div_ceil(GROUP)
}

/// The set and the place in it of row `r` (0..8) of a group.
fn slot(r: usize) -> (usize, usize) {
    ((r / 2) % 2, (r / 4) * 2 + r % 2)
}

/// Where quant `j` (0..32) of row `r` sits in a group's Q8_0 block of 256 bytes: run
/// `chunk * 2 + set` of 8, each 4 rows × 8 quants.
pub(crate) fn q8_offset(r: usize, j: usize) -> usize {
    let (set, place) = slot(r);
    ((j / 8) * 2 + set) * 32 + place * 8 + j % 8
}

/// Where GGML's Q4_1 byte `t` (0..16: quant `t` in its low nibble, `t + 16` in its high one) of
/// row `r` sits in a group's block of 128 bytes: run `(t / 8) * 2 + set` of 4, so a run's low
/// nibbles are chunk `t / 8` and its high nibbles chunk `t / 8 + 2`.
pub(crate) fn q4_offset(r: usize, t: usize) -> usize {
    let (set, place) = slot(r);
    ((t / 8) * 2 + set) * 32 + place * 8 + t % 8
}

/// Index of row `n`'s value for block `b` among per-block values stored per group.
pub(crate) fn per_block(n: usize, b: usize, blocks: usize) -> usize {
    ((n / GROUP) * blocks + b) * GROUP + n % GROUP
}

/// Per-block values of `rows` rows (row-major, `blocks` per row) regrouped, padded with zeros.
pub(crate) fn regroup_per_block(values: &[f32], rows: usize, blocks: usize) -> Vec<f32> {
    let mut out = vec![0f32; groups(rows) * GROUP * blocks];
    for n in 0..rows {
        for b in 0..blocks {
            out[per_block(n, b, blocks)] = values[n * blocks + b];
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_quant_of_a_group_block_has_its_own_byte() {
        let mut q8 = [false; GROUP * 32];
        let mut q4 = [false; GROUP * 16];
        for r in 0..GROUP {
            for j in 0..32 {
                assert!(!std::mem::replace(&mut q8[q8_offset(r, j)], true), "q8 {r},{j}");
            }
            for t in 0..16 {
                assert!(!std::mem::replace(&mut q4[q4_offset(r, t)], true), "q4 {r},{t}");
            }
        }
        assert!(q8.iter().all(|b| *b) && q4.iter().all(|b| *b));
    }

    #[test]
    fn sets_are_the_rows_a_horizontal_add_leaves_in_order() {
        // hadd(a, b) = [a01, a23, b01, b23 | a45, a67, b45, b67] in pairs of i32 lanes per place.
        let order: Vec<(usize, usize)> = (0..GROUP).map(slot).collect();
        assert_eq!(order, vec![(0, 0), (0, 1), (1, 0), (1, 1), (0, 2), (0, 3), (1, 2), (1, 3)]);
    }
}
