//! A BERT encoder forward pass on plain f32 buffers (as `llama.rs` is for Llama): the texts of a
//! batch packed back to back with no padding, so a matrix product covers every real token of every
//! text at once and nothing is computed for padding; each layer's query, key and value
//! projections are one product over a stacked matrix; bias, GELU, residual and layer norm are
//! fused into single passes over the rows.

use std::collections::HashMap;
use std::path::Path;

use candle_core::{Device, Tensor};
use serde::Deserialize;
use splai_kernels::F32Matrix;

use super::layers::{Activation, Norm, add_bias, attention, bias_activation};

/// Why a BERT model does not load, or a forward pass does not run.
#[derive(Debug, thiserror::Error)]
pub enum BertError {
    #[error("cannot read {file}")]
    Read {
        file: &'static str,
        #[source]
        source: std::io::Error,
    },
    #[error("config.json is not a BERT config")]
    Config(#[source] serde_json::Error),
    #[error("the weights are not a safetensors file")]
    Weights(#[source] candle_core::Error),
    #[error("the weights have no tensor `{0}`")]
    MissingTensor(String),
    #[error("`{name}` cannot be read as f32 values")]
    Tensor {
        name: String,
        #[source]
        source: candle_core::Error,
    },
    #[error("`{name}` has the wrong shape")]
    Kernel {
        name: String,
        #[source]
        source: splai_kernels::KernelError,
    },
    /// The model is outside what this forward pass supports, or inconsistent.
    #[error("{0}")]
    Unsupported(String),
    /// A sequence the model cannot take.
    #[error("{0}")]
    Input(String),
}

/// The fields of a Hugging Face BERT `config.json` the forward pass uses.
#[derive(Debug, Deserialize)]
pub(crate) struct Config {
    pub hidden_size: usize,
    pub num_attention_heads: usize,
    pub num_hidden_layers: usize,
    pub intermediate_size: usize,
    pub max_position_embeddings: usize,
    #[serde(default = "default_eps")]
    pub layer_norm_eps: f64,
    #[serde(default = "default_act")]
    pub hidden_act: String,
    #[serde(default)]
    pub position_embedding_type: Option<String>,
}

fn default_eps() -> f64 {
    1e-12
}

fn default_act() -> String {
    "gelu".into()
}

#[derive(Debug)]
struct Layer {
    qkv: F32Matrix,
    qkv_bias: Vec<f32>,
    attn_out: F32Matrix,
    attn_out_bias: Vec<f32>,
    attn_norm: Norm,
    up: F32Matrix,
    up_bias: Vec<f32>,
    down: F32Matrix,
    down_bias: Vec<f32>,
    out_norm: Norm,
}

/// Activation buffers a forward pass reuses: fresh ones cost a page fault and a page of zeroing
/// per 4 KiB on every pass (the allocator returns freed large blocks to the system).
#[derive(Debug, Default)]
struct Scratch {
    x: Vec<f32>,
    qkv: Vec<f32>,
    context: Vec<f32>,
    sublayer: Vec<f32>,
    inner: Vec<f32>,
}

#[derive(Debug)]
pub(crate) struct Bert {
    width: usize,
    heads: usize,
    max_positions: usize,
    act: Activation,
    word: Vec<f32>,
    position: Vec<f32>,
    /// Token type 0's embedding (every text is one segment).
    segment: Vec<f32>,
    embed_norm: Norm,
    layers: Vec<Layer>,
    /// Buffers of passes that ended, one set per pass that may run at once.
    scratch: std::sync::Mutex<Vec<Scratch>>,
}

/// The named tensors of a safetensors file, looked up with or without a `bert.` prefix.
struct Tensors(HashMap<String, Tensor>);

impl Tensors {
    fn get(&self, name: &str) -> Result<&Tensor, BertError> {
        self.0
            .get(name)
            .or_else(|| self.0.get(&format!("bert.{name}")))
            .ok_or_else(|| BertError::MissingTensor(name.to_string()))
    }

    fn vector(&self, name: &str, len: usize) -> Result<Vec<f32>, BertError> {
        let values = self.values(name)?;
        if values.len() != len {
            return Err(BertError::Unsupported(format!(
                "`{name}` has {} values, the config implies {len}",
                values.len()
            )));
        }
        Ok(values)
    }

    fn values(&self, name: &str) -> Result<Vec<f32>, BertError> {
        let t = self.get(name)?;
        t.to_dtype(candle_core::DType::F32)
            .and_then(|t| t.flatten_all())
            .and_then(|t| t.to_vec1::<f32>())
            .map_err(|source| BertError::Tensor { name: name.to_string(), source })
    }

    fn matrix(&self, name: &str, rows: usize, cols: usize) -> Result<F32Matrix, BertError> {
        F32Matrix::new(self.values(name)?, rows, cols)
            .map_err(|source| BertError::Kernel { name: name.to_string(), source })
    }

    fn norm(&self, prefix: &str, width: usize, eps: f32) -> Result<Norm, BertError> {
        Ok(Norm {
            weight: self.vector(&format!("{prefix}.weight"), width)?,
            bias: self.vector(&format!("{prefix}.bias"), width)?,
            eps,
        })
    }
}

impl Bert {
    /// Load `config.json` and `model.safetensors` from `dir`.
    pub fn load(dir: &Path) -> Result<Self, BertError> {
        let read = |file: &'static str| {
            std::fs::read(dir.join(file)).map_err(|source| BertError::Read { file, source })
        };
        let config: Config = serde_json::from_slice(&read("config.json")?).map_err(BertError::Config)?;
        if let Some(kind) = config.position_embedding_type.as_deref().filter(|k| *k != "absolute") {
            return Err(BertError::Unsupported(format!(
                "position_embedding_type `{kind}` is not supported (only `absolute`)"
            )));
        }
        let act = Activation::parse(&config.hidden_act).ok_or_else(|| {
            BertError::Unsupported(format!(
                "hidden_act `{}` is not supported (gelu, gelu_new, relu)",
                config.hidden_act
            ))
        })?;
        let (h, i) = (config.hidden_size, config.intermediate_size);
        if config.num_attention_heads == 0 || h % config.num_attention_heads != 0 {
            return Err(BertError::Unsupported(format!(
                "{h} hidden values do not split into {} heads",
                config.num_attention_heads
            )));
        }
        let bytes = read("model.safetensors")?;
        let t =
            Tensors(candle_core::safetensors::load_buffer(&bytes, &Device::Cpu).map_err(BertError::Weights)?);
        let eps = config.layer_norm_eps as f32;
        let word = t.values("embeddings.word_embeddings.weight")?;
        if word.len() % h != 0 {
            return Err(BertError::Unsupported(format!("the word embeddings are not rows of {h} values")));
        }
        let mut layers = Vec::with_capacity(config.num_hidden_layers);
        for l in 0..config.num_hidden_layers {
            let p = format!("encoder.layer.{l}");
            let (q, k, v) = (
                t.matrix(&format!("{p}.attention.self.query.weight"), h, h)?,
                t.matrix(&format!("{p}.attention.self.key.weight"), h, h)?,
                t.matrix(&format!("{p}.attention.self.value.weight"), h, h)?,
            );
            let mut qkv_bias = t.vector(&format!("{p}.attention.self.query.bias"), h)?;
            qkv_bias.extend(t.vector(&format!("{p}.attention.self.key.bias"), h)?);
            qkv_bias.extend(t.vector(&format!("{p}.attention.self.value.bias"), h)?);
            layers.push(Layer {
                qkv: F32Matrix::stack(&[&q, &k, &v])
                    .map_err(|source| BertError::Kernel { name: format!("{p}.attention.self"), source })?,
                qkv_bias,
                attn_out: t.matrix(&format!("{p}.attention.output.dense.weight"), h, h)?,
                attn_out_bias: t.vector(&format!("{p}.attention.output.dense.bias"), h)?,
                attn_norm: t.norm(&format!("{p}.attention.output.LayerNorm"), h, eps)?,
                up: t.matrix(&format!("{p}.intermediate.dense.weight"), i, h)?,
                up_bias: t.vector(&format!("{p}.intermediate.dense.bias"), i)?,
                down: t.matrix(&format!("{p}.output.dense.weight"), h, i)?,
                down_bias: t.vector(&format!("{p}.output.dense.bias"), h)?,
                out_norm: t.norm(&format!("{p}.output.LayerNorm"), h, eps)?,
            });
        }
        let position =
            t.vector("embeddings.position_embeddings.weight", config.max_position_embeddings * h)?;
        let segment = t.values("embeddings.token_type_embeddings.weight")?.get(..h).map(<[f32]>::to_vec);
        Ok(Self {
            width: h,
            heads: config.num_attention_heads,
            max_positions: config.max_position_embeddings,
            act,
            word,
            position,
            segment: segment
                .ok_or_else(|| BertError::Unsupported("the token type embeddings are empty".into()))?,
            embed_norm: t.norm("embeddings.LayerNorm", h, eps)?,
            layers,
            scratch: std::sync::Mutex::default(),
        })
    }

    /// Values per token of the output.
    pub fn width(&self) -> usize {
        self.width
    }

    /// Longest sequence the position embeddings cover.
    pub fn max_positions(&self) -> usize {
        self.max_positions
    }

    /// `read` of the last hidden state of every token of every sequence, packed in order
    /// (`width()` values per token), computed on up to `threads` threads of the current rayon
    /// pool.
    pub fn forward<R>(
        &self,
        sequences: &[&[u32]],
        threads: usize,
        read: impl FnOnce(&[f32]) -> R,
    ) -> Result<R, BertError> {
        let mut scratch = self.scratch.lock().ok().and_then(|mut s| s.pop()).unwrap_or_default();
        let result = self.pass(sequences, threads, &mut scratch).map(|()| read(&scratch.x));
        if let Ok(mut kept) = self.scratch.lock() {
            kept.push(scratch);
        }
        result
    }

    /// The pass itself, leaving the last hidden state in `s.x`.
    fn pass(&self, sequences: &[&[u32]], threads: usize, s: &mut Scratch) -> Result<(), BertError> {
        let h = self.width;
        let lens: Vec<usize> = sequences.iter().map(|s| s.len()).collect();
        let rows: usize = lens.iter().sum();
        let vocab = self.word.len() / h;
        let x = &mut s.x;
        x.clear();
        for seq in sequences {
            if seq.len() > self.max_positions {
                return Err(BertError::Input(format!(
                    "{} tokens, over the model's {} positions",
                    seq.len(),
                    self.max_positions
                )));
            }
            for (pos, &id) in seq.iter().enumerate() {
                let id = id as usize;
                if id >= vocab {
                    return Err(BertError::Input(format!(
                        "token id {id} is outside the vocabulary of {vocab}"
                    )));
                }
                let (word, position) = (&self.word[id * h..][..h], &self.position[pos * h..][..h]);
                x.extend(word.iter().zip(position).zip(&self.segment).map(|((w, p), s)| w + p + s));
            }
        }
        self.embed_norm.rows(x);
        let product = |w: &F32Matrix, input: &[f32], out: &mut Vec<f32>| -> Result<(), BertError> {
            out.resize(rows * w.rows(), 0.0);
            w.matmul(input, out, threads)
                .map_err(|source| BertError::Kernel { name: "a layer's product".into(), source })
        };
        let Scratch { x, qkv, context, sublayer, inner } = s;
        context.resize(rows * h, 0.0);
        for layer in &self.layers {
            product(&layer.qkv, x, qkv)?;
            add_bias(qkv, &layer.qkv_bias);
            attention(qkv, &lens, self.heads, context);
            product(&layer.attn_out, context, sublayer)?;
            layer.attn_norm.residual(x, sublayer, &layer.attn_out_bias);
            product(&layer.up, x, inner)?;
            bias_activation(inner, &layer.up_bias, self.act);
            product(&layer.down, inner, sublayer)?;
            layer.out_norm.residual(x, sublayer, &layer.down_bias);
        }
        Ok(())
    }
}
