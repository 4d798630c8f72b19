//! `splai operator`: reconcile every SPLAIJob (in one namespace or all) every `interval`.
//!
//! A level-triggered poll rather than a watch: each pass lists the objects and reconciles the
//! ones not finished, so a missed event or an operator restart loses nothing.

use std::time::Duration;

use kube::api::{Api, ListParams};
use kube::{Client, ResourceExt};
use splai_telemetry::chain;
use tokio::sync::watch;

use crate::crd::SplaiJob;
use crate::error::OperatorError;
use crate::gateway::JobApi;
use crate::reconcile::reconcile;

#[derive(Debug, Clone)]
pub struct OperatorOptions {
    /// Only this namespace (`None`: all the service account may list).
    pub namespace: Option<String>,
    pub interval: Duration,
}

/// One pass over every SPLAIJob; returns how many were reconciled without error.
pub async fn pass(
    client: &Client,
    gateway: &dyn JobApi,
    opts: &OperatorOptions,
) -> Result<usize, OperatorError> {
    let all: Api<SplaiJob> = match &opts.namespace {
        Some(ns) => Api::namespaced(client.clone(), ns),
        None => Api::all(client.clone()),
    };
    let mut ok = 0;
    for job in all.list(&ListParams::default()).await? {
        let ns = job.namespace().unwrap_or_else(|| "default".into());
        let api: Api<SplaiJob> = Api::namespaced(client.clone(), &ns);
        match reconcile(&api, gateway, &job, opts.interval).await {
            Ok(_) => ok += 1,
            Err(e) => {
                tracing::warn!(name = %job.name_any(), namespace = %ns, error = %chain(&e), "reconcile failed; retrying next pass")
            }
        }
    }
    Ok(ok)
}

/// Run passes until `shutdown` turns true.
pub async fn run(
    client: Client,
    gateway: &dyn JobApi,
    opts: OperatorOptions,
    mut shutdown: watch::Receiver<bool>,
) -> Result<(), OperatorError> {
    loop {
        if let Err(e) = pass(&client, gateway, &opts).await {
            tracing::warn!(error = %chain(&e), "listing SPLAIJobs failed; retrying");
        }
        tokio::select! {
            _ = tokio::time::sleep(opts.interval) => {}
            _ = shutdown.changed() => return Ok(()),
        }
    }
}
