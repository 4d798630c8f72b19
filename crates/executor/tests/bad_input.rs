//! Bad input fails an attempt non-retryably with a specific message.

use std::collections::BTreeMap;

use serde_json::json;
use splai_config::ArtifactSettings;
use splai_events::{AttemptId, ResolvedInput};
use splai_executor::inputs::resolve;
use splai_executor::models::Models;
use splai_store::artifacts::ArtifactStore;

#[test]
fn unknown_model_names_what_the_executor_has() {
    let dir = tempfile::tempdir().unwrap();
    let models = Models::discover(dir.path());
    let err = models.llm(Some("gpt-17")).unwrap_err();
    assert!(!err.retryable);
    assert!(err.message.contains("model `gpt-17` is not available"), "{}", err.message);
    let err = models.embedder(None).unwrap_err();
    assert!(!err.retryable && err.message.contains("no embedding model"), "{}", err.message);
}

#[tokio::test]
async fn malformed_parent_output_and_missing_pointer_are_fatal() {
    let dir = tempfile::tempdir().unwrap();
    let store = ArtifactStore::open(&ArtifactSettings {
        url: format!("file://{}", dir.path().display()),
        s3_endpoint: String::new(),
        s3_region: "us-east-1".into(),
    })
    .unwrap();
    let parent = AttemptId { job_id: "j".into(), task_id: "p".into(), attempt: 1 };
    let garbage = store.put_output("acme", &parent, b"{not json".to_vec()).await.unwrap();
    let inputs =
        BTreeMap::from([("x".to_string(), ResolvedInput::Artifact { artifact: garbage, pointer: None })]);
    let err = resolve(&store, &inputs).await.unwrap_err();
    assert!(!err.retryable && err.message.contains("is not JSON"), "{}", err.message);

    let good = store
        .put_output("acme", &parent, serde_json::to_vec(&json!({"chunks": ["a"]})).unwrap())
        .await
        .unwrap();
    let inputs = BTreeMap::from([(
        "x".to_string(),
        ResolvedInput::Artifact { artifact: good.clone(), pointer: Some("/chunks/5".into()) },
    )]);
    let err = resolve(&store, &inputs).await.unwrap_err();
    assert!(!err.retryable && err.message.contains("`/chunks/5` not found"), "{}", err.message);

    let inputs = BTreeMap::from([(
        "x".to_string(),
        ResolvedInput::Artifact { artifact: good.clone(), pointer: Some("/chunks/0".into()) },
    )]);
    let ok = resolve(&store, &inputs).await.unwrap();
    assert_eq!(ok.values["x"], json!("a"));
    assert_eq!(ok.lineage, vec![good]);
}
