//! The gateway's one error type: an HTTP status with the JSON body `{code, message, field?}`.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

/// The JSON body of every error response.
#[derive(Debug, Clone, Serialize, PartialEq, utoipa::ToSchema)]
pub struct ErrorBody {
    /// Stable machine-readable code, e.g. `dag_cycle`, `not_found`, `rate_limited`.
    pub code: String,
    /// What went wrong, for people.
    pub message: String,
    /// The request field at fault, as a JSON path, when there is one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ApiError {
    pub status: StatusCode,
    pub body: ErrorBody,
    /// Seconds to wait, for 429.
    pub retry_after_s: Option<u64>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &str, message: impl Into<String>) -> Self {
        Self {
            status,
            body: ErrorBody { code: code.into(), message: message.into(), field: None },
            retry_after_s: None,
        }
    }

    pub fn with_field(mut self, field: Option<String>) -> Self {
        self.body.field = field;
        self
    }

    pub fn bad_request(code: &str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code, message)
    }

    pub fn not_found(what: &str, id: &str) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", format!("{what} `{id}` not found"))
    }

    pub fn too_many(code: &str, message: impl Into<String>, retry_after_s: u64) -> Self {
        Self { retry_after_s: Some(retry_after_s), ..Self::new(StatusCode::TOO_MANY_REQUESTS, code, message) }
    }

    pub fn unavailable(message: impl Into<String>) -> Self {
        Self::new(StatusCode::SERVICE_UNAVAILABLE, "unavailable", message)
    }
}

impl From<splai_store::StoreError> for ApiError {
    fn from(e: splai_store::StoreError) -> Self {
        tracing::error!(error = %e, "read model");
        Self::unavailable(format!("the read model failed: {e}"))
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut response = (self.status, axum::Json(self.body)).into_response();
        if let Some(s) = self.retry_after_s {
            response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(s.max(1)));
        }
        response
    }
}

pub type ApiResult<T> = Result<T, ApiError>;
