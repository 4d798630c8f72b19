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
    /// A task of an admitted job, with its retry budget.
    Task(Tk, u32),
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
}
