//! Envelope encode/decode cost (criterion). `cargo bench --bench codec`
//! The JSON codec sits on every hop; this keeps its cost visible next to the log's throughput.

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use splai_events::{AttemptId, Envelope, Event, Heartbeat, decode, encode};

fn heartbeat() -> Envelope {
    Envelope::new(
        "hb-1",
        1_764_158_400_000,
        "system",
        Event::Heartbeat(Heartbeat {
            worker_id: "w-node1-0".into(),
            seq: 42,
            cpu_pct: 97.5,
            memory_used_mb: 812,
            running: vec![AttemptId { job_id: "job-7f3a".into(), task_id: "map-0".into(), attempt: 1 }],
            warm_models: vec!["smollm2-135m-instruct".into()],
        }),
    )
}

fn codec(c: &mut Criterion) {
    let envelope = heartbeat();
    let bytes = encode(&envelope);
    let mut group = c.benchmark_group("envelope");
    group.throughput(Throughput::Bytes(bytes.len() as u64));
    group.bench_function("encode", |b| b.iter(|| encode(std::hint::black_box(&envelope))));
    group.bench_function("decode", |b| b.iter(|| decode(std::hint::black_box(&bytes)).unwrap()));
    group.finish();
}

criterion_group!(benches, codec);
criterion_main!(benches);
