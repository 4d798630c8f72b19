//! The projection of the event log into the read model: job requests and outcomes, tasks,
//! attempts, artifacts with lineage, workers, dead letters, and each job's SSE stream.
//!
//! A batch is applied in one transaction together with the projector's offsets, and each record
//! only when it is new to the projector, so replays and several gateways projecting at once leave
//! the same rows. Stream rows are keyed by their source position as well, so a record lands in a
//! job's stream once whatever projects it.

use serde_json::{Value, json};
use splai_events::{Envelope, Event, JobRequest, SourcePosition, wire_name};
use sqlx::{Any, Transaction};

use crate::{ProjectorOffsets, Store, StoreError};

#[derive(Debug, Clone)]
pub struct Projection {
    store: Store,
    offsets: ProjectorOffsets,
}

type Tx<'a> = Transaction<'a, Any>;

fn q(what: &'static str) -> impl FnOnce(sqlx::Error) -> StoreError {
    StoreError::query(what)
}

fn terminal(state: &str) -> bool {
    matches!(state, "succeeded" | "failed" | "cancelled" | "rejected")
}

impl Projection {
    pub fn new(store: Store, projector: &str) -> Self {
        Self { store, offsets: ProjectorOffsets::new(projector) }
    }

    /// Apply `events` in one transaction.
    pub async fn apply(&self, events: &[(SourcePosition, Envelope)]) -> Result<Applied, StoreError> {
        let mut tx = self.store.pool().begin().await.map_err(q("begin projection"))?;
        let mut touched = Vec::new();
        let mut applied = Vec::new();
        for (i, (pos, env)) in events.iter().enumerate() {
            if !self.offsets.is_new(&mut tx, pos).await? {
                continue;
            }
            applied.push(i);
            if let Some(job) = apply_one(&mut tx, pos, env).await?
                && !touched.contains(&job)
            {
                touched.push(job);
            }
            self.offsets.advance(&mut tx, pos).await?;
        }
        tx.commit().await.map_err(q("commit projection"))?;
        Ok(Applied { touched, applied })
    }
}

/// What a batch changed.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Applied {
    /// Jobs whose stream grew.
    pub touched: Vec<String>,
    /// Indexes of the batch's events that were new (the rest had been applied before).
    pub applied: Vec<usize>,
}

/// The job a request names: its `job_id`, else the envelope id (as the scheduler does).
pub fn request_job_id(env: &Envelope, request: &JobRequest) -> String {
    request.job_id.clone().unwrap_or_else(|| env.id.clone())
}

async fn stream(
    tx: &mut Tx<'_>,
    job: &str,
    pos: &SourcePosition,
    event: &str,
    data: Value,
    ts: i64,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO job_stream (job_id, seq, source, event, data, ts_ms)
         SELECT $1, COALESCE(MAX(seq), 0) + 1, $2, $3, $4, $5 FROM job_stream WHERE job_id = $1
         ON CONFLICT (source) DO NOTHING",
    )
    .bind(job)
    .bind(format!("{}/{}/{}", pos.topic, pos.partition, pos.offset))
    .bind(event)
    .bind(data.to_string())
    .bind(ts)
    .execute(&mut **tx)
    .await
    .map_err(q("append to job stream"))?;
    Ok(())
}

