//! Layering, precedence and errors that name the key.
#![allow(clippy::result_large_err)] // figment::Jail closures return figment::Error by design

use std::io::Write;

use splai_config::{ConfigError, Loader, LogBackend, Settings};

/// Load with a file, environment variables (set in a figment jail, which also serialises tests
/// that touch the process environment) and CLI overrides.
fn load(file: Option<&str>, vars: &[(&str, &str)], sets: &[&str]) -> Result<Settings, ConfigError> {
    let tmp = tempfile::NamedTempFile::new().unwrap();
    if let Some(text) = file {
        tmp.as_file().write_all(text.as_bytes()).unwrap();
    }
    let mut out = None;
    figment::Jail::expect_with(|jail| {
        jail.clear_env();
        for (k, v) in vars {
            jail.set_env(k, v);
        }
        out = Some(
            Loader::new()
                .file(file.map(|_| tmp.path()))
                .overrides(sets.iter().copied())
                .and_then(Loader::load),
        );
        Ok(())
    });
    out.unwrap()
}

#[test]
fn embedded_defaults_are_valid() {
    let s = load(None, &[], &[]).unwrap();
    assert_eq!(s.log.backend, LogBackend::Embedded);
    assert_eq!(s.log.topic_prefix, "splai.");
    assert_eq!(s.scheduler.heartbeat_ttl_ms, 15_000);
}

#[test]
fn later_layers_win() {
    let file = "[log]\npartitions = 4\n[log.kafka]\nbrokers = \"file:1\"\n";
    let s = load(Some(file), &[], &[]).unwrap();
    assert_eq!(s.log.partitions, 4);
    let s = load(Some(file), &[("SPLAI_LOG__PARTITIONS", "6")], &[]).unwrap();
    assert_eq!(s.log.partitions, 6);
    assert_eq!(s.log.kafka.brokers, "file:1");
    let s = load(Some(file), &[("SPLAI_LOG__PARTITIONS", "6")], &["log.partitions=12"]).unwrap();
    assert_eq!(s.log.partitions, 12);
}

#[test]
fn real_environment_nesting_and_reserved_keys() {
    figment::Jail::expect_with(|jail| {
        jail.clear_env();
        jail.set_env("SPLAI_LOG__KAFKA__BROKERS", "10.0.0.1:9092,10.0.0.2:9092");
        jail.set_env("SPLAI_TEST_KAFKA_BROKERS", "ignored:1");
        jail.set_env("SPLAI_CONFIG", "ignored.toml");
        jail.set_env("SPLAI_KERNELS_AVX2", "1");
        let s = Loader::new().load().map_err(|e| e.to_string())?;
        assert_eq!(s.log.kafka.brokers, "10.0.0.1:9092,10.0.0.2:9092");
        jail.set_env("SPLAI_LOG__BOGUS", "1");
        let err = Loader::new().load().unwrap_err();
        assert!(err.to_string().contains("log.bogus"), "{err}");
        assert!(err.to_string().contains("SPLAI_LOG__BOGUS"), "{err}");
        Ok(())
    });
}

#[test]
fn unknown_key_in_file_names_the_key_and_file() {
    let err = load(Some("[log]\npartitons = 3\n"), &[], &[]).unwrap_err();
    match &err {
        ConfigError::UnknownKey { key, source_note } => {
            assert_eq!(key, "log.partitons");
            assert!(source_note.contains("TOML file"), "{source_note}");
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn unknown_key_from_env() {
    let err = load(None, &[("SPLAI_SCHEDULER__TTL", "5")], &[]).unwrap_err();
    assert!(matches!(&err, ConfigError::UnknownKey { key, .. } if key == "scheduler.ttl"), "{err:?}");
    assert!(err.to_string().contains("SPLAI_SCHEDULER__TTL"), "{err}");
}

#[test]
fn wrong_type_names_the_key() {
    let err = load(None, &[], &["log.partitions=many"]).unwrap_err();
    assert!(matches!(&err, ConfigError::InvalidValue { key, .. } if key == "log.partitions"), "{err:?}");
    let err = load(None, &[], &["log.backend=zookeeper"]).unwrap_err();
    assert!(matches!(&err, ConfigError::InvalidValue { key, .. } if key == "log.backend"), "{err:?}");
}

#[test]
fn out_of_range_values_name_the_key() {
    for (set, key) in [
        ("log.partitions=0", "log.partitions"),
        ("log.kafka.brokers=nope", "log.kafka.brokers"),
        ("store.url=mysql://x", "store.url"),
        ("scheduler.retry_cap_ms=10", "scheduler.retry_cap_ms"),
        ("executor.heartbeat_interval_ms=10000", "executor.heartbeat_interval_ms"),
        ("executor.labels=[\"zone\"]", "executor.labels"),
        ("log.topic_prefix=\"a b\"", "log.topic_prefix"),
    ] {
        let err = load(None, &[], &[set]).unwrap_err();
        assert!(matches!(&err, ConfigError::InvalidValue { key: k, .. } if k == key), "{set}: {err:?}");
        assert!(err.to_string().contains(key), "{err}");
    }
}

#[test]
fn auth_off_requires_the_embedded_log() {
    let err = load(None, &[], &["log.backend=kafka"]).unwrap_err();
    assert!(err.to_string().contains("gateway.auth"), "{err}");
    load(None, &[], &["log.backend=kafka", "gateway.auth=true"]).unwrap();
}

#[test]
fn bad_file_and_bad_override_are_clear() {
    let err = load(Some("[log\n"), &[], &[]).unwrap_err();
    assert!(matches!(err, ConfigError::FileSyntax { .. }), "{err:?}");
    let err = Loader::new().overrides(["novalue"]).unwrap_err();
    assert!(matches!(err, ConfigError::BadOverride { .. }));
    let err = Loader::new().file(Some(std::path::Path::new("/nonexistent/x.toml"))).load().unwrap_err();
    assert!(matches!(err, ConfigError::FileMissing { .. }), "{err:?}");
    assert!(err.to_string().contains("/nonexistent/x.toml"));
}

#[test]
fn show_roundtrips_through_the_loader() {
    let s = load(None, &[], &["log.partitions=3"]).unwrap();
    let again = load(Some(&s.to_toml()), &[], &[]).unwrap();
    assert_eq!(s, again);
}

#[test]
fn every_default_field_is_documented() {
    // Each key line in default.toml is preceded by a comment line explaining it.
    let lines: Vec<&str> = splai_config::DEFAULT_TOML.lines().collect();
    for (i, line) in lines.iter().enumerate() {
        let t = line.trim();
        if t.is_empty() || t.starts_with('#') || t.starts_with('[') {
            continue;
        }
        assert!(i > 0 && lines[i - 1].trim_start().starts_with('#'), "undocumented: {t}");
    }
}
