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

    /// A fatal error whose message is `context` and `error` with every cause it carries, since
    /// the message is all that reaches the user (`what: error: cause: …`).
    pub fn fatal_caused(context: impl std::fmt::Display, error: &(dyn std::error::Error + 'static)) -> Self {
        let mut message = format!("{context}: {error}");
        let mut cause = error.source();
        while let Some(c) = cause {
            message.push_str(&format!(": {c}"));
            cause = c.source();
        }
        Self::fatal(message)
    }
}

#[cfg(test)]
mod tests {
    use super::AttemptError;

    #[test]
    fn a_caused_error_names_every_cause() {
        let io = std::io::Error::new(std::io::ErrorKind::NotFound, "no such file");
        let e = AttemptError::fatal_caused("cannot load model m", &io);
        assert_eq!(e.message, "cannot load model m: no such file");
        assert!(!e.retryable);
        #[derive(Debug, thiserror::Error)]
        #[error("cannot read config.json")]
        struct Read(#[source] std::io::Error);
        let nested = Read(std::io::Error::other("permission denied"));
        assert_eq!(
            AttemptError::fatal_caused("load", &nested).message,
            "load: cannot read config.json: permission denied"
        );
    }
}
