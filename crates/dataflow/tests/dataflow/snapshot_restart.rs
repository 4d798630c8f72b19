//! The real runner with snapshots on (issue 21): a restarted scheduler restores its newest
//! snapshot and replays only the log after it; a damaged newest snapshot is skipped for an older
//! one. The store here is in memory and checks what it serves like the artifact store does (the
//! artifact store itself is exercised by `tests/e2e`).

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use sha2::{Digest, Sha256};
use splai_dataflow::snapshots::{SnapshotPolicy, SnapshotStore, compact, recorded};
use splai_events::{ArtifactRef, Envelope, Event, JobState, SnapshotWritten};
use splai_ingest::log::Cause;

use crate::scenarios::{Act, Harness, always, chain};
use crate::support::wait_until;

#[derive(Debug)]
struct MemoryStore {
    objects: Mutex<BTreeMap<String, Vec<u8>>>,
    /// Whether the job ids beside a snapshot are served (a slow store: held back until set).
    ids_served: tokio::sync::watch::Sender<bool>,
}

impl Default for MemoryStore {
    fn default() -> Self {
        Self { objects: Mutex::default(), ids_served: tokio::sync::watch::channel(true).0 }
    }
}

#[async_trait]
impl SnapshotStore for MemoryStore {
    async fn put(&self, name: &str, bytes: Vec<u8>) -> Result<ArtifactRef, Cause> {
        let at = ArtifactRef {
            path: format!("~{name}"),
            sha256: hex(&Sha256::digest(&bytes)),
            size_bytes: bytes.len() as u64,
        };
        self.objects.lock().unwrap().insert(at.path.clone(), bytes);
        Ok(at)
    }

    async fn get(&self, at: &ArtifactRef) -> Result<Vec<u8>, Cause> {
        if at.path.ends_with(".ids") {
            let _ = self.ids_served.subscribe().wait_for(|served| *served).await;
        }
        let bytes = self.objects.lock().unwrap().get(&at.path).cloned().ok_or("no such object")?;
        if hex(&Sha256::digest(&bytes)) != at.sha256 {
            return Err("object does not match its reference".into());
        }
        Ok(bytes)
    }

