//! `GET /v1/jobs/{id}/stream`: the job's events over SSE. Every event carries `id:` (its per-job
//! sequence number), so a client that reconnects with `Last-Event-ID` gets exactly what it missed:
//! no gaps, no duplicates. A fresh connection starts with `job.snapshot`; the stream ends with
//! `end` after the job's terminal `job.status`.

use std::convert::Infallible;
use std::time::Duration;

use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use futures::Stream;
use serde::Deserialize;
use serde_json::json;
use splai_events::JobState;
use splai_store::StoreError;
use splai_store::read::{StreamEvent, TenantStore};

use crate::auth::{Caller, Role};
use crate::coalesce::Coalesced;
use crate::error::{ApiError, ApiResult};
use crate::grown::Grew;
use crate::routes::jobs::own_job;
use crate::state::AppState;

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct StreamQuery {
    /// Resume after this event id (same as the `Last-Event-ID` header, which wins).
    pub last_event_id: Option<i64>,
}

struct Cursor {
    st: AppState,
    /// This stream's own view of the projector's progress (a fresh clone would see every past
    /// change as new and never wait).
    follower: crate::grown::Follower,
    tenant: String,
    job_id: String,
    after: i64,
    pending: std::collections::VecDeque<SseEvent>,
    /// Read the stream from the store next (rather than wait for rows handed over).
    read: bool,
    done: bool,
    ended: bool,
}

impl Cursor {
    /// Queue `rows` (in `seq` order) up to the job's terminal status, which ends the stream.
    fn take(&mut self, rows: Vec<StreamEvent>) {
        for r in rows {
            self.after = r.seq;
            let terminal = r.event == "job.status"
                && r.data
                    .get("state")
                    .and_then(|s| s.as_str())
                    .and_then(|s| splai_events::from_wire::<JobState>(s).ok())
                    .is_some_and(JobState::is_terminal);
            self.pending
                .push_back(SseEvent::default().id(r.seq.to_string()).event(r.event).data(r.data.to_string()));
            if terminal {
                self.done = true;
                break;
            }
        }
    }
}

#[utoipa::path(get, path = "/v1/jobs/{id}/stream", operation_id = "stream_job", tag = "jobs", params(("id" = String, Path), StreamQuery),
    responses((status = 200, description = "text/event-stream: job.snapshot, job.status, job.expanded, task.update, task.tokens, end"),
              (status = 404, body = crate::error::ErrorBody)))]
pub async fn stream(
    State(st): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    Query(q): Query<StreamQuery>,
    headers: HeaderMap,
) -> ApiResult<Coalesced<Sse<impl Stream<Item = Result<SseEvent, Infallible>>>>> {
    caller.require(&[Role::Reader, Role::Submitter, Role::Operator])?;
    // Following before the first read: a batch committed after it wakes the stream.
    let follower = st.grown.follow(&id);
    let resume = match headers
        .get("last-event-id")
        .map(|v| v.to_str().ok().and_then(|s| s.trim().parse::<i64>().ok()))
    {
        Some(Some(n)) => Some(n),
        Some(None) => {
            return Err(ApiError::bad_request(
                "invalid_last_event_id",
                "`Last-Event-ID` must be an event id of this stream",
            ));
        }
        None => q.last_event_id,
    };
    let mut pending = std::collections::VecDeque::new();
    let (after, read) = match resume {
        Some(n) => {
            own_job(&st, &caller, &id).await?; // 404 before anything else
            (n, true)
        }
        None => {
            // The head first, then the state: the snapshot is then at least as new as the head,
            // and every event after the head follows it. (Read the other way round, a job that
            // ended in between showed as running in the snapshot while its terminal
            // `job.status` sat before the head and was never sent.)
            // (Of a job not the caller's tenant's the head is 0: the 404 below tells nothing.)
            let head = st.store.tenant(&caller.tenant).stream_head(&id).await?;
            let job = own_job(&st, &caller, &id).await?;
            let tasks = st.store.tenant(&caller.tenant).tasks(&id, None, None, i64::MAX).await?;
            // Rows after the head are handed over as they are projected (the follower was
            // subscribed before the head was read): no read until then, unless the job has
            // ended and its last rows may have been projected before the follower could see them.
            let read = job.state.is_terminal();
            let data = json!({"job": job, "tasks": tasks});
            pending.push_back(
                SseEvent::default().id(head.to_string()).event("job.snapshot").data(data.to_string()),
            );
            (head, read)
        }
    };
    let cursor = Cursor {
        st,
        follower,
        tenant: caller.tenant.clone(),
        job_id: id,
        after,
        pending,
        read,
        done: false,
        ended: false,
    };
    let events = futures::stream::unfold(cursor, |mut c| async move {
        loop {
            if let Some(e) = c.pending.pop_front() {
                return Some((Ok(e), c));
            }
            if c.ended {
                return None;
            }
            if c.done {
                c.ended = true;
                return Some((Ok(SseEvent::default().event("end").data("{}")), c));
            }
            if !c.read {
                // Rows the projector hands over follow on from the last one sent: no read.
                match c.follower.rows_after(&c.tenant, c.after, Duration::from_millis(500)).await {
                    Grew::Rows(rows) => c.take(rows),
                    Grew::ReadAgain => c.read = true,
                }
                continue;
            }
            match rows_after(&c.st.store.tenant(&c.tenant), &c.job_id, c.after).await {
                Ok(None) => c.done = true,
                Ok(Some(rows)) if !rows.is_empty() => {
                    // A full page may have more behind it; otherwise what comes next is
                    // announced (the follower was subscribed before the first read).
                    c.read = rows.len() as i64 >= PAGE;
                    c.take(rows);
                }
                // Nothing new: wait for this gateway's projector, or read again after a while
                // (another gateway may project).
                Ok(Some(_)) => c.read = false,
                Err(error) => {
                    tracing::warn!(%error, "reading a job stream failed");
                    tokio::time::sleep(Duration::from_millis(500)).await;
                }
            }
        }
    });
    // Events ready together go out as one chunk (`Coalesced`), not one each.
    Ok(Coalesced(Sse::new(events).keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))))
}

/// Stream rows read from the store at a time.
const PAGE: i64 = 200;

/// The job's stream rows after `after`; `None` when there are none and never will be (the job
/// ended and everything it said was read). Rows first, the state only when there are none: a
/// terminal state's rows were committed with it, so once the state reads terminal one more read
/// of the rows finds them all. A stream mostly wakes to rows, so that is one query per wake.
async fn rows_after(
    tenant: &TenantStore<'_>,
    job_id: &str,
    after: i64,
) -> Result<Option<Vec<StreamEvent>>, StoreError> {
    let rows = tenant.stream_after(job_id, after, PAGE).await?;
    if !rows.is_empty() || !tenant.job_state(job_id).await?.is_some_and(JobState::is_terminal) {
        return Ok(Some(rows));
    }
    let rows = tenant.stream_after(job_id, after, PAGE).await?;
    Ok((!rows.is_empty()).then_some(rows))
}
