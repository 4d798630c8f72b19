//! The policy gate (pure, shared by gateway and scheduler). A policy file lists rules in order;
//! the first rule that matches decides. A rule matches on any of tenant, job type, task kind,
//! model, data classification and priority (an absent matcher matches everything).
//!
//! - **Admission** rules (`stage = "admission"`, or no stage and no worker labels) allow or deny a
//!   job; a job is denied when any of its tasks is. When no rule matches, `default` decides.
//! - **Placement** rules (`stage = "placement"`, or any rule with `require_worker_labels`) name
//!   worker labels a matching task needs (e.g. `restricted` data only on `site=on-prem`): such a
//!   task is never placed on a worker without them. Placement rules only restrict; `default` does
//!   not apply to placement.
//!
//! ```toml
//! default = "allow"
//! [[rules]]
//! name = "no-batch-for-trial"
//! tenants = ["trial"]
//! priorities = ["batch"]
//! action = "deny"
//! reason = "trial tenants cannot submit batch jobs"
//! [[rules]]
//! name = "restricted-on-prem"
//! data_classifications = ["restricted"]
//! require_worker_labels = ["site=on-prem"]
//! reason = "restricted data runs only on on-prem workers"
//! ```

use serde::Deserialize;
use splai_events::{Dag, DataClassification, JobRequest, JobType, Priority, TaskKind};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    #[default]
    Allow,
    Deny,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Stage {
    Admission,
    Placement,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rule {
    pub name: String,
    #[serde(default)]
    pub stage: Option<Stage>,
    #[serde(default)]
    pub tenants: Option<Vec<String>>,
    #[serde(default)]
    pub job_types: Option<Vec<JobType>>,
    #[serde(default)]
    pub task_kinds: Option<Vec<TaskKind>>,
    #[serde(default)]
    pub models: Option<Vec<String>>,
    #[serde(default)]
    pub data_classifications: Option<Vec<DataClassification>>,
    #[serde(default)]
    pub priorities: Option<Vec<Priority>>,
    /// Admission: what a match does.
    #[serde(default)]
    pub action: Action,
    /// Placement: `key=value` labels a matching task's worker must have.
    #[serde(default)]
    pub require_worker_labels: Vec<String>,
    pub reason: String,
}

#[derive(Debug, Clone, PartialEq, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct PolicySet {
    #[serde(default)]
    pub default: Action,
    #[serde(default)]
    pub rules: Vec<Rule>,
}

/// What a policy file says is wrong with it.
#[derive(Debug, thiserror::Error)]
pub enum PolicyError {
    #[error("cannot read policy file {path}")]
    Read {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("policy file {path} is invalid")]
    Invalid {
        path: String,
        #[source]
        source: PolicyParseError,
    },
}

/// What is wrong with a policy's text.
#[derive(Debug, thiserror::Error)]
pub enum PolicyParseError {
    #[error("not a policy document")]
    Toml(#[from] toml::de::Error),
    #[error("rule `{rule}`: {why}")]
    Rule { rule: String, why: String },
}

/// The facts a rule matches on, for one task of one job.
#[derive(Debug, Clone, Copy)]
pub struct Subject<'a> {
    pub tenant: &'a str,
    pub job_type: JobType,
    pub priority: Priority,
    pub data_classification: DataClassification,
    pub task_kind: Option<TaskKind>,
    pub model: Option<&'a str>,
}

/// One evaluation: allowed or not, by which rule (absent: the default), and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    pub allowed: bool,
    pub rule: Option<String>,
    pub reason: String,
    /// The task the verdict is about, when a task decided it.
    pub task_id: Option<String>,
}

/// A placement constraint on one task.
#[derive(Debug, Clone, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
pub struct Placement {
    pub labels: Vec<String>,
    pub rule: Option<String>,
    pub reason: String,
}

fn any<T: PartialEq>(list: &Option<Vec<T>>, value: &T) -> bool {
    list.as_ref().is_none_or(|l| l.contains(value))
}

