//! The event log on Kafka (any broker speaking the protocol; tested against tansu).
//!
//! Producer: `acks=all`, batched by `linger.ms`, idempotent only when `idempotence` is on (tansu
//! 0.6 loses batches an idempotent producer retries after a broker restart; off, a retry may
//! store a record twice, which consumers de-duplicate by envelope id, and one request in flight
//! per connection keeps partitions in order); we pick the partition ourselves with
//! [`partition_for`] so keys land where the embedded log puts them. Consumers: manual commits
//! only (`enable.auto.commit=false`, `enable.auto.offset.store=false`), a low session timeout
//! (tansu holds a group join for about half of it), and `auto.offset.reset=earliest`.
//!
//! Resuming: tansu 0.6's memory/object-store engine answers a fetch that starts inside a record
//! batch with the *next* batch, so a consumer resuming at a committed offset in the middle of a
//! batch would silently skip records. With `rescan_on_resume` (the default) a consumer starts its
//! partitions from the beginning and drops records below the group's committed offset, which is
//! correct on every broker; turn it off on brokers that serve mid-batch fetches (Apache Kafka,
//! Redpanda) for faster restarts. See `docs/design/kafka-on-tansu.md`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use futures::FutureExt;
use rdkafka::ClientContext;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer, ConsumerContext, Rebalance, StreamConsumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::Message;
use rdkafka::message::{Header, Headers as _, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord, Producer};
use rdkafka::topic_partition_list::{Offset, TopicPartitionList};
use splai_config::KafkaSettings;
use splai_events::SourcePosition;

use super::{
    Cause, Delivered, EventLog, LogConsumer, LogError, Record, Subscription, commit_points, partition_for,
};

/// librdkafka backs off reconnecting up to 10 s by default; after a broker restart that left
/// every client idle for seconds. One second keeps recovery quick at little cost.
const RECONNECT_BACKOFF_MAX_MS: &str = "1000";

#[derive(Clone)]
pub struct KafkaLog {
    settings: KafkaSettings,
    replication: i32,
    producer: FutureProducer,
    admin: Arc<AdminClient<DefaultClientContext>>,
    /// Partition counts seen in metadata; topics never shrink, so a count once seen stays valid.
    known: Arc<Mutex<HashMap<String, u32>>>,
}

impl std::fmt::Debug for KafkaLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KafkaLog").field("brokers", &self.settings.brokers).finish()
    }
}

impl KafkaLog {
    pub fn connect(settings: &KafkaSettings, replication: u16) -> Result<Self, LogError> {
        let open_err = |e: KafkaError| LogError::Open { backend: "kafka", source: e.into() };
        let producer: FutureProducer = ClientConfig::new()
            .set("bootstrap.servers", &settings.brokers)
            .set("enable.idempotence", settings.idempotence.to_string())
            // Without idempotence, a retry may overtake later batches unless one is in flight.
            .set("max.in.flight.requests.per.connection", if settings.idempotence { "5" } else { "1" })
            .set("acks", "all")
            .set("linger.ms", settings.linger_ms.to_string())
            .set("batch.size", settings.batch_size.to_string())
            .set("message.timeout.ms", settings.delivery_timeout_ms.to_string())
            .set("queue.buffering.max.messages", "1000000")
            .set("queue.buffering.max.kbytes", "1048576")
            .set("reconnect.backoff.max.ms", RECONNECT_BACKOFF_MAX_MS)
            .create()
            .map_err(open_err)?;
        let admin: AdminClient<DefaultClientContext> =
            ClientConfig::new().set("bootstrap.servers", &settings.brokers).create().map_err(open_err)?;
        Ok(Self {
            settings: settings.clone(),
            replication: i32::from(replication),
            producer,
            admin: Arc::new(admin),
            known: Arc::default(),
        })
    }

    fn metadata_partitions(&self, topic: &str) -> Result<Option<u32>, KafkaError> {
        let metadata = self.producer.client().fetch_metadata(Some(topic), Duration::from_secs(10))?;
        Ok(metadata
            .topics()
            .iter()
            .find(|t| t.name() == topic && t.error().is_none() && !t.partitions().is_empty())
            .map(|t| t.partitions().len() as u32))
    }

