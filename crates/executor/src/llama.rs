//! The forward pass of a Llama-family GGUF model: the computation of candle-transformers'
//! `quantized_llama` (RMSNorm, rotary attention with grouped KV heads and a KV cache, SwiGLU),
//! loaded with the weight conversion of [`Weights`] and, where it pays, with zero padding.
//!
//! Why padding: candle's tiled x86 kernels for Q4K take only matrices whose rows hold a whole
//! number of 256-value blocks (SmolLM2's hidden size is 576). Q8_0 matrices, the default, multiply
//! through `splai-kernels` ([`crate::linear`]) and are never padded. Padding every matrix's input side with zero columns to 768, and each
//! matrix input with zeros to match, keeps every product exact (zeros add nothing to a dot
//! product). Only inputs are padded: the residual stream, the norms and every output keep their
//! real widths, so no zero rows are stored or streamed from memory.

use candle_core::quantized::{GgmlDType, QTensor, gguf_file};
use candle_core::{Device, Result, Tensor};

use crate::attention::Rope;
pub use crate::kv::SeqCache;
use crate::linear::Linear;
use crate::weights::Weights;

/// Matrices are padded to multiples of this many values (candle's k-quant super-block).
const PAD_TO: usize = 256;

/// Whether a model's matrices are padded to whole 256-value blocks (config
/// `executor.llm_padding`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Padding {
    /// Pad where candle's tiled kernels then apply: Q4K weights on a CPU with AVX2. (Q8_0
    /// matrices multiply through `splai-kernels`, which take any whole number of 32-value
    /// blocks.)
    #[default]
    Auto,
    Off,
}

impl Padding {
    /// Whether matrices converted to `weights` are padded on this machine.
    pub fn applies(self, weights: Weights) -> bool {
        self == Self::Auto
            && match weights {
                Weights::Convert(GgmlDType::Q4K) => cpu_has_avx2(),
                _ => false,
            }
    }
}

/// A padding setting that is neither `auto` nor `off`.
#[derive(Debug, thiserror::Error)]
#[error("unknown padding `{0}` (auto, off)")]
pub struct UnknownPadding(pub String);

impl std::str::FromStr for Padding {
    type Err = UnknownPadding;
    fn from_str(s: &str) -> std::result::Result<Self, UnknownPadding> {
        match s {
            "auto" => Ok(Self::Auto),
            "off" => Ok(Self::Off),
            other => Err(UnknownPadding(other.to_string())),
        }
    }
}

/// Whether candle 0.11's tiled Q4K kernels run here (AVX2 and FMA at least).
fn cpu_has_avx2() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma")
    }
    #[cfg(not(target_arch = "x86_64"))]
    false
}

/// The type a `[.., cols]` matrix is converted to for `target`: the target when its rows are whole
/// blocks of it, else Q8_0 when they are whole Q8_0 blocks, else unchanged.
pub(crate) fn target_for(current: GgmlDType, cols: usize, target: GgmlDType) -> GgmlDType {
    if cols.is_multiple_of(target.block_size()) {
        target
    } else if cols.is_multiple_of(GgmlDType::Q8_0.block_size()) {
        GgmlDType::Q8_0
    } else {
        current
    }
}

/// Widths of the model, real and as held (padded).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Dims {
    pub(crate) hidden: usize,
    pub(crate) hidden_held: usize,
    pub(crate) ffn_held: usize,
    pub(crate) n_head: usize,
    pub(crate) n_kv_head: usize,
    pub(crate) head_dim: usize,
}

#[derive(Debug)]
pub(crate) struct Layer {
    pub(crate) wq: Linear,
    pub(crate) wk: Linear,
    pub(crate) wv: Linear,
    pub(crate) wo: Linear,
    pub(crate) gate: Linear,
    pub(crate) up: Linear,
    pub(crate) down: Linear,
    pub(crate) attn_norm: Vec<f32>,
    pub(crate) ffn_norm: Vec<f32>,
}

/// A loaded model with its KV cache.
#[derive(Debug)]
pub struct Llama {
    /// Token embeddings, `[vocab][hidden]`.
    pub(crate) embeddings: Vec<f32>,
    pub(crate) vocab: usize,
    pub(crate) layers: Vec<Layer>,
    pub(crate) norm: Vec<f32>,
    pub(crate) output: Linear,
    pub(crate) dims: Dims,
    pub(crate) eps: f32,
    pub(crate) rope: Rope,
    /// The cache of [`Llama::forward`]'s single sequence.
    cache: SeqCache,
}

