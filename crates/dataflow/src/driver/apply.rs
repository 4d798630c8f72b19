//! Envelope → dataflow facts, with fencing: events of attempts that are not current, or already
//! ended, change nothing.

use std::collections::hash_map::Entry;
use std::hash::{Hash, Hasher};

use rustc_hash::FxHashSet as HashSet;

use splai_events::{
    DeadLetter, Envelope, Event, JobAccepted, JobRefused, JobRejected, JobRequest, PayloadEncoding,
    RevokeReason, encode,
};
use splai_ingest::intake::Denied;
use splai_ingest::plan::plan;

use super::attempts::{AttemptState, backoff_ms};
use super::parking::{self, Cause};
use super::registry::{EARLY_CANCELS, JobInfo};
use super::{Scheduler, emit};
use crate::assign::Pool;
use crate::model::{Attempt, Budget, Fact, Job, JobStatus, Outcome, Time, Tk, Worker};

pub fn apply(s: &mut Scheduler, e: &Envelope, out: &mut Vec<Envelope>) {
    let tk = attempt_task(s, e);
    if tk.is_none()
        && let Some(job_id) = super::retire::named_job(e)
        && let Some((job, status)) = s.reg.own_retired(&e.tenant, job_id)
    {
        return super::retire::apply(s, e, job, status, out);
    }
    if let Some(cause) = waits_for(s, e, tk) {
        if s.parking.park(cause, e) {
            return;
        }
        // Applied now instead: a report about a job, task or attempt not known changes nothing.
        tracing::warn!(id = %e.id, limit = parking::MAX_PARKED,
                       "too many events waiting for their job, task or attempt; applying this one now");
    }
    apply_now(s, e, tk, out);
    // Events that arrived before what they depend on (topics are read in parallel) go now.
    match &e.event {
        Event::JobRequest(r) => {
            s.parking.release(&Cause::job(&e.tenant, r.job_id.as_deref().unwrap_or(&e.id)));
        }
        Event::Assign(a) => s.parking.release(&Cause::attempt(&e.tenant, &a.attempt)),
        _ => {}
    }
    for r in s.parking.take_released() {
        apply(s, &r, out);
    }
}

/// The task an attempt's decision or report is about, looked up once for both the parking check
/// and the effect.
fn attempt_task(s: &Scheduler, e: &Envelope) -> Option<Tk> {
    match &e.event {
        Event::Assign(splai_events::Assign { attempt, .. })
        | Event::TaskUnschedulable(splai_events::TaskUnschedulable { attempt, .. })
        | Event::AttemptStarted(splai_events::AttemptStarted { attempt, .. })
        | Event::AttemptSucceeded(splai_events::AttemptSucceeded { attempt, .. })
        | Event::AttemptFailed(splai_events::AttemptFailed { attempt, .. })
        | Event::Revoke(splai_events::Revoke { attempt, .. }) => {
            s.reg.task(&e.tenant, &attempt.job_id, &attempt.task_id)
        }
        _ => None,
    }
}

/// What `e` must wait for, if it arrived before it: its job's admission, or its attempt's
/// assignment. `tk`: the task of an attempt's decision or report ([`attempt_task`]).
fn waits_for(s: &Scheduler, e: &Envelope, tk: Option<Tk>) -> Option<Cause> {
    match &e.event {
        Event::Assign(splai_events::Assign { attempt, .. })
        | Event::TaskUnschedulable(splai_events::TaskUnschedulable { attempt, .. })
            if tk.is_none() =>
        {
            Some(unknown_task_cause(s, &e.tenant, attempt))
        }
        Event::JobAccepted(a) if s.reg.own_job(&e.tenant, &a.job_id).is_none() => {
            Some(Cause::job(&e.tenant, &a.job_id))
        }
        Event::AttemptStarted(splai_events::AttemptStarted { attempt, .. })
        | Event::AttemptSucceeded(splai_events::AttemptSucceeded { attempt, .. })
        | Event::AttemptFailed(splai_events::AttemptFailed { attempt, .. }) => match tk {
            None => Some(unknown_task_cause(s, &e.tenant, attempt)),
            Some(tk) if s.attempts.current(tk).is_none_or(|c| c.attempt < attempt.attempt) => {
                Some(Cause::attempt(&e.tenant, attempt))
            }
            _ => None,
        },
        _ => None,
    }
}

