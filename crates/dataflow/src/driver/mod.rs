//! The scheduler driver: turns envelopes into dataflow facts (with fencing and the attempt clock),
//! steps the dataflow, turns its consolidated changes into `job-events`, `dead-letter` and
//! `Revoke`s, and runs the assignment step. No I/O here: [`crate::runner`] connects it to the log,
//! `splai replay` to a file.

mod admission;
mod apply;
mod attempts;
mod controls;
mod emit;
mod expand;
mod job_ids;
mod job_table;
mod metrics;
mod parking;
mod pending;
mod placement;
mod ready;
mod registry;
mod replay_latency;
mod retire;
mod snapshot;
mod task_map;
mod unconfirmed;
mod view;
mod waiting;

use std::collections::BTreeMap;

use splai_config::SchedulerSettings;
use splai_events::Envelope;
use splai_ingest::plan::Limits;

pub use admission::{AdmissionLimits, TenantAdmission};
use attempts::Attempts;
pub use attempts::backoff_ms;
use controls::JobControls;
pub use job_ids::IdsError;
pub use metrics::MetricsOptions;
use parking::Parking;
use pending::Pending;
pub use placement::Explanation;
use ready::Ready;
pub use registry::EARLY_CANCELS;
use registry::Registry;
use replay_latency::ReplayLatency;
pub use snapshot::{
    DeferredParts, Gathered, IdsReader, SnapshotError, SnapshotParts, VERSION as SNAPSHOT_VERSION,
    stored_ids, verified_body as verified_snapshot,
};
use view::View;

use crate::assign::{Assigner, TenantPolicy};
use crate::engine::{Changes, Engine};
use crate::model::{Attempt, Job, JobStatus, Tally, TaskStatus, Time, Tk};

/// What the scheduler needs to know (from `[scheduler]` settings).
#[derive(Debug, Clone)]
pub struct SchedulerOptions {
    pub heartbeat_ttl_ms: u64,
    pub retry_base_ms: u64,
    pub retry_cap_ms: u64,
    pub default_max_retries: u32,
    /// Attempts a task may lose to infrastructure before it is dead-lettered.
    pub max_lost_attempts: u32,
    /// A decision not read back from the log within this long is written again (ms).
    pub decision_resend_ms: u64,
    /// A task no live worker can take fails after this long (ms; 0 = never).
    pub unschedulable_timeout_ms: u64,
    pub default_task_timeout_ms: u64,
    pub tenants: std::collections::HashMap<String, TenantPolicy>,
    pub limits: Limits,
    /// Placement rules of the policy gate (worker labels some tasks need).
    pub policy: std::sync::Arc<splai_ingest::policy::PolicySet>,
    /// Tenants' limits on jobs produced straight to Kafka (`[gateway]`'s, as REST has them).
    pub admission: AdmissionLimits,
    /// The `metrics` stream's window and cadence.
    pub metrics: MetricsOptions,
}

impl From<&SchedulerSettings> for SchedulerOptions {
    fn from(s: &SchedulerSettings) -> Self {
        Self {
            heartbeat_ttl_ms: s.heartbeat_ttl_ms,
            retry_base_ms: s.retry_base_ms,
            retry_cap_ms: s.retry_cap_ms,
            default_max_retries: s.default_max_retries,
            max_lost_attempts: s.max_lost_attempts,
            decision_resend_ms: s.decision_resend_ms,
            unschedulable_timeout_ms: s.unschedulable_timeout_ms,
            default_task_timeout_ms: u64::from(s.default_task_timeout_s) * 1000,
            tenants: s
                .tenants
                .iter()
                .map(|(k, v)| {
                    (k.clone(), TenantPolicy { weight: v.weight, max_running: v.max_running_tasks })
                })
                .collect(),
            limits: Limits::default(),
            policy: Default::default(),
            admission: AdmissionLimits::default(),
            metrics: MetricsOptions { window_ms: s.metrics_window_ms, interval_ms: s.metrics_interval_ms },
        }
    }
}

/// Counters for benchmarks and metrics.
#[derive(Debug, Default, Clone)]
pub struct Stats {
    pub events: u64,
    pub assignments: u64,
    /// Per decision: ticks-time from the task becoming runnable to its assignment (ms, virtual).
    pub decision_latency_ms: Vec<u64>,
    /// Per tick that made decisions: wall time the assignment step took (µs).
    pub decision_wall_us: Vec<u64>,
}

