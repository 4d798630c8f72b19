//! The scheduler's snapshots on the log (issue 21; `docs/design/recovery.md`): taken between
//! batches every so many records, kept in the artifact store, recorded on `control` as
//! `snapshot_written` with the log positions they hold everything before; at start the newest one
//! that restores is used and the log read from its positions. A missing, damaged or foreign
//! snapshot is skipped with a warning: the next older one, then a replay from the beginning.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::fmt::Debug;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use splai_events::{ArtifactRef, Envelope, Event, LogPosition, SnapshotWritten, Topic};
use splai_ingest::intake::Gate;
use splai_ingest::log::{Cause, EventReader, EventWriter, LogError};

use crate::driver::{Scheduler, SchedulerOptions};
use crate::{SNAPSHOT_VERSION, stored_ids};

/// The next offset to read per (topic, partition).
pub type Positions = BTreeMap<(String, u32), u64>;

/// Where snapshots are kept (the artifact store, given by `splai-stack`). A snapshot's job ids
/// are kept beside it, under its name with [`IDS_SUFFIX`]; `put` must keep that relation in the
/// paths it gives (`name` + suffix at the path of `name` + suffix).
#[async_trait]
pub trait SnapshotStore: Send + Sync + Debug {
    /// Keep `bytes` under `name`; where they are.
    async fn put(&self, name: &str, bytes: Vec<u8>) -> Result<ArtifactRef, Cause>;
    /// The bytes at `at`, checked against its size and sha256.
    async fn get(&self, at: &ArtifactRef) -> Result<Vec<u8>, Cause>;
    /// Forget `at` (already gone is fine).
    async fn delete(&self, at: &ArtifactRef) -> Result<(), Cause>;
}

/// When and where the scheduler takes snapshots.
#[derive(Debug, Clone)]
pub struct SnapshotPolicy {
    pub store: Arc<dyn SnapshotStore>,
    /// Records applied since the last snapshot before the next is taken.
    pub every_events: u64,
    /// Not more often than this.
    pub min_interval: Duration,
    /// Snapshots kept; older ones are deleted once a newer one is recorded.
    pub keep: usize,
    /// Compact the log automatically: once a snapshot is recorded and at least this many input
    /// records lie behind the oldest snapshot kept, delete them ([`compact`]'s rules; 0 = never).
    pub compact_after_records: u64,
}

/// Every `snapshot_written` on `control` up to its end now, oldest first (with auth on, only
/// signed ones: the gate refuses any other). One a deposed leader wrote after a newer leader's
/// lease (they share key `scheduler`, so one partition orders them) is left out: its state holds
/// decisions nobody acted on.
pub async fn recorded(
    writer: &EventWriter,
    gate: Option<Arc<Gate>>,
) -> Result<Vec<SnapshotWritten>, LogError> {
    let within = Duration::from_secs(60);
    let envelopes =
        EventReader::read_to_end(writer, Topic::Control, gate, within).await?.ok_or_else(|| {
            LogError::Consume {
                group: String::new(),
                topics: vec![writer.topic(Topic::Control)],
                source: format!("reading `control` to its end for snapshot records took over {within:?}")
                    .into(),
            }
        })?;
    let mut newest_epoch = 0;
    let mut found = Vec::new();
    for e in envelopes {
        match e.event {
            Event::SchedulerLease(lease) => newest_epoch = newest_epoch.max(lease.epoch),
            Event::SnapshotWritten(s) if e.epoch.is_some_and(|epoch| epoch < newest_epoch) => {
                tracing::warn!(
                    artifact = s.artifact.path,
                    epoch = e.epoch,
                    newest_epoch,
                    "a deposed scheduler's snapshot record; skipping it"
                );
            }
            Event::SnapshotWritten(s) => found.push(s),
            _ => {}
        }
    }
    Ok(found)
}

/// What a snapshot's every-job-id object is named after it.
pub const IDS_SUFFIX: &str = ".ids";

