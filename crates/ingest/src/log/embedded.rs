//! The embedded log: SQLite tables behind the same [`EventLog`] trait, for one machine with no
//! external service. Durable across restarts (WAL); several processes may share the file.
//!
//! Tables: `log_topics(name, partitions)`, `log_partitions(topic, partition, next_offset)` (the
//! high watermarks, so an idle poll is one small read), `log_records(topic, partition, offset, key,
//! payload, ts_ms)` and `log_commits(grp, topic, partition, next_offset)`.
//!
//! SQLite is called directly and synchronously (rusqlite): a read or a commit here takes tens of
//! microseconds, less than handing each statement to a driver thread and back, which is what
//! most of the CPU went to before. Each consumer reads through its own connection; writes share
//! one connection and group-commit ([`group_commit`]). With `fsync` on, a commit waits for the
//! disk, so writes then run on tokio's blocking pool instead of the caller's thread.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use rusqlite::{Connection, OpenFlags, OptionalExtension, params};
use splai_events::SourcePosition;
use tokio::sync::{Mutex, Notify, oneshot};

use super::group_commit::{self, Pending};
use super::tail::Tails;
use super::{Cause, Delivered, EventLog, LogConsumer, LogError, Record, Subscription, commit_points, now_ms};

const SCHEMA: &str = "
PRAGMA journal_mode = WAL;
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

impl Inner {
    /// Raise the known high watermarks (never lower them).
    fn learn(&self, high: impl IntoIterator<Item = ((String, u32), u64)>) {
        let mut known = self.known.lock().expect("watermark lock");
        for (key, next) in high {
            let h = known.entry(key).or_insert(0);
            *h = (*h).max(next);
        }
    }

    /// Open a connection to the log's file with the log's settings.
    fn connect(&self) -> rusqlite::Result<Connection> {
        connect(&self.path, self.fsync)
    }

    /// Run `f` on the write connection: on this thread, or on the blocking pool when commits
    /// wait for the disk.
    async fn on_writer<T: Send + 'static>(
        self: &Arc<Self>,
        f: impl FnOnce(&mut Connection) -> T + Send + 'static,
    ) -> Result<T, EmbeddedError> {
        let inner = self.clone();
        let run = move || f(&mut inner.writer.lock().unwrap_or_else(|p| p.into_inner()));
        if self.fsync {
            tokio::task::spawn_blocking(run).await.map_err(EmbeddedError::Writer)
        } else {
            Ok(run())
        }
    }

    /// Queue writes and either lead the next group commit or wait for the one that takes them
    /// (queued together, they go into one transaction).
    async fn write(self: &Arc<Self>, pending: impl IntoIterator<Item = Pending>) {
        self.queue.lock().expect("write queue lock").extend(pending);
        let _leader = self.write.lock().await;
        let batch = std::mem::take(&mut *self.queue.lock().expect("write queue lock"));
        if batch.is_empty() {
            return; // an earlier leader took it
        }
        let inner = self.clone();
        let written = self.on_writer(move |conn| group_commit::write_batch(conn, batch, now_ms())).await;
        if let Ok(records) = written {
            // Offsets ascend within a partition: the last record of each is its new end.
            let high: HashMap<(String, u32), u64> = records
                .iter()
                .map(|r| ((r.position.topic.clone(), r.position.partition), r.position.offset + 1))
                .collect();
            // In the tail and known before anyone wakes, or a woken consumer would see nothing
            // new (or read from SQLite what it could have had from memory).
            inner.keep_for_watchers(records);
            let keys: Vec<(String, u32)> = high.keys().cloned().collect();
            inner.learn(high);
            inner.wake(keys.iter());
        }
    }

    /// Keep in the tail the records of partitions a consumer in this process reads (the others'
    /// consumers are elsewhere, and one that subscribes later reads the file).
    fn keep_for_watchers(&self, mut records: Vec<Delivered>) {
        {
            let watchers = self.watchers.lock().expect("watcher lock");
            records.retain(|r| {
                watchers
                    .get(&(r.position.topic.clone(), r.position.partition))
                    .is_some_and(|list| list.iter().any(|w| w.strong_count() > 0))
            });
        }
        self.tails.push(records);
    }

    /// Wake the consumers in this process that read any of these partitions (only those: a
    /// wake-up costs a thread switch, and most consumers read a few topics).
    fn wake<'a>(&self, written: impl Iterator<Item = &'a (String, u32)>) {
        let mut watchers = self.watchers.lock().expect("watcher lock");
        for key in written {
            if let Some(list) = watchers.get_mut(key) {
                list.retain(|w| match w.upgrade() {
                    Some(notify) => {
                        notify.notify_waiters();
                        true
                    }
                    None => false, // its consumer is gone
                });
            }
        }
    }
}

