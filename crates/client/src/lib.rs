//! The typed HTTP client of the SPLAI gateway, used by the CLI, the operator, the benchmarks and
//! the end-to-end tests: JSON requests with bearer auth and an optional tenant, the API's error
//! body as a typed [`ClientError::Api`], jobs with their [`JobState`], and a job's event stream
//! (SSE) followed with `Last-Event-ID` resume across dropped connections.

mod error;
mod sse;

use std::time::{Duration, Instant};

use serde::Deserialize;
use serde_json::Value;
pub use splai_events::JobState;

pub use error::ClientError;
pub use sse::{SseEvent, parse_event};

/// How often a waiting client reads a job again: short, so benchmarks timing jobs from the
/// outside add little.
const POLL: Duration = Duration::from_millis(20);

/// A client of one gateway.
#[derive(Debug, Clone)]
pub struct Client {
    http: reqwest::Client,
    base: String,
    token: Option<String>,
    tenant: Option<String>,
}

/// A job as `GET /v1/jobs/{id}` shows it: the fields clients act on, typed, and the whole
/// document for the rest.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Job {
    pub job_id: String,
    pub state: JobState,
    #[serde(default)]
    pub reason: Option<String>,
    #[serde(default)]
    pub trace_id: Option<String>,
    #[serde(default)]
    pub tasks_total: i64,
    #[serde(default)]
    pub tasks_succeeded: i64,
    #[serde(default)]
    pub tasks_failed: i64,
    #[serde(default)]
    pub result: Option<Value>,
    #[serde(skip)]
    pub document: Value,
}

/// The gateway's answer to an accepted submission (202, or 200 for a replayed idempotency key).
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Accepted {
    pub job_id: String,
    #[serde(default)]
    pub trace_id: Option<String>,
    pub state: JobState,
}

