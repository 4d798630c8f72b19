//! One SPLAIJob's reconcile: submit it once (job id = `k8s-` + the object's uid, so a retried
//! submission is idempotent), then mirror the job's state into `.status`; a finalizer cancels a
//! job still running when its object is deleted.

use std::time::Duration;

use kube::api::{Api, Patch, PatchParams};
use kube::{Resource, ResourceExt};
use serde_json::{Value, json};

use crate::crd::{SplaiJob, SplaiJobStatus};
use crate::error::OperatorError;
use crate::gateway::{JobApi, JobSnapshot, Submitted};

pub const FINALIZER: &str = "splai.io/cancel-job";
const TERMINAL: [&str; 5] = ["Succeeded", "Failed", "Cancelled", "Rejected", "Archived"];

/// What to do after a reconcile: look again after this long, or not until the object changes.
pub type Requeue = Option<Duration>;

/// The REST request for a SPLAIJob (the gateway validates it like any other).
pub fn request(job: &SplaiJob) -> Value {
    let s = &job.spec;
    let mut body = json!({"type": s.job_type, "job_id": job_id(job)});
    let mut put = |key: &str, value: Value| {
        if !value.is_null() {
            body[key] = value;
        }
    };
    put("input", s.input.clone().unwrap_or(Value::Null));
    put("dag", s.dag.clone().unwrap_or(Value::Null));
    put("priority", json!(s.priority));
    put("model", json!(s.model));
    put("data_classification", json!(s.data_classification));
    put("timeout_s", json!(s.timeout_seconds));
    put("max_retries", json!(s.max_retries));
    body
}

pub fn job_id(job: &SplaiJob) -> String {
    format!("k8s-{}", job.uid().unwrap_or_else(|| job.name_any()))
}

/// The status a job snapshot maps to.
pub fn status_of(snapshot: &JobSnapshot, generation: Option<i64>) -> SplaiJobStatus {
    let phase = capitalize(&snapshot.state.to_string());
    SplaiJobStatus {
        phase: Some(phase.clone()),
        job_id: Some(snapshot.job_id.clone()),
        trace_id: snapshot.trace_id.clone(),
        progress: Some(format!("{}/{}", snapshot.tasks_succeeded, snapshot.tasks_total)),
        result: if phase == "Succeeded" { snapshot.result.clone() } else { None },
        message: snapshot.reason.clone(),
        observed_generation: generation,
    }
}

fn capitalize(state: &str) -> String {
    let mut chars = state.chars();
    chars.next().map(|c| c.to_ascii_uppercase().to_string() + chars.as_str()).unwrap_or_default()
}

fn is_terminal(status: &SplaiJobStatus) -> bool {
    status.phase.as_deref().is_some_and(|p| TERMINAL.contains(&p))
}

/// Reconcile one object. `api` must be namespaced to the object's namespace.
pub async fn reconcile(
    api: &Api<SplaiJob>,
    gateway: &dyn JobApi,
    job: &SplaiJob,
    poll: Duration,
) -> Result<Requeue, OperatorError> {
    let name = job.name_any();
    let tenant = job.spec.tenant.as_deref();
    let status = job.status.clone().unwrap_or_default();
    let has_finalizer = job.finalizers().iter().any(|f| f == FINALIZER);

    if job.meta().deletion_timestamp.is_some() {
        if has_finalizer {
            if let Some(id) = status.job_id.as_deref().filter(|_| !is_terminal(&status)) {
                gateway.cancel(tenant, id).await?;
                tracing::info!(%name, job = id, "object deleted: job cancelled");
            }
            let rest: Vec<String> = job.finalizers().iter().filter(|f| *f != FINALIZER).cloned().collect();
            let patch = json!({"metadata": {"finalizers": rest, "resourceVersion": job.resource_version()}});
            api.patch(&name, &PatchParams::default(), &Patch::Merge(&patch)).await?;
        }
        return Ok(None);
    }
    if is_terminal(&status) {
        return Ok(None);
    }
    if !has_finalizer && status.job_id.is_none() {
        let mut finalizers = job.finalizers().to_vec();
        finalizers.push(FINALIZER.to_string());
        let patch =
            json!({"metadata": {"finalizers": finalizers, "resourceVersion": job.resource_version()}});
        api.patch(&name, &PatchParams::default(), &Patch::Merge(&patch)).await?;
    }

    let generation = job.meta().generation;
    let next = match &status.job_id {
        None => match gateway.submit(tenant, &request(job)).await? {
            Submitted::Accepted { job_id, trace_id } => SplaiJobStatus {
                phase: Some("Submitted".into()),
                job_id: Some(job_id),
                trace_id,
                observed_generation: generation,
                ..Default::default()
            },
            Submitted::Refused { status: code_http, code, message } => SplaiJobStatus {
                phase: Some("Rejected".into()),
                message: Some(format!("the gateway refused the job ({code_http} {code}): {message}")),
                observed_generation: generation,
                ..Default::default()
            },
        },
        Some(id) => match gateway.get(tenant, id).await? {
            Some(snapshot) => status_of(&snapshot, generation),
            None => SplaiJobStatus {
                phase: Some("Error".into()),
                message: Some(format!("the gateway does not know job `{id}` (deleted or another tenant)")),
                ..status.clone()
            },
        },
    };
    if next != status {
        tracing::info!(%name, phase = next.phase.as_deref().unwrap_or("-"), "status changed");
        api.patch_status(&name, &PatchParams::default(), &Patch::Merge(&json!({"status": next}))).await?;
    }
    Ok(if is_terminal(&next) || next.phase.as_deref() == Some("Error") { None } else { Some(poll) })
}