/// What an event about a task the scheduler does not know waits for: its job's admission, or
/// (the job is admitted) the sub-DAG that appends the task; the log's topics are read in
/// parallel, so a replay may read an appended task's assignment before the expanding success.
fn unknown_task_cause(s: &Scheduler, tenant: &str, attempt: &splai_events::AttemptId) -> Cause {
    match s.reg.own_job(tenant, &attempt.job_id) {
        None => Cause::job(tenant, &attempt.job_id),
        Some(_) => Cause::task(tenant, &attempt.job_id, &attempt.task_id),
    }
}

fn apply_now(s: &mut Scheduler, e: &Envelope, tk: Option<Tk>, out: &mut Vec<Envelope>) {
    let now = s.now;
    let ttl = s.opts.heartbeat_ttl_ms;
    match &e.event {
        Event::JobRequest(r) => admit(s, e, r, out),
        Event::CancelJob(c) => match s.reg.own_job(&e.tenant, &c.job_id) {
            Some(job) if !s.controls.is_cancelled(job) => {
                s.cancel(job, &c.reason, now);
                if s.mode.live {
                    s.revoke_open_attempts(job, RevokeReason::Cancelled, out);
                }
            }
            Some(_) => {}
            // Not (yet) a job of this tenant: the producer is told at once, the same whether or
            // not another tenant has a job of that id (which is never touched). Topics are read
            // in parallel, so its own request may still come: the cancel is kept for it, up to
            // `EARLY_CANCELS` per tenant.
            None => {
                let key = (e.tenant.clone(), c.job_id.clone());
                let kept = s.reg.keep_early_cancel(key, &c.reason);
                let reason = if kept {
                    format!(
                        "cancel_job: tenant `{}` has no job `{}` (yet); the cancel applies to a request \
                         of that id that arrives later",
                        e.tenant, c.job_id
                    )
                } else {
                    format!(
                        "cancel_job: tenant `{}` has no job `{}`, and already {EARLY_CANCELS} cancels \
                         wait for jobs not admitted: not kept",
                        e.tenant, c.job_id
                    )
                };
                refuse(s, e, reason, out);
            }
        },
        Event::ArchiveJob(a) => match s.reg.own_job(&e.tenant, &a.job_id) {
            Some(job) => archive(s, job, out),
            None => {
                let reason = format!("archive_job: tenant `{}` has no job `{}`", e.tenant, a.job_id);
                refuse(s, e, reason, out);
            }
        },
        Event::RequeueDeadLetter(r) => match s.reg.own_job(&e.tenant, &r.job_id) {
            Some(job) if s.controls.archived(job).is_some() => {
                refuse(s, e, format!("requeue_dead_letter: job `{}` is archived", r.job_id), out);
            }
            Some(job) => requeue(s, job, r.task_id.as_deref()),
            None => {
                let reason = format!("requeue_dead_letter: tenant `{}` has no job `{}`", e.tenant, r.job_id);
                refuse(s, e, reason, out);
            }
        },
        Event::WorkerRegistered(r) => {
            let w = s.reg.register(r);
            // The same worker id registering again is a restarted process: what it was running
            // died with the old one, so those attempts end now rather than at the heartbeat ttl.
            for entry in s.reg.with_pools(w) {
                for (tk, st) in s.attempts.open_on(entry) {
                    let why = format!("attempt {} lost: worker {} restarted", st.attempt, r.worker_id);
                    end_attempt(s, tk, st, Outcome::Lost, why, false);
                }
            }
            beat(s, w, now, ttl);
        }
        Event::Heartbeat(h) => {
            let Some(w) = s.reg.worker(&h.worker_id).filter(|w| s.reg.workers[*w as usize].registered) else {
                tracing::debug!(worker = %h.worker_id, "heartbeat from an unregistered worker ignored");
                return;
            };
            let cpu_load = h.cpu_pct / 100.0 / f64::from(s.reg.workers[w as usize].cores.max(1));
            for entry in s.reg.with_pools(w) {
                let info = &mut s.reg.workers[entry as usize];
                info.cpu_load = cpu_load;
                info.warm_models.clone_from(&h.warm_models);
            }
            beat(s, w, now, ttl);
            if s.mode.live {
                for a in &h.running {
                    // A heartbeat names attempts without their tenant: the attempt is current if
                    // it is the open attempt on this worker of any tenant's job of that id.
                    let stale =
                        !s.reg.jobs_named(&a.job_id).filter_map(|j| s.reg.task_of(j, &a.task_id)).any(|tk| {
                            s.attempts.is_open(tk, a.attempt)
                                && s.attempts.current(tk).is_some_and(|st| s.reg.executor_of(st.worker) == w)
                        });
                    if stale && s.attempts.first_stale_revoke(a) {
                        emit::revoke_stale(s, &a.job_id, &a.task_id, a.attempt, &h.worker_id, &e.tenant, out);
                    }
                }
                revoke_not_held(s, w, h, e.ts_ms, out);
            }
        }
        Event::WorkerLeaving(l) => {
            if let Some(w) = s.reg.worker(&l.worker_id) {
                for entry in s.reg.with_pools(w) {
                    s.engine.feed(Fact::Leave(entry, now), now, 1);
                    s.engine.feed(Fact::Leave(entry, now), now + ttl, -1);
                }
            }
        }
        Event::Assign(a) => {
            let Some(tk) = tk else { return };
            s.pending.read_back(tk, a.attempt.attempt);
            s.requeue(tk);
            if !s.mode.live {
                s.replay_latency.decided(tk, a.attempt.attempt, now);
            }
            assign(s, tk, a, out);
        }
        Event::AttemptStarted(a) => {
            if let Some((tk, _)) = current_open(s, tk, a.attempt.attempt) {
                s.engine.feed(Fact::Started(tk, a.attempt.attempt), now, 1);
            }
        }
        Event::AttemptSucceeded(a) => {
            if let Some((tk, st)) = current_open(s, tk, a.attempt.attempt) {
                // An expanding task's sub-DAG joins the job in the same step as its success.
                if let Err(why) = super::expand::expand(s, tk, &e.tenant, a, out) {
                    end_attempt(s, tk, st, Outcome::Fatal, why, true);
                    return;
                }
                s.attempts.set_artifact(tk, a.artifact.clone());
                s.tally(tk.0, crate::model::Tally::RunTime(crate::model::bucket_of(a.duration_ms)));
                end_attempt(s, tk, st, Outcome::Succeeded, String::new(), false);
            }
        }
        Event::AttemptFailed(a) => {
            if let Some((tk, st)) = current_open(s, tk, a.attempt.attempt) {
                // Stopped because the scheduler said so (its job was cancelled or ran out of
                // time): not the task's failure, so it spends no retry and dead-letters nothing.
                if a.revoked.is_some() {
                    return end_attempt(s, tk, st, Outcome::Lost, a.error.clone(), false);
                }
                let outcome = if a.retryable { Outcome::Failed } else { Outcome::Fatal };
                end_attempt(s, tk, st, outcome, a.error.clone(), true);
            }
        }
        // Read back, a `not_held` revoke ends the attempt as lost: on replay too, so the retry
        // it starts is rebuilt from the log.
        Event::Revoke(r) if r.reason == RevokeReason::NotHeld => {
            if let Some((tk, st)) = current_open(s, tk, r.attempt.attempt) {
                let why = format!(
                    "attempt {} lost: worker {} no longer held it (left out of its heartbeats)",
                    st.attempt, r.worker_id
                );
                end_attempt(s, tk, st, Outcome::Lost, why, false);
            }
        }
        Event::JobRefused(r) => refused(s, e, r, out),
        Event::JobAccepted(a) => {
            if let Some(job) = s.reg.own_job(&e.tenant, &a.job_id) {
                s.admission.decided(job);
            }
        }
        Event::TaskUnschedulable(u) => {
            let Some(tk) = tk else { return };
            s.waiting.given_up.remove(&tk);
            // Only while the task still waits for that attempt: an assignment read since wins.
            if s.attempts.current(tk).is_some_and(|c| c.attempt >= u.attempt.attempt)
                || s.controls.is_cancelled(tk.0)
                || s.controls.is_expired(tk.0)
            {
                return;
            }
            s.attempts.record_failure(tk, u.attempt.attempt, true, true);
            s.attempts.set_error(tk, u.reason.clone());
            s.engine.feed(Fact::Ended(tk, u.attempt.attempt, Outcome::Fatal), now, 1);
        }
        _ => {}
    }
}

