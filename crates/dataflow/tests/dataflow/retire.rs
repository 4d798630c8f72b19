//! Finished jobs leave the scheduler's state (issue 21, flat recovery): what it holds, and what a
//! snapshot writes and a restart reads, grows with the jobs in flight, not with history. A
//! retired job keeps its id (used once) and final state; records about it after change nothing
//! but an archive. Virtual time, the real driver.

use crate::support::{assigned, at, dead_letters, job, live, options, registration, succeeded};
use splai_dataflow::model::JobStatus;
use splai_dataflow::{MetricsOptions, Scheduler, SchedulerOptions};
use splai_events::*;

/// Run job `id` (one task) to success from `t`; its attempt.
fn run_to_success(s: &mut Scheduler, id: &str, t: u64) -> AttemptId {
    let a = assigned(&at(s, t, job(id, 0)));
    assert_eq!(a.len(), 1, "job {id} placed");
    let attempt = a[0].attempt.clone();
    at(s, t + 5, succeeded(attempt.clone(), "w1"));
    assert_eq!(s.job_status_in("acme", id), Some(JobStatus::Succeeded));
    attempt
}

fn job_states(out: &[Envelope]) -> Vec<(String, JobState)> {
    out.iter()
        .filter_map(|e| match &e.event {
            Event::JobStateChanged(j) => Some((j.job_id.clone(), j.state)),
            _ => None,
        })
        .collect()
}

#[test]
fn finished_jobs_leave_the_state_and_a_snapshot_grows_with_jobs_in_flight_not_history() {
    // The metrics window (tallies of the last second here) holds recent jobs' counts, by time.
    let metrics = MetricsOptions { window_ms: 1_000, interval_ms: 1_000 };
    let mut s = Scheduler::new(SchedulerOptions { metrics, ..options() });
    s.advance(1_000);
    s.go_live();
    at(&mut s, 1_000, registration());
    let mut t = 2_000;
    let mut size_after = Vec::new();
    for round in 0..2 {
        for i in 0..100 {
            run_to_success(&mut s, &format!("r{round}-{i:03}"), t);
            t += 20;
        }
        assert_eq!(s.job_counts(), (0, 100 * (round + 1)), "every finished job retired");
        size_after.push(s.snapshot().unwrap().len());
    }
    // An unfinished job's worth of state (one runs, the rest queue for w1's one slot), to
    // compare with what a retired one leaves behind.
    let held_before = s.snapshot().unwrap().len();
    for i in 0..20 {
        at(&mut s, t, job(&format!("open-{i}"), 0));
        t += 20;
    }
    assert_eq!(s.job_counts(), (20, 200));
    let per_held = (s.snapshot().unwrap().len() - held_before) / 20;
    let per_retired = (size_after[1] - size_after[0]) / 100;
    println!("snapshot: {size_after:?} bytes; per retired job {per_retired} B, per running job {per_held} B");
    // What stays of a retired job is its index entry: tenant, id, the request that took the id.
    assert!(
        per_retired < 40 && per_retired * 4 < per_held,
        "a retired job keeps its id and state only: {per_retired} B vs {per_held} B for a queued one"
    );
}

#[test]
fn a_retired_job_stays_as_it_finished_and_its_id_stays_used() {
    let mut s = live();
    let attempt = run_to_success(&mut s, "done", 2_000);
    assert_eq!(s.job_counts(), (0, 1));

    // A cancel after the work is done changes nothing; neither does a late duplicate report.
    let cancel = Event::CancelJob(CancelJob { job_id: "done".into(), reason: "late".into() });
    let out = at(&mut s, 3_000, cancel);
    assert!(job_states(&out).is_empty() && dead_letters(&out).is_empty(), "{out:#?}");
    let out = at(&mut s, 3_100, succeeded(attempt, "w1"));
    assert!(job_states(&out).is_empty() && dead_letters(&out).is_empty(), "{out:#?}");
    assert_eq!(s.job_status_in("acme", "done"), Some(JobStatus::Succeeded));

    // Its id was used: another request under it is answered, not run.
    let again = at(&mut s, 3_200, job("done", 0));
    assert!(assigned(&again).is_empty());
    let letters = dead_letters(&again);
    assert!(letters.iter().any(|r| r.contains("already submitted a job `done`")), "{again:#?}");

    // Archived, it reads archived; a requeue of it is then refused with the reason.
    let out = at(&mut s, 3_300, Event::ArchiveJob(ArchiveJob { job_id: "done".into() }));
    assert_eq!(job_states(&out), vec![("done".to_string(), JobState::Archived)]);
    let requeue = Event::RequeueDeadLetter(RequeueDeadLetter { job_id: "done".into(), task_id: None });
    let letters = dead_letters(&at(&mut s, 3_400, requeue));
    assert!(letters.iter().any(|r| r.contains("is archived")), "{letters:?}");
}

