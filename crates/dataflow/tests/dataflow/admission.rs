//! Quotas and rates hold for jobs produced straight to Kafka (issue 16 item 4): the scheduler
//! refuses a produced job over its tenant's `max_active_jobs` or submit rate with REST's codes,
//! writes the decision to the log, and replay — which checks no limits — takes it from there.
//! Virtual time, the real driver.

use crate::support::{job, options, registration};
use splai_dataflow::{AdmissionLimits, Scheduler, SchedulerOptions, TenantAdmission};
use splai_events::{Envelope, Event, JobRejected};

fn limited(limits: TenantAdmission) -> SchedulerOptions {
    SchedulerOptions { admission: AdmissionLimits { default: limits, ..Default::default() }, ..options() }
}

fn live(opts: SchedulerOptions) -> Scheduler {
    let mut s = Scheduler::new(opts);
    s.advance(1_000);
    s.go_live();
    let mut out = Vec::new();
    s.apply(&Envelope::new("reg", 1_000, "acme", registration()), &mut out);
    s
}

/// A job request a producer sent with its token, at `at`.
fn produce(s: &mut Scheduler, at: u64, id: &str) -> Vec<Envelope> {
    let mut out = Vec::new();
    s.advance(at);
    s.apply_produced(&Envelope::new(format!("req-{id}"), at, "acme", job(id, 0)), &mut out);
    s.tick(&mut out);
    out
}

fn rejection(out: &[Envelope], id: &str) -> Option<JobRejected> {
    out.iter().find_map(|e| match &e.event {
        Event::JobRejected(r) if r.job_id == id => Some(r.clone()),
        _ => None,
    })
}

#[test]
fn a_produced_job_over_the_active_quota_is_refused() {
    let mut s = live(limited(TenantAdmission { max_active_jobs: 1, ..Default::default() }));
    assert!(rejection(&produce(&mut s, 1_010, "first"), "first").is_none());
    let out = produce(&mut s, 1_020, "second");
    let r = rejection(&out, "second").expect("the second produced job is refused");
    assert_eq!(r.code, "quota_exceeded", "{r:?}");
    assert!(
        out.iter().any(|e| matches!(&e.event, Event::JobRefused(x) if x.job_id == "second")),
        "logged for replay"
    );
    // A job the gateway signed was held to the limits there: not counted twice here.
    let mut out = Vec::new();
    s.apply(&Envelope::new("req-rest", 1_030, "acme", job("rest", 0)), &mut out);
    assert!(rejection(&out, "rest").is_none());
}

#[test]
fn a_produced_job_over_the_rate_is_refused() {
    let mut s = live(limited(TenantAdmission { rate_per_s: 1.0, burst: 1, ..Default::default() }));
    assert!(rejection(&produce(&mut s, 1_010, "a"), "a").is_none());
    let r = rejection(&produce(&mut s, 1_020, "b"), "b").expect("over the rate");
    assert_eq!(r.code, "rate_limited");
    assert!(rejection(&produce(&mut s, 2_100, "c"), "c").is_none(), "a second later there is a token");
}

#[test]
fn replay_takes_the_refusal_from_the_log() {
    let mut s = live(limited(TenantAdmission { max_active_jobs: 1, ..Default::default() }));
    let mut log: Vec<Envelope> = Vec::new();
    for (at, id) in [(1_010, "first"), (1_020, "second")] {
        log.push(Envelope::new(format!("req-{id}"), at, "acme", job(id, 0)));
        log.extend(produce(&mut s, at, id).into_iter().filter(|e| matches!(e.event, Event::JobRefused(_))));
    }
    assert_eq!(log.len(), 3, "two requests and one refusal");
    // Replay without limits (it checks none), reading the refusal after the request it refuses.
    let mut replay = Scheduler::new(options());
    replay.advance(1_030);
    let mut quiet = Vec::new();
    for e in &log {
        replay.apply(e, &mut quiet);
    }
    replay.tick(&mut quiet);
    assert!(quiet.is_empty(), "replay emits nothing");
    let snapshot = replay.go_live();
    let r = rejection(&snapshot, "second").expect("the snapshot says the job was refused");
    assert_eq!(r.code, "quota_exceeded");
    assert!(
        !snapshot.iter().any(|e| matches!(&e.event, Event::JobAdmitted(a) if a.job_id == "second")),
        "and does not admit it"
    );
}

