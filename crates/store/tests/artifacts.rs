//! Artifacts on a local directory and on S3 (SeaweedFS, when SPLAI_TEST_S3_ENDPOINT is set by
//! `scripts/test`): write, read back verified, same bytes ⇒ same reference, tampering detected,
//! result-cache entries filed per tenant.

use splai_config::ArtifactSettings;
use splai_events::AttemptId;
use splai_store::artifacts::{ArtifactError, ArtifactStore};

fn attempt(task: &str) -> AttemptId {
    AttemptId { job_id: "job-1".into(), task_id: task.into(), attempt: 1 }
}

async fn roundtrip(store: &ArtifactStore) {
    let body = br#"{"text":"hello"}"#.to_vec();
    let a = store.put_output("acme", &attempt("t1"), body.clone()).await.unwrap();
    assert_eq!(a.path, "acme/job-1/t1/1/output.json");
    assert_eq!(a.size_bytes, body.len() as u64);
    assert_eq!(store.get(&a).await.unwrap().as_ref(), body.as_slice());
    // Same bytes, same reference (deterministic artifacts are comparable by sha256).
    let again = store.put_output("acme", &attempt("t1"), body.clone()).await.unwrap();
    assert_eq!(again, a);
    // A reference that does not match the stored bytes is refused.
    let mut wrong = a.clone();
    wrong.sha256 = "0".repeat(64);
    assert!(matches!(store.get(&wrong).await, Err(ArtifactError::Mismatch { .. })));
    let mut missing = a.clone();
    missing.path = "acme/job-1/nope/1/output.json".into();
    assert!(matches!(store.get(&missing).await, Err(ArtifactError::Read { .. })));
    assert!(matches!(
        store.put_output("acme", &attempt("../escape"), vec![]).await,
        Err(ArtifactError::BadSegment { .. })
    ));
    // Small outputs and large ones (written on different paths on a local store) read back the
    // same, and a rewrite replaces the content whole.
    let small = store.put_output("acme", &attempt("big"), body.clone()).await.unwrap();
    assert_eq!(store.get(&small).await.unwrap().as_ref(), body.as_slice());
    let large = vec![b'x'; 300 * 1024];
    let l = store.put_output("acme", &attempt("big"), large.clone()).await.unwrap();
    assert_eq!(store.get(&l).await.unwrap().len(), large.len(), "the rewrite is read, not the older copy");
    // Cache entries are per tenant: filed for one, absent for another; a bad key is refused.
    // A key of this run: a shared S3 bucket keeps entries of earlier runs.
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos() as u64;
    let key = format!("{nanos:016x}").repeat(4);
    assert_eq!(store.cache_entry("acme", &key).await.unwrap(), None);
    store.put_cache_entry("acme", &key, &a).await.unwrap();
    assert_eq!(store.cache_entry("acme", &key).await.unwrap(), Some(a.clone()));
    assert_eq!(store.cache_entry("globex", &key).await.unwrap(), None, "another tenant's entry");
    assert!(matches!(store.cache_entry("acme", "../x").await, Err(ArtifactError::BadSegment { .. })));
}

fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(bytes))
}

#[tokio::test]
async fn local_directory() {
    let dir = tempfile::tempdir().unwrap();
    let settings = ArtifactSettings {
        url: format!("file://{}", dir.path().join("artifacts").display()),
        s3_endpoint: String::new(),
        s3_region: "us-east-1".into(),
    };
    let store = ArtifactStore::open(&settings).unwrap();
    roundtrip(&store).await;
    // Small outputs are packed in one file; large ones are files of their own.
    assert!(dir.path().join("artifacts/small-objects.sqlite").is_file());
    assert!(!dir.path().join("artifacts/acme/job-1/t1").exists());
    assert!(dir.path().join("artifacts/acme/job-1/big/1/output.json").is_file());
    // Outputs written as files before small objects were packed are still read.
    let old = br#"{"written":"as a file"}"#;
    let old_dir = dir.path().join("artifacts/acme/job-1/old/1");
    std::fs::create_dir_all(&old_dir).unwrap();
    std::fs::write(old_dir.join("output.json"), old).unwrap();
    let reference = splai_events::ArtifactRef {
        path: "acme/job-1/old/1/output.json".into(),
        sha256: sha256_hex(old),
        size_bytes: old.len() as u64,
    };
    assert_eq!(store.get(&reference).await.unwrap().as_ref(), old);
}

#[tokio::test]
async fn s3_seaweedfs() {
    let (Ok(endpoint), Ok(bucket)) =
        (std::env::var("SPLAI_TEST_S3_ENDPOINT"), std::env::var("SPLAI_TEST_S3_BUCKET"))
    else {
        assert!(std::env::var("SPLAI_TEST_REQUIRE_SERVICES").is_err(), "SPLAI_TEST_S3_ENDPOINT not set");
        eprintln!("skipped: SPLAI_TEST_S3_ENDPOINT not set (run scripts/test)");
        return;
    };
    let settings = ArtifactSettings {
        url: format!("s3://{bucket}"),
        s3_endpoint: endpoint,
        s3_region: "us-east-1".into(),
    };
    let store = ArtifactStore::open(&settings).unwrap();
    roundtrip(&store).await;
}

#[test]
fn bad_urls_are_clear() {
    let settings =
        ArtifactSettings { url: "ftp://x".into(), s3_endpoint: String::new(), s3_region: "us-east-1".into() };
    let err = ArtifactStore::open(&settings).unwrap_err();
    assert!(err.to_string().contains("ftp://x"));
}
