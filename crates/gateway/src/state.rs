//! What every handler shares.

use std::sync::Arc;

use splai_ingest::log::EventWriter;
use splai_ingest::plan::Limits;
use splai_store::Store;
use splai_store::artifacts::ArtifactStore;
use tokio::sync::watch;

use crate::auth::Tokens;
use crate::rate::RateLimiter;

#[derive(Debug, Clone)]
pub struct AppState {
    /// With auth on: the intake gate (verification reads only gateway-signed audit anchors).
    pub gate: Option<Arc<splai_ingest::intake::Gate>>,
    pub writer: EventWriter,
    pub store: Store,
    pub artifacts: ArtifactStore,
    pub tokens: Arc<Tokens>,
    pub rate: Arc<RateLimiter>,
    pub limits: Limits,
    pub max_body_bytes: usize,
    pub max_active_jobs: u32,
    /// Cancel the job of an OpenAI call whose client went away before the answer.
    pub cancel_on_disconnect: bool,
    /// Tenants with their own active-job limit.
    pub tenant_max_active_jobs: std::collections::HashMap<String, u32>,
    /// A worker is live when its last beat is this recent.
    pub heartbeat_ttl_ms: i64,
    /// Which jobs' streams the projector grew (SSE handlers and waiting calls follow one job).
    pub grown: crate::grown::Grown,
    /// True once the projector has caught up with the log.
    pub ready: watch::Receiver<bool>,
    pub metrics: &'static crate::metrics::Metrics,
    /// The projector's consumer group (its offsets in SQL measure the lag).
    pub projector_group: String,
    /// The policy gate's rules.
    pub policy: Arc<splai_ingest::policy::PolicySet>,
}
