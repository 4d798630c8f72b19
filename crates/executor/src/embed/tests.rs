//! The own forward pass against candle-transformers' BERT (the implementation it replaced) on the
//! benchmark's sentences: cosine ≥ 0.9999 for every text.

use candle_core::{DType, Device, Tensor};
use candle_nn::VarBuilder;
use candle_transformers::models::bert::{BertModel, Config};
use tokenizers::{PaddingParams, Tokenizer};

use super::Embedder;

use crate::test_models::minilm;

/// candle's BERT on a padded batch with an attention mask, mean-pooled over the mask.
fn candle_vectors(dir: &std::path::Path, texts: &[String]) -> Vec<Vec<f32>> {
    let config: Config = serde_json::from_slice(&std::fs::read(dir.join("config.json")).unwrap()).unwrap();
    let mut tokenizer = Tokenizer::from_file(dir.join("tokenizer.json")).unwrap();
    tokenizer.with_padding(Some(PaddingParams::default()));
    let vb = VarBuilder::from_buffered_safetensors(
        std::fs::read(dir.join("model.safetensors")).unwrap(),
        DType::F32,
        &Device::Cpu,
    )
    .unwrap();
    let model = BertModel::load(vb, &config).unwrap();
    let enc = tokenizer.encode_batch(texts.to_vec(), true).unwrap();
    let stack = |f: &dyn Fn(&tokenizers::Encoding) -> &[u32]| {
        Tensor::stack(&enc.iter().map(|e| Tensor::new(f(e), &Device::Cpu).unwrap()).collect::<Vec<_>>(), 0)
            .unwrap()
    };
    let (ids, mask) = (stack(&|e| e.get_ids()), stack(&|e| e.get_attention_mask()));
    let hidden = model.forward(&ids, &ids.zeros_like().unwrap(), Some(&mask)).unwrap();
    let mask = mask.to_dtype(DType::F32).unwrap().unsqueeze(2).unwrap();
    let mean =
        hidden.broadcast_mul(&mask).unwrap().sum(1).unwrap().broadcast_div(&mask.sum(1).unwrap()).unwrap();
    let norm = mean.sqr().unwrap().sum_keepdim(1).unwrap().sqrt().unwrap();
    mean.broadcast_div(&norm).unwrap().to_vec2().unwrap()
}

#[test]
fn vectors_equal_candles_bert_within_cosine_0_9999() {
    let Some(dir) = minilm() else { return };
    // Lengths from 3 to ~40 tokens in one batch, so packing and padding both matter.
    let mut texts: Vec<String> =
        ["Hi.", "The cat quickly finds the red door.", "A kitten is sitting on a rug."]
            .iter()
            .map(|s| s.to_string())
            .collect();
    texts.push(
        "The engineer carefully paints the broken clock while the pilot gladly fixes a wooden chair "
            .repeat(2),
    );
    texts.push(String::new());
    let ours = Embedder::load(&dir, "all-minilm-l6-v2").unwrap().embed(&texts).unwrap();
    let theirs = candle_vectors(&dir, &texts);
    for (i, (a, b)) in ours.iter().zip(&theirs).enumerate() {
        let cos: f32 = a.iter().zip(b).map(|(x, y)| x * y).sum();
        assert!(cos >= 0.9999, "text {i} ({:?}): cosine {cos}", texts[i]);
    }
}
