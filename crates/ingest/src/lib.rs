//! Getting events in and out of SPLAI.
//!
//! - [`log`]: the [`EventLog`](log::EventLog) trait — keyed, partitioned, append-only topics with
//!   named consumers that resume from committed positions — and its two implementations: Kafka
//!   (rdkafka) and an embedded SQLite log for one machine with no external service. On top of it,
//!   [`log::EventWriter`] and [`log::EventReader`] speak envelopes and send undecodable records to
//!   `dead-letter` with their source position instead of stopping.
//! - [`intake`]: which producers may write jobs and control records when auth is on.
//! - [`plan`] and [`policy`]: the pure planner, validation and policy gate shared by gateway and
//!   scheduler.

pub mod intake;
pub mod log;
pub mod plan;
pub mod policy;
pub mod structured;