impl Rule {
    fn is_placement(&self) -> bool {
        self.stage == Some(Stage::Placement)
            || (self.stage.is_none() && !self.require_worker_labels.is_empty())
    }

    fn matches(&self, s: &Subject<'_>) -> bool {
        any(&self.tenants, &s.tenant.to_string())
            && any(&self.job_types, &s.job_type)
            && any(&self.priorities, &s.priority)
            && any(&self.data_classifications, &s.data_classification)
            && self.task_kinds.as_ref().is_none_or(|k| s.task_kind.is_some_and(|t| k.contains(&t)))
            && self.models.as_ref().is_none_or(|m| s.model.is_some_and(|x| m.iter().any(|y| y == x)))
    }
}

impl PolicySet {
    /// Read a policy file; an empty path means no policy (everything allowed).
    pub fn load(path: &str) -> Result<Self, PolicyError> {
        if path.is_empty() {
            return Ok(Self::default());
        }
        let text = std::fs::read_to_string(path)
            .map_err(|source| PolicyError::Read { path: path.to_string(), source })?;
        Self::parse(&text).map_err(|source| PolicyError::Invalid { path: path.to_string(), source })
    }

    pub fn parse(text: &str) -> Result<Self, PolicyParseError> {
        let set: PolicySet = toml::from_str(text)?;
        let bad_rule = |rule: &str, why: String| Err(PolicyParseError::Rule { rule: rule.to_string(), why });
        for r in &set.rules {
            if let Some(bad) =
                r.require_worker_labels.iter().find(|l| l.split_once('=').is_none_or(|(k, _)| k.is_empty()))
            {
                return bad_rule(&r.name, format!("worker label `{bad}` is not key=value"));
            }
            if r.stage == Some(Stage::Admission) && !r.require_worker_labels.is_empty() {
                return bad_rule(&r.name, "require_worker_labels applies at placement, not admission".into());
            }
        }
        Ok(set)
    }

    /// The admission verdict for a planned job: the first task (or the job itself) a deny rule
    /// matches denies it.
    pub fn admit(&self, tenant: &str, request: &JobRequest, dag: &Dag) -> Verdict {
        let base = Subject {
            tenant,
            job_type: request.job_type,
            priority: request.priority,
            data_classification: request.data_classification,
            task_kind: None,
            model: request.model.as_deref(),
        };
        let subjects = dag.tasks.iter().map(|t| {
            let model = t.requirements.model.as_deref().or(request.model.as_deref());
            (Some(t.id.clone()), Subject { task_kind: Some(t.kind), model, ..base })
        });
        let mut first_allow = None;
        for (task_id, subject) in std::iter::once((None, base)).chain(subjects) {
            match self.rules.iter().filter(|r| !r.is_placement()).find(|r| r.matches(&subject)) {
                Some(r) if r.action == Action::Deny => {
                    return Verdict {
                        allowed: false,
                        rule: Some(r.name.clone()),
                        reason: r.reason.clone(),
                        task_id,
                    };
                }
                Some(r) => {
                    first_allow.get_or_insert(Verdict {
                        allowed: true,
                        rule: Some(r.name.clone()),
                        reason: r.reason.clone(),
                        task_id: None,
                    });
                }
                None if self.default == Action::Deny => {
                    return Verdict {
                        allowed: false,
                        rule: None,
                        reason: "denied by the policy's default".into(),
                        task_id,
                    };
                }
                None => {}
            }
        }
        first_allow.unwrap_or(Verdict {
            allowed: true,
            rule: None,
            reason: "allowed by the policy's default".into(),
            task_id: None,
        })
    }

