//! A call that waits for its job (the OpenAI endpoints) owns that job: if the client goes away
//! first, nobody will read the answer, so the job is cancelled rather than left generating for
//! minutes (`gateway.cancel_on_disconnect`). Hyper drops a handler's future when its connection
//! closes; a streaming response notices when its receiver is gone.

use crate::auth::Caller;
use crate::state::AppState;

/// Cancels its job when dropped unarmed-by-[`Abandoned::finished`].
pub struct Abandoned {
    job: Option<(AppState, String, String)>,
}

impl std::fmt::Debug for Abandoned {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Abandoned").field("job", &self.job.as_ref().map(|(_, t, j)| (t, j))).finish()
    }
}

impl Abandoned {
    /// Watch `job_id` of `caller`'s tenant (a no-op guard when the setting is off).
    pub fn watch(st: &AppState, caller: &Caller, job_id: &str) -> Self {
        let job = st.cancel_on_disconnect.then(|| (st.clone(), caller.tenant.clone(), job_id.to_string()));
        Self { job }
    }

    /// The answer was delivered (or the job ended): nothing to cancel.
    pub fn finished(mut self) {
        self.job = None;
    }
}

impl Drop for Abandoned {
    fn drop(&mut self) {
        let Some((st, tenant, job_id)) = self.job.take() else { return };
        let Ok(runtime) = tokio::runtime::Handle::try_current() else { return };
        runtime.spawn(async move {
            let reason = "client_disconnected: the client closed the connection before the job finished".to_string();
            match crate::routes::jobs::request_cancel(&st, &tenant, &job_id, reason).await {
                Ok(()) => tracing::info!(job = %job_id, %tenant, "client went away; job cancelled"),
                Err(e) => tracing::warn!(job = %job_id, error = %e.body.message, "cancelling an abandoned job failed"),
            }
        });
    }
}
