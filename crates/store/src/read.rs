//! Queries of the read model. A tenant's jobs, tasks, attempts, artifacts, streams and dead
//! letters are only reachable through [`Store::tenant`], whose every query is scoped to that
//! tenant: another tenant's rows are simply not found, so ids do not leak. What is not a tenant's
//! (the cluster's workers, metrics over all tenants) is on [`Store`] itself. Rows decode by column
//! name into the contract's types.

use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;
use splai_events::{
    AttemptState, DataClassification, JobState, JobType, Priority, RevokeReason, TaskKind, TaskState,
};
use sqlx::Row;
use sqlx::any::AnyRow;

use crate::projection::Arg;
use crate::{Store, StoreError};

/// A submission's row, unless the tenant is at its limit of active jobs ($12; 0: none) or the
/// id or idempotency key is taken (no row then).
const INSERT_JOB_SQL: &str =
    "INSERT INTO jobs (job_id, tenant, job_type, priority, state, data_classification, model,
       idempotency_key, request_sha256, trace_id, tasks_total, submitted_at_ms, updated_at_ms)
     SELECT $1, $2, $3, $4, 'queued', $5, $6, $7, $8, $9, $10, $11, $11
     WHERE $12 = 0 OR (SELECT COUNT(*) FROM jobs WHERE tenant = $2 AND state IN ('queued', 'running')) < $12
     ON CONFLICT DO NOTHING";

fn q(what: &'static str) -> impl FnOnce(sqlx::Error) -> StoreError {
    StoreError::query(what)
}

/// `name`, read from `column`, as the enum it names on the wire.
fn named<T: DeserializeOwned>(column: &str, name: &str) -> Result<T, sqlx::Error> {
    splai_events::from_wire(name)
        .map_err(|e| sqlx::Error::ColumnDecode { index: column.to_string(), source: Box::new(e) })
}

/// A column holding an enum's wire name, as that enum.
fn wire<T: DeserializeOwned>(row: &AnyRow, column: &str) -> Result<T, sqlx::Error> {
    named(column, &row.try_get::<String, _>(column)?)
}

/// Where the read model keeps `unknown` (a job rejected before it was planned): `None`.
fn known<T: DeserializeOwned>(row: &AnyRow, column: &str) -> Result<Option<T>, sqlx::Error> {
    let name: String = row.try_get(column)?;
    if name == UNKNOWN {
        return Ok(None);
    }
    named(column, &name).map(Some)
}

const UNKNOWN: &str = "unknown";

fn or_unknown<T: Serialize, S: serde::Serializer>(value: &Option<T>, s: S) -> Result<S::Ok, S::Error> {
    match value {
        Some(v) => v.serialize(s),
        None => s.serialize_str(UNKNOWN),
    }
}

fn json_text(s: Option<String>) -> Value {
    s.and_then(|s| serde_json::from_str(&s).ok()).unwrap_or(Value::Null)
}

/// A job as the API shows it.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct JobView {
    pub job_id: String,
    pub tenant: String,
    /// `None` for a job rejected before it was planned (shown as `unknown`).
    #[serde(rename = "type", serialize_with = "or_unknown")]
    pub job_type: Option<JobType>,
    #[serde(serialize_with = "or_unknown")]
    pub priority: Option<Priority>,
    pub state: JobState,
    pub data_classification: DataClassification,
    pub model: Option<String>,
    pub idempotency_key: Option<String>,
    pub trace_id: Option<String>,
    pub reason: Option<String>,
    pub failed_task: Option<String>,
    pub tasks_total: i64,
    pub tasks_succeeded: i64,
    pub tasks_failed: i64,
    /// The task whose output is the job's result (the DAG's single sink).
    pub result_task: Option<String>,
    pub submitted_at_ms: i64,
    pub started_at_ms: Option<i64>,
    pub finished_at_ms: Option<i64>,
    pub updated_at_ms: i64,
    #[serde(skip)]
    pub request_sha256: String,
}

