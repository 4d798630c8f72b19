//! `splai contract generate|check`: the wire contract's JSON Schemas (from `splai-events`' types)
//! and the REST API's OpenAPI document (from the gateway's handlers), checked into `contract/`
//! for code generators in other languages. `check` fails when the files differ from what this
//! build generates, and says whether the difference breaks the contract (then the envelope
//! version must be bumped, which starts a new `contract/v{N}/` beside the old one).

pub mod compat;
mod since;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::Context;
use serde_json::Value;
use splai_events::ENVELOPE_VERSION;

/// What this build generates: path under the contract directory → file text.
pub fn generated() -> anyhow::Result<BTreeMap<PathBuf, String>> {
    let version = PathBuf::from(format!("v{ENVELOPE_VERSION}"));
    let mut files = BTreeMap::new();
    files.insert(version.join("envelope.schema.json"), pretty(&splai_events::schema::envelope())?);
    for (kind, schema) in splai_events::schema::bodies() {
        files.insert(version.join("events").join(format!("{kind}.schema.json")), pretty(&schema)?);
    }
    files.insert(PathBuf::from("openapi.json"), pretty(&splai_gateway::openapi::document())?);
    Ok(files)
}

fn pretty(value: &impl serde::Serialize) -> anyhow::Result<String> {
    Ok(serde_json::to_string_pretty(value)? + "\n")
}

/// One way the checked-in contract differs from the generated one.
#[derive(Debug, PartialEq, Eq)]
pub enum Difference {
    /// Generated, not checked in.
    Missing(PathBuf),
    /// Checked in under the current version, no longer generated.
    Stale(PathBuf),
    /// Differs, but every reader and producer of the checked-in one keeps working.
    Compatible(PathBuf),
    /// Differs in a way the contract promises not to within a version.
    Breaking(PathBuf, Vec<String>),
}

impl std::fmt::Display for Difference {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Difference::Missing(p) => write!(f, "{}: not checked in", p.display()),
            Difference::Stale(p) => write!(f, "{}: checked in but no longer generated", p.display()),
            Difference::Compatible(p) => {
                write!(f, "{}: out of date (a compatible change: run `splai contract generate`)", p.display())
            }
            Difference::Breaking(p, breaks) => {
                write!(
                    f,
                    "{}: breaks contract v{ENVELOPE_VERSION} — bump ENVELOPE_VERSION (a new contract/v{}/) instead:",
                    p.display(),
                    ENVELOPE_VERSION + 1
                )?;
                breaks.iter().try_for_each(|b| write!(f, "\n    {b}"))
            }
        }
    }
}

/// How the checked-in contract under `dir` differs from `generated`.
pub fn differences(dir: &Path, generated: &BTreeMap<PathBuf, String>) -> anyhow::Result<Vec<Difference>> {
    let mut found = Vec::new();
    for (path, text) in generated {
        let Ok(checked_in) = std::fs::read_to_string(dir.join(path)) else {
            found.push(Difference::Missing(path.clone()));
            continue;
        };
        if checked_in == *text {
            continue;
        }
        let old: Value = serde_json::from_str(&checked_in)
            .with_context(|| format!("{} is not JSON", dir.join(path).display()))?;
        let new: Value = serde_json::from_str(text)?;
        let breaks = breaks_of(path, &old, &new);
        found.push(if breaks.is_empty() {
            Difference::Compatible(path.clone())
        } else {
            Difference::Breaking(path.clone(), breaks)
        });
    }
    for path in files_under(dir, &version_dir())? {
        if !generated.contains_key(&path) {
            found.push(Difference::Stale(path));
        }
    }
    Ok(found)
}

fn version_dir() -> PathBuf {
    PathBuf::from(format!("v{ENVELOPE_VERSION}"))
}

/// How `path` (under the contract directory) breaks from `old` to `new`: a schema of the current
/// version as a whole; the OpenAPI document by its component schemas.
fn breaks_of(path: &Path, old: &Value, new: &Value) -> Vec<String> {
    if path.starts_with(version_dir()) {
        compat::breaks(old, new)
    } else {
        compat::breaks(&components(old), &components(new))
    }
}

/// The OpenAPI document's named schemas as one object schema, so that `compat` compares each
/// (with `#/components/schemas/…` references resolving inside the same document).
fn components(openapi: &Value) -> Value {
    let schemas = openapi.pointer("/components/schemas").cloned().unwrap_or_default();
    serde_json::json!({"type": "object", "properties": schemas, "components": {"schemas": schemas}})
}

/// Files under `dir/sub`, as paths relative to `dir`.
fn files_under(dir: &Path, sub: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    let mut stack = vec![dir.join(sub)];
    while let Some(at) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&at) else { continue };
        for entry in entries {
            let path = entry?.path();
            if path.is_dir() {
                stack.push(path);
            } else if let Ok(relative) = path.strip_prefix(dir) {
                out.push(relative.to_path_buf());
            }
        }
    }
    Ok(out)
}

