//! One forward pass for many sequences at once (continuous batching, issue 17): each sequence
//! brings its next tokens (one when decoding, a chunk of its prompt when prefilling) and its own
//! KV cache; the weight matrices multiply the rows of every sequence in one product, so the
//! weights are read once per step instead of once per sequence. Attention stays per sequence
//! (each has its own length, position and causal mask).

use candle_core::{Result, Tensor};
use rayon::prelude::*;

use crate::attention::attend;
use crate::linear::shared_rows;
use crate::llama::{Llama, SeqCache};
use crate::ops::{add, rms_norm, swiglu};

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
        let h = d.hidden;
        if parts.is_empty() || parts.iter().any(|p| p.tokens.is_empty()) {
            candle_core::bail!("forward_batch: every part needs tokens");
        }
        let context = self.rope.positions();
        if let Some(p) = parts.iter().find(|p| p.cache.len() + p.tokens.len() > context) {
            candle_core::bail!(
                "position {} is beyond the context of {context}",
                p.cache.len() + p.tokens.len()
            );
        }
        let rows: usize = parts.iter().map(|p| p.tokens.len()).sum();
        let mut x = Vec::with_capacity(rows * h);
        for &id in parts.iter().flat_map(|p| p.tokens) {
            let at = id as usize * h;
            let Some(row) = self.embeddings.get(at..at + h) else {
                candle_core::bail!("token {id} is outside the vocabulary of {}", self.vocab);
            };
            x.extend_from_slice(row);
        }
        let starts: Vec<usize> = parts.iter().map(|p| p.cache.len()).collect();
        for p in parts.iter_mut() {
            p.cache.width = d.n_kv_head * d.head_dim;
        }
        let mut normed = vec![0f32; rows * h];
        for (l, layer) in self.layers.iter().enumerate() {
            rms_norm(&x, &layer.attn_norm, self.eps, &mut normed);
            let [q, k, v] = shared_rows([&layer.wq, &layer.wk, &layer.wv], &normed, rows)?;
            let mut att = vec![0f32; rows * h];
            self.attend_parts(parts, &starts, l, (&q, &k, &v), &mut att);
            add(&mut x, &layer.wo.forward_rows(&att, rows)?);
            rms_norm(&x, &layer.ffn_norm, self.eps, &mut normed);
            let [mut gate, up] = shared_rows([&layer.gate, &layer.up], &normed, rows)?;
            swiglu(&mut gate, &up);
            add(&mut x, &layer.down.forward_rows(&gate, rows)?);
        }
        for p in parts.iter_mut() {
            p.cache.seal()?;
        }
        let mut last = Vec::new();
        let mut end = 0;
        for p in parts.iter() {
            end += p.tokens.len();
            if p.logits {
                last.extend_from_slice(&x[(end - 1) * h..end * h]);
            }
        }
        let wanted = last.len() / h;
        let device = candle_core::Device::Cpu;
        if wanted == 0 {
            return Tensor::zeros((0, self.vocab), candle_core::DType::F32, &device);
        }
        let mut normed = vec![0f32; last.len()];
        rms_norm(&last, &self.norm, self.eps, &mut normed);
        let logits = self.output.forward_rows(&normed, wanted)?;
        Tensor::from_vec(logits, (wanted, self.vocab), &device)
    }

    /// Attention of layer `l` for every part, in parallel: rows of `q`, `k`, `v` in part order,
    /// outputs into the same rows of `out`.
    fn attend_parts(
        &self,
        parts: &mut [Part<'_>],
        starts: &[usize],
        l: usize,
        (q, k, v): (&[f32], &[f32], &[f32]),
        out: &mut [f32],
    ) {
        let d = self.dims;
        let (qw, kw) = (d.n_head * d.head_dim, d.n_kv_head * d.head_dim);
        let mut jobs = Vec::with_capacity(parts.len());
        let mut rest = out;
        let mut row = 0;
        for (p, start) in parts.iter_mut().zip(starts) {
            let len = p.tokens.len();
            let (mine, tail) = std::mem::take(&mut rest).split_at_mut(len * qw);
            rest = tail;
            let cache = &mut *p.cache;
            jobs.push((row, len, *start, (&cache.blocks[..], l, &mut cache.tail[l]), mine));
            row += len;
        }
        jobs.into_par_iter().for_each(|(row, len, start, kv, out)| {
            let q = q[row * qw..(row + len) * qw].to_vec();
            let k = k[row * kw..(row + len) * kw].to_vec();
            attend(q, k, &v[row * kw..(row + len) * kw], kv, start, &d, &self.rope, out);
        });
    }
}

#[cfg(test)]
mod tests {
    use candle_core::quantized::gguf_file;
    use candle_core::{Device, Tensor};

    use crate::llama::{Llama, SeqCache};
    use crate::llm::Weights;
    use crate::llm::tests::smollm2;

    /// SmolLM2 as the executor holds it by default (its Q4_1 file as is, through the kernels).
    fn load() -> Option<Llama> {
        let path = smollm2()?;
        let mut file = std::fs::File::open(&path).unwrap();
        let content = gguf_file::Content::read(&mut file).unwrap();
        Some(Llama::load(&content, &mut file, &Device::Cpu, Weights::default(), false, 2048).unwrap())
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
