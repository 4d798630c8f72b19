//! What can go wrong talking to the gateway.

use std::time::Duration;

use serde_json::Value;

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("cannot build the HTTP client")]
    Build {
        #[source]
        source: reqwest::Error,
    },
    #[error("cannot reach the gateway at {url}")]
    Unreachable {
        url: String,
        #[source]
        source: reqwest::Error,
    },
    /// The gateway answered with an error status and the API's error body.
    #[error("the gateway answered {status} {code}: {message}{}", field.as_ref().map(|f| format!(" (field `{f}`)")).unwrap_or_default())]
    Api { status: u16, code: String, message: String, field: Option<String> },
    #[error("the gateway's {what} is not what the API documents")]
    Decode {
        what: &'static str,
        #[source]
        source: serde_json::Error,
    },
    /// A job awaited to succeed ended otherwise.
    #[error("job {job_id} ended {state}: {reason}")]
    JobEnded { job_id: String, state: splai_events::JobState, reason: String },
    #[error("waited {within:?} for {what}")]
    Timeout { what: String, within: Duration },
    #[error("the job stream {0}")]
    Stream(String),
}

impl ClientError {
    /// An error status with its body (`{code, message, field}`, or anything else).
    pub fn api(status: u16, body: &Value) -> Self {
        let text = |k: &str| body.get(k).and_then(Value::as_str).map(str::to_string);
        ClientError::Api {
            status,
            code: text("code").unwrap_or_else(|| "error".into()),
            message: text("message").unwrap_or_else(|| "(no message)".into()),
            field: text("field"),
        }
    }

    /// The HTTP status of an [`ClientError::Api`] answer.
    pub fn status(&self) -> Option<u16> {
        match self {
            ClientError::Api { status, .. } => Some(*status),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::ClientError;

    #[test]
    fn an_api_error_names_status_code_message_and_field() {
        let body = serde_json::json!({"code": "invalid_limit", "message": "`limit` must be 1–500", "field": "limit"});
        let e = ClientError::api(400, &body);
        assert_eq!(e.status(), Some(400));
        assert_eq!(
            e.to_string(),
            "the gateway answered 400 invalid_limit: `limit` must be 1–500 (field `limit`)"
        );
    }

    #[test]
    fn a_body_that_is_not_the_api_error_still_gives_a_message() {
        let e = ClientError::api(502, &serde_json::Value::Null);
        assert_eq!(e.to_string(), "the gateway answered 502 error: (no message)");
    }
}
