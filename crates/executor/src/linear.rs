//! A weight matrix of the forward pass: Q8_0 matrices multiply through `splai-kernels` (one
//! integer product for every row of the input, whatever the number of sequences in a step),
//! others through candle's `QMatMul`.
//!
//! Why not candle for Q8_0: its quantized product runs one dot product per input row per weight
//! row, so a step over 32 sequences streams the weights 32 times and costs 32 single steps
//! (`docs/benchmarks.md`, issue 17). The kernel computes each output with the same operations
//! however many rows it is given, so batched and single decoding agree bit for bit.

use candle_core::quantized::{GgmlDType, QMatMul, QTensor};
use candle_core::{Module, Result, Tensor};
use splai_kernels::{Q8Matrix, Q8Rows};

#[derive(Debug)]
pub enum Linear {
    Q8(Q8Matrix),
    Candle(QMatMul),
}

fn kernel_err(e: splai_kernels::KernelError) -> candle_core::Error {
    candle_core::Error::Msg(e.to_string())
}

impl Linear {
    /// Hold `t` (`[rows, cols]`): Q8_0 through the kernels, anything else through candle.
    pub fn new(t: QTensor) -> Result<Self> {
        if t.dtype() == GgmlDType::Q8_0 {
            let (rows, cols) = t.shape().dims2()?;
            return Ok(Self::Q8(Q8Matrix::from_ggml(&t.data()?, rows, cols).map_err(kernel_err)?));
        }
        Ok(Self::Candle(QMatMul::from_qtensor(t)?))
    }

    /// `x` (`[.., cols]`) times this matrix transposed: `[.., rows]`.
    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        match self {
            Self::Candle(m) => m.forward(x),
            Self::Q8(w) => {
                let rows = Q8Rows::quantize(&flat(x)?, w.cols()).map_err(kernel_err)?;
                product(w, &rows, x)
            }
        }
    }
}

/// `x` as one row-major vector of f32.
fn flat(x: &Tensor) -> Result<Vec<f32>> {
    x.flatten_all()?.to_vec1::<f32>()
}

/// `rows` (quantized from `x`) times `w`, shaped like `x` with its last dimension `w.rows()`.
fn product(w: &Q8Matrix, rows: &Q8Rows, x: &Tensor) -> Result<Tensor> {
    let mut out = vec![0f32; rows.rows() * w.rows()];
    w.matmul(rows, &mut out).map_err(kernel_err)?;
    let mut dims = x.dims().to_vec();
    if let Some(last) = dims.last_mut() {
        *last = w.rows();
    }
    Tensor::from_vec(out, dims, x.device())
}

/// `x` times each of `ws`, quantizing `x` once for all of them when they are all Q8_0 (the q/k/v
/// and gate/up matrices share their input).
pub fn shared_input<const N: usize>(ws: [&Linear; N], x: &Tensor) -> Result<[Tensor; N]> {
    let q8: Vec<&Q8Matrix> = ws
        .iter()
        .filter_map(|w| match w {
            Linear::Q8(m) => Some(m),
            Linear::Candle(_) => None,
        })
        .collect();
    let outs: Vec<Tensor> = if q8.len() == N && q8.windows(2).all(|p| p[0].cols() == p[1].cols()) {
        let rows = Q8Rows::quantize(&flat(x)?, q8[0].cols()).map_err(kernel_err)?;
        q8.iter().map(|w| product(w, &rows, x)).collect::<Result<_>>()?
    } else {
        let candle: Vec<&QTensor> = ws
            .iter()
            .filter_map(|w| match w {
                Linear::Candle(QMatMul::QTensor(t)) => Some(t.as_ref()),
                _ => None,
            })
            .collect();
        // candle fuses the products of a shared input where it can (AVX-512 VNNI).
        match (candle.len() == N).then(|| QTensor::gemv_fused_shared_lhs(&candle, x)).transpose()? {
            Some(Some(outs)) => outs,
            _ => ws.iter().map(|w| w.forward(x)).collect::<Result<_>>()?,
        }
    };
    Ok(outs.try_into().unwrap_or_else(|_| unreachable!("one output per matrix")))
}