const JOB_COLUMNS: &str =
    "job_id, tenant, job_type, priority, state, data_classification, model, idempotency_key,
    trace_id, reason, failed_task, tasks_total, tasks_succeeded, tasks_failed, result_task, submitted_at_ms,
    started_at_ms, finished_at_ms, updated_at_ms, request_sha256";

fn job(row: &AnyRow) -> Result<JobView, sqlx::Error> {
    Ok(JobView {
        job_id: row.try_get("job_id")?,
        tenant: row.try_get("tenant")?,
        job_type: known(row, "job_type")?,
        priority: known(row, "priority")?,
        state: wire(row, "state")?,
        data_classification: wire(row, "data_classification")?,
        model: row.try_get("model")?,
        idempotency_key: row.try_get("idempotency_key")?,
        trace_id: row.try_get("trace_id")?,
        reason: row.try_get("reason")?,
        failed_task: row.try_get("failed_task")?,
        tasks_total: row.try_get("tasks_total")?,
        tasks_succeeded: row.try_get("tasks_succeeded")?,
        tasks_failed: row.try_get("tasks_failed")?,
        result_task: row.try_get("result_task")?,
        submitted_at_ms: row.try_get("submitted_at_ms")?,
        started_at_ms: row.try_get("started_at_ms")?,
        finished_at_ms: row.try_get("finished_at_ms")?,
        updated_at_ms: row.try_get("updated_at_ms")?,
        request_sha256: row.try_get("request_sha256")?,
    })
}

/// A job submitted through a gateway, recorded before its request is appended to the log.
#[derive(Debug, Clone)]
pub struct NewJob {
    pub job_id: String,
    pub tenant: String,
    pub job_type: JobType,
    pub priority: Priority,
    pub data_classification: DataClassification,
    pub model: Option<String>,
    pub idempotency_key: Option<String>,
    pub request_sha256: String,
    pub trace_id: String,
    pub tasks_total: i64,
    pub now_ms: i64,
    /// The tenant's limit of jobs queued or running (0: none), checked atomically with the insert.
    pub max_active_jobs: u32,
}

/// What recording a submission found.
#[derive(Debug, Clone, PartialEq)]
pub enum Submitted {
    New,
    /// The same tenant already submitted this idempotency key with the same request.
    Replay(Box<JobView>),
    /// The key was used for a different request.
    KeyConflict(Box<JobView>),
    /// The job id is taken.
    IdTaken,
    /// The tenant already has this many jobs queued or running, its limit.
    OverQuota(i64),
}

