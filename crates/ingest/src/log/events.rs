//! Envelopes over the raw log. [`EventReader`] never stops on a bad record: it appends a
//! `DeadLetter` (source position, reason, original payload) to the dead-letter topic, durably,
//! and moves on; the bad record's position is committed with the batch it arrived in.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use splai_events::{DeadLetter, Envelope, Event, PayloadEncoding, SourcePosition, Topic, decode, encode};

use super::{EventLog, LogConsumer, LogError, Record, Subscription, now_ms};
use crate::intake::{Denied, Gate, Principal};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;

/// Topics whose records must pass the [`Gate`] when auth is on.
const GATED: [Topic; 2] = [Topic::Jobs, Topic::Control];

/// Appends envelopes to the topic their event belongs on.
#[derive(Debug, Clone)]
pub struct EventWriter {
    log: Arc<dyn EventLog>,
    prefix: String,
    /// Signs what this writer puts on gated topics (a gateway with auth on).
    signer: Option<Arc<Gate>>,
}

impl EventWriter {
    pub fn new(log: Arc<dyn EventLog>, prefix: impl Into<String>) -> Self {
        Self { log, prefix: prefix.into(), signer: None }
    }

    /// Sign every record this writer appends to `jobs` and `control` (`None`: auth is off).
    pub fn signing(mut self, gate: Option<Arc<Gate>>) -> Self {
        self.signer = gate;
        self
    }

    /// The physical topic name.
    pub fn topic(&self, topic: Topic) -> String {
        topic.with_prefix(&self.prefix)
    }

    /// Create every SPLAI topic (idempotent).
    pub async fn create_all_topics(&self, partitions: u32) -> Result<(), LogError> {
        let topics: Vec<String> = Topic::ALL.iter().map(|t| self.topic(*t)).collect();
        self.log.create_topics(&topics, partitions).await
    }

    /// Append envelopes, each to its event's topic, keyed by [`Envelope::key`]. Order is kept
    /// per key. Returns positions in input order.
    pub async fn append(&self, envelopes: &[Envelope]) -> Result<Vec<SourcePosition>, LogError> {
        let mut positions = vec![None; envelopes.len()];
        // Assignments on their own, started first: in the embedded log their transaction commits
        // (and wakes the executors) before the rest is written, so work starts while the
        // scheduler's state changes are still being appended. The other topics in one call: one
        // transaction in the embedded log. To Kafka both go out together.
        let (mut first, mut rest) = ((Vec::new(), Vec::new()), (Vec::new(), Vec::new()));
        for topic in Topic::ALL {
            let (idx, records): (Vec<usize>, Vec<Record>) = envelopes
                .iter()
                .enumerate()
                .filter(|(_, e)| e.event.topic() == topic)
                .map(|(i, e)| {
                    let mut record = Record::new(e.key(), encode(e));
                    if let Some(gate) = self.signer.as_ref().filter(|_| GATED.contains(&topic)) {
                        record.headers.push(gate.signature(&record.payload));
                    }
                    (i, record)
                })
                .unzip();
            if records.is_empty() {
                continue;
            }
            let (indices, batches) = if topic == Topic::Assignments { &mut first } else { &mut rest };
            indices.push(idx);
            batches.push((self.topic(topic), records));
        }
        let (assigned, others) =
            futures::future::try_join(self.log.append_topics(first.1), self.log.append_topics(rest.1))
                .await?;
        for (idx, placed) in first.0.into_iter().chain(rest.0).zip(assigned.into_iter().chain(others)) {
            for (i, p) in idx.into_iter().zip(placed) {
                positions[i] = Some(p);
            }
        }
        Ok(positions.into_iter().map(|p| p.expect("every envelope was placed")).collect())
    }

    /// Append raw bytes (tests and foreign producers' view of the wire).
    pub async fn append_raw(
        &self,
        topic: Topic,
        key: &str,
        payload: Vec<u8>,
    ) -> Result<SourcePosition, LogError> {
        let mut placed = self.log.append(&self.topic(topic), vec![Record::new(key, payload)]).await?;
        Ok(placed.remove(0))
    }

