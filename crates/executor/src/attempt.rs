//! One attempt, from its assignment to its report: resolve the inputs, look the output up in the
//! tenant's cache, run the work, write the output, and say what happened. The report is appended
//! by the caller ([`Shared::report`]), so quick attempts that arrive together (a fan-out's maps)
//! are reported in one append — one log write, and one batch for the scheduler to step on,
//! instead of one per attempt.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use futures::FutureExt;
use futures::stream::{FuturesUnordered, StreamExt};
use splai_events::*;
use tokio::sync::{Semaphore, mpsc};
use tokio::task::JoinHandle;
use tracing::Instrument;

use crate::execute::{Context, execute};
use crate::inputs::resolve;
use crate::service::Shared;

/// How long an attempt may run before its `AttemptStarted` is written on its own.
const STARTED_GRACE: Duration = Duration::from_millis(20);
/// Aggregations and pure tools (`cache::pure_tool`) reading at most this much run on the
/// attempt's own task, not a blocking thread.
const INLINE_BYTES: u64 = 256 * 1024;

/// How a running attempt is told to stop: the flag its work checks between steps, and, when the
/// scheduler revoked it, why.
#[derive(Debug, Default)]
pub(crate) struct Stop {
    flag: Arc<AtomicBool>,
    reason: std::sync::OnceLock<RevokeReason>,
}

impl Stop {
    pub(crate) fn revoke(&self, reason: RevokeReason) {
        let _ = self.reason.set(reason);
        self.flag.store(true, Ordering::SeqCst);
    }

    fn revoked(&self) -> Option<RevokeReason> {
        self.reason.get().copied()
    }
}

/// An assignment this executor took, with what it needs to run.
pub(crate) struct Taken {
    pub tenant: String,
    pub traceparent: Option<String>,
    pub assign: Assign,
    pub stop: Arc<Stop>,
    /// The pool whose slot it runs in.
    pub slots: Arc<Semaphore>,
}

/// A cache key, the model's weights sha256, and the artifact a hit came from (`None`: a miss).
type CacheNote = (String, Option<String>, Option<String>);
/// What the work gave: its output, the artifacts it read, and its cache note (when cacheable).
type Done = (crate::execute::Output, Vec<ArtifactRef>, Option<CacheNote>);

/// What an attempt reports, in order, once it ended.
pub(crate) struct Report {
    pub tenant: String,
    pub traceparent: Option<String>,
    pub attempt: AttemptId,
    pub events: Vec<(u64, Event)>,
    /// The attempt's span, ended once the report is on the log.
    pub span: tracing::Span,
}

/// Whether an assignment is quick work: an aggregation or a pure tool (split, regex, template…),
/// which takes microseconds once its inputs are read. Its `AttemptStarted` goes with its outcome
/// unless the work turns out large enough for a blocking thread.
pub(crate) fn is_quick(a: &Assign) -> bool {
    a.kind == TaskKind::Aggregation
        || a.kind == TaskKind::ToolExecution
            && matches!(a.inputs.get("tool"), Some(ResolvedInput::Literal(t))
                        if t.as_str().is_some_and(crate::cache::pure_tool))
}

/// Run one attempt and report it on its own.
pub(crate) async fn run_alone(shared: Arc<Shared>, taken: Taken) {
    if let Some(report) = run_caught(&shared, taken).await {
        shared.report(vec![report]).await;
    }
}

/// Run quick attempts that arrived together side by side on one task; those that end together
/// (all of them, normally: each is microseconds of work once its inputs are read) are reported
/// in one append. One that waits (a slow read of its inputs from S3) holds no other back: what
/// ended is reported, and it follows when it ends.
pub(crate) async fn run_together(shared: Arc<Shared>, batch: Vec<Taken>) {
    let mut running: FuturesUnordered<_> = batch.into_iter().map(|t| run_caught(&shared, t)).collect();
    while let Some(first) = running.next().await {
        let mut ended: Vec<Report> = first.into_iter().collect();
        while let Some(Some(more)) = running.next().now_or_never() {
            ended.extend(more);
        }
        if !ended.is_empty() {
            shared.report(ended).await;
        }
    }
}

/// [`run`], with a panic (a defect) reported as the attempt's failure instead of ending the task
/// that runs it, and with it every attempt it shares the task with, unreported until their
/// deadlines.
async fn run_caught(shared: &Arc<Shared>, taken: Taken) -> Option<Report> {
    let (tenant, traceparent, id) =
        (taken.tenant.clone(), taken.traceparent.clone(), taken.assign.attempt.clone());
    caught(run(shared, taken), &shared.worker_id, tenant, traceparent, id).await
}

