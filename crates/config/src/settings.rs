//! The settings tree. Field docs and defaults live in `default.toml`; this is its typed shape.

use serde::{Deserialize, Serialize};

use crate::ConfigError;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    pub log: LogSettings,
    pub store: StoreSettings,
    pub artifacts: ArtifactSettings,
    pub telemetry: TelemetrySettings,
    pub gateway: GatewaySettings,
    pub client: ClientSettings,
    pub policy: PolicySettings,
    pub scheduler: SchedulerSettings,
    pub executor: ExecutorSettings,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LogBackend {
    Embedded,
    Kafka,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogSettings {
    pub backend: LogBackend,
    pub topic_prefix: String,
    pub partitions: u32,
    pub replication: u16,
    pub embedded: EmbeddedLogSettings,
    pub kafka: KafkaSettings,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EmbeddedLogSettings {
    pub path: String,
    pub fsync: bool,
    pub poll_interval_ms: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KafkaSettings {
    pub brokers: String,
    pub session_timeout_ms: u32,
    pub linger_ms: u32,
    pub fetch_wait_ms: u32,
    pub batch_size: u32,
    pub delivery_timeout_ms: u32,
    pub rescan_on_resume: bool,
    pub idempotence: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StoreSettings {
    pub url: String,
    pub max_connections: u32,
    /// A SQLite read model's commits wait for the disk (PostgreSQL keeps its own settings).
    #[serde(default)]
    pub fsync: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ArtifactSettings {
    pub url: String,
    pub s3_endpoint: String,
    pub s3_region: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LogFormat {
    Pretty,
    Json,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TelemetrySettings {
    pub log_format: LogFormat,
    pub log_filter: String,
    pub otlp_endpoint: String,
    pub service_name: String,
    pub metrics_listen: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GatewaySettings {
    pub listen: String,
    pub auth: bool,
    pub max_body_bytes: u64,
    pub submit_rate_per_s: f64,
    pub submit_burst: u32,
    pub max_active_jobs: u32,
    /// Cancel an OpenAI call's job when its client disconnects before the answer.
    pub cancel_on_disconnect: bool,
    pub projector_group: String,
    /// HMAC key for the records the gateway produces (secret; required with auth on).
    pub signing_key: String,
    /// HMAC key of the audit chain (secret; empty: derived from `signing_key`, else unkeyed).
    pub audit_key: String,
    /// How often a gateway writes the audit chain's head to the log (ms; 0 = never).
    pub audit_anchor_interval_ms: u64,
    pub tokens: std::collections::BTreeMap<String, TokenSettings>,
    #[serde(default)]
    pub tenants: std::collections::BTreeMap<String, TenantLimits>,
}

/// A tenant's own gateway limits (absent fields: the gateway-wide setting).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TenantLimits {
    #[serde(default)]
    pub submit_rate_per_s: Option<f64>,
    #[serde(default)]
    pub submit_burst: Option<u32>,
    #[serde(default)]
    pub max_active_jobs: Option<u32>,
}

/// Where the policy gate's rules are.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PolicySettings {
    pub file: String,
}

/// Where the CLI client finds the gateway.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClientSettings {
    pub url: String,
    pub token: String,
}

/// One API token: its sha256 (hex), the tenant it acts for and its roles.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokenSettings {
    pub sha256: String,
    pub tenant: String,
    pub roles: Vec<String>,
}

/// Values of `executor.llm_weights`.
pub const LLM_WEIGHTS: [&str; 13] =
    ["as-is", "f32", "f16", "q4_0", "q4_1", "q5_0", "q5_1", "q8_0", "q2k", "q3k", "q4k", "q5k", "q6k"];

/// Values of `executor.llm_padding`.
pub const LLM_PADDING: [&str; 2] = ["auto", "off"];

/// Roles a token may carry.
pub const ROLES: [&str; 4] = ["admin", "operator", "submitter", "reader"];

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SchedulerSettings {
    pub heartbeat_ttl_ms: u64,
    pub retry_base_ms: u64,
    pub retry_cap_ms: u64,
    pub default_max_retries: u32,
    pub max_lost_attempts: u32,
    pub decision_resend_ms: u64,
    pub unschedulable_timeout_ms: u64,
    pub default_task_timeout_s: u32,
    pub tick_ms: u64,
    pub timely_workers: u32,
    pub snapshot_every_events: u64,
    pub snapshot_min_interval_ms: u64,
    pub snapshot_keep: u32,
    pub compact_after_records: u64,
    pub lease_ms: u64,
    pub metrics_window_ms: u64,
    pub metrics_interval_ms: u64,
    pub tenants: std::collections::BTreeMap<String, TenantSettings>,
}

/// A tenant's fair-share weight and quota.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TenantSettings {
    #[serde(default = "one")]
    pub weight: u32,
    #[serde(default)]
    pub max_running_tasks: Option<u32>,
}

fn one() -> u32 {
    1
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExecutorSettings {
    pub slots: u32,
    pub light_slots: u32,
    pub heartbeat_interval_ms: u64,
    pub model_dir: String,
    pub llm_weights: String,
    pub llm_padding: String,
    pub shell_tool: bool,
    pub shell_timeout_ms: u64,
    pub shell_memory_mb: u64,
    pub shell_max_output_bytes: u64,
    pub inference_threads: u32,
    pub max_batch: u32,
    pub prefill_chunk: u32,
    pub kv_cache_mb: u32,
    pub prefix_cache_mb: u32,
    pub engine_threads: u32,
    pub result_cache: bool,
    pub labels: Vec<String>,
}

impl Settings {
    /// Checks that types alone cannot express. The first fault wins and names its key.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let log = &self.log;
        if log.topic_prefix.chars().any(|c| !(c.is_ascii_alphanumeric() || "._-".contains(c))) {
            return Err(ConfigError::invalid(
                "log.topic_prefix",
                "may contain only ASCII letters, digits, '.', '_' and '-'",
            ));
        }
        range("log.partitions", log.partitions.into(), 1, 1024)?;
        range("log.replication", log.replication.into(), 1, 16)?;
        non_empty("log.embedded.path", &log.embedded.path)?;
        range("log.embedded.poll_interval_ms", log.embedded.poll_interval_ms, 1, 60_000)?;
        if log.kafka.brokers.split(',').any(|b| !looks_like_host_port(b.trim())) {
            return Err(ConfigError::invalid("log.kafka.brokers", "expected host:port[,host:port...]"));
        }
        range("log.kafka.session_timeout_ms", log.kafka.session_timeout_ms.into(), 1_000, 300_000)?;
        range("log.kafka.linger_ms", log.kafka.linger_ms.into(), 0, 10_000)?;
        range("log.kafka.fetch_wait_ms", log.kafka.fetch_wait_ms.into(), 1, 10_000)?;
        range("log.kafka.batch_size", log.kafka.batch_size.into(), 1, 100_000_000)?;
        range("log.kafka.delivery_timeout_ms", log.kafka.delivery_timeout_ms.into(), 1_000, 3_600_000)?;

        if !(self.store.url.starts_with("sqlite:")
            || self.store.url.starts_with("postgres://")
            || self.store.url.starts_with("postgresql://"))
        {
            return Err(ConfigError::invalid("store.url", "expected sqlite://PATH or postgres://..."));
        }
        range("store.max_connections", self.store.max_connections.into(), 1, 1000)?;
        if !(self.artifacts.url.starts_with("file://") || self.artifacts.url.starts_with("s3://")) {
            return Err(ConfigError::invalid("artifacts.url", "expected file://DIR or s3://BUCKET"));
        }
        let otlp = &self.telemetry.otlp_endpoint;
        let is_http = otlp.starts_with("http://") || otlp.starts_with("https://");
        if !otlp.is_empty() && !is_http {
            return Err(ConfigError::invalid(
                "telemetry.otlp_endpoint",
                "expected an http(s):// URL or empty",
            ));
        }
        non_empty("telemetry.service_name", &self.telemetry.service_name)?;
        if !looks_like_host_port(&self.gateway.listen) {
            return Err(ConfigError::invalid("gateway.listen", "expected host:port"));
        }
        let m = &self.telemetry.metrics_listen;
        if !m.is_empty() && !looks_like_host_port(m) {
            return Err(ConfigError::invalid(
                "telemetry.metrics_listen",
                "expected host:port, or empty for off",
            ));
        }
        let g = &self.gateway;
        range("gateway.max_body_bytes", g.max_body_bytes, 1024, 1 << 30)?;
        if !(g.submit_rate_per_s >= 0.0 && g.submit_rate_per_s.is_finite()) {
            return Err(ConfigError::invalid("gateway.submit_rate_per_s", "must be a number ≥ 0"));
        }
        range("gateway.submit_burst", g.submit_burst.into(), 1, 1_000_000)?;
        non_empty("gateway.projector_group", &g.projector_group)?;
        for (name, t) in &g.tenants {
            if t.submit_rate_per_s.is_some_and(|r| !(r >= 0.0 && r.is_finite())) {
                return Err(ConfigError::invalid(
                    &format!("gateway.tenants.{name}.submit_rate_per_s"),
                    "must be a number ≥ 0",
                ));
            }
            if t.submit_burst == Some(0) {
                return Err(ConfigError::invalid(
                    &format!("gateway.tenants.{name}.submit_burst"),
                    "must be ≥ 1",
                ));
            }
        }
        for (name, t) in &g.tokens {
            let key = format!("gateway.tokens.{name}");
            if t.sha256.len() != 64 || !t.sha256.chars().all(|c| c.is_ascii_hexdigit()) {
                return Err(ConfigError::invalid(&format!("{key}.sha256"), "expected 64 hex digits"));
            }
            non_empty(&format!("{key}.tenant"), &t.tenant)?;
            if let Some(bad) = t.roles.iter().find(|r| !ROLES.contains(&r.as_str())) {
                return Err(ConfigError::invalid(
                    &format!("{key}.roles"),
                    format!("unknown role `{bad}` (expected one of {ROLES:?})"),
                ));
            }
        }
        if !self.gateway.auth && log.backend == LogBackend::Kafka {
            return Err(ConfigError::invalid(
                "gateway.auth",
                "auth may be off only with the embedded log (log.backend = \"embedded\")",
            ));
        }
        let s = &self.scheduler;
        range("scheduler.heartbeat_ttl_ms", s.heartbeat_ttl_ms, 100, 3_600_000)?;
        range("scheduler.retry_base_ms", s.retry_base_ms, 1, 3_600_000)?;
        if s.retry_cap_ms < s.retry_base_ms {
            return Err(ConfigError::invalid("scheduler.retry_cap_ms", "must be ≥ scheduler.retry_base_ms"));
        }
        range("scheduler.default_max_retries", s.default_max_retries.into(), 0, 100)?;
        range("scheduler.max_lost_attempts", s.max_lost_attempts.into(), 0, 1000)?;
        range("scheduler.decision_resend_ms", s.decision_resend_ms, 100, 3_600_000)?;
        range("scheduler.unschedulable_timeout_ms", s.unschedulable_timeout_ms, 0, 604_800_000)?;
        range("scheduler.default_task_timeout_s", s.default_task_timeout_s.into(), 1, 86_400)?;
        range("scheduler.tick_ms", s.tick_ms, 1, 60_000)?;
        range("scheduler.timely_workers", s.timely_workers.into(), 1, 64)?;
        range("scheduler.snapshot_min_interval_ms", s.snapshot_min_interval_ms, 0, 86_400_000)?;
        range("scheduler.snapshot_keep", s.snapshot_keep.into(), 1, 100)?;
        range("scheduler.metrics_window_ms", s.metrics_window_ms, 1_000, 86_400_000)?;
        range("scheduler.metrics_interval_ms", s.metrics_interval_ms, 0, 3_600_000)?;
        if s.lease_ms != 0 {
            range("scheduler.lease_ms", s.lease_ms, 300, 60_000)?;
        }
        for (name, t) in &s.tenants {
            range(&format!("scheduler.tenants.{name}.weight"), t.weight.into(), 1, 1000)?;
        }
        let e = &self.executor;
        range("executor.slots", e.slots.into(), 0, 1024)?;
        range("executor.light_slots", e.light_slots.into(), 0, 4096)?;
        range("executor.heartbeat_interval_ms", e.heartbeat_interval_ms, 100, 600_000)?;
        if !LLM_WEIGHTS.contains(&e.llm_weights.as_str()) {
            return Err(ConfigError::invalid(
                "executor.llm_weights",
                format!("expected one of {LLM_WEIGHTS:?}"),
            ));
        }
        if !LLM_PADDING.contains(&e.llm_padding.as_str()) {
            return Err(ConfigError::invalid(
                "executor.llm_padding",
                format!("expected one of {LLM_PADDING:?}"),
            ));
        }
        range("executor.max_batch", e.max_batch.into(), 1, 1024)?;
        range("executor.prefill_chunk", e.prefill_chunk.into(), 1, 65_536)?;
        range("executor.kv_cache_mb", e.kv_cache_mb.into(), 1, 1 << 20)?;
        range("executor.prefix_cache_mb", e.prefix_cache_mb.into(), 0, 1 << 20)?;
        range("executor.engine_threads", e.engine_threads.into(), 0, 1024)?;
        range("executor.shell_timeout_ms", e.shell_timeout_ms, 10, 86_400_000)?;
        range("executor.shell_memory_mb", e.shell_memory_mb, 16, 1 << 20)?;
        range("executor.shell_max_output_bytes", e.shell_max_output_bytes, 1, 1 << 30)?;
        if e.heartbeat_interval_ms * 2 > s.heartbeat_ttl_ms {
            return Err(ConfigError::invalid(
                "executor.heartbeat_interval_ms",
                "must be at most half of scheduler.heartbeat_ttl_ms, or live workers expire between beats",
            ));
        }
        if let Some(bad) = e.labels.iter().find(|l| l.split_once('=').is_none_or(|(k, _)| k.is_empty())) {
            return Err(ConfigError::invalid("executor.labels", format!("`{bad}` is not key=value")));
        }
        Ok(())
    }
}

fn range(key: &str, value: u64, min: u64, max: u64) -> Result<(), ConfigError> {
    if value < min || value > max {
        return Err(ConfigError::invalid(key, format!("{value} is outside {min}..={max}")));
    }
    Ok(())
}

fn non_empty(key: &str, value: &str) -> Result<(), ConfigError> {
    if value.trim().is_empty() {
        return Err(ConfigError::invalid(key, "must not be empty"));
    }
    Ok(())
}

fn looks_like_host_port(s: &str) -> bool {
    s.rsplit_once(':').is_some_and(|(host, port)| !host.is_empty() && port.parse::<u16>().is_ok())
}
