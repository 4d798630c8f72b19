//! `splai contract check --base REV`: the checked-in contract against the same version's files at
//! an earlier commit (CI passes the parent commit), so a breaking change cannot land within a
//! version even by editing the checked-in files by hand. Files the base does not have (a new
//! kind, a new `contract/v{N}/` after a version bump) have nothing to break.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::Context;
use serde_json::Value;

use super::Difference;

/// Breaking differences between each of `paths` (relative to `dir`, a directory inside a git
/// checkout) at `base` and as it is now; `None` when `base` is not a commit of the checkout (a
/// shallow clone, the first commit), so there is nothing to compare with.
pub fn breaking_since(dir: &Path, base: &str, paths: &[PathBuf]) -> anyhow::Result<Option<Vec<Difference>>> {
    let known = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(["rev-parse", "--verify", "--quiet", &format!("{base}^{{commit}}")])
        .output()
        .context("running git")?;
    if !known.status.success() {
        return Ok(None);
    }
    let mut found = Vec::new();
    for path in paths {
        let shown = Command::new("git")
            .arg("-C")
            .arg(dir)
            .args(["show", &format!("{base}:./{}", path.display())])
            .output()
            .context("running git")?;
        if !shown.status.success() {
            continue;
        }
        let Ok(now) = std::fs::read_to_string(dir.join(path)) else { continue };
        let old: Value = serde_json::from_slice(&shown.stdout)
            .with_context(|| format!("{} at {base} is not JSON", path.display()))?;
        let new: Value = serde_json::from_str(&now)
            .with_context(|| format!("{} is not JSON", dir.join(path).display()))?;
        let breaks = super::breaks_of(path, &old, &new);
        if !breaks.is_empty() {
            found.push(Difference::Breaking(path.clone(), breaks));
        }
    }
    Ok(Some(found))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn git(dir: &Path, args: &[&str]) {
        let out = Command::new("git").arg("-C").arg(dir).args(args).output().unwrap();
        assert!(out.status.success(), "git {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    }

    #[test]
    fn a_field_dropped_since_the_base_commit_is_breaking_and_an_added_one_is_not() {
        let repo = tempfile::tempdir().unwrap();
        git(repo.path(), &["init", "-q"]);
        let dir = repo.path().join("contract");
        let file = super::super::version_dir().join("events/cancel_job.schema.json");
        std::fs::create_dir_all(dir.join(file.parent().unwrap())).unwrap();
        let with = |props: Value| serde_json::json!({"type": "object", "properties": props}).to_string();
        std::fs::write(dir.join(&file), with(serde_json::json!({"job_id": {"type": "string"}}))).unwrap();
        git(repo.path(), &["add", "."]);
        git(repo.path(), &["-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "base"]);

        std::fs::write(dir.join(&file), with(serde_json::json!({"job_id": {"type": "string"}, "why": {}})))
            .unwrap();
        let found = breaking_since(&dir, "HEAD", std::slice::from_ref(&file)).unwrap().unwrap();
        assert_eq!(found, vec![]);

        std::fs::write(dir.join(&file), with(serde_json::json!({"why": {}}))).unwrap();
        let found = breaking_since(&dir, "HEAD", std::slice::from_ref(&file)).unwrap().unwrap();
        assert_eq!(found, vec![Difference::Breaking(file, vec!["$.job_id: field removed".into()])]);
        assert!(breaking_since(&dir, "HEAD~5", &[]).unwrap().is_none(), "no such commit: nothing to compare");
    }
}