/// How the scheduler runs now.
#[derive(Debug, Default, Clone, Copy, serde::Serialize, serde::Deserialize)]
struct Mode {
    /// False while replaying the log at start: state is rebuilt, nothing is emitted or decided.
    live: bool,
    /// Replay only: each tick collects the previous step's changes and starts its own, so the
    /// dataflow works while the next events are applied (`splai replay`).
    pipelined: bool,
    /// The record being applied came from a Kafka producer's token (admission limits apply).
    produced: bool,
}

/// Every job's and task's state, by tenant and ids: what a replay of the same log must reach.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct States {
    /// (tenant, job id) → state.
    pub jobs: BTreeMap<(String, String), JobStatus>,
    /// (tenant, job id, task id) → state and attempt.
    pub tasks: BTreeMap<(String, String, String), (TaskStatus, Attempt)>,
}

/// The scheduler's state machine: the coordinator of parts that each own their state.
#[derive(Debug)]
pub struct Scheduler {
    opts: SchedulerOptions,
    engine: Engine,
    /// Jobs, tasks, workers and tenants by number.
    reg: Registry,
    /// Fencing and the attempt clock.
    attempts: Attempts,
    assigner: Assigner,
    /// The current view of the dataflow's outputs.
    view: View,
    /// Runnable and not pending, in placement order.
    ready: Ready,
    /// Decisions not yet in the dataflow's outputs, or not yet read back.
    pending: Pending,
    /// What was said of tasks that wait, and those given up as unschedulable.
    waiting: waiting::Waiting,
    /// Open jobs and submit rates per tenant, for jobs produced straight to Kafka.
    admission: admission::Admission,
    /// Metrics scopes and the dataflow's counts per scope, for the `metrics` stream.
    metrics: metrics::Metrics,
    /// Cancels, archives, refusals and deadlines of jobs.
    controls: JobControls,
    /// Events waiting for their job's admission, their task's appending or their attempt's
    /// assignment.
    parking: Parking,
    /// Finished jobs about to leave the state.
    retiring: retire::Retiring,
    replay_latency: ReplayLatency,
    now: Time,
    mode: Mode,
    /// Facts the engine had been fed when the last live tick ended ([`Scheduler::has_news`]).
    fed_at_tick: u64,
    /// `engine.fed()` when the last step ended: whether anything was fed since.
    fed_at_step: u64,
    pub stats: Stats,
}

impl Scheduler {
    pub fn new(opts: SchedulerOptions) -> Self {
        Self::with_engine(opts, Engine::new())
    }

    /// [`Scheduler::new`] with its dataflow on `workers` timely workers.
    pub fn on_workers(opts: SchedulerOptions, workers: usize) -> Self {
        Self::with_engine(opts, Engine::with_workers(workers))
    }

    /// A scheduler for replaying a recorded log in large steps (`splai replay`): each step is one
    /// dataflow time ([`Engine::windowed`]). It ends every step in the state [`Scheduler::new`]
    /// would; runnable→assigned latencies are only exact when every step is one timestamp.
    pub fn windowed(opts: SchedulerOptions) -> Self {
        Self::with_engine(opts, Engine::windowed())
    }

    /// [`Scheduler::windowed`] with its dataflow on `workers` timely workers in threads of
    /// their own; `pipelined`: the dataflow works on one step while the next events are applied,
    /// and what a tick absorbs is the step before (the state at the end, after
    /// [`Scheduler::go_live`] or [`Scheduler::settle`], is the same).
    pub fn windowed_on(opts: SchedulerOptions, workers: usize, pipelined: bool) -> Self {
        let mut s = Self::with_engine(opts, Engine::windowed_on(workers));
        s.mode.pipelined = pipelined;
        s
    }

    fn with_engine(opts: SchedulerOptions, engine: Engine) -> Self {
        Self {
            opts,
            engine,
            reg: Registry::default(),
            attempts: Attempts::default(),
            assigner: Assigner::default(),
            view: View::default(),
            ready: Ready::default(),
            pending: Pending::default(),
            waiting: waiting::Waiting::default(),
            admission: admission::Admission::default(),
            metrics: metrics::Metrics::default(),
            controls: JobControls::default(),
            parking: Parking::default(),
            retiring: retire::Retiring::default(),
            replay_latency: ReplayLatency::default(),
            now: 0,
            mode: Mode::default(),
            fed_at_tick: 0,
            fed_at_step: 0,
            stats: Stats::default(),
        }
    }

    /// The scheduler's time (ms).
    pub fn now(&self) -> Time {
        self.now
    }