/// Where snapshot `at` keeps its job ids apart (to delete them with it).
fn ids_beside(at: &ArtifactRef) -> ArtifactRef {
    ArtifactRef { path: format!("{}{IDS_SUFFIX}", at.path), sha256: String::new(), size_bytes: 0 }
}

/// Read the job ids snapshot `snapshot` keeps at `at`, on a thread of its own (the scheduler's
/// runtime must not wait for its own tasks): the bytes arrive on the receiver. If they cannot be
/// read, the snapshot is deleted, so the next start uses an older one or replays.
fn read_ids_in_background(
    store: Arc<dyn SnapshotStore>,
    snapshot: ArtifactRef,
    at: &ArtifactRef,
    started: Instant,
) -> std::sync::mpsc::Receiver<Result<Vec<u8>, String>> {
    let (tx, rx) = std::sync::mpsc::sync_channel(1);
    let at = at.clone();
    let read = move || {
        let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
            Ok(runtime) => runtime,
            Err(error) => return Err(format!("starting a runtime to read {}: {error}", at.path)),
        };
        runtime.block_on(async {
            match store.get(&at).await {
                Ok(bytes) => Ok(bytes),
                Err(error) => {
                    let error = splai_telemetry::chain(error.as_ref());
                    tracing::error!(path = snapshot.path, ids = at.path, %error,
                        "a snapshot's job ids are not readable; deleting the snapshot (the next start uses an older one or replays)");
                    let _ = store.delete(&snapshot).await;
                    Err(format!("{}: {error}", at.path))
                }
            }
        })
    };
    let spawned = std::thread::Builder::new().name("splai-job-ids".into()).spawn({
        let tx = tx.clone();
        move || {
            let result = read();
            if let Ok(bytes) = &result {
                tracing::info!(bytes = bytes.len(), took = ?started.elapsed(), "every job id of the snapshot read");
                let metrics = splai_telemetry::metrics::global();
                metrics.set("splai_scheduler_start_job_ids_seconds", &[], started.elapsed().as_secs_f64());
            }
            let _ = tx.send(result);
        }
    });
    if let Err(error) = spawned {
        let _ = tx.send(Err(format!("starting a thread to read the job ids: {error}")));
    }
    rx
}

/// A scheduler restored from the newest of `recorded` that loads, verifies, covers exactly
/// `inputs` (the partitions read now) and whose positions the log still holds (`starts`: each
/// partition's first offset), with the positions to read on from and the records it
/// had applied. None: replay all.
///
/// Every job id, which a snapshot keeps apart, is read in the background (`driver/job_ids.rs`):
/// the scheduler runs the jobs in flight at once. `started`: when the start began (metrics).
pub async fn restore_newest(
    recorded: &[SnapshotWritten],
    store: Arc<dyn SnapshotStore>,
    started_at: Instant,
    opts: &SchedulerOptions,
    workers: usize,
    inputs: &BTreeSet<(String, u32)>,
    starts: &Positions,
) -> Option<(Scheduler, Positions, u64)> {
    for snapshot in recorded.iter().rev() {
        let path = &snapshot.artifact.path;
        let positions: Positions =
            snapshot.positions.iter().map(|p| ((p.topic.clone(), p.partition), p.next_offset)).collect();
        if positions.keys().cloned().collect::<BTreeSet<_>>() != *inputs {
            tracing::warn!(
                path,
                "snapshot skipped: it was taken over other topics or partitions than are read now"
            );
            continue;
        }
        if let Some(((topic, partition), first)) =
            starts.iter().find(|(k, first)| positions.get(*k).is_some_and(|p| p < *first))
        {
            tracing::warn!(
                path,
                topic,
                partition,
                first,
                "snapshot skipped: the log no longer holds the records after it"
            );
            continue;
        }
        if snapshot.format != SNAPSHOT_VERSION {
            tracing::warn!(path, format = snapshot.format, "snapshot skipped: another format version");
            continue;
        }
        let started = std::time::Instant::now();
        let bytes = match store.get(&snapshot.artifact).await {
            Ok(bytes) => bytes,
            Err(error) => {
                tracing::warn!(path, error = %splai_telemetry::chain(error.as_ref()), "snapshot skipped: not readable");
                continue;
            }
        };
        let read = started.elapsed();
        // `store.get` checked the bytes against the sha256 recorded with the snapshot.
        let ids = |at: &ArtifactRef| {
            read_ids_in_background(store.clone(), snapshot.artifact.clone(), at, started_at)
        };
        match Scheduler::restore_stored(opts.clone(), &bytes, workers, &ids) {
            Ok(mut scheduler) => {
                scheduler.replay_tail();
                let offsets: u64 = positions.values().sum();
                tracing::info!(
                    path,
                    events = snapshot.events,
                    offsets,
                    bytes = bytes.len(),
                    read_ms = read.as_millis() as u64,
                    restore_ms = (started.elapsed() - read).as_millis() as u64,
                    "scheduler restored from its snapshot"
                );
                return Some((scheduler, positions, snapshot.events));
            }
            Err(error) => tracing::warn!(path, error = %splai_telemetry::chain(&error), "snapshot skipped"),
        }
    }
    None
}

