//! The dataflow and its inputs and outputs, driven step by step.
//!
//! `feed` adds a fact at a time ≥ `now` (future times are how facts expire or fire later);
//! `step_to(t)` closes every time before `t`, runs the dataflow until its outputs for those times
//! are complete, and returns each output's changes consolidated over the step. Nothing is read
//! from an output before it is consolidated: differential outputs are not consolidated within a
//! time (an antijoin can emit +1 and −1 for one record).

use std::cell::RefCell;
use std::rc::Rc;

use differential_dataflow::consolidation::{consolidate, consolidate_updates};
use differential_dataflow::input::{Input, InputSession};
use timely::communication::Allocator;
use timely::communication::allocator::thread::Thread;
use timely::dataflow::operators::probe::Handle as Probe;
use timely::worker::{Config as WorkerConfig, Worker as TimelyWorker};

use crate::model::{Attempt, Fact, Job, JobStatus, Outcome, TaskStatus, Time, Tk, Worker};
use crate::operators::*;

/// A shared buffer an output's `inspect` appends to.
type Sink<D> = Rc<RefCell<Vec<(D, Time, isize)>>>;

/// Consolidated changes of every output over one step.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Changes {
    pub runnable: Vec<((Tk, Attempt), isize)>,
    /// The same changes with the time each happened at (not consolidated across times).
    pub runnable_timed: Vec<((Tk, Attempt), Time, isize)>,
    pub free_slots: Vec<((Worker, i64), isize)>,
    pub live_workers: Vec<((Worker, u32), isize)>,
    pub active: Vec<((Tk, (Attempt, Worker)), isize)>,
    pub orphaned: Vec<((Tk, (Attempt, Worker)), isize)>,
    pub task_states: Vec<((Tk, (TaskStatus, Attempt)), isize)>,
    pub job_states: Vec<((Job, JobStatus), isize)>,
}

impl Changes {
    pub fn is_empty(&self) -> bool {
        self.runnable.is_empty()
            && self.free_slots.is_empty()
            && self.live_workers.is_empty()
            && self.active.is_empty()
            && self.orphaned.is_empty()
            && self.task_states.is_empty()
            && self.job_states.is_empty()
    }
}

struct Inputs {
    tasks: InputSession<Time, (Tk, u32), isize>,
    edges: InputSession<Time, (Tk, Tk), isize>,
    assigned: InputSession<Time, (Tk, (Attempt, Worker)), isize>,
    started: InputSession<Time, (Tk, Attempt), isize>,
    ended: InputSession<Time, (Tk, (Attempt, Outcome)), isize>,
    backoff: InputSession<Time, Tk, isize>,
    beats: InputSession<Time, (Worker, (Time, u32)), isize>,
    leaves: InputSession<Time, (Worker, Time), isize>,
    cancelled: InputSession<Time, Job, isize>,
}

struct Sinks {
    runnable: Sink<(Tk, Attempt)>,
    free_slots: Sink<(Worker, i64)>,
    live_workers: Sink<(Worker, u32)>,
    active: Sink<(Tk, (Attempt, Worker))>,
    orphaned: Sink<(Tk, (Attempt, Worker))>,
    task_states: Sink<(Tk, (TaskStatus, Attempt))>,
    job_states: Sink<(Job, JobStatus)>,
}

/// The scheduler's dataflow on one timely worker.
pub struct Engine {
    worker: TimelyWorker,
    inputs: Inputs,
    sinks: Sinks,
    probe: Probe<Time>,
    now: Time,
    /// Windowed: each step is one time (see [`Engine::windowed`]).
    windowed: bool,
    /// Windowed only: facts fed since the last step or for later, not yet in the dataflow.
    held: Vec<(Fact, Time, isize)>,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine").field("now", &self.now).finish()
    }
}

fn sink<D: Clone + 'static>() -> Sink<D> {
    Rc::new(RefCell::new(Vec::new()))
}

