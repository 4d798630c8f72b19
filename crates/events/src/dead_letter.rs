//! Records that could not be processed, on the `dead-letter` topic. Nothing is dropped silently.

use serde::{Deserialize, Serialize};

/// Where a record came from.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct SourcePosition {
    pub topic: String,
    pub partition: u32,
    pub offset: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct DeadLetter {
    /// Absent for dead letters that are not records (e.g. a dead-lettered task).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<SourcePosition>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub job_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub task_id: Option<String>,
    /// Why: the decode error, or the last attempt's error.
    pub reason: String,
    /// The original payload, as UTF-8 text when it was valid UTF-8, else base64.
    #[serde(default)]
    pub payload: String,
    #[serde(default)]
    pub payload_encoding: PayloadEncoding,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "snake_case")]
pub enum PayloadEncoding {
    #[default]
    Utf8,
    Base64,
}
