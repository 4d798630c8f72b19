//! `splai bench …`: measurements anyone can reproduce.

pub mod hops;
pub mod infer;
pub mod log;
pub mod noop;
pub mod report;
pub mod resume;
pub mod scale;
pub mod up_proc;
