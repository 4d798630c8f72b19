//! SPLAI executors: register capabilities, beat with measured utilization, run assigned attempts
//! and report on `task-events`, writing each output as an artifact with its lineage
//! (ARCHITECTURE §6).
//!
//! - [`inputs`]: literal inputs and parents' artifacts (verified, narrowed by JSON pointers);
//! - [`tools`]: built-in tools (`split_lines`, `json_extract`, `regex`, `template`, `sleep`, `map`);
//! - [`subdag`]: the `map` tool and the sub-DAG an expanding task reports;
//! - [`shell`]: the `shell` tool, off unless an operator enables it; isolated and limited;
//! - [`aggregate`]: merging parents' outputs (`concat`, `json_merge`, `vote`, `top_k`,
//!   `concat_vectors`);
//! - [`service`]: the executor process loop; `attempt`: one attempt, assignment to report.
//!
//! - [`llm`], [`models`]: candle inference on quantized GGUF models found in the model directory.
//!
//! - [`embed`]: BERT sentence embeddings through its own packed forward pass (all-MiniLM-L6-v2), mean-pooled and normalised.

pub mod aggregate;
mod attempt;
mod attention;
pub mod batch;
pub mod cache;
pub mod embed;
pub mod engine;
pub mod error;
pub mod execute;
pub mod inputs;
pub mod kv;
pub mod linear;
pub mod llama;
pub mod llm;
pub mod models;
mod ops;
pub mod service;
pub mod shell;
pub mod subdag;
pub mod test_models;
pub mod tools;
pub mod utilization;
pub mod weights;

pub use error::AttemptError;