    pub fn log(&self) -> &Arc<dyn EventLog> {
        &self.log
    }
}

/// What one poll produced.
#[derive(Debug, Default)]
pub struct EventBatch {
    /// Decoded envelopes with their positions, in log order per partition.
    pub events: Vec<(SourcePosition, Envelope)>,
    /// Records that did not decode and went to `dead-letter`.
    pub dead_lettered: Vec<SourcePosition>,
    /// Every position the poll consumed (commit these once the effect is durable).
    pub positions: Vec<SourcePosition>,
    /// Records of gated topics the [`Gate`] refused; the reader's owner answers them.
    pub denied: Vec<(SourcePosition, Envelope, Denied)>,
    /// Accepted records a Kafka producer sent with an API token (not the gateway's signature):
    /// the scheduler applies the tenant's admission limits to these, as the gateway did to the
    /// rest.
    pub from_producers: std::collections::HashSet<SourcePosition>,
}

/// Reads envelopes as a consumer group.
#[derive(Debug)]
pub struct EventReader {
    consumer: Box<dyn LogConsumer>,
    writer: EventWriter,
    /// With auth on: the check records of `jobs` and `control` must pass, and those topics' names.
    gate: Option<(Arc<Gate>, Vec<String>)>,
    /// The furthest offset consumed per partition and not committed yet, for [`Self::commit_every`].
    pending: BTreeMap<(String, u32), u64>,
    last_commit: Option<std::time::Instant>,
}

impl EventReader {
    /// Subscribe `group` to these SPLAI topics.
    pub async fn subscribe(
        writer: EventWriter,
        group: &str,
        topics: &[Topic],
        partitions: Option<Vec<u32>>,
    ) -> Result<Self, LogError> {
        Self::subscribe_from(writer, group, topics, partitions, BTreeMap::new()).await
    }

    /// [`Self::subscribe`] to these partitions, beginning at `start`'s offsets where it names one
    /// (full topic names).
    pub async fn subscribe_from(
        writer: EventWriter,
        group: &str,
        topics: &[Topic],
        partitions: Option<Vec<u32>>,
        start: BTreeMap<(String, u32), u64>,
    ) -> Result<Self, LogError> {
        let subscription = Subscription {
            group: group.to_string(),
            topics: topics.iter().map(|t| writer.topic(*t)).collect(),
            partitions,
            start,
        };
        let consumer = writer.log.subscribe(subscription).await?;
        Ok(Self { consumer, writer, gate: None, pending: BTreeMap::new(), last_commit: None })
    }

    /// Every envelope on `topic` from its beginning up to its end now (through `gate`: with auth
    /// on, only those it accepts), in order per partition; `None` when that takes longer than
    /// `within`. Reads each partition directly (no group to join, nothing committed).
    pub async fn read_to_end(
        writer: &EventWriter,
        topic: Topic,
        gate: Option<Arc<Gate>>,
        within: Duration,
    ) -> Result<Option<Vec<Envelope>>, LogError> {
        let name = writer.topic(topic);
        let ends = writer.log.high_watermarks(&name).await?;
        let partitions = (0..ends.len() as u32).collect();
        let group = format!("{name}.read-to-end");
        let mut reader =
            Self::subscribe(writer.clone(), &group, &[topic], Some(partitions)).await?.gated(gate);
        let mut open: Vec<bool> = ends.iter().map(|end| *end > 0).collect();
        let deadline = std::time::Instant::now() + within;
        let mut found = Vec::new();
        while open.contains(&true) {
            if std::time::Instant::now() > deadline {
                return Ok(None);
            }
            let batch = reader.poll(10_000, Duration::from_millis(200)).await?;
            for p in &batch.positions {
                if p.offset + 1 >= ends[p.partition as usize] {
                    open[p.partition as usize] = false;
                }
            }
            found.extend(batch.events.into_iter().map(|(_, e)| e));
        }
        Ok(Some(found))
    }

