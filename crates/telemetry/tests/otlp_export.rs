//! A span really reaches an OTLP receiver. Needs the receiver that `scripts/services up` starts:
//! SPLAI_TEST_OTLP_ENDPOINT (base URL) and SPLAI_TEST_OTLP_FILE (where it appends what it receives).

use std::time::{Duration, Instant};

use splai_config::{LogFormat, TelemetrySettings};

#[test]
fn spans_arrive_at_the_otlp_receiver_with_trace_context() {
    let (Ok(endpoint), Ok(file)) =
        (std::env::var("SPLAI_TEST_OTLP_ENDPOINT"), std::env::var("SPLAI_TEST_OTLP_FILE"))
    else {
        assert!(
            std::env::var("SPLAI_TEST_REQUIRE_SERVICES").is_err(),
            "services required but not configured"
        );
        eprintln!("skipped: SPLAI_TEST_OTLP_ENDPOINT/FILE not set (run scripts/test)");
        return;
    };
    let settings = TelemetrySettings {
        log_format: LogFormat::Json,
        log_filter: "info".into(),
        otlp_endpoint: endpoint,
        service_name: "splai-test".into(),
        metrics_listen: String::new(),
    };
    let guard = splai_telemetry::init(&settings, "telemetry-test").unwrap();
    assert!(guard.exporting());
    let marker = format!("otlp-probe-{}", std::process::id());
    let parent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
    let traceparent = {
        let span = tracing::info_span!("probe", otel.name = %marker);
        splai_telemetry::set_parent_from_traceparent(&span, Some(parent));
        let _entered = span.enter();
        splai_telemetry::current_traceparent()
    };
    // The child keeps the remote trace id and gets its own span id.
    let tp = traceparent.expect("a traceparent while exporting");
    assert!(tp.starts_with("00-4bf92f3577b34da6a3ce929d0e0e4736-"), "{tp}");
    assert!(!tp.contains("00f067aa0ba902b7"), "{tp}");
    drop(guard); // flush

    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let text = std::fs::read_to_string(&file).unwrap_or_default();
        if let Some(line) = text.lines().find(|l| l.contains(&marker)) {
            let json: serde_json::Value = serde_json::from_str(line).unwrap();
            let s = json.to_string();
            assert!(s.contains("splai-test-telemetry-test"), "service name missing: {s}");
            assert!(
                s.to_ascii_lowercase().contains("4bf92f3577b34da6a3ce929d0e0e4736"),
                "trace id missing: {s}"
            );
            return;
        }
        assert!(Instant::now() < deadline, "span {marker} never reached {file}");
        std::thread::sleep(Duration::from_millis(100));
    }
}
