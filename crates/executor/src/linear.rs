//! A weight matrix of the forward pass: Q8_0 matrices multiply through `splai-kernels` (one
//! integer product for every row of the input, whatever the number of sequences in a step),
//! others through candle's `QMatMul`.
//!
//! Why not candle for Q8_0: its quantized product runs one dot product per input row per weight
//! row, so a step over 32 sequences streams the weights 32 times and costs 32 single steps
//! (`docs/benchmarks.md`, issue 17). The kernel computes each output with the same operations
//! however many rows it is given, so batched and single decoding agree bit for bit.

use candle_core::quantized::{GgmlDType, QMatMul, QTensor};
use std::borrow::Cow;

use candle_core::{Device, Module, Result, Tensor};
use splai_kernels::{Q4Matrix, Q8Matrix, Q8Rows};

#[derive(Debug)]
pub enum Linear {
    Q8(Q8Matrix),
    Q4(Q4Matrix),
    Candle(QMatMul),
}

fn kernel_err(e: splai_kernels::KernelError) -> candle_core::Error {
    candle_core::Error::Msg(e.to_string())
}

impl Linear {
    /// Hold `t` (`[rows, cols]`): Q8_0 through the kernels, anything else through candle.
    pub fn new(t: QTensor) -> Result<Self> {
        let (rows, cols) = t.shape().dims2()?;
        match t.dtype() {
            GgmlDType::Q8_0 => Ok(Self::Q8(Q8Matrix::from_ggml(&t.data()?, rows, cols).map_err(kernel_err)?)),
            GgmlDType::Q4_1 => Ok(Self::Q4(Q4Matrix::from_ggml(&t.data()?, rows, cols).map_err(kernel_err)?)),
            _ => Ok(Self::Candle(QMatMul::from_qtensor(t)?)),
        }
    }

    /// Input width (columns).
    pub fn cols(&self) -> Result<usize> {
        match self {
            Self::Q8(w) => Ok(w.cols()),
            Self::Q4(w) => Ok(w.cols()),
            Self::Candle(QMatMul::QTensor(t)) => Ok(t.shape().dims2()?.1),
            Self::Candle(QMatMul::Tensor(t) | QMatMul::TensorF16(t)) => t.dim(1),
        }
    }

    /// `x` (`rows` rows, each as wide as this matrix's input or narrower, then zero-padded)
    /// times this matrix transposed: `rows` rows of its output width.
    pub fn forward_rows(&self, x: &[f32], rows: usize) -> Result<Vec<f32>> {
        let x = padded(x, rows, self.cols()?);
        if let Some((cols, n, matmul)) = self.kernel() {
            return product(&Q8Rows::quantize(&x, cols).map_err(kernel_err)?, n, matmul.as_ref());
        }
        let Self::Candle(m) = self else { unreachable!("kernel matrices returned above") };
        let cols = x.len() / rows.max(1);
        let t = Tensor::from_vec(x.into_owned(), (rows, cols), &Device::Cpu)?;
        m.forward(&t)?.flatten_all()?.to_vec1::<f32>()
    }
}

/// `x`'s rows widened with zeros to `cols` (borrowed when already that wide).
fn padded(x: &[f32], rows: usize, cols: usize) -> Cow<'_, [f32]> {
    let width = x.len() / rows.max(1);
    if width >= cols {
        return Cow::Borrowed(x);
    }
    let mut out = vec![0f32; rows * cols];
    for (src, dst) in x.chunks_exact(width).zip(out.chunks_exact_mut(cols)) {
        dst[..width].copy_from_slice(src);
    }
    Cow::Owned(out)
}

/// A kernel matrix's `matmul`.
type KernelProduct<'a> =
    dyn Fn(&Q8Rows, &mut [f32]) -> std::result::Result<(), splai_kernels::KernelError> + 'a;

/// `rows` times a kernel matrix of `n` rows (its `matmul`).
fn product(rows: &Q8Rows, n: usize, matmul: &KernelProduct<'_>) -> Result<Vec<f32>> {
    let mut out = vec![0f32; rows.rows() * n];
    matmul(rows, &mut out).map_err(kernel_err)?;
    Ok(out)
}

impl Linear {
    /// The kernel product of this matrix (Q8_0 or Q4_1): its input width and the product.
    fn kernel(&self) -> Option<(usize, usize, Box<KernelProduct<'_>>)> {
        match self {
            Self::Q8(w) => Some((w.cols(), w.rows(), Box::new(|x, o| w.matmul(x, o)))),
            Self::Q4(w) => Some((w.cols(), w.rows(), Box::new(|x, o| w.matmul(x, o)))),
            Self::Candle(_) => None,
        }
    }
}

/// `x` times each of `ws`, quantizing `x` once for all of them when they all multiply through
/// the kernels at one width (the q/k/v and gate/up matrices share their input).
pub fn shared_rows<const N: usize>(ws: [&Linear; N], x: &[f32], rows: usize) -> Result<[Vec<f32>; N]> {
    let kernels: Vec<_> = ws.iter().filter_map(|w| w.kernel()).collect();
    let outs: Vec<Vec<f32>> = if kernels.len() == N && kernels.windows(2).all(|p| p[0].0 == p[1].0) {
        let x = padded(x, rows, kernels[0].0);
        let quantized = Q8Rows::quantize(&x, kernels[0].0).map_err(kernel_err)?;
        kernels
            .iter()
            .map(|(_, n, matmul)| product(&quantized, *n, matmul.as_ref()))
            .collect::<Result<_>>()?
    } else {
        ws.iter().map(|w| w.forward_rows(x, rows)).collect::<Result<_>>()?
    };
    Ok(outs.try_into().unwrap_or_else(|_| unreachable!("one output per matrix")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::quantized::gguf_file;

    /// A product through the kernels or through candle equals candle's own on the same matrix.
    #[test]
    fn products_equal_candles() {
        let Some(path) = crate::llm::tests::smollm2() else { return };
        let mut file = std::fs::File::open(&path).unwrap();
        let content = gguf_file::Content::read(&mut file).unwrap();
        let t = content.tensor(&mut file, "blk.0.attn_k.weight", &Device::Cpu).unwrap();
        let (n, k) = t.shape().dims2().unwrap();
        let x: Vec<f32> = (0..3 * k).map(|i| ((i * 7919 % 1000) as f32 / 500.0) - 1.0).collect();
        let xt = Tensor::from_slice(&x, (1, 3, k), &Device::Cpu).unwrap();
        let dense = t.dequantize(&Device::Cpu).unwrap();
        let exact: Vec<f32> =
            xt.broadcast_matmul(&dense.t().unwrap()).unwrap().flatten_all().unwrap().to_vec1().unwrap();
        let q8 = Linear::new(QTensor::quantize(&dense, GgmlDType::Q8_0).unwrap()).unwrap();
        let asis = Linear::new(t).unwrap();
        for (name, l) in [("q8", &q8), ("as-is", &asis)] {
            let got = l.forward_rows(&x, 3).unwrap();
            assert_eq!(got.len(), 3 * n);
            let err = got.iter().zip(&exact).map(|(a, b)| (a - b).abs()).fold(0f32, f32::max);
            let scale = exact.iter().map(|v| v.abs()).fold(0f32, f32::max);
            eprintln!("{name}: err {err} scale {scale}");
            assert!(err < 0.01 * scale, "{name}: differs from the exact product by {err} (largest {scale})");
        }
    }
}
