//! A cancelled job stays cancelled when an attempt it revoked never answers: the attempt's
//! timeout, fed after the cancel, is not the task's failure, so it spends no retry and
//! dead-letters nothing (before: with `max_retries` 0 the task was dead-lettered at the attempt's
//! deadline and the cancelled job turned `failed`). Whether the cancel came before the deadline is
//! decided by its time, not by whether it was applied when the timeout is fed. Virtual time, the
//! real driver.

use crate::support::{at, dead_letters, heartbeat, live};
use splai_dataflow::model::JobStatus;
use splai_events::{AttemptId, CancelJob, Event, JobRequest};

/// One task with a 2 s timeout and no retries.
fn job(id: &str) -> Event {
    let request: JobRequest = serde_json::from_value(serde_json::json!({
        "type": "explicit", "job_id": id, "max_retries": 0,
        "dag": {"tasks": [{"id": "t", "kind": "aggregation", "timeout_s": 2}]}}))
    .unwrap();
    Event::JobRequest(request)
}

fn cancel(id: &str) -> Event {
    Event::CancelJob(CancelJob { job_id: id.into(), reason: "user".into() })
}

#[test]
fn a_revoked_attempt_that_never_answers_leaves_its_cancelled_job_cancelled() {
    let mut s = live();
    at(&mut s, 1_010, job("c"));
    let attempt = AttemptId { job_id: "c".into(), task_id: "t".into(), attempt: 1 };
    at(&mut s, 1_100, cancel("c"));
    assert_eq!(s.job_status("c"), Some(JobStatus::Cancelled));
    // The worker still holds the attempt (it never stopped) until well past its deadline.
    let out = at(&mut s, 4_000, Event::Heartbeat(heartbeat(vec![attempt])));
    assert_eq!(s.job_status("c"), Some(JobStatus::Cancelled), "{out:#?}");
    assert_eq!(dead_letters(&out), Vec::<String>::new());
}

#[test]
fn an_attempt_that_timed_out_before_the_cancel_still_fails_its_job() {
    let mut s = live();
    at(&mut s, 1_010, job("f"));
    let out = at(&mut s, 4_000, Event::Heartbeat(heartbeat(vec![])));
    assert_eq!(s.job_status("f"), Some(JobStatus::Failed), "{out:#?}");
    at(&mut s, 4_100, cancel("f"));
    assert_eq!(s.job_status("f"), Some(JobStatus::Failed), "a cancel after the end changes nothing");
}

#[test]
fn a_cancel_after_the_deadline_fails_the_job_even_when_it_comes_before_the_timeout_is_fed() {
    // Live, a tick of the clock feeds the timeout soon after the deadline; a replay of the log
    // feeds it at its next event, which may be this cancel. The cancel's time, after the
    // deadline, decides: the attempt timed out (the task's failure), in both alike.
    let mut s = live();
    at(&mut s, 1_010, job("r"));
    let out = at(&mut s, 4_000, cancel("r"));
    assert_eq!(s.job_status("r"), Some(JobStatus::Failed), "{out:#?}");
}
