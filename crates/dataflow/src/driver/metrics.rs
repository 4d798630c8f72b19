//! Metrics as a stream (issue 21 item 6): the dataflow counts, per scope (a tenant and the model
//! its jobs ask for), the tallies of a sliding window ([`crate::operators::scope_metrics`]); this
//! part numbers the scopes, feeds the tallies (each retracted one window after it happened), keeps
//! the counts the dataflow reports, adds each scope's runnable and running tasks from the
//! `runnable` and `active` changes of each step (a join in the dataflow cost ~8 % per hop), and
//! writes the scopes that changed to `metrics`, at most once per interval, and every scope at
//! go-live.

use std::collections::{BTreeMap, BTreeSet};

use rustc_hash::FxHashMap as HashMap;
use splai_events::{ClusterMetrics, Envelope, Event, Percentiles, ScopeMetrics};

use super::job_table::JobTable;
use crate::engine::{Changes, Engine};
use crate::model::{Fact, Gauge, Job, Scope, Tally, Time, bucket_top};

/// How metrics are kept and written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MetricsOptions {
    /// The sliding window of the tallies and percentiles (ms).
    pub window_ms: u64,
    /// A scope's record is written at most this often (ms; 0: no metrics records).
    pub interval_ms: u64,
}

impl Default for MetricsOptions {
    fn default() -> Self {
        Self { window_ms: 60_000, interval_ms: 1_000 }
    }
}

/// The scopes, the dataflow's counts per scope, and what is due to be written.
#[derive(Debug, Default, serde::Serialize, serde::Deserialize)]
pub(super) struct Metrics {
    /// Scope number → (tenant number, model).
    scopes: Vec<(u32, Option<String>)>,
    #[serde(skip)]
    index: HashMap<(u32, Option<String>), Scope>,
    /// Each admitted job's scope, by job number.
    job_scope: JobTable<Option<Scope>>,
    counts: BTreeMap<(Scope, Gauge), u64>,
    changed: BTreeSet<Scope>,
    cluster: Option<(u64, i64)>,
    cluster_changed: bool,
    last_written: Time,
}

impl Metrics {
    /// The scope of `tenant`'s jobs that ask for `model`, numbered on first use.
    pub fn scope(&mut self, tenant: u32, model: Option<&str>) -> Scope {
        if self.index.len() != self.scopes.len() {
            // Restored from a snapshot: the index is rebuilt from the list.
            self.index = self.scopes.iter().cloned().enumerate().map(|(i, k)| (k, i as Scope)).collect();
        }
        let key = (tenant, model.map(str::to_string));
        if let Some(scope) = self.index.get(&key) {
            return *scope;
        }
        let scope = self.scopes.len() as Scope;
        self.scopes.push(key.clone());
        self.index.insert(key, scope);
        scope
    }

    /// Count `tally` in `scope`'s window from `now`.
    pub fn tally(engine: &mut Engine, scope: Scope, tally: Tally, now: Time, window_ms: u64) {
        engine.feed_aside(Fact::Tally(scope, tally), now, 1);
        engine.feed_aside(Fact::Tally(scope, tally), now + window_ms, -1);
    }

    /// `job` (just admitted) counts in `scope`.
    pub fn enter(&mut self, job: Job, scope: Scope) {
        *self.job_scope.slot(job as usize) = Some(scope);
    }

    /// The scope admitted `job` counts in (none once it retired).
    pub fn scope_of(&self, job: Job) -> Option<Scope> {
        self.job_scope.get(job as usize).copied().flatten()
    }

    /// Retired `job` counts no more.
    pub fn leave(&mut self, job: Job) {
        self.job_scope.take(job as usize);
    }

    /// Take in a step's changes: the dataflow's tally counts, and runnable and running tasks.
    pub fn absorb(&mut self, changes: &Changes) {
        for (((scope, tally), count), diff) in &changes.metrics {
            let key = (*scope, Gauge::Tally(*tally));
            if *diff > 0 {
                self.counts.insert(key, (*count).max(0) as u64);
            } else if self.counts.get(&key) == Some(&((*count).max(0) as u64)) {
                self.counts.remove(&key);
            }
            self.changed.insert(*scope);
        }
        let runnable = changes.runnable.iter().map(|(((job, _), _), diff)| (*job, Gauge::Runnable, *diff));
        let running = changes.active.iter().map(|(((job, _), _), diff)| (*job, Gauge::Running, *diff));
        for (job, gauge, diff) in runnable.chain(running) {
            let Some(scope) = self.scope_of(job) else { continue };
            let n = self.counts.entry((scope, gauge)).or_insert(0);
            *n = n.saturating_add_signed(diff as i64);
            self.changed.insert(scope);
        }
    }

