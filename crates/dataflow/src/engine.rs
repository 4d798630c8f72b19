//! The dataflow and its inputs and outputs, driven step by step.
//!
//! `feed` adds a fact at a time ≥ `now` (future times are how facts expire or fire later);
//! `step_to(t)` closes every time before `t`, runs the dataflow until its outputs for those times
//! are complete, and returns each output's changes consolidated over the step. Nothing is read
//! from an output before it is consolidated: differential outputs are not consolidated within a
//! time (an antijoin can emit +1 and −1 for one record).

use std::cell::RefCell;
use std::rc::Rc;
use std::sync::{Arc, Mutex, mpsc};

use differential_dataflow::AsCollection;
use differential_dataflow::consolidation::{consolidate, consolidate_updates};
use differential_dataflow::input::{Input, InputSession};
use timely::communication::allocator::thread::Thread;
use timely::communication::{Allocator, WorkerGuards};
use timely::dataflow::operators::Exchange;
use timely::dataflow::operators::probe::Handle as Probe;
use timely::worker::{Config as WorkerConfig, Worker as TimelyWorker};

use crate::ledger::Ledger;
use crate::model::{Attempt, Budget, Fact, Job, Outcome, Scope, Tally, TaskStatus, Time, Tk, Worker};
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
    /// Per metrics scope and tally, the window's count (as data: a change retracts the old one).
    pub metrics: Vec<(((Scope, Tally), isize), isize)>,
}

impl Changes {
    pub fn is_empty(&self) -> bool {
        self.runnable.is_empty()
            && self.free_slots.is_empty()
            && self.live_workers.is_empty()
            && self.active.is_empty()
            && self.orphaned.is_empty()
            && self.task_states.is_empty()
            && self.metrics.is_empty()
    }
}

struct Inputs {
    tasks: InputSession<Time, (Tk, Budget), isize>,
    edges: InputSession<Time, (Tk, Tk), isize>,
    assigned: InputSession<Time, (Tk, (Attempt, Worker)), isize>,
    started: InputSession<Time, (Tk, Attempt), isize>,
    ended: InputSession<Time, (Tk, (Attempt, Outcome)), isize>,
    backoff: InputSession<Time, Tk, isize>,
    beats: InputSession<Time, (Worker, (Time, u32)), isize>,
    leaves: InputSession<Time, (Worker, Time), isize>,
    cancelled: InputSession<Time, Job, isize>,
    expired: InputSession<Time, Job, isize>,
    tallies: InputSession<Time, (Scope, Tally), isize>,
}

struct Sinks {
    runnable: Sink<(Tk, Attempt)>,
    free_slots: Sink<(Worker, i64)>,
    live_workers: Sink<(Worker, u32)>,
    active: Sink<(Tk, (Attempt, Worker))>,
    orphaned: Sink<(Tk, (Attempt, Worker))>,
    task_states: Sink<(Tk, (TaskStatus, Attempt))>,
    metrics: Sink<((Scope, Tally), isize)>,
}

/// The scheduler's dataflow, on one timely worker in this thread or on several in threads of
/// their own ([`Engine::with_workers`]).
pub struct Engine {
    core: Core,
    now: Time,
    /// Windowed: each step is one time (see [`Engine::windowed`]).
    windowed: bool,
    /// Windowed only: facts fed since the last step or for later, not yet in the dataflow.
    held: Vec<(Fact, Time, isize)>,
    /// Not windowed: facts dated after the open time (a heartbeat's expiry, a backoff's end, a
    /// metrics tally's window end), sent to the dataflow at their own times when the step that
    /// reaches them starts. Given to the dataflow early, they wait in its batchers, which merge
    /// everything still pending on every step: with a minute's metrics window at a high rate,
    /// that was most of a step's work.
    later: std::collections::BTreeMap<Time, Vec<(Fact, isize)>>,
    /// A step is under way ([`Engine::start_step`]) and not yet collected.
    started: bool,
    /// Changes of steps collected early, returned by the next [`Engine::finish_step`].
    carried: Changes,
    /// Facts fed so far (how a caller tells whether a step has anything new).
    fed: u64,
    /// Every fact in the inputs, consolidated per fact once its time closed: what a snapshot keeps, since the
    /// outputs are a function of it ([`Engine::inputs`], [`Engine::restored`]). Not kept by a
    /// windowed engine (`splai replay`, which takes no snapshot): it cost that replay ~10 % of its
    /// speed and ~15 % more memory.
    ledger: Option<Ledger>,
}

