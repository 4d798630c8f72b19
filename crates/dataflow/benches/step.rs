//! The fixed cost of one live scheduler step: the engine empty, or holding a history of 1 000
//! finished fan-out jobs (and one live worker); idle, with one new task fed, or the step of a DAG
//! hop (a parent's success applied, its child made runnable). Every DAG hop pays
//! at least one such step, so it bounds the per-hop latency from below. And what a snapshot's
//! dataflow part costs with that history: reading the input facts out, and rebuilding an engine
//! from them (`Engine::restored`, the bulk of a restore).

use criterion::{Criterion, criterion_group, criterion_main};
use splai_dataflow::engine::Engine;
use splai_dataflow::model::{Budget, Fact, Outcome};

const WIDTH: u32 = 22;
const BUDGET: Budget = Budget { retries: 3, losses: 10 };

/// An engine with `jobs` finished fan-out jobs of `WIDTH` tasks and one live worker.
fn engine_with_history(jobs: u32) -> (Engine, u64) {
    let mut engine = Engine::new();
    engine.feed(Fact::Beat(0, 0, 1024), 0, 1);
    let mut t = 1;
    for job in 0..jobs {
        for task in 0..WIDTH {
            engine.feed(Fact::Task((job, task), BUDGET), t, 1);
            if task > 0 {
                engine.feed(Fact::Edge((job, 0), (job, task)), t, 1);
            }
            engine.feed(Fact::Assigned((job, task), 1, 0), t, 1);
            engine.feed(Fact::Started((job, task), 1), t, 1);
            engine.feed(Fact::Ended((job, task), 1, Outcome::Succeeded), t, 1);
        }
        t += 1;
        engine.step_to(t);
    }
    (engine, t)
}

fn step(c: &mut Criterion) {
    // `cargo test` runs each benchmark once, unoptimised: a short history keeps that quick.
    let history = if std::env::args().any(|a| a == "--bench") { 1000 } else { 20 };
    let mut group = c.benchmark_group("live_step");
    for (name, jobs) in [("empty", 0u32), ("history", history)] {
        let (mut engine, mut t) = engine_with_history(jobs);
        group.bench_function(format!("idle_{name}"), |b| {
            b.iter(|| {
                t += 1;
                engine.step_to(t)
            })
        });
        // The step of a DAG hop: a parent's success is applied and its child becomes runnable
        // (only that step is timed; the child then runs and ends, so the history grows as live).
        let mut job = jobs + 1_000_000;
        group.bench_function(format!("hop_{name}"), |b| {
            b.iter_custom(|iters| {
                let mut timed = std::time::Duration::ZERO;
                for _ in 0..iters {
                    job += 1;
                    let (parent, child) = ((job, 0), (job, 1));
                    engine.feed(Fact::Task(parent, BUDGET), t, 1);
                    engine.feed(Fact::Task(child, BUDGET), t, 1);
                    engine.feed(Fact::Edge(parent, child), t, 1);
                    engine.feed(Fact::Assigned(parent, 1, 0), t, 1);
                    engine.feed(Fact::Started(parent, 1), t, 1);
                    t += 1;
                    engine.step_to(t);
                    engine.feed(Fact::Ended(parent, 1, Outcome::Succeeded), t, 1);
                    t += 1;
                    let started = std::time::Instant::now();
                    let changes = engine.step_to(t);
                    timed += started.elapsed();
                    std::hint::black_box(changes);
                    engine.feed(Fact::Assigned(child, 1, 0), t, 1);
                    engine.feed(Fact::Started(child, 1), t, 1);
                    engine.feed(Fact::Ended(child, 1, Outcome::Succeeded), t, 1);
                    t += 1;
                    engine.step_to(t);
                }
                timed
            })
        });
        let mut job = jobs;
        group.bench_function(format!("one_task_{name}"), |b| {
            b.iter(|| {
                job += 1;
                engine.feed(Fact::Task((job, 0), BUDGET), t, 1);
                t += 1;
                engine.step_to(t)
            })
        });
    }
    group.finish();
}

fn snapshot(c: &mut Criterion) {
    let history = if std::env::args().any(|a| a == "--bench") { 1000 } else { 20 };
    let (engine, t) = engine_with_history(history);
    let mut group = c.benchmark_group("snapshot_engine");
    group.sample_size(10);
    group.bench_function("inputs_history", |b| b.iter(|| engine.inputs()));
    let inputs = engine.inputs().expect("a live engine keeps its inputs");
    group.bench_function("restore_history", |b| {
        b.iter_batched(
            || inputs.clone(),
            |facts| Engine::restored(facts, t, 1),
            criterion::BatchSize::LargeInput,
        )
    });
    group.finish();
}

criterion_group!(benches, step, snapshot);
criterion_main!(benches);
