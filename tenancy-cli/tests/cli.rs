//! End-to-end tests of the `tenancy` binary on copies of the real policies.

#![allow(clippy::expect_used)]

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("crate lives in the workspace")
        .to_path_buf()
}

fn tenancy(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_tenancy"))
        .args(args)
        .current_dir(dir)
        .output()
        .expect("run tenancy")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// A scratch directory holding a copy of the real policies.
fn scratch_with_policies() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    let policies = dir.path().join("policies");
    fs::create_dir_all(&policies).expect("mkdir");
    for entry in fs::read_dir(repo_root().join("examples/rag/policies")).expect("read policies") {
        let path = entry.expect("entry").path();
        fs::copy(&path, policies.join(path.file_name().expect("name"))).expect("copy");
    }
    dir
}

#[test]
fn check_accepts_the_real_policies() {
    let out = tenancy(&repo_root().join("examples/rag"), &["check"]);
    assert!(out.status.success(), "stderr: {}", text(&out.stderr));
    assert!(text(&out.stdout).starts_with("ok: "));
}

#[test]
fn committed_generated_folder_is_up_to_date() {
    let out = tenancy(&repo_root().join("examples/rag"), &["generate", "--check"]);
    assert!(
        out.status.success(),
        "generated/ is stale: {}",
        text(&out.stderr)
    );
}

#[test]
fn generate_then_check_then_edit_makes_check_fail() {
    let dir = scratch_with_policies();
    let first = tenancy(dir.path(), &["generate"]);
    assert!(first.status.success(), "{}", text(&first.stderr));
    assert!(dir.path().join("generated/migrations").is_dir());

    let clean = tenancy(dir.path(), &["generate", "--check"]);
    assert!(clean.status.success(), "{}", text(&clean.stderr));

    // Generating twice changes nothing (deterministic output).
    let second = tenancy(dir.path(), &["generate"]);
    assert!(
        text(&second.stdout).contains("(0 changed)"),
        "{}",
        text(&second.stdout)
    );

    // Edit a policy without regenerating: --check must fail and name the stale file.
    let policy = dir.path().join("policies/rag.tenancy");
    let edited = fs::read_to_string(&policy)
        .expect("read")
        .replace("allow delete to admin\n}", "allow delete to editor\n}");
    fs::write(&policy, edited).expect("write");
    let stale = tenancy(dir.path(), &["generate", "--check"]);
    assert_eq!(stale.status.code(), Some(1));
    let stderr = text(&stale.stderr);
    assert!(stderr.contains("stale: "), "{stderr}");
    // Migrations are append-only: the change is a new numbered migration, and the snapshot
    // of the model moves on; 0002 stays as it was.
    assert!(
        stderr.contains("migrations/0003_change_documents_delete_rule"),
        "{stderr}"
    );
    assert!(stderr.contains("model.snapshot.json (differs"), "{stderr}");
    assert!(!stderr.contains("0002_tables.sql"), "{stderr}");
    assert!(stderr
        .lines()
        .last()
        .is_some_and(|l| l.starts_with("error: ")));

    // A stray file in a generator-owned directory is reported as extra.
    tenancy(dir.path(), &["generate"]);
    fs::write(
        dir.path()
            .join("generated/migrations/9999_hand_written.sql"),
        "select 1;",
    )
    .expect("write");
    let extra = tenancy(dir.path(), &["generate", "--check"]);
    assert_eq!(extra.status.code(), Some(1));
    assert!(text(&extra.stderr).contains("9999_hand_written.sql (not generated"));
}

