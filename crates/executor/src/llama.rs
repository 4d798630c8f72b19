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
use candle_core::{D, Device, IndexOp, Result, Tensor};

use candle_nn::kv_cache::KvCache;

use crate::linear::{Linear, shared_input};
use crate::llm::Weights;

/// Positions the KV cache grows by: written in place, not re-concatenated every token.
const KV_CHUNK: usize = 512;

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

impl std::str::FromStr for Padding {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s {
            "auto" => Ok(Self::Auto),
            "off" => Ok(Self::Off),
            other => Err(format!("unknown padding `{other}` (auto, off)")),
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
    pub(crate) attn_norm: Tensor,
    pub(crate) ffn_norm: Tensor,
}

/// One sequence's KV cache: keys and values of every layer, grown in place.
#[derive(Debug, Clone)]
pub struct SeqCache {
    pub(crate) layers: Vec<KvCache>,
}

impl SeqCache {
    pub fn new(layers: usize) -> Self {
        Self { layers: (0..layers).map(|_| KvCache::new(2, KV_CHUNK)).collect() }
    }

    /// Positions cached.
    pub fn len(&self) -> usize {
        self.layers.first().map_or(0, |l| l.current_seq_len())
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn reset(&mut self) {
        for l in &mut self.layers {
            l.reset();
        }
    }

    /// A copy of the first `len` positions (its own memory: writing either never shows in the
    /// other).
    pub fn prefix(&self, len: usize) -> Result<Self> {
        let mut copy = Self::new(self.layers.len());
        if len == 0 {
            return Ok(copy);
        }
        for (mine, theirs) in self.layers.iter().zip(&mut copy.layers) {
            let (Some(k), Some(v)) = (mine.k()?, mine.v()?) else {
                candle_core::bail!("prefix of {len} positions from an empty cache");
            };
            theirs.append(&k.narrow(2, 0, len)?.contiguous()?, &v.narrow(2, 0, len)?.contiguous()?)?;
        }
        Ok(copy)
    }

    /// Bytes one position takes in every layer's keys and values (f32).
    pub fn bytes_per_position(layers: usize, kv_heads: usize, head_dim: usize) -> usize {
        layers * 2 * kv_heads * head_dim * 4
    }
}

/// A loaded model with its KV cache.
#[derive(Debug)]
pub struct Llama {
    pub(crate) embeddings: Tensor,
    pub(crate) layers: Vec<Layer>,
    pub(crate) norm: Tensor,
    pub(crate) output: Linear,
    pub(crate) dims: Dims,
    pub(crate) eps: f32,
    pub(crate) cos: Tensor,
    pub(crate) sin: Tensor,
    pub(crate) neg_inf: Tensor,
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
    fn norm(&mut self, name: &str) -> Result<Tensor> {
        self.read(name)?.dequantize(self.device)
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
        let (cos, sin) = rotary_tables(u("llama.rope.dimension_count")?, freq_base, context, device)?;

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
        let embeddings = embd.dequantize(device)?;
        // Models with tied embeddings (SmolLM2) have no `output.weight`.
        let output = match content.tensor_infos.contains_key("output.weight") {
            true => l.matrix("output.weight", vocab, h)?,
            false => l.convert(embd, vocab, h)?,
        };
        let neg_inf = Tensor::new(f32::NEG_INFINITY, device)?;
        let cache = SeqCache::new(layers.len());
        Ok(Self { embeddings, layers, norm, output, dims, eps, cos, sin, neg_inf, cache })
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

    /// [`Llama::forward`] for the sequence whose cache is `cache`.
    pub fn forward_with(&self, ids: &Tensor, index_pos: usize, cache: &mut SeqCache) -> Result<Tensor> {
        let (b, seq) = ids.dims2()?;
        let d = self.dims;
        if index_pos + seq > self.cos.dim(0)? {
            candle_core::bail!("position {} is beyond the context of {}", index_pos + seq, self.cos.dim(0)?);
        }
        let mask = if seq > 1 {
            Some(candle_transformers::utils::build_causal_mask(seq, index_pos, ids.device())?)
        } else {
            None
        };
        let x = self.embeddings.index_select(&ids.flatten_all()?, 0)?.reshape((b, seq, d.hidden))?;
        let mut x = x;
        let pad = |t: Tensor| t.pad_with_zeros(D::Minus1, 0, d.hidden_held - d.hidden);
        let cos = self.cos.narrow(0, index_pos, seq)?;
        let sin = self.sin.narrow(0, index_pos, seq)?;
        let rope = Rope { cos: &cos, sin: &sin };
        for (layer, kv) in self.layers.iter().zip(&mut cache.layers) {
            let h = pad(candle_nn::ops::rms_norm(&x, &layer.attn_norm, self.eps)?)?;
            let a = layer.attention(&h, mask.as_ref(), &self.neg_inf, &rope, index_pos, &d, kv)?;
            x = (x + a)?;
            let h = pad(candle_nn::ops::rms_norm(&x, &layer.ffn_norm, self.eps)?)?;
            let [gate, up] = shared_input([&layer.gate, &layer.up], &h)?;
            x = (x + layer.down.forward(&(candle_nn::ops::silu(&gate)? * up)?)?)?;
        }
        let x = pad(candle_nn::ops::rms_norm(&x.i((.., seq - 1..seq, ..))?, &self.norm, self.eps)?)?;
        self.output.forward(&x.i((.., 0, ..))?)
    }
}

pub(crate) struct Rope<'a> {
    pub(crate) cos: &'a Tensor,
    pub(crate) sin: &'a Tensor,
}

impl Layer {
    #[allow(clippy::too_many_arguments)]
    fn attention(
        &self,
        x: &Tensor,
        mask: Option<&Tensor>,
        neg_inf: &Tensor,
        rope: &Rope<'_>,
        index_pos: usize,
        d: &Dims,
        kv_cache: &mut KvCache,
    ) -> Result<Tensor> {
        let [q, k, v] = shared_input([&self.wq, &self.wk, &self.wv], x)?;
        let y = self.attend(q, k, v, mask, neg_inf, rope, index_pos, d, kv_cache)?;
        self.wo.forward(&y)
    }

