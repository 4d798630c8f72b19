//! One forward pass for many sequences at once (continuous batching, issue 17): each sequence
//! brings its next tokens (one when decoding, a chunk of its prompt when prefilling) and its own
//! KV cache; the weight matrices multiply the rows of every sequence in one product, so the
//! weights are read once per step instead of once per sequence. Attention stays per sequence
//! (each has its own length, position and causal mask).

use candle_core::{D, Result, Tensor};

use crate::linear::shared_input;
use crate::llama::{Llama, Rope, SeqCache};

/// One sequence's part of a step: tokens appended at the cache's next position.
#[derive(Debug)]
pub struct Part<'a> {
    pub tokens: &'a [u32],
    pub cache: &'a mut SeqCache,
    /// Whether the step returns logits for this part's last token (a prefill chunk that does not
    /// end the prompt needs none).
    pub logits: bool,
}

impl Llama {
    /// Logits `[n, vocab]`: row `i` for `tokens[i]` appended to `caches[i]` at its next position.
    pub fn decode_batch(&self, tokens: &[u32], caches: &mut [&mut SeqCache]) -> Result<Tensor> {
        if tokens.len() != caches.len() {
            candle_core::bail!("decode_batch: {} tokens for {} caches", tokens.len(), caches.len());
        }
        let mut parts: Vec<Part<'_>> = tokens
            .chunks(1)
            .zip(caches.iter_mut())
            .map(|(t, c)| Part { tokens: t, cache: c, logits: true })
            .collect();
        self.forward_batch(&mut parts)
    }

    /// One forward pass over every part: logits `[k, vocab]` for the last token of each of the
    /// `k` parts that ask for them, in order.
    pub fn forward_batch(&self, parts: &mut [Part<'_>]) -> Result<Tensor> {
        let d = self.dims;
        let context = self.cos.dim(0)?;
        if parts.is_empty() || parts.iter().any(|p| p.tokens.is_empty()) {
            candle_core::bail!("forward_batch: every part needs tokens");
        }
        if let Some(p) = parts.iter().find(|p| p.cache.len() + p.tokens.len() > context) {
            candle_core::bail!(
                "position {} is beyond the context of {context}",
                p.cache.len() + p.tokens.len()
            );
        }
        let device = self.embeddings.device();
        let ids: Vec<u32> = parts.iter().flat_map(|p| p.tokens.iter().copied()).collect();
        let mut x = self.embeddings.index_select(&Tensor::new(ids.as_slice(), device)?, 0)?;
        let pad = |t: Tensor| t.pad_with_zeros(D::Minus1, 0, d.hidden_held - d.hidden);
        // Per part: offset of its rows, rotary tables and causal mask at its positions.
        let mut layout = Vec::with_capacity(parts.len());
        let mut offset = 0;
        for p in parts.iter() {
            let (pos, len) = (p.cache.len(), p.tokens.len());
            let mask = match len {
                1 => None,
                _ => Some(candle_transformers::utils::build_causal_mask(len, pos, device)?),
            };
            layout.push((
                offset,
                len,
                pos,
                self.cos.narrow(0, pos, len)?,
                self.sin.narrow(0, pos, len)?,
                mask,
            ));
            offset += len;
        }
        for (l, layer) in self.layers.iter().enumerate() {
            let h = pad(candle_nn::ops::rms_norm(&x, &layer.attn_norm, self.eps)?)?;
            let [q, k, v] = shared_input([&layer.wq, &layer.wk, &layer.wv], &h)?;
            let mut ys = Vec::with_capacity(parts.len());
            for (p, (offset, len, pos, cos, sin, mask)) in parts.iter_mut().zip(&layout) {
                let rows = |t: &Tensor| t.narrow(0, *offset, *len)?.unsqueeze(0);
                let rope = Rope { cos, sin };
                let y = layer.attend(
                    rows(&q)?,
                    rows(&k)?,
                    rows(&v)?,
                    mask.as_ref(),
                    &self.neg_inf,
                    &rope,
                    *pos,
                    &d,
                    &mut p.cache.layers[l],
                )?;
                ys.push(y.squeeze(0)?);
            }
            x = (x + layer.wo.forward(&Tensor::cat(&ys, 0)?)?)?;
            let h = pad(candle_nn::ops::rms_norm(&x, &layer.ffn_norm, self.eps)?)?;
            let [gate, up] = shared_input([&layer.gate, &layer.up], &h)?;
            x = (x + layer.down.forward(&(candle_nn::ops::silu(&gate)? * up)?)?)?;
        }
        let last: Vec<u32> = parts
            .iter()
            .zip(&layout)
            .filter(|(p, _)| p.logits)
            .map(|(_, (offset, len, ..))| (offset + len - 1) as u32)
            .collect();
        if last.is_empty() {
            return Tensor::zeros((0, self.embeddings.dim(0)?), candle_core::DType::F32, device);
        }
        let x = x.index_select(&Tensor::new(last.as_slice(), device)?, 0)?;
        let x = pad(candle_nn::ops::rms_norm(&x, &self.norm, self.eps)?)?;
        self.output.forward(&x)
    }
}

#[cfg(test)]
mod tests {
    use candle_core::quantized::{GgmlDType, gguf_file};
    use candle_core::{Device, Tensor};

