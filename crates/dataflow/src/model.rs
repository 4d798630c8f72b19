//! The dataflow's vocabulary: small interned keys, so collections hold integers, not strings.
//! The driver maps job, task and worker ids to these and back.

use serde::{Deserialize, Serialize};

/// Dataflow time: milliseconds.
pub type Time = u64;
/// Interned job.
pub type Job = u32;
/// A task: (interned job, task index within the job's DAG).
pub type Tk = (Job, u32);
/// Interned worker.
pub type Worker = u32;
/// Attempt number, from 1.
pub type Attempt = u32;

/// How an attempt ended. At most one per (task, attempt): the driver fences the rest.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Outcome {
    Succeeded,
    /// Failed and may be retried.
    Failed,
    /// Failed and retrying cannot help: dead-letter at once.
    Fatal,
    /// No result before the attempt's deadline.
    TimedOut,
    /// Lost to infrastructure, not to the task: its worker died, restarted or stopped beating.
    /// Spends the task's loss budget, not the retries `max_retries` gives for its own failures.
    Lost,
}

impl Outcome {
    /// The task's own failure (spends `max_retries`), as opposed to success or a loss.
    pub fn is_task_failure(self) -> bool {
        matches!(self, Outcome::Failed | Outcome::Fatal | Outcome::TimedOut)
    }
}

/// How many failed attempts a task may have before it is dead-lettered, by cause.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Budget {
    /// Retries after the task's own failures (failed, timed out): the job's `max_retries`.
    pub retries: u32,
    /// Attempts lost to infrastructure (worker lost, restarted or expired) that may be re-run.
    /// Larger than `retries`, so one restart never fails a job, and bounded, so a task that
    /// kills every worker it lands on still ends.
    pub losses: u32,
}

/// Failed attempts of one task so far, by cause ([`Budget`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Failures {
    /// Attempts that failed or timed out.
    pub failed: u32,
    /// Attempts lost to infrastructure, including open attempts on workers that are not live.
    pub lost: u32,
    /// One failure said retrying cannot help.
    pub fatal: bool,
}

impl Failures {
    /// The task is out of attempts under `budget`.
    pub fn exhaust(&self, budget: Budget) -> bool {
        self.fatal || self.failed > budget.retries || self.lost > budget.losses
    }
}

/// Task states, ordered by precedence: when several facts hold, the greatest wins.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum TaskStatus {
    Pending,
    /// Failed; a retry is scheduled.
    Failed,
    Runnable,
    Assigned,
    Running,
    Cancelled,
    DeadLettered,
    Succeeded,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum JobStatus {
    Queued,
    Running,
    Succeeded,
    Failed,
    Cancelled,
}

/// One input fact. `Beat` and `Leave` carry their own time so liveness can expire as data.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Fact {
    /// A task of an admitted job, with its budget of failed attempts.
    Task(Tk, Budget),
    /// `child` needs `parent`'s output.
    Edge(Tk, Tk),
    Assigned(Tk, Attempt, Worker),
    Started(Tk, Attempt),
    Ended(Tk, Attempt, Outcome),
    /// The task waits out a retry backoff.
    Backoff(Tk),
    /// A heartbeat at `Time` from a worker with `u32` slots.
    Beat(Worker, Time, u32),
    /// The worker said it is leaving at `Time`.
    Leave(Worker, Time),
    Cancelled(Job),
    /// The job's deadline (`timeout_s` after admission) passed: what has not finished is stopped,
    /// and the job fails with `deadline_exceeded` unless every task had succeeded.
    Expired(Job),
    /// Something to count in a scope's sliding window: fed at the time it happened and retracted
    /// one window later.
    Tally(Scope, Tally),
}

impl Fact {
    /// The job this fact is about (`None`: a worker's or a metrics scope's).
    pub fn job(&self) -> Option<Job> {
        match self {
            Fact::Task(tk, _)
            | Fact::Edge(_, tk)
            | Fact::Assigned(tk, _, _)
            | Fact::Started(tk, _)
            | Fact::Ended(tk, _, _)
            | Fact::Backoff(tk) => Some(tk.0),
            Fact::Cancelled(job) | Fact::Expired(job) => Some(*job),
            Fact::Beat(..) | Fact::Leave(..) | Fact::Tally(..) => None,
        }
    }
}

/// A metrics scope: one (tenant, model) pair, numbered by the driver.
pub type Scope = u32;

/// What a scope's sliding window counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Tally {
    Admitted,
    Succeeded,
    Failed,
    /// A task attempt failed and the task will be tried again.
    Retried,
    DeadLettered,
    /// A task waited this long from runnable to assigned: a log-scale bucket ([`bucket_of`]).
    QueueWait(u8),
    /// An attempt ran this long (bucket, as above).
    RunTime(u8),
}

/// A scope's figure: its runnable and running tasks now (counted by the driver off the dataflow's
/// outputs), and its window's tallies (counted by the dataflow).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Gauge {
    Runnable,
    Running,
    Tally(Tally),
}

/// Buckets per doubling of a duration: each bucket spans ~19 %.
const PER_DOUBLING: f64 = 4.0;

/// The log-scale bucket of a duration of `ms` milliseconds.
pub fn bucket_of(ms: u64) -> u8 {
    ((ms as f64 + 1.0).log2() * PER_DOUBLING).floor().min(255.0) as u8
}

/// The largest duration (ms) in `bucket`.
pub fn bucket_top(bucket: u8) -> u64 {
    ((f64::from(bucket) + 1.0) / PER_DOUBLING).exp2().ceil() as u64 - 1
}
