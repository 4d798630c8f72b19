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
            engines: Default::default(),
        }),
    )
}

/// The three kinds that make up ~95 % of a scheduler's input (as `splai gen` writes them).
const ATTEMPT_LINES: [(&str, &str); 3] = [
    (
        "assign",
        r#"{"v":1,"id":"assign:sim-j0000000:t0:1","ts_ms":1001,"tenant":"tenant-0","kind":"assign","body":{"job_id":"sim-j0000000","task_id":"t0","attempt":1,"worker_id":"sim-w00000","kind":"aggregation","inputs":{},"requirements":{"cpu_slots":1,"memory_mb":0},"deadline_ms":301001}}"#,
    ),
    (
        "attempt_started",
        r#"{"v":1,"id":"st-101001","ts_ms":1002,"tenant":"tenant-0","kind":"attempt_started","body":{"job_id":"sim-j0000000","task_id":"t0","attempt":1,"worker_id":"sim-w00000"}}"#,
    ),
    (
        "attempt_succeeded",
        r#"{"v":1,"id":"end-101002","ts_ms":2002,"tenant":"tenant-0","kind":"attempt_succeeded","body":{"job_id":"sim-j0000000","task_id":"t0","attempt":1,"worker_id":"sim-w00000","artifact":{"path":"tenant-0/sim-j0000000/t0/1/output.json","sha256":"0000000000000000000000000000000000000000000000000000000000000000","size_bytes":2},"inputs":[],"duration_ms":1000}}"#,
    ),
];

fn codec(c: &mut Criterion) {
    let envelope = heartbeat();
    let bytes = encode(&envelope);
    let mut group = c.benchmark_group("envelope");
    group.throughput(Throughput::Bytes(bytes.len() as u64));
    group.bench_function("encode", |b| b.iter(|| encode(std::hint::black_box(&envelope))));
    group.bench_function("decode", |b| b.iter(|| decode(std::hint::black_box(&bytes)).unwrap()));
    group.finish();
    let mut group = c.benchmark_group("decode");
    for (kind, line) in ATTEMPT_LINES {
        group.throughput(Throughput::Bytes(line.len() as u64));
        group.bench_function(kind, |b| b.iter(|| decode(std::hint::black_box(line.as_bytes())).unwrap()));
    }
    group.finish();
}

criterion_group!(benches, codec);
criterion_main!(benches);
