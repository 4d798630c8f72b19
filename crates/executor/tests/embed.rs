//! Real embeddings with all-MiniLM-L6-v2 from `./models` (skipped with a message only when absent
//! and SPLAI_TEST_REQUIRE_MODELS is not set).

use splai_executor::embed::Embedder;

fn cosine(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

#[test]
fn minilm_ranks_similar_above_unrelated() {
    let Some(dir) = splai_executor::test_models::minilm() else { return };
    let model = Embedder::load(&dir, "all-minilm-l6-v2").unwrap();
    let texts: Vec<String> =
        ["A cat sits on the mat.", "A kitten is sitting on a rug.", "The stock market fell sharply today."]
            .iter()
            .map(|s| s.to_string())
            .collect();
    let v = model.embed(&texts).unwrap();
    assert_eq!(v.len(), 3);
    assert_eq!(v[0].len(), 384);
    for x in &v {
        let norm: f32 = x.iter().map(|a| a * a).sum::<f32>().sqrt();
        assert!((norm - 1.0).abs() < 1e-4, "{norm}");
    }
    let similar = cosine(&v[0], &v[1]);
    let unrelated = cosine(&v[0], &v[2]);
    assert!(similar > unrelated + 0.2, "similar {similar} vs unrelated {unrelated}");
    // Batching does not change a text's vector.
    let alone = model.embed(&texts[..1]).unwrap();
    assert!(cosine(&alone[0], &v[0]) > 0.9999);
}
