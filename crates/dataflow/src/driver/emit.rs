//! Envelopes the scheduler writes. Ids are deterministic (`kind:job:task:attempt:state`), so a
//! scheduler that replays and re-emits produces the same ids and consumers de-duplicate.

use splai_events::{
    AttemptId, DeadLetter, Envelope, Event, JobAdmitted, JobExpanded, JobRejected, JobState, JobStateChanged,
    PayloadEncoding, Revoke, RevokeReason, TaskState, TaskStateChanged,
};

use super::Scheduler;
use crate::model::{Attempt, Job, JobStatus, TaskStatus, Tk};

fn envelope(s: &Scheduler, id: String, job: Job, event: Event) -> Envelope {
    let info = s.reg.job(job);
    Envelope::new(id, s.now, s.reg.tenants[info.tenant as usize].clone(), event)
        .with_traceparent(info.traceparent.clone())
}

fn task_state_name(status: TaskStatus) -> TaskState {
    match status {
        TaskStatus::Pending => TaskState::Pending,
        TaskStatus::Failed => TaskState::Failed,
        TaskStatus::Runnable => TaskState::Runnable,
        TaskStatus::Assigned => TaskState::Assigned,
        TaskStatus::Running => TaskState::Running,
        TaskStatus::Cancelled => TaskState::Cancelled,
        TaskStatus::DeadLettered => TaskState::DeadLettered,
        TaskStatus::Succeeded => TaskState::Succeeded,
    }
}

fn job_state_name(status: JobStatus) -> JobState {
    match status {
        JobStatus::Queued => JobState::Queued,
        JobStatus::Running => JobState::Running,
        JobStatus::Succeeded => JobState::Succeeded,
        JobStatus::Failed => JobState::Failed,
        JobStatus::Cancelled => JobState::Cancelled,
    }
}

pub fn admitted(s: &Scheduler, job: Job, out: &mut Vec<Envelope>) {
    let info = s.reg.job(job);
    let deadline_ms = info.timeout_s.map(|t| info.admitted_at + u64::from(t) * 1000);
    let event = Event::JobAdmitted(JobAdmitted {
        job_id: info.id.clone(),
        job_type: info.job_type,
        priority: info.priority,
        dag: info.dag.clone(),
        deadline_ms,
    });
    out.push(envelope(s, format!("admitted:{}", info.id), job, event));
}

/// A sub-DAG joined `job` (live only: the read model has it from the first time).
pub fn expanded(s: &Scheduler, job: Job, expanded: JobExpanded) -> Envelope {
    let id = format!("expanded:{}:{}:{}", expanded.job_id, expanded.task_id, expanded.attempt);
    envelope(s, id, job, Event::JobExpanded(expanded))
}

pub fn rejected(s: &Scheduler, tenant: &str, rejection: JobRejected) -> Envelope {
    Envelope::new(format!("rejected:{}", rejection.job_id), s.now, tenant, Event::JobRejected(rejection))
}

pub fn task_state(s: &Scheduler, tk: Tk, status: TaskStatus, attempt: Attempt, out: &mut Vec<Envelope>) {
    let (job_id, task_id) = s.reg.task_ids(tk);
    // The current attempt's worker: known from the decision on, before the dataflow has it.
    let worker_id = matches!(status, TaskStatus::Assigned | TaskStatus::Running)
        .then(|| s.attempts.current(tk).filter(|c| c.attempt == attempt))
        .flatten()
        .map(|c| s.reg.executor_id(c.worker).to_string());
    let reason = match status {
        TaskStatus::DeadLettered => Some(dead_reason(s, tk)),
        TaskStatus::Failed | TaskStatus::Cancelled => s.attempts.error(tk).map(str::to_string),
        // Runnable again after an attempt lost to infrastructure: why that attempt ended.
        TaskStatus::Runnable if s.attempts.current(tk).is_some_and(|c| c.attempt == attempt && c.ended) => {
            s.attempts.error(tk).map(str::to_string)
        }
        _ => None,
    };
    let state = task_state_name(status);
    let event = Event::TaskStateChanged(TaskStateChanged {
        job_id: job_id.to_string(),
        task_id: task_id.to_string(),
        attempt,
        state,
        worker_id,
        reason: reason.clone(),
    });
    let id = format!("task:{job_id}:{task_id}:{attempt}:{state:?}");
    out.push(envelope(s, id, tk.0, event));
    if status == TaskStatus::DeadLettered {
        let reason = reason.unwrap_or_else(|| "retries exhausted".into());
        let dl = Event::DeadLetter(DeadLetter {
            source: None,
            job_id: Some(job_id.to_string()),
            task_id: Some(task_id.to_string()),
            reason: format!("task {task_id} dead-lettered after {attempt} attempt(s): {reason}"),
            payload: String::new(),
            payload_encoding: PayloadEncoding::Utf8,
        });
        out.push(envelope(s, format!("dead:{job_id}:{task_id}:{attempt}"), tk.0, dl));
    }
}

