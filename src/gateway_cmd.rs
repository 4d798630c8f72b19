//! `splai gateway`: the HTTP API and the read-model projector against the configured log,
//! database and artifact store.

use anyhow::Context;
use splai_config::Settings;
use splai_store::artifacts::ArtifactStore;

pub async fn run(settings: &Settings) -> anyhow::Result<()> {
    let log = splai_ingest::log::open_log(&settings.log).await.context("opening the event log")?;
    let artifacts = ArtifactStore::open(&settings.artifacts)?;
    let listener = splai_stack::gateway::bind(settings).await?;
    let addr = listener.local_addr()?;
    let (stop, shutdown) = splai_stack::shutdown_channel();
    let gateway = splai_stack::gateway::start(settings, log, artifacts, listener, shutdown).await?;
    tracing::info!(%addr, auth = settings.gateway.auth, "gateway listening");
    println!("gateway listening on http://{addr}");
    // Until a signal, or until the gateway ends on its own (an error).
    let ended = gateway.join();
    tokio::pin!(ended);
    tokio::select! {
        _ = crate::scheduler_cmd::shutdown_signal() => {
            stop.send(true).ok();
            ended.await
        }
        r = &mut ended => r,
    }
}
