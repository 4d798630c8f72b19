//! The assignment step of a tick: candidates and worker views from the dataflow's outputs, the
//! policy of [`crate::assign`], and `Assign` envelopes with every input resolved. Decisions are
//! applied as they are made and remembered as pending until the next step has them, so nothing is
//! assigned twice.

use rustc_hash::FxHashMap as HashMap;
use std::collections::BTreeMap;
use std::time::Instant;

use splai_events::{Assign, AttemptId, Envelope, Event, ResolvedInput, TaskInput, TaskKind};

use super::Scheduler;
use crate::assign::{Candidate, Pool, Verdict, WorkerView, explain};
use crate::model::{Tk, Worker};

/// `--explain`: a task's score against every live worker at a time.
#[derive(Debug, Clone)]
pub struct Explanation {
    pub at: u64,
    pub task: String,
    pub chosen: Option<String>,
    pub verdicts: Vec<Verdict>,
}

pub(super) fn candidate(s: &Scheduler, tk: Tk, attempt: u32) -> Candidate {
    let job = s.reg.job(tk.0);
    let task = &job.dag.tasks[tk.1 as usize];
    Candidate {
        tk,
        attempt,
        tenant: job.tenant,
        priority: job.priority,
        age: job.admitted_at,
        slots: task.requirements.cpu_slots.max(1),
        model: task.requirements.model.clone(),
        tools: task.requirements.tools.clone(),
        locality: task.requirements.locality.clone(),
        required_labels: job.placement.get(tk.1 as usize).map(|p| p.labels.clone()).unwrap_or_default(),
        policy_rule: job
            .placement
            .get(tk.1 as usize)
            .and_then(|p| p.rule.clone().map(|r| (r, p.reason.clone()))),
        light: task.runs_light(),
        engine: task.kind == TaskKind::LlmInference,
    }
}

pub fn worker_views(s: &Scheduler) -> Vec<WorkerView> {
    let mut reserved: HashMap<Worker, i64> = HashMap::default();
    for (tk, w) in s.pending.iter() {
        let slots = s.reg.job(tk.0).dag.tasks[tk.1 as usize].requirements.cpu_slots.max(1);
        *reserved.entry(w).or_insert(0) += i64::from(slots);
    }
    s.view
        .live_workers()
        .filter_map(|(w, cap)| {
            let free = s.view.free(w)? - reserved.get(&w).copied().unwrap_or(0);
            let info = &s.reg.workers[w as usize];
            Some(WorkerView {
                worker: w,
                id: info.id.clone(),
                free,
                capacity: cap,
                models: info.models.clone(),
                tools: info.tools.clone(),
                labels: info.labels.clone(),
                warm_models: info.warm_models.clone(),
                cpu_load: info.cpu_load,
                pool: info.pool,
                has_light_pool: s.reg.light_pool(w).is_some(),
                has_engine: s.reg.has_engine(w),
            })
        })
        .collect()
}

pub fn place(s: &mut Scheduler, out: &mut Vec<Envelope>) {
    if s.ready.is_empty() {
        return;
    }
    let mut workers = worker_views(s);
    if workers.iter().all(|w| w.free <= 0) {
        return;
    }
    let mut running = s.running_per_tenant();
    let started = Instant::now();
    let policies: BTreeMap<u32, _> =
        (0..s.reg.tenants.len() as u32).map(|t| (t, s.tenant_policy(t))).collect();
    let mut assigner = std::mem::take(&mut s.assigner);
    let decisions = {
        let state: &Scheduler = s;
        let mut source = state.ready.reader(|tk| {
            let (attempt, _) = state.view.runnable(tk)?;
            (inputs_ready(state, tk) && !state.waiting.given_up.contains(&tk))
                .then(|| candidate(state, tk, attempt))
        });
        assigner.decide_from(&mut source, &mut workers, &mut running, &|t| {
            policies.get(&t).copied().unwrap_or_default()
        })
    };
    s.assigner = assigner;
    if !decisions.is_empty() {
        s.stats.decision_wall_us.push(started.elapsed().as_micros() as u64);
    }
    for d in decisions {
        let became_runnable = s.view.runnable(d.tk).map_or(s.now, |(_, t)| t);
        let waited = s.now.saturating_sub(became_runnable);
        s.stats.decision_latency_ms.push(waited);
        s.tally(d.tk.0, crate::model::Tally::QueueWait(crate::model::bucket_of(waited)));
        s.stats.assignments += 1;
        s.ready.remove(d.tk);
        let decision = assign_envelope(s, d.tk, d.attempt, d.worker);
        s.pending.decided(d.tk, d.attempt, d.worker, decision.clone(), s.now, s.opts.decision_resend_ms);
        // Applied as made, as a replay of the log will apply it: the next step has it without
        // waiting for its copy to come back (which then changes nothing), and its `assigned`
        // state is told now, with the decision.
        let mut effects = Vec::new();
        if let Event::Assign(a) = &decision.event {
            super::apply::assign(s, d.tk, a, &mut effects);
        }
        out.push(decision);
        out.extend(effects);
        super::emit::task_state(s, d.tk, crate::model::TaskStatus::Assigned, d.attempt, out);
        if let Some(decision) = policy_decision(s, d.tk, d.worker) {
            out.push(decision);
        }
    }
}