/// Why `tk` was dead-lettered: its last error, and which budget it exhausted when that was the
/// budget for attempts lost to infrastructure (a worker that died, restarted or stopped beating).
fn dead_reason(s: &Scheduler, tk: Tk) -> String {
    let last = s.attempts.error(tk).unwrap_or("retries exhausted").to_string();
    let failures = s.attempts.failures(tk);
    match s.attempts.budget(tk) {
        Some(budget) if !failures.fatal && failures.lost > budget.losses => format!(
            "{} attempts lost to infrastructure (scheduler.max_lost_attempts = {}); last: {last}",
            failures.lost, budget.losses
        ),
        _ => last,
    }
}

pub fn job_state(s: &Scheduler, job: Job, status: JobStatus, out: &mut Vec<Envelope>) {
    let info = s.reg.job(job);
    if let Some(why) = s.controls.archived(job) {
        // Archived is the last word, whatever its tasks did after.
        let tenant = &s.reg.tenants[info.tenant as usize];
        out.push(archived(s, tenant, &info.id, why.to_string(), info.traceparent.clone()));
        return;
    }
    let (reason, failed_task) = match status {
        JobStatus::Failed => {
            let dead = (0..info.dag.tasks.len() as u32)
                .find(|t| s.view.task((job, *t)).is_some_and(|(st, _)| st == TaskStatus::DeadLettered));
            match dead {
                Some(t) => {
                    let task = info.dag.tasks[t as usize].id.clone();
                    let why = dead_reason(s, (job, t));
                    (Some(format!("task {task} was dead-lettered: {why}")), Some(task))
                }
                None if s.controls.is_expired(job) => (
                    Some(format!(
                        "deadline_exceeded: the job's timeout_s of {} s passed before it finished",
                        info.timeout_s.unwrap_or(0)
                    )),
                    None,
                ),
                None => (Some("a task was dead-lettered".into()), None),
            }
        }
        JobStatus::Cancelled => match s.controls.cancel_reason(job).filter(|r| !r.is_empty()) {
            Some(why) => (Some(format!("cancelled: {why}")), None),
            None => (Some("cancelled".into()), None),
        },
        _ => (None, None),
    };
    let state = job_state_name(status);
    let event =
        Event::JobStateChanged(JobStateChanged { job_id: info.id.clone(), state, reason, failed_task });
    out.push(envelope(s, format!("job:{}:{state:?}", info.id), job, event));
}

/// `tenant`'s job `job_id` reads archived from now on (`why`).
pub fn archived(
    s: &Scheduler,
    tenant: &str,
    job_id: &str,
    why: String,
    traceparent: Option<String>,
) -> Envelope {
    let event = Event::JobStateChanged(JobStateChanged {
        job_id: job_id.to_string(),
        state: JobState::Archived,
        reason: Some(why),
        failed_task: None,
    });
    Envelope::new(format!("job:{job_id}:Archived"), s.now, tenant, event).with_traceparent(traceparent)
}

pub fn revoke(s: &mut Scheduler, tk: Tk, attempt: Attempt, reason: RevokeReason, out: &mut Vec<Envelope>) {
    if s.attempts.first_revoke(tk, attempt) {
        revoke_again(s, tk, attempt, reason, out);
    }
}

/// [`revoke`] even when one was written before: for a revoke whose effect waits for it to be
/// read back (`not_held`), a write the log lost is written again.
pub fn revoke_again(s: &Scheduler, tk: Tk, attempt: Attempt, reason: RevokeReason, out: &mut Vec<Envelope>) {
    let Some(worker) = s.attempts.current(tk).filter(|a| a.attempt == attempt).map(|a| a.worker) else {
        return;
    };
    let (job_id, task_id) = s.reg.task_ids(tk);
    let event = Event::Revoke(Revoke {
        attempt: AttemptId { job_id: job_id.to_string(), task_id: task_id.to_string(), attempt },
        worker_id: s.reg.executor_id(worker).to_string(),
        reason,
    });
    let id = format!("revoke:{job_id}:{task_id}:{attempt}");
    out.push(envelope(s, id, tk.0, event));
}

/// A revoke for an attempt the scheduler no longer tracks as current (a superseded attempt a
/// worker still reports running).
pub fn revoke_stale(
    s: &Scheduler,
    job_id: &str,
    task_id: &str,
    attempt: Attempt,
    worker_id: &str,
    tenant: &str,
    out: &mut Vec<Envelope>,
) {
    out.push(Envelope::new(
        format!("revoke:{job_id}:{task_id}:{attempt}"),
        s.now,
        tenant,
        Event::Revoke(Revoke {
            attempt: AttemptId { job_id: job_id.to_string(), task_id: task_id.to_string(), attempt },
            worker_id: worker_id.to_string(),
            reason: RevokeReason::Superseded,
        }),
    ));
}