/// Causes of the embedded log's own making, under a [`LogError`].
#[derive(Debug, thiserror::Error)]
enum EmbeddedError {
    /// Opening or preparing the log's file (reads as `path: cause`).
    #[error("{}", path.display())]
    File {
        path: PathBuf,
        #[source]
        source: Cause,
    },
    /// The blocking-pool thread running a write died (a panic) before answering.
    #[error("the log writer failed")]
    Writer(#[source] tokio::task::JoinError),
}

fn connect(path: &Path, fsync: bool) -> rusqlite::Result<Connection> {
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_CREATE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    conn.busy_timeout(Duration::from_secs(30))?;
    conn.pragma_update(None, "synchronous", if fsync { "FULL" } else { "NORMAL" })?;
    // Commits never checkpoint (a checkpoint syncs the files): `Inner::_checkpoints` does.
    splai_sqlite::without_autocheckpoint(&conn)?;
    conn.set_prepared_statement_cache_capacity(32);
    Ok(conn)
}

#[derive(Debug, Clone)]
pub struct EmbeddedLog {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    path: PathBuf,
    fsync: bool,
    /// The connection every write goes through (other processes wait on SQLite's lock).
    writer: std::sync::Mutex<Connection>,
    /// One group commit at a time in this process; writes queue up meanwhile and share the
    /// next one.
    write: Mutex<()>,
    queue: std::sync::Mutex<Vec<Pending>>,
    /// Partition counts of existing topics (they never change).
    partitions: std::sync::Mutex<HashMap<String, u32>>,
    /// High watermarks this process knows of (its own writes, and what its reads saw), so a
    /// consumer woken by an append to another topic need not ask SQLite.
    known: std::sync::Mutex<HashMap<(String, u32), u64>>,
    /// The newest records this process appended, for its own consumers.
    tails: Tails,
    /// Per partition, the wake-ups of the consumers in this process that read it.
    watchers: std::sync::Mutex<HashMap<(String, u32), Vec<Weak<Notify>>>>,
    /// How often an idle consumer re-checks for appends by other processes.
    poll_interval: Duration,
    /// WAL checkpoints on a thread of their own, off the appends' path.
    _checkpoints: splai_sqlite::Checkpointer,
}

impl EmbeddedLog {
    /// Open (creating when missing) the log at `path`. `fsync`: sync every commit to disk.
    pub async fn open(path: &Path, fsync: bool, poll_interval: Duration) -> Result<Self, LogError> {
        let open_err = |source: Cause| LogError::Open {
            backend: "embedded",
            source: EmbeddedError::File { path: path.to_path_buf(), source }.into(),
        };
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| open_err(e.into()))?;
        }
        let conn = connect(path, fsync).map_err(|e| open_err(e.into()))?;
        conn.execute_batch(SCHEMA).map_err(|e| open_err(e.into()))?;
        // Logs made before records had headers gain the column (NULL: no headers).
        let has_headers: bool = conn
            .query_row(
                "SELECT count(*) > 0 FROM pragma_table_info('log_records') WHERE name = 'headers'",
                [],
                |r| r.get(0),
            )
            .map_err(|e| open_err(e.into()))?;
        if !has_headers {
            conn.execute_batch("ALTER TABLE log_records ADD COLUMN headers BLOB")
                .map_err(|e| open_err(e.into()))?;
        }
        let checkpoints = splai_sqlite::Checkpointer::start(path).map_err(|e| open_err(e.into()))?;
        Ok(Self {
            inner: Arc::new(Inner {
                path: path.to_path_buf(),
                fsync,
                writer: std::sync::Mutex::new(conn),
                write: Mutex::new(()),
                queue: Default::default(),
                partitions: Default::default(),
                known: Default::default(),
                tails: Default::default(),
                watchers: Default::default(),
                poll_interval,
                _checkpoints: checkpoints,
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
            .map_err(|source| LogError::Append { topic: topic.to_string(), source })?
            .ok_or_else(|| LogError::UnknownTopic { topic: topic.to_string() })?;
        self.inner.partitions.lock().expect("partition cache lock").insert(topic.to_string(), n);
        Ok(n)
    }

    async fn topic_partitions(&self, topic: &str) -> Result<Option<u32>, Cause> {
        let topic = topic.to_string();
        let found = self
            .inner
            .on_writer(move |conn| {
                conn.query_row("SELECT partitions FROM log_topics WHERE name = ?1", [topic], |r| {
                    r.get::<_, i64>(0)
                })
                .optional()
            })
            .await??;
        Ok(found.map(|n| n as u32))
    }

    /// Each partition's next offset, as stored.
    async fn stored_watermarks(&self, topic: &str) -> Result<Vec<(u32, u64)>, Cause> {
        let topic = topic.to_string();
        Ok(self.inner.on_writer(move |conn| read_watermarks(conn, &topic)).await??)
    }
}

impl EmbeddedLog {
    /// `(partition, value)` rows of `sql` (a per-partition MIN over one topic, `?1`).
    async fn min_per_partition(&self, sql: &'static str, topic: &str) -> Result<Vec<(u32, u64)>, LogError> {
        let name = topic.to_string();
        self.inner
            .on_writer(move |conn| -> rusqlite::Result<Vec<(u32, u64)>> {
                let mut stmt = conn.prepare_cached(sql)?;
                let rows = stmt
                    .query_map([&name], |r| Ok((r.get::<_, i64>(0)? as u32, r.get::<_, i64>(1)? as u64)))?;
                rows.collect()
            })
            .await
            .map_err(|e| self.read_err(topic, e.into()))?
            .map_err(|e| self.read_err(topic, e.into()))
    }

    fn read_err(&self, topic: &str, source: Cause) -> LogError {
        LogError::Consume { group: String::new(), topics: vec![topic.into()], source }
    }

    fn delete_err(&self, topic: &str, source: Cause) -> LogError {
        LogError::Append { topic: topic.into(), source }
    }
}

fn read_watermarks(conn: &Connection, topic: &str) -> rusqlite::Result<Vec<(u32, u64)>> {
    let mut stmt = conn.prepare_cached(
        "SELECT partition, next_offset FROM log_partitions WHERE topic = ?1 ORDER BY partition",
    )?;
    let rows = stmt.query_map([topic], |r| Ok((r.get::<_, i64>(0)? as u32, r.get::<_, i64>(1)? as u64)))?;
    rows.collect()
}

#[async_trait]
impl EventLog for EmbeddedLog {
    async fn create_topics(&self, topics: &[String], partitions: u32) -> Result<(), LogError> {
        let _guard = self.inner.write.lock().await;
        for topic in topics {
            let name = topic.clone();
            self.inner
                .on_writer(move |conn| -> rusqlite::Result<()> {
                    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
                    let created = tx.execute(
                        "INSERT OR IGNORE INTO log_topics (name, partitions) VALUES (?1, ?2)",
                        params![name, partitions],
                    )?;
                    if created == 1 {
                        for p in 0..partitions {
                            tx.execute(
                                "INSERT INTO log_partitions (topic, partition, next_offset) VALUES (?1, ?2, 0)",
                                params![name, p],
                            )?;
                        }
                    }
                    tx.commit()
                })
                .await
                .map_err(Cause::from)
                .and_then(|r| r.map_err(Cause::from))
                .map_err(|source| LogError::CreateTopic { topic: topic.clone(), source })?;
        }
        Ok(())
    }

    async fn append(&self, topic: &str, records: Vec<Record>) -> Result<Vec<SourcePosition>, LogError> {
        if records.is_empty() {
            return Ok(Vec::new());
        }
        let mut placed = self.append_topics(vec![(topic.to_string(), records)]).await?;
        Ok(placed.pop().unwrap_or_default())
    }

    async fn append_topics(
        &self,
        batches: Vec<(String, Vec<Record>)>,
    ) -> Result<Vec<Vec<SourcePosition>>, LogError> {
        if batches.is_empty() {
            return Ok(Vec::new());
        }
        let mut pending = Vec::with_capacity(batches.len());
        let mut answers = Vec::with_capacity(batches.len());
        for (topic, records) in batches {
            let partitions = self.cached_partitions(&topic).await?;
            let (done, answer) = oneshot::channel();
            answers.push((topic.clone(), answer));
            pending.push(Pending::Append { topic, partitions, records, done });
        }
        // A group commit runs without an await once it has its batch, so a caller that stops
        // waiting cannot abort the others' write.
        self.inner.write(pending).await;
        let mut placed = Vec::with_capacity(answers.len());
        for (topic, answer) in answers {
            let err = |source: Cause| LogError::Append { topic: topic.clone(), source };
            placed.push(
                answer.await.map_err(|_| err("the log writer stopped".into()))?.map_err(|e| err(e.into()))?,
            );
        }
        Ok(placed)
    }

    async fn subscribe(&self, subscription: Subscription) -> Result<Box<dyn LogConsumer>, LogError> {
        let err = |source: Cause| LogError::Consume {
            group: subscription.group.clone(),
            topics: subscription.topics.clone(),
            source,
        };
        let conn = self.inner.connect().map_err(|e| err(e.into()))?;
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
                let committed: Option<i64> = conn
                    .query_row(
                        "SELECT next_offset FROM log_commits WHERE grp = ?1 AND topic = ?2 AND partition = ?3",
                        params![subscription.group, topic, partition],
                        |r| r.get(0),
                    )
                    .optional()
                    .map_err(|e| err(e.into()))?;
                let start = subscription.start.get(&(topic.clone(), partition)).copied();
                positions.push(Cursor {
                    topic: topic.clone(),
                    partition,
                    next: start.unwrap_or(committed.unwrap_or(0) as u64),
                });
            }
        }
        let appended = Arc::new(Notify::new());
        {
            let mut watchers = self.inner.watchers.lock().expect("watcher lock");
            for c in &positions {
                watchers.entry((c.topic.clone(), c.partition)).or_default().push(Arc::downgrade(&appended));
            }
        }
        Ok(Box::new(EmbeddedConsumer {
            log: self.clone(),
            appended,
            conn,
            subscription,
            cursors: positions,
            rr: 0,
            checked_at: None,
        }))
    }

    async fn high_watermarks(&self, topic: &str) -> Result<Vec<u64>, LogError> {
        let rows = self.stored_watermarks(topic).await.map_err(|source| LogError::Consume {
            group: String::new(),
            topics: vec![topic.into()],
            source,
        })?;
        if rows.is_empty() {
            return Err(LogError::UnknownTopic { topic: topic.to_string() });
        }
        Ok(rows.iter().map(|(_, next)| *next).collect())
    }

    async fn log_starts(&self, topic: &str) -> Result<Vec<u64>, LogError> {
        let ends = self.high_watermarks(topic).await?;
        let name = topic.to_string();
        // One MIN per partition: answered from the primary key's first entry, where a GROUP BY
        // over the topic scanned every record (most of a scheduler's start from a snapshot).
        self.inner
            .on_writer(move |conn| -> rusqlite::Result<Vec<u64>> {
                let mut stmt = conn.prepare_cached(
                    "SELECT MIN(offset) FROM log_records WHERE topic = ?1 AND partition = ?2",
                )?;
                let mut starts = Vec::with_capacity(ends.len());
                for (partition, end) in ends.into_iter().enumerate() {
                    let first: Option<i64> = stmt.query_row(params![name, partition as i64], |r| r.get(0))?;
                    starts.push(first.map_or(end, |f| f as u64));
                }
                Ok(starts)
            })
            .await
            .map_err(|e| self.read_err(topic, e.into()))?
            .map_err(|e| self.read_err(topic, e.into()))
    }

    async fn delete_before(&self, topic: &str, partition: u32, offset: u64) -> Result<u64, LogError> {
        let name = topic.to_string();
        let deleted = self
            .inner
            .on_writer(move |conn| {
                conn.execute(
                    "DELETE FROM log_records WHERE topic = ?1 AND partition = ?2 AND offset < ?3",
                    params![name, partition, offset as i64],
                )
            })
            .await
            .map_err(|e| self.delete_err(topic, e.into()))?
            .map_err(|e| self.delete_err(topic, e.into()))?;
        self.inner.tails.drop_before(topic, partition, offset);
        Ok(deleted as u64)
    }

    async fn committed_floor(&self, topic: &str) -> Result<Vec<Option<u64>>, LogError> {
        let n = self.partitions(topic).await?;
        let floors = self
            .min_per_partition(
                "SELECT partition, MIN(next_offset) FROM log_commits WHERE topic = ?1 GROUP BY partition",
                topic,
            )
            .await?;
        let mut out = vec![None; n as usize];
        for (partition, floor) in floors {
            if let Some(slot) = out.get_mut(partition as usize) {
                *slot = Some(floor);
            }
        }
        Ok(out)
    }

    async fn partitions(&self, topic: &str) -> Result<u32, LogError> {
        self.topic_partitions(topic)
            .await
            .map_err(|source| LogError::Consume { group: String::new(), topics: vec![topic.into()], source })?
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
    /// Woken by appends in this process to the partitions it reads.
    appended: Arc<Notify>,
    /// This consumer's own read connection.
    conn: Connection,
    subscription: Subscription,
    cursors: Vec<Cursor>,
    /// Round-robin start, so one busy partition cannot starve the others.
    rr: usize,
    /// When the high watermarks were last read from the database.
    checked_at: Option<Instant>,
}

impl EmbeddedConsumer {
    fn err(&self, e: rusqlite::Error) -> LogError {
        LogError::Consume {
            group: self.subscription.group.clone(),
            topics: self.subscription.topics.clone(),
            source: e.into(),
        }
    }

    fn fetch(&mut self, max: usize) -> Result<Vec<Delivered>, LogError> {
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
                for (partition, next) in read_watermarks(&self.conn, topic).map_err(|e| self.err(e))? {
                    high.insert((topic.clone(), partition), next);
                }
            }
            self.log.inner.learn(high.iter().map(|(k, v)| (k.clone(), *v)));
            self.checked_at = Some(Instant::now());
        }
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT offset, key, payload, ts_ms, headers FROM log_records
                 WHERE topic = ?1 AND partition = ?2 AND offset >= ?3 ORDER BY offset LIMIT ?4",
            )
            .map_err(|e| self.err(e))?;
        let mut out = Vec::new();
        let n = self.cursors.len();
        // A fair share per partition with something to read: a backlog comes out of every
        // partition at once, not one partition after another (a scheduler catching up merges
        // them in time order and would otherwise hold whole topics).
        let waiting = self
            .cursors
            .iter()
            .filter(|c| high.get(&(c.topic.clone(), c.partition)).is_some_and(|hw| *hw > c.next))
            .count();
        let share = max.div_ceil(waiting.max(1)).max(1);
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
            let topic = cursor.topic.clone();
            let partition = cursor.partition;
            let take = share.min(max - out.len());
            // What this process appended comes from memory; the rest (another process's
            // appends, or records the tail no longer keeps) from the file.
            let recent = self.log.inner.tails.read(&topic, partition, cursor.next, take);
            if let Some(last) = recent.last() {
                self.cursors[idx].next = last.position.offset + 1;
            }
            let (take, from) = (take - recent.len(), self.cursors[idx].next);
            out.extend(recent);
            if take == 0 || from >= hw {
                continue;
            }
            let rows = stmt
                .query_map(params![topic, partition, from as i64, take as i64], |r| {
                    Ok(Delivered {
                        position: SourcePosition {
                            topic: topic.clone(),
                            partition,
                            offset: r.get::<_, i64>(0)? as u64,
                        },
                        key: r.get(1)?,
                        payload: r.get(2)?,
                        ts_ms: r.get::<_, i64>(3)? as u64,
                        headers: super::headers::decode(r.get(4)?),
                    })
                })
                .and_then(|rows| rows.collect::<Result<Vec<_>, _>>())
                .map_err(|e| self.err(e))?;
            if let Some(last) = rows.last() {
                self.cursors[idx].next = last.position.offset + 1;
            }
            out.extend(rows);
        }
        self.rr = self.rr.wrapping_add(1);
        Ok(out)
    }
}

