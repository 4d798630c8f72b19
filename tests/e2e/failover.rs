//! Issue 21 item 4 on the real services (tansu, PostgreSQL, S3, auth on): two `splai scheduler`
//! processes with a lease (`scheduler.lease_ms`); the first leads, the second tails the log warm.
//! SIGKILL the leader mid-job: the standby leads within 3 s of the lease's end and the job
//! finishes with no succeeded task run again. SIGSTOP the leader past its lease, then SIGCONT it:
//! it finds itself deposed and stops, deciding nothing more; the job finishes, each task once.
//! While it is frozen, a decision of its epoch appended after the new leader's fence is not acted
//! on by the executor (the fence itself).

use std::io::Read;
use std::process::Stdio;
use std::time::{Duration, Instant};

use serde_json::json;
use splai_events::{Envelope, Event, JobState, TaskState, Topic};
use splai_ingest::log::{EventReader, EventWriter};

use crate::common::{
    Proc, get, job_state, post, splai_command, succeeded_attempts, tasks_in, wait_job, wait_until,
};
use crate::distributed::{Cluster, TOKEN};

const LEASE_MS: u64 = 1000;

fn napping_job(id: &str) -> serde_json::Value {
    json!({"type": "explicit", "job_id": id, "dag": {"tasks": [
        {"id": "nap", "kind": "tool_execution", "inputs": {"tool": {"literal": "sleep"}, "ms": {"literal": 4000}}},
        {"id": "sum", "kind": "aggregation", "parents": ["nap"]}]}})
}

/// The leader (the cluster's scheduler) has run a job; a standby is started with its log in a
/// file. Then a job whose first task naps is running.
async fn leader_standby_and_a_napping_job(cluster: &Cluster) -> (Proc, std::path::PathBuf, String) {
    let (url, run) = (&cluster.url, &cluster.run);
    let first = format!("{run}-first");
    let quick =
        json!({"type": "explicit", "job_id": first, "dag": {"tasks": [{"id": "a", "kind": "aggregation"}]}});
    assert_eq!(post(url, "/v1/jobs", &quick, Some(TOKEN)).await.0, 202);
    assert_eq!(
        job_state(&wait_job(url, &first, Some(TOKEN), Duration::from_secs(60)).await),
        JobState::Succeeded
    );
    let log = cluster.config.with_file_name("standby.log");
    let mut cmd = splai_command();
    cmd.arg("--config").arg(&cluster.config).arg("scheduler");
    cmd.env("RUST_LOG", "info").stdout(Stdio::null()).stderr(std::fs::File::create(&log).unwrap());
    let standby = Proc(cmd.spawn().unwrap());
    wait_until("the standby to catch up", Duration::from_secs(30), async || {
        if read(&log).contains("scheduler caught up") { Ok(()) } else { Err(read(&log)) }
    })
    .await;
    assert!(!read(&log).contains("scheduler leads"), "the standby must not lead while the leader renews");
    let job = format!("{run}-across");
    assert_eq!(post(url, "/v1/jobs", &napping_job(&job), Some(TOKEN)).await.0, 202);
    wait_until("the nap to run", Duration::from_secs(30), async || {
        let n = tasks_in(url, &job, Some(TOKEN), TaskState::Running).await;
        if n == 1 { Ok(()) } else { Err(format!("{n} running")) }
    })
    .await;
    (standby, log, job)
}

