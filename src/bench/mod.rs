//! `splai bench …`: measurements anyone can reproduce.

pub mod hops;
pub mod infer;
pub mod log;
pub mod noop;