enum Core {
    Here(Box<Local>),
    Threads(Remote),
}

impl Core {
    fn threads(workers: usize) -> Self {
        let (builders, others) = timely::CommunicationConfig::Process(workers)
            .try_build()
            .unwrap_or_else(|e| panic!("timely allocators for {workers} workers: {e}"));
        let (senders, receivers): (Vec<_>, Vec<_>) = (0..workers).map(|_| mpsc::channel::<Command>()).unzip();
        let receivers = Arc::new(Mutex::new(receivers.into_iter().map(Some).collect::<Vec<_>>()));
        let (changes_tx, changes) = mpsc::channel::<Changes>();
        let changes_tx = Arc::new(Mutex::new(Some(changes_tx)));
        let guards = timely::communication::initialize_from(builders, others, move |allocator| {
            let index = allocator.index();
            let commands =
                receivers.lock().expect("command receivers")[index].take().expect("one per worker");
            let answer = if index == 0 { changes_tx.lock().expect("changes sender").take() } else { None };
            let worker = TimelyWorker::new(WorkerConfig::default(), allocator, None);
            serve(Local::new(worker), &commands, answer.as_ref());
        })
        .unwrap_or_else(|e| panic!("starting {workers} timely workers: {e}"));
        Core::Threads(Remote { commands: senders, changes, pending: Vec::new(), guards: Some(guards) })
    }
}

/// One timely worker with its share of the dataflow: the inputs (fed on worker 0 only) and the
/// outputs (gathered on worker 0 when there are several).
struct Local {
    worker: TimelyWorker,
    inputs: Inputs,
    sinks: Sinks,
    probe: Probe<Time>,
    /// In this thread a step is done when started; its changes wait here to be collected.
    done: Option<Changes>,
}

/// Workers in threads: facts go to worker 0 in batches, every worker is told each step's time,
/// and worker 0 answers with the step's changes.
struct Remote {
    commands: Vec<mpsc::Sender<Command>>,
    changes: mpsc::Receiver<Changes>,
    pending: Vec<(Fact, Time, isize)>,
    guards: Option<WorkerGuards<()>>,
}

enum Command {
    Feed(Vec<(Fact, Time, isize)>),
    Step(Time),
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
    /// A fresh engine at time 0 on one timely worker in this thread.
    pub fn new() -> Self {
        let worker = TimelyWorker::new(WorkerConfig::default(), Allocator::Thread(Thread::default()), None);
        Self::with_core(Core::Here(Box::new(Local::new(worker))))
    }

    /// A fresh engine at time 0 on `workers` timely workers, each in a thread of its own (keyed
    /// collections are spread across them); 1 is [`Engine::new`].
    pub fn with_workers(workers: usize) -> Self {
        if workers <= 1 {
            return Self::new();
        }
        Self::with_core(Core::threads(workers))
    }

    fn with_core(core: Core) -> Self {
        Self {
            core,
            now: 0,
            windowed: false,
            held: Vec::new(),
            later: Default::default(),
            started: false,
            carried: Changes::default(),
            fed: 0,
            ledger: Some(Default::default()),
        }
    }

    /// An engine that takes each step as one time: the facts due before the step's end enter the
    /// dataflow together, at the step's last time. Every collection is a function of the facts
    /// present, so what a step ends with, and so each output's changes over the step, are those
    /// of [`Engine::new`]; only the times inside a step are lost (`Changes::runnable_timed` carries
    /// the step's last time, exact when a step spans one timestamp). Replay takes thousands of events per step, and reduces do work per
    /// distinct time of each key: in one time, a task's passing states cancel before they cost.
    pub fn windowed() -> Self {
        Self::windowed_on(1)
    }

    /// [`Engine::windowed`] on `workers` timely workers in threads of their own (even one): the
    /// dataflow can then work on a step ([`Engine::start_step`]) while the caller prepares the
    /// next.
    pub fn windowed_on(workers: usize) -> Self {
        let mut engine = Self::with_core(Core::threads(workers.max(1)));
        engine.windowed = true;
        engine.ledger = None;
        engine
    }

    /// The first time not yet closed.
    pub fn now(&self) -> Time {
        self.now
    }