#[test]
fn check_reports_every_error_with_a_caret_and_exits_1() {
    let dir = scratch_with_policies();
    let policy = dir.path().join("policies/rag.tenancy");
    let broken = fs::read_to_string(&policy)
        .expect("read")
        .replacen(
            "allow insert, update to editor",
            "allow insert, update to editr",
            1,
        )
        .replacen("created_by uuid", "created_by uuidd", 1);
    fs::write(&policy, broken).expect("write");
    let out = tenancy(dir.path(), &["check"]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = text(&out.stderr);
    assert!(stderr.contains("editr"), "{stderr}");
    assert!(stderr.contains("uuidd"), "{stderr}");
    assert!(stderr.contains("rag.tenancy:"), "{stderr}");
    assert!(stderr.contains('^'), "{stderr}");
    assert!(stderr.contains("did you mean `editor`"), "{stderr}");
    assert!(stderr.contains("2 error(s)"), "{stderr}");
}

#[test]
fn explain_names_roles_per_command_and_rejects_unknown_tables() {
    let out = tenancy(&repo_root().join("examples/rag"), &["explain", "documents"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(stdout.contains("documents"), "{stdout}");
    assert!(stdout.contains("editor"), "{stdout}");

    let unknown = tenancy(&repo_root().join("examples/rag"), &["explain", "documentz"]);
    assert_eq!(unknown.status.code(), Some(1));
    assert!(text(&unknown.stderr).contains("documents"));
}

#[test]
fn missing_policy_directory_is_one_clear_sentence() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = tenancy(dir.path(), &["check", "--policies", "nope"]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = text(&out.stderr);
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.starts_with("error: could not read policies from `nope`"));
}

#[test]
fn every_command_has_help() {
    for cmd in ["check", "generate", "explain"] {
        let out = tenancy(&repo_root(), &[cmd, "--help"]);
        assert!(out.status.success());
        assert!(text(&out.stdout).contains("Usage: tenancy"));
    }
}

#[test]
fn structs_declared_with_the_derive_generate_the_committed_output() {
    // examples/derive holds only the tenancy core as DSL plus the RAG tables as Rust structs;
    // together they must produce exactly the committed generated/ folder.
    let out = tenancy(
        &repo_root(),
        &[
            "generate",
            "--check",
            "--policies",
            "examples/derive/policies",
            "--rust",
            "examples/derive/rag_models.rs",
            "--out",
            "examples/rag/generated",
        ],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));

    // Without the structs, the tables are missing and the output is stale.
    let core_only = tenancy(
        &repo_root(),
        &[
            "generate",
            "--check",
            "--policies",
            "examples/derive/policies",
            "--out",
            "examples/rag/generated",
        ],
    );
    assert_eq!(core_only.status.code(), Some(1));
    assert!(text(&core_only.stderr).contains("documents.rs"));
}

#[test]
fn problems_in_derived_tables_are_shown_on_the_rust_source() {
    // The struct's table goes through the DSL validator with the policies; its diagnostics
    // point at the Rust tokens (file:line:column, the line underlined), not at DSL text.
    let dir = tempfile::tempdir().expect("tempdir");
    let rust = dir.path().join("notes.rs");
    fs::write(
        &rust,
        "use tenancy_runtime::TenantScoped;\n\n\
         #[derive(TenantScoped)]\n\
         #[tenancy(table = \"notes\", scoped, primary_key(id), select = Viewr)]\n\
         pub struct Note {\n    \
             pub id: Uuid,\n    \
             #[tenancy(references = \"documnets(id)\")]\n    \
             pub document_id: Uuid,\n\
         }\n",
    )
    .expect("write notes.rs");
    let rust = rust.to_str().expect("utf-8 path");
    let out = tenancy(
        &repo_root(),
        &[
            "check",
            "--policies",
            "examples/derive/policies",
            "--rust",
            rust,
        ],
    );
    assert_eq!(out.status.code(), Some(1));
    let stderr = text(&out.stderr);
    assert!(stderr.contains("error: unknown role `viewr`"), "{stderr}");
    assert!(stderr.contains(&format!("--> {rust}:4:62")), "{stderr}");
    assert!(stderr.contains("select = Viewr)]"), "{stderr}");
    assert!(
        stderr.contains("= help: did you mean `viewer`?"),
        "{stderr}"
    );
    assert!(stderr.contains("documnets"), "{stderr}");
    assert!(stderr.contains(&format!("--> {rust}:7:28")), "{stderr}");
}
