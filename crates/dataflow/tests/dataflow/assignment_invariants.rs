//! For random workloads run closed-loop through the real scheduler (virtual time, simulated
//! executors with random failures), no worker ever holds more attempts than its slots and no
//! `(task, attempt)` is ever assigned twice; every job still ends.

use std::collections::{BTreeMap, BTreeSet};

use proptest::prelude::*;
use splai_dataflow::SchedulerOptions;
use splai_dataflow::sim::{Shape, SimConfig, simulate};
use splai_events::Event;
use splai_ingest::plan::Limits;

fn options() -> SchedulerOptions {
    SchedulerOptions {
        heartbeat_ttl_ms: 15_000,
        retry_base_ms: 50,
        retry_cap_ms: 500,
        default_max_retries: 3,
        max_lost_attempts: 8,
        decision_resend_ms: 5_000,
        unschedulable_timeout_ms: 0,
        default_task_timeout_ms: 60_000,
        tenants: Default::default(),
        limits: Limits::default(),
        policy: Default::default(),
        admission: Default::default(),
        metrics: Default::default(),
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 16, ..ProptestConfig::default() })]

    #[test]
    fn slots_and_attempts_are_never_oversubscribed(
        jobs in 1u32..25,
        chain in any::<bool>(),
        width in 1u32..6,
        workers in 1u32..5,
        slots in 1u32..4,
        duration_ms in 1u64..300,
        fail_rate in 0.0f64..0.4,
        seed in any::<u64>(),
    ) {
        let cfg = SimConfig {
            jobs,
            shape: if chain { Shape::Chain(width) } else { Shape::FanOut(width) },
            workers,
            slots,
            duration_ms,
            fail_rate,
            jobs_per_s: 0.0,
            tenants: 3,
            seed,
            max_step_ms: 20,
        };
        let mut log = Vec::new();
        let report = simulate(&cfg, options(), &mut |e| log.push(e.clone()));
        prop_assert_eq!(report.jobs_succeeded + report.jobs_failed, u64::from(jobs));

        let mut open: BTreeMap<String, BTreeSet<(String, String, u32)>> = BTreeMap::new();
        let mut assigned = BTreeSet::new();
        for e in &log {
            match &e.event {
                Event::Assign(a) => {
                    let key = (a.attempt.job_id.clone(), a.attempt.task_id.clone(), a.attempt.attempt);
                    prop_assert!(assigned.insert(key.clone()), "assigned twice: {:?}", key);
                    let on = open.entry(a.worker_id.clone()).or_default();
                    on.insert(key);
                    prop_assert!(on.len() as u32 <= slots, "{} holds {} attempts with {} slots", a.worker_id, on.len(), slots);
                }
                Event::AttemptSucceeded(s) => {
                    open.entry(s.worker_id.clone()).or_default().remove(&(s.attempt.job_id.clone(), s.attempt.task_id.clone(), s.attempt.attempt));
                }
                Event::AttemptFailed(f) => {
                    open.entry(f.worker_id.clone()).or_default().remove(&(f.attempt.job_id.clone(), f.attempt.task_id.clone(), f.attempt.attempt));
                }
                _ => {}
            }
        }
    }
}