    /// Move time forward (never back).
    pub fn advance(&mut self, to: Time) {
        self.now = self.now.max(to).max(self.engine.now());
    }

    /// Back to replaying (a scheduler restored from a snapshot taken live, before it reads the
    /// log after the snapshot's positions): nothing is emitted or decided until [`Self::go_live`].
    pub fn replay_tail(&mut self) {
        self.mode.live = false;
    }

    /// Whether every job id of the snapshot this scheduler was restored from is read: `None`
    /// while it is still being read in the background (never waits), then whether it could be.
    /// A scheduler not restored, or restored with them inline, has them.
    pub fn job_ids_ready(&self) -> Option<Result<(), IdsError>> {
        self.reg.ids.ready()
    }

    /// Whether applying `e` may ask about a job id that only every id of a restored snapshot
    /// answers while they are still being read (never otherwise): a new job id, or a record
    /// about a job not in flight. Then wait for them first ([`Scheduler::wait_job_ids`]).
    pub fn needs_every_job_id(&self, e: &Envelope) -> bool {
        if self.reg.ids.ready().is_some() {
            return false;
        }
        let named = match &e.event {
            splai_events::Event::JobRequest(r) => Some(r.job_id.as_deref().unwrap_or(&e.id)),
            _ => retire::named_job(e),
        };
        named.is_some_and(|id| !self.reg.knows_unretired(&e.tenant, id))
    }

    /// Wait until every job id of the snapshot this scheduler was restored from is read; whether
    /// it could be. Its reader runs on a thread of its own, so this may block any thread.
    pub fn wait_job_ids(&self) -> Result<(), IdsError> {
        self.reg.ids.wait()
    }

    /// Replay is over: from now on, emit changes and make decisions. Returns the snapshot of every
    /// job's admission and current state (with deterministic ids, so consumers that saw them
    /// before de-duplicate).
    pub fn go_live(&mut self) -> Vec<Envelope> {
        let mut out = Vec::new();
        self.settle(&mut out);
        if self.admission.has_held() {
            apply::decide_held(self, &mut out);
            self.settle(&mut out);
        }
        self.mode.live = true;
        self.requeue_runnable();
        self.emit_states(&mut out);
        self.metrics.records(self.now, self.opts.metrics, &self.reg.tenants, true, &mut out);
        // Their final states are written now: the jobs that finished in the replay retire.
        self.find_finished();
        self.retire_finished();
        out
    }

    /// Apply one envelope read from the log at the current time. Emissions go to `out`.
    pub fn apply(&mut self, envelope: &Envelope, out: &mut Vec<Envelope>) {
        self.stats.events += 1;
        apply::apply(self, envelope, out);
    }

    /// [`Scheduler::apply`] for a record a Kafka producer sent with an API token: a job request
    /// is held to its tenant's admission limits (the gateway held REST jobs to them).
    pub fn apply_produced(&mut self, envelope: &Envelope, out: &mut Vec<Envelope>) {
        self.mode.produced = true;
        self.apply(envelope, out);
        self.mode.produced = false;
    }

    /// Answer a record the intake gate refused (auth on): a job request becomes `JobRejected`
    /// with the reason, like any other failed admission; anything else a dead letter (live only).
    pub fn deny(
        &mut self,
        envelope: &Envelope,
        denied: &splai_ingest::intake::Denied,
        out: &mut Vec<Envelope>,
    ) {
        self.stats.events += 1;
        apply::deny(self, envelope, denied, out);
    }

    /// Close the current time: step the dataflow, emit what changed, decide assignments.
    pub fn tick(&mut self, out: &mut Vec<Envelope>) {
        self.feed_due_timeouts();
        let changes = if self.mode.pipelined && !self.mode.live {
            let previous = self.engine.finish_step();
            self.engine.start_step(self.now + 1);
            previous
        } else {
            self.engine.step_to(self.step_end())
        };
        self.absorb_step(changes, out);
    }

    /// Whether a tick now would step anything new: facts fed since the last tick's decisions.
    /// A batch that only brought the scheduler's own decisions back fed nothing (they were
    /// applied as made); they, and what they fed, wait for the next event or clock tick.
    pub fn has_news(&self) -> bool {
        self.engine.fed() != self.fed_at_tick
    }

    /// A tick that waits for its own step (and any still under way): afterwards the scheduler's
    /// view is the dataflow's at the current time, pipelined or not.
    pub fn settle(&mut self, out: &mut Vec<Envelope>) {
        self.feed_due_timeouts();
        let changes = self.engine.step_to(self.step_end());
        self.absorb_step(changes, out);
    }

