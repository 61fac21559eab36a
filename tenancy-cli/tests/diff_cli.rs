//! `tenancy diff` as a process: the exit codes (0 nothing widens, 3 something widens, 1 on a
//! bad base), the three formats, and a base read from a git revision with `git show`.

#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn rag() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../examples/rag")
}

/// A copy of the RAG policies and its committed snapshot in a temporary directory, with
/// `(from, to)` replaced in the policies.
fn project(edits: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::create_dir_all(dir.path().join("policies")).unwrap();
    std::fs::create_dir_all(dir.path().join("generated")).unwrap();
    let mut text = std::fs::read_to_string(rag().join("policies/rag.tenancy")).unwrap();
    for (from, to) in edits {
        assert_eq!(text.matches(from).count(), 1, "{from}");
        text = text.replacen(from, to, 1);
    }
    std::fs::write(dir.path().join("policies/rag.tenancy"), text).unwrap();
    std::fs::copy(
        rag().join("generated/model.snapshot.json"),
        dir.path().join("generated/model.snapshot.json"),
    )
    .unwrap();
    dir
}

fn tenancy(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_tenancy"))
        .current_dir(dir)
        .args(args)
        .output()
        .expect("run tenancy")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

const WIDEN: (&str, &str) = (
    "allow update to admin\n    allow delete to admin\n}",
    "allow update to admin\n    allow delete to viewer\n}",
);
const NARROW: (&str, &str) = (
    "allow insert, update, delete to editor",
    "allow insert, update to editor\n    allow delete to admin",
);

#[test]
fn nothing_changed_exits_0() {
    let dir = project(&[]);
    let out = tenancy(
        dir.path(),
        &["diff", "--base", "generated/model.snapshot.json"],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "no change of access\n");
}

#[test]
fn a_narrowing_alone_exits_0() {
    let dir = project(&[NARROW]);
    let out = tenancy(
        dir.path(),
        &["diff", "--base", "generated/model.snapshot.json"],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(text(&out.stdout).starts_with("narrows: editor may no longer delete `chunks`"));
}

#[test]
fn a_widening_exits_3_in_every_format() {
    let dir = project(&[WIDEN, NARROW]);
    let base = ["diff", "--base", "generated/model.snapshot.json"];
    let out = tenancy(dir.path(), &base);
    assert_eq!(out.status.code(), Some(3), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(
        stdout.contains("widens: viewer, editor may now delete `documents`"),
        "{stdout}"
    );
    assert!(
        stdout.contains("  counterexample: a caller holding `viewer`"),
        "{stdout}"
    );

    let out = tenancy(dir.path(), &[&base[..], &["--format", "json"]].concat());
    assert_eq!(out.status.code(), Some(3));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(json["widens"], true);
    assert_eq!(json["summary"]["narrows"], 1);

    let out = tenancy(dir.path(), &[&base[..], &["--format", "markdown"]].concat());
    assert_eq!(out.status.code(), Some(3));
    assert!(text(&out.stdout).contains("**This change widens access**"));
}

#[test]
fn a_base_that_is_neither_a_file_nor_a_revision_exits_1_with_one_sentence() {
    let dir = project(&[]);
    let out = tenancy(dir.path(), &["diff", "--base", "no-such-revision"]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = text(&out.stderr);
    assert!(
        stderr.starts_with("error: `no-such-revision` is neither a snapshot file nor a revision"),
        "{stderr}"
    );
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
}

#[test]
fn a_git_revision_is_read_with_git_show() {
    let dir = project(&[]);
    let git = |args: &[&str]| {
        let out = Command::new("git")
            .current_dir(dir.path())
            .args(["-c", "user.name=t", "-c", "user.email=t@example.com"])
            .args(args)
            .output()
            .expect("git");
        assert!(out.status.success(), "git {args:?}: {}", text(&out.stderr));
    };
    git(&["init", "-q"]);
    git(&["add", "."]);
    git(&["commit", "-qm", "base"]);
    let policies = dir.path().join("policies/rag.tenancy");
    let edited = std::fs::read_to_string(&policies)
        .unwrap()
        .replacen(WIDEN.0, WIDEN.1, 1);
    std::fs::write(&policies, edited).unwrap();
    // The snapshot in the working tree is not what is compared: the revision's is.
    std::fs::write(dir.path().join("generated/model.snapshot.json"), "not json").unwrap();
    let out = tenancy(dir.path(), &["diff", "--base", "HEAD"]);
    assert_eq!(out.status.code(), Some(3), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("viewer, editor may now delete `documents`"));
}
