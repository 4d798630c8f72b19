//! The scheduler's dataflow tests (virtual-time scenarios, oracle and property tests, the real
//! runner), in one test binary: fifteen binaries each linking timely, differential and the
//! workspace made CI's disk and link time the limit. nextest runs every test in its own process.

mod support;

mod admission;
mod assignment_invariants;
mod cancel_timeout;
mod control_tenancy;
mod driver_oracle;
mod engine_pool;
mod idempotency;
mod job_deadlines;
mod light_pool;
mod metrics_stream;
mod not_held;
mod oracle;
mod own_decisions;
mod retire;
mod same_step;
mod scenarios;
mod snapshot_restart;
mod subdag;
mod unschedulable;
mod worker_restart;
