//! The row operations of a BERT encoder layer spread over the rayon pool: the kernels
//! (`splai_kernels::rows`, compiled for AVX2 where present) run on chunks of whole rows, and
//! attention on sequences packed one after another without padding (each sequence attends only
//! to its own rows, so no mask is needed).

use rayon::prelude::*;
use splai_kernels::rows;
pub(crate) use splai_kernels::rows::Activation;

/// Values one task takes at least (a pass over 32 sentences has ~10⁵–10⁶ values per operation).
const CHUNK: usize = 16 * 1024;

/// A layer norm's gain, bias and epsilon.
#[derive(Debug)]
pub(crate) struct Norm {
    pub weight: Vec<f32>,
    pub bias: Vec<f32>,
    pub eps: f32,
}

/// Values per task: whole rows of `width`.
fn per_task(width: usize) -> usize {
    CHUNK.div_ceil(width).max(1) * width
}

impl Norm {
    /// `x[r] = norm(x[r] + y[r] + bias)` for every row (the residual, the sublayer's output and
    /// its bias in one pass).
    pub fn residual(&self, x: &mut [f32], y: &[f32], bias: &[f32]) {
        let per = per_task(self.weight.len());
        x.par_chunks_mut(per)
            .zip(y.par_chunks(per))
            .for_each(|(x, y)| rows::residual_norm(x, y, bias, &self.weight, &self.bias, self.eps));
    }

    /// `x[r] = norm(x[r])` for every row.
    pub fn rows(&self, x: &mut [f32]) {
        x.par_chunks_mut(per_task(self.weight.len()))
            .for_each(|x| rows::norm(x, &self.weight, &self.bias, self.eps));
    }
}

/// `x[r] = act(x[r] + bias)` for every row.
pub(crate) fn bias_activation(x: &mut [f32], bias: &[f32], act: Activation) {
    x.par_chunks_mut(per_task(bias.len())).for_each(|x| rows::bias_activation(x, bias, act));
}

/// `x[r] += bias` for every row.
pub(crate) fn add_bias(x: &mut [f32], bias: &[f32]) {
    x.par_chunks_mut(per_task(bias.len())).for_each(|x| rows::add_bias(x, bias));
}

/// Multi-head self-attention of sequences packed back to back: `qkv` holds each row's query,
/// key and value projections side by side (`3 × width` values), `lens` the sequences' lengths in
/// order; writes each row's attended values (`width` values) to `out`.
pub(crate) fn attention(qkv: &[f32], lens: &[usize], heads: usize, out: &mut [f32]) {
    let width = out.len() / lens.iter().sum::<usize>().max(1);
    // Each sequence owns a contiguous block of rows of `qkv` and of `out`.
    let mut parts = Vec::with_capacity(lens.len());
    let (mut qkv, mut rest) = (qkv, out);
    for &len in lens {
        let (q_here, q_next) = qkv.split_at(len * 3 * width);
        let (o_here, o_next) = rest.split_at_mut(len * width);
        parts.push((q_here, o_here));
        (qkv, rest) = (q_next, o_next);
    }
    parts.into_par_iter().for_each(|(qkv, out)| rows::attend(qkv, width, heads, out));
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A sequence's attention does not see the sequences packed next to it.
    #[test]
    fn packed_sequences_attend_only_to_themselves() {
        let (width, heads) = (4, 2);
        let row =
            |i: usize| -> Vec<f32> { (0..3 * width).map(|c| ((i * 7 + c * 3) % 5) as f32 - 2.0).collect() };
        let alone: Vec<f32> = (0..3).flat_map(row).collect();
        let mut out_alone = vec![0.0; 3 * width];
        attention(&alone, &[3], heads, &mut out_alone);
        let packed: Vec<f32> = (10..12).flat_map(row).chain(alone.iter().copied()).collect();
        let mut out_packed = vec![0.0; 5 * width];
        attention(&packed, &[2, 3], heads, &mut out_packed);
        assert_eq!(&out_packed[2 * width..], &out_alone[..]);
    }
}
