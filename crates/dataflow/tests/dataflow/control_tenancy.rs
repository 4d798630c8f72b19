//! Control records act only on their own tenant's jobs (issue 16 item 1). Tenant B's valid,
//! signed `cancel_job` for tenant A's job used to cancel it: the scheduler matched jobs by id
//! alone, and an early cancel for an id not yet admitted applied to whichever tenant's job later
//! took it. Virtual time, the real driver.

use crate::support::{at_as, job, live};
use splai_dataflow::model::JobStatus;
use splai_events::{CancelJob, Envelope, Event, RequeueDeadLetter};

fn cancel(id: &str) -> Event {
    Event::CancelJob(CancelJob { job_id: id.into(), reason: String::new() })
}

#[test]
fn another_tenants_cancel_does_not_touch_the_job() {
    let mut s = live();
    at_as(&mut s, 1_010, "acme", job("a-secret-1", 2));
    at_as(&mut s, 1_020, "globex", cancel("a-secret-1"));
    assert_eq!(s.job_status("a-secret-1"), Some(JobStatus::Running));
    at_as(&mut s, 1_030, "acme", cancel("a-secret-1"));
    assert_eq!(s.job_status("a-secret-1"), Some(JobStatus::Cancelled), "its own tenant's cancel acts");
}

#[test]
fn an_early_cancel_waits_for_its_own_tenants_job_only() {
    let mut s = live();
    // Both arrive before the job request (topics are read in parallel).
    at_as(&mut s, 1_010, "globex", cancel("j-early"));
    at_as(&mut s, 1_020, "acme", job("j-early", 2));
    assert_eq!(s.job_status("j-early"), Some(JobStatus::Running), "globex's early cancel is not acme's");
    at_as(&mut s, 1_030, "acme", cancel("j-late"));
    at_as(&mut s, 1_040, "acme", job("j-late", 2));
    assert_eq!(s.job_status("j-late"), Some(JobStatus::Cancelled), "acme's own early cancel applies");
}

/// The dead letters among `out`: (tenant, reason, job named).
fn dead_letters(out: &[splai_events::Envelope]) -> Vec<(String, String, Option<String>)> {
    out.iter()
        .filter_map(|e| match &e.event {
            Event::DeadLetter(d) => Some((e.tenant.clone(), d.reason.clone(), d.job_id.clone())),
            _ => None,
        })
        .collect()
}

#[test]
fn another_tenants_cancel_is_answered_as_if_there_were_no_job() {
    let mut s = live();
    at_as(&mut s, 1_010, "acme", job("a-secret-1", 2));
    let theirs = dead_letters(&at_as(&mut s, 1_020, "globex", cancel("a-secret-1")));
    let nobodys = dead_letters(&at_as(&mut s, 1_030, "globex", cancel("no-such-job")));
    assert_eq!(theirs.len(), 1, "the producer is told: {theirs:?}");
    assert_eq!(theirs[0].0, "globex", "in its own tenant");
    assert_eq!(theirs[0].2, None, "naming no job of another tenant");
    assert!(
        theirs[0].1.starts_with("cancel_job: tenant `globex` has no job `a-secret-1` (yet)"),
        "{theirs:?}"
    );
    // No oracle: the answer for acme's job is the answer for an id nobody has.
    assert_eq!(theirs[0].1.replace("a-secret-1", "X"), nobodys[0].1.replace("no-such-job", "X"));
}

