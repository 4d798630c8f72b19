//! `splai bench …`: measurements anyone can reproduce.

pub mod infer;
pub mod log;