async fn apply_one(
    tx: &mut Tx<'_>,
    pos: &SourcePosition,
    env: &Envelope,
) -> Result<Option<String>, StoreError> {
    let ts = env.ts_ms as i64;
    let tenant = env.tenant.as_str();
    match &env.event {
        Event::JobRequest(r) => {
            let job = request_job_id(env, r);
            let trace_id = env.traceparent.as_deref().and_then(|t| t.split('-').nth(1)).map(str::to_string);
            // Submitted through a gateway: the row exists already. Straight to Kafka: it starts here.
            sqlx::query(
                "INSERT INTO jobs (job_id, tenant, job_type, priority, state, data_classification, model,
                   idempotency_key, request_sha256, trace_id, submitted_at_ms, updated_at_ms)
                 VALUES ($1, $2, $3, $4, 'queued', $5, $6, $7, '', $8, $9, $9)
                 ON CONFLICT (job_id) DO NOTHING",
            )
            .bind(&job)
            .bind(tenant)
            .bind(wire_name(&r.job_type))
            .bind(wire_name(&r.priority))
            .bind(wire_name(&r.data_classification))
            .bind(r.model.clone())
            .bind(r.idempotency_key.clone())
            .bind(trace_id)
            .bind(ts)
            .execute(&mut **tx)
            .await
            .map_err(q("project job request"))?;
            Ok(None)
        }
        Event::JobAdmitted(a) => {
            let sinks: Vec<&str> = a
                .dag
                .tasks
                .iter()
                .filter(|t| !a.dag.tasks.iter().any(|c| c.parents.contains(&t.id)))
                .map(|t| t.id.as_str())
                .collect();
            let result_task = (sinks.len() == 1).then(|| sinks[0].to_string());
            sqlx::query(
                "INSERT INTO jobs (job_id, tenant, job_type, priority, state, data_classification,
                   request_sha256, dag, tasks_total, result_task, submitted_at_ms, updated_at_ms)
                 VALUES ($1, $2, $3, $4, 'queued', 'internal', '', $5, $6, $7, $8, $8)
                 ON CONFLICT (job_id) DO UPDATE SET dag = excluded.dag, tasks_total = excluded.tasks_total,
                   result_task = excluded.result_task, job_type = excluded.job_type,
                   priority = excluded.priority, updated_at_ms = excluded.updated_at_ms",
            )
            .bind(&a.job_id)
            .bind(tenant)
            .bind(wire_name(&a.job_type))
            .bind(wire_name(&a.priority))
            .bind(serde_json::to_string(&a.dag).unwrap_or_default())
            .bind(a.dag.tasks.len() as i64)
            .bind(result_task)
            .bind(ts)
            .execute(&mut **tx)
            .await
            .map_err(q("project job admitted"))?;
            for t in &a.dag.tasks {
                sqlx::query(
                    "INSERT INTO tasks (job_id, task_id, kind, state, attempt, parents, updated_at_ms)
                     VALUES ($1, $2, $3, 'pending', 0, $4, $5) ON CONFLICT (job_id, task_id) DO NOTHING",
                )
                .bind(&a.job_id)
                .bind(&t.id)
                .bind(wire_name(&t.kind))
                .bind(serde_json::to_string(&t.parents).unwrap_or_default())
                .bind(ts)
                .execute(&mut **tx)
                .await
                .map_err(q("project tasks"))?;
            }
            let data = json!({"state": "admitted", "tasks_total": a.dag.tasks.len()});
            stream(tx, &a.job_id, pos, "job.status", data, ts).await?;
            Ok(Some(a.job_id.clone()))
        }
        Event::JobRejected(r) => {
            let reason = format!("{}: {}", r.code, r.reason);
            sqlx::query(
                "INSERT INTO jobs (job_id, tenant, job_type, priority, state, data_classification,
                   request_sha256, reason, submitted_at_ms, finished_at_ms, updated_at_ms)
                 VALUES ($1, $2, 'unknown', 'normal', 'rejected', 'internal', '', $3, $4, $4, $4)
                 ON CONFLICT (job_id) DO UPDATE SET state = 'rejected', reason = excluded.reason,
                   finished_at_ms = excluded.finished_at_ms, updated_at_ms = excluded.updated_at_ms",
            )
            .bind(&r.job_id)
            .bind(tenant)
            .bind(&reason)
            .bind(ts)
            .execute(&mut **tx)
            .await
            .map_err(q("project job rejected"))?;
            let data = json!({"state": "rejected", "code": r.code, "reason": r.reason, "field": r.field});
            stream(tx, &r.job_id, pos, "job.status", data, ts).await?;
            Ok(Some(r.job_id.clone()))
        }
        Event::JobStateChanged(s) => {
            let state = wire_name(&s.state);
            sqlx::query(
                "UPDATE jobs SET state = $2, reason = $3, failed_task = $4, updated_at_ms = $5,
                   started_at_ms = CASE WHEN $2 = 'running' THEN COALESCE(started_at_ms, $5) ELSE started_at_ms END,
                   finished_at_ms = CASE WHEN $6 THEN $5 ELSE finished_at_ms END
                 WHERE job_id = $1",
            )
            .bind(&s.job_id)
            .bind(&state)
            .bind(s.reason.clone())
            .bind(s.failed_task.clone())
            .bind(ts)
            .bind(terminal(&state))
            .execute(&mut **tx)
            .await
            .map_err(q("project job state"))?;
            let data = json!({"state": state, "reason": s.reason, "failed_task": s.failed_task});
            stream(tx, &s.job_id, pos, "job.status", data, ts).await?;
            Ok(Some(s.job_id.clone()))
        }
        Event::TaskStateChanged(t) => {
            let state = wire_name(&t.state);
            sqlx::query(
                "UPDATE tasks SET state = $3, attempt = $4, worker_id = COALESCE($5, worker_id), reason = $6,
                   updated_at_ms = $7 WHERE job_id = $1 AND task_id = $2",
            )
            .bind(&t.job_id)
            .bind(&t.task_id)
            .bind(&state)
            .bind(i64::from(t.attempt))
            .bind(t.worker_id.clone())
            .bind(t.reason.clone())
            .bind(ts)
            .execute(&mut **tx)
            .await
            .map_err(q("project task state"))?;
            sqlx::query(
                "UPDATE jobs SET
                   tasks_succeeded = (SELECT COUNT(*) FROM tasks WHERE job_id = $1 AND state = 'succeeded'),
                   tasks_failed = (SELECT COUNT(*) FROM tasks WHERE job_id = $1 AND state = 'dead_lettered'),
                   updated_at_ms = $2
                 WHERE job_id = $1",
            )
            .bind(&t.job_id)
            .bind(ts)
            .execute(&mut **tx)
            .await
            .map_err(q("project task counters"))?;
            let data = json!({"task_id": t.task_id, "state": state, "attempt": t.attempt,
                              "worker_id": t.worker_id, "reason": t.reason});
            stream(tx, &t.job_id, pos, "task.update", data, ts).await?;
            Ok(Some(t.job_id.clone()))
        }
        Event::AttemptStarted(s) => {
            let a = &s.attempt;
            sqlx::query(
                "INSERT INTO attempts (job_id, task_id, attempt, worker_id, state, started_at_ms)
                 VALUES ($1, $2, $3, $4, 'running', $5)
                 ON CONFLICT (job_id, task_id, attempt) DO UPDATE SET started_at_ms = excluded.started_at_ms",
            )
            .bind(&a.job_id)
            .bind(&a.task_id)
            .bind(i64::from(a.attempt))
            .bind(&s.worker_id)
            .bind(ts)
            .execute(&mut **tx)
            .await
            .map_err(q("project attempt started"))?;
            Ok(None)
        }
        Event::AttemptProgress(p) => {
            let a = &p.attempt;
            let data = json!({"task_id": a.task_id, "attempt": a.attempt, "tokens": p.tokens,
                              "delta": p.delta});
            stream(tx, &a.job_id, pos, "task.tokens", data, ts).await?;
            Ok(Some(a.job_id.clone()))
        }
        Event::AttemptSucceeded(s) => {
            let a = &s.attempt;
            let usage = s.usage.unwrap_or_default();
            let tokens = |n: u32| s.usage.map(|_| i64::from(n));
            sqlx::query(
                "INSERT INTO attempts (job_id, task_id, attempt, worker_id, state, finished_at_ms, duration_ms,
                   prompt_tokens, completion_tokens)
                 VALUES ($1, $2, $3, $4, 'succeeded', $5, $6, $7, $8)
                 ON CONFLICT (job_id, task_id, attempt) DO UPDATE SET state = 'succeeded',
                   finished_at_ms = excluded.finished_at_ms, duration_ms = excluded.duration_ms,
                   prompt_tokens = excluded.prompt_tokens, completion_tokens = excluded.completion_tokens",
            )
            .bind(&a.job_id)
            .bind(&a.task_id)
            .bind(i64::from(a.attempt))
            .bind(&s.worker_id)
            .bind(ts)
            .bind(s.duration_ms as i64)
            .bind(tokens(usage.prompt_tokens))
            .bind(tokens(usage.completion_tokens))
            .execute(&mut **tx)
            .await
            .map_err(q("project attempt succeeded"))?;
            sqlx::query(
                "INSERT INTO artifacts (path, tenant, job_id, task_id, attempt, sha256, size_bytes, created_at_ms)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (path) DO NOTHING",
            )
            .bind(&s.artifact.path)
            .bind(tenant)
            .bind(&a.job_id)
            .bind(&a.task_id)
            .bind(i64::from(a.attempt))
            .bind(&s.artifact.sha256)
            .bind(s.artifact.size_bytes as i64)
            .bind(ts)
            .execute(&mut **tx)
            .await
            .map_err(q("project artifact"))?;
            for input in &s.inputs {
                sqlx::query(
                    "INSERT INTO artifact_inputs (artifact_path, input_path) VALUES ($1, $2)
                     ON CONFLICT (artifact_path, input_path) DO NOTHING",
                )
                .bind(&s.artifact.path)
                .bind(&input.path)
                .execute(&mut **tx)
                .await
                .map_err(q("project lineage"))?;
            }
            Ok(None)
        }
        Event::AttemptFailed(f) => {
            let a = &f.attempt;
            sqlx::query(
                "INSERT INTO attempts (job_id, task_id, attempt, worker_id, state, finished_at_ms, error, retryable)
                 VALUES ($1, $2, $3, $4, 'failed', $5, $6, $7)
                 ON CONFLICT (job_id, task_id, attempt) DO UPDATE SET state = 'failed',
                   finished_at_ms = excluded.finished_at_ms, error = excluded.error, retryable = excluded.retryable",
            )
            .bind(&a.job_id)
            .bind(&a.task_id)
            .bind(i64::from(a.attempt))
            .bind(&f.worker_id)
            .bind(ts)
            .bind(&f.error)
            .bind(f.retryable)
            .execute(&mut **tx)
            .await
            .map_err(q("project attempt failed"))?;
            Ok(None)
        }
        Event::WorkerRegistered(w) => {
            sqlx::query(
                "INSERT INTO workers (worker_id, cores, memory_mb, slots, models, tools, labels,
                   registered_at_ms, last_beat_ms, running)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8, 0)
                 ON CONFLICT (worker_id) DO UPDATE SET cores = excluded.cores, memory_mb = excluded.memory_mb,
                   slots = excluded.slots, models = excluded.models, tools = excluded.tools,
                   labels = excluded.labels, registered_at_ms = excluded.registered_at_ms,
                   last_beat_ms = excluded.last_beat_ms, left_at_ms = NULL",
            )
            .bind(&w.worker_id)
            .bind(i64::from(w.cores))
            .bind(w.memory_mb as i64)
            .bind(i64::from(w.slots))
            .bind(serde_json::to_string(&w.models).unwrap_or_default())
            .bind(serde_json::to_string(&w.tools).unwrap_or_default())
            .bind(serde_json::to_string(&w.labels).unwrap_or_default())
            .bind(ts)
            .execute(&mut **tx)
            .await
            .map_err(q("project worker"))?;
            Ok(None)
        }
        Event::Heartbeat(h) => {
            sqlx::query(
                "UPDATE workers SET last_beat_ms = $2, cpu_pct = $3, memory_used_mb = $4, running = $5,
                   warm_models = $6 WHERE worker_id = $1 AND last_beat_ms <= $2",
            )
            .bind(&h.worker_id)
            .bind(ts)
            .bind(h.cpu_pct)
            .bind(h.memory_used_mb as i64)
            .bind(h.running.len() as i64)
            .bind(serde_json::to_string(&h.warm_models).unwrap_or_default())
            .execute(&mut **tx)
            .await
            .map_err(q("project heartbeat"))?;
            Ok(None)
        }
        Event::WorkerLeaving(l) => {
            sqlx::query("UPDATE workers SET left_at_ms = $2 WHERE worker_id = $1")
                .bind(&l.worker_id)
                .bind(ts)
                .execute(&mut **tx)
                .await
                .map_err(q("project worker leaving"))?;
            Ok(None)
        }
        Event::DeadLetter(d) => {
            let origin = d.source.as_ref().map(|s| format!("{}/{}/{}", s.topic, s.partition, s.offset));
            sqlx::query(
                "INSERT INTO dead_letters (source, tenant, job_id, task_id, reason, payload, origin, ts_ms)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (source) DO NOTHING",
            )
            // Keyed by the record it is about: every consumer that meets an undecodable record
            // dead-letters it, and that is one dead letter.
            .bind(origin.clone().unwrap_or_else(|| format!("{}/{}/{}", pos.topic, pos.partition, pos.offset)))
            .bind(tenant)
            .bind(d.job_id.clone())
            .bind(d.task_id.clone())
            .bind(&d.reason)
            .bind(&d.payload)
            .bind(origin)
            .bind(ts)
            .execute(&mut **tx)
            .await
            .map_err(q("project dead letter"))?;
            Ok(None)
        }
        _ => Ok(None),
    }
}