#[async_trait]
impl LogConsumer for EmbeddedConsumer {
    async fn poll(&mut self, max: usize, wait: Duration) -> Result<Vec<Delivered>, LogError> {
        let deadline = Instant::now() + wait;
        let appended = self.appended.clone();
        let poll_interval = self.log.inner.poll_interval;
        loop {
            // Register interest before reading, so an append between the read and the wait
            // is not missed.
            let notified = appended.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            let batch = self.fetch(max.max(1))?;
            let now = Instant::now();
            if !batch.is_empty() || now >= deadline {
                return Ok(batch);
            }
            let nap = (deadline - now).min(poll_interval);
            let _ = tokio::time::timeout(nap, notified).await;
        }
    }

    async fn commit(&mut self, processed: &[SourcePosition]) -> Result<(), LogError> {
        let points = commit_points(processed);
        let Some(first) = points.first().cloned() else { return Ok(()) };
        let group = self.subscription.group.clone();
        let (done, answer) = oneshot::channel();
        // All partitions move together, or none does, in the next group commit.
        self.log.inner.write([Pending::Commit { group, points, done }]).await;
        let result = match answer.await {
            Ok(written) => written.map_err(Cause::from),
            Err(_) => Err("the log writer stopped".into()),
        };
        result.map_err(|source| LogError::Commit {
            group: self.subscription.group.clone(),
            topic: first.topic.clone(),
            partition: first.partition,
            offset: first.offset,
            source,
        })
    }
}
