//! Per-tenant submit rate: a token bucket refilled continuously.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Instant;

#[derive(Debug)]
pub struct RateLimiter {
    per_s: f64,
    burst: f64,
    /// Tenants with their own (rate, burst).
    overrides: HashMap<String, (f64, f64)>,
    buckets: Mutex<HashMap<String, (f64, Instant)>>,
}

impl RateLimiter {
    /// `per_s` 0 means no limit.
    pub fn new(per_s: f64, burst: u32) -> Self {
        Self { per_s, burst: f64::from(burst.max(1)), overrides: HashMap::new(), buckets: Mutex::default() }
    }

    /// Give `tenant` its own rate and burst.
    pub fn with_tenant(mut self, tenant: &str, per_s: f64, burst: u32) -> Self {
        self.overrides.insert(tenant.to_string(), (per_s, f64::from(burst.max(1))));
        self
    }

    /// Take one token for `tenant`, or the seconds until one is available.
    pub fn take(&self, tenant: &str) -> Result<(), u64> {
        self.take_at(tenant, Instant::now())
    }

    fn take_at(&self, tenant: &str, now: Instant) -> Result<(), u64> {
        let (per_s, burst) = self.overrides.get(tenant).copied().unwrap_or((self.per_s, self.burst));
        if per_s <= 0.0 {
            return Ok(());
        }
        let mut buckets = self.buckets.lock().expect("rate lock");
        let (tokens, last) = buckets.entry(tenant.to_string()).or_insert((burst, now));
        *tokens = (*tokens + now.duration_since(*last).as_secs_f64() * per_s).min(burst);
        *last = now;
        if *tokens >= 1.0 {
            *tokens -= 1.0;
            Ok(())
        } else {
            Err(((1.0 - *tokens) / per_s).ceil() as u64)
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn burst_then_refill_per_tenant() {
        let r = RateLimiter::new(2.0, 3);
        let t0 = Instant::now();
        for _ in 0..3 {
            assert_eq!(r.take_at("a", t0), Ok(()));
        }
        assert_eq!(r.take_at("a", t0), Err(1));
        assert_eq!(r.take_at("b", t0), Ok(()), "tenants have their own buckets");
        assert_eq!(r.take_at("a", t0 + Duration::from_millis(500)), Ok(()));
        assert!(r.take_at("a", t0 + Duration::from_millis(500)).is_err());
        assert_eq!(RateLimiter::new(0.0, 1).take_at("a", t0), Ok(()));
        let r = RateLimiter::new(0.0, 1).with_tenant("trial", 1.0, 1);
        assert_eq!(r.take_at("trial", t0), Ok(()));
        assert_eq!(r.take_at("trial", t0), Err(1), "trial has its own limit");
        assert_eq!(r.take_at("acme", t0), Ok(()));
        assert_eq!(r.take_at("acme", t0), Ok(()), "everyone else is unlimited");
    }
}