    /// Worker labels a task needs (union over the placement rules it matches).
    pub fn placement(&self, subject: &Subject<'_>) -> Placement {
        let mut out = Placement::default();
        for r in self.rules.iter().filter(|r| r.is_placement() && r.matches(subject)) {
            for l in &r.require_worker_labels {
                if !out.labels.contains(l) {
                    out.labels.push(l.clone());
                }
            }
            if out.rule.is_none() {
                out.rule = Some(r.name.clone());
                out.reason = r.reason.clone();
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const POLICY: &str = r#"
default = "allow"
[[rules]]
name = "no-batch-for-trial"
tenants = ["trial"]
priorities = ["batch"]
action = "deny"
reason = "trial tenants cannot submit batch jobs"
[[rules]]
name = "model-x-retired"
task_kinds = ["llm_inference"]
models = ["model-x"]
action = "deny"
reason = "model-x is retired"
[[rules]]
name = "restricted-on-prem"
data_classifications = ["restricted"]
require_worker_labels = ["site=on-prem"]
reason = "restricted data runs only on on-prem workers"
"#;

    fn request(v: serde_json::Value) -> (JobRequest, Dag) {
        let r: JobRequest = serde_json::from_value(v).unwrap();
        let dag = crate::plan::plan(&r, &crate::plan::Limits::default()).unwrap();
        (r, dag)
    }

    #[test]
    fn admission_first_match_wins_and_names_the_rule() {
        let p = PolicySet::parse(POLICY).unwrap();
        let (r, dag) = request(
            serde_json::json!({"type": "chat", "priority": "batch", "input": {"messages": [{"role": "user", "content": "hi"}]}}),
        );
        let v = p.admit("trial", &r, &dag);
        assert_eq!((v.allowed, v.rule.as_deref()), (false, Some("no-batch-for-trial")));
        assert!(p.admit("acme", &r, &dag).allowed);
        let (r, dag) = request(
            serde_json::json!({"type": "chat", "model": "model-x", "input": {"messages": [{"role": "user", "content": "hi"}]}}),
        );
        let v = p.admit("acme", &r, &dag);
        assert_eq!(
            (v.allowed, v.rule.as_deref(), v.task_id.as_deref()),
            (false, Some("model-x-retired"), Some("chat"))
        );
        let deny_all = PolicySet::parse("default = \"deny\"").unwrap();
        assert!(!deny_all.admit("acme", &r, &dag).allowed);
        assert!(PolicySet::default().admit("acme", &r, &dag).allowed);
    }

    #[test]
    fn placement_requires_labels_for_matching_tasks_only() {
        let p = PolicySet::parse(POLICY).unwrap();
        let subject = |dc| Subject {
            tenant: "acme",
            job_type: JobType::Chat,
            priority: Priority::Standard,
            data_classification: dc,
            task_kind: Some(TaskKind::LlmInference),
            model: None,
        };
        let placed = p.placement(&subject(DataClassification::Restricted));
        assert_eq!(placed.labels, vec!["site=on-prem".to_string()]);
        assert_eq!(placed.rule.as_deref(), Some("restricted-on-prem"));
        assert!(p.placement(&subject(DataClassification::Internal)).labels.is_empty());
    }

    #[test]
    fn bad_files_are_specific() {
        let text = |e: PolicyParseError| match &e {
            PolicyParseError::Toml(source) => format!("{e}: {source}"),
            PolicyParseError::Rule { .. } => e.to_string(),
        };
        assert!(text(PolicySet::parse("default = \"maybe\"").unwrap_err()).contains("maybe"));
        assert!(
            text(
                PolicySet::parse(
                    "[[rules]]\nname = \"x\"\nreason = \"r\"\nrequire_worker_labels = [\"onprem\"]"
                )
                .unwrap_err()
            )
            .contains("key=value")
        );
        assert!(
            text(PolicySet::parse("[[rules]]\nname = \"x\"\nreason = \"r\"\ncolour = \"red\"").unwrap_err())
                .contains("colour")
        );
        assert!(matches!(PolicySet::load("/no/such/policy.toml"), Err(PolicyError::Read { .. })));
    }
}