/// Every parent's artifact is known (always true once parents succeeded; guards a replay that
/// saw a success without its artifact).
pub(super) fn inputs_ready(s: &Scheduler, tk: Tk) -> bool {
    let job = s.reg.job(tk.0);
    job.dag.tasks[tk.1 as usize]
        .parents
        .iter()
        .all(|p| s.reg.task_of(tk.0, p).is_some_and(|parent| s.attempts.artifact(parent).is_some()))
}

/// A placement the policy gate constrained is recorded as a `PolicyDecision` on `job-events`.
fn policy_decision(s: &Scheduler, tk: Tk, worker: Worker) -> Option<Envelope> {
    let job = s.reg.job(tk.0);
    let placement = job.placement.get(tk.1 as usize)?;
    let rule = placement.rule.clone()?;
    let task = &job.dag.tasks[tk.1 as usize];
    let w = s.reg.executor_id(worker);
    let event = Event::PolicyDecision(splai_events::PolicyDecision {
        job_id: job.id.clone(),
        task_id: Some(task.id.clone()),
        stage: splai_events::PolicyStage::Placement,
        allowed: true,
        rule: Some(rule),
        reason: format!("{} — placed on {w}, which has {}", placement.reason, placement.labels.join(", ")),
    });
    Some(
        Envelope::new(
            format!("policy:{}:{}:{w}", job.id, task.id),
            s.now,
            s.reg.tenants[job.tenant as usize].clone(),
            event,
        )
        .with_traceparent(job.traceparent.clone()),
    )
}

fn assign_envelope(s: &Scheduler, tk: Tk, attempt: u32, worker: Worker) -> Envelope {
    let job = s.reg.job(tk.0);
    let task = &job.dag.tasks[tk.1 as usize];
    let inputs = task
        .inputs
        .iter()
        .map(|(name, input)| {
            let resolved = match input {
                TaskInput::Literal(v) => ResolvedInput::Literal(v.clone()),
                TaskInput::Output(r) => ResolvedInput::Artifact {
                    artifact: s
                        .reg
                        .task_of(tk.0, &r.task)
                        .and_then(|parent| s.attempts.artifact(parent))
                        .expect("placed only once every parent's artifact is known (`inputs_ready`)")
                        .clone(),
                    pointer: r.pointer.clone(),
                },
            };
            (name.clone(), resolved)
        })
        .collect();
    let timeout_ms = task.timeout_s.map_or(s.opts.default_task_timeout_ms, |t| u64::from(t) * 1000);
    // One span per decision, in the job's trace; the attempt's span will be its child.
    // A pool is its executor's: the assignment names the executor and the pool.
    let pool = s.reg.workers[worker as usize].pool;
    // An engine runs one model: inference that names none runs on that one, and says so.
    let mut requirements = task.requirements.clone();
    if pool == Pool::Engine && requirements.model.is_none() {
        requirements.model = s.reg.workers[worker as usize].models.first().cloned();
    }
    let worker_id = s.reg.executor_id(worker);
    let span = tracing::info_span!("splai.decision", otel.name = "schedule", job_id = %job.id, task_id = %task.id,
                                   attempt, worker = %worker_id);
    splai_telemetry::set_parent_from_traceparent(&span, job.traceparent.as_deref());
    let traceparent = span.in_scope(splai_telemetry::current_traceparent).or_else(|| job.traceparent.clone());
    let event = Event::Assign(Assign {
        attempt: AttemptId { job_id: job.id.clone(), task_id: task.id.clone(), attempt },
        worker_id: worker_id.to_string(),
        kind: task.kind,
        inputs,
        requirements,
        deadline_ms: s.now + timeout_ms,
        cache: task.cache.unwrap_or(true),
        expand: task.expand.is_some(),
        light: pool == Pool::Light,
        engine: pool == Pool::Engine,
    });
    Envelope::new(
        format!("assign:{}:{}:{attempt}", job.id, task.id),
        s.now,
        s.reg.tenants[job.tenant as usize].clone(),
        event,
    )
    .with_traceparent(traceparent)
}

impl Scheduler {
    /// Why `task` of `job` would go where it goes now: its score on every live worker.
    pub fn explain(&self, job_id: &str, task_id: &str) -> Option<Explanation> {
        let tk = self.reg.task_of(self.reg.jobs_named(job_id).next()?, task_id)?;
        let attempt = self.view.runnable(tk).map_or(1, |(a, _)| a);
        let c = candidate(self, tk, attempt);
        let verdicts = explain(&c, &worker_views(self));
        let chosen = verdicts
            .iter()
            .filter_map(|v| v.eligible.as_ref().ok().map(|s| (v.worker.clone(), *s)))
            .fold(None, |best: Option<(String, f64)>, (w, sc)| match best {
                Some((_, b)) if b >= sc => best,
                _ => Some((w, sc)),
            })
            .map(|(w, _)| w);
        Some(Explanation { at: self.now, task: format!("{job_id}/{task_id}"), chosen, verdicts })
    }
}