    /// End offsets per partition. tansu 0.6 reports one past the *base offset of the last batch*
    /// as the high watermark, so read from the record before it (a batch start on tansu, the last
    /// record on a broker that reports the true end) to the partition's end, and take the last
    /// offset + 1.
    fn true_ends(&self, topic: &str, partitions: u32) -> Result<Vec<u64>, KafkaError> {
        let client = self.producer.client();
        let mut ends = Vec::with_capacity(partitions as usize);
        for p in 0..partitions as i32 {
            ends.push(client.fetch_watermarks(topic, p, Duration::from_secs(10))?.1.max(0) as u64);
        }
        let probe: BaseConsumer<EofIsExpected> = ClientConfig::new()
            .set("bootstrap.servers", &self.settings.brokers)
            .set("group.id", format!("splai-watermark-probe-{}", std::process::id()))
            .set("enable.auto.commit", "false")
            .set("enable.partition.eof", "true")
            .set("fetch.wait.max.ms", "10")
            .create_with_context(EofIsExpected)?;
        let mut tpl = TopicPartitionList::new();
        let mut at_eof: Vec<bool> = ends.iter().map(|end| *end == 0).collect();
        for (p, end) in ends.iter().enumerate().filter(|(_, end)| **end > 0) {
            tpl.add_partition_offset(topic, p as i32, Offset::Offset(*end as i64 - 1))?;
        }
        if tpl.count() == 0 {
            return Ok(ends);
        }
        probe.assign(&tpl)?;
        let deadline = Instant::now() + Duration::from_secs(5);
        while at_eof.iter().any(|e| !e) && Instant::now() < deadline {
            match probe.poll(Duration::from_millis(100)) {
                Some(Ok(m)) => {
                    let p = m.partition() as usize;
                    ends[p] = ends[p].max(m.offset() as u64 + 1);
                }
                Some(Err(KafkaError::PartitionEOF(p))) => at_eof[p as usize] = true,
                Some(Err(e)) => return Err(e),
                None => {}
            }
        }
        Ok(ends)
    }

    async fn partitions_of(&self, topic: &str) -> Result<Option<u32>, KafkaError> {
        if let Some(n) = self.known.lock().expect("partition cache lock").get(topic) {
            return Ok(Some(*n));
        }
        let this = self.clone();
        let name = topic.to_string();
        let found =
            tokio::task::spawn_blocking(move || this.metadata_partitions(&name)).await.unwrap_or(Ok(None))?;
        if let Some(n) = found {
            self.known.lock().expect("partition cache lock").insert(topic.to_string(), n);
        }
        Ok(found)
    }
}