/// Make attempt `a` of `tk` current: from the scheduler's own decision as it is made, or from
/// the log's copy of one (a replay, or a decision this process did not make). The same decision
/// twice, or a stale one, changes nothing.
pub(super) fn assign(s: &mut Scheduler, tk: Tk, a: &splai_events::Assign, out: &mut Vec<Envelope>) {
    let now = s.now;
    let executor = s.reg.worker_or_new(&a.worker_id);
    let w = match (a.engine, &a.requirements.model, a.light) {
        (true, Some(model), _) => s.reg.pool_or_new(executor, Pool::Engine, model),
        (_, _, true) => s.reg.pool_or_new(executor, Pool::Light, ""),
        _ => executor,
    };
    let previous = s.attempts.current(tk);
    if previous.is_some_and(|p| p.attempt >= a.attempt.attempt) {
        return; // a duplicate or stale decision
    }
    // A superseded attempt that never ended (its worker was lost) is over for good. (One
    // whose deadline passed already ended by its timeout.)
    match previous.filter(|p| !p.ended) {
        Some(p) if now < p.deadline => {
            let why = lost_with_worker(s, p);
            end_attempt(s, tk, p, Outcome::Lost, why, false)
        }
        Some(p) => fire_timeout(s, tk, p),
        None => {}
    }
    let deadline = a.deadline_ms.max(now + 1);
    let st = AttemptState {
        attempt: a.attempt.attempt,
        worker: w,
        deadline,
        ended: false,
        timeout_fed: false,
        assigned_at: now,
    };
    s.attempts.assign(tk, st);
    s.engine.feed(Fact::Assigned(tk, st.attempt, w), now, 1);
    // A decision the log delivered after its job stopped (it was withdrawn): stop it too.
    if s.mode.live {
        let stopped = if s.controls.is_cancelled(tk.0) {
            Some(RevokeReason::Cancelled)
        } else {
            s.controls.is_expired(tk.0).then_some(RevokeReason::TimedOut)
        };
        if let Some(reason) = stopped {
            emit::revoke(s, tk, st.attempt, reason, out);
        }
    }
}