#[test]
fn a_cancelled_job_retires_once_its_revoked_attempt_reports() {
    let mut s = live();
    let a = assigned(&at(&mut s, 2_000, job("c", 0)));
    let attempt = a[0].attempt.clone();
    let out = at(&mut s, 2_100, Event::CancelJob(CancelJob { job_id: "c".into(), reason: "user".into() }));
    assert!(out.iter().any(|e| matches!(&e.event, Event::Revoke(_))), "{out:#?}");
    assert_eq!(s.job_status_in("acme", "c"), Some(JobStatus::Cancelled));
    assert_eq!(s.job_counts(), (1, 0), "its attempt is still open on w1");
    let stopped = Event::AttemptFailed(AttemptFailed {
        attempt,
        worker_id: "w1".into(),
        error: "revoked".into(),
        // As an executor reports a revoked attempt: a retry would start one (backoff facts in
        // the future are retracted at their times too).
        retryable: true,
        revoked: Some(RevokeReason::Cancelled),
    });
    at(&mut s, 2_200, stopped);
    assert_eq!(s.job_counts(), (0, 1));
    assert_eq!(s.job_status_in("acme", "c"), Some(JobStatus::Cancelled));
}

#[test]
fn a_cancelled_job_whose_revoked_attempt_never_reports_retires_at_its_deadline() {
    let mut s = Scheduler::new(SchedulerOptions { default_task_timeout_ms: 2_000, ..options() });
    s.advance(1_000);
    s.go_live();
    at(&mut s, 1_000, registration());
    // Retries left: a timeout counts as the task's failure even after a cancel (with none left
    // it would dead-letter the task and the job would read failed; see docs/design/recovery.md).
    let a = assigned(&at(&mut s, 2_000, job("silent", 3)));
    assert_eq!(a.len(), 1);
    at(&mut s, 2_100, Event::CancelJob(CancelJob { job_id: "silent".into(), reason: "user".into() }));
    // Its worker keeps beating but never reports the revoked attempt.
    at(&mut s, 3_000, Event::Heartbeat(crate::support::heartbeat(vec![a[0].attempt.clone()])));
    assert_eq!(s.job_counts(), (1, 0), "it may still report until its deadline");
    at(&mut s, 4_500, Event::Heartbeat(crate::support::heartbeat(vec![])));
    assert_eq!(s.job_counts(), (0, 1), "past its deadline a report would be fenced: it retires");
    assert_eq!(s.job_status_in("acme", "silent"), Some(JobStatus::Cancelled));
}

#[test]
fn a_restored_scheduler_knows_retired_jobs_by_id_and_state() {
    let mut s = live();
    run_to_success(&mut s, "old", 2_000);
    let bytes = s.snapshot().unwrap();
    let mut restored = Scheduler::restore(options(), &bytes).unwrap();
    assert_eq!(restored.job_counts(), (0, 1));
    assert_eq!(restored.job_status_in("acme", "old"), Some(JobStatus::Succeeded));
    assert_eq!(restored.states(), s.states());
    let again = at(&mut restored, 3_000, job("old", 0));
    assert!(assigned(&again).is_empty(), "a job id is used once, across a restart too");
    assert!(dead_letters(&again).iter().any(|r| r.contains("already submitted")), "{again:#?}");
}

#[test]
fn a_replay_keeps_finished_jobs_until_go_live_tells_their_states_then_retires_them() {
    let mut s = live();
    let mut log = Vec::new();
    let mut t = 2_000;
    for id in ["a", "b"] {
        let request = Envelope::new(format!("req-{id}"), t, "acme", job(id, 0));
        let mut out = Vec::new();
        s.advance(t);
        s.apply(&request, &mut out);
        s.tick(&mut out);
        let decision = out.iter().find(|e| matches!(e.event, Event::Assign(_))).unwrap().clone();
        let Event::Assign(a) = &decision.event else { unreachable!() };
        let report = Envelope::new(format!("ok-{id}"), t + 5, "acme", succeeded(a.attempt.clone(), "w1"));
        s.advance(t + 5);
        s.apply(&decision, &mut out);
        s.apply(&report, &mut out);
        s.tick(&mut out);
        log.extend([request, decision, report]);
        t += 100;
    }
    assert_eq!(s.job_counts(), (0, 2));

    let mut replay = Scheduler::new(options());
    let mut out = Vec::new();
    for e in &log {
        replay.advance(e.ts_ms);
        replay.apply(e, &mut out);
        replay.tick(&mut out);
    }
    assert_eq!(replay.job_counts(), (2, 0), "a replay tells nothing, so it keeps them");
    let told = replay.go_live();
    let finished: Vec<_> =
        job_states(&told).into_iter().filter(|(_, st)| *st == JobState::Succeeded).collect();
    assert_eq!(finished.len(), 2, "go-live tells their final states: {told:#?}");
    assert_eq!(replay.job_counts(), (0, 2), "then they retire");
    assert_eq!(replay.states(), s.states());
}
