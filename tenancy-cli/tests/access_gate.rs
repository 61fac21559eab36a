//! `scripts/access-gate` (the CI gate of docs/audit.md, "Reviewing a policy change") in a
//! scratch git repository holding a copy of the script and of `examples/rag`: every commit of
//! the range that changes the policies is checked against the one before it, so a widening in
//! an earlier commit of a push fails although the last commit widens nothing; an approval
//! trailer approves its own commit and earlier ones, never a later one; the base is
//! `TENANCY_DIFF_BASE`, else the newest approved commit or the recorded baseline
//! (`.ci/access-gate-base`), else the last commits; a bogus `TENANCY_DIFF_BASE` fails.

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

const WIDEN_DELETE: &str = "allow update to admin\n    allow delete to viewer\n}";

#[test]
fn a_single_commit_has_nothing_to_widen() {
    let dir = repository();
    let out = gate(dir.path(), None);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(text(&out).contains("no approved commit or recorded baseline in this clone"));
    assert!(text(&out).contains("0 policy change(s) checked"));
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
    assert!(text(&out).contains("owners delete: nothing widens access"));
    assert!(text(&out).contains("1 policy change(s) checked"));
}

#[test]
fn a_widening_fails_until_a_commit_approves_it() {
    let dir = repository();
    commit_edit(dir.path(), DELETE, WIDEN_DELETE, "viewers delete");
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
    // The approved commit is the new base: nothing after it to check.
    let out = gate(dir.path(), None);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(
        text(&out).contains("(the newest approved commit (Access-Widening-Approved: the lead))"),
        "{}",
        text(&out)
    );
    // With the base of the change given, the widening is checked and found approved.
    let out = gate(dir.path(), Some("HEAD~1"));
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(text(&out).contains("approved in the history: Access-Widening-Approved: the lead"));
}

#[test]
fn a_widening_in_an_earlier_commit_of_the_push_is_seen() {
    let dir = repository();
    commit_edit(dir.path(), DELETE, WIDEN_DELETE, "viewers delete");
    // the last commit narrows something else: HEAD~1..HEAD alone widens nothing
    commit_edit(
        dir.path(),
        "allow insert, update, delete to editor",
        "allow insert, update, delete to admin",
        "chunks: admins write",
    );
    let out = gate(dir.path(), None);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(text(&out).contains("viewers delete: access widens and no commit"));
    assert!(text(&out).contains("chunks: admins write: nothing widens access"));
    let out = gate(dir.path(), Some("HEAD~2"));
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));

    // a later commit that approves it
    git(
        dir.path(),
        &[
            "commit",
            "-q",
            "--allow-empty",
            "-m",
            "review\n\nAccess-Widening-Approved: the security team",
        ],
    );
    let out = gate(dir.path(), Some("HEAD~3"));
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(
        text(&out).contains("approved in the history: Access-Widening-Approved: the security team")
    );
}

#[test]
fn an_approval_does_not_cover_a_later_widening() {
    let dir = repository();
    commit_edit(
        dir.path(),
        DELETE,
        "allow update to admin\n    allow delete to owner\n}",
        "owners delete\n\nAccess-Widening-Approved: the lead",
    );
    commit_edit(
        dir.path(),
        "allow update to admin\n    allow delete to owner\n}",
        WIDEN_DELETE,
        "viewers delete",
    );
    let out = gate(dir.path(), Some("HEAD~2"));
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(text(&out).contains("viewers delete: access widens and no commit"));
    // by default the base is the approved commit, and the widening after it fails too
    let out = gate(dir.path(), None);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(text(&out).contains("the newest approved commit"));
}

#[test]
fn the_recorded_baseline_bounds_the_range() {
    let dir = repository();
    commit_edit(dir.path(), DELETE, WIDEN_DELETE, "viewers delete");
    // the team records this state as reviewed
    let head = Command::new("git")
        .current_dir(dir.path())
        .args(["rev-parse", "HEAD"])
        .output()
        .unwrap();
    std::fs::create_dir_all(dir.path().join(".ci")).unwrap();
    std::fs::write(
        dir.path().join(".ci/access-gate-base"),
        format!("# reviewed\n{}", String::from_utf8_lossy(&head.stdout)),
    )
    .unwrap();
    git(dir.path(), &["add", ".ci"]);
    git(dir.path(), &["commit", "-qm", "record the baseline"]);
    let out = gate(dir.path(), None);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(text(&out).contains("(the recorded baseline in .ci/access-gate-base)"));
    assert!(text(&out).contains("0 policy change(s) checked"));
}
