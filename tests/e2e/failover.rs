//! Issue 21 item 4 on the real services (tansu, PostgreSQL, S3, auth on): two `splai scheduler`
//! processes with a lease (`scheduler.lease_ms`); the first leads, the second tails the log warm.
//! SIGKILL the leader mid-job: the standby leads within 3 s of the lease's end and the job
//! finishes with no succeeded task run again. SIGSTOP the leader past its lease, then SIGCONT it:
//! it finds itself deposed and stops, deciding nothing more; the job finishes, each task once.

use std::io::Read;
use std::process::Stdio;
use std::time::{Duration, Instant};

use serde_json::json;
use splai_events::{JobState, TaskState};

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
