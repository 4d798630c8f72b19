//! Tenant admission limits for jobs produced straight to Kafka: `max_active_jobs` (queued or
//! running) and the submit rate, the same settings and refusal codes as the gateway's 429s for
//! REST (which checked the jobs it signed). Decided live only, on the scheduler's clock; each
//! decision is written to the log (`job_refused`, `job_accepted`) and replay takes it from there.
//! A request replay finds no decision for (it arrived while no scheduler was live) is held and
//! decided when the scheduler goes live, before anything of it runs.

use std::collections::{BTreeSet, HashMap as StdHashMap};

use rustc_hash::{FxHashMap as HashMap, FxHashSet as HashSet};
use splai_config::GatewaySettings;

use crate::model::{Job, Time};

/// The limits of one tenant (0: none).
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct TenantAdmission {
    pub max_active_jobs: u32,
    pub rate_per_s: f64,
    pub burst: u32,
}

/// Everyone's limits: the defaults and each tenant's own.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct AdmissionLimits {
    pub default: TenantAdmission,
    pub tenants: StdHashMap<String, TenantAdmission>,
}

impl From<&GatewaySettings> for AdmissionLimits {
    fn from(g: &GatewaySettings) -> Self {
        let default = TenantAdmission {
            max_active_jobs: g.max_active_jobs,
            rate_per_s: g.submit_rate_per_s,
            burst: g.submit_burst,
        };
        let tenants = g
            .tenants
            .iter()
            .map(|(name, t)| {
                let own = TenantAdmission {
                    max_active_jobs: t.max_active_jobs.unwrap_or(default.max_active_jobs),
                    rate_per_s: t.submit_rate_per_s.unwrap_or(default.rate_per_s),
                    burst: t.submit_burst.unwrap_or(default.burst),
                };
                (name.clone(), own)
            })
            .collect();
        Self { default, tenants }
    }
}

impl TenantAdmission {
    /// Whether any limit applies (so decisions are made and recorded).
    pub fn is_limited(&self) -> bool {
        self.max_active_jobs > 0 || self.rate_per_s > 0.0
    }
}

impl AdmissionLimits {
    pub fn of(&self, tenant: &str) -> TenantAdmission {
        self.tenants.get(tenant).copied().unwrap_or(self.default)
    }
}

/// Open jobs per tenant and each tenant's token bucket.
#[derive(Debug, Default, serde::Serialize, serde::Deserialize)]
pub(super) struct Admission {
    open: HashMap<u32, u32>,
    open_jobs: HashSet<Job>,
    buckets: HashMap<u32, (f64, Time)>,
    /// Replayed produced jobs with no decision read yet (job numbers follow admission order).
    #[serde(default)]
    held: BTreeSet<Job>,
}

/// Why a job is refused: (code, reason).
pub(super) type Refusal = (&'static str, String);

impl Admission {
    /// Whether `job` is queued or running now (admission counts it; its state says when it ends).
    pub fn set_open(&mut self, job: Job, tenant: u32, open: bool) {
        let count = self.open.entry(tenant).or_insert(0);
        if open && self.open_jobs.insert(job) {
            *count += 1;
        } else if !open && self.open_jobs.remove(&job) {
            *count = count.saturating_sub(1);
        }
    }

    /// Replay admitted produced `job` without a decision: hold it for go-live (a `job_accepted`
    /// read first waits for the job's admission, like other records of a job not known yet).
    pub fn hold(&mut self, job: Job) {
        self.held.insert(job);
    }

    /// A decision on `job` was read from the log.
    pub fn decided(&mut self, job: Job) {
        self.held.remove(&job);
    }

    /// Finished `job` leaves the state (it was closed when it finished).
    pub fn forget(&mut self, job: Job) {
        self.held.remove(&job);
        self.open_jobs.remove(&job);
    }

    pub fn has_held(&self) -> bool {
        !self.held.is_empty()
    }

    /// The held jobs in admission order, to decide now; none are held afterwards.
    pub fn take_held(&mut self) -> Vec<Job> {
        std::mem::take(&mut self.held).into_iter().collect()
    }

    /// May `tenant` (named `name`) start one more job now? Takes a token if so.
    pub fn admit(
        &mut self,
        tenant: u32,
        name: &str,
        limits: TenantAdmission,
        now: Time,
    ) -> Result<(), Refusal> {
        let open = self.open.get(&tenant).copied().unwrap_or(0);
        if limits.max_active_jobs > 0 && open >= limits.max_active_jobs {
            let reason =
                format!("tenant `{name}` has {open} jobs queued or running, its limit (max_active_jobs)");
            return Err(("quota_exceeded", reason));
        }
        if limits.rate_per_s > 0.0 {
            let burst = f64::from(limits.burst.max(1));
            let (tokens, at) = self.buckets.entry(tenant).or_insert((burst, now));
            *tokens = (*tokens + now.saturating_sub(*at) as f64 / 1000.0 * limits.rate_per_s).min(burst);
            *at = now;
            if *tokens < 1.0 {
                return Err(("rate_limited", format!("tenant `{name}` is over its submit rate")));
            }
            *tokens -= 1.0;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn active_jobs_and_rate_hold() {
        let mut a = Admission::default();
        let quota = TenantAdmission { max_active_jobs: 2, ..Default::default() };
        a.set_open(1, 0, true);
        assert!(a.admit(0, "acme", quota, 0).is_ok());
        a.set_open(2, 0, true);
        a.set_open(2, 0, true);
        assert_eq!(a.admit(0, "acme", quota, 0).unwrap_err().0, "quota_exceeded");
        a.set_open(1, 0, false);
        assert!(a.admit(0, "acme", quota, 0).is_ok(), "an ended job frees its place");
        let rate = TenantAdmission { rate_per_s: 2.0, burst: 2, ..Default::default() };
        assert!(a.admit(1, "globex", rate, 1_000).is_ok());
        assert!(a.admit(1, "globex", rate, 1_000).is_ok());
        assert_eq!(a.admit(1, "globex", rate, 1_000).unwrap_err().0, "rate_limited");
        assert!(a.admit(1, "globex", rate, 1_500).is_ok(), "refilled at 2 per second");
    }
}
