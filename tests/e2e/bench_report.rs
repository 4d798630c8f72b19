//! `splai bench report --quick` runs every part of the benchmark harness end to end (tiny sizes)
//! and writes a well-formed section between its markers, leaving the rest of the file alone. The
//! figures themselves come from a release build on a quiet machine (docs/benchmarks.md).

use std::process::Command;

#[test]
fn the_report_harness_runs_and_writes_its_section() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("benchmarks.md");
    std::fs::write(&out, "# Benchmarks\n\nhand-written notes stay.\n").unwrap();
    let status = Command::new(env!("CARGO_BIN_EXE_splai"))
        .args(["bench", "report", "--quick", "--out"])
        .arg(&out)
        .env_remove("SPLAI_CONFIG")
        .status()
        .unwrap();
    assert!(status.success());
    let text = std::fs::read_to_string(&out).unwrap();
    assert!(text.starts_with("# Benchmarks\n\nhand-written notes stay.\n"), "{text}");
    for part in [
        "control-plane throughput",
        "per-hop overhead",
        "scheduler replay",
        "decision latency",
        "control-plane scale-out",
        "resumability",
        "failover",
    ] {
        assert!(text.contains(&format!("| {part}")), "no `{part}` headline in\n{text}");
    }
    assert!(text.contains("0 succeeded tasks re-run; lineage intact"), "{text}");
    assert!(text.contains("standby leads") && text.contains("splai bench failover --runs 1"), "{text}");
    assert!(text.contains("splai bench noop --jobs") && text.contains("splai replay "), "commands listed");
    assert!(text.trim_end().ends_with("<!-- splai bench report: end -->"));
}
