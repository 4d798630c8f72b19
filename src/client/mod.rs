//! The CLI's HTTP client of the gateway: JSON requests with the API's error body turned into a
//! clear message, and an SSE reader that resumes with `Last-Event-ID` when the connection drops.

pub mod commands;

use std::time::Duration;

use anyhow::{Context, bail};
use futures::StreamExt;
use serde_json::Value;
use splai_config::ClientSettings;

#[derive(Debug, Clone)]
pub struct Client {
    http: reqwest::Client,
    base: String,
    token: Option<String>,
}

/// One server-sent event.
#[derive(Debug, Clone, PartialEq)]
pub struct SseEvent {
    pub id: Option<String>,
    pub event: String,
    pub data: Value,
}

impl Client {
    pub fn new(settings: &ClientSettings) -> anyhow::Result<Self> {
        let http = reqwest::Client::builder().connect_timeout(Duration::from_secs(5)).build()?;
        Ok(Self {
            http,
            base: settings.url.trim_end_matches('/').to_string(),
            token: Some(settings.token.clone()).filter(|t| !t.is_empty()),
        })
    }

    pub fn with_base(base: &str) -> anyhow::Result<Self> {
        Self::new(&ClientSettings { url: base.to_string(), token: String::new() })
    }

    fn request(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        let r = self.http.request(method, format!("{}{path}", self.base));
        match &self.token {
            Some(t) => r.bearer_auth(t),
            None => r,
        }
    }

    async fn send(&self, r: reqwest::RequestBuilder) -> anyhow::Result<(u16, Value)> {
        let response =
            r.send().await.with_context(|| format!("cannot reach the gateway at {}", self.base))?;
        let status = response.status().as_u16();
        let body: Value = response.json().await.unwrap_or(Value::Null);
        if status >= 400 {
            let code = body.get("code").and_then(Value::as_str).unwrap_or("error");
            let message = body.get("message").and_then(Value::as_str).unwrap_or("(no message)");
            let field = body
                .get("field")
                .and_then(Value::as_str)
                .map(|f| format!(" (field `{f}`)"))
                .unwrap_or_default();
            bail!("the gateway answered {status} {code}: {message}{field}");
        }
        Ok((status, body))
    }

    pub async fn get(&self, path: &str) -> anyhow::Result<Value> {
        Ok(self.send(self.request(reqwest::Method::GET, path)).await?.1)
    }

    pub async fn post(
        &self,
        path: &str,
        body: &Value,
        idempotency_key: Option<&str>,
    ) -> anyhow::Result<(u16, Value)> {
        let mut r = self.request(reqwest::Method::POST, path).json(body);
        if let Some(k) = idempotency_key {
            r = r.header("Idempotency-Key", k);
        }
        self.send(r).await
    }

    pub async fn delete(&self, path: &str) -> anyhow::Result<(u16, Value)> {
        self.send(self.request(reqwest::Method::DELETE, path)).await
    }

    /// Follow a job's SSE stream until it ends or `on_event` returns false; reconnects after a
    /// dropped connection with `Last-Event-ID`, so no event is missed or repeated.
    pub async fn follow(
        &self,
        job_id: &str,
        mut last_event_id: Option<String>,
        mut on_event: impl FnMut(&SseEvent) -> bool,
    ) -> anyhow::Result<()> {
        let mut failures = 0;
        loop {
            let mut r = self.request(reqwest::Method::GET, &format!("/v1/jobs/{job_id}/stream"));
            if let Some(id) = &last_event_id {
                r = r.header("Last-Event-ID", id);
            }
            let response = match r.send().await {
                Ok(resp) if resp.status().is_success() => resp,
                Ok(resp) => {
                    let status = resp.status().as_u16();
                    let body: Value = resp.json().await.unwrap_or(Value::Null);
                    bail!(
                        "the gateway answered {status}: {}",
                        body.get("message").and_then(Value::as_str).unwrap_or("")
                    );
                }
                Err(e) if failures < 20 => {
                    failures += 1;
                    tracing::debug!(error = %e, "stream connection failed; retrying");
                    tokio::time::sleep(Duration::from_millis(500)).await;
                    continue;
                }
                Err(e) => return Err(e).context("following the job stream"),
            };
            let mut bytes = response.bytes_stream();
            let mut buf = String::new();
            while let Some(chunk) = bytes.next().await {
                let Ok(chunk) = chunk else { break };
                buf.push_str(&String::from_utf8_lossy(&chunk));
                while let Some(end) = buf.find("\n\n") {
                    let block: String = buf.drain(..end + 2).collect();
                    let Some(event) = parse_event(&block) else { continue };
                    if event.event == "end" {
                        return Ok(());
                    }
                    if event.id.is_some() {
                        last_event_id = event.id.clone();
                    }
                    if !on_event(&event) {
                        return Ok(());
                    }
                }
            }
            failures += 1;
            if failures > 20 {
                bail!("the job stream kept dropping");
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}

/// Parse one SSE block (`id:`, `event:`, `data:` lines); comments and keep-alives give `None`.
pub fn parse_event(block: &str) -> Option<SseEvent> {
    let (mut id, mut event, mut data) = (None, String::from("message"), String::new());
    for line in block.lines() {
        if let Some(v) = line.strip_prefix("id:") {
            id = Some(v.trim().to_string());
        } else if let Some(v) = line.strip_prefix("event:") {
            event = v.trim().to_string();
        } else if let Some(v) = line.strip_prefix("data:") {
            if !data.is_empty() {
                data.push('\n');
            }
            data.push_str(v.strip_prefix(' ').unwrap_or(v));
        }
    }
    if data.is_empty() && id.is_none() {
        return None;
    }
    Some(SseEvent { id, event, data: serde_json::from_str(&data).unwrap_or(Value::String(data)) })
}