    /// Where a live step ends: after `now`, and after the engine's first open time, where facts
    /// applied since the last step sit when that step already closed `now` (the past is closed).
    /// A second step within one clock reading (two batches read within one millisecond) must
    /// still close them, or what they make runnable waits for the next clock tick. The clock
    /// itself (`now`, which stamps decisions) does not move.
    ///
    /// With nothing fed since the last step, the step closes `now` and no more: closing the open
    /// time past it would apply facts held for that time (a heartbeat's expiry, a backoff's end)
    /// a millisecond early, which a replay, stepping once per time, does not (a replay's go-live
    /// settle did, and a worker expired there that the live scheduler still had). Metrics
    /// tallies do not count as fed ([`crate::engine::Engine::feed_aside`]): absorbing a replay's last step tallies
    /// a retry, and the go-live settle then ended a backoff due a millisecond later.
    fn step_end(&self) -> Time {
        if self.engine.fed() == self.fed_at_step {
            (self.now + 1).max(self.engine.now())
        } else {
            self.now.max(self.engine.now()) + 1
        }
    }

    fn absorb_step(&mut self, changes: Changes, out: &mut Vec<Envelope>) {
        // Before anything absorbing it feeds (decisions): those are news for the next step.
        self.fed_at_step = self.engine.fed();
        // Before the step's changes: a task whose decision they now hold may be runnable again
        // in the same step (its attempt already lost) and must go back into placement.
        let decided = self.pending.stepped();
        self.absorb(&changes, &decided, out);
        if self.mode.live {
            self.revoke_timed_out(out);
            self.revoke_expired(out);
            self.resend_unconfirmed(out);
            placement::place(self, out);
            self.review_waiting(out);
            self.metrics.records(self.now, self.opts.metrics, &self.reg.tenants, false, out);
            self.retire_finished();
            self.fed_at_tick = self.engine.fed();
        } else {
            self.replay_latency.close_step(&changes.runnable_timed, &mut self.stats);
        }
    }

    /// `decided`: the decisions made since the last step, whose `assigned` states were told.
    fn absorb(
        &mut self,
        changes: &Changes,
        decided: &rustc_hash::FxHashMap<Tk, (Attempt, crate::model::Worker)>,
        out: &mut Vec<Envelope>,
    ) {
        let moved = self.view.absorb(changes, self.now);
        self.metrics.absorb(changes);
        if !changes.free_slots.is_empty() || !changes.live_workers.is_empty() {
            // Executors, not their light and engine pools (entries of their own in the dataflow).
            let live: Vec<_> = self
                .view
                .live_workers()
                .filter(|(w, _)| self.reg.workers.get(*w as usize).is_some_and(|i| i.executor.is_none()))
                .collect();
            let free = live.iter().filter_map(|(w, _)| self.view.free(*w)).sum();
            self.metrics.set_cluster(live.len() as u64, free);
        }
        for tk in moved.runnable {
            self.requeue(tk);
        }
        for ((tk, (attempt, w)), diff) in &changes.orphaned {
            if *diff > 0 {
                self.attempts.set_orphaned(*tk, *attempt, true);
                if let Some(st) =
                    self.attempts.current(*tk).filter(|st| st.attempt == *attempt && st.worker == *w)
                {
                    let why = apply::lost_with_worker(self, st);
                    self.attempts.set_error(*tk, why);
                }
            } else {
                self.attempts.set_orphaned(*tk, *attempt, false);
            }
        }
        for (tk, status, attempt) in moved.tasks {
            match status {
                TaskStatus::Failed => self.tally(tk.0, Tally::Retried),
                TaskStatus::DeadLettered => self.tally(tk.0, Tally::DeadLettered),
                _ => {}
            }
            // Told with the decision (see `placement`).
            let told = status == TaskStatus::Assigned && decided.get(&tk).is_some_and(|(a, _)| *a == attempt);
            if self.mode.live && !told {
                emit::task_state(self, tk, status, attempt, out);
            }
        }
        for (job, status) in moved.jobs {
            match status {
                JobStatus::Succeeded => self.tally(job, Tally::Succeeded),
                JobStatus::Failed => self.tally(job, Tally::Failed),
                _ => {}
            }
            let open = matches!(status, JobStatus::Queued | JobStatus::Running);
            self.admission.set_open(job, self.reg.job(job).tenant, open);
            if retire::retires(status) {
                self.retiring.finished(job);
            }
            if self.mode.live {
                emit::job_state(self, job, status, out);
            }
        }
    }

