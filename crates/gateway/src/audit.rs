//! Writing the audit trail from the API: submissions (accepted and refused), cancellations,
//! dead-letter requeues and admin reads. The record is written after the action took effect; if
//! the audit store fails the action stands (it is in the log) and the failure is logged loudly.

use serde_json::Value;
use splai_store::audit::AuditEntry;

use crate::auth::Caller;
use crate::routes::jobs::now_ms;
use crate::state::AppState;

pub async fn record(st: &AppState, caller: &Caller, action: &str, subject: &str, detail: Value) {
    let entry = AuditEntry {
        tenant: caller.tenant.clone(),
        actor: caller.actor.clone(),
        action: action.to_string(),
        subject: subject.to_string(),
        detail,
    };
    if let Err(error) = st.store.audit(&entry, now_ms() as i64).await {
        tracing::error!(%error, action, subject, "writing the audit record failed");
    }
}