/// A liveness beat of executor entry `w` and of its registered pools, each with its own
/// capacity, retracted after `ttl`.
fn beat(s: &mut Scheduler, w: Worker, now: Time, ttl: Time) {
    let entries: Vec<Worker> = s.reg.with_registered_pools(w).collect();
    for entry in entries {
        let slots = s.reg.workers[entry as usize].slots;
        s.engine.feed(Fact::Beat(entry, now, slots), now, 1);
        s.engine.feed(Fact::Beat(entry, now, slots), now + ttl, -1);
    }
}

/// Open attempts on executor `w` (either pool) that its heartbeats stopped naming: two beats in a
/// row that left one out, each sent at least a beat interval after it was assigned
/// (time for the worker to read it too), and it is revoked `not_held` — retried at once instead
/// of at its timeout. A worker names an attempt from reading its assignment until its result is
/// on the log, so a finished attempt's result is normally read long before the second beat.
fn revoke_not_held(
    s: &mut Scheduler,
    w: Worker,
    h: &splai_events::Heartbeat,
    sent: Time,
    out: &mut Vec<Envelope>,
) {
    let interval = s.reg.workers[w as usize].heartbeat_interval_ms;
    let named: HashSet<(&str, &str, Attempt)> =
        h.running.iter().map(|a| (a.job_id.as_str(), a.task_id.as_str(), a.attempt)).collect();
    for entry in s.reg.with_pools(w) {
        for (tk, st) in s.attempts.open_on(entry) {
            if sent < st.assigned_at + interval {
                continue;
            }
            let (job_id, task_id) = s.reg.task_ids(tk);
            let held = named.contains(&(job_id, task_id, st.attempt));
            // Again every second beat until it is read back: its effect waits for that, and a
            // write can be lost.
            let missed = s.attempts.heartbeat_named(tk, st.attempt, held);
            if missed >= 2 && missed.is_multiple_of(2) {
                emit::revoke_again(s, tk, st.attempt, RevokeReason::NotHeld, out);
            }
        }
    }
}

/// Why an open attempt on a worker that is no longer live was lost.
pub(super) fn lost_with_worker(s: &Scheduler, st: AttemptState) -> String {
    let worker = s.reg.executor_id(st.worker);
    format!(
        "attempt {} lost: worker {worker} stopped heartbeating (ttl {} ms) or left",
        st.attempt, s.opts.heartbeat_ttl_ms
    )
}

/// The current attempt of `tk`, if `attempt` is it and it is still open before its deadline.
fn current_open(s: &Scheduler, tk: Option<Tk>, attempt: u32) -> Option<(Tk, AttemptState)> {
    let tk = tk?;
    let st = s.attempts.current(tk)?;
    (st.attempt == attempt && !st.ended && s.now < st.deadline).then_some((tk, st))
}

/// The retry delay after `attempt` of `tk` (deterministic jitter).
fn backoff_of(s: &Scheduler, tk: Tk, attempt: u32) -> u64 {
    let (job, task) = s.reg.task_ids(tk);
    backoff_ms(job, task, attempt, s.opts.retry_base_ms, s.opts.retry_cap_ms)
}

