//! The scheduler: its options from `[scheduler]`, `[log]`, the policy and the intake gate.

use std::sync::Arc;

use splai_config::Settings;
use splai_dataflow::SchedulerOptions;
use splai_dataflow::runner::{RunOptions, spawn};
use splai_ingest::log::EventLog;

use crate::{Handle, Shutdown};

/// The scheduler's options: `[scheduler]` plus the policy gate's placement rules and the
/// gateway's admission limits (which the scheduler enforces for jobs from Kafka too).
pub fn options(settings: &Settings) -> anyhow::Result<SchedulerOptions> {
    let mut opts = SchedulerOptions::from(&settings.scheduler);
    opts.policy = Arc::new(splai_ingest::policy::PolicySet::load(&settings.policy.file)?);
    opts.admission = splai_dataflow::AdmissionLimits::from(&settings.gateway);
    Ok(opts)
}

/// How the scheduler reads the log, with the intake gate when auth is on.
pub fn run_options(settings: &Settings) -> anyhow::Result<RunOptions> {
    Ok(RunOptions {
        topic_prefix: settings.log.topic_prefix.clone(),
        partitions: settings.log.partitions,
        tick_ms: settings.scheduler.tick_ms,
        group: format!("{}scheduler", settings.log.topic_prefix),
        gate: splai_ingest::intake::Gate::from_settings(&settings.gateway)?.map(Arc::new),
        timely_workers: settings.scheduler.timely_workers as usize,
    })
}

/// Run the scheduler on `log` (on a thread of its own) until `shutdown`.
pub fn start(settings: &Settings, log: Arc<dyn EventLog>, shutdown: Shutdown) -> anyhow::Result<Handle> {
    let thread = spawn(log, options(settings)?, run_options(settings)?, shutdown);
    Ok(Handle::Thread("scheduler", thread))
}
