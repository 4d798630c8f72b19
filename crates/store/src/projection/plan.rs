//! The projection's plan: what one record does to the read model, as SQL statements with their
//! arguments. Pure, so both backends run the very same statements (PostgreSQL through sqlx,
//! SQLite in one blocking call per batch) and the plan can be tested without a database.

use serde_json::{Value, json};
use splai_events::{Dag, Envelope, Event, SourcePosition, TaskState, TaskStateChanged, wire_name};

use super::request_job_id;

/// One argument of a statement. NULLs keep their type: PostgreSQL checks it.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Arg {
    Text(Option<String>),
    Int(Option<i64>),
    Real(f64),
    Bool(bool),
}

/// `query` with `args` bound in order (the sqlx path: PostgreSQL).
pub(crate) fn bind_all<'q>(
    mut query: sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments>,
    args: &'q [Arg],
) -> sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments> {
    for arg in args {
        query = match arg {
            Arg::Text(v) => query.bind(v.as_deref()),
            Arg::Int(v) => query.bind(*v),
            Arg::Real(v) => query.bind(*v),
            Arg::Bool(v) => query.bind(*v),
        };
    }
    query
}

impl From<&str> for Arg {
    fn from(v: &str) -> Self {
        Arg::Text(Some(v.to_string()))
    }
}
impl From<&String> for Arg {
    fn from(v: &String) -> Self {
        Arg::Text(Some(v.clone()))
    }
}
impl From<String> for Arg {
    fn from(v: String) -> Self {
        Arg::Text(Some(v))
    }
}
impl From<Option<String>> for Arg {
    fn from(v: Option<String>) -> Self {
        Arg::Text(v)
    }
}
impl From<i64> for Arg {
    fn from(v: i64) -> Self {
        Arg::Int(Some(v))
    }
}
impl From<Option<i64>> for Arg {
    fn from(v: Option<i64>) -> Self {
        Arg::Int(v)
    }
}
impl From<f64> for Arg {
    fn from(v: f64) -> Self {
        Arg::Real(v)
    }
}
impl From<bool> for Arg {
    fn from(v: bool) -> Self {
        Arg::Bool(v)
    }
}

/// A statement in PostgreSQL's `$n` notation, and what it does (for errors).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Stmt {
    pub what: &'static str,
    pub sql: &'static str,
    pub args: Vec<Arg>,
    /// The row this statement adds to a job's stream, if it does; the statement then returns
    /// the row's `seq` (nothing when the row was there already).
    pub stream: Option<StreamRow>,
}

impl Stmt {
    fn new(what: &'static str, sql: &'static str, args: Vec<Arg>) -> Self {
        Self { what, sql, args, stream: None }
    }
}

/// A job's stream row as planned, all but its `seq`.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct StreamRow {
    pub tenant: String,
    pub job_id: String,
    pub event: String,
    pub data: Value,
    pub ts_ms: i64,
}

fn stream(
    out: &mut Vec<Stmt>,
    tenant: &str,
    job: &str,
    pos: &SourcePosition,
    event: &str,
    data: Value,
    ts: i64,
) {
    let mut stmt = Stmt::new(
        "append to job stream",
        "INSERT INTO job_stream (tenant, job_id, seq, source, event, data, ts_ms)
         SELECT $6, $1, COALESCE(MAX(seq), 0) + 1, $2, $3, $4, $5 FROM job_stream WHERE tenant = $6 AND job_id = $1
         ON CONFLICT (source) DO NOTHING RETURNING seq",
        vec![
            Arg::from(job),
            Arg::from(format!("{}/{}/{}", pos.topic, pos.partition, pos.offset)),
            Arg::from(event),
            Arg::from(data.to_string()),
            Arg::from(ts),
            Arg::from(tenant),
        ],
    );
    stmt.stream = Some(StreamRow {
        tenant: tenant.to_string(),
        job_id: job.to_string(),
        event: event.to_string(),
        data,
        ts_ms: ts,
    });
    out.push(stmt);
}

