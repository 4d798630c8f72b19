use super::*;

/// A deterministic pseudo-random matrix (no RNG dependency in a kernel crate).
fn values(len: usize, seed: u64) -> Vec<f32> {
    let mut s = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
    (0..len)
        .map(|_| {
            s = s.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            ((s >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
        })
        .collect()
}

fn reference(w: &impl Weights, x: &Q8Rows) -> Vec<f32> {
    let n = w.shape().0;
    let mut out = vec![0f32; x.rows() * n];
    let mut rows: Vec<&mut [f32]> = out.chunks_exact_mut(n).collect();
    w.product(x86::Kernel::Portable, 0..n, x, &mut rows);
    out
}

#[test]
fn q4_products_equal_the_portable_one_and_the_dequantized_weights() {
    let (n, k) = (67, 96);
    let v = values(n * k, 21);
    let w = Q4Matrix::quantize(&v, n, k).unwrap();
    for (a, b) in w.row(3).iter().zip(&v[3 * k..4 * k]) {
        assert!((a - b).abs() <= 2.0 / 15.0 / 2.0 + 1e-3, "dequantized {a} vs {b}");
    }
    for m in [1, 2, 3, 4, 5, 7, 9] {
        let x = Q8Rows::quantize(&values(m * k, m as u64 + 70), k).unwrap();
        let mut out = vec![0f32; m * n];
        w.matmul(&x, &mut out).unwrap();
        for (a, b) in out.iter().zip(reference(&w, &x)) {
            assert!((a - b).abs() <= 1e-4 * b.abs().max(1.0), "m={m}: {a} vs {b}");
        }
        // Against the float product of the dequantized weights (activation rounding only).
        let xf = values(m * k, m as u64 + 70);
        for i in 0..m {
            for j in 0..n {
                let exact: f32 = w.row(j).iter().zip(&xf[i * k..(i + 1) * k]).map(|(a, b)| a * b).sum();
                assert!((out[i * n + j] - exact).abs() < 0.05 * exact.abs().max(1.0), "{i},{j}");
            }
        }
    }
}

#[test]
fn a_q4_row_gets_the_same_bits_alone_and_in_any_batch() {
    let (n, k) = (70, 128);
    let w = Q4Matrix::quantize(&values(n * k, 33), n, k).unwrap();
    let all = values(9 * k, 41);
    let alone: Vec<Vec<f32>> = all
        .chunks_exact(k)
        .map(|row| {
            let mut out = vec![0f32; n];
            w.matmul(&Q8Rows::quantize(row, k).unwrap(), &mut out).unwrap();
            out
        })
        .collect();
    for m in 2..=9 {
        let mut out = vec![0f32; m * n];
        w.matmul(&Q8Rows::quantize(&all[..m * k], k).unwrap(), &mut out).unwrap();
        for (i, row) in out.chunks_exact(n).enumerate() {
            assert_eq!(row, alone[i].as_slice(), "row {i} in a batch of {m}");
        }
    }
}

#[test]
fn the_product_equals_the_portable_one_for_every_tile_shape() {
    // Rows chosen to leave remainders in both tile directions.
    let (n, k) = (67, 96);
    let w = Q8Matrix::quantize(&values(n * k, 1), n, k).unwrap();
    for m in [1, 2, 3, 4, 5, 7, 9] {
        let x = Q8Rows::quantize(&values(m * k, m as u64 + 7), k).unwrap();
        let mut out = vec![0f32; m * n];
        w.matmul(&x, &mut out).unwrap();
        for (a, b) in out.iter().zip(reference(&w, &x)) {
            assert!((a - b).abs() <= 1e-4 * b.abs().max(1.0), "m={m}: {a} vs {b}");
        }
    }
}

#[test]
fn a_row_gets_the_same_bits_alone_and_in_any_batch() {
    let (n, k) = (70, 128);
    let w = Q8Matrix::quantize(&values(n * k, 3), n, k).unwrap();
    let all = values(9 * k, 11);
    let mut alone = Vec::new();
    for row in all.chunks_exact(k) {
        let mut out = vec![0f32; n];
        w.matmul(&Q8Rows::quantize(row, k).unwrap(), &mut out).unwrap();
        alone.push(out);
    }
    for m in 2..=9 {
        let mut out = vec![0f32; m * n];
        w.matmul(&Q8Rows::quantize(&all[..m * k], k).unwrap(), &mut out).unwrap();
        for (i, row) in out.chunks_exact(n).enumerate() {
            assert_eq!(row, alone[i].as_slice(), "row {i} in a batch of {m}");
        }
    }
}

#[test]
fn ggml_bytes_and_quantization_agree() {
    let (n, k) = (3, 64);
    let v = values(n * k, 5);
    let q = Q8Matrix::quantize(&v, n, k).unwrap();
    let mut bytes = Vec::new();
    for r in 0..n {
        for b in 0..k / BLOCK {
            bytes.extend(half::f16::from_f32(q.scale(r, b)).to_le_bytes());
            bytes.extend((b * BLOCK..(b + 1) * BLOCK).map(|j| q.quant(r, j) as u8));
        }
    }
    let back = Q8Matrix::from_ggml(&bytes, n, k).unwrap();
    assert_eq!(back.quants, q.quants);
    assert_eq!(back.scales, q.scales);
    for (a, b) in q.row(1).iter().zip(&v[k..2 * k]) {
        assert!((a - b).abs() < 0.01, "dequantized {a} vs {b}");
    }
}

#[test]
fn shapes_that_do_not_fit_are_errors() {
    assert!(Q8Matrix::quantize(&[0.0; 30], 1, 30).unwrap_err().to_string().contains("whole blocks"));
    let w = Q8Matrix::quantize(&[0.0; 64], 2, 32).unwrap();
    let x = Q8Rows::quantize(&[0.0; 64], 64).unwrap();
    assert!(w.matmul(&x, &mut [0.0; 2]).unwrap_err().to_string().contains("64 columns"));
    assert!(Q8Matrix::from_ggml(&[0; 33], 1, 32).unwrap_err().to_string().contains("33 bytes"));
    assert!(Q4Matrix::from_ggml(&[0; 21], 1, 32).unwrap_err().to_string().contains("21 bytes"));
}

/// The VNNI tiles sum the same integers as the AVX2 ones, so both give the same bits, for Q8_0
/// and Q4_1, at every tile height (runs only where this CPU has AVX-512 VNNI).
#[test]
fn vnni_tiles_give_the_avx2_tiles_bits() {
    if x86::Kernel::detect() != x86::Kernel::Vnni {
        eprintln!("no AVX-512 VNNI here: nothing to compare");
        return;
    }
    let (n, k) = (37, 160);
    let v = values(n * k, 5);
    let q8 = Q8Matrix::quantize(&v, n, k).unwrap();
    let q4 = Q4Matrix::quantize(&v, n, k).unwrap();
    let by = |w: &dyn Weights, kernel, x: &Q8Rows| {
        let mut out = vec![0f32; x.rows() * n];
        let mut rows: Vec<&mut [f32]> = out.chunks_exact_mut(n).collect();
        w.product(kernel, 0..n, x, &mut rows);
        out
    };
    for m in [1, 2, 3, 4, 5, 9] {
        let x = Q8Rows::quantize(&values(m * k, m as u64 + 90), k).unwrap();
        for (name, w) in [("q8", &q8 as &dyn Weights), ("q4", &q4)] {
            let (avx2, vnni) = (by(w, x86::Kernel::Avx2, &x), by(w, x86::Kernel::Vnni, &x));
            let bits = |v: &[f32]| v.iter().map(|f| f.to_bits()).collect::<Vec<_>>();
            assert_eq!(bits(&avx2), bits(&vnni), "{name}, {m} rows");
        }
    }
}