impl Engine {
    /// A fresh engine at time 0.
    pub fn new() -> Self {
        let mut worker =
            TimelyWorker::new(WorkerConfig::default(), Allocator::Thread(Thread::default()), None);
        let probe = Probe::new();
        let sinks = Sinks {
            runnable: sink(),
            free_slots: sink(),
            live_workers: sink(),
            active: sink(),
            orphaned: sink(),
            task_states: sink(),
            job_states: sink(),
        };
        let s = (
            sinks.runnable.clone(),
            sinks.free_slots.clone(),
            sinks.live_workers.clone(),
            sinks.active.clone(),
            sinks.orphaned.clone(),
            sinks.task_states.clone(),
            sinks.job_states.clone(),
        );
        let probe2 = probe.clone();
        let inputs = worker.dataflow::<Time, _, _>(move |scope| {
            let (tasks_in, tasks) = scope.new_collection();
            let (edges_in, edges) = scope.new_collection();
            let (assigned_in, assigned) = scope.new_collection();
            let (started_in, started) = scope.new_collection();
            let (ended_in, ended) = scope.new_collection();
            let (backoff_in, backoff) = scope.new_collection::<Tk, isize>();
            let (beats_in, beats) = scope.new_collection();
            let (leaves_in, leaves) = scope.new_collection();
            let (cancelled_in, cancelled) = scope.new_collection::<Job, isize>();

            let live = live_workers::live_workers(beats, leaves);
            let current = current_attempts::current_attempts(assigned);
            let open = open_attempts::open_attempts(current.clone(), ended.clone());
            let orphaned = orphaned_attempts::orphaned_attempts(open.clone(), live.clone());
            let active = active_attempts::active_attempts(open, orphaned.clone());
            let failures = failed_attempts::failed_attempts(ended.clone(), orphaned.clone());
            let dead = dead_tasks::dead_tasks(tasks.clone(), failures.clone());
            let done = done_tasks::done_tasks(ended);
            let blocked = blocked_tasks::blocked_tasks(edges, done.clone());
            let stopped = stopped_jobs::stopped_jobs(cancelled.clone(), dead.clone());
            let runnable = runnable_tasks::runnable_tasks(
                tasks.clone(),
                blocked,
                done.clone(),
                active.clone(),
                backoff,
                dead.clone(),
                stopped.clone(),
                current.clone(),
            );
            let free = free_slots::free_slots(live.clone(), active.clone());
            let states = task_states::task_states(
                tasks,
                runnable.clone(),
                active.clone(),
                started,
                done,
                failures,
                dead,
                stopped,
                current,
            );
            let jobs = job_states::job_states(states.clone(), cancelled);

            capture(runnable, &s.0, &probe2);
            capture(free, &s.1, &probe2);
            capture(live, &s.2, &probe2);
            capture(active, &s.3, &probe2);
            capture(orphaned, &s.4, &probe2);
            capture(states, &s.5, &probe2);
            capture(jobs, &s.6, &probe2);

            Inputs {
                tasks: tasks_in,
                edges: edges_in,
                assigned: assigned_in,
                started: started_in,
                ended: ended_in,
                backoff: backoff_in,
                beats: beats_in,
                leaves: leaves_in,
                cancelled: cancelled_in,
            }
        });
        Self { worker, inputs, sinks, probe, now: 0, windowed: false, held: Vec::new() }
    }

    /// An engine that takes each step as one time: the facts due before the step's end enter the
    /// dataflow together, at the step's last time. Every collection is a function of the facts
    /// present, so what a step ends with, and so each output's changes over the step, are those
    /// of [`Engine::new`]; only the times inside a step are lost (`Changes::runnable_timed` carries
    /// the step's last time, exact when a step spans one timestamp). Replay takes thousands of events per step, and reduces do work per
    /// distinct time of each key: in one time, a task's passing states cancel before they cost.
    pub fn windowed() -> Self {
        Self { windowed: true, ..Self::new() }
    }

    /// The first time not yet closed.
    pub fn now(&self) -> Time {
        self.now
    }

    /// Add `fact` with multiplicity `diff` at `time` (clamped to `now`: the past is closed).
    pub fn feed(&mut self, fact: Fact, time: Time, diff: isize) {
        let t = time.max(self.now);
        if self.windowed {
            self.held.push((fact, t, diff));
            return;
        }
        self.send(fact, t, diff);
    }

