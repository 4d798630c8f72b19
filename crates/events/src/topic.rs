//! The topic vocabulary. Physical names are `{prefix}{name}`, prefix `splai.` by default.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "kebab-case")]
pub enum Topic {
    Jobs,
    Control,
    Heartbeats,
    Assignments,
    TaskEvents,
    JobEvents,
    DeadLetter,
    Metrics,
}

impl Topic {
    pub const ALL: [Topic; 8] = [
        Topic::Jobs,
        Topic::Control,
        Topic::Heartbeats,
        Topic::Assignments,
        Topic::TaskEvents,
        Topic::JobEvents,
        Topic::DeadLetter,
        Topic::Metrics,
    ];

    /// The logical name, without prefix.
    pub fn name(self) -> &'static str {
        match self {
            Topic::Jobs => "jobs",
            Topic::Control => "control",
            Topic::Heartbeats => "heartbeats",
            Topic::Assignments => "assignments",
            Topic::TaskEvents => "task-events",
            Topic::JobEvents => "job-events",
            Topic::DeadLetter => "dead-letter",
            Topic::Metrics => "metrics",
        }
    }

    /// The physical name under `prefix`.
    pub fn with_prefix(self, prefix: &str) -> String {
        format!("{prefix}{}", self.name())
    }
}
