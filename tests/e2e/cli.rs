//! End-to-end checks of the real `splai` binary.

use std::process::{Command, Output};

fn splai(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_splai"));
    // Start from a clean SPLAI_ environment; tests add what they need.
    splai_config::without_settings_env(cmd.args(args));
    cmd.envs(env.iter().copied());
    cmd.output().unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn help_lists_the_commands() {
    let out = splai(&["--help"], &[]);
    assert!(out.status.success());
    let help = text(&out.stdout);
    for word in ["config", "bench", "--config", "--set"] {
        assert!(help.contains(word), "{help}");
    }
}

#[test]
fn config_show_prints_the_effective_settings() {
    let out =
        splai(&["--set", "log.partitions=3", "config", "show"], &[("SPLAI_GATEWAY__LISTEN", "0.0.0.0:9000")]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let shown = text(&out.stdout);
    assert!(shown.contains("partitions = 3"), "{shown}");
    assert!(shown.contains("listen = \"0.0.0.0:9000\""), "{shown}");
}

#[test]
fn unknown_key_stops_start_up_and_names_it() {
    let out = splai(&["--set", "log.partitons=3", "config", "show"], &[]);
    assert_eq!(out.status.code(), Some(2));
    let err = text(&out.stderr);
    assert!(err.contains("unknown configuration key `log.partitons`"), "{err}");
}

#[test]
fn invalid_value_from_env_names_key_and_variable() {
    let out = splai(&["config", "show"], &[("SPLAI_LOG__BACKEND", "zookeeper")]);
    assert_eq!(out.status.code(), Some(2));
    let err = text(&out.stderr);
    assert!(err.contains("log.backend") && err.contains("SPLAI_LOG__BACKEND"), "{err}");
}

#[test]
fn missing_config_file_is_named() {
    let out = splai(&["--config", "/nonexistent/splai.toml", "config", "show"], &[]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("/nonexistent/splai.toml"));
}

#[test]
fn bench_log_runs_on_the_embedded_log() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("log.sqlite");
    let set = format!("log.embedded.path={}", path.display());
    let out = splai(&["--set", &set, "bench", "log", "--events", "3000", "--batch", "500"], &[]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let report = text(&out.stdout);
    assert!(report.contains("backend=embedded") && report.contains("consumed=3000"), "{report}");
}

#[test]
fn bench_log_runs_on_kafka() {
    let Ok(brokers) = std::env::var("SPLAI_TEST_KAFKA_BROKERS") else {
        assert!(std::env::var("SPLAI_TEST_REQUIRE_SERVICES").is_err(), "SPLAI_TEST_KAFKA_BROKERS not set");
        return;
    };
    let out = splai(
        &["--set", "log.backend=kafka", "--set", "gateway.auth=true", "bench", "log", "--events", "3000"],
        &[("SPLAI_LOG__KAFKA__BROKERS", &brokers)],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let report = text(&out.stdout);
    assert!(report.contains("backend=kafka") && report.contains("consumed=3000"), "{report}");
}

#[test]
fn gen_then_replay_rebuilds_the_same_outcome() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("log.jsonl");
    let file = file.to_str().unwrap();
    let out = splai(
        &[
            "gen",
            "--jobs",
            "40",
            "--shape",
            "fanout:4",
            "--workers",
            "5",
            "--slots",
            "2",
            "--fail-rate",
            "0.1",
            "--out",
            file,
        ],
        &[],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let report = text(&out.stdout);
    assert!(report.contains("jobs=40 succeeded=40"), "{report}");
    let out = splai(&["replay", file, "--explain", "sim-j0000003/map2"], &[]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let replay = text(&out.stdout);
    assert!(replay.contains("final job states: {\"succeeded\": 40}"), "{replay}");
    assert!(replay.contains("explain sim-j0000003/map2"), "{replay}");
    assert!(replay.contains("undecodable=0"), "{replay}");
    // On three timely workers the replay ends the same way: the same explanation, assignments
    // and job states; only the worker count and the timings differ.
    let out = splai(&["replay", "-w", "3", file, "--explain", "sim-j0000003/map2"], &[]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let on_three = text(&out.stdout);
    assert!(on_three.contains("timely_workers=3"), "{on_three}");
    let outcome = |r: &str| -> Vec<String> {
        r.lines()
            .filter(|l| !l.starts_with("timely_workers=") && !l.starts_with("time:"))
            .map(|l| match l.split_once(" events in ") {
                Some((head, rest)) => {
                    format!("{head} {}", rest.split_once("; ").map_or("", |(_, tail)| tail))
                }
                None => l.to_string(),
            })
            .collect()
    };
    assert_eq!(outcome(&on_three), outcome(&replay));
    // A damaged line is reported and skipped; the rest still replays.
    let mut text_log = std::fs::read_to_string(file).unwrap();
    text_log.insert_str(0, "{not json\n");
    std::fs::write(file, text_log).unwrap();
    let out = splai(&["replay", file], &[]);
    assert!(out.status.success());
    assert!(text(&out.stdout).contains("undecodable=1"));
    assert!(text(&out.stderr).contains("line 1: malformed JSON"));
}

/// Copy of the repository's `contract/` in a temporary directory.
fn contract_copy() -> tempfile::TempDir {
    let copy = tempfile::tempdir().unwrap();
    let source = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("contract");
    let mut stack = vec![source.clone()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            let target = copy.path().join(path.strip_prefix(&source).unwrap());
            if path.is_dir() {
                std::fs::create_dir_all(&target).unwrap();
                stack.push(path);
            } else {
                std::fs::copy(&path, &target).unwrap();
            }
        }
    }
    copy
}

#[test]
fn contract_check_passes_on_the_repository_contract() {
    let dir = contract_copy();
    let out = splai(&["contract", "check", "--dir", dir.path().to_str().unwrap()], &[]);
    assert!(out.status.success(), "{}", text(&out.stderr));
}

#[test]
fn contract_check_fails_on_a_deliberately_edited_schema_and_names_the_break() {
    let dir = contract_copy();
    let file = dir.path().join(format!("v{}/events/job_request.schema.json", splai_events::ENVELOPE_VERSION));
    let mut schema: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
    // As if the code had dropped a field the checked-in version promised.
    schema["properties"]["legacy_flag"] = serde_json::json!({"type": "boolean"});
    std::fs::write(&file, serde_json::to_string_pretty(&schema).unwrap()).unwrap();
    let out = splai(&["contract", "check", "--dir", dir.path().to_str().unwrap()], &[]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stdout));
    let said = text(&out.stderr);
    assert!(said.contains("job_request.schema.json: breaks contract v1"), "{said}");
    assert!(said.contains("$.legacy_flag: field removed"), "{said}");
}
