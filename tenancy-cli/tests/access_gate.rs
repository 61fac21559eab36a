//! `scripts/access-gate` (the CI gate of docs/audit.md, "Reviewing a policy change") in a
//! scratch git repository holding a copy of the script and of `examples/rag`: it passes when
//! nothing widens, fails on a widening without an `Access-Widening-Approved:` trailer, passes
//! with one, skips (exit 0, with the reason) without a base, and fails on a bogus
//! `TENANCY_DIFF_BASE`.

#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn workspace() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn git(dir: &Path, args: &[&str]) {
    let out = Command::new("git")
        .current_dir(dir)
        .args(["-c", "user.name=t", "-c", "user.email=t@example.com"])
        .args(args)
        .output()
        .expect("git");
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A repository with the script, the RAG policies and the committed snapshot, one commit.
fn repository() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    std::fs::create_dir_all(root.join("scripts")).unwrap();
    std::fs::create_dir_all(root.join("examples/rag/policies")).unwrap();
    std::fs::create_dir_all(root.join("examples/rag/generated")).unwrap();
    std::fs::copy(
        workspace().join("scripts/access-gate"),
        root.join("scripts/access-gate"),
    )
    .unwrap();
    for file in ["policies/rag.tenancy", "generated/model.snapshot.json"] {
        std::fs::copy(
            workspace().join("examples/rag").join(file),
            root.join("examples/rag").join(file),
        )
        .unwrap();
    }
    git(root, &["init", "-q"]);
    git(root, &["add", "."]);
    git(root, &["commit", "-qm", "base"]);
    dir
}

fn gate(dir: &Path, base: Option<&str>) -> Output {
    let mut command = Command::new("bash");
    command
        .current_dir(dir)
        .arg("scripts/access-gate")
        .env("TENANCY_BIN", env!("CARGO_BIN_EXE_tenancy"))
        .env_remove("TENANCY_DIFF_BASE");
    if let Some(base) = base {
        command.env("TENANCY_DIFF_BASE", base);
    }
    command.output().expect("run scripts/access-gate")
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Commits an edit of the policies with `message`.
fn commit_edit(dir: &Path, from: &str, to: &str, message: &str) {
    let path = dir.join("examples/rag/policies/rag.tenancy");
    let text = std::fs::read_to_string(&path).unwrap();
    assert_eq!(text.matches(from).count(), 1);
    std::fs::write(&path, text.replacen(from, to, 1)).unwrap();
    git(dir, &["commit", "-qam", message]);
}

const DELETE: &str = "allow update to admin\n    allow delete to admin\n}";

#[test]
fn without_a_base_revision_the_gate_says_why_and_passes() {
    let dir = repository();
    let out = gate(dir.path(), None);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(text(&out).contains("access-gate: skipped: no base revision `HEAD~1`"));
}

#[test]
fn a_bogus_base_fails() {
    let dir = repository();
    let out = gate(dir.path(), Some("no-such-base"));
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(text(&out).contains("TENANCY_DIFF_BASE=no-such-base is not a revision"));
}

#[test]
fn a_narrowing_passes() {
    let dir = repository();
    commit_edit(
        dir.path(),
        DELETE,
        "allow update to admin\n    allow delete to owner\n}",
        "owners delete",
    );
    let out = gate(dir.path(), None);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(text(&out).contains("access-gate: nothing widens access"));
}

#[test]
fn a_widening_fails_until_a_commit_approves_it() {
    let dir = repository();
    commit_edit(
        dir.path(),
        DELETE,
        "allow update to admin\n    allow delete to viewer\n}",
        "viewers delete",
    );
    let out = gate(dir.path(), None);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(text(&out).contains("widens: viewer, editor may now delete `documents`"));
    assert!(text(&out).contains("Access-Widening-Approved: <who>"));

    git(
        dir.path(),
        &[
            "commit",
            "-q",
            "--amend",
            "-m",
            "viewers delete\n\nAccess-Widening-Approved: the lead",
        ],
    );
    let out = gate(dir.path(), None);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(text(&out).contains("approved in the history: Access-Widening-Approved: the lead"));
}
