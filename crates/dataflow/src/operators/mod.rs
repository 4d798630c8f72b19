//! One operator per file; each doc comment states the rule it maintains.

pub mod active_attempts;
pub mod blocked_tasks;
pub mod current_attempts;
pub mod dead_tasks;
pub mod done_tasks;
pub mod failed_attempts;
pub mod live_workers;
pub mod open_attempts;
pub mod scope_metrics;
pub mod stopped_jobs;
pub mod task_views;
pub mod worker_load;

use differential_dataflow::VecCollection;

use crate::model::Time;

/// A collection in a scope at millisecond time.
pub type C<'s, D> = VecCollection<'s, Time, D, isize>;
