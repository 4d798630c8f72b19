//! Built-in tools. Each takes its named inputs and returns a JSON output; bad input is a
//! non-retryable error that names the input.

use std::collections::{BTreeMap, HashMap};

use std::sync::atomic::AtomicBool;

use serde_json::{Value, json};
use splai_ingest::plan::{MAX_SLEEP_MS, chunk_lines};

use crate::AttemptError;
use crate::shell::ShellLimits;

/// Tools every executor offers.
pub const BUILT_IN: [&str; 6] = ["split_lines", "json_extract", "regex", "template", "sleep", "map"];

fn text<'a>(inputs: &'a BTreeMap<String, Value>, tool: &str, name: &str) -> Result<&'a str, AttemptError> {
    inputs
        .get(name)
        .and_then(Value::as_str)
        .ok_or_else(|| AttemptError::fatal(format!("tool `{tool}`: input `{name}` must be a string")))
}

/// Run `tool` (named by the `tool` input) on `inputs`. `shell` holds the limits of the `shell`
/// tool when an operator turned it on; `None` keeps it off.
pub fn run(
    inputs: &BTreeMap<String, Value>,
    shell: Option<&ShellLimits>,
    cancel: &AtomicBool,
) -> Result<Value, AttemptError> {
    let tool = text(inputs, "tool_execution", "tool")?;
    match tool {
        "split_lines" => {
            let body = text(inputs, tool, "text")?;
            let per = inputs.get("lines_per_chunk").and_then(Value::as_u64).unwrap_or(20).max(1) as usize;
            let chunks = chunk_lines(body, per);
            if inputs.get("as_lists").and_then(Value::as_bool).unwrap_or(false) {
                let lists: Vec<Vec<&str>> = chunks.iter().map(|c| c.lines().collect()).collect();
                Ok(json!({ "chunks": lists }))
            } else {
                Ok(json!({ "chunks": chunks }))
            }
        }
        "json_extract" => {
            let doc = match inputs.get("json") {
                Some(Value::String(s)) => serde_json::from_str(s).map_err(|e| {
                    AttemptError::fatal(format!("tool `json_extract`: input `json` is not valid JSON: {e}"))
                })?,
                Some(v) => v.clone(),
                None => return Err(AttemptError::fatal("tool `json_extract`: input `json` is missing")),
            };
            let fields = inputs.get("fields").and_then(Value::as_array).ok_or_else(|| {
                AttemptError::fatal("tool `json_extract`: input `fields` must be a list of JSON pointers")
            })?;
            let mut out = serde_json::Map::new();
            for f in fields {
                let p = f.as_str().ok_or_else(|| {
                    AttemptError::fatal("tool `json_extract`: every field must be a string")
                })?;
                out.insert(p.to_string(), doc.pointer(p).cloned().unwrap_or(Value::Null));
            }
            Ok(json!({ "fields": out }))
        }
        "regex" => {
            let body = text(inputs, tool, "text")?;
            let pattern = text(inputs, tool, "pattern")?;
            let re = compiled(pattern)?;
            let group = inputs.get("group").and_then(Value::as_u64).unwrap_or(0) as usize;
            let matches: Vec<&str> = re
                .captures_iter(body)
                .filter_map(|c| c.get(group).map(|m| m.as_str()))
                .take(10_000)
                .collect();
            Ok(json!({ "matches": matches, "count": matches.len() }))
        }
        "template" => {
            let template = text(inputs, tool, "template")?;
            let mut out = String::with_capacity(template.len());
            let mut rest = template;
            while let Some(start) = rest.find("{{") {
                out.push_str(&rest[..start]);
                let after = &rest[start + 2..];
                let end =
                    after.find("}}").ok_or_else(|| AttemptError::fatal("tool `template`: unclosed `{{`"))?;
                let name = after[..end].trim();
                let value = inputs.get(name).ok_or_else(|| {
                    AttemptError::fatal(format!("tool `template`: no input named `{name}`"))
                })?;
                match value {
                    Value::String(s) => out.push_str(s),
                    other => out.push_str(&other.to_string()),
                }
                rest = &after[end + 2..];
            }
            out.push_str(rest);
            Ok(json!({ "text": out }))
        }
        "sleep" => {
            // Waits `ms` (≤ MAX_SLEEP_MS), stopping early on revoke: a task of known duration,
            // for measuring the runtime's own overhead and for tests.
            let ms = inputs.get("ms").and_then(Value::as_u64).filter(|ms| *ms <= MAX_SLEEP_MS).ok_or_else(
                || {
                    AttemptError::fatal(format!(
                        "tool `sleep`: input `ms` must be a whole number of milliseconds ≤ {MAX_SLEEP_MS}"
                    ))
                },
            )?;
            let until = std::time::Instant::now() + std::time::Duration::from_millis(ms);
            while std::time::Instant::now() < until {
                if cancel.load(std::sync::atomic::Ordering::SeqCst) {
                    return Err(AttemptError::transient("tool `sleep`: cancelled"));
                }
                std::thread::sleep(
                    (until - std::time::Instant::now()).min(std::time::Duration::from_millis(5)),
                );
            }
            Ok(json!({ "slept_ms": ms }))
        }
        "map" => crate::subdag::map(inputs),
        "shell" if let Some(limits) = shell => crate::shell::run(inputs, limits, cancel),
        other => Err(AttemptError::fatal(format!("tool `{other}` is not enabled on this executor"))),
    }
}