    /// Count `tally` in `job`'s metrics scope's window, from now.
    fn tally(&mut self, job: Job, tally: Tally) {
        let Some(scope) = self.metrics.scope_of(job) else { return };
        metrics::Metrics::tally(&mut self.engine, scope, tally, self.now, self.opts.metrics.window_ms);
    }

    /// The metrics scope `job` counts in (at its admission).
    fn enter_scope(&mut self, job: Job) {
        let info = self.reg.job(job);
        let scope = self.metrics.scope(info.tenant, info.model.as_deref());
        self.metrics.enter(job, scope);
        metrics::Metrics::tally(
            &mut self.engine,
            scope,
            Tally::Admitted,
            self.now,
            self.opts.metrics.window_ms,
        );
    }

    /// Cancel `job` with `reason` at `at`: kept with its time (see `apply::fire_timeout`), fed to
    /// the dataflow, which stops scheduling it, and counted by the view. False if it already was.
    fn cancel(&mut self, job: Job, reason: &str, at: Time) -> bool {
        if !self.controls.cancel(job, reason, at) {
            return false;
        }
        self.engine.feed(crate::model::Fact::Cancelled(job), at, 1);
        self.view.mark_cancelled(job);
        true
    }

    /// Feed the deadlines of jobs due up to now, at their deadline.
    fn feed_due_deadlines(&mut self) {
        for (deadline, job) in self.controls.due(self.now, self.mode.live) {
            self.engine.feed(crate::model::Fact::Expired(job), deadline, 1);
            self.view.mark_expired(job);
        }
    }

    /// Stop the open attempts of jobs whose deadline passed.
    fn revoke_expired(&mut self, out: &mut Vec<Envelope>) {
        for job in self.controls.take_to_revoke() {
            self.revoke_open_attempts(job, splai_events::RevokeReason::TimedOut, out);
        }
    }

    /// Tell the workers of `job`'s open attempts to stop (a cancel, a passed deadline).
    fn revoke_open_attempts(
        &mut self,
        job: Job,
        reason: splai_events::RevokeReason,
        out: &mut Vec<Envelope>,
    ) {
        // Stopped before its decision came back from the log: not written again.
        self.pending.withdraw_job(job, self.reg.job(job).dag.tasks.len() as u32);
        for (tk, attempt) in self.attempts.open_of_job(job) {
            emit::revoke(self, tk, attempt, reason, out);
        }
    }

    /// Feed the timeouts of attempts still open at deadlines up to now (see `attempts`).
    fn feed_due_timeouts(&mut self) {
        self.feed_due_deadlines();
        for (tk, attempt) in self.attempts.due_timeouts(self.now) {
            let open = self.attempts.current(tk).filter(|st| st.attempt == attempt && !st.ended);
            if let Some(st) = open {
                apply::fire_timeout(self, tk, st);
                self.attempts.timed_out(tk, attempt);
            }
        }
    }

    /// Write again the decisions that have not come back from the log in time (see
    /// [`Unconfirmed`]).
    fn resend_unconfirmed(&mut self, out: &mut Vec<Envelope>) {
        let again = self.pending.due(self.now, self.opts.decision_resend_ms);
        if !again.is_empty() {
            tracing::warn!(
                decisions = again.len(),
                first = %again[0].id,
                after_ms = self.opts.decision_resend_ms,
                "decisions did not come back from the log; writing them again"
            );
            out.extend(again);
        }
    }

    /// Tell the workers of attempts that timed out (and are still open) to stop.
    fn revoke_timed_out(&mut self, out: &mut Vec<Envelope>) {
        for (tk, attempt) in self.attempts.take_timed_out() {
            if self.attempts.is_open(tk, attempt) {
                let why = format!("attempt {attempt} timed out (no result by its deadline)");
                self.attempts.set_error(tk, why);
                emit::revoke(self, tk, attempt, splai_events::RevokeReason::TimedOut, out);
            }
        }
    }

