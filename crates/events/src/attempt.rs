//! Attempt lifecycle on the `task-events` topic (key: job id).

use serde::{Deserialize, Serialize};

/// `(job, task, attempt)`: the fencing token of every execution. Attempts count from 1.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct AttemptId {
    pub job_id: String,
    pub task_id: String,
    pub attempt: u32,
}

/// Declares an event about one attempt: on the wire its fields sit beside the attempt's `job_id`,
/// `task_id` and `attempt` (encoded with `flatten`, so the attempt comes first). It decodes in one
/// pass through a flat twin of the same name: serde's derived `flatten` decode buffers the whole
/// body as generic content first, and these events are nearly everything a scheduler reads.
macro_rules! attempt_event {
    (
        $(#[$meta:meta])*
        pub struct $name:ident {
            $( $(#[$field_meta:meta])* pub $field:ident : $ty:ty, )*
        }
    ) => {
        $(#[$meta])*
        #[derive(serde::Serialize)]
        #[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
        pub struct $name {
            #[serde(flatten)]
            pub attempt: $crate::AttemptId,
            $( $(#[$field_meta])* pub $field: $ty, )*
        }

        impl<'de> serde::Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                // Same name, so decode errors read as they did ("expected struct Assign").
                #[derive(serde::Deserialize)]
                struct $name {
                    job_id: String,
                    task_id: String,
                    attempt: u32,
                    $( $(#[$field_meta])* $field: $ty, )*
                }
                let flat = <$name as serde::Deserialize>::deserialize(d)?;
                let attempt =
                    $crate::AttemptId { job_id: flat.job_id, task_id: flat.task_id, attempt: flat.attempt };
                Ok(Self { attempt, $( $field: flat.$field, )* })
            }
        }
    };
}
pub(crate) use attempt_event;

attempt_event! {
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct AttemptStarted {
        pub worker_id: String,
    }
}

attempt_event! {
    /// Streaming progress, e.g. tokens generated so far.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct AttemptProgress {
        pub worker_id: String,
        pub tokens: u32,
        /// Text generated since the previous progress event.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub delta: Option<String>,
    }
}

attempt_event! {
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct AttemptSucceeded {
        pub worker_id: String,
        /// The output this attempt wrote.
        pub artifact: ArtifactRef,
        /// Lineage: every artifact this attempt read.
        pub inputs: Vec<ArtifactRef>,
        pub duration_ms: u64,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub usage: Option<Usage>,
        /// What the output was computed from besides `inputs`, for outputs that can be reused.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub provenance: Option<Provenance>,
        /// An expanding task's proposed sub-DAG, as its output gave it (the scheduler validates
        /// it; see [`crate::SubDag`]).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub subdag: Option<serde_json::Value>,
    }
}

attempt_event! {
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct AttemptFailed {
        pub worker_id: String,
        pub error: String,
        /// False when running it again cannot help (bad input, unknown tool).
        pub retryable: bool,
        /// Set when the attempt stopped because the scheduler revoked it: why.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub revoked: Option<crate::RevokeReason>,
    }
}

/// Lineage of an output determined by its inputs: the cache key it is filed under and what went
/// into it besides the input artifacts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct Provenance {
    /// sha256 of the task's kind, resolved inputs (generation parameters included), model
    /// weights and executor version.
    pub cache_key: String,
    /// sha256 of the model's weights file, for inference and embeddings.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model_sha256: Option<String>,
    pub executor_version: String,
    /// The earlier artifact this output was copied from instead of running (a cache hit).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cached_from: Option<String>,
}

pub(crate) fn yes() -> bool {
    true
}

pub(crate) fn is_true(b: &bool) -> bool {
    *b
}

/// An object in the artifact store: `{tenant}/{job}/{task}/{attempt}/output.json`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct ArtifactRef {
    pub path: String,
    pub sha256: String,
    pub size_bytes: u64,
}

/// Token counts of an inference attempt.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct Usage {
    pub prompt_tokens: u32,
    pub completion_tokens: u32,
}
