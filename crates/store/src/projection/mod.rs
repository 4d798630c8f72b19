//! The projection of the event log into the read model: job requests and outcomes, tasks,
//! attempts, artifacts with lineage, workers, dead letters, and each job's SSE stream.
//!
//! A batch is applied in one transaction together with the projector's offsets, and each record
//! only when it is new to the projector, so replays and several gateways projecting at once leave
//! the same rows. Stream rows are keyed by their source position as well, so a record lands in a
//! job's stream once whatever projects it.
//!
//! [`plan`] turns each record into statements; PostgreSQL runs them through sqlx, SQLite in one
//! blocking call per batch ([`sqlite`]): through sqlx every statement would be a round trip to
//! its worker thread, and those thread switches were most of the embedded default's CPU time.

mod plan;
pub(crate) mod sqlite;

use std::collections::HashMap;

use splai_events::{Envelope, JobRequest, SourcePosition};

use crate::offsets::{ADVANCE_SQL, LOAD_SQL};
use crate::read::StreamEvent;
use crate::{Store, StoreError};
pub(crate) use plan::{Arg, Stmt, StreamRow, bind_all};

#[derive(Debug, Clone)]
pub struct Projection {
    store: Store,
    projector: String,
}

/// A batch as planned: each record's position and its statements.
pub(crate) type Planned = Vec<(SourcePosition, Vec<Stmt>)>;

impl Projection {
    pub fn new(store: Store, projector: &str) -> Self {
        Self { store, projector: projector.to_string() }
    }

    /// Apply `events` in one transaction.
    pub async fn apply(&self, events: &[(SourcePosition, Envelope)]) -> Result<Applied, StoreError> {
        let mut planned: Planned = Vec::with_capacity(events.len());
        let mut jobs = Vec::with_capacity(events.len());
        for (pos, env) in events {
            let mut stmts = Vec::new();
            jobs.push(plan::plan(&mut stmts, pos, env));
            planned.push((pos.clone(), stmts));
        }
        self.run(planned, jobs).await
    }

    /// Whether the database answers (a record that keeps failing while it does cannot be
    /// projected).
    pub async fn database_answers(&self) -> bool {
        self.store.ping().await.is_ok()
    }

    /// Move this projector past the record at `pos` without applying it (it can never be: the
    /// caller dead-letters it). Whether it was new.
    pub async fn skip(&self, pos: &SourcePosition) -> Result<bool, StoreError> {
        Ok(!self.run(vec![(pos.clone(), Vec::new())], vec![None]).await?.applied.is_empty())
    }

    async fn run(&self, planned: Planned, jobs: Vec<Option<String>>) -> Result<Applied, StoreError> {
        let (fresh, streamed) = match self.store.sqlite() {
            Some(db) => {
                let _turn = self.store.write_turn().await;
                let (db, projector) = (db.clone(), self.projector.clone());
                tokio::task::spawn_blocking(move || db.apply(&projector, &planned)).await.map_err(|e| {
                    StoreError::Blocking { what: "apply projection", message: e.to_string() }
                })??
            }
            None => self.apply_sqlx(&planned).await?,
        };
        let mut touched: Vec<String> = Vec::new();
        let mut applied = Vec::new();
        for (i, job) in jobs.into_iter().enumerate() {
            if !fresh[i] {
                continue;
            }
            applied.push(i);
            if let Some(job) = job
                && !touched.contains(&job)
            {
                touched.push(job);
            }
        }
        Ok(Applied { touched, applied, streamed })
    }