#[async_trait]
impl EventLog for KafkaLog {
    async fn create_topics(&self, topics: &[String], partitions: u32) -> Result<(), LogError> {
        let new: Vec<NewTopic<'_>> = topics
            .iter()
            .map(|t| NewTopic::new(t, partitions as i32, TopicReplication::Fixed(self.replication)))
            .collect();
        let results = self
            .admin
            .create_topics(new.iter(), &AdminOptions::new().operation_timeout(Some(Duration::from_secs(10))))
            .await
            .map_err(|e| LogError::CreateTopic { topic: topics.join(","), source: e.into() })?;
        for result in results {
            match result {
                Ok(_) | Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
                Err((topic, code)) => return Err(LogError::CreateTopic { topic, source: code.into() }),
            }
        }
        // Wait until metadata shows every topic, so a producer right after does not race it.
        for topic in topics {
            let mut tries = 0;
            loop {
                match self.partitions_of(topic).await {
                    Ok(Some(_)) => break,
                    _ if tries < 100 => {
                        tries += 1;
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                    other => {
                        return Err(LogError::CreateTopic {
                            topic: topic.clone(),
                            source: format!("not visible in metadata after creation: {other:?}").into(),
                        });
                    }
                }
            }
        }
        Ok(())
    }

    async fn append(&self, topic: &str, records: Vec<Record>) -> Result<Vec<SourcePosition>, LogError> {
        let err = |source: Cause| LogError::Append { topic: topic.to_string(), source };
        let partitions = self
            .partitions_of(topic)
            .await
            .map_err(|e| err(e.into()))?
            .ok_or_else(|| LogError::UnknownTopic { topic: topic.to_string() })?;
        let mut pending = Vec::with_capacity(records.len());
        for record in &records {
            let partition = partition_for(&record.key, partitions) as i32;
            let mut future_record = FutureRecord::to(topic)
                .key(record.key.as_bytes())
                .payload(&record.payload)
                .partition(partition);
            if !record.headers.is_empty() {
                let headers = record.headers.iter().fold(OwnedHeaders::new(), |h, (key, value)| {
                    h.insert(Header { key, value: Some(value.as_slice()) })
                });
                future_record = future_record.headers(headers);
            }
            loop {
                match self.producer.send_result(future_record) {
                    Ok(delivery) => {
                        pending.push(delivery);
                        break;
                    }
                    Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), back)) => {
                        // The local queue is full: let librdkafka drain it, then retry.
                        future_record = back;
                        self.producer.poll(Duration::from_millis(1));
                        tokio::time::sleep(Duration::from_millis(1)).await;
                    }
                    Err((e, _)) => return Err(err(e.into())),
                }
            }
        }
        let mut positions = Vec::with_capacity(pending.len());
        for delivery in pending {
            match delivery.await {
                Ok(Ok(d)) => positions.push(SourcePosition {
                    topic: topic.to_string(),
                    partition: d.partition as u32,
                    offset: d.offset as u64,
                }),
                Ok(Err((e, _))) => return Err(err(e.into())),
                Err(_) => return Err(err("producer dropped the delivery".into())),
            }
        }
        Ok(positions)
    }

    async fn subscribe(&self, subscription: Subscription) -> Result<Box<dyn LogConsumer>, LogError> {
        let err = |source: Cause| LogError::Consume {
            group: subscription.group.clone(),
            topics: subscription.topics.clone(),
            source,
        };
        let session = self.settings.session_timeout_ms;
        let context = ResumeContext { rescan: self.settings.rescan_on_resume, skip: Arc::default() };
        let skip = context.skip.clone();
        let consumer: StreamConsumer<ResumeContext> = ClientConfig::new()
            .set("bootstrap.servers", &self.settings.brokers)
            .set("group.id", &subscription.group)
            .set("enable.auto.commit", "false")
            .set("enable.auto.offset.store", "false")
            .set("auto.offset.reset", "earliest")
            .set("session.timeout.ms", session.to_string())
            .set("heartbeat.interval.ms", (session / 3).max(100).to_string())
            .set("enable.partition.eof", "false")
            .set("fetch.wait.max.ms", self.settings.fetch_wait_ms.to_string())
            .set("reconnect.backoff.max.ms", RECONNECT_BACKOFF_MAX_MS)
            .create_with_context(context)
            .map_err(|e| err(e.into()))?;
        for topic in &subscription.topics {
            if self.partitions_of(topic).await.map_err(|e| err(e.into()))?.is_none() {
                return Err(LogError::UnknownTopic { topic: topic.clone() });
            }
        }
        match &subscription.partitions {
            None => {
                let topics: Vec<&str> = subscription.topics.iter().map(String::as_str).collect();
                consumer.subscribe(&topics).map_err(|e| err(e.into()))?;
            }
            Some(parts) => {
                let mut tpl = TopicPartitionList::new();
                let mut given = TopicPartitionList::new();
                for topic in &subscription.topics {
                    for p in parts {
                        match subscription.start.get(&(topic.clone(), *p)) {
                            Some(offset) => {
                                given.add_partition_offset(topic, *p as i32, Offset::Offset(*offset as i64))
                            }
                            // `Stored`: start from the group's committed offset, else auto.offset.reset.
                            None => tpl.add_partition_offset(topic, *p as i32, Offset::Stored),
                        }
                        .map_err(|e| err(e.into()))?;
                    }
                }
                let mut tpl = if self.settings.rescan_on_resume && tpl.count() > 0 {
                    let committed = consumer
                        .committed_offsets(tpl, Duration::from_secs(10))
                        .map_err(|e| err(e.into()))?;
                    rescan_plan(&committed, &skip)
                } else {
                    tpl
                };
                // A given offset is a committed one in all but name: with `rescan_on_resume`,
                // read from the beginning and drop what lies below it (tansu's mid-batch fetch).
                let given = if self.settings.rescan_on_resume { rescan_plan(&given, &skip) } else { given };
                for e in given.elements() {
                    tpl.add_partition_offset(e.topic(), e.partition(), e.offset())
                        .map_err(|e| err(e.into()))?;
                }
                consumer.assign(&tpl).map_err(|e| err(e.into()))?;
            }
        }
        Ok(Box::new(KafkaConsumer { consumer: Arc::new(consumer), subscription, skip }))
    }

    async fn high_watermarks(&self, topic: &str) -> Result<Vec<u64>, LogError> {
        let n = self.partitions(topic).await?;
        let this = self.clone();
        let name = topic.to_string();
        let err =
            |source: Cause| LogError::Consume { group: String::new(), topics: vec![topic.into()], source };
        tokio::task::spawn_blocking(move || this.true_ends(&name, n))
            .await
            .map_err(|e| err(e.into()))?
            .map_err(|e| err(e.into()))
    }

    async fn log_starts(&self, topic: &str) -> Result<Vec<u64>, LogError> {
        let n = self.partitions(topic).await?;
        let client = self.producer.clone();
        let name = topic.to_string();
        let err =
            |source: Cause| LogError::Consume { group: String::new(), topics: vec![topic.into()], source };
        tokio::task::spawn_blocking(move || {
            (0..n as i32)
                .map(|p| {
                    Ok(client.client().fetch_watermarks(&name, p, Duration::from_secs(10))?.0.max(0) as u64)
                })
                .collect::<Result<Vec<u64>, KafkaError>>()
        })
        .await
        .map_err(|e| err(e.into()))?
        .map_err(|e| err(e.into()))
    }

    async fn delete_before(&self, topic: &str, partition: u32, offset: u64) -> Result<u64, LogError> {
        let err = |source: Cause| LogError::Append { topic: topic.into(), source };
        let before = self.log_starts(topic).await?.get(partition as usize).copied().unwrap_or(0);
        let mut tpl = TopicPartitionList::new();
        tpl.add_partition_offset(topic, partition as i32, Offset::Offset(offset as i64))
            .map_err(|e| err(e.into()))?;
        let result = self
            .admin
            .delete_records(&tpl, &AdminOptions::new().operation_timeout(Some(Duration::from_secs(10))))
            .await
            .map_err(|e| err(e.into()))?;
        for e in result.elements() {
            e.error().map_err(|e| err(e.into()))?;
        }
        Ok(offset.saturating_sub(before))
    }

    async fn committed_floor(&self, topic: &str) -> Result<Vec<Option<u64>>, LogError> {
        // The broker's retention deletes regardless of consumers; nothing to bound here.
        Ok(vec![None; self.partitions(topic).await? as usize])
    }

    async fn partitions(&self, topic: &str) -> Result<u32, LogError> {
        self.partitions_of(topic)
            .await
            .map_err(|e| LogError::Consume {
                group: String::new(),
                topics: vec![topic.into()],
                source: e.into(),
            })?
            .ok_or_else(|| LogError::UnknownTopic { topic: topic.to_string() })
    }
}

