//! One decoding step for n sequences (`Llama::decode_batch`, issue 17) at n = 1–32, with the
//! weights as Q8_0 (the default) and as F32: tokens per second = n / step time. Also one weight
//! product at 1, 8 and 32 rows — through SPLAI's kernel (`Linear`) and through candle's
//! `QMatMul` on the same Q8_0 matrix — which shows where a step's time goes.
//! `cargo bench -p splai-executor --bench decode_batch` (needs `scripts/models`).

use candle_core::quantized::{GgmlDType, QMatMul, QTensor, gguf_file};
use candle_core::{Device, Module, Tensor};
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use splai_executor::linear::Linear;
use splai_executor::llama::{Llama, SeqCache};
use splai_executor::llm::Weights;

fn load(dtype: GgmlDType) -> Option<Llama> {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../models/smollm2-135m-instruct/SmolLM2-135M-Instruct.Q4_1.gguf");
    let Ok(mut file) = std::fs::File::open(&path) else {
        eprintln!("{} missing: run scripts/models", path.display());
        return None;
    };
    let content = gguf_file::Content::read(&mut file).ok()?;
    Llama::load(&content, &mut file, &Device::Cpu, Weights::Convert(dtype), false, 2048).ok()
}

/// Run as a test (`cargo nextest --all-targets` smoke-tests benches in a debug build), only the
/// smallest cases: the full sweep is for `cargo bench`.
fn measuring() -> bool {
    std::env::args().any(|a| a == "--bench")
}

fn dtypes() -> Vec<GgmlDType> {
    if measuring() { vec![GgmlDType::Q8_0, GgmlDType::F32] } else { vec![GgmlDType::Q8_0] }
}

fn sizes(all: &[usize]) -> Vec<usize> {
    if measuring() { all.to_vec() } else { all[..2].to_vec() }
}

fn decode_steps(c: &mut Criterion) {
    let prompt: Vec<u32> = (0..60).map(|j| 200 + j * 37).collect();
    for dtype in dtypes() {
        let Some(m) = load(dtype) else { return };
        let mut group = c.benchmark_group(format!("decode_batch/{dtype:?}"));
        group.sample_size(10);
        for n in sizes(&[1, 4, 8, 16, 32]) {
            let mut caches: Vec<SeqCache> = (0..n).map(|_| SeqCache::new(m.layer_count())).collect();
            let input = Tensor::new(prompt.as_slice(), &Device::Cpu).unwrap().unsqueeze(0).unwrap();
            for cache in &mut caches {
                m.forward_with(&input, 0, cache).unwrap();
            }
            group.throughput(Throughput::Elements(n as u64));
            group.bench_function(BenchmarkId::from_parameter(n), |b| {
                b.iter(|| {
                    // Each iteration is one more token for every sequence; reset before the
                    // context fills.
                    if caches[0].len() > 1900 {
                        for cache in &mut caches {
                            cache.reset();
                            m.forward_with(&input, 0, cache).unwrap();
                        }
                    }
                    let mut batch: Vec<&mut SeqCache> = caches.iter_mut().collect();
                    m.decode_batch(&vec![300u32; n], &mut batch).unwrap()
                })
            });
        }
        group.finish();
    }
}

fn weight_product(c: &mut Criterion) {
    let Some(m) = load(GgmlDType::Q8_0) else { return };
    let gate = m.gate_of(0);
    let Linear::Q8(q8) = gate else { panic!("Q8_0 weights multiply through the kernels") };
    // The same matrix as candle holds it.
    let values: Vec<f32> = (0..q8.rows()).flat_map(|r| q8.row(r)).collect();
    let t = Tensor::from_vec(values, (q8.rows(), q8.cols()), &Device::Cpu).unwrap();
    let candle = QMatMul::from_qtensor(QTensor::quantize(&t, GgmlDType::Q8_0).unwrap()).unwrap();
    let mut group = c.benchmark_group("gate_product");
    for n in sizes(&[1, 8, 32]) {
        let x = Tensor::randn(0f32, 1.0, (n, 1, q8.cols()), &Device::Cpu).unwrap();
        let rows: Vec<f32> = x.flatten_all().unwrap().to_vec1().unwrap();
        group.throughput(Throughput::Elements(n as u64));
        group.bench_function(BenchmarkId::new("splai", n), |b| {
            b.iter(|| gate.forward_rows(&rows, n).unwrap())
        });
        group.bench_function(BenchmarkId::new("candle", n), |b| b.iter(|| candle.forward(&x).unwrap()));
    }
    group.finish();
}

criterion_group!(benches, decode_steps, weight_product);
criterion_main!(benches);