/// `work`'s report, or, if it panicked, the attempt's failure.
async fn caught(
    work: impl std::future::Future<Output = Option<Report>>,
    worker_id: &str,
    tenant: String,
    traceparent: Option<String>,
    id: AttemptId,
) -> Option<Report> {
    match std::panic::AssertUnwindSafe(work).catch_unwind().await {
        Ok(report) => report,
        Err(panic) => {
            let message = panic
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "no message".into());
            tracing::error!(job = %id.job_id, task = %id.task_id, attempt = id.attempt, %message,
                            "an attempt panicked; reporting it failed");
            Some(panicked(worker_id, tenant, traceparent, id, &message))
        }
    }
}

/// The report of an attempt whose run panicked: failed for good (a defect does the same again).
fn panicked(
    worker_id: &str,
    tenant: String,
    traceparent: Option<String>,
    id: AttemptId,
    message: &str,
) -> Report {
    let failed = AttemptFailed {
        attempt: id.clone(),
        worker_id: worker_id.to_string(),
        error: format!("the executor failed running this attempt (a defect): {message}"),
        retryable: false,
        revoked: None,
    };
    let started = AttemptStarted { attempt: id.clone(), worker_id: worker_id.to_string() };
    let now = now_ms();
    let events = vec![(now, Event::AttemptStarted(started)), (now, Event::AttemptFailed(failed))];
    Report { tenant, traceparent, attempt: id, events, span: tracing::Span::none() }
}

/// Bytes of an attempt's string inputs (literals, and parents' outputs once resolved): what a
/// quick attempt would read.
fn literal_bytes(values: &BTreeMap<String, serde_json::Value>) -> u64 {
    values.values().map(|v| v.as_str().map_or(0, str::len) as u64).sum()
}

/// The tenant's cached output for `key` and the artifact it came from, if one is filed and still
/// reads back intact (anything else is a miss: the attempt runs).
async fn cached_output(shared: &Shared, tenant: &str, key: &str) -> Option<(serde_json::Value, String)> {
    let source = match shared.artifacts.cache_entry(tenant, key).await {
        Ok(found) => found?,
        Err(e) => {
            tracing::warn!(error = %e, "cache lookup failed; running the attempt");
            return None;
        }
    };
    match shared.artifacts.get(&source).await {
        Ok(bytes) => serde_json::from_slice(&bytes).ok().map(|v| (v, source.path)),
        Err(e) => {
            tracing::warn!(error = %e, "cached output unreadable; running the attempt");
            None
        }
    }
}

/// Write the attempt's `AttemptStarted` once it has run `STARTED_GRACE` or reported progress,
/// then its progress in small batches. Whether it wrote the `AttemptStarted` (else the outcome's
/// append carries it).
fn forward_progress(
    shared: Arc<Shared>,
    tenant: String,
    traceparent: Option<String>,
    id: AttemptId,
    mut progress: mpsc::UnboundedReceiver<(u32, String)>,
) -> JoinHandle<bool> {
    tokio::spawn(async move {
        let first = match tokio::time::timeout(STARTED_GRACE, progress.recv()).await {
            Ok(None) => return false, // finished quietly: the outcome write carries it
            Ok(Some(p)) => Some(p),
            Err(_) => None,
        };
        let worker_id = shared.worker_id.clone();
        let started = AttemptStarted { attempt: id.clone(), worker_id: worker_id.clone() };
        shared.emit(&tenant, traceparent.clone(), Event::AttemptStarted(started)).await;
        let mut next = first;
        loop {
            let Some((mut tokens, mut delta)) = (match next.take() {
                Some(p) => Some(p),
                None => progress.recv().await,
            }) else {
                return true;
            };
            while let Ok((t, d)) = progress.try_recv() {
                tokens = t;
                delta.push_str(&d);
            }
            let p = AttemptProgress {
                attempt: id.clone(),
                worker_id: worker_id.clone(),
                tokens,
                delta: Some(delta),
            };
            shared.emit(&tenant, traceparent.clone(), Event::AttemptProgress(p)).await;
        }
    })
}

