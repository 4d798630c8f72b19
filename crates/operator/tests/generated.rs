//! Generated files stay in step with the types: `deploy/crds/` equals what `splai operator crds`
//! writes, and a SPLAIPolicy renders to a policy file the policy gate accepts.

use splai_operator::crd::SplaiPolicy;
use splai_operator::generate::{crds, policy_file};

#[test]
fn deploy_crds_match_the_rust_types() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy/crds");
    for (name, yaml) in crds().unwrap() {
        let on_disk = std::fs::read_to_string(dir.join(&name)).unwrap_or_default();
        assert!(on_disk == yaml, "deploy/crds/{name} is stale: run `splai operator crds --out deploy/crds`");
    }
}

#[test]
fn a_splaipolicy_renders_to_a_valid_policy_file() {
    let yaml = r#"
apiVersion: splai.io/v1alpha1
kind: SPLAIPolicy
metadata: {name: default, namespace: splai}
spec:
  default: allow
  rules:
    - name: no-restricted-chat
      action: deny
      jobTypes: [chat]
      dataClassifications: [restricted]
      reason: restricted data may not go to chat
    - name: on-prem
      stage: placement
      taskKinds: [llm_inference]
      requireWorkerLabels: ["site=on-prem"]
      reason: confidential inference stays on site
"#;
    let policy: SplaiPolicy = serde_yaml_ng::from_str(yaml).unwrap();
    let toml = policy_file(&policy.spec).unwrap();
    assert!(toml.contains("job_types = [\"chat\"]"), "{toml}");
    assert!(toml.contains("require_worker_labels = [\"site=on-prem\"]"), "{toml}");
    let set = splai_ingest::policy::PolicySet::parse(&toml).unwrap();
    assert_eq!(set.rules.len(), 2);
    assert_eq!(set.rules[1].require_worker_labels, vec!["site=on-prem".to_string()]);
}
