//! A job's event stream (`GET /v1/jobs/{id}/stream`, server-sent events): parsing, and following
//! it across dropped connections with `Last-Event-ID`.

use std::time::Duration;

use futures::StreamExt;
use serde_json::Value;

use crate::{Client, ClientError};

/// Connection failures (refused, dropped) tolerated in a row before giving up.
const MAX_FAILURES: u32 = 20;

/// One server-sent event; `data` is its JSON (a string when it is not JSON).
#[derive(Debug, Clone, PartialEq)]
pub struct SseEvent {
    pub id: Option<String>,
    pub event: String,
    pub data: Value,
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

pub(crate) async fn follow(
    client: &Client,
    job_id: &str,
    mut last_event_id: Option<String>,
    mut on_event: impl FnMut(&SseEvent) -> bool,
) -> Result<(), ClientError> {
    let mut failures = 0;
    loop {
        let mut r = client.request(reqwest::Method::GET, &format!("/v1/jobs/{job_id}/stream"));
        if let Some(id) = &last_event_id {
            r = r.header("Last-Event-ID", id);
        }
        let response = match r.send().await {
            Ok(resp) if resp.status().is_success() => resp,
            Ok(resp) => {
                let status = resp.status().as_u16();
                return Err(ClientError::api(status, &resp.json().await.unwrap_or(Value::Null)));
            }
            Err(e) if failures < MAX_FAILURES => {
                failures += 1;
                tracing::debug!(error = %e, "stream connection failed; retrying");
                tokio::time::sleep(Duration::from_millis(250)).await;
                continue;
            }
            Err(e) => return Err(client.unreachable(e)),
        };
        let mut bytes = response.bytes_stream();
        let mut buf = String::new();
        while let Some(chunk) = bytes.next().await {
            let Ok(chunk) = chunk else { break };
            buf.push_str(&String::from_utf8_lossy(&chunk));
            while let Some(end) = buf.find("\n\n") {
                let block: String = buf.drain(..end + 2).collect();
                let Some(event) = parse_event(&block) else { continue };
                if event.id.is_some() {
                    last_event_id = event.id.clone();
                }
                let more = on_event(&event);
                if event.event == "end" || !more {
                    return Ok(());
                }
            }
        }
        failures += 1;
        if failures > MAX_FAILURES {
            return Err(ClientError::Stream(format!("of job {job_id} kept dropping")));
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::parse_event;

    #[test]
    fn a_block_gives_its_id_event_and_json_data() {
        let e = parse_event("id: 7\nevent: task.update\ndata: {\"state\":\"running\"}\n\n").unwrap();
        assert_eq!(e.id.as_deref(), Some("7"));
        assert_eq!(e.event, "task.update");
        assert_eq!(e.data["state"], "running");
    }

    #[test]
    fn multi_line_data_is_joined_and_non_json_kept_as_text() {
        let e = parse_event("data: first\ndata: second\n\n").unwrap();
        assert_eq!(e.event, "message");
        assert_eq!(e.data, "first\nsecond");
    }

    #[test]
    fn a_keep_alive_comment_is_no_event() {
        assert!(parse_event(": keep-alive\n\n").is_none());
    }
}