fn accepted(out: &[Envelope], id: &str) -> bool {
    out.iter().any(|e| matches!(&e.event, Event::JobAccepted(a) if a.job_id == id))
}

fn admitted(out: &[Envelope], id: &str) -> bool {
    out.iter().any(|e| matches!(&e.event, Event::JobAdmitted(a) if a.job_id == id))
}

/// Produced requests that arrived while no scheduler was live have no decision on the log:
/// replay holds them and going live decides them in order, under the limits, as live would.
#[test]
fn produced_jobs_replayed_without_a_decision_are_decided_at_go_live() {
    let mut replay = Scheduler::new(limited(TenantAdmission { max_active_jobs: 1, ..Default::default() }));
    replay.advance(1_030);
    let mut quiet = Vec::new();
    for (at, id) in [(1_010, "first"), (1_020, "second")] {
        replay.apply_produced(&Envelope::new(format!("req-{id}"), at, "acme", job(id, 0)), &mut quiet);
    }
    replay.tick(&mut quiet);
    assert!(quiet.is_empty(), "replay emits nothing");
    let out = replay.go_live();
    assert!(accepted(&out, "first") && admitted(&out, "first"), "the first fits the quota: {out:?}");
    let r = rejection(&out, "second").expect("the second is over the quota");
    assert_eq!(r.code, "quota_exceeded", "{r:?}");
    assert!(
        out.iter().any(|e| matches!(&e.event, Event::JobRefused(x) if x.job_id == "second")),
        "the refusal is recorded for the next replay"
    );
    assert!(!admitted(&out, "second"), "and the refused job is not admitted");
}

/// A produced job admitted live is recorded (`job_accepted`), so a replay does not decide it
/// again at go-live, even with its bucket refilled differently; an acceptance read before its
/// request waits for it.
#[test]
fn a_live_admission_is_recorded_and_not_decided_again() {
    let limits = TenantAdmission { rate_per_s: 1.0, burst: 1, ..Default::default() };
    let mut s = live(limited(limits));
    let mut log: Vec<Envelope> = Vec::new();
    for (at, id) in [(1_010, "a"), (2_100, "c")] {
        let decisions = produce(&mut s, at, id);
        assert!(accepted(&decisions, id), "live admission of {id} is recorded");
        let record = decisions.into_iter().find(|e| matches!(e.event, Event::JobAccepted(_))).unwrap();
        // `c`'s acceptance is read before its request, as parallel topics may deliver them.
        if id == "c" {
            log.push(record);
            log.push(Envelope::new(format!("req-{id}"), at, "acme", job(id, 0)));
        } else {
            log.push(Envelope::new(format!("req-{id}"), at, "acme", job(id, 0)));
            log.push(record);
        }
    }
    let mut replay = Scheduler::new(limited(limits));
    replay.advance(2_200);
    let mut quiet = Vec::new();
    for e in &log {
        match e.event {
            Event::JobRequest(_) => replay.apply_produced(e, &mut quiet),
            _ => replay.apply(e, &mut quiet),
        }
    }
    replay.tick(&mut quiet);
    let out = replay.go_live();
    assert!(admitted(&out, "a") && admitted(&out, "c"), "both stay admitted: {out:?}");
    assert!(rejection(&out, "c").is_none(), "one token at go-live would have refused `c` if re-decided");
    assert!(!accepted(&out, "a") && !accepted(&out, "c"), "nothing decided again");
}
