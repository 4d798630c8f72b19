//! `splai bench …`: measurements anyone can reproduce.

pub mod log;