    use crate::llama::{Llama, SeqCache};
    use crate::llm::Weights;
    use crate::llm::tests::smollm2;

    pub(super) fn load_as(dtype: GgmlDType) -> Option<Llama> {
        let path = smollm2()?;
        let mut file = std::fs::File::open(&path).unwrap();
        let content = gguf_file::Content::read(&mut file).unwrap();
        Some(Llama::load(&content, &mut file, &Device::Cpu, Weights::Convert(dtype), true, 2048).unwrap())
    }

    fn load() -> Option<Llama> {
        load_as(GgmlDType::Q8_0)
    }

    fn argmax(logits: &Tensor) -> u32 {
        let v: Vec<f32> = logits.to_vec1().unwrap();
        v.iter().enumerate().fold((0, f32::MIN), |b, (i, x)| if *x > b.1 { (i, *x) } else { b }).0 as u32
    }

    /// Prompt `i`: a deterministic run of token ids, of a length that differs per prompt.
    fn prompt(i: usize) -> Vec<u32> {
        (0..2 + i * 5 % 23).map(|j| 200 + ((i * 7919 + j * 104_729) % 40_000) as u32).collect()
    }

    /// Greedy continuation of `ids` for `steps` tokens, one sequence at a time.
    fn alone(m: &Llama, ids: &[u32], steps: usize) -> Vec<u32> {
        let mut cache = SeqCache::new(m.layers.len());
        let input = Tensor::new(ids, &Device::Cpu).unwrap().unsqueeze(0).unwrap();
        let mut next = argmax(&m.forward_with(&input, 0, &mut cache).unwrap().squeeze(0).unwrap());
        let mut out = vec![next];
        while out.len() < steps {
            let input = Tensor::new(&[next], &Device::Cpu).unwrap().unsqueeze(0).unwrap();
            next = argmax(&m.forward_with(&input, cache.len(), &mut cache).unwrap().squeeze(0).unwrap());
            out.push(next);
        }
        out
    }

    /// Issue 17 item 2: greedy output of every sequence in a batch equals its unbatched output,
    /// token for token — 16 prompts of different lengths joining at different steps, some
    /// cancelled midway.
    #[test]
    fn batched_greedy_decoding_equals_one_sequence_at_a_time() {
        let Some(m) = load() else { return };
        const STEPS: usize = 6;
        let prompts: Vec<Vec<u32>> = (0..16).map(prompt).collect();
        let expected: Vec<Vec<u32>> = prompts.iter().map(|p| alone(&m, p, STEPS)).collect();
        // Sequence i joins at step i / 2; every fifth is cancelled after three tokens.
        let cancel_after = |i: usize| if i % 5 == 4 { 3 } else { STEPS };
        let mut caches: Vec<SeqCache> = prompts.iter().map(|_| SeqCache::new(m.layers.len())).collect();
        let mut got: Vec<Vec<u32>> = vec![Vec::new(); prompts.len()];
        for step in 0..STEPS + prompts.len() / 2 {
            for i in (0..prompts.len()).filter(|i| i / 2 == step) {
                let input = Tensor::new(prompts[i].as_slice(), &Device::Cpu).unwrap().unsqueeze(0).unwrap();
                let logits = m.forward_with(&input, 0, &mut caches[i]).unwrap().squeeze(0).unwrap();
                got[i].push(argmax(&logits));
            }
            let active: Vec<usize> = (0..prompts.len())
                .filter(|i| !got[*i].is_empty() && got[*i].len() < cancel_after(*i) && i / 2 < step)
                .collect();
            if active.is_empty() {
                continue;
            }
            let tokens: Vec<u32> = active.iter().map(|i| *got[*i].last().unwrap()).collect();
            let mut batch: Vec<&mut SeqCache> =
                caches.iter_mut().enumerate().filter(|(i, _)| active.contains(i)).map(|(_, c)| c).collect();
            let logits = m.decode_batch(&tokens, &mut batch).unwrap();
            for (row, i) in active.iter().enumerate() {
                got[*i].push(argmax(&logits.get(row).unwrap()));
            }
        }
        for (i, (g, e)) in got.iter().zip(&expected).enumerate() {
            assert_eq!(g.as_slice(), &e[..g.len()], "sequence {i} (prompt of {} tokens)", prompts[i].len());
            assert_eq!(g.len(), cancel_after(i), "sequence {i} ran its steps");
        }
    }
}
