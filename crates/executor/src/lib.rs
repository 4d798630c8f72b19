//! SPLAI executors: register capabilities, beat with measured utilization, run assigned attempts
//! and report on `task-events`, writing each output as an artifact with its lineage
//! (ARCHITECTURE §6).
//!
//! - [`inputs`]: literal inputs and parents' artifacts (verified, narrowed by JSON pointers);
//! - [`tools`]: built-in tools (`split_lines`, `json_extract`, `regex`, `template`);
//! - [`aggregate`]: merging parents' outputs (`concat`, `json_merge`, `vote`, `top_k`,
//!   `concat_vectors`);
//! - [`service`]: the executor process loop.
//!
//! Not yet built: candle inference (`llm_inference`, `embedding`) and the `shell` tool — an
//! executor without models says so in its capabilities and fails such attempts non-retryably.

pub mod aggregate;
pub mod error;
pub mod execute;
pub mod inputs;
pub mod llm;
pub mod service;
pub mod tools;
pub mod utilization;

pub use error::AttemptError;
