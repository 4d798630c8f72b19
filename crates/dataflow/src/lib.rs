//! The SPLAI scheduler: a timely/differential dataflow that incrementally maintains runnable
//! tasks, live worker capacity, attempts, task and job states over the event log
//! (ARCHITECTURE §5), with the assignment step at the end.
//!
//! - [`model`]: interned keys and the input facts;
//! - [`operators`]: one rule per file (`task_views`, `live_workers`, `worker_load`, ...);
//! - [`engine`]: the dataflow, fed facts at (possibly future) times and stepped;
//! - [`job_status`]: a job's state from its tasks' states, kept by the driver;
//! - [`oracle`]: the same rules computed from scratch, for property tests.

pub mod assign;
pub mod catch_up;
pub mod driver;
pub mod engine;
pub mod job_status;
pub mod leadership;
mod ledger;
pub mod model;
pub mod operators;
pub mod oracle;
pub mod runner;
pub mod sim;
pub mod snapshots;

pub use driver::{
    AdmissionLimits, EARLY_CANCELS, IdsError, MetricsOptions, SNAPSHOT_VERSION, Scheduler, SchedulerOptions,
    SnapshotError, SnapshotParts, States, Stats, TenantAdmission, stored_ids, verified_snapshot,
};
pub use engine::{Changes, Engine};
