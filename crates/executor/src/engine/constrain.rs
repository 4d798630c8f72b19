//! Decoding under a structured-output automaton: the next token is the best (greedy) or a
//! sampled one among those whose bytes the automaton accepts. Checking candidates lazily — the
//! model's favourites first, a full mask only when dozens of them are refused — keeps the cost
//! to a few automaton walks per token instead of one per vocabulary entry.

use candle_core::Tensor;
use candle_transformers::generation::LogitsProcessor;
use splai_ingest::structured::Machine;

/// The bytes of every token id (`None`: a control token, never part of structured output).
pub type TokenBytes = [Option<Vec<u8>>];

/// Candidates checked one by one before building the full mask.
const LAZY: usize = 64;

/// Whether `token` may come next.
fn allowed(machine: &Machine, bytes: &TokenBytes, token: usize) -> bool {
    bytes.get(token).and_then(Option::as_ref).is_some_and(|b| !b.is_empty() && machine.accepts(b))
}

/// The next token under `machine` from `logits`: greedy when `sampler` is `None`.
pub(super) fn pick(
    logits: &Tensor,
    machine: &Machine,
    bytes: &TokenBytes,
    sampler: Option<&mut LogitsProcessor>,
) -> candle_core::Result<Option<u32>> {
    let mut values: Vec<f32> = logits.to_vec1()?;
    match sampler {
        None => {
            // The model's favourites first; then, best first, only the tokens whose first byte
            // the automaton takes (a constrained position allows few: no full sort of the vocabulary).
            let better = |a: &usize, b: &usize| values[*b].total_cmp(&values[*a]).then(a.cmp(b));
            let mut order: Vec<usize> = (0..values.len()).collect();
            let head = LAZY.min(order.len());
            if head > 0 {
                order.select_nth_unstable_by(head - 1, better);
            }
            order[..head].sort_unstable_by(better);
            if let Some(t) = order[..head].iter().find(|t| allowed(machine, bytes, **t)) {
                return Ok(Some(*t as u32));
            }
            let first: [bool; 256] = std::array::from_fn(|b| machine.accepts(&[b as u8]));
            let mut rest: Vec<usize> = order[head..]
                .iter()
                .copied()
                .filter(|t| {
                    bytes
                        .get(*t)
                        .and_then(Option::as_ref)
                        .and_then(|b| b.first())
                        .is_some_and(|b| first[*b as usize])
                })
                .collect();
            rest.sort_unstable_by(better);
            Ok(rest.into_iter().find(|t| allowed(machine, bytes, *t)).map(|t| t as u32))
        }
        Some(sampler) => {
            // Rejection sampling: a refused token is removed and the rest sampled again, which
            // draws from the distribution restricted to allowed tokens.
            for _ in 0..LAZY {
                let t = sampler.sample(&Tensor::new(values.as_slice(), logits.device())?)? as usize;
                if allowed(machine, bytes, t) {
                    return Ok(Some(t as u32));
                }
                values[t] = f32::NEG_INFINITY;
            }
            let mut any = false;
            for (t, v) in values.iter_mut().enumerate() {
                if !allowed(machine, bytes, t) {
                    *v = f32::NEG_INFINITY;
                } else {
                    any = true;
                }
            }
            if !any {
                return Ok(None);
            }
            Ok(Some(sampler.sample(&Tensor::new(values.as_slice(), logits.device())?)?))
        }
    }
}

/// GPT-2's byte-level alphabet: the character each byte is written as in a BPE vocabulary.
fn byte_chars() -> Vec<char> {
    let mut printable: Vec<u32> = (b'!' as u32..=b'~' as u32).chain(0xA1..=0xAC).chain(0xAE..=0xFF).collect();
    let mut chars: Vec<u32> = printable.clone();
    let mut extra = 0;
    for b in 0..256u32 {
        if !printable.contains(&b) {
            printable.push(b);
            chars.push(256 + extra);
            extra += 1;
        }
    }
    let mut table = vec!['\0'; 256];
    for (b, c) in printable.iter().zip(chars) {
        table[*b as usize] = char::from_u32(c).unwrap_or('\0');
    }
    table
}

/// The bytes of each vocabulary entry written in the byte-level alphabet; control tokens (type
/// 3) and entries outside the alphabet are `None`.
pub fn token_bytes(tokens: &[String], types: &[i32]) -> Vec<Option<Vec<u8>>> {
    let table = byte_chars();
    let back: std::collections::HashMap<char, u8> =
        table.iter().enumerate().map(|(b, c)| (*c, b as u8)).collect();
    tokens
        .iter()
        .enumerate()
        .map(|(i, t)| {
            if types.get(i) == Some(&3) {
                return None;
            }
            t.chars().map(|c| back.get(&c).copied()).collect()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_byte_level_alphabet_round_trips() {
        let table = byte_chars();
        assert_eq!(table[b' ' as usize], 'Ġ');
        assert_eq!(table[b'\n' as usize], 'Ċ');
        assert_eq!(table[b'a' as usize], 'a');
        let bytes = token_bytes(&["Ġ{\"".into(), "<|im_end|>".into(), "Ã©".into()], &[1, 3, 1]);
        assert_eq!(bytes[0].as_deref(), Some(&b" {\""[..]));
        assert_eq!(bytes[1], None, "control tokens never appear in structured output");
        assert_eq!(bytes[2].as_deref(), Some("é".as_bytes()));
    }
}