    /// Facts fed since the engine was made.
    pub fn fed(&self) -> u64 {
        self.fed
    }

    /// Add `fact` with multiplicity `diff` at `time` (clamped to `now`: the past is closed).
    pub fn feed(&mut self, fact: Fact, time: Time, diff: isize) {
        self.fed += 1;
        self.feed_aside(fact, time, diff);
    }

    /// [`Engine::feed`] without counting the fact as fed: for facts no decision reads (metrics
    /// tallies). A scheduler steps past its open time early only for counted facts (see
    /// `Scheduler::step_end`), and a tally fed while absorbing a step must not make the next
    /// step close what is due at that open time (a backoff's end) before the clock reaches it.
    pub fn feed_aside(&mut self, fact: Fact, time: Time, diff: isize) {
        let t = time.max(self.now);
        if let Some(ledger) = &mut self.ledger {
            ledger.add(fact.clone(), t, diff);
        }
        if self.windowed {
            self.held.push((fact, t, diff));
            return;
        }
        if t > self.now {
            self.later.entry(t).or_default().push((fact, diff));
            return;
        }
        self.send(fact, t, diff);
    }

    fn send(&mut self, fact: Fact, t: Time, diff: isize) {
        match &mut self.core {
            Core::Here(local) => local.send(fact, t, diff),
            Core::Threads(remote) => remote.pending.push((fact, t, diff)),
        }
    }

    /// Whether it keeps its inputs (snapshots and retiring jobs need them; a windowed one does not).
    pub fn keeps_inputs(&self) -> bool {
        self.ledger.is_some()
    }

    /// Take every fact of `job` out of the inputs (a finished job leaves the state): those of
    /// closed times now, future ones (a backoff's end) at their times. A windowed engine keeps no
    /// ledger and retires nothing (`splai replay` keeps every job).
    pub fn retire(&mut self, job: Job) {
        let Some(facts) = self.ledger.as_ref().map(|l| l.of_job(job)) else { return };
        let now = self.now;
        for (fact, t, diff) in facts {
            self.feed(fact, t.unwrap_or(now), -diff);
        }
    }

    /// Every fact in the inputs with its time and multiplicity, sorted: with [`Engine::now`],
    /// what rebuilds this engine ([`Engine::restored`]). None for a windowed engine.
    pub fn inputs(&self) -> Option<Vec<(Fact, Time, isize)>> {
        Some(self.ledger.as_ref()?.facts(self.now))
    }

    /// An engine on `workers` timely workers ([`Engine::with_workers`]) holding `inputs` with every time before
    /// `now` closed: what [`Engine::inputs`] and [`Engine::now`] of another said. Facts of the
    /// past enter at `now − 1` (their history before is not needed, only what holds at `now`),
    /// later ones at their times. The rebuilding step's changes (the whole outputs) are dropped:
    /// the caller restores its view of them with the rest of its state.
    pub fn restored(inputs: Vec<(Fact, Time, isize)>, now: Time, workers: usize) -> Self {
        let mut engine = Self::with_workers(workers);
        let past = now.saturating_sub(1);
        for (fact, t, diff) in inputs {
            engine.feed(fact, t.max(past), diff);
        }
        engine.step_to(now);
        engine
    }

    /// Close every time before `t` and return the outputs' changes since the last step.
    pub fn step_to(&mut self, t: Time) -> Changes {
        self.start_step(t);
        self.finish_step()
    }

    /// Close every time before `t`; [`Engine::finish_step`] returns the changes. With worker
    /// threads the dataflow works on the step meanwhile; facts fed meanwhile belong to the next
    /// step. A step still uncollected is collected first (its changes come with this one's).
    pub fn start_step(&mut self, t: Time) {
        if self.started {
            let earlier = self.collect();
            self.carried.append(earlier);
        }
        let t = t.max(self.now);
        if self.windowed {
            // What is due in this step enters at its last time; the rest (heartbeat expiries,
            // backoff ends) waits. Unsorted: the dataflow's batchers sort what they take anyway,
            // and nearly nothing here cancels out since timeouts are fed only when due.
            // Sized like the last: growing from empty each step reallocated and freed large blocks.
            let size = self.held.len();
            let held = std::mem::replace(&mut self.held, Vec::with_capacity(size));
            for (fact, at, diff) in held {
                if at < t {
                    self.send(fact, t - 1, diff);
                } else {
                    self.held.push((fact, at, diff));
                }
            }
        }
        // Facts dated inside this step go in now, at their times.
        let after = self.later.split_off(&t);
        for (at, facts) in std::mem::replace(&mut self.later, after) {
            for (fact, diff) in facts {
                self.send(fact, at, diff);
            }
        }
        match &mut self.core {
            Core::Here(local) => local.done = Some(local.step_to(t)),
            Core::Threads(remote) => remote.start(t),
        }
        self.now = t;
        if let Some(ledger) = &mut self.ledger {
            ledger.close_before(t);
        }
        self.started = true;
    }

