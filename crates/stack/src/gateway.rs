//! The gateway: the HTTP API and the read-model projector.

use std::sync::Arc;

use anyhow::Context;
use splai_config::Settings;
use splai_ingest::log::EventLog;
use splai_store::Store;
use splai_store::artifacts::ArtifactStore;

use crate::{Handle, Shutdown};

/// Bind `gateway.listen`, naming the setting to change when the address is taken.
pub async fn bind(settings: &Settings) -> anyhow::Result<tokio::net::TcpListener> {
    tokio::net::TcpListener::bind(&settings.gateway.listen).await.with_context(|| {
        format!(
            "cannot listen on {} (set another with --set gateway.listen=HOST:PORT)",
            settings.gateway.listen
        )
    })
}

/// Serve on `listener` until `shutdown`, with the read model of `store.url`.
pub async fn start(
    settings: &Settings,
    log: Arc<dyn EventLog>,
    artifacts: ArtifactStore,
    listener: tokio::net::TcpListener,
    shutdown: Shutdown,
) -> anyhow::Result<Handle> {
    let store = Store::connect(&settings.store).await.context("opening the read model")?;
    let settings = settings.clone();
    let task = tokio::spawn(async move {
        splai_gateway::serve(&settings, log, store, artifacts, listener, shutdown).await.map_err(Into::into)
    });
    Ok(Handle::Task("gateway", task))
}
