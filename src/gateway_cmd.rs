//! `splai gateway`: the HTTP API and the read-model projector against the configured log,
//! database and artifact store.

use anyhow::Context;
use splai_config::Settings;
use splai_store::Store;
use splai_store::artifacts::ArtifactStore;

pub async fn run(settings: &Settings) -> anyhow::Result<()> {
    let log = splai_ingest::log::open_log(&settings.log).await.context("opening the event log")?;
    let store = Store::connect(&settings.store).await.context("connecting to the read model")?;
    let artifacts = ArtifactStore::open(&settings.artifacts)?;
    let listener = tokio::net::TcpListener::bind(&settings.gateway.listen)
        .await
        .with_context(|| format!("cannot listen on {}", settings.gateway.listen))?;
    let addr = listener.local_addr()?;
    let (tx, rx) = tokio::sync::watch::channel(false);
    let mut server = tokio::spawn({
        let settings = settings.clone();
        async move { splai_gateway::serve(&settings, log, store, artifacts, listener, rx).await }
    });
    tracing::info!(%addr, auth = settings.gateway.auth, "gateway listening");
    println!("gateway listening on http://{addr}");
    tokio::select! {
        _ = crate::scheduler_cmd::shutdown_signal() => {
            tx.send(true).ok();
            server.await??;
        }
        r = &mut server => r??,
    }
    Ok(())
}
