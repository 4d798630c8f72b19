//! docs/configuration.md is the embedded defaults, verbatim: the reference cannot drift.

#[test]
fn configuration_reference_is_the_defaults() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/configuration.md");
    let doc = std::fs::read_to_string(&path).unwrap();
    let block = format!("```toml\n{}```\n", splai_config::DEFAULT_TOML);
    assert!(
        doc.ends_with(&block),
        "docs/configuration.md is stale: replace its toml block with the output of `splai config defaults`"
    );
}
