//! HTTP handlers, one module per resource.

pub mod admin;
pub mod artifacts;
pub mod health;
pub mod jobs;
pub mod stream;
pub mod workers;