/// Feed the timeout of `st`, open at its deadline: it ends `TimedOut` then and waits out its
/// backoff from then. Once per attempt. In a job cancelled at or before that deadline, it ends
/// `Lost` instead, as a revoked attempt that answers does: the scheduler told it to stop, so its
/// silence is not the task's failure and must not dead-letter the task (which turned a cancelled
/// job `failed`). Decided by the cancel's time, not by whether the cancel was applied when the
/// timeout is fed: a live scheduler feeds it at a tick of its clock, a replay at its next event,
/// and a cancel after the deadline fell between the two (the replay ended it `Lost`, live
/// dead-lettered the task).
pub(super) fn fire_timeout(s: &mut Scheduler, tk: Tk, st: AttemptState) {
    if st.timeout_fed {
        return;
    }
    if !s.attempts.feed_timeout_once(tk, st.attempt) {
        return;
    }
    if s.controls.cancelled_at(tk.0).is_some_and(|at| at <= st.deadline) {
        s.attempts.record_failure(tk, st.attempt, false, false);
        s.engine.feed(Fact::Ended(tk, st.attempt, Outcome::Lost), st.deadline, 1);
        return;
    }
    s.attempts.record_failure(tk, st.attempt, true, false);
    let backoff = backoff_of(s, tk, st.attempt);
    s.engine.feed(Fact::Ended(tk, st.attempt, Outcome::TimedOut), st.deadline, 1);
    s.engine.feed(Fact::Backoff(tk), st.deadline, 1);
    s.engine.feed(Fact::Backoff(tk), st.deadline + backoff, -1);
}

/// Record the end of an open attempt (after feeding its timeout if its deadline has passed), and
/// for failures start a backoff now.
fn end_attempt(
    s: &mut Scheduler,
    tk: Tk,
    st: AttemptState,
    outcome: Outcome,
    error: String,
    backoff_now: bool,
) {
    let now = s.now;
    if st.deadline <= now {
        fire_timeout(s, tk, st); // it was still open at its deadline
    }
    s.attempts.end(tk);
    s.engine.feed(Fact::Ended(tk, st.attempt, outcome), now, 1);
    if outcome != Outcome::Succeeded {
        s.attempts.record_failure(tk, st.attempt, outcome.is_task_failure(), outcome == Outcome::Fatal);
        if !error.is_empty() {
            s.attempts.set_error(tk, error);
        }
        if backoff_now {
            let backoff = backoff_of(s, tk, st.attempt);
            s.engine.feed(Fact::Backoff(tk), now, 1);
            s.engine.feed(Fact::Backoff(tk), now + backoff, -1);
        }
    }
}

/// A control record that cannot act: a dead letter with the reason.
pub(super) fn refuse(s: &mut Scheduler, e: &Envelope, reason: String, out: &mut Vec<Envelope>) {
    dead_letter(s, e, format!("refused:{}", e.id), reason, out);
}

/// Dead-letter record `e` under `id` with `reason`, kept so the go-live snapshot and every
/// replay answer it the same way (emitted live only).
fn dead_letter(s: &mut Scheduler, e: &Envelope, id: String, reason: String, out: &mut Vec<Envelope>) {
    let letter = Envelope::new(
        id.clone(),
        s.now,
        e.tenant.clone(),
        Event::DeadLetter(DeadLetter {
            source: None,
            job_id: None,
            task_id: None,
            reason,
            payload: String::from_utf8_lossy(&encode(e)).into_owned(),
            payload_encoding: PayloadEncoding::Utf8,
        }),
    );
    if s.reg.denied.insert(id, letter.clone()).is_none() && s.mode.live {
        out.push(letter);
    }
}

pub fn deny(s: &mut Scheduler, e: &Envelope, denied: &Denied, out: &mut Vec<Envelope>) {
    let reason = format!("refused at intake: {}", denied.reason);
    match &e.event {
        Event::JobRequest(r) => {
            let job_id = r.job_id.clone().unwrap_or_else(|| e.id.clone());
            if take_job_id(s, e, &job_id, out) {
                let rejection =
                    JobRejected { job_id, code: denied.code.into(), reason, field: None, duplicate_of: None };
                reject(s, &e.tenant, rejection, out);
            }
        }
        _ => {
            let reason = format!("{} ({}): {reason}", e.event.kind(), denied.code);
            dead_letter(s, e, format!("denied:{}", e.id), reason, out);
        }
    }
}

