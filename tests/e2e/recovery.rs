//! Issue 21 on the real services (tansu, PostgreSQL, SeaweedFS S3, auth on): the scheduler's
//! snapshots go to S3 and are recorded, signed, on Kafka's `control`. Then the scheduler stops
//! mid-job, and a restarted `splai scheduler` restores the snapshot, reads only the log after it,
//! finishes the job that was running (no task run twice) and runs one submitted while it was
//! down. Retention: on a second tansu, on its SQLite engine (one that deletes old records;
//! `scripts/services`), the `jobs` topic keeps records for seconds only; the job
//! requests a snapshot holds are deleted while the scheduler is down, and the restart still
//! finishes the job running across it. (Neither tansu engine implements DeleteRecords, so
//! `splai log compact` is tested on the embedded log: `snapshot_restart.rs`.)

use std::io::Read;
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use serde_json::json;
use splai_events::{JobState, TaskState};

use crate::common::{
    Proc, get, job_state, post, splai_command, succeeded_attempts, tasks_in, wait_job, wait_until,
};
use crate::distributed::{Cluster, TOKEN};

fn two_step_job(id: &str) -> serde_json::Value {
    json!({"type": "explicit", "job_id": id, "dag": {"tasks": [
        {"id": "a", "kind": "aggregation"}, {"id": "b", "kind": "aggregation", "parents": ["a"]}]}})
}

/// A cluster whose scheduler was stopped mid-job: `before` finished, `across` was running a
/// 3 s nap, and two snapshots were recorded while it ran.
struct StoppedMidJob {
    before: String,
    across: String,
    settings: splai_config::Settings,
    log: Arc<dyn splai_ingest::log::EventLog>,
    writer: splai_ingest::log::EventWriter,
    gate: Option<Arc<splai_ingest::intake::Gate>>,
}

impl StoppedMidJob {
    async fn stop(cluster: &mut Cluster) -> Self {
        let (url, run) = (cluster.url.clone(), cluster.run.clone());
        let before = format!("{run}-before");
        assert_eq!(post(&url, "/v1/jobs", &two_step_job(&before), Some(TOKEN)).await.0, 202);
        assert_eq!(
            job_state(&wait_job(&url, &before, Some(TOKEN), Duration::from_secs(60)).await),
            JobState::Succeeded
        );
        let across = format!("{run}-across");
        let job = json!({"type": "explicit", "job_id": across, "dag": {"tasks": [
            {"id": "nap", "kind": "tool_execution", "inputs": {"tool": {"literal": "sleep"}, "ms": {"literal": 3000}}},
            {"id": "sum", "kind": "aggregation", "parents": ["nap"]}]}});
        assert_eq!(post(&url, "/v1/jobs", &job, Some(TOKEN)).await.0, 202);
        wait_until("the nap to run", Duration::from_secs(30), async || {
            let n = tasks_in(&url, &across, Some(TOKEN), TaskState::Running).await;
            if n == 1 { Ok(()) } else { Err(format!("{n} running")) }
        })
        .await;
        // Recorded on Kafka, read back through the intake gate (only signed records pass).
        let settings = splai_config::Loader::new().file(Some(&cluster.config)).load().unwrap();
        let log = splai_ingest::log::open_log(&settings.log).await.unwrap();
        let gate = splai_ingest::intake::Gate::from_settings(&settings.gateway).unwrap().map(Arc::new);
        let writer = splai_ingest::log::EventWriter::new(log.clone(), settings.log.topic_prefix.clone());
        let stopped = Self { before, across, settings, log, writer, gate };
        let seen = stopped.recorded().await.unwrap().len();
        wait_until("two snapshots taken while the nap runs", Duration::from_secs(30), async || {
            let n = stopped.recorded().await?.len();
            if n >= seen + 2 { Ok(()) } else { Err(format!("{n} recorded")) }
        })
        .await;
        std::mem::replace(&mut cluster.scheduler, Proc(std::process::Command::new("true").spawn().unwrap()))
            .stop();
        stopped
    }

    async fn recorded(&self) -> Result<Vec<splai_events::SnapshotWritten>, String> {
        splai_dataflow::snapshots::recorded(&self.writer, self.gate.clone()).await.map_err(|e| e.to_string())
    }

    /// Start `splai scheduler` again; what it logs goes to the returned file.
    fn restart(cluster: &mut Cluster) -> std::path::PathBuf {
        let stderr = cluster.config.with_file_name("restarted-scheduler.log");
        let mut cmd = splai_command();
        cmd.arg("--config").arg(&cluster.config).arg("scheduler");
        cmd.env("RUST_LOG", "info").stdout(Stdio::null()).stderr(std::fs::File::create(&stderr).unwrap());
        cluster.scheduler = Proc(cmd.spawn().unwrap());
        stderr
    }