/// Reads tensors from a GGUF file, converting and padding them.
struct Loader<'a, R> {
    content: &'a gguf_file::Content,
    reader: &'a mut R,
    device: &'a Device,
    weights: Weights,
}

impl<R: std::io::Read + std::io::Seek> Loader<'_, R> {
    fn read(&mut self, name: &str) -> Result<QTensor> {
        self.content.tensor(self.reader, name, self.device)
    }

    /// Matrix `name`, held as `rows × cols` (zero-padded from its real shape).
    fn matrix(&mut self, name: &str, rows: usize, cols: usize) -> Result<Linear> {
        let t = self.read(name)?;
        self.convert(t, rows, cols)
    }

    fn convert(&self, t: QTensor, rows: usize, cols: usize) -> Result<Linear> {
        let (n, k) = t.shape().dims2()?;
        let dtype = match self.weights {
            Weights::AsIs => t.dtype(),
            Weights::Convert(target) => target_for(t.dtype(), cols, target),
        };
        if (n, k) == (rows, cols) && dtype == t.dtype() {
            return Linear::new(t);
        }
        let w = t.dequantize(self.device)?.pad_with_zeros(1, 0, cols - k)?.pad_with_zeros(0, 0, rows - n)?;
        Linear::new(QTensor::quantize(&w, dtype)?)
    }

    /// Norm weights `name`, as F32.
    fn norm(&mut self, name: &str) -> Result<Vec<f32>> {
        self.read(name)?.dequantize(self.device)?.flatten_all()?.to_vec1()
    }
}

fn metadata<'a>(content: &'a gguf_file::Content, key: &str) -> Result<&'a gguf_file::Value> {
    content.metadata.get(key).ok_or_else(|| candle_core::Error::Msg(format!("metadata `{key}` missing")))
}

/// `width` as held: padded to whole 256-value blocks when `pad`.
pub(crate) fn held(width: usize, pad: bool) -> usize {
    if pad { width.next_multiple_of(PAD_TO) } else { width }
}

impl Llama {
    /// Load the model of `content` (read from `reader`), converting its matrices as `weights` says
    /// and padding them when `pad`. `context` bounds the rotary tables.
    pub fn load<R: std::io::Read + std::io::Seek>(
        content: &gguf_file::Content,
        reader: &mut R,
        device: &Device,
        weights: Weights,
        pad: bool,
        context: usize,
    ) -> Result<Self> {
        let u = |k: &str| metadata(content, k).and_then(|v| v.to_u32()).map(|v| v as usize);
        if u("llama.expert_count").unwrap_or(0) > 1 {
            candle_core::bail!("mixture-of-experts models are not supported");
        }
        let n_head = u("llama.attention.head_count")?;
        let hidden = u("llama.embedding_length")?;
        let eps = metadata(content, "llama.attention.layer_norm_rms_epsilon")?.to_f32()?;
        let ffn = u("llama.feed_forward_length")?;
        let dims = Dims {
            hidden,
            hidden_held: held(hidden, pad),
            ffn_held: held(ffn, pad),
            n_head,
            n_kv_head: u("llama.attention.head_count_kv")?,
            head_dim: hidden / n_head,
        };
        let freq_base =
            metadata(content, "llama.rope.freq_base").and_then(|v| v.to_f32()).unwrap_or(10_000.0);
        let rope_dim = u("llama.rope.dimension_count")?;
        if rope_dim != dims.head_dim {
            candle_core::bail!("rotary dimension {rope_dim} differs from the head size {}", dims.head_dim);
        }
        let rope = Rope::new(rope_dim, freq_base, context);

        let mut l = Loader { content, reader, device, weights };
        let (hid, h, f) = (dims.hidden, dims.hidden_held, dims.ffn_held);
        let kv = dims.n_kv_head * dims.head_dim;
        let mut layers = Vec::new();
        for i in 0..u("llama.block_count")? {
            let p = format!("blk.{i}");
            layers.push(Layer {
                wq: l.matrix(&format!("{p}.attn_q.weight"), dims.hidden, h)?,
                wk: l.matrix(&format!("{p}.attn_k.weight"), kv, h)?,
                wv: l.matrix(&format!("{p}.attn_v.weight"), kv, h)?,
                wo: l.matrix(&format!("{p}.attn_output.weight"), hid, h)?,
                gate: l.matrix(&format!("{p}.ffn_gate.weight"), f, h)?,
                up: l.matrix(&format!("{p}.ffn_up.weight"), f, h)?,
                down: l.matrix(&format!("{p}.ffn_down.weight"), hid, f)?,
                attn_norm: l.norm(&format!("{p}.attn_norm.weight"))?,
                ffn_norm: l.norm(&format!("{p}.ffn_norm.weight"))?,
            });
        }
        let norm = l.norm("output_norm.weight")?;
        let embd = l.read("token_embd.weight")?;
        let vocab = embd.shape().dims2()?.0;
        let embeddings = embd.dequantize(device)?.flatten_all()?.to_vec1()?;
        // Models with tied embeddings (SmolLM2) have no `output.weight`.
        let output = match content.tensor_infos.contains_key("output.weight") {
            true => l.matrix("output.weight", vocab, h)?,
            false => l.convert(embd, vocab, h)?,
        };
        let cache = SeqCache::new(layers.len());
        Ok(Self { embeddings, vocab, layers, norm, output, dims, eps, rope, cache })
    }