fn reject(s: &mut Scheduler, tenant: &str, rejection: JobRejected, out: &mut Vec<Envelope>) {
    let job_id = rejection.job_id.clone();
    let env = emit::rejected(s, tenant, rejection);
    s.reg.rejected.insert((tenant.to_string(), job_id), env.clone());
    if s.mode.live {
        out.push(env);
    }
}

/// A digest of what a request asks for (its id aside), to tell a retried request from a key
/// reused for different work. In memory only: replay recomputes it with the same binary.
fn request_digest(r: &JobRequest) -> u64 {
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    let unnamed = JobRequest { job_id: None, ..r.clone() };
    serde_json::to_string(&unnamed).unwrap_or_default().hash(&mut hasher);
    hasher.finish()
}

/// The answer to a request whose (tenant, idempotency key) another job already took: name that
/// job, as REST's 200 replay (same request) or 409 conflict (different request) does.
fn repeated_key(job_id: String, key: &str, original: String, same: bool) -> JobRejected {
    let (code, reason) = if same {
        (
            "duplicate_idempotency_key",
            format!("idempotency key `{key}` was already submitted as job `{original}`; follow that job"),
        )
    } else {
        (
            "idempotency_conflict",
            format!("idempotency key `{key}` was used for a different request (job `{original}`)"),
        )
    };
    JobRejected {
        job_id,
        code: code.into(),
        reason,
        field: Some("idempotency_key".into()),
        duplicate_of: Some(original),
    }
}

/// Refuse a produced job over its tenant's limits: `job_rejected` for users, and `job_refused`
/// on `assignments` so that replay, which makes no such decision, takes it from the log.
fn refuse_admission(
    s: &mut Scheduler,
    tenant: &str,
    job_id: String,
    code: &str,
    reason: String,
    out: &mut Vec<Envelope>,
) {
    let refused = JobRefused { job_id: job_id.clone(), code: code.into(), reason: reason.clone() };
    out.push(Envelope::new(format!("refused:{job_id}"), s.now, tenant, Event::JobRefused(refused)));
    let rejection = JobRejected { job_id, code: code.into(), reason, field: None, duplicate_of: None };
    reject(s, tenant, rejection, out);
}

/// A `job_refused` read from the log. Live, it is our own and already applied. In replay the
/// request may have been admitted first (replay checks no limits): the job is withdrawn — it
/// never ran, so nothing was assigned — and its rejection is what the go-live snapshot says.
fn refused(s: &mut Scheduler, e: &Envelope, r: &JobRefused, out: &mut Vec<Envelope>) {
    if s.reg.rejected.contains_key(&(e.tenant.clone(), r.job_id.clone())) {
        return;
    }
    if let Some(job) = s.reg.own_job(&e.tenant, &r.job_id) {
        s.admission.decided(job);
        if !withdraw(s, job, &r.reason) {
            return;
        }
    }
    let rejection = JobRejected {
        job_id: r.job_id.clone(),
        code: r.code.clone(),
        reason: r.reason.clone(),
        field: None,
        duplicate_of: None,
    };
    reject(s, &e.tenant, rejection, out);
}

/// Withdraw admitted `job` (refused, it never ran: nothing was assigned); false if it already was.
fn withdraw(s: &mut Scheduler, job: Job, reason: &str) -> bool {
    if !s.controls.refuse(job) {
        return false;
    }
    s.cancel(job, reason, s.now);
    s.admission.set_open(job, s.reg.job(job).tenant, false);
    true
}

/// At go-live, decide the produced jobs replay admitted with no decision on the log (they arrived
/// while no scheduler was live), in admission order, as live would have: each still queued is held
/// to its tenant's limits now and the decision recorded; one already running was decided by a
/// scheduler that assigned its tasks. Refusals are answered with the go-live `job_rejected`s.
pub(super) fn decide_held(s: &mut Scheduler, out: &mut Vec<Envelope>) {
    let held: Vec<Job> = s
        .admission
        .take_held()
        .into_iter()
        .filter(|&job| s.view.job(job) == Some(JobStatus::Queued) && !s.controls.is_cancelled(job))
        .collect();
    for &job in &held {
        s.admission.set_open(job, s.reg.job(job).tenant, false);
    }
    for job in held {
        let info = s.reg.job(job);
        let (tenant, job_id) = (info.tenant, info.id.clone());
        let name = s.reg.tenants[tenant as usize].clone();
        let limits = s.opts.admission.of(&name);
        match s.admission.admit(tenant, &name, limits, s.now) {
            Ok(()) => {
                s.admission.set_open(job, tenant, true);
                out.push(accepted(s.now, &name, job_id));
            }
            Err((code, reason)) => {
                withdraw(s, job, &reason);
                let refused =
                    JobRefused { job_id: job_id.clone(), code: code.into(), reason: reason.clone() };
                out.push(Envelope::new(
                    format!("refused:{job_id}"),
                    s.now,
                    &name,
                    Event::JobRefused(refused),
                ));
                let rejection =
                    JobRejected { job_id, code: code.into(), reason, field: None, duplicate_of: None };
                reject(s, &name, rejection, out);
            }
        }
    }
}

