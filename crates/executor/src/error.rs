//! Why an attempt failed, and whether running it again could help.

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct AttemptError {
    pub message: String,
    /// False for bad input (unknown tool, malformed parent output, ...): retrying cannot help.
    pub retryable: bool,
}

impl AttemptError {
    pub fn fatal(message: impl Into<String>) -> Self {
        Self { message: message.into(), retryable: false }
    }

    pub fn transient(message: impl Into<String>) -> Self {
        Self { message: message.into(), retryable: true }
    }
}
