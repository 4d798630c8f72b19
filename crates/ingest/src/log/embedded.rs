//! The embedded log: SQLite tables behind the same [`EventLog`] trait, for one machine with no
//! external service. Durable across restarts (WAL); several processes may share the file.
//!
//! Tables: `log_topics(name, partitions)`, `log_partitions(topic, partition, next_offset)` (the
//! high watermarks, so an idle poll is one small read), `log_records(topic, partition, offset, key,
//! payload, ts_ms)` and `log_commits(grp, topic, partition, next_offset)`.

use std::collections::HashMap;
use std::path::Path;
use std::str::FromStr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use splai_events::SourcePosition;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{Row, SqlitePool};
use tokio::sync::{Mutex, Notify, oneshot};

use super::group_commit::{self, Pending};
use super::{
    Delivered, EventLog, Headers, LogConsumer, LogError, Record, Subscription, commit_points, now_ms,
};

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS log_topics (name TEXT PRIMARY KEY, partitions INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS log_partitions (
    topic TEXT NOT NULL, partition INTEGER NOT NULL, next_offset INTEGER NOT NULL,
    PRIMARY KEY (topic, partition)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS log_records (
    topic TEXT NOT NULL, partition INTEGER NOT NULL, offset INTEGER NOT NULL,
    key TEXT, payload BLOB NOT NULL, ts_ms INTEGER NOT NULL, headers BLOB,
    PRIMARY KEY (topic, partition, offset)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS log_commits (
    grp TEXT NOT NULL, topic TEXT NOT NULL, partition INTEGER NOT NULL, next_offset INTEGER NOT NULL,
    PRIMARY KEY (grp, topic, partition)) WITHOUT ROWID;
";

/// Headers as a JSON array of `[name, hex value]`; NULL when there are none (most records).
pub(crate) fn encode_headers(headers: &Headers) -> Option<String> {
    if headers.is_empty() {
        return None;
    }
    let pairs: Vec<(&str, String)> = headers.iter().map(|(k, v)| (k.as_str(), hex(v))).collect();
    serde_json::to_string(&pairs).ok()
}

fn decode_headers(column: Option<String>) -> Headers {
    let Some(text) = column else { return Headers::new() };
    let pairs: Vec<(String, String)> = serde_json::from_str(&text).unwrap_or_default();
    pairs.into_iter().filter_map(|(k, v)| Some((k, unhex(&v)?))).collect()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(text: &str) -> Option<Vec<u8>> {
    (0..text.len()).step_by(2).map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok()).collect()
}

impl Inner {
    /// Raise the known high watermarks (never lower them).
    fn learn(&self, high: impl IntoIterator<Item = ((String, u32), u64)>) {
        let mut known = self.known.lock().expect("watermark lock");
        for (key, next) in high {
            let h = known.entry(key).or_insert(0);
            *h = (*h).max(next);
        }
    }
}

#[derive(Debug, Clone)]
pub struct EmbeddedLog {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    pool: SqlitePool,
    /// One write transaction at a time in this process (other processes wait on SQLite's lock);
    /// appends queue up meanwhile and share the next one (group commit).
    write: Mutex<()>,
    queue: std::sync::Mutex<Vec<Pending>>,
    /// Partition counts of existing topics (they never change).
    partitions: std::sync::Mutex<HashMap<String, u32>>,
    /// High watermarks this process knows of (its own writes, and what its reads saw), so a
    /// consumer woken by an append to another topic need not ask SQLite.
    known: std::sync::Mutex<HashMap<(String, u32), u64>>,
    /// Wakes consumers in this process when records arrive.
    appended: Notify,
    /// How often an idle consumer re-checks for appends by other processes.
    poll_interval: Duration,
}

impl EmbeddedLog {
    /// Open (creating when missing) the log at `path`. `fsync`: sync every commit to disk.
    pub async fn open(path: &Path, fsync: bool, poll_interval: Duration) -> Result<Self, LogError> {
        let open_err = |e: &dyn std::fmt::Display| LogError::Open {
            backend: "embedded",
            message: format!("{}: {e}", path.display()),
        };
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| open_err(&e))?;
        }
        let options = SqliteConnectOptions::from_str(&format!("sqlite://{}", path.display()))
            .map_err(|e| open_err(&e))?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(if fsync { SqliteSynchronous::Full } else { SqliteSynchronous::Normal })
            .busy_timeout(Duration::from_secs(30));
        let pool = SqlitePoolOptions::new()
            .max_connections(4)
            .connect_with(options)
            .await
            .map_err(|e| open_err(&e))?;
        sqlx::raw_sql(SCHEMA).execute(&pool).await.map_err(|e| open_err(&e))?;
        // Logs made before records had headers gain the column (NULL: no headers).
        let has_headers: bool = sqlx::query_scalar(
            "SELECT count(*) > 0 FROM pragma_table_info('log_records') WHERE name = 'headers'",
        )
        .fetch_one(&pool)
        .await
        .map_err(|e| open_err(&e))?;
        if !has_headers {
            sqlx::raw_sql("ALTER TABLE log_records ADD COLUMN headers BLOB")
                .execute(&pool)
                .await
                .map_err(|e| open_err(&e))?;
        }
        Ok(Self {
            inner: Arc::new(Inner {
                pool,
                write: Mutex::new(()),
                queue: Default::default(),
                partitions: Default::default(),
                known: Default::default(),
                appended: Notify::new(),
                poll_interval,
            }),
        })
    }

    /// The partition count of an existing topic, from memory after the first lookup.
    async fn cached_partitions(&self, topic: &str) -> Result<u32, LogError> {
        if let Some(n) = self.inner.partitions.lock().expect("partition cache lock").get(topic) {
            return Ok(*n);
        }
        let n = self
            .topic_partitions(topic)
            .await
            .map_err(|e| LogError::Append { topic: topic.to_string(), message: e.to_string() })?
            .ok_or_else(|| LogError::UnknownTopic { topic: topic.to_string() })?;
        self.inner.partitions.lock().expect("partition cache lock").insert(topic.to_string(), n);
        Ok(n)
    }

    async fn topic_partitions(&self, topic: &str) -> Result<Option<u32>, sqlx::Error> {
        let row = sqlx::query("SELECT partitions FROM log_topics WHERE name = ?")
            .bind(topic)
            .fetch_optional(&self.inner.pool)
            .await?;
        Ok(row.map(|r| r.get::<i64, _>(0) as u32))
    }
}

#[async_trait]
impl EventLog for EmbeddedLog {
    async fn create_topics(&self, topics: &[String], partitions: u32) -> Result<(), LogError> {
        let _guard = self.inner.write.lock().await;
        for topic in topics {
            let err = |e: sqlx::Error| LogError::CreateTopic { topic: topic.clone(), message: e.to_string() };
            let mut tx = self.inner.pool.begin_with("BEGIN IMMEDIATE").await.map_err(err)?;
            let created = sqlx::query("INSERT OR IGNORE INTO log_topics (name, partitions) VALUES (?, ?)")
                .bind(topic)
                .bind(i64::from(partitions))
                .execute(&mut *tx)
                .await
                .map_err(err)?
                .rows_affected();
            if created == 1 {
                for p in 0..partitions {
                    sqlx::query(
                        "INSERT INTO log_partitions (topic, partition, next_offset) VALUES (?, ?, 0)",
                    )
                    .bind(topic)
                    .bind(i64::from(p))
                    .execute(&mut *tx)
                    .await
                    .map_err(err)?;
                }
            }
            tx.commit().await.map_err(err)?;
        }
        Ok(())
    }

    async fn append(&self, topic: &str, records: Vec<Record>) -> Result<Vec<SourcePosition>, LogError> {
        if records.is_empty() {
            return Ok(Vec::new());
        }
        let err = |message: String| LogError::Append { topic: topic.to_string(), message };
        let partitions = self.cached_partitions(topic).await?;
        let (done, answer) = oneshot::channel();
        let pending = Pending { topic: topic.to_string(), partitions, records, done };
        self.inner.queue.lock().expect("append queue lock").push(pending);
        {
            let _leader = self.inner.write.lock().await;
            let batch = std::mem::take(&mut *self.inner.queue.lock().expect("append queue lock"));
            if !batch.is_empty() {
                // On its own task: a caller that stops waiting must not abort the others' write.
                let inner = self.inner.clone();
                let write = tokio::spawn(async move {
                    let written = group_commit::write_batch(&inner.pool, batch, now_ms()).await;
                    inner.learn(written);
                    inner.appended.notify_waiters();
                });
                write.await.map_err(|e| err(format!("the log writer failed: {e}")))?;
            }
        }
        answer.await.map_err(|_| err("the log writer stopped".into()))?.map_err(err)
    }

    async fn subscribe(&self, subscription: Subscription) -> Result<Box<dyn LogConsumer>, LogError> {
        let err = |e: sqlx::Error| LogError::Consume {
            group: subscription.group.clone(),
            topics: subscription.topics.clone(),
            message: e.to_string(),
        };
        let mut positions = Vec::new();
        for topic in &subscription.topics {
            let partitions = self
                .topic_partitions(topic)
                .await
                .map_err(err)?
                .ok_or_else(|| LogError::UnknownTopic { topic: topic.clone() })?;
            let wanted: Vec<u32> = match &subscription.partitions {
                Some(list) => list.iter().copied().filter(|p| *p < partitions).collect(),
                None => (0..partitions).collect(),
            };
            for partition in wanted {
                let committed: Option<i64> = sqlx::query_scalar(
                    "SELECT next_offset FROM log_commits WHERE grp = ? AND topic = ? AND partition = ?",
                )
                .bind(&subscription.group)
                .bind(topic)
                .bind(i64::from(partition))
                .fetch_optional(&self.inner.pool)
                .await
                .map_err(err)?;
                positions.push(Cursor {
                    topic: topic.clone(),
                    partition,
                    next: committed.unwrap_or(0) as u64,
                });
            }
        }
        Ok(Box::new(EmbeddedConsumer {
            log: self.clone(),
            subscription,
            cursors: positions,
            rr: 0,
            checked_at: None,
        }))
    }

    async fn high_watermarks(&self, topic: &str) -> Result<Vec<u64>, LogError> {
        let err = |e: sqlx::Error| LogError::Consume {
            group: String::new(),
            topics: vec![topic.into()],
            message: e.to_string(),
        };
        let rows = sqlx::query(
            "SELECT partition, next_offset FROM log_partitions WHERE topic = ? ORDER BY partition",
        )
        .bind(topic)
        .fetch_all(&self.inner.pool)
        .await
        .map_err(err)?;
        if rows.is_empty() {
            return Err(LogError::UnknownTopic { topic: topic.to_string() });
        }
        Ok(rows.iter().map(|r| r.get::<i64, _>(1) as u64).collect())
    }

    async fn partitions(&self, topic: &str) -> Result<u32, LogError> {
        self.topic_partitions(topic)
            .await
            .map_err(|e| LogError::Consume {
                group: String::new(),
                topics: vec![topic.into()],
                message: e.to_string(),
            })?
            .ok_or_else(|| LogError::UnknownTopic { topic: topic.to_string() })
    }
}

#[derive(Debug)]
struct Cursor {
    topic: String,
    partition: u32,
    next: u64,
}

#[derive(Debug)]
struct EmbeddedConsumer {
    log: EmbeddedLog,
    subscription: Subscription,
    cursors: Vec<Cursor>,
    /// Round-robin start, so one busy partition cannot starve the others.
    rr: usize,
    /// When the high watermarks were last read from the database.
    checked_at: Option<Instant>,
}

impl EmbeddedConsumer {
    fn err(&self, e: sqlx::Error) -> LogError {
        LogError::Consume {
            group: self.subscription.group.clone(),
            topics: self.subscription.topics.clone(),
            message: e.to_string(),
        }
    }

    async fn fetch(&mut self, max: usize) -> Result<Vec<Delivered>, LogError> {
        let pool = &self.log.inner.pool;
        // Between checks of the database (every `poll_interval`, for other processes' appends),
        // what this process wrote is known in memory: nothing new there means no query at all.
        let fresh = self.checked_at.is_some_and(|t| t.elapsed() < self.log.inner.poll_interval);
        let mut high: HashMap<(String, u32), u64> = HashMap::new();
        if fresh {
            let known = self.log.inner.known.lock().expect("watermark lock");
            let mut anything_new = false;
            for c in &self.cursors {
                let key = (c.topic.clone(), c.partition);
                if let Some(h) = known.get(&key) {
                    anything_new |= *h > c.next;
                    high.insert(key, *h);
                }
            }
            if !anything_new {
                return Ok(Vec::new());
            }
        } else {
            for topic in &self.subscription.topics {
                let rows = sqlx::query("SELECT partition, next_offset FROM log_partitions WHERE topic = ?")
                    .bind(topic)
                    .fetch_all(pool)
                    .await
                    .map_err(|e| self.err(e))?;
                for row in rows {
                    high.insert((topic.clone(), row.get::<i64, _>(0) as u32), row.get::<i64, _>(1) as u64);
                }
            }
            self.log.inner.learn(high.iter().map(|(k, v)| (k.clone(), *v)));
            self.checked_at = Some(Instant::now());
        }
        let mut out = Vec::new();
        let n = self.cursors.len();
        for i in 0..n {
            if out.len() >= max {
                break;
            }
            let idx = (self.rr + i) % n;
            let cursor = &self.cursors[idx];
            let hw = high.get(&(cursor.topic.clone(), cursor.partition)).copied().unwrap_or(0);
            if hw <= cursor.next {
                continue;
            }
            let rows = sqlx::query(
                "SELECT offset, key, payload, ts_ms, headers FROM log_records
                 WHERE topic = ? AND partition = ? AND offset >= ? ORDER BY offset LIMIT ?",
            )
            .bind(&cursor.topic)
            .bind(i64::from(cursor.partition))
            .bind(cursor.next as i64)
            .bind((max - out.len()) as i64)
            .fetch_all(pool)
            .await
            .map_err(|e| self.err(e))?;
            let cursor = &mut self.cursors[idx];
            for row in rows {
                let offset = row.get::<i64, _>(0) as u64;
                cursor.next = offset + 1;
                out.push(Delivered {
                    position: SourcePosition {
                        topic: cursor.topic.clone(),
                        partition: cursor.partition,
                        offset,
                    },
                    key: row.get(1),
                    payload: row.get(2),
                    ts_ms: row.get::<i64, _>(3) as u64,
                    headers: decode_headers(row.get(4)),
                });
            }
        }
        self.rr = self.rr.wrapping_add(1);
        Ok(out)
    }
}

#[async_trait]
impl LogConsumer for EmbeddedConsumer {
    async fn poll(&mut self, max: usize, wait: Duration) -> Result<Vec<Delivered>, LogError> {
        let deadline = Instant::now() + wait;
        let inner = self.log.inner.clone();
        loop {
            // Register interest before reading, so an append between the read and the wait
            // is not missed.
            let notified = inner.appended.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            let batch = self.fetch(max.max(1)).await?;
            let now = Instant::now();
            if !batch.is_empty() || now >= deadline {
                return Ok(batch);
            }
            let nap = (deadline - now).min(inner.poll_interval);
            let _ = tokio::time::timeout(nap, notified).await;
        }
    }

    async fn commit(&mut self, processed: &[SourcePosition]) -> Result<(), LogError> {
        let points = commit_points(processed);
        let Some(first) = points.first() else { return Ok(()) };
        let group = &self.subscription.group;
        let err = |at: &SourcePosition, e: sqlx::Error| LogError::Commit {
            group: group.clone(),
            topic: at.topic.clone(),
            partition: at.partition,
            offset: at.offset,
            message: e.to_string(),
        };
        // All partitions move together, or none does. Behind the same lock as appends: a second
        // writer in this process would only meet SQLITE_BUSY and SQLite's sleeping retry.
        let _writer = self.log.inner.write.lock().await;
        let mut tx = self.log.inner.pool.begin_with("BEGIN IMMEDIATE").await.map_err(|e| err(first, e))?;
        for point in &points {
            sqlx::query(
                "INSERT INTO log_commits (grp, topic, partition, next_offset) VALUES (?, ?, ?, ?)
                 ON CONFLICT (grp, topic, partition) DO UPDATE SET next_offset = excluded.next_offset
                 WHERE excluded.next_offset > log_commits.next_offset",
            )
            .bind(group)
            .bind(&point.topic)
            .bind(i64::from(point.partition))
            .bind(point.offset as i64)
            .execute(&mut *tx)
            .await
            .map_err(|e| err(point, e))?;
        }
        tx.commit().await.map_err(|e| err(first, e))
    }
}
