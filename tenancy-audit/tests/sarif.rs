//! `tenancy audit --format sarif`: the log is valid SARIF 2.1.0 (checked against the
//! standard's JSON schema by `scripts/sarif-validate`, which fetches it), has one rule per
//! `TA0xx` code with its help text, and points findings at the policy files.

#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::path::PathBuf;
use std::process::Command;

use tenancy_audit::sarif::{to_sarif, PolicyIndex, RULES};
use tenancy_audit::{codes, Finding, Report};

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn rag_index() -> PolicyIndex {
    let path = "examples/rag/policies/rag.tenancy";
    let text = std::fs::read_to_string(repo().join(path)).unwrap();
    PolicyIndex::new(&[(path.to_owned(), text)])
}

fn report() -> Report {
    Report {
        findings: vec![
            Finding::new(
                codes::RLS_DISABLED,
                "table documents",
                "row-level security is not enabled",
            ),
            Finding::new(
                codes::POLICY_EXTRA,
                "policy documents_everyone on documents",
                "a policy the generator does not create",
            ),
            Finding::new(
                codes::SCOPE_COLUMN_NULLABLE,
                "column chunks.tenant_id",
                "accepts NULL",
            ),
            Finding::new(
                codes::APP_ROLE_BYPASSRLS,
                "role tenancy_app",
                "has BYPASSRLS",
            ),
            Finding::new(
                codes::RAW_SQL_SCOPED_TABLE,
                "src/report.rs:41:17",
                "raw SQL passed to sqlx `query_as` touches tenant-owned tables chunks",
            ),
        ],
    }
}

/// Runs `scripts/sarif-validate` on `log`: `Ok` when valid, `Err(stderr)` when not.
fn validate(log: &str) -> Result<(), String> {
    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(file.path(), log).unwrap();
    let out = Command::new(repo().join("scripts/sarif-validate"))
        .arg(file.path())
        .output()
        .expect("run scripts/sarif-validate");
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    match out.status.code() {
        Some(0) => Ok(()),
        Some(1) => Err(stderr),
        other => panic!("scripts/sarif-validate could not run ({other:?}): {stderr}"),
    }
}

#[test]
fn the_log_is_valid_sarif_2_1_0() {
    let log = to_sarif(&report(), &rag_index());
    validate(&log).expect("valid SARIF");
    let clean = to_sarif(&Report::default(), &rag_index());
    validate(&clean).expect("valid SARIF without findings");
}

#[test]
fn the_validator_refuses_a_broken_log() {
    // The schema check is real: a log whose result has no message is refused.
    let mut log: serde_json::Value =
        serde_json::from_str(&to_sarif(&report(), &rag_index())).unwrap();
    log["runs"][0]["results"][0]
        .as_object_mut()
        .unwrap()
        .remove("message");
    let err = validate(&log.to_string()).expect_err("a result without a message");
    assert!(err.contains("'message' is a required property"), "{err}");
}

#[test]
fn every_code_has_a_rule_with_help() {
    let source = std::fs::read_to_string(repo().join("tenancy-audit/src/finding.rs")).unwrap();
    let declared: Vec<&str> = source
        .lines()
        .filter(|l| l.trim_start().starts_with("pub const ") && l.contains(": &str = \"TA"))
        .filter_map(|l| l.split('"').nth(1))
        .collect();
    assert!(declared.len() >= 38, "{declared:?}");
    for code in &declared {
        let rule = RULES.iter().find(|r| r.code == *code);
        assert!(
            rule.is_some_and(|r| !r.help.is_empty() && !r.short.is_empty()),
            "{code}"
        );
    }
    assert_eq!(RULES.len(), declared.len(), "one rule per code, no more");
    let log: serde_json::Value =
        serde_json::from_str(&to_sarif(&Report::default(), &rag_index())).unwrap();
    assert_eq!(
        log["runs"][0]["tool"]["driver"]["rules"]
            .as_array()
            .unwrap()
            .len(),
        declared.len()
    );
}

#[test]
fn findings_point_at_the_policy_files() {
    let index = rag_index();
    let text = std::fs::read_to_string(repo().join("examples/rag/policies/rag.tenancy")).unwrap();
    let line_of = |needle: &str| text.lines().position(|l| l.contains(needle)).unwrap() as u32 + 1;
    let findings = report().findings;
    let documents = index.locate(&findings[0]).expect("documents");
    assert_eq!(documents.uri, "examples/rag/policies/rag.tenancy");
    assert_eq!(documents.line, line_of("scoped table documents {"));
    assert_eq!(index.locate(&findings[1]).unwrap().line, documents.line);
    assert_eq!(
        index.locate(&findings[2]).unwrap().line,
        line_of("scoped table chunks {")
    );
    assert_eq!(
        index.locate(&findings[3]),
        None,
        "a role is not in the policy files"
    );
    let rust = index.locate(&findings[4]).unwrap();
    assert_eq!(
        (rust.uri.as_str(), rust.line, rust.column),
        ("src/report.rs", 41, Some(17))
    );

    let log: serde_json::Value = serde_json::from_str(&to_sarif(&report(), &index)).unwrap();
    let first = &log["runs"][0]["results"][0];
    assert_eq!(first["ruleId"], "TA002");
    assert_eq!(
        first["locations"][0]["physicalLocation"]["region"]["startLine"],
        documents.line
    );
    let rule =
        &log["runs"][0]["tool"]["driver"]["rules"][first["ruleIndex"].as_u64().unwrap() as usize];
    assert_eq!(rule["id"], "TA002");
}