    /// `across` and `more` succeed, `across`'s tasks each ran once, and the restarted scheduler
    /// (logging to `stderr`) restored a snapshot; what it logged.
    async fn finish(&self, url: &str, more: &str, stderr: &std::path::Path) -> String {
        for job in [&self.across, more] {
            assert_eq!(
                job_state(&wait_job(url, job, Some(TOKEN), Duration::from_secs(60)).await),
                JobState::Succeeded
            );
        }
        let (_, tasks) = get(url, &format!("/v1/jobs/{}/tasks", self.across), Some(TOKEN)).await.unwrap();
        for task in tasks["tasks"].as_array().unwrap() {
            assert_eq!(succeeded_attempts(task), 1, "ran once: {task}");
        }
        let mut said = String::new();
        std::fs::File::open(stderr).unwrap().read_to_string(&mut said).unwrap();
        assert!(
            said.contains("scheduler restored from its snapshot"),
            "the restart did not restore a snapshot:\n{said}"
        );
        said
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scheduler_restarts_mid_job_from_its_snapshot_on_kafka_and_s3() {
    let snapshots = "snapshot_every_events = 1\nsnapshot_min_interval_ms = 0\nsnapshot_keep = 2";
    let Some(mut cluster) = Cluster::start_with(snapshots, "").await else { return };
    let stopped = StoppedMidJob::stop(&mut cluster).await;

    // The newest names an object in S3 that matches its reference.
    let newest = stopped.recorded().await.unwrap().pop().unwrap();
    assert!(newest.artifact.path.starts_with("~scheduler/snapshots/"), "{:?}", newest.artifact);
    let artifacts = splai_store::artifacts::ArtifactStore::open(&stopped.settings.artifacts).unwrap();
    let bytes =
        artifacts.get(&newest.artifact).await.expect("the snapshot is in S3 and matches its reference");
    assert!(bytes.starts_with(b"SPLAI-SNAPSHOT"));
    let ids = splai_dataflow::stored_ids(&bytes).unwrap().expect("the job ids are kept beside the snapshot");
    assert_eq!(ids.path, format!("{}.ids", newest.artifact.path));
    artifacts.get(&ids).await.expect("the job ids are in S3 and match the snapshot's reference");

    // Down, a job arrives; the new scheduler restores the snapshot and runs both.
    let during = format!("{}-during", cluster.run);
    assert_eq!(post(&cluster.url, "/v1/jobs", &two_step_job(&during), Some(TOKEN)).await.0, 202);
    let stderr = StoppedMidJob::restart(&mut cluster);
    let said = stopped.finish(&cluster.url, &during, &stderr).await;
    let caught_up = said.lines().find(|l| l.contains("going live")).expect("it went live");
    assert!(!caught_up.contains("restored_events=0"), "{caught_up}");
}

/// Issue 21 item 3 on tansu: the `jobs` topic's retention (`cleanup.policy=delete`,
/// `retention.ms` 3 s, enforced every second by tansu's SQLite engine) deletes the requests of
/// a finished job and of one still running while the scheduler is down. The restarted scheduler
/// restores its snapshot (a full replay could no longer know either job), the running job
/// finishes with its task run once, the finished one is still in the read model, and a new job
/// runs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retention_deletes_the_job_requests_behind_a_snapshot_and_the_restart_finishes_the_job() {
    let Some(brokers) = crate::distributed::env("SPLAI_TEST_KAFKA_RETENTION_BROKERS") else { return };
    let snapshots = "snapshot_every_events = 1\nsnapshot_min_interval_ms = 0\nsnapshot_keep = 2";
    let retention = [("cleanup.policy", "delete"), ("retention.ms", "3000")];
    let Some(mut cluster) = Cluster::start_on(&brokers, &retention, snapshots, "").await else { return };
    let stopped = StoppedMidJob::stop(&mut cluster).await;
    let jobs_topic = format!("{}.jobs", cluster.run);
    wait_until("retention to delete both job requests", Duration::from_secs(60), async || {
        let held = job_requests_held(stopped.log.as_ref(), &jobs_topic).await;
        if held.is_empty() { Ok(()) } else { Err(format!("still held: {held:?}")) }
    })
    .await;

    let stderr = StoppedMidJob::restart(&mut cluster);
    let (status, doc) =
        get(&cluster.url, &format!("/v1/jobs/{}", stopped.before), Some(TOKEN)).await.unwrap();
    assert_eq!((status, job_state(&doc)), (200, JobState::Succeeded), "{doc}");
    let after = format!("{}-after", cluster.run);
    assert_eq!(post(&cluster.url, "/v1/jobs", &two_step_job(&after), Some(TOKEN)).await.0, 202);
    stopped.finish(&cluster.url, &after, &stderr).await;
}

/// The ids of the job requests `topic` still holds, read from offset 0 of every partition.
async fn job_requests_held(log: &dyn splai_ingest::log::EventLog, topic: &str) -> Vec<String> {
    let partitions = log.partitions(topic).await.unwrap();
    let ends = log.high_watermarks(topic).await.unwrap();
    let subscription = splai_ingest::log::Subscription {
        group: format!("{topic}-probe"),
        topics: vec![topic.to_string()],
        partitions: Some((0..partitions).collect()),
        start: (0..partitions).map(|p| ((topic.to_string(), p), 0)).collect(),
    };
    let mut reader = log.subscribe(subscription).await.unwrap();
    let mut next = vec![0u64; partitions as usize];
    let mut held = Vec::new();
    // Until every partition's end is reached, or nothing more comes (what is left was deleted).
    while next.iter().zip(&ends).any(|(n, end)| n < end) {
        let got = reader.poll(1_000, Duration::from_secs(2)).await.unwrap();
        if got.is_empty() {
            break;
        }
        for record in got {
            next[record.position.partition as usize] = record.position.offset + 1;
            let envelope = splai_events::decode(&record.payload).unwrap();
            if let splai_events::Event::JobRequest(_) = envelope.event {
                held.push(envelope.id);
            }
        }
    }
    held
}

/// `splai log compact` on a `splai up` data directory (embedded log, local artifact store): with
/// no snapshot it deletes nothing and says so (exit 1); after the stack snapshotted itself it
/// deletes the records the snapshot holds, and the restarted stack still knows the old job and
/// runs a new one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn log_compact_on_an_up_data_directory() {
    let compact = |config: &std::path::Path| {
        let out = splai_command().arg("--config").arg(config).args(["log", "compact"]).output().unwrap();
        let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
        (out.status.code(), text(&out.stdout), text(&out.stderr))
    };
    let never = ["scheduler.snapshot_every_events=0"];
    let up = crate::common::Up::start("", &never, &[]).await;
    assert_eq!(post(&up.url, "/v1/jobs", &two_step_job("old"), None).await.0, 202);
    assert_eq!(
        job_state(&wait_job(&up.url, "old", None, Duration::from_secs(60)).await),
        JobState::Succeeded
    );
    let config = up.config.clone();
    let dir = up.kill();
    let (code, _, err) = compact(&config);
    assert_eq!(code, Some(1), "{err}");
    assert!(err.contains("no recorded scheduler snapshot"), "{err}");