/// Run the attempt to its end (`None`: the executor is shutting down and its pool closed).
async fn run(shared: &Arc<Shared>, taken: Taken) -> Option<Report> {
    let Taken { tenant, traceparent, assign: a, stop, slots } = taken;
    let cancel = &stop.flag;
    let Ok(_permit) = slots.acquire_owned().await else { return None };
    let started = Instant::now();
    let started_ms = now_ms();
    let id = a.attempt.clone();
    let worker_id = shared.worker_id.clone();
    // The attempt's span, a child of the scheduler's decision; what it reports carries it on.
    let span = tracing::info_span!("splai.attempt", otel.name = "attempt", job_id = %id.job_id,
        task_id = %id.task_id, attempt = id.attempt, kind = ?a.kind, worker = %worker_id,
        model = a.requirements.model.as_deref().unwrap_or(""), outcome = tracing::field::Empty,
        prompt_tokens = tracing::field::Empty, completion_tokens = tracing::field::Empty,
        duration_ms = tracing::field::Empty);
    splai_telemetry::set_parent_from_traceparent(&span, traceparent.as_deref());
    let traceparent = span.in_scope(splai_telemetry::current_traceparent).or(traceparent);
    let budget = Duration::from_millis(a.deadline_ms.saturating_sub(now_ms()).max(1));
    // The log hears of the attempt in order: `AttemptStarted`, then token progress from the
    // work in small batches (`forward_progress`); the outcome comes last, in the report. Quick
    // work runs on this task and reports nothing until it ends, so its `AttemptStarted` goes
    // with its outcome in one append: short tasks cost the log one write, not two in a row.
    let (progress_tx, progress_rx) = mpsc::unbounded_channel::<(u32, String)>();
    let mut progress_rx = Some(progress_rx);
    let forward = |rx: &mut Option<_>| {
        rx.take()
            .map(|rx| forward_progress(shared.clone(), tenant.clone(), traceparent.clone(), id.clone(), rx))
    };
    let quick = is_quick(&a);
    let mut forwarder = if quick { None } else { forward(&mut progress_rx) };
    let outcome = tokio::time::timeout(budget, async {
        let inputs = resolve(&shared.artifacts, &a.inputs).await?;
        let kind = a.kind;
        let values = inputs.values.clone();
        let cached = if a.cache && shared.result_cache && crate::cache::cacheable(kind, &values) {
            let model = a.requirements.model.clone();
            // Hashing a model's weights the first time reads the file: off the async threads.
            let identity = if shared.models.identity_needs_reading(kind, model.as_deref()) {
                let models = shared.clone();
                tokio::task::spawn_blocking(move || models.models.identity(kind, model.as_deref()))
                    .await
                    .map_err(|e| crate::AttemptError::transient(format!("hashing the model failed: {e}")))??
            } else {
                shared.models.identity(kind, model.as_deref())?
            };
            let key = crate::cache::key(kind, &values, identity.as_ref().map(|(id, _)| id.as_str()));
            let hit = cached_output(shared, &tenant, &key).await;
            Some((key, identity.map(|(_, sha)| sha), hit))
        } else {
            None
        };
        if let Some((key, sha, Some((output, from)))) = cached {
            return Ok(((output, None), inputs.lineage, Some((key, sha, Some(from)))));
        }
        let cached = cached.map(|(key, sha, _)| (key, sha, None));
        // Quick work on small inputs takes microseconds: run it here rather than pay two thread
        // switches to a blocking thread and back. Anything else may take long or block.
        let read: u64 = inputs.lineage.iter().map(|r| r.size_bytes).sum::<u64>() + literal_bytes(&values);
        let (work_shared, work_cancel, model) =
            (shared.clone(), cancel.clone(), a.requirements.model.clone());
        let work = move || {
            let mut progress = |n: u32, delta: &str| {
                let _ = progress_tx.send((n, delta.to_string()));
            };
            let mut ctx = Context {
                shell: work_shared.shell.as_ref(),
                models: &work_shared.models,
                model: model.as_deref(),
                cancel: &work_cancel,
                progress: &mut progress,
            };
            execute(kind, &values, &mut ctx)
        };
        let output = if quick && read <= INLINE_BYTES {
            work()?
        } else {
            if forwarder.is_none() {
                forwarder = forward(&mut progress_rx);
            }
            tokio::task::spawn_blocking(work)
                .await
                .map_err(|e| crate::AttemptError::transient(format!("attempt thread failed: {e}")))??
        };
        Ok::<_, crate::AttemptError>((output, inputs.lineage, cached))
    })
    .await;
    // Revoked means a `Revoke` stopped it (and said why); a timeout sets the flag too, but reports
    // as a timeout.
    let revoked = stop.revoked();
    let result = match outcome {
        Err(_) => {
            cancel.store(true, Ordering::SeqCst); // stop the generation between tokens
            Err(crate::AttemptError::transient(format!("attempt timed out after {} ms", budget.as_millis())))
        }
        Ok(r) => r,
    };
    let started_written = match forwarder {
        Some(forwarder) => forwarder.await.unwrap_or(false),
        None => false,
    };
    let event = if let Some(reason) = revoked {
        Event::AttemptFailed(AttemptFailed {
            attempt: id.clone(),
            worker_id,
            error: format!("revoked ({})", splai_events::wire_name(&reason)),
            retryable: true,
            revoked: Some(reason),
        })
    } else {
        outcome_event(shared, &tenant, &id, worker_id, &span, started, a.expand, result).await
    };
    let outcome = match &event {
        Event::AttemptSucceeded(_) => "succeeded",
        Event::AttemptFailed(_) if revoked.is_some() => "revoked",
        _ => "failed",
    };
    let kind = splai_events::wire_name(&a.kind);
    let m = splai_telemetry::metrics::global();
    m.inc("splai_executor_attempts_total", &[("kind", &kind), ("outcome", outcome)], 1.0);
    m.observe(
        "splai_executor_attempt_seconds",
        &[("kind", &kind), ("outcome", outcome)],
        started.elapsed().as_secs_f64(),
    );
    match &event {
        Event::AttemptSucceeded(ok) => {
            span.record("outcome", "succeeded").record("duration_ms", ok.duration_ms);
            if let Some(u) = ok.usage {
                span.record("prompt_tokens", u.prompt_tokens)
                    .record("completion_tokens", u.completion_tokens);
            }
        }
        Event::AttemptFailed(_) => {
            span.record("outcome", outcome);
        }
        _ => {}
    }
    let mut events = Vec::with_capacity(3);
    if !started_written {
        let started = AttemptStarted { attempt: id.clone(), worker_id: shared.worker_id.clone() };
        events.push((started_ms, Event::AttemptStarted(started)));
        // Progress of work that ran here, had there been any, goes between the two.
        if let Some(mut rx) = progress_rx {
            let (mut tokens, mut delta) = (None, String::new());
            while let Ok((t, d)) = rx.try_recv() {
                tokens = Some(t);
                delta.push_str(&d);
            }
            if let Some(tokens) = tokens {
                let p = AttemptProgress {
                    attempt: id.clone(),
                    worker_id: shared.worker_id.clone(),
                    tokens,
                    delta: Some(delta),
                };
                events.push((now_ms(), Event::AttemptProgress(p)));
            }
        }
    }
    events.push((now_ms(), event));
    Some(Report { tenant, traceparent, attempt: id, events, span })
}

