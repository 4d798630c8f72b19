//! The scheduler: its options from `[scheduler]`, `[log]`, the policy and the intake gate, and
//! its snapshots in the artifact store.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use splai_config::Settings;
use splai_dataflow::SchedulerOptions;
use splai_dataflow::leadership::LeaseOptions;
use splai_dataflow::runner::{RunOptions, spawn};
use splai_dataflow::snapshots::{SnapshotPolicy, SnapshotStore};
use splai_events::ArtifactRef;
use splai_ingest::log::{Cause, EventLog};
use splai_store::artifacts::ArtifactStore;

use crate::{Handle, Shutdown};

/// The scheduler's options: `[scheduler]` plus the policy gate's placement rules and the
/// gateway's admission limits (which the scheduler enforces for jobs from Kafka too).
pub fn options(settings: &Settings) -> anyhow::Result<SchedulerOptions> {
    let mut opts = SchedulerOptions::from(&settings.scheduler);
    opts.policy = Arc::new(splai_ingest::policy::PolicySet::load(&settings.policy.file)?);
    opts.admission = splai_dataflow::AdmissionLimits::from(&settings.gateway);
    Ok(opts)
}

/// The artifact store as the scheduler's snapshot store (under `~scheduler/snapshots/`).
#[derive(Debug)]
struct Snapshots(ArtifactStore);

#[async_trait]
impl SnapshotStore for Snapshots {
    async fn put(&self, name: &str, bytes: Vec<u8>) -> Result<ArtifactRef, Cause> {
        Ok(self.0.put_system(name, bytes).await?)
    }

    async fn get(&self, at: &ArtifactRef) -> Result<Vec<u8>, Cause> {
        Ok(self.0.get(at).await?.to_vec())
    }

    async fn delete(&self, at: &ArtifactRef) -> Result<(), Cause> {
        Ok(self.0.delete(at).await?)
    }
}

/// The scheduler's snapshots in `artifacts`.
pub fn snapshot_store(artifacts: &ArtifactStore) -> Arc<dyn SnapshotStore> {
    Arc::new(Snapshots(artifacts.clone()))
}

/// When the scheduler snapshots itself (`scheduler.snapshot_*`); `None` when it never does.
pub fn snapshot_policy(settings: &Settings, artifacts: &ArtifactStore) -> Option<SnapshotPolicy> {
    let s = &settings.scheduler;
    (s.snapshot_every_events > 0).then(|| SnapshotPolicy {
        store: snapshot_store(artifacts),
        every_events: s.snapshot_every_events,
        min_interval: Duration::from_millis(s.snapshot_min_interval_ms),
        keep: s.snapshot_keep as usize,
        compact_after_records: s.compact_after_records,
    })
}

/// How the scheduler reads the log, with the intake gate when auth is on.
pub fn run_options(settings: &Settings, artifacts: &ArtifactStore) -> anyhow::Result<RunOptions> {
    Ok(RunOptions {
        topic_prefix: settings.log.topic_prefix.clone(),
        partitions: settings.log.partitions,
        tick_ms: settings.scheduler.tick_ms,
        group: format!("{}scheduler", settings.log.topic_prefix),
        gate: splai_ingest::intake::Gate::from_settings(&settings.gateway)?.map(Arc::new),
        timely_workers: settings.scheduler.timely_workers as usize,
        snapshots: snapshot_policy(settings, artifacts),
        lease: (settings.scheduler.lease_ms > 0)
            .then(|| LeaseOptions { holder: holder_id(), ttl_ms: settings.scheduler.lease_ms }),
    })
}

/// This process among schedulers: host, pid and its start time (a restarted process is another).
fn holder_id() -> String {
    let host = std::env::var("HOSTNAME").ok().filter(|h| !h.is_empty()).unwrap_or_else(|| "host".into());
    let started = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    format!("{host}:{}:{}", std::process::id(), started.as_nanos())
}

/// Run the scheduler on `log` (on a thread of its own) until `shutdown`.
pub fn start(
    settings: &Settings,
    log: Arc<dyn EventLog>,
    artifacts: &ArtifactStore,
    shutdown: Shutdown,
) -> anyhow::Result<Handle> {
    let thread = spawn(log, options(settings)?, run_options(settings, artifacts)?, shutdown);
    Ok(Handle::Thread("scheduler", thread))
}