impl Client {
    /// A client of the gateway at `base` (e.g. `http://127.0.0.1:8080`), with `token` as bearer.
    pub fn new(base: &str, token: Option<String>) -> Result<Self, ClientError> {
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(5))
            .build()
            .map_err(|source| ClientError::Build { source })?;
        Ok(Self {
            http,
            base: base.trim_end_matches('/').to_string(),
            token: token.filter(|t| !t.is_empty()),
            tenant: None,
        })
    }

    /// The same client acting for `tenant` (`X-SPLAI-Tenant`: the tenant when the gateway runs
    /// without auth; with auth it may only repeat the token's own tenant).
    pub fn for_tenant(&self, tenant: Option<&str>) -> Self {
        Self { tenant: tenant.map(str::to_string), ..self.clone() }
    }

    pub fn base(&self) -> &str {
        &self.base
    }

    fn request(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        let mut r = self.http.request(method, format!("{}{path}", self.base));
        if let Some(t) = &self.token {
            r = r.bearer_auth(t);
        }
        if let Some(t) = &self.tenant {
            r = r.header("x-splai-tenant", t);
        }
        r
    }

    fn unreachable(&self, source: reqwest::Error) -> ClientError {
        ClientError::Unreachable { url: self.base.clone(), source }
    }

    /// Send `method path` with an optional JSON body and idempotency key: the status and JSON
    /// body (`null` when it is not JSON), whatever the status.
    pub async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<&Value>,
        idempotency_key: Option<&str>,
    ) -> Result<(u16, Value), ClientError> {
        let mut r = self.request(method, path);
        if let Some(b) = body {
            r = r.json(b);
        }
        if let Some(k) = idempotency_key {
            r = r.header("Idempotency-Key", k);
        }
        let response = r.send().await.map_err(|e| self.unreachable(e))?;
        let status = response.status().as_u16();
        Ok((status, response.json().await.unwrap_or(Value::Null)))
    }

    /// [`Client::call`], with a 4xx/5xx answer as [`ClientError::Api`].
    async fn ok(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<&Value>,
        idempotency_key: Option<&str>,
    ) -> Result<(u16, Value), ClientError> {
        let (status, body) = self.call(method, path, body, idempotency_key).await?;
        if status >= 400 {
            return Err(ClientError::api(status, &body));
        }
        Ok((status, body))
    }

    pub async fn get(&self, path: &str) -> Result<Value, ClientError> {
        Ok(self.ok(reqwest::Method::GET, path, None, None).await?.1)
    }

    pub async fn post(
        &self,
        path: &str,
        body: &Value,
        idempotency_key: Option<&str>,
    ) -> Result<(u16, Value), ClientError> {
        self.ok(reqwest::Method::POST, path, Some(body), idempotency_key).await
    }

    pub async fn delete(&self, path: &str) -> Result<(u16, Value), ClientError> {
        self.ok(reqwest::Method::DELETE, path, None, None).await
    }

    /// Submit a job request (`POST /v1/jobs`).
    pub async fn submit(
        &self,
        request: &Value,
        idempotency_key: Option<&str>,
    ) -> Result<Accepted, ClientError> {
        let (_, body) = self.post("/v1/jobs", request, idempotency_key).await?;
        decode("submission", body)
    }

    /// The job, or `None` when the gateway does not know it (for this caller's tenant).
    pub async fn job(&self, job_id: &str) -> Result<Option<Job>, ClientError> {
        match self.call(reqwest::Method::GET, &format!("/v1/jobs/{job_id}"), None, None).await? {
            (200, body) => {
                let mut job: Job = decode("job", body.clone())?;
                job.document = body;
                Ok(Some(job))
            }
            (404, _) => Ok(None),
            (status, body) => Err(ClientError::api(status, &body)),
        }
    }

    /// Request the job's cancellation (`DELETE /v1/jobs/{id}`).
    pub async fn cancel(&self, job_id: &str) -> Result<(), ClientError> {
        self.delete(&format!("/v1/jobs/{job_id}")).await.map(|_| ())
    }

    /// Poll until the job succeeds: its final document; [`ClientError::JobEnded`] when it ends
    /// otherwise.
    pub async fn wait_succeeded(&self, job_id: &str, within: Duration) -> Result<Job, ClientError> {
        let job = self.wait_terminal(&[job_id.to_string()], within).await?.remove(0);
        if job.state != JobState::Succeeded {
            let reason = job.reason.clone().unwrap_or_else(|| "(no reason given)".into());
            return Err(ClientError::JobEnded { job_id: job.job_id, state: job.state, reason });
        }
        Ok(job)
    }

    /// Poll (every 20 ms) until every job in `ids` is terminal; their final documents, in `ids`'
    /// order.
    pub async fn wait_terminal(&self, ids: &[String], within: Duration) -> Result<Vec<Job>, ClientError> {
        let deadline = Instant::now() + within;
        loop {
            let mut done = Vec::new();
            for id in ids {
                match self.job(id).await? {
                    Some(job) if job.state.is_terminal() => done.push(job),
                    _ => {}
                }
            }
            if done.len() == ids.len() {
                return Ok(done);
            }
            if Instant::now() > deadline {
                return Err(ClientError::Timeout {
                    what: format!("{} of {} jobs to finish", ids.len() - done.len(), ids.len()),
                    within,
                });
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// Whether the gateway is ready and at least `executors` executors are live (false while it
    /// cannot be reached).
    pub async fn is_ready(&self, executors: usize) -> bool {
        let ready = self.get("/readyz").await.is_ok_and(|r| r["ready"] == true);
        let live = self.get("/v1/workers").await.map_or(0, |w| {
            w["workers"].as_array().map_or(0, |ws| ws.iter().filter(|x| x["live"] == true).count())
        });
        ready && live >= executors
    }

    /// Wait until [`Client::is_ready`] with `executors` live executors.
    pub async fn wait_ready(&self, executors: usize, within: Duration) -> Result<(), ClientError> {
        let deadline = Instant::now() + within;
        while !self.is_ready(executors).await {
            if Instant::now() > deadline {
                return Err(ClientError::Timeout {
                    what: format!(
                        "the gateway at {} to be ready with {executors} live executor(s)",
                        self.base
                    ),
                    within,
                });
            }
            tokio::time::sleep(POLL).await;
        }
        Ok(())
    }

    /// Follow a job's event stream until its `end` or until `on_event` returns false. After a
    /// dropped connection it reconnects with `Last-Event-ID`, so no event is missed or repeated.
    pub async fn follow(
        &self,
        job_id: &str,
        last_event_id: Option<String>,
        on_event: impl FnMut(&SseEvent) -> bool,
    ) -> Result<(), ClientError> {
        sse::follow(self, job_id, last_event_id, on_event).await
    }

    /// Every event of a job's stream after `last_event_id` up to and including its `end`.
    pub async fn read_stream(
        &self,
        job_id: &str,
        last_event_id: Option<String>,
    ) -> Result<Vec<SseEvent>, ClientError> {
        let mut events = Vec::new();
        self.follow(job_id, last_event_id, |e| {
            events.push(e.clone());
            true
        })
        .await?;
        Ok(events)
    }
}

fn decode<T: serde::de::DeserializeOwned>(what: &'static str, body: Value) -> Result<T, ClientError> {
    serde_json::from_value(body).map_err(|source| ClientError::Decode { what, source })
}