/// The record of a live admission of a produced job under limits.
fn accepted(now: Time, tenant: &str, job_id: String) -> Envelope {
    Envelope::new(format!("accepted:{job_id}"), now, tenant, Event::JobAccepted(JobAccepted { job_id }))
}

fn admit(s: &mut Scheduler, e: &Envelope, r: &JobRequest, out: &mut Vec<Envelope>) {
    let job_id = r.job_id.clone().unwrap_or_else(|| e.id.clone());
    if !take_job_id(s, e, &job_id, out) {
        return;
    }
    let tenant = s.reg.tenant(&e.tenant);
    if let Some(key) = &r.idempotency_key {
        let request = request_digest(r);
        match s.reg.idempotency.entry((tenant, key.clone())) {
            Entry::Vacant(slot) => {
                slot.insert((job_id.clone(), request));
            }
            Entry::Occupied(first) => {
                let (original, digest) = first.get().clone();
                return reject(s, &e.tenant, repeated_key(job_id, key, original, digest == request), out);
            }
        }
    }
    let dag = match plan(r, &s.opts.limits) {
        Ok(dag) => dag,
        Err(err) => {
            let rejection = JobRejected {
                job_id,
                code: err.code().into(),
                reason: err.to_string(),
                field: err.field(),
                duplicate_of: None,
            };
            return reject(s, &e.tenant, rejection, out);
        }
    };
    // The gateway ran the same rules for REST submissions; this covers jobs produced to Kafka.
    let verdict = s.opts.policy.admit(&e.tenant, r, &dag);
    if !verdict.allowed {
        let rule = verdict.rule.as_deref().unwrap_or("default");
        let reason = format!("denied by policy rule `{rule}`: {}", verdict.reason);
        let rejection =
            JobRejected { job_id, code: "policy_denied".into(), reason, field: None, duplicate_of: None };
        return reject(s, &e.tenant, rejection, out);
    }
    // Jobs a Kafka producer sent are held to the tenant's limits here (REST's were at the gateway),
    // and the decision recorded: replay takes it from the log, or holds the job for go-live.
    let limits = s.opts.admission.of(&e.tenant);
    let decide = s.mode.produced && limits.is_limited();
    if decide && s.mode.live {
        if let Err((code, reason)) = s.admission.admit(tenant, &e.tenant, limits, s.now) {
            return refuse_admission(s, &e.tenant, job_id, code, reason, out);
        }
        out.push(accepted(s.now, &e.tenant, job_id.clone()));
    }
    let mut info = JobInfo {
        id: job_id.clone(),
        tenant,
        job_type: r.job_type,
        priority: r.priority,
        admitted_at: s.now,
        traceparent: e.traceparent.clone(),
        max_retries: r.max_retries,
        timeout_s: r.timeout_s,
        placement: Vec::new(),
        data_classification: r.data_classification,
        model: r.model.clone(),
        cache: r.cache,
        dag,
    };
    info.placement = info.dag.tasks.iter().map(|t| placement_of(s, &e.tenant, &info, t)).collect();
    let timeout_s = info.timeout_s;
    let task_count = info.dag.tasks.len();
    let job = s.reg.add_job(info);
    s.enter_scope(job);
    s.admission.set_open(job, tenant, true);
    if decide && !s.mode.live {
        s.admission.hold(job);
    }
    let now = s.now;
    if let Some(t) = timeout_s {
        s.controls.set_deadline(job, now + u64::from(t) * 1000);
    }
    add_tasks(s, job, 0..task_count);
    if let Some(reason) = s.reg.take_early_cancel(&e.tenant, &job_id) {
        s.cancel(job, &reason, now);
    }
    if s.mode.live {
        emit::admitted(s, job, out);
    }
}

