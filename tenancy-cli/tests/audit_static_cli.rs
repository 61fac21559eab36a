//! `tenancy audit --static PATH` as a process: no database needed; exit 1 with TA070
//! findings (text and JSON, with file:line:col), 0 on a clean tree, 2 on a missing path.

#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::path::PathBuf;
use std::process::{Command, Output};

fn workspace() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// Runs `tenancy audit --policies policies/ <args>` with no DATABASE_URL in the environment.
fn tenancy_audit(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_tenancy"))
        .arg("audit")
        .arg("--policies")
        .arg(workspace().join("examples/rag/policies"))
        .args(args)
        .env_remove("DATABASE_URL")
        .output()
        .expect("run tenancy")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn fixture(relative: &str) -> String {
    workspace()
        .join("tenancy-audit/tests/fixtures/static")
        .join(relative)
        .to_string_lossy()
        .into_owned()
}

#[test]
fn raw_sql_over_scoped_tables_exits_1_with_file_and_line() {
    let out = tenancy_audit(&["--static", &fixture("app/src/flagged.rs")]);
    assert_eq!(out.status.code(), Some(1), "stderr: {}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(
        stdout.contains("TA070 ") && stdout.contains("flagged.rs:5:17: raw SQL"),
        "{stdout}"
    );
    assert!(stdout.contains("table documents"), "{stdout}");
    assert!(stdout.contains("tables chunks, documents"), "{stdout}");
    assert!(
        stdout.ends_with("7 finding(s) (TA070) in 1 files scanned\n"),
        "{stdout}"
    );
}

#[test]
fn json_format_lists_the_findings() {
    let out = tenancy_audit(&[
        "--static",
        &fixture("app/src/flagged.rs"),
        "--format",
        "json",
    ]);
    assert_eq!(out.status.code(), Some(1), "stderr: {}", text(&out.stderr));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(json["clean"], false);
    let findings = json["findings"].as_array().expect("findings");
    assert_eq!(findings.len(), 7);
    assert!(findings.iter().all(|f| f["code"] == "TA070"));
    assert!(findings[1]["object"]
        .as_str()
        .unwrap()
        .ends_with("flagged.rs:13:28"));
}

#[test]
fn clean_sources_and_generated_repositories_exit_0() {
    for path in [fixture("app/src/clean.rs"), fixture("repositories")] {
        let out = tenancy_audit(&["--static", &path]);
        assert_eq!(out.status.code(), Some(0), "{path}: {}", text(&out.stderr));
        assert!(
            text(&out.stdout).starts_with("static audit clean"),
            "{path}"
        );
    }
    // The real generated crate uses raw SQL everywhere; its files are skipped by their header.
    let generated = workspace().join("examples/rag/generated");
    let out = tenancy_audit(&["--static", generated.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stdout));
}

#[test]
fn unparsable_files_are_named_on_stderr() {
    let out = tenancy_audit(&["--static", &fixture("app/src/broken.rs")]);
    assert_eq!(out.status.code(), Some(0));
    assert!(
        text(&out.stderr).contains("not scanned, not valid Rust")
            && text(&out.stderr).contains("broken.rs"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn a_missing_path_exits_2() {
    let out = tenancy_audit(&["--static", "/nonexistent/tenancy-sources"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("/nonexistent/tenancy-sources"));
}

#[test]
fn static_and_database_url_are_exclusive() {
    let out = tenancy_audit(&[
        "--static",
        &fixture("app"),
        "--database-url",
        "postgres://x/y",
    ]);
    assert_eq!(out.status.code(), Some(2), "clap usage error");
    assert!(
        text(&out.stderr).contains("cannot be used with"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn sarif_format_names_the_rule_and_the_source_line() {
    let out = tenancy_audit(&[
        "--static",
        &fixture("app/src/flagged.rs"),
        "--format",
        "sarif",
    ]);
    assert_eq!(out.status.code(), Some(1), "stderr: {}", text(&out.stderr));
    let log: serde_json::Value = serde_json::from_slice(&out.stdout).expect("SARIF is JSON");
    assert_eq!(log["version"], "2.1.0");
    let results = log["runs"][0]["results"].as_array().expect("results");
    assert!(!results.is_empty());
    for result in results {
        assert_eq!(result["ruleId"], "TA070");
        let location = &result["locations"][0]["physicalLocation"];
        assert!(location["artifactLocation"]["uri"]
            .as_str()
            .is_some_and(|uri| uri.ends_with("flagged.rs")));
        assert!(location["region"]["startLine"]
            .as_u64()
            .is_some_and(|l| l > 0));
    }
}
