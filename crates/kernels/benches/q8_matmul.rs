//! Q8_0 and Q4_1 products at SmolLM2-135M's shapes for 1 … 32 rows: the cost per row should fall as rows
//! grow (the weights are read once for all of them). `cargo bench -p splai-kernels`.

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use splai_kernels::{Q4Matrix, Q8Matrix, Q8Rows};

fn values(len: usize) -> Vec<f32> {
    (0..len).map(|i| ((i * 7919 % 1000) as f32 / 500.0) - 1.0).collect()
}

fn products(c: &mut Criterion) {
    let full = std::env::args().any(|a| a == "--bench");
    let mut g = c.benchmark_group("q8_matmul");
    for (name, n, k) in [("gate_1536x576", 1536, 576), ("down_576x1536", 576, 1536)] {
        let w = Q8Matrix::quantize(&values(n * k), n, k).unwrap();
        let w4 = Q4Matrix::quantize(&values(n * k), n, k).unwrap();
        for m in if full { vec![1, 4, 8, 16, 32] } else { vec![1, 2] } {
            let x = Q8Rows::quantize(&values(m * k), k).unwrap();
            let mut out = vec![0f32; m * n];
            g.throughput(Throughput::Elements(m as u64));
            g.bench_with_input(BenchmarkId::new(format!("{name}/q8_0"), m), &m, |b, _| {
                b.iter(|| w.matmul(&x, &mut out).unwrap())
            });
            g.bench_with_input(BenchmarkId::new(format!("{name}/q4_1"), m), &m, |b, _| {
                b.iter(|| w4.matmul(&x, &mut out).unwrap())
            });
        }
    }
    g.finish();
}

criterion_group!(benches, products);
criterion_main!(benches);
