//! The operator's view of the SPLAI gateway: submit, read and cancel jobs over its REST API.

use async_trait::async_trait;
use serde_json::Value;

use crate::error::OperatorError;

/// A job as `GET /v1/jobs/{id}` shows it.
pub type JobSnapshot = splai_client::Job;

/// The gateway's answer to a submission.
#[derive(Debug, Clone, PartialEq)]
pub enum Submitted {
    Accepted {
        job_id: String,
        trace_id: Option<String>,
    },
    /// A 4xx: the request itself is wrong or not allowed; resubmitting will not help.
    Refused {
        status: u16,
        code: String,
        message: String,
    },
}

#[async_trait]
pub trait JobApi: Send + Sync {
    /// Submit `request` (idempotent by its `job_id`, also sent as `Idempotency-Key`).
    async fn submit(&self, tenant: Option<&str>, request: &Value) -> Result<Submitted, OperatorError>;
    /// The job, or `None` when the gateway does not know it.
    async fn get(&self, tenant: Option<&str>, job_id: &str) -> Result<Option<JobSnapshot>, OperatorError>;
    async fn cancel(&self, tenant: Option<&str>, job_id: &str) -> Result<(), OperatorError>;
}

/// The real gateway, through SPLAI's typed client.
#[derive(Debug, Clone)]
pub struct HttpGateway {
    client: splai_client::Client,
}

impl HttpGateway {
    pub fn new(base: &str, token: Option<String>) -> Result<Self, OperatorError> {
        let client = splai_client::Client::new(base, token)
            .map_err(|e| OperatorError::Gateway { url: base.to_string(), source: e.into() })?;
        Ok(Self { client })
    }

    fn fail(&self, e: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> OperatorError {
        OperatorError::Gateway { url: self.client.base().to_string(), source: e.into() }
    }

    /// `method path` for `tenant`: status and JSON body, whatever the status.
    async fn call(
        &self,
        tenant: Option<&str>,
        method: reqwest::Method,
        path: &str,
        body: Option<&Value>,
        key: Option<&str>,
    ) -> Result<(u16, Value), OperatorError> {
        self.client.for_tenant(tenant).call(method, path, body, key).await.map_err(|e| self.fail(e))
    }
}

#[async_trait]
impl JobApi for HttpGateway {
    async fn submit(&self, tenant: Option<&str>, request: &Value) -> Result<Submitted, OperatorError> {
        let key = request["job_id"].as_str().unwrap_or_default().to_string();
        let (status, body) =
            self.call(tenant, reqwest::Method::POST, "/v1/jobs", Some(request), Some(&key)).await?;
        match status {
            200..=299 => Ok(Submitted::Accepted {
                job_id: body["job_id"].as_str().unwrap_or_default().to_string(),
                trace_id: body["trace_id"].as_str().map(str::to_string),
            }),
            // 429 (rate, quota) and 409 job_exists with our own id are retried or read back.
            400..=499 if status != 429 && body["code"] != "job_exists" => Ok(Submitted::Refused {
                status,
                code: body["code"].as_str().unwrap_or("error").to_string(),
                message: body["message"].as_str().unwrap_or_default().to_string(),
            }),
            409 => Ok(Submitted::Accepted { job_id: key, trace_id: None }),
            _ => Err(self.fail(format!("POST /v1/jobs answered {status}: {body}"))),
        }
    }

    async fn get(&self, tenant: Option<&str>, job_id: &str) -> Result<Option<JobSnapshot>, OperatorError> {
        self.client.for_tenant(tenant).job(job_id).await.map_err(|e| self.fail(e))
    }

    async fn cancel(&self, tenant: Option<&str>, job_id: &str) -> Result<(), OperatorError> {
        let path = format!("/v1/jobs/{job_id}");
        match self.call(tenant, reqwest::Method::DELETE, &path, None, None).await? {
            (200..=299 | 404, _) => Ok(()),
            (status, _) => Err(self.fail(format!("DELETE {path} answered {status}"))),
        }
    }
}