/// Takes the live scheduler's snapshots when due and writes them in the background.
#[derive(Debug)]
pub struct Snapshotter {
    policy: SnapshotPolicy,
    writer: EventWriter,
    events_at_last: u64,
    last: Instant,
    writing: Option<tokio::task::JoinHandle<()>>,
    /// Recorded snapshots still kept (and the positions each holds), oldest first.
    kept: Arc<Mutex<VecDeque<(ArtifactRef, Vec<LogPosition>)>>>,
    /// The leadership epoch its records carry.
    epoch: Option<u64>,
    /// The job ids the last snapshot gathered, for the scheduler to start its ids over from.
    gathered: Arc<Mutex<Option<crate::driver::Gathered>>>,
}

impl Snapshotter {
    /// `recorded`: the snapshots on the log at start (the oldest are deleted as newer ones land).
    pub fn new(
        policy: SnapshotPolicy,
        writer: EventWriter,
        recorded: &[SnapshotWritten],
        events: u64,
    ) -> Self {
        let kept = recorded.iter().map(|s| (s.artifact.clone(), s.positions.clone())).collect();
        Self {
            policy,
            writer,
            events_at_last: events,
            last: Instant::now(),
            writing: None,
            kept: Arc::new(Mutex::new(kept)),
            epoch: None,
            gathered: Arc::default(),
        }
    }

    /// Stamp the snapshot records with the leader's `epoch` (standby schedulers on).
    pub fn set_epoch(&mut self, epoch: Option<u64>) {
        self.epoch = epoch;
    }

