//! The configuration reference (`docs/config.md`) and the README's examples cannot drift from
//! the code: the reference is regenerated and compared, and every field the README writes
//! (set or commented out) must exist.

use portcullis_config::reference::{fields, markdown};
use portcullis_config::Config;
use std::path::PathBuf;

fn repository() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

#[test]
fn the_reference_in_docs_is_what_the_code_declares() {
    let path = repository().join("docs/config.md");
    let generated = markdown();
    if std::env::var_os("PORTCULLIS_UPDATE_REFERENCE").is_some() {
        std::fs::write(&path, &generated).unwrap();
    }
    let written = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        written == generated,
        "docs/config.md differs from the code: regenerate it with \
         `cargo run -p portcullis -- config-reference > docs/config.md` \
         (or run this test with PORTCULLIS_UPDATE_REFERENCE=1)"
    );
}

#[test]
fn every_field_has_a_type_and_a_meaning() {
    let all = fields();
    assert!(all.len() > 150, "only {} fields found", all.len());
    for f in &all {
        assert!(!f.meaning.is_empty(), "`{}` has no doc comment", f.path);
        assert!(
            !f.kind.is_empty() && f.kind != "value",
            "`{}` has no type",
            f.path
        );
    }
    let known = |path: &str| all.iter().find(|f| f.path == path).cloned();
    let port = known("listeners.public").unwrap();
    assert_eq!(port.default, "\"127.0.0.1:8080\"");
    let timeout = known("upstreams[].connect_timeout").unwrap();
    assert_eq!(
        (timeout.kind.as_str(), timeout.default.as_str()),
        ("duration", "\"2s\"")
    );
    assert!(known("upstreams[].name").unwrap().required);
    assert!(known("plans.<name>.tenant.tokens_per_day").is_some());
}

/// Every ```toml block of the README, with the heading it is under.
fn readme_blocks() -> Vec<(String, String)> {
    let readme = std::fs::read_to_string(repository().join("README.md")).unwrap();
    let mut blocks = Vec::new();
    let mut heading = String::new();
    let mut current: Option<String> = None;
    for line in readme.lines() {
        match &mut current {
            Some(block) if line.starts_with("```") => {
                blocks.push((heading.clone(), std::mem::take(block)));
                current = None;
            }
            Some(block) => {
                block.push_str(line);
                block.push('\n');
            }
            None if line.starts_with("```toml") => current = Some(String::new()),
            None if line.starts_with('#') => heading = line.to_owned(),
            None => {}
        }
    }
    blocks
}

/// Whether `path` (with concrete names, `plans.pro.key.x`) is a field or a section of the
/// reference (with placeholders, `plans.<name>.key.x`).
fn declared(path: &str, reference: &[String]) -> bool {
    let segments: Vec<&str> = path.split('.').collect();
    reference.iter().any(|field| {
        let pattern: Vec<&str> = field.split('.').collect();
        pattern.len() >= segments.len()
            && segments
                .iter()
                .zip(&pattern)
                .all(|(s, p)| *p == "<name>" || s == p)
    })
}

#[test]
fn the_readme_writes_only_declared_fields_and_its_configuration_example_loads() {
    let reference: Vec<String> = fields().into_iter().map(|f| f.path).collect();
    let blocks = readme_blocks();
    assert!(blocks.len() >= 3, "README toml blocks not found");
    let mut checked = 0;
    for (heading, block) in &blocks {
        let mut section = String::new();
        for line in block.lines() {
            let code = line.trim();
            if let Some(name) = code.strip_prefix("[[").and_then(|l| l.split("]]").next()) {
                section = format!("{name}[]");
                continue;
            }
            if let Some(name) = code.strip_prefix('[').and_then(|l| l.split(']').next()) {
                // `[upstreams.x]` never occurs: tables under a list are written `[[...]]`.
                section = name.to_owned();
                continue;
            }
            // `key = value`, or commented out as `# key = value`.
            let assignment = code.trim_start_matches('#').trim_start();
            let Some((key, _)) = assignment.split_once('=') else {
                continue;
            };
            let key = key.trim();
            if key.is_empty() || !key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                continue;
            }
            // Prose in a comment is not a field.
            if code.starts_with('#') && !assignment.starts_with(key) {
                continue;
            }
            let path = if section.is_empty() {
                key.to_owned()
            } else {
                format!("{section}.{key}")
            };
            assert!(
                declared(&path, &reference),
                "README ({heading}) writes `{path}`, which the configuration does not declare"
            );
            checked += 1;
        }
    }
    assert!(checked > 100, "only {checked} README fields checked");

    let (_, example) = blocks
        .iter()
        .find(|(heading, _)| heading == "## Configuration")
        .expect("the Configuration section has an example");
    if let Err(e) = Config::parse(example, Vec::new()) {
        panic!("the README's configuration example does not load: {e}");
    }
}
