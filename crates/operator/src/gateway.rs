//! The operator's view of the SPLAI gateway: submit, read and cancel jobs over its REST API.

use async_trait::async_trait;
use serde::Deserialize;
use serde_json::Value;

use crate::error::OperatorError;

/// A job as `GET /v1/jobs/{id}` shows it (the fields the operator mirrors).
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct JobSnapshot {
    pub job_id: String,
    pub state: String,
    #[serde(default)]
    pub reason: Option<String>,
    #[serde(default)]
    pub trace_id: Option<String>,
    #[serde(default)]
    pub tasks_total: i64,
    #[serde(default)]
    pub tasks_succeeded: i64,
    #[serde(default)]
    pub result: Option<Value>,
}

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

/// The real gateway over HTTP.
#[derive(Debug, Clone)]
pub struct HttpGateway {
    http: reqwest::Client,
    base: String,
    token: Option<String>,
}

impl HttpGateway {
    pub fn new(base: &str, token: Option<String>) -> Self {
        Self { http: reqwest::Client::new(), base: base.trim_end_matches('/').to_string(), token }
    }

    fn request(&self, method: reqwest::Method, path: &str, tenant: Option<&str>) -> reqwest::RequestBuilder {
        let mut req = self.http.request(method, format!("{}{path}", self.base));
        if let Some(token) = &self.token {
            req = req.bearer_auth(token);
        }
        if let Some(tenant) = tenant {
            req = req.header("x-splai-tenant", tenant);
        }
        req
    }

    fn fail(&self, e: impl std::fmt::Display) -> OperatorError {
        OperatorError::Gateway { url: self.base.clone(), message: e.to_string() }
    }

    async fn body(&self, resp: reqwest::Response) -> Result<(u16, Value), OperatorError> {
        let status = resp.status().as_u16();
        let body = resp.json::<Value>().await.unwrap_or(Value::Null);
        Ok((status, body))
    }
}

#[async_trait]
impl JobApi for HttpGateway {
    async fn submit(&self, tenant: Option<&str>, request: &Value) -> Result<Submitted, OperatorError> {
        let key = request["job_id"].as_str().unwrap_or_default().to_string();
        let resp = self
            .request(reqwest::Method::POST, "/v1/jobs", tenant)
            .header("idempotency-key", key.as_str())
            .json(request)
            .send()
            .await
            .map_err(|e| self.fail(e))?;
        let (status, body) = self.body(resp).await?;
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
        let resp = self
            .request(reqwest::Method::GET, &format!("/v1/jobs/{job_id}"), tenant)
            .send()
            .await
            .map_err(|e| self.fail(e))?;
        let (status, body) = self.body(resp).await?;
        match status {
            200 => serde_json::from_value(body).map(Some).map_err(|e| self.fail(e)),
            404 => Ok(None),
            _ => Err(self.fail(format!("GET /v1/jobs/{job_id} answered {status}: {body}"))),
        }
    }

    async fn cancel(&self, tenant: Option<&str>, job_id: &str) -> Result<(), OperatorError> {
        let resp = self
            .request(reqwest::Method::DELETE, &format!("/v1/jobs/{job_id}"), tenant)
            .send()
            .await
            .map_err(|e| self.fail(e))?;
        match resp.status().as_u16() {
            200..=299 | 404 => Ok(()),
            status => Err(self.fail(format!("DELETE /v1/jobs/{job_id} answered {status}"))),
        }
    }
}