/// The outcome of an attempt that was not revoked: its output written and filed in the cache, or
/// why it failed.
#[allow(clippy::too_many_arguments)]
async fn outcome_event(
    shared: &Shared,
    tenant: &str,
    id: &AttemptId,
    worker_id: String,
    span: &tracing::Span,
    started: Instant,
    expand: bool,
    result: Result<Done, crate::AttemptError>,
) -> Event {
    let ((output, usage), lineage, cached) = match result {
        Ok(done) => done,
        Err(e) => {
            return Event::AttemptFailed(AttemptFailed {
                attempt: id.clone(),
                worker_id,
                error: e.message,
                retryable: e.retryable,
                revoked: None,
            });
        }
    };
    let subdag = expand.then(|| crate::subdag::proposal(&output));
    let bytes = serde_json::to_vec(&output).expect("JSON values serialise");
    let write = tracing::info_span!(parent: span, "splai.artifact.write", otel.name = "artifact.write",
                                    size_bytes = bytes.len());
    let artifact = match shared.artifacts.put_output(tenant, id, bytes).instrument(write).await {
        Ok(artifact) => artifact,
        Err(e) => {
            return Event::AttemptFailed(AttemptFailed {
                attempt: id.clone(),
                worker_id,
                error: e.to_string(),
                retryable: true,
                revoked: None,
            });
        }
    };
    let provenance = match cached {
        Some((key, model_sha256, cached_from)) => {
            if cached_from.is_none()
                && let Err(e) = shared.artifacts.put_cache_entry(tenant, &key, &artifact).await
            {
                tracing::warn!(error = %e, "could not file the output in the cache");
            }
            Some(Provenance {
                cache_key: key,
                model_sha256,
                executor_version: crate::cache::EXECUTOR_VERSION.to_string(),
                cached_from,
            })
        }
        None => None,
    };
    Event::AttemptSucceeded(AttemptSucceeded {
        attempt: id.clone(),
        worker_id,
        artifact,
        inputs: lineage,
        duration_ms: started.elapsed().as_millis() as u64,
        usage,
        provenance,
        subdag,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_panicked_attempt_reports_started_then_failed_for_good() {
        let id = AttemptId { job_id: "j".into(), task_id: "t".into(), attempt: 2 };
        let work = async {
            let chunks: Vec<u32> = Vec::new();
            let _ = chunks[std::hint::black_box(3)]; // a defect: index out of bounds
            None
        };
        let report = caught(work, "w-1", "acme".into(), None, id.clone()).await.expect("a report");
        assert_eq!((report.tenant.as_str(), &report.attempt), ("acme", &id));
        let kinds: Vec<&str> = report.events.iter().map(|(_, e)| e.kind()).collect();
        assert_eq!(kinds, ["attempt_started", "attempt_failed"]);
        match &report.events[1].1 {
            Event::AttemptFailed(f) => {
                assert!(!f.retryable && f.error.contains("index out of bounds"), "{f:?}");
                assert_eq!(f.worker_id, "w-1");
            }
            other => panic!("expected a failure, got {other:?}"),
        }
    }
}