/// The watermark probe reads to the end on purpose: reaching it is not an error worth logging.
struct EofIsExpected;

impl ClientContext for EofIsExpected {
    fn error(&self, error: KafkaError, reason: &str) {
        // librdkafka reports it per partition, or as a global error naming the code.
        let eof = matches!(
            error,
            KafkaError::PartitionEOF(_) | KafkaError::Global(rdkafka::types::RDKafkaErrorCode::PartitionEOF)
        );
        if !eof {
            tracing::error!(%error, reason, "librdkafka (watermark probe)");
        }
    }
}

impl ConsumerContext for EofIsExpected {}

/// Committed offsets below which records are dropped after a rescan, per (topic, partition).
type SkipBelow = Arc<Mutex<HashMap<(String, i32), i64>>>;

struct ResumeContext {
    rescan: bool,
    skip: SkipBelow,
}

impl ClientContext for ResumeContext {}

impl ConsumerContext for ResumeContext {
    fn post_rebalance(&self, base_consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        match rebalance {
            Rebalance::Assign(tpl) if self.rescan && tpl.count() > 0 => {
                match base_consumer.committed_offsets((*tpl).clone(), Duration::from_secs(10)) {
                    Ok(committed) => {
                        let plan = rescan_plan(&committed, &self.skip);
                        if let Err(error) = base_consumer.assign(&plan) {
                            tracing::error!(%error, "re-assigning partitions for a rescan failed");
                        }
                    }
                    Err(error) => {
                        tracing::error!(%error, "reading committed offsets after a rebalance failed")
                    }
                }
            }
            Rebalance::Revoke(tpl) => {
                let mut skip = self.skip.lock().expect("skip map lock");
                for e in tpl.elements() {
                    skip.remove(&(e.topic().to_string(), e.partition()));
                }
            }
            _ => {}
        }
    }
}

/// Start every partition at the beginning and remember its committed offset to skip up to.
fn rescan_plan(committed: &TopicPartitionList, skip: &SkipBelow) -> TopicPartitionList {
    let mut plan = TopicPartitionList::new();
    let mut skip = skip.lock().expect("skip map lock");
    for e in committed.elements() {
        let key = (e.topic().to_string(), e.partition());
        match e.offset() {
            Offset::Offset(c) if c > 0 => {
                skip.insert(key, c);
            }
            _ => {
                skip.remove(&key);
            }
        }
        let _ = plan.add_partition_offset(e.topic(), e.partition(), Offset::Beginning);
    }
    plan
}

struct KafkaConsumer {
    consumer: Arc<StreamConsumer<ResumeContext>>,
    subscription: Subscription,
    skip: SkipBelow,
}

