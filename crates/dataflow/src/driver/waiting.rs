//! Why a runnable task waits, and the end of one no live worker can take.
//!
//! Once a second (live only) the scheduler looks at tasks that have waited a while and says why
//! on a `task_state_changed` (state `runnable`, `reason`): no live worker offers its model, tool
//! or labels, or has enough slots ("unplaceable"); every worker that could take it is busy; or its
//! tenant is at its quota. A reason is written when it changes, not every second. A task that
//! stays unplaceable for `unschedulable_timeout_ms` is given up: the scheduler writes
//! `task_unschedulable` and the task fails for good when that is read back from the log, so
//! replay decides the same.

use std::collections::HashMap as StdHashMap;

use rustc_hash::{FxHashMap as HashMap, FxHashSet as HashSet};
use splai_events::{AttemptId, Envelope, Event, TaskState, TaskStateChanged, TaskUnschedulable};

use super::Scheduler;
use super::placement::{candidate, inputs_ready, worker_views};
use crate::assign::{Candidate, WorkerView, fits};
use crate::model::{Attempt, Time, Tk};

/// How often waiting tasks are looked at (ms).
const REVIEW_MS: Time = 1_000;
/// A task placed within this long needs no reason (ms).
const UNPLACEABLE_AFTER_MS: Time = 1_000;
/// Waiting for busy workers is normal under load: said only after this long (ms).
const BUSY_AFTER_MS: Time = 5_000;

#[derive(Debug, Default, serde::Serialize, serde::Deserialize)]
pub(super) struct Waiting {
    next_review: Time,
    shown: HashMap<Tk, Shown>,
    /// Tasks given up on, not placed until their `task_unschedulable` is read back.
    pub given_up: HashSet<Tk>,
}

/// What was last said of a waiting task.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
struct Shown {
    attempt: Attempt,
    reason: String,
    /// Since when no live worker could take it (None while it only waits for busy workers).
    unplaceable_since: Option<Time>,
}

/// Why one task waits now.
struct Why {
    tk: Tk,
    attempt: Attempt,
    reason: String,
    unplaceable: bool,
}

impl Waiting {
    /// Finished `job`'s `tasks` tasks wait for nothing any more.
    pub fn forget_job(&mut self, job: crate::model::Job, tasks: u32) {
        for t in 0..tasks {
            self.shown.remove(&(job, t));
            self.given_up.remove(&(job, t));
        }
    }
}

impl Scheduler {
    /// Look at the waiting tasks (at most once per [`REVIEW_MS`]); say why they wait, and give up
    /// on those unplaceable past the timeout.
    pub(super) fn review_waiting(&mut self, out: &mut Vec<Envelope>) {
        if !self.mode.live || self.now < self.waiting.next_review {
            return;
        }
        self.waiting.next_review = self.now + REVIEW_MS;
        let view = &self.view;
        self.waiting.shown.retain(|tk, shown| view.runnable(*tk).is_some_and(|(a, _)| a == shown.attempt));
        let whys = self.why_waiting();
        let (now, timeout) = (self.now, self.opts.unschedulable_timeout_ms);
        for why in whys {
            let shown = self.waiting.shown.entry(why.tk).or_insert(Shown {
                attempt: why.attempt,
                reason: String::new(),
                unplaceable_since: None,
            });
            shown.unplaceable_since = why.unplaceable.then(|| shown.unplaceable_since.unwrap_or(now));
            let changed = shown.reason != why.reason;
            shown.reason = why.reason.clone();
            let since = shown.unplaceable_since;
            if changed {
                let shown_reason = match (why.unplaceable, timeout) {
                    (true, t) if t > 0 => {
                        format!("{} (the task fails if that lasts {} s)", why.reason, t / 1000)
                    }
                    _ => why.reason.clone(),
                };
                out.push(self.waiting_envelope(why.tk, why.attempt, shown_reason));
            }
            if let Some(since) = since
                && timeout > 0
                && now.saturating_sub(since) >= timeout
                && self.waiting.given_up.insert(why.tk)
            {
                self.ready.remove(why.tk);
                let reason = format!(
                    "unschedulable: {} for {} s (scheduler.unschedulable_timeout_ms)",
                    why.reason,
                    timeout / 1000
                );
                out.push(self.unschedulable_envelope(why.tk, why.attempt, reason));
            }
        }
    }

    /// Every task that has waited long enough to be worth a reason, with that reason.
    fn why_waiting(&self) -> Vec<Why> {
        let workers = worker_views(self);
        let running = self.running_per_tenant();
        // Tasks of one shape share a verdict: worked out once per review.
        let mut verdicts: StdHashMap<(Option<String>, Vec<String>, Vec<String>, u32), Option<String>> =
            StdHashMap::new();
        let mut whys = Vec::new();
        for (tk, attempt, since) in self.view.runnable_tasks() {
            let waited = self.now.saturating_sub(since);
            if waited < UNPLACEABLE_AFTER_MS
                || self.pending.contains(tk)
                || self.waiting.given_up.contains(&tk)
                || !inputs_ready(self, tk)
            {
                continue;
            }
            let c = candidate(self, tk, attempt);
            let shape = (c.model.clone(), c.tools.clone(), c.required_labels.clone(), c.slots);
            let unplaceable = verdicts.entry(shape).or_insert_with(|| unplaceable(&c, &workers)).clone();
            let (reason, unplaceable) = match unplaceable {
                Some(why) => (why, true),
                None if waited < BUSY_AFTER_MS => continue,
                None => (self.busy_reason(&c, &workers, &running), false),
            };
            whys.push(Why { tk, attempt, reason, unplaceable });
        }
        whys
    }