/// Whether request `e` takes `job_id` of its tenant (the first request of that id does, admitted
/// or rejected). The same request read again does nothing; another request of a taken id is
/// answered on `dead-letter`, never dropped: a job id is used once, whatever became of the job
/// (a request refused live for a quota may still be admitted first in a replay, which learns of
/// the refusal later, so a retry under the same id could not be decided the same way there).
fn take_job_id(s: &mut Scheduler, e: &Envelope, job_id: &str, out: &mut Vec<Envelope>) -> bool {
    match s.reg.request_of(&e.tenant, job_id) {
        None => {
            s.reg.take_id(&e.tenant, job_id, &e.id);
            true
        }
        Some(request) if request == e.id => false,
        Some(_) => {
            let reason = format!(
                "job_request: tenant `{}` already submitted a job `{job_id}` (admitted or rejected); a job id \
                 is used once: submit again under a new id",
                e.tenant
            );
            refuse(s, e, reason, out);
            false
        }
    }
}

/// The worker labels the policy gate requires of `task` of the job `info`.
pub(super) fn placement_of(
    s: &Scheduler,
    tenant: &str,
    info: &JobInfo,
    task: &splai_events::TaskSpec,
) -> splai_ingest::policy::Placement {
    s.opts.policy.placement(&splai_ingest::policy::Subject {
        tenant,
        job_type: info.job_type,
        priority: info.priority,
        data_classification: info.data_classification,
        task_kind: Some(task.kind),
        model: task.requirements.model.as_deref().or(info.model.as_deref()),
    })
}

/// Feed the dataflow `job`'s tasks numbered `range` (new ones: admitted, or appended by a
/// sub-DAG) with their retry budgets and the edges from their parents.
pub(super) fn add_tasks(s: &mut Scheduler, job: crate::model::Job, range: std::ops::Range<usize>) {
    let now = s.now;
    let info = s.reg.job(job);
    let mut facts = Vec::new();
    for i in range {
        let t = &info.dag.tasks[i];
        let retries = t.max_retries.or(info.max_retries).unwrap_or(s.opts.default_max_retries);
        let budget = Budget { retries, losses: s.opts.max_lost_attempts };
        facts.push(Fact::Task((job, i as u32), budget));
        for p in &t.parents {
            if let Some(parent) = s.reg.task_of(job, p) {
                facts.push(Fact::Edge(parent, (job, i as u32)));
            }
        }
    }
    for f in facts {
        if let Fact::Task(tk, b) = &f {
            s.attempts.set_budget(*tk, *b);
        }
        s.engine.feed(f, now, 1);
    }
}

/// Archive a tenant's own job: it is stopped first if it has not finished (as a cancel would),
/// and its state reads `archived` from then on, in the snapshot too.
fn archive(s: &mut Scheduler, job: crate::model::Job, out: &mut Vec<Envelope>) {
    if s.controls.archived(job).is_some() {
        return;
    }
    let status = s.view.job(job);
    let finished = matches!(status, Some(JobStatus::Succeeded | JobStatus::Failed | JobStatus::Cancelled));
    let why = match status {
        Some(st) if finished => format!("archived ({})", format!("{st:?}").to_lowercase()),
        _ => "archived before it finished: stopped".to_string(),
    };
    s.controls.archive(job, why);
    if !finished && s.cancel(job, "archived", s.now) && s.mode.live {
        s.revoke_open_attempts(job, RevokeReason::Cancelled, out);
    }
    if s.mode.live {
        emit::job_state(s, job, status.unwrap_or(JobStatus::Queued), out);
    }
}

/// Give dead-lettered tasks (one, or all of the job's) a fresh retry budget.
fn requeue(s: &mut Scheduler, job: crate::model::Job, task_id: Option<&str>) {
    let n = s.reg.job(job).dag.tasks.len() as u32;
    let now = s.now;
    for t in 0..n {
        let tk = (job, t);
        let dead = s.view.task(tk).is_some_and(|(st, _)| st == crate::model::TaskStatus::DeadLettered);
        let named = task_id.is_none_or(|id| s.reg.task_ids(tk).1 == id);
        if dead && named {
            let old = s.attempts.budget(tk).unwrap_or(Budget { retries: 0, losses: 0 });
            let failures = s.attempts.failures(tk);
            let new = Budget {
                retries: failures.failed + old.retries.max(s.opts.default_max_retries),
                losses: failures.lost + old.losses.max(s.opts.max_lost_attempts),
            };
            s.engine.feed(Fact::Task(tk, old), now, -1);
            s.engine.feed(Fact::Task(tk, new), now, 1);
            s.attempts.set_budget(tk, new);
        }
    }
}
