//! Per-tenant submit rate: a token bucket refilled continuously.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Instant;

#[derive(Debug)]
pub struct RateLimiter {
    per_s: f64,
    burst: f64,
    buckets: Mutex<HashMap<String, (f64, Instant)>>,
}

impl RateLimiter {
    /// `per_s` 0 means no limit.
    pub fn new(per_s: f64, burst: u32) -> Self {
        Self { per_s, burst: f64::from(burst.max(1)), buckets: Mutex::default() }
    }

    /// Take one token for `tenant`, or the seconds until one is available.
    pub fn take(&self, tenant: &str) -> Result<(), u64> {
        self.take_at(tenant, Instant::now())
    }

    fn take_at(&self, tenant: &str, now: Instant) -> Result<(), u64> {
        if self.per_s <= 0.0 {
            return Ok(());
        }
        let mut buckets = self.buckets.lock().expect("rate lock");
        let (tokens, last) = buckets.entry(tenant.to_string()).or_insert((self.burst, now));
        *tokens = (*tokens + now.duration_since(*last).as_secs_f64() * self.per_s).min(self.burst);
        *last = now;
        if *tokens >= 1.0 {
            *tokens -= 1.0;
            Ok(())
        } else {
            Err(((1.0 - *tokens) / self.per_s).ceil() as u64)
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
    }
}
