//! The operator's gateway client against a real `splai up` with auth on: the request built from a
//! SPLAIJob is admitted, the snapshot it reads back maps to the status the operator writes, a
//! resubmission (operator restart) is idempotent, and cancel works.

use std::time::{Duration, Instant};

use crate::common::Up;
use splai_operator::crd::SplaiJob;
use splai_operator::gateway::{HttpGateway, JobApi, Submitted};
use splai_operator::reconcile::{request, status_of};

const TOKEN: &str = "operator-token";

fn job(name: &str, uid: &str, dag: serde_json::Value) -> SplaiJob {
    serde_json::from_value(serde_json::json!({
        "apiVersion": "splai.io/v1alpha1", "kind": "SPLAIJob",
        "metadata": {"name": name, "namespace": "default", "uid": uid, "generation": 1},
        "spec": {"type": "explicit", "dag": dag, "priority": "batch", "maxRetries": 1}
    }))
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn operator_requests_run_on_a_real_gateway() {
    let extra = format!(
        "[gateway.tokens.operator]\nsha256 = \"{}\"\ntenant = \"k8s\"\nroles = [\"submitter\", \"reader\"]\n",
        crate::common::token_hash(TOKEN)
    );
    let up = Up::start_auth(&extra, &[], &["--executors", "1"], TOKEN).await;
    let gateway = HttpGateway::new(&up.url, Some(TOKEN.into())).unwrap();
    let count = serde_json::json!({"tasks": [{"id": "count", "kind": "tool_execution", "inputs": {
        "tool": {"literal": "regex"}, "pattern": {"literal": "\\w+"}, "text": {"literal": "from a SPLAIJob"}}}]});
    let object = job("count-words", "0d3c2b1a-0000-4000-8000-000000000001", count);
    let body = request(&object);
    let Submitted::Accepted { job_id, .. } = gateway.submit(None, &body).await.unwrap() else {
        panic!("the gateway refused a SPLAIJob request")
    };
    assert_eq!(job_id, "k8s-0d3c2b1a-0000-4000-8000-000000000001");
    // An operator that restarted before writing status submits again: same job, no error.
    let again = gateway.submit(None, &body).await.unwrap();
    assert!(matches!(&again, Submitted::Accepted { job_id: j, .. } if *j == job_id), "{again:?}");
    let deadline = Instant::now() + Duration::from_secs(60);
    let status = loop {
        let snapshot = gateway.get(None, &job_id).await.unwrap().expect("the gateway knows the job");
        let status = status_of(&snapshot, Some(1));
        if status.phase.as_deref() == Some("Succeeded") || Instant::now() > deadline {
            break status;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(status.phase.as_deref(), Some("Succeeded"), "{status:?}");
    assert_eq!(status.progress.as_deref(), Some("1/1"));
    assert_eq!(status.result.as_ref().unwrap()["count"], 3, "{status:?}");

    // A bad spec is refused with the gateway's reason; an unknown job reads as None.
    let bad = job("bad", "0d3c2b1a-0000-4000-8000-000000000002", serde_json::json!({"tasks": []}));
    match gateway.submit(None, &request(&bad)).await.unwrap() {
        Submitted::Refused { status, code, .. } => assert_eq!((status, code.as_str()), (400, "empty_dag")),
        other => panic!("expected a refusal, got {other:?}"),
    }
    assert_eq!(gateway.get(None, "k8s-missing").await.unwrap(), None);

    // Cancel (the finalizer's call) of a long job ends it cancelled.
    let sleepy = serde_json::json!({"tasks": [{"id": "nap", "kind": "tool_execution",
        "inputs": {"tool": {"literal": "sleep"}, "ms": {"literal": 30000}}}]});
    let long = job("long", "0d3c2b1a-0000-4000-8000-000000000003", sleepy);
    gateway.submit(None, &request(&long)).await.unwrap();
    gateway.cancel(None, "k8s-0d3c2b1a-0000-4000-8000-000000000003").await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let s = gateway.get(None, "k8s-0d3c2b1a-0000-4000-8000-000000000003").await.unwrap().unwrap();
        if s.state == splai_client::JobState::Cancelled {
            break;
        }
        assert!(Instant::now() < deadline, "not cancelled: {s:?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
