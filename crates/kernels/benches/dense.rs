//! Dense f32 products at MiniLM's shapes for a batch of 32 ten-token sentences (320 rows), on one
//! thread: throughput in FLOP/s to set beside torch's `linear` on the same shapes
//! (`cargo bench -p splai-kernels --bench dense`).

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use splai_kernels::F32Matrix;

fn values(len: usize) -> Vec<f32> {
    (0..len).map(|i| ((i * 7919 % 1000) as f32 / 500.0) - 1.0).collect()
}

fn products(c: &mut Criterion) {
    let mut g = c.benchmark_group("dense_f32");
    let m = 320;
    for (name, n, k) in
        [("qkv_1152x384", 1152, 384), ("up_1536x384", 1536, 384), ("down_384x1536", 384, 1536)]
    {
        let w = F32Matrix::new(values(n * k), n, k).unwrap();
        let x = values(m * k);
        let mut out = vec![0f32; m * n];
        g.throughput(Throughput::Elements((2 * m * n * k) as u64));
        g.bench_with_input(BenchmarkId::new(name, m), &m, |b, _| {
            b.iter(|| w.matmul(&x, &mut out, 1).unwrap())
        });
    }
    g.finish();
}

criterion_group!(benches, products);
criterion_main!(benches);
