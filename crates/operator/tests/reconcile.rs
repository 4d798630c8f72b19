//! The reconciler against a scripted Kubernetes API (tower-test) serving the objects in
//! `tests/recorded/` (the shapes the API server returns), and a fake gateway.

use std::sync::Mutex;
use std::time::Duration;

use async_trait::async_trait;
use http::{Request, Response};
use kube::api::Api;
use kube::client::Body;
use serde_json::{Value, json};
use splai_client::JobState;
use splai_operator::OperatorError;
use splai_operator::crd::SplaiJob;
use splai_operator::gateway::{JobApi, JobSnapshot, Submitted};
use splai_operator::reconcile::{FINALIZER, reconcile};
use splai_operator::run::{OperatorOptions, pass};

const JOB_ID: &str = "k8s-6f1c1d2e-7b7a-4b5e-9a55-0c1f3f0d9a11";
const BASE: &str = "/apis/splai.io/v1alpha1/namespaces/default/splaijobs";
const POLL: Duration = Duration::from_secs(2);

fn recorded(name: &str) -> Value {
    let path = format!("{}/tests/recorded/{name}", env!("CARGO_MANIFEST_DIR"));
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn object(name: &str) -> SplaiJob {
    serde_json::from_value(recorded(name)).unwrap()
}

/// What the fake gateway answers and what it was asked.
#[derive(Default)]
struct FakeGateway {
    refuse: bool,
    state: Option<JobSnapshot>,
    calls: Mutex<Vec<(String, Value)>>,
}

#[async_trait]
impl JobApi for FakeGateway {
    async fn submit(&self, tenant: Option<&str>, request: &Value) -> Result<Submitted, OperatorError> {
        self.calls.lock().unwrap().push((format!("submit tenant={tenant:?}"), request.clone()));
        Ok(if self.refuse {
            Submitted::Refused {
                status: 403,
                code: "policy_denied".into(),
                message: "no chat for you".into(),
            }
        } else {
            Submitted::Accepted {
                job_id: JOB_ID.into(),
                trace_id: Some("4bf92f3577b34da6a3ce929d0e0e4736".into()),
            }
        })
    }
    async fn get(&self, _: Option<&str>, job_id: &str) -> Result<Option<JobSnapshot>, OperatorError> {
        self.calls.lock().unwrap().push((format!("get {job_id}"), Value::Null));
        Ok(self.state.clone())
    }
    async fn cancel(&self, _: Option<&str>, job_id: &str) -> Result<(), OperatorError> {
        self.calls.lock().unwrap().push((format!("cancel {job_id}"), Value::Null));
        Ok(())
    }
}

impl FakeGateway {
    fn calls(&self) -> Vec<String> {
        self.calls.lock().unwrap().iter().map(|(c, _)| c.clone()).collect()
    }
}

/// A Kubernetes API that expects exactly `script` — (method, path, response) — in order, and
/// returns the request bodies it received.
fn api_server(
    script: Vec<(&'static str, String, Value)>,
) -> (kube::Client, tokio::task::JoinHandle<Vec<Value>>) {
    let (service, mut handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
    let server = tokio::spawn(async move {
        let mut bodies = Vec::new();
        for (method, path, response) in script {
            let (request, send) = handle.next_request().await.expect("the reconciler made the expected call");
            assert_eq!(request.method().as_str(), method, "{}", request.uri());
            assert_eq!(request.uri().path(), path);
            let bytes = request.into_body().collect_bytes().await.unwrap();
            bodies.push(if bytes.is_empty() { Value::Null } else { serde_json::from_slice(&bytes).unwrap() });
            send.send_response(
                Response::builder().body(Body::from(serde_json::to_vec(&response).unwrap())).unwrap(),
            );
        }
        bodies
    });
    (kube::Client::new(service, "default"), server)
}

#[tokio::test]
async fn a_new_object_gets_a_finalizer_is_submitted_once_and_says_so() {
    let job = object("splaijob-new.json");
    let (client, server) = api_server(vec![
        ("PATCH", format!("{BASE}/summarize"), recorded("splaijob-new.json")),
        ("PATCH", format!("{BASE}/summarize/status"), recorded("splaijob-submitted.json")),
    ]);
    let gateway = FakeGateway::default();
    let requeue = reconcile(&Api::namespaced(client, "default"), &gateway, &job, POLL).await.unwrap();
    assert_eq!(requeue, Some(POLL), "a submitted job is polled");
    let bodies = server.await.unwrap();
    assert_eq!(bodies[0]["metadata"]["finalizers"], json!([FINALIZER]));
    assert_eq!(bodies[0]["metadata"]["resourceVersion"], "4711", "optimistic concurrency on the finalizer");
    assert_eq!(
        bodies[1],
        json!({"status": {"phase": "Submitted", "jobId": JOB_ID, "traceId": "4bf92f3577b34da6a3ce929d0e0e4736",
                          "observedGeneration": 1}})
    );
    let calls = gateway.calls.lock().unwrap().clone();
    assert_eq!(calls.len(), 1);
    assert_eq!(
        calls[0].1,
        json!({"type": "chat", "job_id": JOB_ID, "input": {"prompt": "What is the capital of France?", "max_tokens": 16},
               "priority": "interactive", "timeout_s": 120}),
        "the REST request mirrors the spec; the job id comes from the uid, so a retry is idempotent"
    );
}

#[tokio::test]
async fn a_finished_job_writes_phase_progress_and_result_then_stops_polling() {
    let job = object("splaijob-submitted.json");
    let (client, server) =
        api_server(vec![("PATCH", format!("{BASE}/summarize/status"), recorded("splaijob-submitted.json"))]);
    let gateway = FakeGateway {
        state: Some(JobSnapshot {
            job_id: JOB_ID.into(),
            state: JobState::Succeeded,
            reason: None,
            trace_id: Some("4bf92f3577b34da6a3ce929d0e0e4736".into()),
            tasks_total: 1,
            tasks_succeeded: 1,
            tasks_failed: 0,
            result: Some(json!({"text": "The capital of France is Paris."})),
            document: json!(null),
        }),
        ..Default::default()
    };
    let requeue = reconcile(&Api::namespaced(client, "default"), &gateway, &job, POLL).await.unwrap();
    assert_eq!(requeue, None);
    let status = &server.await.unwrap()[0]["status"];
    assert_eq!(status["phase"], "Succeeded");
    assert_eq!(status["progress"], "1/1");
    assert_eq!(status["result"]["text"], "The capital of France is Paris.");
    assert_eq!(gateway.calls(), vec![format!("get {JOB_ID}")], "no second submission");
}

#[tokio::test]
async fn an_unchanged_running_job_patches_nothing() {
    let job = object("splaijob-submitted.json");
    let (client, server) = api_server(vec![]);
    let snapshot = JobSnapshot {
        job_id: JOB_ID.into(),
        state: JobState::Running,
        reason: None,
        trace_id: Some("4bf92f3577b34da6a3ce929d0e0e4736".into()),
        tasks_total: 0,
        tasks_succeeded: 0,
        tasks_failed: 0,
        result: None,
        document: json!(null),
    };
    let gateway = FakeGateway { state: Some(snapshot), ..Default::default() };
    let api = Api::namespaced(client, "default");
    let mut job_with_progress = job.clone();
    job_with_progress.status.as_mut().unwrap().progress = Some("0/0".into());
    job_with_progress.status.as_mut().unwrap().phase = Some("Running".into());
    assert_eq!(reconcile(&api, &gateway, &job_with_progress, POLL).await.unwrap(), Some(POLL));
    assert!(server.await.unwrap().is_empty(), "no write when nothing changed");
}

#[tokio::test]
async fn a_refused_job_is_rejected_with_the_gateway_reason() {
    let job = object("splaijob-new.json");
    let (client, server) = api_server(vec![
        ("PATCH", format!("{BASE}/summarize"), recorded("splaijob-new.json")),
        ("PATCH", format!("{BASE}/summarize/status"), recorded("splaijob-new.json")),
    ]);
    let gateway = FakeGateway { refuse: true, ..Default::default() };
    let requeue = reconcile(&Api::namespaced(client, "default"), &gateway, &job, POLL).await.unwrap();
    assert_eq!(requeue, None, "resubmitting a refused job cannot help");
    let status = &server.await.unwrap()[1]["status"];
    assert_eq!(status["phase"], "Rejected");
    assert_eq!(status["message"], "the gateway refused the job (403 policy_denied): no chat for you");
}

#[tokio::test]
async fn deleting_a_running_job_cancels_it_and_removes_only_our_finalizer() {
    let job = object("splaijob-deleting.json");
    let (client, server) =
        api_server(vec![("PATCH", format!("{BASE}/summarize"), recorded("splaijob-deleting.json"))]);
    let gateway = FakeGateway::default();
    let requeue = reconcile(&Api::namespaced(client, "default"), &gateway, &job, POLL).await.unwrap();
    assert_eq!(requeue, None);
    assert_eq!(gateway.calls(), vec![format!("cancel {JOB_ID}")]);
    let body = &server.await.unwrap()[0];
    assert_eq!(body["metadata"]["finalizers"], json!(["example.com/keep"]));
}

#[tokio::test]
async fn a_pass_lists_every_namespace_and_skips_finished_jobs() {
    let (client, server) = api_server(vec![
        ("GET", "/apis/splai.io/v1alpha1/splaijobs".into(), recorded("splaijob-list.json")),
        ("PATCH", format!("{BASE}/summarize"), recorded("splaijob-new.json")),
        ("PATCH", format!("{BASE}/summarize/status"), recorded("splaijob-submitted.json")),
    ]);
    let gateway = FakeGateway::default();
    let opts = OperatorOptions { namespace: None, interval: POLL };
    assert_eq!(pass(&client, &gateway, &opts).await.unwrap(), 2);
    assert_eq!(server.await.unwrap().len(), 3);
    assert_eq!(gateway.calls(), vec!["submit tenant=None".to_string()], "the finished job was left alone");
}