/// A job's planned DAG: the job row's copy (and its one sink, the result task) and a row per task.
fn project_dag(
    out: &mut Vec<Stmt>,
    tenant: &str,
    job_id: &str,
    job_type: String,
    priority: String,
    dag: &Dag,
    ts: i64,
) {
    let result_task = result_task(dag);
    out.push(Stmt::new(
        "project job admitted",
        "INSERT INTO jobs (job_id, tenant, job_type, priority, state, data_classification,
           request_sha256, dag, tasks_total, result_task, submitted_at_ms, updated_at_ms)
         VALUES ($1, $2, $3, $4, 'queued', 'internal', '', $5, $6, $7, $8, $8)
         ON CONFLICT (tenant, job_id) DO UPDATE SET dag = excluded.dag, tasks_total = excluded.tasks_total,
           result_task = excluded.result_task, job_type = excluded.job_type,
           priority = excluded.priority, updated_at_ms = excluded.updated_at_ms",
        vec![
            Arg::from(job_id),
            Arg::from(tenant),
            Arg::from(job_type),
            Arg::from(priority),
            Arg::from(serde_json::to_string(dag).unwrap_or_default()),
            Arg::from(dag.tasks.len() as i64),
            Arg::from(result_task),
            Arg::from(ts),
        ],
    ));
    project_tasks(out, tenant, job_id, dag, ts);
}

/// The task whose output is the job's result: the DAG's only sink, if it has one.
fn result_task(dag: &Dag) -> Option<String> {
    dag.only_sink().map(|t| t.id.clone())
}

/// A row per task of `dag`; a task a sub-DAG gave new parents gets them.
fn project_tasks(out: &mut Vec<Stmt>, tenant: &str, job_id: &str, dag: &Dag, ts: i64) {
    for t in &dag.tasks {
        out.push(Stmt::new(
            "project tasks",
            "INSERT INTO tasks (tenant, job_id, task_id, kind, state, attempt, parents, updated_at_ms)
             VALUES ($6, $1, $2, $3, 'pending', 0, $4, $5)
             ON CONFLICT (tenant, job_id, task_id) DO UPDATE SET parents = excluded.parents",
            vec![
                Arg::from(job_id),
                Arg::from(&t.id),
                Arg::from(wire_name(&t.kind)),
                Arg::from(serde_json::to_string(&t.parents).unwrap_or_default()),
                Arg::from(ts),
                Arg::from(tenant),
            ],
        ));
    }
}

/// The scheduler ended an attempt (a timeout, a lost worker): the attempt row says so at once, in
/// the order of the job's own events, so a job that reads failed never shows its last attempt
/// still running. The worker's own report, on `task-events`, may come later and then carries the
/// more specific error; a report that came first is not overwritten. A `runnable` with a reason
/// is either the retry after a lost attempt or why a task not yet placed waits (then the attempt
/// it names has no row): it only ends a row that exists.
fn attempt_ended_by_scheduler(
    out: &mut Vec<Stmt>,
    tenant: &str,
    t: &TaskStateChanged,
    reason: &str,
    ts: i64,
) {
    let args = vec![
        Arg::from(&t.job_id),
        Arg::from(&t.task_id),
        Arg::from(i64::from(t.attempt)),
        Arg::from(ts),
        Arg::from(tenant),
        Arg::from(reason),
    ];
    let stmt = if t.state == TaskState::Runnable {
        Stmt::new(
            "project attempt lost",
            "UPDATE attempts SET state = 'failed', finished_at_ms = $4, error = $6
             WHERE tenant = $5 AND job_id = $1 AND task_id = $2 AND attempt = $3 AND state = 'running'",
            args,
        )
    } else {
        Stmt::new(
            "project attempt ended by the scheduler",
            "INSERT INTO attempts (tenant, job_id, task_id, attempt, worker_id, state, finished_at_ms, error)
             VALUES ($5, $1, $2, $3, COALESCE((SELECT worker_id FROM tasks
                 WHERE tenant = $5 AND job_id = $1 AND task_id = $2), ''), 'failed', $4, $6)
             ON CONFLICT (tenant, job_id, task_id, attempt) DO UPDATE SET state = 'failed',
               finished_at_ms = excluded.finished_at_ms, error = excluded.error
             WHERE attempts.state = 'running'",
            args,
        )
    };
    out.push(stmt);
}

