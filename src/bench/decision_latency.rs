//! Decision latency in wall time, from the log a benchmark's stack wrote: for every task of the
//! given jobs, *runnable → assigned* (from the moment its last parent's success was appended —
//! or its job's request, for a root — to its assignment) and *assigned → started* (to the
//! executor's start). The scheduler's own latency metric is measured on its clock, which only
//! shows the work within a step, not waiting between steps; these show both.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::Duration;

use splai_events::{Envelope, Event, Topic};
use splai_ingest::log::{EventReader, EventWriter};

use super::percentile;

#[derive(Debug, Default)]
struct Task {
    parents: Vec<String>,
    assigned: Option<u64>,
    started: Option<u64>,
    succeeded: Option<u64>,
}

/// Percentiles of both latencies (ms): `(runnable → assigned, assigned → started)`.
#[derive(Debug)]
pub struct Latencies {
    pub to_assigned: Vec<f64>,
    pub to_started: Vec<f64>,
}

impl Latencies {
    pub fn line(&self) -> String {
        let (a, s) = (&self.to_assigned, &self.to_started);
        format!(
            "runnable→assigned p50_ms={:.2} p99_ms={:.2}; assigned→started p50_ms={:.2} p99_ms={:.2} ({} tasks)",
            percentile(a, 0.5),
            percentile(a, 0.99),
            percentile(s, 0.5),
            percentile(s, 0.99),
            a.len()
        )
    }
}

/// Read the log from its start and measure the tasks of `jobs` (job ids).
pub async fn measure(writer: &EventWriter, jobs: &HashSet<String>) -> anyhow::Result<Latencies> {
    let group = format!("bench-latency-{}", uuid::Uuid::now_v7().simple());
    let topics = [Topic::Jobs, Topic::JobEvents, Topic::Assignments, Topic::TaskEvents];
    let mut reader = EventReader::subscribe(writer.clone(), &group, &topics, None).await?;
    let mut requested: HashMap<String, u64> = HashMap::new();
    let mut tasks: BTreeMap<(String, String), Task> = BTreeMap::new();
    loop {
        let batch = reader.poll(10_000, Duration::from_millis(200)).await?;
        if batch.positions.is_empty() {
            break;
        }
        for (_, e) in &batch.events {
            record(e, jobs, &mut requested, &mut tasks);
        }
    }
    let mut out = Latencies { to_assigned: Vec::new(), to_started: Vec::new() };
    for ((job, _), t) in &tasks {
        let ready = if t.parents.is_empty() {
            requested.get(job).copied()
        } else {
            t.parents
                .iter()
                .map(|p| tasks.get(&(job.clone(), p.clone())).and_then(|p| p.succeeded))
                .collect::<Option<Vec<u64>>>()
                .and_then(|v| v.into_iter().max())
        };
        if let (Some(ready), Some(assigned)) = (ready, t.assigned) {
            out.to_assigned.push(assigned.saturating_sub(ready) as f64);
        }
        if let (Some(assigned), Some(started)) = (t.assigned, t.started) {
            out.to_started.push(started.saturating_sub(assigned) as f64);
        }
    }
    out.to_assigned.sort_by(f64::total_cmp);
    out.to_started.sort_by(f64::total_cmp);
    Ok(out)
}

fn record(
    e: &Envelope,
    jobs: &HashSet<String>,
    requested: &mut HashMap<String, u64>,
    tasks: &mut BTreeMap<(String, String), Task>,
) {
    fn task<'a>(tasks: &'a mut BTreeMap<(String, String), Task>, job: &str, id: &str) -> &'a mut Task {
        tasks.entry((job.to_string(), id.to_string())).or_default()
    }
    match &e.event {
        Event::JobRequest(r) => {
            if let Some(job) = r.job_id.as_ref().filter(|j| jobs.contains(*j)) {
                requested.entry(job.clone()).or_insert(e.ts_ms);
            }
        }
        Event::JobAdmitted(a) if jobs.contains(&a.job_id) => {
            for t in &a.dag.tasks {
                task(tasks, &a.job_id, &t.id).parents = t.parents.clone();
            }
        }
        Event::Assign(a) if jobs.contains(&a.attempt.job_id) => {
            let t = task(tasks, &a.attempt.job_id, &a.attempt.task_id);
            t.assigned.get_or_insert(e.ts_ms);
        }
        Event::AttemptStarted(s) if jobs.contains(&s.attempt.job_id) => {
            task(tasks, &s.attempt.job_id, &s.attempt.task_id).started.get_or_insert(e.ts_ms);
        }
        Event::AttemptSucceeded(s) if jobs.contains(&s.attempt.job_id) => {
            task(tasks, &s.attempt.job_id, &s.attempt.task_id).succeeded.get_or_insert(e.ts_ms);
        }
        _ => {}
    }
}