/// The fence itself, while the old leader is still frozen: a decision of the deposed epoch
/// appended to an executor's partition after the new leader's fence is not acted on, and one of
/// the new epoch right behind it in the same partition is (partition order: the executor read
/// the stale one first).
async fn fenced_decisions_are_not_acted_on(cluster: &Cluster) {
    let settings = splai_config::Loader::new().file(Some(&cluster.config)).load().unwrap();
    let log = splai_ingest::log::open_log(&settings.log).await.unwrap();
    let writer = EventWriter::new(log, settings.log.topic_prefix.clone());
    let within = Duration::from_secs(30);
    let assignments =
        EventReader::read_to_end(&writer, Topic::Assignments, None, within).await.unwrap().unwrap();
    let first = format!("{}-first", cluster.run);
    let template = assignments
        .iter()
        .find(|e| matches!(&e.event, Event::Assign(a) if a.attempt.job_id == first))
        .expect("the first job's assignment")
        .clone();
    assert_eq!(template.epoch, Some(1), "decided by the first leader");
    let newest = assignments.iter().filter_map(|e| e.epoch).max().unwrap();
    assert!(newest > 1, "the new leader fenced the partitions");
    let probe = format!("{}-probe", cluster.run);
    let decision = |task: &str, epoch: u64| {
        let mut e = template.clone();
        if let Event::Assign(a) = &mut e.event {
            a.attempt.job_id = probe.clone();
            a.attempt.task_id = task.to_string();
        }
        e.id = format!("{probe}-{task}");
        e.epoch = Some(epoch);
        e
    };
    writer.append(&[decision("stale", 1), decision("fresh", newest)]).await.unwrap();
    let reports = wait_until("the new epoch's decision to run", within, async || {
        let events =
            EventReader::read_to_end(&writer, Topic::TaskEvents, None, within).await.unwrap().unwrap();
        let probes: Vec<Envelope> = events.into_iter().filter(|e| e.key() == probe.as_str()).collect();
        let ran = probes
            .iter()
            .any(|e| matches!(&e.event, Event::AttemptSucceeded(a) if a.attempt.task_id == "fresh"));
        if ran { Ok(probes) } else { Err(format!("{} probe reports", probes.len())) }
    })
    .await;
    let stale: Vec<&Envelope> = reports
        .iter()
        .filter(|e| matches!(&e.event, Event::AttemptStarted(a) if a.attempt.task_id == "stale"))
        .collect();
    assert!(stale.is_empty(), "the deposed epoch's decision ran: {stale:?}");
}

fn read(path: &std::path::Path) -> String {
    let mut said = String::new();
    if let Ok(mut f) = std::fs::File::open(path) {
        f.read_to_string(&mut said).unwrap();
    }
    said
}

async fn finishes_with_each_task_once(url: &str, job: &str) {
    assert_eq!(
        job_state(&wait_job(url, job, Some(TOKEN), Duration::from_secs(60)).await),
        JobState::Succeeded
    );
    let (_, tasks) = get(url, &format!("/v1/jobs/{job}/tasks"), Some(TOKEN)).await.unwrap();
    for task in tasks["tasks"].as_array().unwrap() {
        assert_eq!(succeeded_attempts(task), 1, "ran once: {task}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_standby_leads_when_the_leader_is_killed_and_no_task_runs_twice() {
    let Some(mut cluster) = Cluster::start_with(&format!("lease_ms = {LEASE_MS}"), "").await else { return };
    let (_standby, log, job) = leader_standby_and_a_napping_job(&cluster).await;
    let killed = Instant::now();
    cluster.scheduler.0.kill().unwrap();
    cluster.scheduler.0.wait().unwrap();
    wait_until("the standby to lead", Duration::from_millis(LEASE_MS + 3000), async || {
        if read(&log).contains("scheduler leads") { Ok(()) } else { Err(read(&log)) }
    })
    .await;
    eprintln!("failover: the standby led {:?} after the SIGKILL (lease {LEASE_MS} ms)", killed.elapsed());
    finishes_with_each_task_once(&cluster.url, &job).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_leader_paused_past_its_lease_stops_when_it_resumes() {
    let Some(mut cluster) = Cluster::start_with(&format!("lease_ms = {LEASE_MS}"), "").await else { return };
    let (_standby, log, job) = leader_standby_and_a_napping_job(&cluster).await;
    cluster.scheduler.signal("-STOP");
    wait_until("the standby to lead", Duration::from_millis(LEASE_MS + 3000), async || {
        if read(&log).contains("scheduler leads") { Ok(()) } else { Err(read(&log)) }
    })
    .await;
    fenced_decisions_are_not_acted_on(&cluster).await;
    cluster.scheduler.signal("-CONT");
    let old = &mut cluster.scheduler.0;
    let status =
        wait_until("the deposed leader to stop", Duration::from_secs(10), async || match old.try_wait() {
            Ok(Some(status)) => Ok(status),
            other => Err(format!("{other:?}")),
        })
        .await;
    assert!(!status.success(), "a deposed leader ends with an error: {status}");
    finishes_with_each_task_once(&cluster.url, &job).await;
}