/// `splai contract check`: 0 when `dir` holds exactly what this build generates and, with
/// `base`, nothing in it breaks the same version's files at that commit; else 1 with every
/// difference printed.
pub fn check(dir: &Path, base: Option<&str>) -> anyhow::Result<u8> {
    let files = generated()?;
    let mut found = differences(dir, &files)?;
    if let Some(base) = base {
        let paths: Vec<PathBuf> = files.keys().cloned().collect();
        match since::breaking_since(dir, base, &paths)? {
            Some(breaks) => found.extend(breaks),
            None => eprintln!("splai contract check: `{base}` is not a commit here; not compared with it"),
        }
    }
    if found.is_empty() {
        println!("contract in {} matches this build (envelope v{ENVELOPE_VERSION})", dir.display());
        return Ok(0);
    }
    for difference in &found {
        eprintln!("splai contract check: {difference}");
    }
    Ok(1)
}

/// `splai contract generate`: write the generated files into `dir`, unless that would change the
/// current version incompatibly (then 1, and nothing is written).
pub fn generate(dir: &Path) -> anyhow::Result<u8> {
    let files = generated()?;
    let found = differences(dir, &files)?;
    let breaking: Vec<_> = found.iter().filter(|d| matches!(d, Difference::Breaking(..))).collect();
    for difference in &breaking {
        eprintln!("splai contract generate: {difference}");
    }
    if !breaking.is_empty() {
        return Ok(1);
    }
    for difference in &found {
        if let Difference::Stale(path) = difference {
            std::fs::remove_file(dir.join(path))?;
        }
    }
    for (path, text) in &files {
        let target = dir.join(path);
        std::fs::create_dir_all(target.parent().unwrap_or(dir))?;
        std::fs::write(&target, text).with_context(|| format!("writing {}", target.display()))?;
    }
    println!(
        "wrote {} files to {} (envelope v{ENVELOPE_VERSION}, {} changed)",
        files.len(),
        dir.display(),
        found.len()
    );
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn written() -> (tempfile::TempDir, BTreeMap<PathBuf, String>) {
        let dir = tempfile::tempdir().unwrap();
        let files = generated().unwrap();
        assert_eq!(generate(dir.path()).unwrap(), 0);
        (dir, files)
    }

    fn edit(dir: &Path, file: &str, f: impl FnOnce(&mut Value)) {
        let path = dir.join(file);
        let mut value: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        f(&mut value);
        std::fs::write(&path, serde_json::to_string_pretty(&value).unwrap() + "\n").unwrap();
    }

    #[test]
    fn the_repository_contract_matches_this_build() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("contract");
        let found = differences(&dir, &generated().unwrap()).unwrap();
        let report: Vec<String> = found.iter().map(ToString::to_string).collect();
        assert!(found.is_empty(), "run `splai contract generate`:\n{}", report.join("\n"));
    }

    #[test]
    fn freshly_generated_files_check_clean() {
        let (dir, files) = written();
        assert_eq!(differences(dir.path(), &files).unwrap(), vec![]);
    }

    #[test]
    fn a_field_the_checked_in_schema_has_and_the_code_lost_is_a_breaking_difference() {
        let (dir, files) = written();
        let file = format!("v{ENVELOPE_VERSION}/events/cancel_job.schema.json");
        edit(dir.path(), &file, |s| {
            s["properties"]["shelved_reason"] = serde_json::json!({"type": "string"})
        });
        let found = differences(dir.path(), &files).unwrap();
        assert_eq!(
            found,
            vec![Difference::Breaking(file.into(), vec!["$.shelved_reason: field removed".into()])]
        );
        assert_eq!(generate(dir.path()).unwrap(), 1, "generate must refuse a breaking change");
    }

    #[test]
    fn a_description_edit_is_a_compatible_difference() {
        let (dir, files) = written();
        let file = format!("v{ENVELOPE_VERSION}/envelope.schema.json");
        edit(dir.path(), &file, |s| s["description"] = serde_json::json!("edited by hand"));
        assert_eq!(differences(dir.path(), &files).unwrap(), vec![Difference::Compatible(file.into())]);
    }

    #[test]
    fn a_schema_no_longer_generated_is_stale_and_a_deleted_one_missing() {
        let (dir, files) = written();
        let version = format!("v{ENVELOPE_VERSION}");
        std::fs::write(dir.path().join(&version).join("events/retired_kind.schema.json"), "{}\n").unwrap();
        std::fs::remove_file(dir.path().join(&version).join("events/heartbeat.schema.json")).unwrap();
        let found = differences(dir.path(), &files).unwrap();
        assert!(
            found.contains(&Difference::Stale(format!("{version}/events/retired_kind.schema.json").into()))
        );
        assert!(
            found.contains(&Difference::Missing(format!("{version}/events/heartbeat.schema.json").into()))
        );
    }
}