/// Filters of a job list; `after` is the cursor (the last job of the previous page).
#[derive(Debug, Clone, Default)]
pub struct JobFilter {
    pub state: Option<JobState>,
    pub job_type: Option<JobType>,
    pub after: Option<(i64, String)>,
    pub limit: i64,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct TaskView {
    pub task_id: String,
    pub kind: TaskKind,
    pub state: TaskState,
    pub attempt: i64,
    pub worker_id: Option<String>,
    pub parents: Value,
    pub reason: Option<String>,
    /// The output of the task's current attempt, once written.
    pub artifact: Option<String>,
    pub updated_at_ms: i64,
    /// What the task appended to its job at run time: `{attempt, added, fallback_reason}`.
    pub expansion: Option<Value>,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct AttemptView {
    pub task_id: String,
    pub attempt: i64,
    pub worker_id: String,
    pub state: AttemptState,
    pub started_at_ms: Option<i64>,
    pub finished_at_ms: Option<i64>,
    pub duration_ms: Option<i64>,
    pub error: Option<String>,
    /// Why the scheduler revoked it, when it did.
    pub revoked: Option<RevokeReason>,
    pub prompt_tokens: Option<i64>,
    pub completion_tokens: Option<i64>,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct ArtifactView {
    pub path: String,
    pub task_id: String,
    pub attempt: i64,
    pub sha256: String,
    pub size_bytes: i64,
    pub created_at_ms: i64,
    /// Lineage: the artifacts this one was computed from.
    pub inputs: Vec<String>,
    /// Cache key, model weights sha256, executor version and `cached_from` (a reuse), for
    /// outputs determined by their inputs.
    pub provenance: Option<serde_json::Value>,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct StreamEvent {
    pub seq: i64,
    pub event: String,
    pub data: Value,
    pub ts_ms: i64,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct WorkerView {
    pub worker_id: String,
    pub cores: i64,
    pub memory_mb: i64,
    pub slots: i64,
    pub models: Value,
    pub tools: Value,
    pub labels: Value,
    pub registered_at_ms: i64,
    pub last_beat_ms: i64,
    pub cpu_pct: Option<f64>,
    pub memory_used_mb: Option<i64>,
    pub running: i64,
    pub warm_models: Value,
    /// Language models it decodes in an inference engine → sequences at once.
    pub engines: Value,
    pub left_at_ms: Option<i64>,
    /// Beat within the ttl and not left.
    pub live: bool,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct DeadLetterView {
    pub id: String,
    pub tenant: String,
    pub job_id: Option<String>,
    pub task_id: Option<String>,
    pub reason: String,
    pub payload: String,
    pub origin: Option<String>,
    pub ts_ms: i64,
    pub requeued_at_ms: Option<i64>,
}

impl Store {
    /// Record a gateway submission (idempotency by `(tenant, key)`, same request ⇒ replay).
    pub async fn record_submission(&self, job: &NewJob) -> Result<Submitted, StoreError> {
        if let Some(view) = self.job_by_key(&job.tenant, job.idempotency_key.as_deref()).await? {
            return Ok(if view.request_sha256 == job.request_sha256 {
                Submitted::Replay(Box::new(view))
            } else {
                Submitted::KeyConflict(Box::new(view))
            });
        }
        // Count and insert in one statement, under a per-tenant lock on PostgreSQL (SQLite runs
        // writes one at a time): concurrent submits cannot both take the last place.
        let args = [
            Arg::from(&job.job_id),
            Arg::from(&job.tenant),
            Arg::from(splai_events::wire_name(&job.job_type)),
            Arg::from(splai_events::wire_name(&job.priority)),
            Arg::from(splai_events::wire_name(&job.data_classification)),
            Arg::from(job.model.clone()),
            Arg::from(job.idempotency_key.clone()),
            Arg::from(&job.request_sha256),
            Arg::from(&job.trace_id),
            Arg::from(job.tasks_total),
            Arg::from(job.now_ms),
            Arg::from(i64::from(job.max_active_jobs)),
        ];
        let turn = self.write_turn().await;
        let inserted = match self.sqlite() {
            // One statement on the projection's connection, on this thread: with the write turn
            // held nothing else uses it, and it takes tens of microseconds.
            Some(db) => db.execute("record submission", INSERT_JOB_SQL, &args)? as u64,
            None => self.insert_job_tx(job, &args).await?,
        };
        drop(turn);
        if inserted == 1 {
            return Ok(Submitted::New);
        }
        // Lost a race on the key, the id is taken, or the tenant is at its limit.
        if let Some(v) = self.job_by_key(&job.tenant, job.idempotency_key.as_deref()).await? {
            return Ok(if v.request_sha256 == job.request_sha256 {
                Submitted::Replay(Box::new(v))
            } else {
                Submitted::KeyConflict(Box::new(v))
            });
        }
        let taken: Option<i64> = sqlx::query_scalar("SELECT 1 FROM jobs WHERE tenant = $1 AND job_id = $2")
            .bind(&job.tenant)
            .bind(&job.job_id)
            .fetch_optional(self.pool())
            .await
            .map_err(q("find job id"))?;
        if taken.is_some() {
            return Ok(Submitted::IdTaken);
        }
        Ok(Submitted::OverQuota(self.tenant(&job.tenant).active_jobs().await?))
    }

    /// The submission's insert in a transaction through sqlx (PostgreSQL, under a per-tenant
    /// advisory lock when the tenant has a limit): the rows inserted.
    async fn insert_job_tx(&self, job: &NewJob, args: &[Arg]) -> Result<u64, StoreError> {
        let mut tx = self.pool().begin().await.map_err(q("begin submission"))?;
        if self.backend() == crate::Backend::Postgres && job.max_active_jobs > 0 {
            sqlx::query("SELECT pg_advisory_xact_lock(hashtext('splai-active-jobs:' || $1))::text")
                .bind(&job.tenant)
                .execute(&mut *tx)
                .await
                .map_err(q("lock the tenant's submissions"))?;
        }
        let inserted = crate::projection::bind_all(sqlx::query(INSERT_JOB_SQL), args)
            .execute(&mut *tx)
            .await
            .map_err(q("record submission"))?;
        tx.commit().await.map_err(q("commit submission"))?;
        Ok(inserted.rows_affected())
    }

    async fn job_by_key(&self, tenant: &str, key: Option<&str>) -> Result<Option<JobView>, StoreError> {
        let Some(key) = key else { return Ok(None) };
        let sql = format!("SELECT {JOB_COLUMNS} FROM jobs WHERE tenant = $1 AND idempotency_key = $2");
        let row = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(tenant)
            .bind(key)
            .fetch_optional(self.pool())
            .await
            .map_err(q("find idempotency key"))?;
        row.as_ref().map(job_of).transpose()
    }

    /// Runnable tasks per tenant and jobs per state, for metrics.
    pub async fn queue_depths(&self) -> Result<(Vec<(String, i64)>, Vec<(String, i64)>), StoreError> {
        let runnable = sqlx::query(
            "SELECT tenant, COUNT(*) FROM tasks WHERE state = 'runnable' GROUP BY tenant ORDER BY tenant",
        )
        .fetch_all(self.pool())
        .await
        .map_err(q("runnable per tenant"))?;
        let jobs = sqlx::query("SELECT state, COUNT(*) FROM jobs GROUP BY state ORDER BY state")
            .fetch_all(self.pool())
            .await
            .map_err(q("jobs per state"))?;
        let pairs = |rows: Vec<AnyRow>| -> Result<Vec<(String, i64)>, StoreError> {
            rows.iter()
                .map(|r| Ok((r.try_get(0)?, r.try_get(1)?)))
                .collect::<Result<_, sqlx::Error>>()
                .map_err(q("depths"))
        };
        Ok((pairs(runnable)?, pairs(jobs)?))
    }

    /// The newest `metrics` records, by key (`cluster`, then each scope), with the tenant each
    /// belongs to; `tenant`: only its scopes (and `cluster`).
    pub async fn latest_metrics(
        &self,
        tenant: Option<&str>,
    ) -> Result<Vec<(String, String, Value)>, StoreError> {
        let query = match tenant {
            Some(tenant) => sqlx::query(
                "SELECT scope, tenant, body FROM scope_metrics WHERE tenant = $1 OR scope = 'cluster'
                 ORDER BY scope",
            )
            .bind(tenant),
            None => sqlx::query("SELECT scope, tenant, body FROM scope_metrics ORDER BY scope"),
        };
        let rows = query.fetch_all(self.pool()).await.map_err(q("latest metrics"))?;
        rows.iter()
            .map(|r| {
                let body: String = r.try_get(2)?;
                Ok((r.try_get(0)?, r.try_get(1)?, serde_json::from_str(&body).unwrap_or(Value::Null)))
            })
            .collect::<Result<_, sqlx::Error>>()
            .map_err(q("latest metrics"))
    }

    /// Workers, live ones first; `live` means a beat within `ttl_ms` of `now_ms` and not left.
    pub async fn workers(&self, now_ms: i64, ttl_ms: i64) -> Result<Vec<WorkerView>, StoreError> {
        let rows = sqlx::query(
            "SELECT worker_id, cores, memory_mb, slots, models, tools, labels, registered_at_ms, last_beat_ms,
               cpu_pct, memory_used_mb, running, warm_models, left_at_ms, engines
             FROM workers ORDER BY last_beat_ms DESC, worker_id",
        )
        .fetch_all(self.pool())
        .await
        .map_err(q("list workers"))?;
        let mut out = rows
            .iter()
            .map(|r| {
                let last_beat_ms: i64 = r.try_get(8)?;
                let left_at_ms: Option<i64> = r.try_get(13)?;
                Ok(WorkerView {
                    worker_id: r.try_get(0)?,
                    cores: r.try_get(1)?,
                    memory_mb: r.try_get(2)?,
                    slots: r.try_get(3)?,
                    models: json_text(r.try_get(4)?),
                    tools: json_text(r.try_get(5)?),
                    labels: json_text(r.try_get(6)?),
                    registered_at_ms: r.try_get(7)?,
                    last_beat_ms,
                    cpu_pct: r.try_get(9)?,
                    memory_used_mb: r.try_get(10)?,
                    running: r.try_get(11)?,
                    warm_models: json_text(r.try_get(12)?),
                    engines: json_text(r.try_get(14)?),
                    left_at_ms,
                    live: left_at_ms.is_none() && now_ms - last_beat_ms <= ttl_ms,
                })
            })
            .collect::<Result<Vec<_>, sqlx::Error>>()
            .map_err(q("read workers"))?;
        out.sort_by_key(|w| !w.live);
        Ok(out)
    }

    /// Whether the read model answers.
    pub async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query_scalar::<_, i64>("SELECT CAST(1 AS BIGINT)")
            .fetch_one(self.pool())
            .await
            .map_err(q("ping"))?;
        Ok(())
    }

    /// The read model as `tenant` sees it: every query of a [`TenantStore`] is scoped to it.
    pub fn tenant<'a>(&'a self, tenant: &'a str) -> TenantStore<'a> {
        TenantStore { store: self, tenant }
    }
}

/// Queries of one tenant's jobs, tasks, attempts, artifacts, streams and dead letters: another
/// tenant's rows are never found, whatever id is asked for.
#[derive(Debug, Clone, Copy)]
pub struct TenantStore<'a> {
    store: &'a Store,
    tenant: &'a str,
}

impl TenantStore<'_> {
    /// Forget a submission whose request could not be appended to the log.
    pub async fn forget_submission(&self, job_id: &str) -> Result<(), StoreError> {
        let tenant = self.tenant;
        sqlx::query("DELETE FROM jobs WHERE tenant = $1 AND job_id = $2 AND dag IS NULL")
            .bind(tenant)
            .bind(job_id)
            .execute(self.store.pool())
            .await
            .map_err(q("forget submission"))?;
        Ok(())
    }

    pub async fn job(&self, job_id: &str) -> Result<Option<JobView>, StoreError> {
        let tenant = self.tenant;
        let sql = format!("SELECT {JOB_COLUMNS} FROM jobs WHERE tenant = $1 AND job_id = $2");
        let row = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(tenant)
            .bind(job_id)
            .fetch_optional(self.store.pool())
            .await
            .map_err(q("get job"))?;
        row.as_ref().map(job_of).transpose()
    }

    /// Type and submit time of a job, for metrics.
    pub async fn job_brief(&self, job_id: &str) -> Result<Option<(JobType, i64)>, StoreError> {
        let tenant = self.tenant;
        let row = sqlx::query("SELECT job_type, submitted_at_ms FROM jobs WHERE tenant = $1 AND job_id = $2")
            .bind(tenant)
            .bind(job_id)
            .fetch_optional(self.store.pool())
            .await
            .map_err(q("job brief"))?;
        row.map(|r| Ok((wire(&r, "job_type")?, r.try_get("submitted_at_ms")?)))
            .transpose()
            .map_err(q("job brief"))
    }

    /// Kind of a task and when an attempt of it started, for metrics.
    pub async fn attempt_brief(
        &self,
        job_id: &str,
        task_id: &str,
        attempt: i64,
    ) -> Result<Option<(TaskKind, Option<i64>)>, StoreError> {
        let tenant = self.tenant;
        let row = sqlx::query(
            "SELECT t.kind, a.started_at_ms FROM tasks t LEFT JOIN attempts a
               ON a.tenant = t.tenant AND a.job_id = t.job_id AND a.task_id = t.task_id AND a.attempt = $3
             WHERE t.tenant = $4 AND t.job_id = $1 AND t.task_id = $2",
        )
        .bind(job_id)
        .bind(task_id)
        .bind(attempt)
        .bind(tenant)
        .fetch_optional(self.store.pool())
        .await
        .map_err(q("attempt brief"))?;
        row.map(|r| Ok((wire(&r, "kind")?, r.try_get("started_at_ms")?)))
            .transpose()
            .map_err(q("attempt brief"))
    }

    /// The state of a tenant's job.
    pub async fn job_state(&self, job_id: &str) -> Result<Option<JobState>, StoreError> {
        let tenant = self.tenant;
        let row = sqlx::query("SELECT state FROM jobs WHERE tenant = $1 AND job_id = $2")
            .bind(tenant)
            .bind(job_id)
            .fetch_optional(self.store.pool())
            .await
            .map_err(q("job state"))?;
        row.map(|r| wire(&r, "state")).transpose().map_err(q("job state"))
    }

    /// Newest first; `after` continues below the given (submitted_at_ms, job_id).
    pub async fn jobs(&self, f: &JobFilter) -> Result<Vec<JobView>, StoreError> {
        let tenant = self.tenant;
        let (after_ts, after_id) = f.after.clone().unwrap_or((i64::MAX, String::new()));
        let sql = format!(
            "SELECT {JOB_COLUMNS} FROM jobs WHERE tenant = $1
               AND ($2 IS NULL OR state = $2) AND ($3 IS NULL OR job_type = $3)
               AND (submitted_at_ms < $4 OR (submitted_at_ms = $4 AND job_id < $5) OR $6)
             ORDER BY submitted_at_ms DESC, job_id DESC LIMIT $7"
        );
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(tenant)
            .bind(f.state.as_ref().map(splai_events::wire_name))
            .bind(f.job_type.as_ref().map(splai_events::wire_name))
            .bind(after_ts)
            .bind(after_id)
            .bind(f.after.is_none())
            .bind(f.limit)
            .fetch_all(self.store.pool())
            .await
            .map_err(q("list jobs"))?;
        rows.iter().map(job_of).collect()
    }

    /// Jobs of the tenant that are queued or running.
    pub async fn active_jobs(&self) -> Result<i64, StoreError> {
        let tenant = self.tenant;
        sqlx::query_scalar("SELECT COUNT(*) FROM jobs WHERE tenant = $1 AND state IN ('queued', 'running')")
            .bind(tenant)
            .fetch_one(self.store.pool())
            .await
            .map_err(q("count active jobs"))
    }

    /// Why the job's runnable tasks wait, as the scheduler said: (task id, reason), at most
    /// `limit`, in task order.
    pub async fn waiting_tasks(&self, job_id: &str, limit: i64) -> Result<Vec<(String, String)>, StoreError> {
        let tenant = self.tenant;
        sqlx::query_as(
            "SELECT task_id, reason FROM tasks
             WHERE tenant = $3 AND job_id = $1 AND state = 'runnable' AND reason IS NOT NULL
             ORDER BY task_id LIMIT $2",
        )
        .bind(job_id)
        .bind(limit)
        .bind(tenant)
        .fetch_all(self.store.pool())
        .await
        .map_err(q("list waiting tasks"))
    }

    /// Tasks of a job in id order; `after` is the cursor (a task id).
    pub async fn tasks(
        &self,
        job_id: &str,
        state: Option<TaskState>,
        after: Option<&str>,
        limit: i64,
    ) -> Result<Vec<TaskView>, StoreError> {
        let tenant = self.tenant;
        let rows = sqlx::query(
            "SELECT t.task_id, t.kind, t.state, t.attempt, t.worker_id, t.parents, t.reason, a.path, t.updated_at_ms,
               t.expansion
             FROM tasks t LEFT JOIN artifacts a
               ON a.tenant = t.tenant AND a.job_id = t.job_id AND a.task_id = t.task_id AND a.attempt = t.attempt
             WHERE t.tenant = $5 AND t.job_id = $1 AND ($2 IS NULL OR t.state = $2) AND ($3 IS NULL OR t.task_id > $3)
             ORDER BY t.task_id LIMIT $4",
        )
        .bind(job_id)
        .bind(state.as_ref().map(splai_events::wire_name))
        .bind(after)
        .bind(limit)
        .bind(tenant)
        .fetch_all(self.store.pool())
        .await
        .map_err(q("list tasks"))?;
        rows.iter()
            .map(|r| {
                Ok(TaskView {
                    task_id: r.try_get("task_id")?,
                    kind: wire(r, "kind")?,
                    state: wire(r, "state")?,
                    attempt: r.try_get("attempt")?,
                    worker_id: r.try_get("worker_id")?,
                    parents: json_text(r.try_get("parents")?),
                    reason: r.try_get("reason")?,
                    artifact: r.try_get("path")?,
                    updated_at_ms: r.try_get("updated_at_ms")?,
                    expansion: Some(json_text(r.try_get("expansion")?)).filter(|v| !v.is_null()),
                })
            })
            .collect::<Result<_, sqlx::Error>>()
            .map_err(q("read tasks"))
    }

    pub async fn attempts(&self, job_id: &str) -> Result<Vec<AttemptView>, StoreError> {
        let tenant = self.tenant;
        let rows = sqlx::query(
            "SELECT task_id, attempt, worker_id, state, started_at_ms, finished_at_ms, duration_ms, error,
               revoked, prompt_tokens, completion_tokens
             FROM attempts WHERE tenant = $2 AND job_id = $1 ORDER BY task_id, attempt",
        )
        .bind(job_id)
        .bind(tenant)
        .fetch_all(self.store.pool())
        .await
        .map_err(q("list attempts"))?;
        rows.iter()
            .map(|r| {
                let revoked: Option<String> = r.try_get("revoked")?;
                Ok(AttemptView {
                    task_id: r.try_get("task_id")?,
                    attempt: r.try_get("attempt")?,
                    worker_id: r.try_get("worker_id")?,
                    state: wire(r, "state")?,
                    started_at_ms: r.try_get("started_at_ms")?,
                    finished_at_ms: r.try_get("finished_at_ms")?,
                    duration_ms: r.try_get("duration_ms")?,
                    error: r.try_get("error")?,
                    revoked: revoked.map(|name| named("revoked", &name)).transpose()?,
                    prompt_tokens: r.try_get("prompt_tokens")?,
                    completion_tokens: r.try_get("completion_tokens")?,
                })
            })
            .collect::<Result<_, sqlx::Error>>()
            .map_err(q("read attempts"))
    }

    /// Every artifact of a job with its lineage.
    pub async fn artifacts(&self, job_id: &str) -> Result<Vec<ArtifactView>, StoreError> {
        let tenant = self.tenant;
        let rows = sqlx::query(
            "SELECT a.path, a.task_id, a.attempt, a.sha256, a.size_bytes, a.created_at_ms, i.input_path, a.provenance
             FROM artifacts a LEFT JOIN artifact_inputs i ON i.artifact_path = a.path
             WHERE a.tenant = $1 AND a.job_id = $2 ORDER BY a.task_id, a.attempt, a.path, i.input_path",
        )
        .bind(tenant)
        .bind(job_id)
        .fetch_all(self.store.pool())
        .await
        .map_err(q("list artifacts"))?;
        let mut out: Vec<ArtifactView> = Vec::new();
        for r in &rows {
            let path: String = r.try_get(0).map_err(q("read artifacts"))?;
            let input: Option<String> = r.try_get(6).map_err(q("read artifacts"))?;
            if out.last().is_none_or(|a| a.path != path) {
                let provenance: Option<String> = r.try_get(7).map_err(q("read artifacts"))?;
                out.push(ArtifactView {
                    path,
                    task_id: r.try_get(1).map_err(q("read artifacts"))?,
                    attempt: r.try_get(2).map_err(q("read artifacts"))?,
                    sha256: r.try_get(3).map_err(q("read artifacts"))?,
                    size_bytes: r.try_get(4).map_err(q("read artifacts"))?,
                    created_at_ms: r.try_get(5).map_err(q("read artifacts"))?,
                    inputs: vec![],
                    provenance: provenance.and_then(|p| serde_json::from_str(&p).ok()),
                });
            }
            if let (Some(i), Some(a)) = (input, out.last_mut()) {
                a.inputs.push(i);
            }
        }
        Ok(out)
    }

    /// One artifact's metadata, if it belongs to the tenant.
    pub async fn artifact(&self, path: &str) -> Result<Option<ArtifactView>, StoreError> {
        let tenant = self.tenant;
        let Some(job_id): Option<String> =
            sqlx::query_scalar("SELECT job_id FROM artifacts WHERE tenant = $1 AND path = $2")
                .bind(tenant)
                .bind(path)
                .fetch_optional(self.store.pool())
                .await
                .map_err(q("find artifact"))?
        else {
            return Ok(None);
        };
        Ok(self.artifacts(&job_id).await?.into_iter().find(|a| a.path == path))
    }

    /// Stream events of a job after `seq`.
    pub async fn stream_after(
        &self,
        job_id: &str,
        seq: i64,
        limit: i64,
    ) -> Result<Vec<StreamEvent>, StoreError> {
        let tenant = self.tenant;
        let rows = sqlx::query(
            "SELECT seq, event, data, ts_ms FROM job_stream WHERE tenant = $4 AND job_id = $1 AND seq > $2
             ORDER BY seq LIMIT $3",
        )
        .bind(job_id)
        .bind(seq)
        .bind(limit)
        .bind(tenant)
        .fetch_all(self.store.pool())
        .await
        .map_err(q("read job stream"))?;
        rows.iter()
            .map(|r| {
                Ok(StreamEvent {
                    seq: r.try_get(0)?,
                    event: r.try_get(1)?,
                    data: json_text(r.try_get(2)?),
                    ts_ms: r.try_get(3)?,
                })
            })
            .collect::<Result<_, sqlx::Error>>()
            .map_err(q("read job stream"))
    }

    /// The last stream seq of a job (0 when none).
    pub async fn stream_head(&self, job_id: &str) -> Result<i64, StoreError> {
        let tenant = self.tenant;
        sqlx::query_scalar("SELECT COALESCE(MAX(seq), 0) FROM job_stream WHERE tenant = $1 AND job_id = $2")
            .bind(tenant)
            .bind(job_id)
            .fetch_one(self.store.pool())
            .await
            .map_err(q("stream head"))
    }

    /// The tenant's dead letters, newest first.
    pub async fn dead_letters(&self, limit: i64) -> Result<Vec<DeadLetterView>, StoreError> {
        let rows = sqlx::query(
            "SELECT source, tenant, job_id, task_id, reason, payload, origin, ts_ms, requeued_at_ms
             FROM dead_letters WHERE tenant = $1 ORDER BY ts_ms DESC, source LIMIT $2",
        )
        .bind(self.tenant)
        .bind(limit)
        .fetch_all(self.store.pool())
        .await
        .map_err(q("list dead letters"))?;
        rows.iter()
            .map(|r| {
                Ok(DeadLetterView {
                    id: r.try_get(0)?,
                    tenant: r.try_get(1)?,
                    job_id: r.try_get(2)?,
                    task_id: r.try_get(3)?,
                    reason: r.try_get(4)?,
                    payload: r.try_get(5)?,
                    origin: r.try_get(6)?,
                    ts_ms: r.try_get(7)?,
                    requeued_at_ms: r.try_get(8)?,
                })
            })
            .collect::<Result<_, sqlx::Error>>()
            .map_err(q("read dead letters"))
    }

    /// Mark dead letters of a job (one task, or all) requeued.
    pub async fn mark_requeued(
        &self,
        job_id: &str,
        task_id: Option<&str>,
        now_ms: i64,
    ) -> Result<u64, StoreError> {
        let tenant = self.tenant;
        let done = sqlx::query(
            "UPDATE dead_letters SET requeued_at_ms = $4
             WHERE tenant = $1 AND job_id = $2 AND ($3 IS NULL OR task_id = $3) AND requeued_at_ms IS NULL",
        )
        .bind(tenant)
        .bind(job_id)
        .bind(task_id)
        .bind(now_ms)
        .execute(self.store.pool())
        .await
        .map_err(q("mark requeued"))?;
        Ok(done.rows_affected())
    }
}

fn job_of(row: &AnyRow) -> Result<JobView, StoreError> {
    job(row).map_err(q("read job"))
}
