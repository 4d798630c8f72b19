//! A deterministic closed-loop simulation in virtual time: synthetic jobs arrive, simulated
//! executors beat, start and finish (or fail) what they are assigned, and the real [`Scheduler`]
//! decides. Every envelope that would be on the log is handed to a sink in log order, so the
//! output is a recorded log `splai replay` can read. Used by `splai gen` and the benchmarks.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::time::Instant;

use serde_json::json;
use splai_events::*;

use crate::driver::{Scheduler, SchedulerOptions};
use crate::model::Time;

/// The DAG of each synthetic job.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    /// `n` tasks in a line.
    Chain(u32),
    /// One split task, `n` map tasks, one reduce.
    FanOut(u32),
}

/// A job shape that is not `chain:N` or `fanout:N` with N ≥ 1.
#[derive(Debug, thiserror::Error)]
pub enum BadShape {
    #[error("`{0}`: expected chain:N or fanout:N with N ≥ 1")]
    Form(String),
    #[error("`{0}`: N is not a number")]
    Count(String, #[source] std::num::ParseIntError),
}

impl std::str::FromStr for Shape {
    type Err = BadShape;
    fn from_str(s: &str) -> Result<Self, BadShape> {
        let (kind, n) = s.split_once(':').ok_or_else(|| BadShape::Form(s.to_string()))?;
        let n: u32 = n.parse().map_err(|e| BadShape::Count(s.to_string(), e))?;
        match kind {
            "chain" if n >= 1 => Ok(Shape::Chain(n)),
            "fanout" if n >= 1 => Ok(Shape::FanOut(n)),
            _ => Err(BadShape::Form(s.to_string())),
        }
    }
}

impl Shape {
    fn tasks(self) -> serde_json::Value {
        let t =
            |id: String, parents: Vec<String>| json!({"id": id, "kind": "aggregation", "parents": parents});
        match self {
            Shape::Chain(n) => json!(
                (0..n)
                    .map(|i| t(format!("t{i}"), if i == 0 { vec![] } else { vec![format!("t{}", i - 1)] }))
                    .collect::<Vec<_>>()
            ),
            Shape::FanOut(n) => {
                let mut v = vec![t("split".into(), vec![])];
                v.extend((0..n).map(|i| t(format!("map{i}"), vec!["split".into()])));
                v.push(t("reduce".into(), (0..n).map(|i| format!("map{i}")).collect()));
                json!(v)
            }
        }
    }
}

#[derive(Debug, Clone)]
pub struct SimConfig {
    pub jobs: u32,
    pub shape: Shape,
    pub workers: u32,
    pub slots: u32,
    /// Simulated task duration (ms of virtual time).
    pub duration_ms: u64,
    /// Probability that an attempt fails (retryably).
    pub fail_rate: f64,
    /// Jobs submitted per virtual second (0: all at time 0).
    pub jobs_per_s: f64,
    pub tenants: u32,
    pub seed: u64,
    /// Longest virtual-time jump between ticks (ms).
    pub max_step_ms: u64,
}

#[derive(Debug, Default, Clone)]
pub struct SimReport {
    pub envelopes: u64,
    pub assignments: u64,
    pub makespan_ms: u64,
    pub jobs_succeeded: u64,
    pub jobs_failed: u64,
    pub ticks: u64,
    /// Wall time of ticks that made decisions (µs): from stepping to the emitted assignments.
    pub tick_wall_us: Vec<u64>,
    /// Virtual time from a task becoming runnable to its assignment (ms).
    pub latency_ms: Vec<u64>,
    /// Busy slot-ms over available slot-ms.
    pub utilization: f64,
}

/// A tiny deterministic RNG (splitmix64).
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// Run the simulation; `sink` receives every envelope in log order.
pub fn simulate(cfg: &SimConfig, opts: SchedulerOptions, sink: &mut dyn FnMut(&Envelope)) -> SimReport {
    let mut rng = Rng(cfg.seed);
    let mut sched = Scheduler::new(opts);
    let mut queue: BinaryHeap<Reverse<(Time, u64, usize)>> = BinaryHeap::new();
    let mut slots: Vec<Option<Envelope>> = Vec::new();
    let mut seq = 0u64;
    let mut push = |q: &mut BinaryHeap<Reverse<(Time, u64, usize)>>,
                    slots: &mut Vec<Option<Envelope>>,
                    t: Time,
                    e: Envelope| {
        seq += 1;
        slots.push(Some(e));
        q.push(Reverse((t, seq, slots.len() - 1)));
    };
    let start_t: Time = 1_000;
    for w in 0..cfg.workers {
        let reg = WorkerRegistered {
            worker_id: format!("sim-w{w:05}"),
            cores: cfg.slots,
            memory_mb: 8192,
            slots: cfg.slots,
            light_slots: 0,
            engines: Default::default(),
            models: vec![],
            tools: vec![],
            labels: Default::default(),
            heartbeat_interval_ms: 5_000,
            version: "sim".into(),
        };
        push(
            &mut queue,
            &mut slots,
            start_t,
            Envelope::new(format!("reg-{w}"), start_t, "system", Event::WorkerRegistered(reg)),
        );
    }
    let tasks = cfg.shape.tasks();
    for j in 0..cfg.jobs {
        let at =
            start_t + if cfg.jobs_per_s > 0.0 { (f64::from(j) * 1000.0 / cfg.jobs_per_s) as u64 } else { 0 };
        let mut request: JobRequest = serde_json::from_value(
            json!({"type": "explicit", "job_id": format!("sim-j{j:07}"), "dag": {"tasks": tasks}}),
        )
        .expect("the synthetic request is valid");
        request.max_retries = Some(3);
        let tenant = format!("tenant-{}", j % cfg.tenants.max(1));
        push(
            &mut queue,
            &mut slots,
            at,
            Envelope::new(format!("req-{j}"), at, tenant, Event::JobRequest(request)),
        );
    }
    let mut report = SimReport::default();
    let mut next_beat = start_t + 5_000;
    let mut busy_ms: u64 = 0;
    let mut out = Vec::new();
    let mut outstanding_jobs = u64::from(cfg.jobs);
    // What each worker holds, with when its result is due: its heartbeats name these.
    let mut held: HashMap<String, Vec<(u64, AttemptId)>> = HashMap::new();
    sched.advance(start_t);
    let _ = sched.go_live();
    let mut t = start_t;
    while let Some(Reverse((first, _, _))) = queue.peek().copied() {
        t = first.min(t + cfg.max_step_ms).max(t);
        if t >= next_beat {
            for w in 0..cfg.workers {
                let worker_id = format!("sim-w{w:05}");
                let running = held.get_mut(&worker_id).map_or_else(Vec::new, |h| {
                    h.retain(|(end, _)| *end > t);
                    h.iter().map(|(_, a)| a.clone()).collect()
                });
                let hb = Heartbeat {
                    worker_id,
                    seq: next_beat,
                    cpu_pct: 50.0,
                    memory_used_mb: 100,
                    running,
                    warm_models: vec![],
                    engines: Default::default(),
                };
                push(
                    &mut queue,
                    &mut slots,
                    t,
                    Envelope::new(format!("hb-{w}-{next_beat}"), t, "system", Event::Heartbeat(hb)),
                );
            }
            next_beat += 5_000;
        }
        sched.advance(t);
        while let Some(Reverse((at, _, idx))) = queue.peek().copied() {
            if at > t {
                break;
            }
            queue.pop();
            let e = slots[idx].take().expect("each envelope is delivered once");
            sink(&e);
            report.envelopes += 1;
            sched.apply(&e, &mut out);
        }
        let wall = Instant::now();
        sched.tick(&mut out);
        report.ticks += 1;
        let made = out.iter().any(|e| matches!(e.event, Event::Assign(_)));
        if made {
            report.tick_wall_us.push(wall.elapsed().as_micros() as u64);
        }
        for e in out.drain(..) {
            match &e.event {
                Event::Assign(a) => {
                    // The log delivers it to the scheduler and the executor a millisecond later.
                    report.assignments += 1;
                    let delivered = t + 1;
                    let ok = rng.unit() >= cfg.fail_rate;
                    let attempt = a.attempt.clone();
                    let worker_id = a.worker_id.clone();
                    let tenant = e.tenant.clone();
                    // Recorded as read back from the log, a millisecond after the decision.
                    let mut e = e;
                    e.ts_ms = delivered;
                    push(&mut queue, &mut slots, delivered, e);
                    let started = AttemptStarted { attempt: attempt.clone(), worker_id: worker_id.clone() };
                    let n = slots.len();
                    push(
                        &mut queue,
                        &mut slots,
                        delivered + 1,
                        Envelope::new(
                            format!("st-{n}"),
                            delivered + 1,
                            &tenant,
                            Event::AttemptStarted(started),
                        ),
                    );
                    let end = delivered + 1 + cfg.duration_ms;
                    busy_ms += cfg.duration_ms;
                    held.entry(worker_id.clone()).or_default().push((end, attempt.clone()));
                    let ev = if ok {
                        let artifact = ArtifactRef {
                            path: format!(
                                "{tenant}/{}/{}/{}/output.json",
                                attempt.job_id, attempt.task_id, attempt.attempt
                            ),
                            sha256: "0".repeat(64),
                            size_bytes: 2,
                        };
                        Event::AttemptSucceeded(AttemptSucceeded {
                            attempt,
                            worker_id,
                            artifact,
                            inputs: vec![],
                            duration_ms: cfg.duration_ms,
                            usage: None,
                            provenance: None,
                            subdag: None,
                        })
                    } else {
                        Event::AttemptFailed(AttemptFailed {
                            attempt,
                            worker_id,
                            error: "simulated failure".into(),
                            retryable: true,
                            revoked: None,
                        })
                    };
                    let n = slots.len();
                    push(&mut queue, &mut slots, end, Envelope::new(format!("end-{n}"), end, &tenant, ev));
                }
                Event::JobStateChanged(s) if matches!(s.state, JobState::Succeeded | JobState::Failed) => {
                    if s.state == JobState::Succeeded {
                        report.jobs_succeeded += 1;
                    } else {
                        report.jobs_failed += 1;
                    }
                    outstanding_jobs -= 1;
                }
                _ => {}
            }
        }
        if outstanding_jobs == 0 {
            break;
        }
        // Keep heartbeats coming while work remains, even when the queue is momentarily empty.
        if queue.is_empty() {
            t = next_beat;
            let e = Envelope::new(
                format!("idle-{t}"),
                t,
                "system",
                Event::ArchiveJob(ArchiveJob { job_id: "none".into() }),
            );
            push(&mut queue, &mut slots, t, e);
        }
    }
    report.latency_ms = sched.stats.decision_latency_ms.clone();
    report.makespan_ms = t - start_t;
    let available = (u64::from(cfg.workers) * u64::from(cfg.slots)).max(1) * report.makespan_ms.max(1);
    report.utilization = busy_ms as f64 / available as f64;
    report
}