/// The statements that apply the record at `pos`, appended to `out`; returns the job whose
/// stream grows, if any.
pub(crate) fn plan(out: &mut Vec<Stmt>, pos: &SourcePosition, env: &Envelope) -> Option<String> {
    let ts = env.ts_ms as i64;
    let tenant = env.tenant.as_str();
    match &env.event {
        Event::JobRequest(r) => {
            let job = request_job_id(env, r);
            let trace_id = env.traceparent.as_deref().and_then(|t| t.split('-').nth(1)).map(str::to_string);
            // Submitted through a gateway: the row exists already. Straight to Kafka: it starts here,
            // unless its (tenant, idempotency key) is taken: the scheduler answers that repeat
            // with a rejection naming the original, which makes this id's row.
            out.push(Stmt::new(
                "project job request",
                "INSERT INTO jobs (job_id, tenant, job_type, priority, state, data_classification, model,
                   idempotency_key, request_sha256, trace_id, submitted_at_ms, updated_at_ms)
                 VALUES ($1, $2, $3, $4, 'queued', $5, $6, $7, '', $8, $9, $9)
                 ON CONFLICT DO NOTHING",
                vec![
                    Arg::from(&job),
                    Arg::from(tenant),
                    Arg::from(wire_name(&r.job_type)),
                    Arg::from(wire_name(&r.priority)),
                    Arg::from(wire_name(&r.data_classification)),
                    Arg::from(r.model.clone()),
                    Arg::from(r.idempotency_key.clone()),
                    Arg::from(trace_id),
                    Arg::from(ts),
                ],
            ));
            None
        }
        Event::JobAdmitted(a) => {
            project_dag(out, tenant, &a.job_id, wire_name(&a.job_type), wire_name(&a.priority), &a.dag, ts);
            let data = json!({"state": "admitted", "tasks_total": a.dag.tasks.len()});
            stream(out, tenant, &a.job_id, pos, "job.status", data, ts);
            Some(a.job_id.clone())
        }
        Event::JobExpanded(x) => {
            out.push(Stmt::new(
                "project job expanded",
                "UPDATE jobs SET dag = $3, tasks_total = $4, result_task = $5, updated_at_ms = $6
                 WHERE tenant = $1 AND job_id = $2",
                vec![
                    Arg::from(tenant),
                    Arg::from(&x.job_id),
                    Arg::from(serde_json::to_string(&x.dag).unwrap_or_default()),
                    Arg::from(x.dag.tasks.len() as i64),
                    Arg::from(result_task(&x.dag)),
                    Arg::from(ts),
                ],
            ));
            project_tasks(out, tenant, &x.job_id, &x.dag, ts);
            let expansion =
                json!({"attempt": x.attempt, "added": x.added, "fallback_reason": x.fallback_reason});
            out.push(Stmt::new(
                "project task expansion",
                "UPDATE tasks SET expansion = $4 WHERE tenant = $1 AND job_id = $2 AND task_id = $3",
                vec![
                    Arg::from(tenant),
                    Arg::from(&x.job_id),
                    Arg::from(&x.task_id),
                    Arg::from(expansion.to_string()),
                ],
            ));
            let data = json!({"task_id": x.task_id, "attempt": x.attempt, "added": x.added,
                              "tasks_total": x.dag.tasks.len(), "fallback_reason": x.fallback_reason});
            stream(out, tenant, &x.job_id, pos, "job.expanded", data, ts);
            Some(x.job_id.clone())
        }
        Event::JobRejected(r) => {
            let reason = format!("{}: {}", r.code, r.reason);
            out.push(Stmt::new(
                "project job rejected",
                "INSERT INTO jobs (job_id, tenant, job_type, priority, state, data_classification,
                   request_sha256, reason, submitted_at_ms, finished_at_ms, updated_at_ms)
                 VALUES ($1, $2, 'unknown', 'unknown', 'rejected', 'internal', '', $3, $4, $4, $4)
                 ON CONFLICT (tenant, job_id) DO UPDATE SET state = 'rejected', reason = excluded.reason,
                   finished_at_ms = excluded.finished_at_ms, updated_at_ms = excluded.updated_at_ms",
                vec![Arg::from(&r.job_id), Arg::from(tenant), Arg::from(&reason), Arg::from(ts)],
            ));
            let data = json!({"state": splai_events::JobState::Rejected, "code": r.code, "reason": r.reason, "field": r.field});
            stream(out, tenant, &r.job_id, pos, "job.status", data, ts);
            Some(r.job_id.clone())
        }
        Event::JobStateChanged(s) => {
            let state = wire_name(&s.state);
            out.push(Stmt::new("project job state", "UPDATE jobs SET state = $2, reason = $3, failed_task = $4, updated_at_ms = $5,
                   started_at_ms = CASE WHEN $2 = 'running' THEN COALESCE(started_at_ms, $5) ELSE started_at_ms END,
                   finished_at_ms = CASE WHEN $6 THEN $5 ELSE finished_at_ms END
                 WHERE tenant = $7 AND job_id = $1", vec![Arg::from(&s.job_id), Arg::from(&state), Arg::from(s.reason.clone()), Arg::from(s.failed_task.clone()), Arg::from(ts), Arg::from(s.state.is_terminal()), Arg::from(tenant)]));
            let data = json!({"state": state, "reason": s.reason, "failed_task": s.failed_task});
            stream(out, tenant, &s.job_id, pos, "job.status", data, ts);
            Some(s.job_id.clone())
        }
        Event::TaskStateChanged(t) => {
            let state = wire_name(&t.state);
            // The job's counters move by what this change adds and what the task's previous
            // state had counted (read before the task's row changes): one row each, where a
            // recount would scan every task of the job on every change.
            out.push(Stmt::new(
                "project task counters",
                "UPDATE jobs SET
                   tasks_succeeded = tasks_succeeded + (CASE WHEN $2 = 'succeeded' THEN 1 ELSE 0 END)
                     - COALESCE((SELECT CASE WHEN state = 'succeeded' THEN 1 ELSE 0 END FROM tasks
                                 WHERE tenant = $3 AND job_id = $1 AND task_id = $4), 0),
                   tasks_failed = tasks_failed + (CASE WHEN $2 = 'dead_lettered' THEN 1 ELSE 0 END)
                     - COALESCE((SELECT CASE WHEN state = 'dead_lettered' THEN 1 ELSE 0 END FROM tasks
                                 WHERE tenant = $3 AND job_id = $1 AND task_id = $4), 0),
                   updated_at_ms = $5
                 WHERE tenant = $3 AND job_id = $1
                   AND EXISTS (SELECT 1 FROM tasks WHERE tenant = $3 AND job_id = $1 AND task_id = $4)",
                vec![
                    Arg::from(&t.job_id),
                    Arg::from(&state),
                    Arg::from(tenant),
                    Arg::from(&t.task_id),
                    Arg::from(ts),
                ],
            ));
            out.push(Stmt::new(
                "project task state",
                "UPDATE tasks SET state = $3, attempt = $4, worker_id = COALESCE($5, worker_id), reason = $6,
                   updated_at_ms = $7 WHERE tenant = $8 AND job_id = $1 AND task_id = $2",
                vec![
                    Arg::from(&t.job_id),
                    Arg::from(&t.task_id),
                    Arg::from(&state),
                    Arg::from(i64::from(t.attempt)),
                    Arg::from(t.worker_id.clone()),
                    Arg::from(t.reason.clone()),
                    Arg::from(ts),
                    Arg::from(tenant),
                ],
            ));
            if let (TaskState::Failed | TaskState::DeadLettered | TaskState::Runnable, Some(reason), 1..) =
                (t.state, &t.reason, t.attempt)
            {
                attempt_ended_by_scheduler(out, tenant, t, reason, ts);
            }
            let data = json!({"task_id": t.task_id, "state": state, "attempt": t.attempt,
                              "worker_id": t.worker_id, "reason": t.reason});
            stream(out, tenant, &t.job_id, pos, "task.update", data, ts);
            Some(t.job_id.clone())
        }
        Event::AttemptStarted(s) => {
            let a = &s.attempt;
            out.push(Stmt::new(
                "project attempt started",
                "INSERT INTO attempts (tenant, job_id, task_id, attempt, worker_id, state, started_at_ms)
                 VALUES ($6, $1, $2, $3, $4, 'running', $5)
                 ON CONFLICT (tenant, job_id, task_id, attempt) DO UPDATE SET started_at_ms = excluded.started_at_ms",
                vec![
                    Arg::from(&a.job_id),
                    Arg::from(&a.task_id),
                    Arg::from(i64::from(a.attempt)),
                    Arg::from(&s.worker_id),
                    Arg::from(ts),
                    Arg::from(tenant),
                ],
            ));
            None
        }
        Event::AttemptProgress(p) => {
            let a = &p.attempt;
            let data = json!({"task_id": a.task_id, "attempt": a.attempt, "tokens": p.tokens,
                              "delta": p.delta});
            stream(out, tenant, &a.job_id, pos, "task.tokens", data, ts);
            Some(a.job_id.clone())
        }
        Event::AttemptSucceeded(s) => {
            let a = &s.attempt;
            let usage = s.usage.unwrap_or_default();
            let tokens = |n: u32| s.usage.map(|_| i64::from(n));
            out.push(Stmt::new("project attempt succeeded", "INSERT INTO attempts (tenant, job_id, task_id, attempt, worker_id, state, finished_at_ms, duration_ms,
                   prompt_tokens, completion_tokens)
                 VALUES ($9, $1, $2, $3, $4, 'succeeded', $5, $6, $7, $8)
                 ON CONFLICT (tenant, job_id, task_id, attempt) DO UPDATE SET state = 'succeeded',
                   finished_at_ms = excluded.finished_at_ms, duration_ms = excluded.duration_ms,
                   prompt_tokens = excluded.prompt_tokens, completion_tokens = excluded.completion_tokens", vec![Arg::from(&a.job_id), Arg::from(&a.task_id), Arg::from(i64::from(a.attempt)), Arg::from(&s.worker_id), Arg::from(ts), Arg::from(s.duration_ms as i64), Arg::from(tokens(usage.prompt_tokens)), Arg::from(tokens(usage.completion_tokens)), Arg::from(tenant)]));
            let provenance =
                s.provenance.as_ref().map(|p| serde_json::to_string(p).expect("provenance serialises"));
            out.push(Stmt::new("project artifact", "INSERT INTO artifacts (path, tenant, job_id, task_id, attempt, sha256, size_bytes, created_at_ms, provenance)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) ON CONFLICT (path) DO NOTHING", vec![Arg::from(&s.artifact.path), Arg::from(tenant), Arg::from(&a.job_id), Arg::from(&a.task_id), Arg::from(i64::from(a.attempt)), Arg::from(&s.artifact.sha256), Arg::from(s.artifact.size_bytes as i64), Arg::from(ts), Arg::from(provenance)]));
            for input in &s.inputs {
                out.push(Stmt::new(
                    "project lineage",
                    "INSERT INTO artifact_inputs (artifact_path, input_path) VALUES ($1, $2)
                     ON CONFLICT (artifact_path, input_path) DO NOTHING",
                    vec![Arg::from(&s.artifact.path), Arg::from(&input.path)],
                ));
            }
            None
        }
        Event::AttemptFailed(f) => {
            let a = &f.attempt;
            out.push(Stmt::new("project attempt failed", "INSERT INTO attempts (tenant, job_id, task_id, attempt, worker_id, state, finished_at_ms, error, retryable, revoked)
                 VALUES ($8, $1, $2, $3, $4, 'failed', $5, $6, $7, $9)
                 ON CONFLICT (tenant, job_id, task_id, attempt) DO UPDATE SET state = 'failed',
                   finished_at_ms = excluded.finished_at_ms, error = excluded.error, retryable = excluded.retryable,
                   revoked = excluded.revoked", vec![Arg::from(&a.job_id), Arg::from(&a.task_id), Arg::from(i64::from(a.attempt)), Arg::from(&f.worker_id), Arg::from(ts), Arg::from(&f.error), Arg::from(f.retryable), Arg::from(tenant), Arg::from(f.revoked.as_ref().map(wire_name))]));
            None
        }
        Event::WorkerRegistered(w) => {
            out.push(Stmt::new(
                "project worker",
                "INSERT INTO workers (worker_id, cores, memory_mb, slots, models, tools, labels,
                   registered_at_ms, last_beat_ms, running, engines)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8, 0, $9)
                 ON CONFLICT (worker_id) DO UPDATE SET cores = excluded.cores, memory_mb = excluded.memory_mb,
                   slots = excluded.slots, models = excluded.models, tools = excluded.tools,
                   labels = excluded.labels, engines = excluded.engines, registered_at_ms = excluded.registered_at_ms,
                   last_beat_ms = excluded.last_beat_ms, left_at_ms = NULL",
                vec![
                    Arg::from(&w.worker_id),
                    Arg::from(i64::from(w.cores)),
                    Arg::from(w.memory_mb as i64),
                    Arg::from(i64::from(w.slots)),
                    Arg::from(serde_json::to_string(&w.models).unwrap_or_default()),
                    Arg::from(serde_json::to_string(&w.tools).unwrap_or_default()),
                    Arg::from(serde_json::to_string(&w.labels).unwrap_or_default()),
                    Arg::from(ts),
                    Arg::from(serde_json::to_string(&w.engines).unwrap_or_default()),
                ],
            ));
            None
        }
        Event::Heartbeat(h) => {
            out.push(Stmt::new(
                "project heartbeat",
                "UPDATE workers SET last_beat_ms = $2, cpu_pct = $3, memory_used_mb = $4, running = $5,
                   warm_models = $6 WHERE worker_id = $1 AND last_beat_ms <= $2",
                vec![
                    Arg::from(&h.worker_id),
                    Arg::from(ts),
                    Arg::from(h.cpu_pct),
                    Arg::from(h.memory_used_mb as i64),
                    Arg::from(h.running.len() as i64),
                    Arg::from(serde_json::to_string(&h.warm_models).unwrap_or_default()),
                ],
            ));
            None
        }
        Event::WorkerLeaving(l) => {
            out.push(Stmt::new(
                "project worker leaving",
                "UPDATE workers SET left_at_ms = $2 WHERE worker_id = $1",
                vec![Arg::from(&l.worker_id), Arg::from(ts)],
            ));
            None
        }
        Event::DeadLetter(d) => {
            let origin = d.source.as_ref().map(|s| format!("{}/{}/{}", s.topic, s.partition, s.offset));
            // Keyed by the record it is about: every consumer that meets an undecodable record
            // dead-letters it, and that is one dead letter.
            out.push(Stmt::new(
                "project dead letter",
                "INSERT INTO dead_letters (source, tenant, job_id, task_id, reason, payload, origin, ts_ms)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (source) DO NOTHING",
                vec![
                    Arg::from(
                        origin
                            .clone()
                            .unwrap_or_else(|| format!("{}/{}/{}", pos.topic, pos.partition, pos.offset)),
                    ),
                    Arg::from(tenant),
                    Arg::from(d.job_id.clone()),
                    Arg::from(d.task_id.clone()),
                    Arg::from(&d.reason),
                    Arg::from(&d.payload),
                    Arg::from(origin),
                    Arg::from(ts),
                ],
            ));
            None
        }
        Event::ScopeMetrics(m) => {
            out.push(latest_metrics(&m.scope, tenant, serde_json::to_string(m), ts));
            None
        }
        Event::ClusterMetrics(m) => {
            out.push(latest_metrics("cluster", tenant, serde_json::to_string(m), ts));
            None
        }
        _ => None,
    }
}

/// Keep the newest `metrics` record of `key` (an older one read late changes nothing). A NUL in
/// a model name (a producer may send one; PostgreSQL refuses it in text) is shown as U+FFFD: these
/// rows are figures to display, and the body keeps the name escaped.
fn latest_metrics(key: &str, tenant: &str, body: serde_json::Result<String>, ts: i64) -> Stmt {
    let key = key.replace('\0', "\u{fffd}");
    Stmt::new(
        "project metrics",
        "INSERT INTO scope_metrics (scope, tenant, body, ts_ms) VALUES ($1, $2, $3, $4)
         ON CONFLICT (scope) DO UPDATE SET tenant = excluded.tenant, body = excluded.body, ts_ms = excluded.ts_ms
         WHERE excluded.ts_ms >= scope_metrics.ts_ms",
        vec![Arg::from(key), Arg::from(tenant), Arg::from(body.unwrap_or_default()), Arg::from(ts)],
    )
}