    /// Check every `jobs`/`control` record against `gate` (`None`: auth is off, accept all).
    pub fn gated(mut self, gate: Option<Arc<Gate>>) -> Self {
        self.gate = gate.map(|g| (g, GATED.iter().map(|t| self.writer.topic(*t)).collect()));
        self
    }

    /// Up to `max` records, waiting at most `wait` for the first.
    pub async fn poll(&mut self, max: usize, wait: Duration) -> Result<EventBatch, LogError> {
        let records = self.consumer.poll(max, wait).await?;
        let mut batch = EventBatch::default();
        let mut dead = Vec::new();
        for record in records {
            batch.positions.push(record.position.clone());
            match decode(&record.payload) {
                Ok(envelope) => match &self.gate {
                    Some((gate, topics)) if topics.contains(&record.position.topic) => {
                        match gate.check(&record.payload, &record.headers, &envelope) {
                            Ok(principal) => {
                                if matches!(principal, Principal::Token(_)) {
                                    batch.from_producers.insert(record.position.clone());
                                }
                                batch.events.push((record.position, envelope))
                            }
                            Err(denied) => batch.denied.push((record.position, envelope, denied)),
                        }
                    }
                    _ => batch.events.push((record.position, envelope)),
                },
                Err(error) => {
                    tracing::warn!(
                        topic = %record.position.topic, partition = record.position.partition,
                        offset = record.position.offset, %error, "undecodable record sent to dead-letter"
                    );
                    let (payload, payload_encoding) = match String::from_utf8(record.payload) {
                        Ok(text) => (text, PayloadEncoding::Utf8),
                        Err(e) => (BASE64.encode(e.as_bytes()), PayloadEncoding::Base64),
                    };
                    let p = &record.position;
                    dead.push(Envelope::new(
                        format!("dl:{}:{}:{}", p.topic, p.partition, p.offset),
                        now_ms(),
                        "system",
                        Event::DeadLetter(DeadLetter {
                            source: Some(p.clone()),
                            job_id: None,
                            task_id: None,
                            reason: error.to_string(),
                            payload,
                            payload_encoding,
                        }),
                    ));
                    batch.dead_lettered.push(record.position);
                }
            }
        }
        if !dead.is_empty() {
            // Durable before the caller can commit past the bad records.
            self.writer.append(&dead).await?;
        }
        Ok(batch)
    }

    /// Commit everything `batch` consumed.
    pub async fn commit(&mut self, batch: &EventBatch) -> Result<(), LogError> {
        self.consumer.commit(&batch.positions).await
    }

    /// Take note that `batch` was consumed and commit what is noted at most once per `every`.
    /// For readers whose effects say themselves how far they got (a projection with its own
    /// offsets, an executor that skips what came before it): the committed position only spares
    /// re-reading, and a commit per batch was a log write (to Kafka, a round trip) per poll.
    pub async fn commit_every(&mut self, batch: &EventBatch, every: Duration) -> Result<(), LogError> {
        for p in &batch.positions {
            let furthest = self.pending.entry((p.topic.clone(), p.partition)).or_insert(p.offset);
            *furthest = (*furthest).max(p.offset);
        }
        if self.last_commit.is_some_and(|at| at.elapsed() < every) {
            return Ok(());
        }
        self.flush_commits().await
    }

    /// Commit whatever [`Self::commit_every`] noted and has not committed yet.
    pub async fn flush_commits(&mut self) -> Result<(), LogError> {
        self.last_commit = Some(std::time::Instant::now());
        if self.pending.is_empty() {
            return Ok(());
        }
        let points: Vec<SourcePosition> = self
            .pending
            .iter()
            .map(|((topic, partition), offset)| SourcePosition {
                topic: topic.clone(),
                partition: *partition,
                offset: *offset,
            })
            .collect();
        self.consumer.commit(&points).await?;
        self.pending.clear();
        Ok(())
    }
}
