//! The container image, built as these machines allow (`scripts/image`: a Debian base made with
//! debootstrap and imported into podman, then the Dockerfile with `BUILD=prebuilt` over the
//! suite's own debug binary; runc) and run: `up` with the models mounted answers a real chat job
//! on its published port, and `gateway`, `scheduler` and `executor` containers run a job against
//! the test services (tansu, PostgreSQL, SeaweedFS).

use std::process::{Command, Output};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use serde_json::json;

use crate::common::{post, wait_job, wait_ready};

const TAG: &str = "splai:0.1.0-test";
const TOKEN: &str = "image-test-token-0123456789";

fn root() -> &'static std::path::Path {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn podman(args: &[&str]) -> Output {
    Command::new("podman")
        .env("CONTAINERS_CONF", root().join(".image/containers.conf"))
        .args(["--runtime", "runc"])
        .args(args)
        .output()
        .unwrap()
}

/// Build the image from this suite's binary; false (a skip) when podman is not installed here.
fn build_image() -> bool {
    let installed = ["podman", "runc", "debootstrap"].iter().all(|tool| {
        Command::new("sh")
            .args(["-c", &format!("command -v {tool}")])
            .output()
            .is_ok_and(|o| o.status.success())
    });
    if !installed {
        assert!(
            std::env::var("SPLAI_TEST_REQUIRE_SERVICES").is_err(),
            "podman, runc or debootstrap missing (scripts/test installs them)"
        );
        eprintln!("skipped: podman, runc or debootstrap is not installed");
        return false;
    }
    let out = Command::new(root().join("scripts/image"))
        .args(["--binary", env!("CARGO_BIN_EXE_splai"), "--tag", TAG])
        .output()
        .unwrap();
    assert!(out.status.success(), "scripts/image: {}", String::from_utf8_lossy(&out.stderr));
    true
}

/// A running container, removed when dropped.
struct Container(String);

static NEXT: AtomicU32 = AtomicU32::new(0);

impl Container {
    fn run(options: &[&str], command: &[&str]) -> Container {
        let name = format!("splai-test-{}-{}", std::process::id(), NEXT.fetch_add(1, Ordering::Relaxed));
        let mut args = vec!["run", "-d", "--name", &name];
        args.extend_from_slice(options);
        args.push(TAG);
        args.extend_from_slice(command);
        let out = podman(&args);
        assert!(out.status.success(), "podman run {command:?}: {}", String::from_utf8_lossy(&out.stderr));
        Container(name)
    }

    fn logs(&self) -> String {
        let out = podman(&["logs", &self.0]);
        format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
    }
}

impl Drop for Container {
    fn drop(&mut self) {
        podman(&["rm", "-f", &self.0]);
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn models_mount() -> String {
    format!("{}:/models:ro", splai_executor::test_models::models_dir().display())
}

#[test]
fn the_kubernetes_manifests_run_the_image_tagged_with_the_crate_version() {
    let want = format!("image: splai:{}", env!("CARGO_PKG_VERSION"));
    for name in ["gateway", "scheduler", "executor", "operator"] {
        let manifest = std::fs::read_to_string(root().join(format!("deploy/k8s/{name}.yaml"))).unwrap();
        assert!(manifest.contains(&want), "deploy/k8s/{name}.yaml does not run {want}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_image_runs_up_and_answers_a_chat_job_on_its_published_port() {
    if !crate::common::models_present() || !build_image() {
        return;
    }
    let port = free_port();
    let publish = format!("127.0.0.1:{port}:8080");
    let models = models_mount();
    let up = Container::run(
        &["-p", &publish, "-v", &models],
        &["up", "--executors", "1", "--set", "gateway.listen=0.0.0.0:8080"],
    );
    let url = format!("http://127.0.0.1:{port}");
    let ready = tokio::time::timeout(Duration::from_secs(120), wait_ready(&url, None)).await;
    assert!(ready.is_ok(), "the container's gateway did not become ready:\n{}", up.logs());
    let chat = json!({"type": "chat", "input": {"prompt": "Name one primary colour.", "max_tokens": 8}});
    let (status, accepted) = post(&url, "/v1/jobs", &chat, None).await;
    assert_eq!(status, 202, "{accepted}");
    let job = wait_job(&url, accepted["job_id"].as_str().unwrap(), None, Duration::from_secs(120)).await;
    assert_eq!(job["state"], "succeeded", "{job}\n{}", up.logs());
    assert!(!job["result"]["text"].as_str().unwrap_or_default().trim().is_empty(), "{job}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_images_gateway_scheduler_and_executor_run_a_job_on_the_test_services() {
    let env = |k: &str| std::env::var(k).ok();
    let (Some(brokers), Some(pg), Some(s3), Some(bucket)) = (
        env("SPLAI_TEST_KAFKA_BROKERS"),
        env("SPLAI_TEST_POSTGRES_URL"),
        env("SPLAI_TEST_S3_ENDPOINT"),
        env("SPLAI_TEST_S3_BUCKET"),
    ) else {
        assert!(env("SPLAI_TEST_REQUIRE_SERVICES").is_none(), "the test services are not configured");
        return;
    };
    if !build_image() {
        return;
    }
    let run = format!("img{}", std::process::id());
    let db_url = crate::common::create_database(&pg, &run);
    // Readable by the image's user (uid 10001): a world-readable file in a world-readable dir.
    let dir = tempfile::tempdir().unwrap();
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let config = dir.path().join("splai.toml");
    let services = crate::common::services_config(&run, 2, &brokers, &db_url, &s3, &bucket, ("img", TOKEN));
    std::fs::write(&config, format!("{services}\n[executor]\nheartbeat_interval_ms = 500\n")).unwrap();
    std::fs::set_permissions(&config, std::fs::Permissions::from_mode(0o644)).unwrap();
    let mount = format!("{}:/etc/splai/splai.toml:ro", config.display());
    let models = models_mount();
    // Host networking: the services listen on the host's loopback. The S3 credentials pass
    // through by name (`-e NAME` copies the variable), as a deployment's secrets would.
    let mut options =
        vec!["--network", "host", "-v", &mount, "-v", &models, "-e", "SPLAI_CONFIG=/etc/splai/splai.toml"];
    for name in ["AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_REGION"] {
        options.extend(["-e", name]);
    }
    let port = free_port();
    let listen = format!("gateway.listen=127.0.0.1:{port}");
    let gateway = Container::run(&options, &["gateway", "--set", &listen]);
    let scheduler = Container::run(&options, &["scheduler"]);
    let executor = Container::run(&options, &["executor", "--id", &format!("{run}-w1")]);
    let url = format!("http://127.0.0.1:{port}");
    let ready = tokio::time::timeout(Duration::from_secs(120), wait_ready(&url, Some(TOKEN))).await;
    assert!(ready.is_ok(), "not ready:\n{}\n{}\n{}", gateway.logs(), scheduler.logs(), executor.logs());
    let job = json!({"type": "explicit", "dag": {"tasks": [{"id": "count", "kind": "tool_execution",
        "inputs": {"tool": {"literal": "regex"}, "pattern": {"literal": "\\w+"}, "text": {"literal": "run in containers"}}}]}});
    let (status, accepted) = post(&url, "/v1/jobs", &job, Some(TOKEN)).await;
    assert_eq!(status, 202, "{accepted}");
    let done =
        wait_job(&url, accepted["job_id"].as_str().unwrap(), Some(TOKEN), Duration::from_secs(120)).await;
    assert_eq!(done["state"], "succeeded", "{done}\n{}", scheduler.logs());
    assert_eq!(done["result"]["count"], 3, "{done}");
}