    /// The outputs' changes over the steps started and not yet collected (waiting for the last).
    pub fn finish_step(&mut self) -> Changes {
        let mut changes = std::mem::take(&mut self.carried);
        if self.started {
            let last = self.collect();
            changes.append(last);
        }
        changes
    }

    fn collect(&mut self) -> Changes {
        self.started = false;
        match &mut self.core {
            Core::Here(local) => local.done.take().unwrap_or_default(),
            Core::Threads(remote) => remote.finish(),
        }
    }
}

impl Changes {
    /// Add a later step's changes: summed per record (and per time for `runnable_timed`).
    fn append(&mut self, later: Changes) {
        if self.is_empty() && self.runnable_timed.is_empty() {
            *self = later;
            return;
        }
        fn merge<D: Ord>(into: &mut Vec<(D, isize)>, more: Vec<(D, isize)>) {
            into.extend(more);
            consolidate(into);
        }
        merge(&mut self.runnable, later.runnable);
        self.runnable_timed.extend(later.runnable_timed);
        consolidate_updates(&mut self.runnable_timed);
        merge(&mut self.free_slots, later.free_slots);
        merge(&mut self.live_workers, later.live_workers);
        merge(&mut self.active, later.active);
        merge(&mut self.orphaned, later.orphaned);
        merge(&mut self.task_states, later.task_states);
    }
}

impl Local {
    fn new(mut worker: TimelyWorker) -> Self {
        let probe = Probe::new();
        let sinks = Sinks {
            runnable: sink(),
            free_slots: sink(),
            live_workers: sink(),
            active: sink(),
            orphaned: sink(),
            task_states: sink(),
            metrics: sink(),
        };
        let inputs = build(&mut worker, &sinks, &probe);
        Self { worker, inputs, sinks, probe, done: None }
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
            Fact::Expired(job) => i.expired.update_at(job, t, diff),
            Fact::Tally(scope, tally) => i.tallies.update_at((scope, tally), t, diff),
        }
    }

    fn step_to(&mut self, t: Time) -> Changes {
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
        i.expired.advance_to(t);
        i.tallies.advance_to(t);
        i.tasks.flush();
        i.edges.flush();
        i.assigned.flush();
        i.started.flush();
        i.ended.flush();
        i.backoff.flush();
        i.beats.flush();
        i.leaves.flush();
        i.cancelled.flush();
        i.expired.flush();
        i.tallies.flush();
        while self.probe.less_than(&t) {
            self.worker.step();
        }
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
            metrics: drain(&self.sinks.metrics),
        }
    }

    /// Close the inputs and run until the dataflow has ended on every worker.
    fn finish(self) {
        let Local { mut worker, inputs, .. } = self;
        drop(inputs);
        while worker.step() {}
    }
}

/// A worker thread's life: apply its commands in order until the engine is dropped.
fn serve(mut local: Local, commands: &mpsc::Receiver<Command>, answer: Option<&mpsc::Sender<Changes>>) {
    while let Ok(command) = commands.recv() {
        match command {
            Command::Feed(facts) => {
                for (fact, t, diff) in facts {
                    local.send(fact, t, diff);
                }
            }
            Command::Step(t) => {
                let changes = local.step_to(t);
                if let Some(answer) = answer {
                    // The engine waits for this; if it is gone it is being dropped.
                    let _ = answer.send(changes);
                }
            }
        }
    }
    local.finish();
}

