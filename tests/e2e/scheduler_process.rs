//! `splai scheduler` as a real process, on the embedded log and on Kafka (tansu): a job submitted
//! to the log is admitted, assigned to a registered worker, completed, and reported on
//! `job-events`; SIGTERM stops the scheduler cleanly.

use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use splai_config::Loader;
use splai_events::now_ms;
use splai_events::*;
use splai_ingest::log::{EventLog, EventReader, EventWriter, open_log};

struct Scheduler(Child);

impl Drop for Scheduler {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

async fn run_job_through(sets: Vec<String>, env: Vec<(String, String)>) {
    let settings = Loader::new().overrides(&sets).unwrap().load().unwrap();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_splai"));
    for s in &sets {
        cmd.args(["--set", s]);
    }
    splai_config::without_settings_env(&mut cmd);
    cmd.envs(env).arg("scheduler").stdout(Stdio::null()).stderr(Stdio::inherit());
    let mut scheduler = Scheduler(cmd.spawn().unwrap());

    let log: Arc<dyn EventLog> = open_log(&settings.log).await.unwrap();
    // Sign like a gateway when auth is on, as the scheduler then refuses unsigned jobs.
    let gate = splai_ingest::intake::Gate::from_settings(&settings.gateway).unwrap().map(Arc::new);
    let writer = EventWriter::new(log.clone(), settings.log.topic_prefix.clone()).signing(gate);
    writer.create_all_topics(settings.log.partitions).await.unwrap();
    let mut watch =
        EventReader::subscribe(writer.clone(), "test-watch", &[Topic::Assignments, Topic::JobEvents], None)
            .await
            .unwrap();
    let reg = WorkerRegistered {
        worker_id: "proc-w1".into(),
        cores: 2,
        memory_mb: 1024,
        slots: 2,
        light_slots: 0,
        engines: Default::default(),
        models: vec![],
        tools: vec![],
        labels: Default::default(),
        heartbeat_interval_ms: 5000,
        version: "test".into(),
    };
    let request: JobRequest = serde_json::from_value(serde_json::json!({
        "type": "explicit", "job_id": "proc-j1",
        "dag": {"tasks": [{"id": "a", "kind": "aggregation"}, {"id": "b", "kind": "aggregation", "parents": ["a"]}]}
    }))
    .unwrap();
    writer
        .append(&[
            Envelope::new("reg-1", now_ms(), "system", Event::WorkerRegistered(reg)),
            Envelope::new("req-1", now_ms(), "acme", Event::JobRequest(request)),
        ])
        .await
        .unwrap();

    let deadline = Instant::now() + Duration::from_secs(60);
    let mut done = false;
    let mut assigned = Vec::new();
    while !done {
        assert!(Instant::now() < deadline, "job did not finish; assigned {assigned:?}");
        assert!(scheduler.0.try_wait().unwrap().is_none(), "the scheduler exited early");
        let batch = watch.poll(100, Duration::from_millis(200)).await.unwrap();
        for (_, e) in batch.events {
            match e.event {
                Event::Assign(a) => {
                    assigned.push(a.attempt.task_id.clone());
                    let artifact = ArtifactRef {
                        path: format!("acme/proc-j1/{}/1/output.json", a.attempt.task_id),
                        sha256: "0".repeat(64),
                        size_bytes: 2,
                    };
                    let ok = AttemptSucceeded {
                        attempt: a.attempt,
                        worker_id: a.worker_id,
                        artifact,
                        inputs: vec![],
                        duration_ms: 1,
                        usage: None,
                        provenance: None,
                        subdag: None,
                    };
                    writer
                        .append(&[Envelope::new(
                            format!("ok-{}", assigned.len()),
                            now_ms(),
                            "acme",
                            Event::AttemptSucceeded(ok),
                        )])
                        .await
                        .unwrap();
                }
                Event::JobStateChanged(s) if s.job_id == "proc-j1" && s.state == JobState::Succeeded => {
                    done = true
                }
                _ => {}
            }
        }
    }
    assert_eq!(assigned, vec!["a".to_string(), "b".to_string()]);
    // SIGTERM: a clean exit.
    Command::new("kill").args(["-TERM", &scheduler.0.id().to_string()]).status().unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(status) = scheduler.0.try_wait().unwrap() {
            assert!(status.success(), "scheduler exit {status:?}");
            break;
        }
        assert!(Instant::now() < deadline, "scheduler did not stop on SIGTERM");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scheduler_process_on_the_embedded_log() {
    let dir = tempfile::tempdir().unwrap();
    let sets = vec![
        format!("log.embedded.path={}", dir.path().join("log.sqlite").display()),
        "scheduler.tick_ms=20".into(),
    ];
    run_job_through(sets, vec![]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scheduler_process_on_kafka() {
    let Ok(brokers) = std::env::var("SPLAI_TEST_KAFKA_BROKERS") else {
        assert!(std::env::var("SPLAI_TEST_REQUIRE_SERVICES").is_err(), "SPLAI_TEST_KAFKA_BROKERS not set");
        return;
    };
    let prefix = format!("p{}x{}.", std::process::id(), now_ms() % 1_000_000);
    let sets = vec![
        "log.backend=kafka".to_string(),
        "gateway.auth=true".into(),
        "gateway.signing_key=scheduler-process-test-signing-key-0123".into(),
        format!("log.kafka.brokers={brokers}"),
        format!("log.topic_prefix={prefix}"),
        "log.partitions=2".into(),
        "scheduler.tick_ms=20".into(),
    ];
    run_job_through(sets, vec![]).await;
}
