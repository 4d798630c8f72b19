//! The SPLAI gateway (ARCHITECTURE §7): the job API over HTTP (axum), admission answered at once
//! by the scheduler's own planner and validation, the SQL read model projected from the log, SSE
//! streams with resume, artifacts and lineage, workers, dead letters, health and the OpenAPI
//! document.
//!
//! - [`server`]: routes and the serving loop; [`projector`]: log → read model;
//! - [`routes`]: one module per resource; [`auth`]: tokens, tenants and roles; [`rate`]: submit
//!   rate per tenant; [`error`]: the `{code, message, field?}` error body.

pub mod audit;
pub mod auth;
mod coalesce;
pub mod error;
pub mod grown;
pub mod metrics;
pub mod openapi;
pub mod projector;
pub mod rate;
pub mod routes;
pub mod server;
pub mod state;

pub use server::{GatewayError, router, serve};