    /// The cluster's live workers and free slots now.
    pub fn set_cluster(&mut self, live_workers: u64, free_slots: i64) {
        if self.cluster != Some((live_workers, free_slots)) {
            self.cluster = Some((live_workers, free_slots));
            self.cluster_changed = true;
        }
    }

    /// Records for the scopes that changed, if the interval has passed (`all`: every scope, now).
    pub fn records(
        &mut self,
        now: Time,
        opts: MetricsOptions,
        tenants: &[String],
        all: bool,
        out: &mut Vec<Envelope>,
    ) {
        if opts.interval_ms == 0 || (!all && now < self.last_written + opts.interval_ms) {
            return;
        }
        if !all && self.changed.is_empty() && !self.cluster_changed {
            return;
        }
        let scopes: Vec<Scope> = if all {
            (0..self.scopes.len() as Scope).collect()
        } else {
            self.changed.iter().copied().collect()
        };
        self.changed.clear();
        for scope in scopes {
            let (tenant, model) = &self.scopes[scope as usize];
            let tenant = &tenants[*tenant as usize];
            let body = self.figures(scope, tenant, model.clone(), opts.window_ms);
            let id = format!("metrics:{}:{now}", body.scope);
            out.push(Envelope::new(id, now, tenant.as_str(), Event::ScopeMetrics(body)));
        }
        if let Some((live_workers, free_slots)) = self.cluster.filter(|_| all || self.cluster_changed) {
            let body = ClusterMetrics { live_workers, free_slots };
            out.push(Envelope::new(
                format!("metrics:cluster:{now}"),
                now,
                "system",
                Event::ClusterMetrics(body),
            ));
        }
        self.cluster_changed = false;
        self.last_written = now;
    }

    fn figures(&self, scope: Scope, tenant: &str, model: Option<String>, window_ms: u64) -> ScopeMetrics {
        let count = |gauge| self.counts.get(&(scope, gauge)).copied().unwrap_or(0);
        let tally = |t| count(Gauge::Tally(t));
        let buckets = |of: fn(Tally) -> Option<u8>| -> Vec<(u8, u64)> {
            self.counts
                .range((scope, Gauge::Runnable)..=(scope, Gauge::Tally(Tally::RunTime(u8::MAX))))
                .filter_map(|((_, g), n)| match g {
                    Gauge::Tally(t) => of(*t).map(|b| (b, *n)),
                    _ => None,
                })
                .collect()
        };
        let queue_wait = buckets(|t| if let Tally::QueueWait(b) = t { Some(b) } else { None });
        let run = buckets(|t| if let Tally::RunTime(b) = t { Some(b) } else { None });
        ScopeMetrics {
            scope: format!("{tenant}/{}", model.as_deref().unwrap_or("-")),
            model,
            window_ms,
            runnable: count(Gauge::Runnable),
            running: count(Gauge::Running),
            admitted: tally(Tally::Admitted),
            succeeded: tally(Tally::Succeeded),
            failed: tally(Tally::Failed),
            retries: tally(Tally::Retried),
            dead_letters: tally(Tally::DeadLettered),
            queue_wait_ms: percentiles(&queue_wait),
            run_ms: percentiles(&run),
        }
    }
}

/// p50 and p95 of counts per bucket (in bucket order): the top of the bucket each falls in.
fn percentiles(buckets: &[(u8, u64)]) -> Percentiles {
    let count: u64 = buckets.iter().map(|(_, n)| n).sum();
    let at = |q: f64| {
        let rank = ((count as f64) * q).ceil().max(1.0) as u64;
        let mut seen = 0;
        buckets
            .iter()
            .find(|(_, n)| {
                seen += n;
                seen >= rank
            })
            .map(|(b, _)| bucket_top(*b))
    };
    if count == 0 {
        return Percentiles::default();
    }
    Percentiles { count, p50: at(0.5), p95: at(0.95) }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::bucket_of;

    #[test]
    fn percentiles_are_read_off_the_buckets() {
        let buckets: Vec<(u8, u64)> = vec![(bucket_of(10), 50), (bucket_of(100), 45), (bucket_of(1000), 5)];
        let p = percentiles(&buckets);
        assert_eq!(p.count, 100);
        let (p50, p95) = (p.p50.unwrap(), p.p95.unwrap());
        assert!((10..=12).contains(&p50), "{p50}");
        assert!((100..=120).contains(&p95), "{p95}");
        assert_eq!(percentiles(&[]), Percentiles::default());
    }

    #[test]
    fn buckets_are_a_fifth_wide_and_ordered() {
        for ms in [0, 1, 7, 99, 1_000, 65_000, 3_600_000] {
            let top = bucket_top(bucket_of(ms));
            assert!(top >= ms && top as f64 <= (ms as f64 + 1.0) * 1.2 + 1.0, "{ms} → {top}");
        }
        assert!(bucket_of(10) < bucket_of(100));
    }
}