    /// Layer `l`'s gate matrix (benchmarks of one weight product).
    pub fn gate_of(&self, l: usize) -> &Linear {
        &self.layers[l].gate
    }

    /// Layers of the model (a [`SeqCache`] holds one cache per layer).
    pub fn layer_count(&self) -> usize {
        self.layers.len()
    }

    pub fn clear_kv_cache(&mut self) {
        self.cache.reset();
    }

    /// Logits `[batch, vocab]` for the last of `ids` (`[batch, seq]`), which start at position
    /// `index_pos` after the cached ones (of this model's own single sequence).
    pub fn forward(&mut self, ids: &Tensor, index_pos: usize) -> Result<Tensor> {
        let mut cache = std::mem::replace(&mut self.cache, SeqCache::new(0));
        let logits = self.forward_with(ids, index_pos, &mut cache);
        self.cache = cache;
        logits
    }

    /// [`Llama::forward`] for the sequence whose cache is `cache` (`ids` `[1, seq]`; a position
    /// of 0 starts the sequence afresh).
    pub fn forward_with(&self, ids: &Tensor, index_pos: usize, cache: &mut SeqCache) -> Result<Tensor> {
        let (b, _) = ids.dims2()?;
        if b != 1 {
            candle_core::bail!("forward_with takes one sequence, not {b}");
        }
        if index_pos == 0 {
            cache.reset();
        } else if index_pos != cache.len() {
            candle_core::bail!("position {index_pos} does not follow the {} cached", cache.len());
        }
        let tokens: Vec<u32> = ids.flatten_all()?.to_vec1()?;
        self.forward_batch(&mut [crate::batch::Part { tokens: &tokens, cache, logits: true }])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::llm::tests::smollm2;
    use candle_transformers::models::quantized_llama::ModelWeights;

    /// Logits of a prefill of `ids` followed by one decode step of `next`.
    fn two_steps(
        forward: &mut dyn FnMut(&Tensor, usize) -> Result<Tensor>,
        ids: &[u32],
        next: u32,
    ) -> Vec<Vec<f32>> {
        let prompt = Tensor::new(ids, &Device::Cpu).unwrap().unsqueeze(0).unwrap();
        let step = Tensor::new(&[next], &Device::Cpu).unwrap().unsqueeze(0).unwrap();
        let a = forward(&prompt, 0).unwrap().squeeze(0).unwrap().to_vec1::<f32>().unwrap();
        let b = forward(&step, ids.len()).unwrap().squeeze(0).unwrap().to_vec1::<f32>().unwrap();
        vec![a, b]
    }

    fn max_diff(a: &[Vec<f32>], b: &[Vec<f32>]) -> f32 {
        a.iter().flatten().zip(b.iter().flatten()).map(|(x, y)| (x - y).abs()).fold(0.0, f32::max)
    }

    fn argmax(v: &[f32]) -> usize {
        v.iter().enumerate().max_by(|a, b| a.1.total_cmp(b.1)).map(|(i, _)| i).unwrap()
    }

    const IDS: [u32; 8] = [1, 9690, 198, 1780, 314, 260, 3575, 282];

    /// SmolLM2 rewritten with every tensor as F32 (no quantized product anywhere, so both sides
    /// compute the same arithmetic and differ only in summation order).
    fn f32_copy(path: &std::path::Path, dir: &std::path::Path) -> std::path::PathBuf {
        let mut file = std::fs::File::open(path).unwrap();
        let content = gguf_file::Content::read(&mut file).unwrap();
        let tensors: Vec<(String, QTensor)> = content
            .tensor_infos
            .keys()
            .map(|name| {
                let t =
                    content.tensor(&mut file, name, &Device::Cpu).unwrap().dequantize(&Device::Cpu).unwrap();
                (name.clone(), QTensor::quantize(&t, GgmlDType::F32).unwrap())
            })
            .collect();
        let metadata: Vec<(&str, &gguf_file::Value)> =
            content.metadata.iter().map(|(k, v)| (k.as_str(), v)).collect();
        let refs: Vec<(&str, &QTensor)> = tensors.iter().map(|(n, t)| (n.as_str(), t)).collect();
        let out = dir.join("smollm2-f32.gguf");
        gguf_file::write(&mut std::fs::File::create(&out).unwrap(), &metadata, &refs).unwrap();
        out
    }

    /// This forward pass computes what candle-transformers' `quantized_llama` computes: on F32
    /// weights (nothing quantized at run time on either side) the logits agree to float rounding.
    /// (On quantized weights they cannot agree to the bit: the two sum norms and attention in
    /// different orders, which flips the odd rounding of activations quantized for the products,
    /// and thirty layers amplify it.)
    #[test]
    fn matches_candle_transformers_quantized_llama() {
        let Some(path) = smollm2() else { return };
        let dir = tempfile::tempdir().unwrap();
        let path = f32_copy(&path, dir.path());
        let device = Device::Cpu;
        let mut file = std::fs::File::open(&path).unwrap();
        let content = gguf_file::Content::read(&mut file).unwrap();
        let mut ours = Llama::load(&content, &mut file, &device, Weights::AsIs, false, 2048).unwrap();
        let mut file = std::fs::File::open(&path).unwrap();
        let content = gguf_file::Content::read(&mut file).unwrap();
        let mut theirs = ModelWeights::from_gguf(content, &mut file, &device).unwrap();
        let a = two_steps(&mut |x, p| ours.forward(x, p), &IDS, 28);
        let b = two_steps(&mut |x, p| theirs.forward(x, p), &IDS, 28);
        assert!(max_diff(&a, &b) < 1e-3, "logits differ by {}", max_diff(&a, &b));
    }

    fn load_and_run(path: &std::path::Path, weights: Weights, pad: bool) -> Vec<Vec<f32>> {
        let mut file = std::fs::File::open(path).unwrap();
        let content = gguf_file::Content::read(&mut file).unwrap();
        let mut m = Llama::load(&content, &mut file, &Device::Cpu, weights, pad, 2048).unwrap();
        assert_eq!(m.dims.hidden_held, if pad { 768 } else { 576 }, "576 pads to whole 256-value blocks");
        two_steps(&mut |x, p| m.forward(x, p), &IDS, 28)
    }

    /// Zero padding is exact: with F32 weights (the same kernels either way) the logits agree to
    /// float rounding.
    #[test]
    fn padding_is_exact() {
        let Some(path) = smollm2() else { return };
        let f32w = Weights::Convert(GgmlDType::F32);
        let (plain, padded) = (load_and_run(&path, f32w, false), load_and_run(&path, f32w, true));
        assert!(max_diff(&plain, &padded) < 1e-3, "logits differ by {}", max_diff(&plain, &padded));
    }

    /// With Q8_0, padding moves the products onto candle's VNNI kernels, which quantize the
    /// activations per 256 values instead of per 32: the logits move a little; the greedy picks
    /// do not.
    #[test]
    fn padded_q8_0_picks_the_same_tokens() {
        let Some(path) = smollm2() else { return };
        let q8 = Weights::Convert(GgmlDType::Q8_0);
        let (plain, padded) = (load_and_run(&path, q8, false), load_and_run(&path, q8, true));
        for (a, b) in plain.iter().zip(&padded) {
            assert_eq!(argmax(a), argmax(b), "same greedy token");
        }
    }
}