    /// Every job's admission and current state, with deterministic ids (see [`Scheduler::go_live`]).
    /// Retired jobs are not among them: they retired live, after their final states were written.
    fn emit_states(&mut self, out: &mut Vec<Envelope>) {
        for j in 0..self.reg.job_numbers() {
            if !self.reg.is_held(j) || self.controls.is_refused(j) {
                continue; // retired, or its rejection is among `rejected`
            }
            emit::admitted(self, j, out);
            if let Some(status) = self.view.job(j) {
                emit::job_state(self, j, status, out);
            }
            for t in 0..self.reg.job(j).dag.tasks.len() as u32 {
                if let Some((status, attempt)) = self.view.task((j, t)) {
                    emit::task_state(self, (j, t), status, attempt, out);
                }
            }
        }
        out.extend(self.reg.rejected.values().cloned());
        out.extend(self.reg.denied.values().cloned());
    }

    /// Every admitted job's state now (jobs a `job_refused` withdrew are not admitted), and the
    /// states of the tasks of jobs not finished: a succeeded or cancelled job's tasks leave the
    /// state once nothing of it is open, at a step replay and live need not share.
    pub fn states(&self) -> States {
        let mut states = States::default();
        for ((tenant, id), status) in self.reg.retired_named() {
            states.jobs.insert((tenant.to_string(), id.to_string()), status);
        }
        for (j, info) in self.reg.held_jobs() {
            if self.controls.is_refused(j) {
                continue;
            }
            let tenant = &self.reg.tenants[info.tenant as usize];
            let status = self.view.job(j);
            if let Some(status) = status {
                states.jobs.insert((tenant.clone(), info.id.clone()), status);
            }
            if status.is_some_and(retire::retires) {
                continue;
            }
            for (t, task) in info.dag.tasks.iter().enumerate() {
                if let Some(st) = self.view.task((j, t as u32)) {
                    states.tasks.insert((tenant.clone(), info.id.clone(), task.id.clone()), st);
                }
            }
        }
        states
    }

    /// Job status by id (tests, tools); a retired job's final one.
    pub fn job_status(&self, job_id: &str) -> Option<JobStatus> {
        let retired = || self.reg.retired_named_id(job_id);
        self.reg.jobs_named(job_id).next().and_then(|j| self.view.job(j)).or_else(retired)
    }

    /// `tenant`'s job `job_id` status; a retired job's final one.
    pub fn job_status_in(&self, tenant: &str, job_id: &str) -> Option<JobStatus> {
        match self.reg.own_job(tenant, job_id) {
            Some(j) => self.view.job(j),
            None => self.reg.own_retired(tenant, job_id).map(|(_, st)| st),
        }
    }

    /// Jobs held in the state (admitted and not retired) and jobs retired.
    pub fn job_counts(&self) -> (usize, usize) {
        let held = self.reg.held_jobs().count();
        (held, self.reg.job_numbers() as usize - held)
    }

    /// Task status and attempt by ids (tests, tools).
    pub fn task_status(&self, job_id: &str, task_id: &str) -> Option<(TaskStatus, Attempt)> {
        let job = self.reg.jobs_named(job_id).next()?;
        self.reg.task_of(job, task_id).and_then(|tk| self.view.task(tk))
    }

    /// Runnable tasks not yet placed (live).
    pub fn runnable_count(&self) -> usize {
        self.ready.len()
    }

    /// Keep `tk`'s place in the placement queue in step with `runnable` and `pending` (live
    /// only: a replay places nothing, and [`Scheduler::go_live`] fills the queue).
    fn requeue(&mut self, tk: Tk) {
        if !self.mode.live {
            return;
        }
        if self.view.runnable(tk).is_some() && !self.pending.contains(tk) {
            let job = self.reg.job(tk.0);
            self.ready.insert(tk, job.priority, job.tenant, job.admitted_at);
        } else {
            self.ready.remove(tk);
        }
    }

    /// Fill the placement queue from the view's runnable tasks (live only, as [`Scheduler::requeue`]).
    fn requeue_runnable(&mut self) {
        let runnable: Vec<Tk> = self.view.runnable_tasks().map(|(tk, _, _)| tk).collect();
        for tk in runnable {
            self.requeue(tk);
        }
    }

    /// Open and pending attempts per tenant (for tenants' `max_running` quotas).
    fn running_per_tenant(&self) -> std::collections::HashMap<u32, u32> {
        let mut running = std::collections::HashMap::new();
        for tk in self.view.active_tasks().chain(self.pending.iter().map(|(tk, _)| tk)) {
            *running.entry(self.reg.job(tk.0).tenant).or_insert(0) += 1;
        }
        running
    }

    fn tenant_policy(&self, tenant: u32) -> TenantPolicy {
        self.reg
            .tenants
            .get(tenant as usize)
            .and_then(|name| self.opts.tenants.get(name))
            .copied()
            .unwrap_or_default()
    }
}