/// Patterns compiled before, by text: a fan-out runs one pattern over many items, and compiling
/// it (building its automaton) cost more than matching it. Forgotten wholesale when full.
fn compiled(pattern: &str) -> Result<regex::Regex, AttemptError> {
    const KEPT: usize = 256;
    static COMPILED: std::sync::OnceLock<std::sync::Mutex<HashMap<String, regex::Regex>>> =
        std::sync::OnceLock::new();
    let cache = COMPILED.get_or_init(Default::default);
    if let Some(re) = cache.lock().unwrap_or_else(|p| p.into_inner()).get(pattern) {
        return Ok(re.clone());
    }
    let re = regex::RegexBuilder::new(pattern)
        .size_limit(1 << 20)
        .build()
        .map_err(|e| AttemptError::fatal(format!("tool `regex`: invalid pattern: {e}")))?;
    let mut kept = cache.lock().unwrap_or_else(|p| p.into_inner());
    if kept.len() >= KEPT {
        kept.clear();
    }
    kept.insert(pattern.to_string(), re.clone());
    Ok(re)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn inputs(v: Value) -> BTreeMap<String, Value> {
        serde_json::from_value(v).unwrap()
    }

    fn run(inputs: &BTreeMap<String, Value>, shell: &[&str]) -> Result<Value, AttemptError> {
        let limits = (!shell.is_empty()).then(ShellLimits::default);
        super::run(inputs, limits.as_ref(), &AtomicBool::new(false))
    }

    #[test]
    fn tools_do_their_job() {
        let out =
            run(&inputs(json!({"tool": "split_lines", "text": "a\nb\n\nc", "lines_per_chunk": 2})), &[])
                .unwrap();
        assert_eq!(out, json!({"chunks": ["a\nb", "c"]}));
        let out = run(
            &inputs(json!({"tool": "json_extract", "json": "{\"a\":{\"b\":3}}", "fields": ["/a/b", "/x"]})),
            &[],
        )
        .unwrap();
        assert_eq!(out, json!({"fields": {"/a/b": 3, "/x": null}}));
        let out = run(
            &inputs(json!({"tool": "regex", "text": "id=4 id=17", "pattern": "id=(\\d+)", "group": 1})),
            &[],
        )
        .unwrap();
        assert_eq!(out, json!({"matches": ["4", "17"], "count": 2}));
        let out = run(
            &inputs(json!({"tool": "template", "template": "Hi {{ name }}, {{n}}!", "name": "Ada", "n": 3})),
            &[],
        )
        .unwrap();
        assert_eq!(out, json!({"text": "Hi Ada, 3!"}));
        let out = run(&inputs(json!({"tool": "sleep", "ms": 3})), &[]).unwrap();
        assert_eq!(out, json!({"slept_ms": 3}));
        assert!(run(&inputs(json!({"tool": "sleep", "ms": "3"})), &[]).unwrap_err().message.contains("`ms`"));
    }

    #[test]
    fn bad_input_is_fatal_and_specific() {
        let err = run(&inputs(json!({"tool": "shell", "cmd": "rm -rf /"})), &[]).unwrap_err();
        assert_eq!(err, AttemptError::fatal("tool `shell` is not enabled on this executor"));
        let out = run(&inputs(json!({"tool": "shell", "command": "echo on"})), &["shell"]).unwrap();
        assert_eq!(out["stdout"], "on\n");
        let err = run(&inputs(json!({"tool": "regex", "text": "x", "pattern": "("})), &[]).unwrap_err();
        assert!(!err.retryable && err.message.contains("invalid pattern"));
        let err = run(&inputs(json!({"tool": "template", "template": "{{missing}}"})), &[]).unwrap_err();
        assert!(err.message.contains("`missing`"));
        let err =
            run(&inputs(json!({"tool": "json_extract", "json": "{oops", "fields": []})), &[]).unwrap_err();
        assert!(err.message.contains("not valid JSON"));
    }
}
