//! SPLAI's end-to-end and whole-binary tests, in one test binary: each of these modules once linked
//! the whole workspace into a binary of its own, and twenty such binaries filled CI's disk and spent
//! minutes linking. nextest still runs every test in its own process.

mod common;

mod analysis;
mod api;
mod bench_report;
mod cache;
mod chaos;
mod cli;
mod clients;
mod dependency_rules;
mod distributed;
mod executor;
mod executor_kill;
mod failover;
mod image;
mod load;
mod openai;
mod operator;
mod otlp_traces;
mod planner;
mod recovery;
mod scheduler_process;
mod schemathesis;
mod subdag;
mod ui;
mod up;