    let often = ["scheduler.snapshot_every_events=1", "scheduler.snapshot_min_interval_ms=0"];
    let up = crate::common::Up::start_in(dir, "", &often, &[]).await;
    assert_eq!(post(&up.url, "/v1/jobs", &two_step_job("new"), None).await.0, 202);
    assert_eq!(
        job_state(&wait_job(&up.url, "new", None, Duration::from_secs(60)).await),
        JobState::Succeeded
    );
    // It snapshots after every batch: wait for the record on the log.
    let settings = splai_config::Loader::new().file(Some(&config)).load().unwrap();
    let log = splai_ingest::log::open_log(&settings.log).await.unwrap();
    let writer = splai_ingest::log::EventWriter::new(log, settings.log.topic_prefix.clone());
    wait_until("a snapshot recorded", Duration::from_secs(30), async || {
        let n = splai_dataflow::snapshots::recorded(&writer, None).await.map_err(|e| e.to_string())?.len();
        if n > 0 { Ok(()) } else { Err("none".to_string()) }
    })
    .await;
    let dir = up.kill();
    let (code, out, err) = compact(&config);
    assert_eq!(code, Some(0), "{out}{err}");
    let deleted: u64 =
        out.lines().last().and_then(|l| l.strip_prefix("deleted ")?.split(' ').next()?.parse().ok()).unwrap();
    assert!(deleted > 0, "{out}");

    let up = crate::common::Up::start_in(dir, "", &often, &[]).await;
    for job in ["old", "new"] {
        let (status, doc) = get(&up.url, &format!("/v1/jobs/{job}"), None).await.unwrap();
        assert_eq!((status, job_state(&doc)), (200, JobState::Succeeded), "{doc}");
    }
    assert_eq!(post(&up.url, "/v1/jobs", &two_step_job("after"), None).await.0, 202);
    assert_eq!(
        job_state(&wait_job(&up.url, "after", None, Duration::from_secs(60)).await),
        JobState::Succeeded
    );
}