impl std::fmt::Debug for KafkaConsumer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KafkaConsumer").field("subscription", &self.subscription).finish()
    }
}

/// Errors a consumer rides out: the broker went away or is restarting (librdkafka retries).
fn transient(e: &KafkaError) -> bool {
    use RDKafkaErrorCode as C;
    matches!(
        e,
        KafkaError::MessageConsumption(
            C::BrokerTransportFailure
                | C::AllBrokersDown
                | C::OperationTimedOut
                | C::RequestTimedOut
                | C::NetworkException
                | C::NotCoordinator
                | C::CoordinatorNotAvailable
                | C::CoordinatorLoadInProgress
                | C::LeaderNotAvailable
                | C::NotLeaderForPartition
                | C::Resolve
        )
    )
}

fn delivered(m: &rdkafka::message::BorrowedMessage<'_>) -> Delivered {
    Delivered {
        position: SourcePosition {
            topic: m.topic().to_string(),
            partition: m.partition() as u32,
            offset: m.offset() as u64,
        },
        key: m.key().map(|k| String::from_utf8_lossy(k).into_owned()),
        payload: m.payload().map(<[u8]>::to_vec).unwrap_or_default(),
        headers: m
            .headers()
            .map(|h| {
                h.iter()
                    .map(|x| (x.key.to_string(), x.value.map(<[u8]>::to_vec).unwrap_or_default()))
                    .collect()
            })
            .unwrap_or_default(),
        ts_ms: m.timestamp().to_millis().unwrap_or(0).max(0) as u64,
    }
}

#[async_trait]
impl LogConsumer for KafkaConsumer {
    async fn poll(&mut self, max: usize, wait: Duration) -> Result<Vec<Delivered>, LogError> {
        let err = |e: KafkaError| LogError::Consume {
            group: self.subscription.group.clone(),
            topics: self.subscription.topics.clone(),
            source: e.into(),
        };
        let deadline = Instant::now() + wait;
        let mut out = Vec::new();
        loop {
            let remaining = deadline.saturating_duration_since(Instant::now());
            match tokio::time::timeout(remaining, self.consumer.recv()).await {
                Err(_) => return Ok(out),
                Ok(Err(e)) if transient(&e) => {
                    // The broker is restarting or unreachable: librdkafka reconnects by itself.
                    tracing::warn!(error = %e, "kafka consumer: transient error; waiting for the broker");
                    tokio::time::sleep(Duration::from_millis(100).min(remaining)).await;
                }
                Ok(Err(e)) => return Err(err(e)),
                Ok(Ok(m)) => self.keep(&m, &mut out),
            }
            // Drain what is already buffered, without waiting.
            while out.len() < max.max(1) {
                match self.consumer.recv().now_or_never() {
                    Some(Ok(m)) => self.keep(&m, &mut out),
                    Some(Err(e)) if transient(&e) => break,
                    Some(Err(e)) => return Err(err(e)),
                    None => break,
                }
            }
            if !out.is_empty() {
                return Ok(out);
            }
        }
    }

    async fn commit(&mut self, processed: &[SourcePosition]) -> Result<(), LogError> {
        let points = commit_points(processed);
        if points.is_empty() {
            return Ok(());
        }
        let mut tpl = TopicPartitionList::new();
        for p in &points {
            tpl.add_partition_offset(&p.topic, p.partition as i32, Offset::Offset(p.offset as i64))
                .map_err(|e| self.commit_err(&points[0], e.into()))?;
        }
        let consumer = self.consumer.clone();
        let result = tokio::task::spawn_blocking(move || consumer.commit(&tpl, CommitMode::Sync))
            .await
            .map_err(|e| self.commit_err(&points[0], e.into()))?;
        result.map_err(|e| self.commit_err(&points[0], e.into()))
    }
}

impl KafkaConsumer {
    /// Keep a record unless a rescan is passing over what the group already committed.
    fn keep(&self, m: &rdkafka::message::BorrowedMessage<'_>, out: &mut Vec<Delivered>) {
        let skip = self.skip.lock().expect("skip map lock");
        let below = skip.get(&(m.topic().to_string(), m.partition())).is_some_and(|c| m.offset() < *c);
        if !below {
            out.push(delivered(m));
        }
    }

    fn commit_err(&self, at: &SourcePosition, source: Cause) -> LogError {
        LogError::Commit {
            group: self.subscription.group.clone(),
            topic: at.topic.clone(),
            partition: at.partition,
            offset: at.offset,
            source,
        }
    }
}
