//! The CLI's commands over the gateway's typed client ([`splai_client`]).

pub mod commands;

pub use splai_client::{Client, ClientError, JobState, SseEvent};
use splai_config::ClientSettings;

/// The client `[client]` configures (URL and token).
pub fn from_settings(settings: &ClientSettings) -> Result<Client, ClientError> {
    Client::new(&settings.url, Some(settings.token.clone()))
}

/// A client of a local stack without auth (benchmarks, `splai up`).
pub fn local(base: &str) -> Result<Client, ClientError> {
    Client::new(base, None)
}