    async fn delete(&self, at: &ArtifactRef) -> Result<(), Cause> {
        self.objects.lock().unwrap().remove(&at.path);
        Ok(())
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A harness whose scheduler snapshots after every batch.
async fn harness(store: Arc<MemoryStore>) -> Harness {
    let mut h = Harness::new(HashMap::new()).await;
    h.stop_scheduler().await;
    h.snapshots = Some(SnapshotPolicy {
        store,
        every_events: 1,
        min_interval: Duration::ZERO,
        keep: 2,
        compact_after_records: 0,
    });
    h.start_scheduler();
    h
}

/// The snapshots recorded on the log once at least `n` are.
async fn recorded_at_least(h: &Harness, n: usize) -> Vec<SnapshotWritten> {
    wait_until(&format!("{n} snapshot(s) recorded on the log"), Duration::from_secs(20), async || {
        let found = recorded(&h.writer, None).await.map_err(|e| e.to_string())?;
        if found.len() >= n { Ok(found) } else { Err(format!("{} recorded", found.len())) }
    })
    .await
}

/// A scheduler snapshotting after every batch, stopped with job `finished` succeeded and job
/// `across` (a, b, c; tasks taking `task_ms`) assigned, `snapshots` more snapshots taken after.
async fn stopped_with_a_job_across(
    store: Arc<MemoryStore>,
    finished: &str,
    task_ms: u64,
    snapshots: usize,
) -> (Harness, tokio::sync::watch::Sender<bool>) {
    let mut h = harness(store).await;
    let w = h.worker("w1", 2, always(Act::Succeed(task_ms)));
    h.submit("acme", finished, chain(&["a"])).await;
    h.wait_job(finished, JobState::Succeeded, Duration::from_secs(20)).await;
    h.submit("acme", "across", chain(&["a", "b", "c"])).await;
    h.wait_assigns("across", 1).await;
    let seen = recorded(&h.writer, None).await.unwrap().len();
    recorded_at_least(&h, seen + snapshots).await;
    h.stop_scheduler().await;
    (h, w)
}

/// A scheduler stopped once job `first` succeeded and two snapshots are recorded, the newest then
/// spoiled by `spoil` (given the objects and its path); the records the one before holds.
async fn newest_snapshot_spoiled(
    store: &Arc<MemoryStore>,
    spoil: impl FnOnce(&mut BTreeMap<String, Vec<u8>>, &str),
) -> (Harness, tokio::sync::watch::Sender<bool>, u64) {
    let mut h = harness(store.clone()).await;
    let w = h.worker("w1", 2, always(Act::Succeed(20)));
    h.submit("acme", "first", chain(&["a", "b"])).await;
    h.wait_job("first", JobState::Succeeded, Duration::from_secs(20)).await;
    recorded_at_least(&h, 2).await;
    h.stop_scheduler().await;
    let taken = recorded(&h.writer, None).await.unwrap();
    let (newest, before) = (&taken[taken.len() - 1], &taken[taken.len() - 2]);
    spoil(&mut store.objects.lock().unwrap(), &newest.artifact.path);
    (h, w, before.events)
}

/// A gauge of this process's scheduler (each test runs in its own process under nextest).
fn gauge(name: &str) -> f64 {
    let text = splai_telemetry::metrics::global().render(&[]);
    text.lines()
        .find_map(|l| l.strip_prefix(name).and_then(|v| v.trim().parse().ok()))
        .unwrap_or_else(|| panic!("{name} not in\n{text}"))
}

/// Records on every topic the scheduler reads.
async fn records_on_inputs(h: &Harness) -> u64 {
    let mut total = 0;
    for topic in splai_dataflow::runner::INPUTS {
        total += h.log.high_watermarks(&h.writer.topic(topic)).await.unwrap().iter().sum::<u64>();
    }
    total
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_scheduler_reads_only_the_log_after_its_snapshot() {
    let store = Arc::new(MemoryStore::default());
    let mut h = harness(store.clone()).await;
    let _w = h.worker("w1", 2, always(Act::Succeed(150)));
    h.submit("acme", "before", chain(&["a", "b"])).await;
    h.wait_job("before", JobState::Succeeded, Duration::from_secs(20)).await;
    h.submit("acme", "across", chain(&["a", "b", "c", "d"])).await;
    h.wait_assigns("across", 2).await;
    let taken = recorded_at_least(&h, 2).await;
    h.stop_scheduler().await;
    {
        let objects = store.objects.lock().unwrap();
        let snapshots: Vec<&String> = objects.keys().filter(|p| !p.ends_with(".ids")).collect();
        assert!(snapshots.len() <= 2, "only the newest 2 snapshots are kept: {snapshots:?}");
        for path in &snapshots {
            assert!(objects.contains_key(&format!("{path}.ids")), "{path} has its job ids beside it");
        }
        assert_eq!(
            objects.len(),
            2 * snapshots.len(),
            "no job ids without their snapshot: {:?}",
            objects.keys()
        );
    }
    // While it is down the worker finishes what it holds; the restart reads that from the log.
    wait_until("every assigned attempt to report", Duration::from_secs(10), async || {
        let (assigned, reported) = (h.assigns("across").len(), h.successes("across"));
        if reported >= assigned { Ok(()) } else { Err(format!("{reported} of {assigned} reported")) }
    })
    .await;
    let on_log = records_on_inputs(&h).await;
    h.start_scheduler();
    h.wait_job("across", JobState::Succeeded, Duration::from_secs(20)).await;

    let newest = taken.last().unwrap().events;
    let from_snapshot = gauge("splai_scheduler_start_snapshot_events");
    assert!(
        from_snapshot >= newest as f64,
        "restored a snapshot of {from_snapshot} records, newest {newest}"
    );
    let replayed = gauge("splai_scheduler_start_replayed_events");
    assert!(
        replayed + from_snapshot <= on_log as f64 + 1.0,
        "replayed {replayed} after {from_snapshot} of {on_log}"
    );
    assert!(replayed < on_log as f64 / 2.0, "replayed {replayed} of {on_log}: the snapshot saved little");
    let mut per_attempt: BTreeMap<(String, u32), usize> = BTreeMap::new();
    for (_, a) in h.assigns("across") {
        *per_attempt.entry((a.attempt.task_id, a.attempt.attempt)).or_insert(0) += 1;
    }
    assert_eq!(per_attempt.len(), 4, "{per_attempt:?}");
    assert!(per_attempt.values().all(|n| *n == 1), "an attempt was assigned twice: {per_attempt:?}");
    assert_eq!(h.job_state("before").unwrap().state, JobState::Succeeded);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_damaged_newest_snapshot_is_skipped_for_the_one_before() {
    let store = Arc::new(MemoryStore::default());
    let (mut h, _w, before) = newest_snapshot_spoiled(&store, |objects, newest| {
        objects.get_mut(newest).unwrap()[100] ^= 1;
    })
    .await;
    h.submit("acme", "second", chain(&["a", "b"])).await;
    h.start_scheduler();
    h.wait_job("second", JobState::Succeeded, Duration::from_secs(20)).await;
    assert_eq!(gauge("splai_scheduler_start_snapshot_events"), before as f64, "restored the one before");
}

/// A restart runs the jobs in flight before the snapshot's every job id is read (they are read
/// in the background: a start flat in history), and a new request waits for them: a retired
/// job's id reused then is refused, a new one admitted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jobs_in_flight_run_before_every_job_id_is_read() {
    let store = Arc::new(MemoryStore::default());
    let (mut h, _w) = stopped_with_a_job_across(store.clone(), "before", 150, 1).await;

    store.ids_served.send_replace(false);
    h.start_scheduler();
    h.wait_job("across", JobState::Succeeded, Duration::from_secs(20)).await;
    assert!(gauge("splai_scheduler_start_snapshot_events") > 0.0, "restored from a snapshot");
    let reused = Envelope::new(
        "req-before-again",
        splai_events::now_ms(),
        "acme",
        Event::JobRequest(
            serde_json::from_value(serde_json::json!(
            {"type": "explicit", "job_id": "before", "dag": {"tasks": chain(&["a"])}}))
            .unwrap(),
        ),
    );
    h.writer.append(&[reused]).await.unwrap();
    h.submit("acme", "after", chain(&["a"])).await;
    store.ids_served.send_replace(true);
    h.wait_job("after", JobState::Succeeded, Duration::from_secs(20)).await;
    wait_until("the reused id to be refused", Duration::from_secs(20), async || {
        let refused = crate::support::dead_letters(&h.events());
        match refused.iter().find(|r| r.contains("already submitted a job `before`")) {
            Some(_) => Ok(()),
            None => Err(format!("dead letters: {refused:?}")),
        }
    })
    .await;
}

/// A snapshot whose job ids are lost: the scheduler restored from it stops as soon as the ids
/// fail to read, and the snapshot is deleted, so the next start uses the one before.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_snapshot_that_lost_its_job_ids_is_dropped_for_the_one_before() {
    let store = Arc::new(MemoryStore::default());
    let mut newest_path = String::new();
    let (mut h, _w, before) = newest_snapshot_spoiled(&store, |objects, newest| {
        objects.remove(&format!("{newest}.ids")).expect("ids beside it");
        newest_path = newest.to_string();
    })
    .await;

    h.start_scheduler();
    let err = h.join_scheduler().await.expect_err("the ids cannot be read");
    assert!(err.to_string().contains("lost its job ids"), "{err}");
    assert!(!store.objects.lock().unwrap().contains_key(&newest_path), "the snapshot is deleted");
    h.submit("acme", "second", chain(&["a", "b"])).await;
    h.start_scheduler();
    h.wait_job("second", JobState::Succeeded, Duration::from_secs(20)).await;
    assert_eq!(gauge("splai_scheduler_start_snapshot_events"), before as f64, "restored the one before");
}

/// Compaction behind the oldest valid snapshot: the records go, a job running across the cut
/// finishes after a restart, and a scheduler without snapshots refuses the cut log instead of
/// replaying what is left of it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_compacted_log_restarts_from_its_snapshot_and_refuses_a_replay() {
    let store = Arc::new(MemoryStore::default());
    let (mut h, _w) = stopped_with_a_job_across(store.clone(), "old", 300, 2).await;

    let cuts = compact(&h.writer, store.as_ref(), None).await.unwrap();
    assert!(cuts.iter().all(|c| !c.topic.ends_with("control")), "control is kept: {cuts:?}");
    assert!(cuts.iter().map(|c| c.deleted).sum::<u64>() > 0, "{cuts:?}");
    let starts = h.log.log_starts(&h.writer.topic(splai_events::Topic::Jobs)).await.unwrap();
    assert!(starts.iter().any(|s| *s > 0), "the job requests before the snapshot are gone: {starts:?}");

    h.start_scheduler();
    h.wait_job("across", JobState::Succeeded, Duration::from_secs(20)).await;
    h.stop_scheduler().await;
    h.snapshots = None;
    h.start_scheduler();
    let err = h.join_scheduler().await.expect_err("a replay of a cut log is refused");
    assert!(err.to_string().contains("were deleted"), "{err}");
}

/// Compaction by size, automatically (issue 21 item 3): with `compact_after_records`, once a
/// snapshot is recorded and enough input records lie behind the oldest snapshot kept, they are
/// deleted while the scheduler runs; a restart restores from a snapshot and the job that ran
/// across the cut finishes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_log_is_compacted_automatically_behind_the_oldest_snapshot_kept() {
    let store = Arc::new(MemoryStore::default());
    let mut h = Harness::new(HashMap::new()).await;
    h.stop_scheduler().await;
    h.snapshots = Some(SnapshotPolicy {
        store: store.clone(),
        every_events: 1,
        min_interval: Duration::ZERO,
        keep: 2,
        compact_after_records: 5,
    });
    h.start_scheduler();
    let _w = h.worker("w1", 2, always(Act::Succeed(200)));
    h.submit("acme", "old", chain(&["a", "b"])).await;
    h.wait_job("old", JobState::Succeeded, Duration::from_secs(20)).await;
    h.submit("acme", "across", chain(&["a", "b", "c"])).await;
    h.wait_assigns("across", 1).await;
    let jobs = h.writer.topic(splai_events::Topic::Jobs);
    wait_until(
        "the job requests behind the oldest snapshot to be deleted",
        Duration::from_secs(20),
        async || {
            let starts = h.log.log_starts(&jobs).await.map_err(|e| e.to_string())?;
            if starts.iter().any(|s| *s > 0) { Ok(()) } else { Err(format!("{starts:?}")) }
        },
    )
    .await;
    assert!(gauge("splai_scheduler_compacted_records_total") > 0.0);
    h.stop_scheduler().await;
    h.start_scheduler();
    h.wait_job("across", JobState::Succeeded, Duration::from_secs(20)).await;
    assert_eq!(h.job_state("old").unwrap().state, JobState::Succeeded, "the read model keeps finished jobs");
}

/// A snapshot record a deposed leader wrote after a newer leader's lease (a leader paused past
/// its lease that resumed) is not restored from: its state holds decisions nobody acted on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deposed_leaders_snapshot_record_is_left_out() {
    let h = Harness::new(HashMap::new()).await;
    let record = |epoch: Option<u64>, path: &str| {
        let body = SnapshotWritten {
            artifact: ArtifactRef { path: path.into(), sha256: "0".repeat(64), size_bytes: 1 },
            format: 1,
            positions: vec![],
            events: 1,
        };
        Envelope { epoch, ..Envelope::new(path, 1, "system", Event::SnapshotWritten(body)) }
    };
    let lease = splai_dataflow::leadership::claim(2, "b", 10, 1);
    let log = [record(Some(1), "before"), lease, record(Some(1), "stale"), record(Some(2), "new")];
    h.writer.append(&log).await.unwrap();
    let paths: Vec<String> =
        recorded(&h.writer, None).await.unwrap().into_iter().map(|s| s.artifact.path).collect();
    assert_eq!(paths, ["before", "new"]);
}
