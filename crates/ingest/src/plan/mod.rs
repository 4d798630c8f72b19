//! Admission planning: a [`JobRequest`] becomes a validated [`Dag`], or a specific error.
//!
//! Pure and deterministic (same request ⇒ same DAG, byte for byte): the gateway runs it to answer
//! at once, the scheduler runs it again when it reads the request from the log, and both must agree.
//! Templates: `chat` (one `llm_inference`), `batch_analysis` (split → one `llm_inference` per chunk →
//! `aggregation` → final `llm_inference` summary; with `"mode": "records"`, extract → embed →
//! cluster → table, see `records`), `embed` (split → `embedding` per batch of chunks →
//! `aggregation`), `explicit` (the user's DAG, validated), and `auto` (the hybrid planner: a
//! planning task whose model-written DAG joins the job at run time, see `hybrid`).

mod chunks;
mod error;
mod expand;
mod hybrid;
mod input_schema;
mod parse;
mod planner;
mod records;
mod templates;
mod validate;

pub use chunks::{chunk_lines, chunk_texts};
pub use error::PlanError;
pub use expand::{expand, parse_subdag};
pub use hybrid::{CATALOGUE, Catalogue, MAX_STEPS};
pub use input_schema::{generation as generation_schema, input_schema, messages as messages_schema};
pub use parse::parse_request;
pub use planner::{HybridPlanner, Planner, TemplatePlanner, plan};
pub use validate::{MAX_SLEEP_MS, MAX_TOKENS, validate};

/// Admission limits (sizes in bytes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Tasks in one DAG.
    pub max_tasks: usize,
    /// Encoded size of the request's `input` (and of an explicit DAG).
    pub max_input_bytes: usize,
    /// Lines per chunk for `batch_analysis` unless the request says.
    pub default_chunk_lines: usize,
    /// Texts per embedding task for `embed`.
    pub embed_batch: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self { max_tasks: 1_000, max_input_bytes: 1 << 20, default_chunk_lines: 20, embed_batch: 32 }
    }
}