    /// Attention of projected `q`, `k`, `v` (`[b, seq, heads × head_dim]`) against `kv_cache`
    /// grown by `k` and `v`: its output, padded for `wo`, not yet projected.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn attend(
        &self,
        q: Tensor,
        k: Tensor,
        v: Tensor,
        mask: Option<&Tensor>,
        neg_inf: &Tensor,
        rope: &Rope<'_>,
        index_pos: usize,
        d: &Dims,
        kv_cache: &mut KvCache,
    ) -> Result<Tensor> {
        let (b, seq, _) = q.dims3()?;
        let heads = |t: Tensor, n: usize| t.reshape((b, seq, n, d.head_dim))?.transpose(1, 2)?.contiguous();
        let q = heads(q, d.n_head)?;
        let k = heads(k, d.n_kv_head)?;
        let v = heads(v, d.n_kv_head)?;
        // GGUF Llama weights use the interleaved rotary layout.
        let q = candle_nn::rotary_emb::rope_i(&q, rope.cos, rope.sin)?;
        let k = candle_nn::rotary_emb::rope_i(&k, rope.cos, rope.sin)?;
        if index_pos == 0 {
            kv_cache.reset();
        }
        let (k, v) = kv_cache.append(&k, &v)?;
        // Grouped-query attention without copying K and V per query head: the `groups` query
        // heads sharing a KV head become `groups × seq` rows against that head.
        let groups = d.n_head / d.n_kv_head;
        let q = q.reshape((b, d.n_kv_head, groups * seq, d.head_dim))?;
        let att = (q.matmul(&k.t()?)? / (d.head_dim as f64).sqrt())?;
        let att = match mask {
            Some(m) => {
                let kv_len = k.dim(2)?;
                let att = att.reshape((b, d.n_kv_head, groups, seq, kv_len))?;
                let shape = att.shape();
                m.broadcast_as(shape)?.where_cond(&neg_inf.broadcast_as(shape)?, &att)?.reshape((
                    b,
                    d.n_kv_head,
                    groups * seq,
                    kv_len,
                ))?
            }
            None => att,
        };
        let y = candle_nn::ops::softmax_last_dim(&att)?.matmul(&v)?;
        let y = y.reshape((b, d.n_head, seq, d.head_dim))?;
        let y = y.transpose(1, 2)?.reshape((b, seq, d.hidden))?;
        y.pad_with_zeros(D::Minus1, 0, d.hidden_held - d.hidden)
    }
}

/// Cosine and sine tables `[positions, rope_dim / 2]` of the rotary embedding.
fn rotary_tables(rope_dim: usize, base: f32, positions: usize, device: &Device) -> Result<(Tensor, Tensor)> {
    let theta: Vec<f32> =
        (0..rope_dim).step_by(2).map(|i| 1.0 / base.powf(i as f32 / rope_dim as f32)).collect();
    let theta = Tensor::new(theta.as_slice(), device)?.reshape((1, rope_dim / 2))?;
    let pos = Tensor::arange(0u32, positions as u32, device)?
        .to_dtype(candle_core::DType::F32)?
        .reshape((positions, 1))?;
    let angles = pos.matmul(&theta)?;
    Ok((angles.cos()?, angles.sin()?))
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

    /// Unpadded, this forward pass is candle-transformers' `quantized_llama` on the same weights.
    #[test]
    fn matches_candle_transformers_quantized_llama() {
        let Some(path) = smollm2() else { return };
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