impl Remote {
    fn start(&mut self, t: Time) {
        // The next step's buffer sized like this one's (see `Engine::start_step`).
        let size = self.pending.len();
        let facts = std::mem::replace(&mut self.pending, Vec::with_capacity(size));
        // A send fails only if a worker thread has died, which is a panic there: `finish` then
        // fails too and reports it.
        let _ = self.commands[0].send(Command::Feed(facts));
        for c in &self.commands {
            let _ = c.send(Command::Step(t));
        }
    }

    fn finish(&mut self) -> Changes {
        self.changes.recv().expect("the dataflow's worker 0 panicked")
    }
}

impl Drop for Remote {
    fn drop(&mut self) {
        self.commands.clear();
        if let Some(guards) = self.guards.take() {
            // Joins every worker; a worker's panic is reported here unless we are unwinding.
            if std::thread::panicking() {
                std::mem::forget(guards);
            } else {
                drop(guards);
            }
        }
    }
}

/// The dataflow on `worker`: its inputs, and its outputs captured into `sinks` (on worker 0 when
/// there are several workers).
fn build(worker: &mut TimelyWorker, sinks: &Sinks, probe: &Probe<Time>) -> Inputs {
    let s = (
        sinks.runnable.clone(),
        sinks.free_slots.clone(),
        sinks.live_workers.clone(),
        sinks.active.clone(),
        sinks.orphaned.clone(),
        sinks.task_states.clone(),
        sinks.metrics.clone(),
    );
    let probe2 = probe.clone();
    worker.dataflow::<Time, _, _>(move |scope| {
        let (tasks_in, tasks) = scope.new_collection();
        let (edges_in, edges) = scope.new_collection();
        let (assigned_in, assigned) = scope.new_collection();
        let (started_in, started) = scope.new_collection();
        let (ended_in, ended) = scope.new_collection();
        let (backoff_in, backoff) = scope.new_collection::<Tk, isize>();
        let (beats_in, beats) = scope.new_collection();
        let (leaves_in, leaves) = scope.new_collection();
        let (cancelled_in, cancelled) = scope.new_collection::<Job, isize>();
        let (expired_in, expired) = scope.new_collection::<Job, isize>();
        let (tallies_in, tallies) = scope.new_collection::<(Scope, Tally), isize>();

        let live = live_workers::live_workers(beats, leaves);
        let current = current_attempts::current_attempts(assigned);
        let open = open_attempts::open_attempts(current.clone(), ended.clone());
        let load = worker_load::worker_load(live.clone(), open.clone());
        let orphaned = worker_load::orphans_of(load.clone());
        let active = active_attempts::active_attempts(open, orphaned.clone());
        let failures = failed_attempts::failed_attempts(ended.clone(), orphaned.clone());
        let dead = dead_tasks::dead_tasks(tasks.clone(), failures.clone());
        let done = done_tasks::done_tasks(ended);
        let blocked = blocked_tasks::blocked_tasks(edges, done.clone());
        let stopped = stopped_jobs::stopped_jobs(cancelled, dead.clone(), expired);
        let views = task_views::task_views(
            tasks,
            blocked,
            done,
            active.clone(),
            started,
            backoff,
            failures,
            dead,
            stopped,
            current,
        );
        let runnable = task_views::runnable_of(views.clone());
        let states = task_views::states_of(views);
        let free = worker_load::free_of(load);

        let metrics = scope_metrics::scope_metrics(tallies);
        capture(runnable, &s.0, &probe2);
        capture(free, &s.1, &probe2);
        capture(live, &s.2, &probe2);
        capture(active, &s.3, &probe2);
        capture(orphaned, &s.4, &probe2);
        capture(states, &s.5, &probe2);
        capture(metrics, &s.6, &probe2);

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
            expired: expired_in,
            tallies: tallies_in,
        }
    })
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
    // With several workers each holds a share of every output: gather them where the driver is.
    let collection = if collection.scope().peers() > 1 {
        collection.inner.exchange(|_| 0).as_collection()
    } else {
        collection
    };
    collection.inspect(move |(d, t, diff)| sink.borrow_mut().push((d.clone(), *t, *diff))).probe_with(probe);
}

/// Take a sink's contents, summed per record over all times, zero sums dropped, sorted.
fn drain<D: Ord + Clone>(sink: &Sink<D>) -> Vec<(D, isize)> {
    let mut out: Vec<(D, isize)> = sink.borrow_mut().drain(..).map(|(d, _, diff)| (d, diff)).collect();
    consolidate(&mut out);
    out
}