    /// Take a snapshot of `scheduler` as of `positions` if one is due and the last is written.
    pub fn maybe_take(&mut self, scheduler: &mut Scheduler, positions: &Positions, events: u64) {
        if let Some(gathered) = self.gathered.lock().expect("gathered ids lock").take() {
            scheduler.rebase_job_ids(gathered);
        }
        let due = self.policy.every_events > 0
            && events >= self.events_at_last + self.policy.every_events
            && self.last.elapsed() >= self.policy.min_interval;
        if !due || self.writing.as_ref().is_some_and(|w| !w.is_finished()) {
            return;
        }
        // A snapshot writes every job id: not before those of the one restored are read (and
        // never when they could not be: the runner stops the scheduler then).
        if !matches!(scheduler.job_ids_ready(), Some(Ok(()))) {
            return;
        }
        self.events_at_last = events;
        self.last = Instant::now();
        let started = Instant::now();
        let deferred = match scheduler.snapshot_deferred() {
            Ok(deferred) => deferred,
            Err(error) => {
                tracing::warn!(error = %splai_telemetry::chain(&error), "taking a snapshot failed");
                return;
            }
        };
        let offsets: u64 = positions.values().sum();
        tracing::info!(took = ?started.elapsed(), events, offsets, "snapshot taken");
        let metrics = splai_telemetry::metrics::global();
        metrics.observe("splai_scheduler_snapshot_seconds", &[], started.elapsed().as_secs_f64());
        let now = scheduler.now();
        let positions: Vec<LogPosition> = positions
            .iter()
            .map(|((topic, partition), next)| LogPosition {
                topic: topic.clone(),
                partition: *partition,
                next_offset: *next,
            })
            .collect();
        let (policy, writer, kept, epoch) =
            (self.policy.clone(), self.writer.clone(), self.kept.clone(), self.epoch);
        let gathered_to = self.gathered.clone();
        self.writing = Some(tokio::spawn(async move {
            // Every job id is copied here, not on the scheduler thread.
            let Ok((mut parts, gathered)) = tokio::task::spawn_blocking(move || deferred.gather()).await
            else {
                tracing::warn!("gathering a snapshot's job ids failed");
                return;
            };
            *gathered_to.lock().expect("gathered ids lock") = Some(gathered);
            let name = format!("scheduler/snapshots/{now}-{events}.snap");
            let ids_name = format!("{name}{IDS_SUFFIX}");
            let ids = match policy.store.put(&ids_name, std::mem::take(&mut parts.ids)).await {
                Ok(ids) => ids,
                Err(error) => {
                    tracing::warn!(name = ids_name, error = %splai_telemetry::chain(error.as_ref()), "writing a snapshot's job ids failed");
                    return;
                }
            };
            let artifact = match policy.store.put(&name, parts.referring_to(ids.clone())).await {
                Ok(artifact) if ids_beside(&artifact).path == ids.path => artifact,
                Ok(artifact) => {
                    tracing::warn!(
                        path = artifact.path,
                        ids = ids.path,
                        "the snapshot store did not keep a snapshot's job ids beside it; not recording it"
                    );
                    let _ = policy.store.delete(&artifact).await;
                    let _ = policy.store.delete(&ids).await;
                    return;
                }
                Err(error) => {
                    tracing::warn!(name, error = %splai_telemetry::chain(error.as_ref()), "writing a snapshot failed");
                    let _ = policy.store.delete(&ids).await;
                    return;
                }
            };
            let mut envelope = Envelope::new(
                format!("snapshot-{now}-{events}"),
                now,
                "system",
                Event::SnapshotWritten(SnapshotWritten {
                    artifact: artifact.clone(),
                    format: SNAPSHOT_VERSION,
                    positions: positions.clone(),
                    events,
                }),
            );
            envelope.epoch = epoch;
            if let Err(error) = writer.append(&[envelope]).await {
                tracing::warn!(name, error = %splai_telemetry::chain(&error), "recording a snapshot on the log failed");
                let _ = policy.store.delete(&artifact).await;
                let _ = policy.store.delete(&ids).await;
                return;
            }
            splai_telemetry::metrics::global().inc("splai_scheduler_snapshots_total", &[], 1.0);
            let (expired, oldest): (Vec<ArtifactRef>, Vec<LogPosition>) = {
                let mut kept = kept.lock().expect("kept snapshots lock");
                kept.push_back((artifact, positions));
                let over = kept.len().saturating_sub(policy.keep.max(1));
                let expired = kept.drain(..over).map(|(a, _)| a).collect();
                (expired, kept.front().map(|(_, p)| p.clone()).unwrap_or_default())
            };
            if policy.compact_after_records > 0 {
                auto_compact(&writer, &oldest, policy.compact_after_records).await;
            }
            for old in expired.iter().flat_map(|old| [old.clone(), ids_beside(old)]) {
                if let Err(error) = policy.store.delete(&old).await {
                    tracing::warn!(path = old.path, error = %splai_telemetry::chain(error.as_ref()), "deleting an old snapshot failed");
                }
            }
        }));
    }
}