    /// The batch through sqlx (PostgreSQL): which records were new, and the stream rows they added.
    async fn apply_sqlx(&self, planned: &Planned) -> Result<(Vec<bool>, Vec<Streamed>), StoreError> {
        let q = StoreError::query;
        let mut tx = self.store.pool().begin().await.map_err(q("begin projection"))?;
        let rows: Vec<(String, i64, i64)> = sqlx::query_as(LOAD_SQL)
            .bind(&self.projector)
            .fetch_all(&mut *tx)
            .await
            .map_err(q("read projector offsets"))?;
        let mut offsets = Offsets::new(rows);
        let (fresh, stmts) = offsets.take_new(planned);
        let mut streamed = Vec::new();
        for stmt in stmts {
            let query = plan::bind_all(sqlx::query(stmt.sql), &stmt.args);
            match &stmt.stream {
                Some(row) => {
                    let seq = query.fetch_optional(&mut *tx).await.map_err(q(stmt.what))?;
                    if let Some(seq) = seq {
                        let seq: i64 = sqlx::Row::try_get(&seq, 0).map_err(q(stmt.what))?;
                        streamed.push(Streamed::new(row, seq));
                    }
                }
                None => {
                    query.execute(&mut *tx).await.map_err(q(stmt.what))?;
                }
            }
        }
        for ((topic, partition), next) in offsets.advanced() {
            sqlx::query(ADVANCE_SQL)
                .bind(&self.projector)
                .bind(topic)
                .bind(i64::from(partition))
                .bind(next)
                .execute(&mut *tx)
                .await
                .map_err(q("advance projector offset"))?;
        }
        tx.commit().await.map_err(q("commit projection"))?;
        Ok((fresh, streamed))
    }
}

/// This projector's offsets as read at the start of the batch's transaction, moved as records
/// are taken; what moved is written back at its end (one row per partition, not per record).
pub(crate) struct Offsets {
    next: HashMap<(String, u32), i64>,
    moved: HashMap<(String, u32), i64>,
}

impl Offsets {
    pub(crate) fn new(rows: Vec<(String, i64, i64)>) -> Self {
        let next = rows.into_iter().map(|(t, p, n)| ((t, p as u32), n)).collect();
        Self { next, moved: HashMap::new() }
    }

    /// Whether the record at `pos` is new; if so it is taken (the offset moves past it).
    fn take(&mut self, pos: &SourcePosition) -> bool {
        let key = (pos.topic.clone(), pos.partition);
        let at = pos.offset as i64;
        if self.next.get(&key).is_some_and(|n| at < *n) {
            return false;
        }
        self.next.insert(key.clone(), at + 1);
        self.moved.insert(key, at + 1);
        true
    }

    /// Take every record of `planned` that is new: which ones were, and their statements in order.
    pub(crate) fn take_new<'a>(&mut self, planned: &'a Planned) -> (Vec<bool>, Vec<&'a Stmt>) {
        let fresh: Vec<bool> = planned.iter().map(|(pos, _)| self.take(pos)).collect();
        let stmts =
            planned.iter().zip(&fresh).filter(|(_, new)| **new).flat_map(|((_, stmts), _)| stmts).collect();
        (fresh, stmts)
    }

    pub(crate) fn advanced(self) -> impl Iterator<Item = ((String, u32), i64)> {
        self.moved.into_iter()
    }
}

/// What a batch changed.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Applied {
    /// Jobs whose stream grew.
    pub touched: Vec<String>,
    /// Indexes of the batch's events that were new (the rest had been applied before).
    pub applied: Vec<usize>,
    /// The rows the batch added to job streams, in order.
    pub streamed: Vec<Streamed>,
}

/// A row a batch added to a job's stream, as a follower reads it.
#[derive(Debug, Clone, PartialEq)]
pub struct Streamed {
    pub tenant: String,
    pub job_id: String,
    pub event: StreamEvent,
}

impl Streamed {
    fn new(row: &StreamRow, seq: i64) -> Self {
        Self {
            tenant: row.tenant.clone(),
            job_id: row.job_id.clone(),
            event: StreamEvent { seq, event: row.event.clone(), data: row.data.clone(), ts_ms: row.ts_ms },
        }
    }
}

/// The job a request names: its `job_id`, else the envelope id (as the scheduler does).
pub fn request_job_id(env: &Envelope, request: &JobRequest) -> String {
    request.job_id.clone().unwrap_or_else(|| env.id.clone())
}
