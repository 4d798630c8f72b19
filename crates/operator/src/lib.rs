//! SPLAI on Kubernetes.
//!
//! - [`crd`]: `SPLAIJob`, `SPLAIWorker`, `SPLAIPolicy` (group `splai.io`, `v1alpha1`);
//!   [`generate`] turns them into the CRD YAML of `deploy/crds/` and a SPLAIPolicy into a
//!   `policy.file`.
//! - [`reconcile`] and [`run`]: the operator — it submits each SPLAIJob to the gateway once and
//!   writes the job's phase, progress and result back to `.status`.

pub mod crd;
pub mod error;
pub mod gateway;
pub mod generate;
pub mod reconcile;
pub mod run;

pub use error::OperatorError;
