//! HTTP handlers, one module per resource.

pub mod abandoned;
pub mod admin;
pub mod artifacts;
pub mod audit;
pub mod health;
pub mod jobs;
pub mod live_metrics;
pub mod metrics;
pub mod openai;
pub mod stream;
pub mod ui;
pub mod workers;