    fn busy_reason(&self, c: &Candidate, workers: &[WorkerView], running: &StdHashMap<u32, u32>) -> String {
        let quota = self.tenant_policy(c.tenant).max_running;
        let tenant_running = running.get(&c.tenant).copied().unwrap_or(0);
        if let Some(q) = quota.filter(|q| tenant_running >= *q) {
            let tenant = &self.reg.tenants[c.tenant as usize];
            return format!("waiting: tenant `{tenant}` has its quota of {q} task(s) running");
        }
        let able = workers.iter().filter(|w| fits(c, w).is_ok()).count();
        format!("waiting for a free slot: all {able} live worker(s) that can run it are busy")
    }

    fn waiting_envelope(&self, tk: Tk, attempt: Attempt, reason: String) -> Envelope {
        let (job_id, task_id) = self.reg.task_ids(tk);
        let id = format!("wait:{job_id}:{task_id}:{attempt}:{}", self.now);
        let event = Event::TaskStateChanged(TaskStateChanged {
            job_id: job_id.to_string(),
            task_id: task_id.to_string(),
            attempt,
            state: TaskState::Runnable,
            worker_id: None,
            reason: Some(reason),
        });
        self.job_envelope(id, tk.0, event)
    }

    fn unschedulable_envelope(&self, tk: Tk, attempt: Attempt, reason: String) -> Envelope {
        let (job_id, task_id) = self.reg.task_ids(tk);
        let id = format!("unschedulable:{job_id}:{task_id}:{attempt}");
        let attempt = AttemptId { job_id: job_id.to_string(), task_id: task_id.to_string(), attempt };
        self.job_envelope(id, tk.0, Event::TaskUnschedulable(TaskUnschedulable { attempt, reason }))
    }

    fn job_envelope(&self, id: String, job: crate::model::Job, event: Event) -> Envelope {
        let info = self.reg.job(job);
        Envelope::new(id, self.now, self.reg.tenants[info.tenant as usize].clone(), event)
            .with_traceparent(info.traceparent.clone())
    }
}

/// Why no live worker could ever take `c` (busy or not), naming what is missing; `None` if one
/// could.
fn unplaceable(c: &Candidate, workers: &[WorkerView]) -> Option<String> {
    if workers.is_empty() {
        return Some("no live worker (none has heartbeated within the ttl)".into());
    }
    if workers.iter().any(|w| fits(c, w).is_ok()) {
        return None;
    }
    if let Some(m) = c.model.as_ref().filter(|m| !workers.iter().any(|w| w.models.contains(m))) {
        return Some(format!("no live worker offers model `{m}`"));
    }
    if let Some(t) = c.tools.iter().find(|t| !workers.iter().any(|w| w.tools.contains(t))) {
        return Some(format!("no live worker offers tool `{t}`"));
    }
    if let Some(l) = c.required_labels.iter().find(|l| !workers.iter().any(|w| w.labels.contains(l))) {
        let rule = c.policy_rule.as_ref().map_or("", |(r, _)| r.as_str());
        return Some(format!("no live worker has label `{l}` (required by policy rule `{rule}`)"));
    }
    let largest = workers.iter().map(|w| w.capacity).max().unwrap_or(0);
    if largest < c.slots {
        return Some(format!("no live worker has {} slot(s) (the largest has {largest})", c.slots));
    }
    let mut needs = Vec::new();
    needs.extend(c.model.iter().map(|m| format!("model `{m}`")));
    needs.extend(c.tools.iter().map(|t| format!("tool `{t}`")));
    needs.extend(c.required_labels.iter().map(|l| format!("label `{l}`")));
    needs.push(format!("{} slot(s)", c.slots));
    Some(format!("no single live worker has all of: {}", needs.join(", ")))
}

#[cfg(test)]
mod tests {
    use splai_events::Priority;

    use crate::assign::Pool;

    use super::*;

    fn worker(models: &[&str], tools: &[&str], capacity: u32) -> WorkerView {
        WorkerView {
            worker: 0,
            id: "w".into(),
            free: 0,
            capacity,
            models: models.iter().map(|m| m.to_string()).collect(),
            tools: tools.iter().map(|t| t.to_string()).collect(),
            labels: vec![],
            warm_models: vec![],
            cpu_load: 0.0,
            pool: Pool::Slots,
            has_light_pool: false,
            has_engine: false,
        }
    }

    fn task(model: Option<&str>, tools: &[&str], slots: u32) -> Candidate {
        Candidate {
            tk: (0, 0),
            attempt: 1,
            tenant: 0,
            priority: Priority::Standard,
            age: 0,
            slots,
            model: model.map(str::to_string),
            tools: tools.iter().map(|t| t.to_string()).collect(),
            locality: vec![],
            required_labels: vec![],
            policy_rule: None,
            light: false,
            engine: false,
        }
    }

    #[test]
    fn names_what_no_live_worker_has() {
        let ws = [worker(&["smollm2"], &["regex"], 2), worker(&["minilm"], &["shell"], 4)];
        assert_eq!(
            unplaceable(&task(Some("gpt-9"), &[], 1), &ws).unwrap(),
            "no live worker offers model `gpt-9`"
        );
        assert_eq!(unplaceable(&task(None, &["sql"], 1), &ws).unwrap(), "no live worker offers tool `sql`");
        assert_eq!(
            unplaceable(&task(None, &[], 8), &ws).unwrap(),
            "no live worker has 8 slot(s) (the largest has 4)"
        );
        assert!(
            unplaceable(&task(Some("smollm2"), &["shell"], 1), &ws)
                .unwrap()
                .starts_with("no single live worker")
        );
        assert_eq!(unplaceable(&task(Some("minilm"), &["shell"], 4), &ws), None, "busy is not unplaceable");
        assert!(unplaceable(&task(None, &[], 1), &[]).unwrap().starts_with("no live worker"));
    }
}