/// One partition `compact` cut.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cut {
    pub topic: String,
    pub partition: u32,
    /// Records below this offset are gone.
    pub before: u64,
    pub deleted: u64,
}

/// Why nothing was compacted.
#[derive(Debug, thiserror::Error)]
pub enum CompactError {
    #[error("no recorded scheduler snapshot is readable and valid: nothing deleted")]
    NoSnapshot,
    #[error(transparent)]
    Log(#[from] LogError),
}

/// Delete the scheduler's input records that the oldest still valid recorded snapshot holds
/// (the oldest, so a damaged newer one can still fall back to it), except on `control` (its audit
/// anchors and snapshot records are kept), and never past what a committing consumer group has
/// not read yet.
pub async fn compact(
    writer: &EventWriter,
    store: &dyn SnapshotStore,
    gate: Option<Arc<Gate>>,
) -> Result<Vec<Cut>, CompactError> {
    let mut base = None;
    for snapshot in recorded(writer, gate).await? {
        let valid = match store.get(&snapshot.artifact).await {
            Ok(bytes) if snapshot.format == SNAPSHOT_VERSION => match stored_ids(&bytes) {
                Ok(None) => true,
                Ok(Some(ids)) => store.get(&ids).await.is_ok(),
                Err(_) => false,
            },
            _ => false,
        };
        if valid {
            base = Some(snapshot);
            break;
        }
    }
    let base = base.ok_or(CompactError::NoSnapshot)?;
    Ok(cut_behind(writer, &base.positions).await?)
}

/// Delete, per input partition but `control`, the records before `positions` (never past what a
/// committing consumer group has not read yet).
async fn cut_behind(writer: &EventWriter, positions: &[LogPosition]) -> Result<Vec<Cut>, LogError> {
    let control = writer.topic(Topic::Control);
    let mut cuts = Vec::new();
    for position in positions.iter().filter(|p| p.topic != control) {
        let floors = writer.log().committed_floor(&position.topic).await?;
        let floor = floors.get(position.partition as usize).copied().flatten();
        let before = floor.map_or(position.next_offset, |f| f.min(position.next_offset));
        let deleted = writer.log().delete_before(&position.topic, position.partition, before).await?;
        cuts.push(Cut { topic: position.topic.clone(), partition: position.partition, before, deleted });
    }
    Ok(cuts)
}

/// Automatic compaction after a snapshot is recorded: when at least `min_records` input records
/// lie behind `oldest` (the oldest snapshot kept, so a damaged newer one can still fall back to
/// it), delete them. A failure is logged; the next snapshot tries again.
async fn auto_compact(writer: &EventWriter, oldest: &[LogPosition], min_records: u64) {
    let control = writer.topic(Topic::Control);
    let mut behind = 0;
    for position in oldest.iter().filter(|p| p.topic != control) {
        match writer.log().log_starts(&position.topic).await {
            Ok(starts) => {
                let start = starts.get(position.partition as usize).copied().unwrap_or(0);
                behind += position.next_offset.saturating_sub(start);
            }
            Err(error) => {
                tracing::warn!(error = %splai_telemetry::chain(&error), "compaction: reading the log's starts failed");
                return;
            }
        }
    }
    if behind < min_records {
        return;
    }
    match cut_behind(writer, oldest).await {
        Ok(cuts) => {
            let deleted: u64 = cuts.iter().map(|c| c.deleted).sum();
            tracing::info!(deleted, behind, "log compacted behind the oldest snapshot kept");
            splai_telemetry::metrics::global().inc(
                "splai_scheduler_compacted_records_total",
                &[],
                deleted as f64,
            );
        }
        Err(error) => tracing::warn!(error = %splai_telemetry::chain(&error), "compacting the log failed"),
    }
}
