//! The crate layering of ARCHITECTURE §10, checked on the resolved dependency graph:
//! `events` depends on nothing internal; light crates never pull heavy ones (rdkafka, timely,
//! differential, candle); the three service crates never depend on each other.

use std::collections::{BTreeMap, BTreeSet};
use std::process::Command;

/// Package name → transitive normal (non-dev) dependency names.
fn closure() -> BTreeMap<String, BTreeSet<String>> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let out = Command::new(cargo)
        .args(["metadata", "--format-version", "1", "--locked"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let meta: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let name_of: BTreeMap<String, String> = meta["packages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| (p["id"].as_str().unwrap().to_string(), p["name"].as_str().unwrap().to_string()))
        .collect();
    let mut direct: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for node in meta["resolve"]["nodes"].as_array().unwrap() {
        let me = name_of[node["id"].as_str().unwrap()].clone();
        let deps = direct.entry(me).or_default();
        for dep in node["deps"].as_array().unwrap() {
            let normal = dep["dep_kinds"].as_array().unwrap().iter().any(|k| k["kind"].is_null());
            if normal {
                deps.insert(name_of[dep["pkg"].as_str().unwrap()].clone());
            }
        }
    }
    let mut all = BTreeMap::new();
    for start in direct.keys() {
        let mut seen = BTreeSet::new();
        let mut stack = vec![start.clone()];
        while let Some(p) = stack.pop() {
            for d in direct.get(&p).into_iter().flatten() {
                if seen.insert(d.clone()) {
                    stack.push(d.clone());
                }
            }
        }
        all.insert(start.clone(), seen);
    }
    all
}

#[test]
fn crate_layering_holds() {
    let deps = closure();
    let internal =
        |p: &str| deps[p].iter().filter(|d| d.starts_with("splai-")).cloned().collect::<BTreeSet<_>>();
    assert!(internal("splai-events").is_empty(), "events is the bottom: {:?}", internal("splai-events"));
    assert_eq!(internal("splai-config"), BTreeSet::new());
    // The client of the API speaks only the contract: anyone may embed it.
    assert_eq!(internal("splai-client"), BTreeSet::from(["splai-events".to_string()]));
    for service in ["splai-dataflow", "splai-executor", "splai-gateway"] {
        for other in ["splai-dataflow", "splai-executor", "splai-gateway"] {
            assert!(!deps[service].contains(other), "{service} must not depend on {other}");
        }
    }
    // The composition root sits on top: only the binary builds on it.
    for (krate, its) in &deps {
        if krate.starts_with("splai-") {
            assert!(!its.contains("splai-stack"), "{krate} must not depend on the composition root");
        }
    }
    assert!(
        ["splai-dataflow", "splai-executor", "splai-gateway"]
            .iter()
            .all(|s| deps["splai-stack"].contains(*s))
    );
    // The graph parse itself is sound: known edges are present.
    assert!(deps["splai-ingest"].contains("rdkafka") && deps["splai-gateway"].contains("splai-ingest"));
    let heavy = ["rdkafka", "rdkafka-sys", "timely", "differential-dataflow", "candle-core"];
    for light in ["splai-events", "splai-config", "splai-telemetry", "splai-store", "splai-client"] {
        for h in heavy {
            assert!(!deps[light].contains(h), "{light} pulls in {h}");
        }
    }
}
