//! Resolving an assignment's inputs: literals as given, parents' outputs read from the artifact
//! store (size and sha256 verified) and narrowed by their JSON pointer. The artifacts read are the
//! attempt's lineage.

use std::collections::BTreeMap;

use serde_json::Value;
use splai_events::{ArtifactRef, ResolvedInput};
use splai_store::artifacts::{ArtifactError, ArtifactStore};

use crate::AttemptError;

/// Inputs by name, and the artifacts they came from.
#[derive(Debug, Clone, PartialEq)]
pub struct Resolved {
    pub values: BTreeMap<String, Value>,
    pub lineage: Vec<ArtifactRef>,
}

pub async fn resolve(
    store: &ArtifactStore,
    inputs: &BTreeMap<String, ResolvedInput>,
) -> Result<Resolved, AttemptError> {
    let mut values = BTreeMap::new();
    let mut lineage: Vec<ArtifactRef> = Vec::new();
    for (name, input) in inputs {
        let value = match input {
            ResolvedInput::Literal(v) => v.clone(),
            ResolvedInput::Artifact { artifact, pointer } => {
                let bytes = store.get(artifact).await.map_err(|e| match e {
                    ArtifactError::Read { .. } => AttemptError::transient(format!("input `{name}`: {e}")),
                    other => AttemptError::fatal(format!("input `{name}`: {other}")),
                })?;
                let doc: Value = serde_json::from_slice(&bytes).map_err(|e| {
                    AttemptError::fatal(format!(
                        "input `{name}`: parent output {} is not JSON: {e}",
                        artifact.path
                    ))
                })?;
                if !lineage.contains(artifact) {
                    lineage.push(artifact.clone());
                }
                match pointer {
                    None => doc,
                    Some(p) => doc.pointer(p).cloned().ok_or_else(|| {
                        AttemptError::fatal(format!(
                            "input `{name}`: `{p}` not found in parent output {}",
                            artifact.path
                        ))
                    })?,
                }
            }
        };
        values.insert(name.clone(), value);
    }
    lineage.sort();
    Ok(Resolved { values, lineage })
}
