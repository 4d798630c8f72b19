//! How a model's weight matrices are held in memory (config `executor.llm_weights`): as the file
//! stores them, or converted at load to another GGML type.

use std::fmt;
use std::str::FromStr;

use candle_core::quantized::GgmlDType;

/// How a model's weight matrices are held in memory (config `executor.llm_weights`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Weights {
    /// As stored in the file.
    AsIs,
    /// Every matrix converted at load to this type (dequantized, then re-quantized). A matrix whose
    /// rows are not a whole number of the type's blocks becomes Q8_0 instead (32-value blocks), or
    /// stays as it is when not even that fits. Vectors (norms) are never converted.
    Convert(GgmlDType),
}

/// As the file holds them (`docs/benchmarks.md`, SmolLM2-135M on x86-64): Q4_1 and Q8_0 matrices
/// multiply through SPLAI's own kernels (`splai-kernels`), and a Q4_1 file's weights are the
/// exact values streamed at half Q8_0's bytes: single-stream decode 1.4× Q8_0's at 1 and 2
/// threads, on par with llama.cpp on the same file. Other types multiply through candle's kernels
/// (convert them to q8_0 to use SPLAI's).
impl Default for Weights {
    fn default() -> Self {
        Self::AsIs
    }
}

const DTYPES: [(&str, GgmlDType); 12] = [
    ("f32", GgmlDType::F32),
    ("f16", GgmlDType::F16),
    ("q4_0", GgmlDType::Q4_0),
    ("q4_1", GgmlDType::Q4_1),
    ("q5_0", GgmlDType::Q5_0),
    ("q5_1", GgmlDType::Q5_1),
    ("q8_0", GgmlDType::Q8_0),
    ("q2k", GgmlDType::Q2K),
    ("q3k", GgmlDType::Q3K),
    ("q4k", GgmlDType::Q4K),
    ("q5k", GgmlDType::Q5K),
    ("q6k", GgmlDType::Q6K),
];

pub(crate) fn dtype_name(dtype: GgmlDType) -> &'static str {
    DTYPES.iter().find(|(_, d)| *d == dtype).map_or("other", |(n, _)| n)
}

/// A weights format no [`Weights`] has.
#[derive(Debug, thiserror::Error)]
#[error("unknown weights format `{0}` (expected as-is or one of {names})", names = DTYPES.map(|(n, _)| n).join(", "))]
pub struct UnknownWeights(pub String);

impl FromStr for Weights {
    type Err = UnknownWeights;

    /// `as-is`, or a type name: f32, f16, q4_0, q4_1, q5_0, q5_1, q8_0, q2k … q6k (`q4_k` also).
    fn from_str(s: &str) -> Result<Self, UnknownWeights> {
        let lower = s.to_ascii_lowercase();
        if lower == "as-is" {
            return Ok(Self::AsIs);
        }
        let key = lower.replace("_k", "k");
        DTYPES
            .iter()
            .find(|(n, _)| *n == key)
            .map(|(_, d)| Self::Convert(*d))
            .ok_or_else(|| UnknownWeights(s.into()))
    }
}

impl fmt::Display for Weights {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::AsIs => f.write_str("as-is"),
            Self::Convert(d) => f.write_str(dtype_name(*d)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn weights_names_round_trip_and_match_the_config() {
        for name in splai_config::LLM_WEIGHTS {
            let w: Weights = name.parse().unwrap();
            assert_eq!(w.to_string(), name);
        }
        assert_eq!(DTYPES.len() + 1, splai_config::LLM_WEIGHTS.len(), "every type is a config value");
        assert_eq!("Q4_K".parse::<Weights>().unwrap(), Weights::Convert(GgmlDType::Q4K));
        assert!("q9".parse::<Weights>().unwrap_err().to_string().contains("unknown weights format `q9`"));
        let documented = splai_config::DEFAULT_TOML
            .lines()
            .find_map(|l| l.strip_prefix("llm_weights = \"")?.strip_suffix('"'))
            .expect("executor.llm_weights in default.toml");
        assert_eq!(documented.parse::<Weights>().unwrap(), Weights::default(), "one default everywhere");
    }
}