    fn send(&mut self, fact: Fact, t: Time, diff: isize) {
        let i = &mut self.inputs;
        match fact {
            Fact::Task(tk, retries) => i.tasks.update_at((tk, retries), t, diff),
            Fact::Edge(p, c) => i.edges.update_at((p, c), t, diff),
            Fact::Assigned(tk, a, w) => i.assigned.update_at((tk, (a, w)), t, diff),
            Fact::Started(tk, a) => i.started.update_at((tk, a), t, diff),
            Fact::Ended(tk, a, o) => i.ended.update_at((tk, (a, o)), t, diff),
            Fact::Backoff(tk) => i.backoff.update_at(tk, t, diff),
            Fact::Beat(w, ts, cap) => i.beats.update_at((w, (ts, cap)), t, diff),
            Fact::Leave(w, ts) => i.leaves.update_at((w, ts), t, diff),
            Fact::Cancelled(job) => i.cancelled.update_at(job, t, diff),
        }
    }

    /// Close every time before `t` and return the outputs' changes since the last step.
    pub fn step_to(&mut self, t: Time) -> Changes {
        let t = t.max(self.now);
        if self.windowed {
            // Cancelling pairs (a timeout withdrawn when the attempt ended) go before the dataflow
            // sees them; what is due in this step enters at its last time, the rest waits.
            consolidate_updates(&mut self.held);
            let held = std::mem::take(&mut self.held);
            for (fact, at, diff) in held {
                if at < t {
                    self.send(fact, t - 1, diff);
                } else {
                    self.held.push((fact, at, diff));
                }
            }
        }
        let i = &mut self.inputs;
        i.tasks.advance_to(t);
        i.edges.advance_to(t);
        i.assigned.advance_to(t);
        i.started.advance_to(t);
        i.ended.advance_to(t);
        i.backoff.advance_to(t);
        i.beats.advance_to(t);
        i.leaves.advance_to(t);
        i.cancelled.advance_to(t);
        i.tasks.flush();
        i.edges.flush();
        i.assigned.flush();
        i.started.flush();
        i.ended.flush();
        i.backoff.flush();
        i.beats.flush();
        i.leaves.flush();
        i.cancelled.flush();
        while self.probe.less_than(&t) {
            self.worker.step();
        }
        self.now = t;
        // Summed per record and time: an antijoin can emit +1 and −1 for one record at one time.
        let mut runnable_timed: Vec<_> = self.sinks.runnable.borrow_mut().drain(..).collect();
        consolidate_updates(&mut runnable_timed);
        let mut runnable: Vec<_> = runnable_timed.iter().map(|(d, _, diff)| (*d, *diff)).collect();
        consolidate(&mut runnable);
        Changes {
            runnable,
            runnable_timed,
            free_slots: drain(&self.sinks.free_slots),
            live_workers: drain(&self.sinks.live_workers),
            active: drain(&self.sinks.active),
            orphaned: drain(&self.sinks.orphaned),
            task_states: drain(&self.sinks.task_states),
            job_states: drain(&self.sinks.job_states),
        }
    }
}

impl Default for Engine {
    fn default() -> Self {
        Self::new()
    }
}

/// Outputs are read through `inspect` as they are: the driver consolidates each step's changes
/// itself (see [`drain`]), which costs a sort instead of one more arrangement per output.
fn capture<'s, D>(collection: C<'s, D>, sink: &Sink<D>, probe: &Probe<Time>)
where
    D: differential_dataflow::ExchangeData,
{
    let sink = sink.clone();
    collection.inspect(move |(d, t, diff)| sink.borrow_mut().push((d.clone(), *t, *diff))).probe_with(probe);
}

/// Take a sink's contents, summed per record over all times, zero sums dropped, sorted.
fn drain<D: Ord + Clone>(sink: &Sink<D>) -> Vec<(D, isize)> {
    let mut out: Vec<(D, isize)> = sink.borrow_mut().drain(..).map(|(d, _, diff)| (d, diff)).collect();
    consolidate(&mut out);
    out
}