#[test]
fn cancels_waiting_for_jobs_not_admitted_are_bounded_per_tenant() {
    let mut s = live();
    let cap = splai_dataflow::EARLY_CANCELS as u64;
    // Applied one after another in one step (a step each would only make the test slow).
    s.advance(1_010);
    let mut out = Vec::new();
    for i in 0..=cap {
        let record = Envelope::new(format!("c{i}"), 1_010, "globex", cancel(&format!("never-{i}")));
        s.apply(&record, &mut out);
    }
    let refused: Vec<_> = dead_letters(&out).into_iter().filter(|d| d.1.contains("not kept")).collect();
    assert_eq!(refused.len(), 1, "only the one over the bound is not kept");
    assert!(refused[0].1.contains(&format!("never-{cap}")), "{refused:?}");
    // Another tenant's cancels are not counted against globex's bound.
    at_as(&mut s, 1_010 + cap + 1, "acme", cancel("early"));
    at_as(&mut s, 1_010 + cap + 2, "acme", job("early", 2));
    assert_eq!(s.job_status("early"), Some(JobStatus::Cancelled));
}

#[test]
fn another_tenants_requeue_is_refused_with_a_dead_letter() {
    let mut s = live();
    at_as(&mut s, 1_010, "acme", job("a-job", 2));
    let requeue = Event::RequeueDeadLetter(RequeueDeadLetter { job_id: "a-job".into(), task_id: None });
    let out = at_as(&mut s, 1_020, "globex", requeue);
    let letter = out
        .iter()
        .find_map(|e| match &e.event {
            Event::DeadLetter(d) => Some((e.tenant.clone(), d.reason.clone(), d.job_id.clone())),
            _ => None,
        })
        .expect("a dead letter says why");
    assert_eq!(letter.0, "globex", "the refusal is the producer's, in its tenant");
    assert_eq!(letter.1, "requeue_dead_letter: tenant `globex` has no job `a-job`");
    assert_eq!(letter.2, None, "it names no job of another tenant");
}

#[test]
fn two_tenants_may_use_one_job_id() {
    let mut s = live();
    at_as(&mut s, 1_010, "acme", job("shared", 2));
    at_as(&mut s, 1_020, "globex", job("shared", 2));
    assert_eq!(s.job_status_in("acme", "shared"), Some(JobStatus::Running));
    assert_eq!(
        s.job_status_in("globex", "shared"),
        Some(JobStatus::Queued),
        "its own job, waiting for the slot"
    );
    at_as(&mut s, 1_030, "globex", cancel("shared"));
    assert_eq!(s.job_status_in("globex", "shared"), Some(JobStatus::Cancelled));
    assert_eq!(
        s.job_status_in("acme", "shared"),
        Some(JobStatus::Running),
        "acme's job of that id is untouched"
    );
}

fn archive(id: &str) -> Event {
    Event::ArchiveJob(splai_events::ArchiveJob { job_id: id.into() })
}

fn archived_state(out: &[splai_events::Envelope], id: &str) -> Option<String> {
    out.iter().find_map(|e| match &e.event {
        Event::JobStateChanged(j) if j.job_id == id && j.state == splai_events::JobState::Archived => {
            Some(j.reason.clone().unwrap_or_default())
        }
        _ => None,
    })
}

#[test]
fn another_tenants_archive_is_refused_and_its_own_archives_the_job() {
    let mut s = live();
    at_as(&mut s, 1_010, "acme", job("a-job", 2));
    let out = at_as(&mut s, 1_020, "globex", archive("a-job"));
    assert!(archived_state(&out, "a-job").is_none(), "globex cannot archive acme's job");
    let refused = out.iter().any(|e| {
        matches!(&e.event, Event::DeadLetter(d) if d.reason == "archive_job: tenant `globex` has no job `a-job`")
    });
    assert!(refused, "refused with the reason: {out:?}");
    assert_eq!(s.job_status("a-job"), Some(JobStatus::Running));
    let out = at_as(&mut s, 1_030, "acme", archive("a-job"));
    let why = archived_state(&out, "a-job").expect("acme's archive acts");
    assert!(why.contains("stopped"), "a running job is stopped as it is archived: {why}");
    assert_eq!(s.job_status("a-job"), Some(JobStatus::Cancelled));
    let snapshot = s.go_live();
    assert!(archived_state(&snapshot, "a-job").is_some(), "the snapshot says archived too");
}
