//! `tenancy test` as a process: the RAG example's `policies/rag.tenancy-test` holds (exit 0);
//! failed expectations and unreadable lines are reported like DSL errors, with the line, a
//! label saying what the model does instead and a counterexample (exit 1).

#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn rag() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../examples/rag")
}

fn tenancy_test(tests: Option<&Path>) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_tenancy"));
    command
        .arg("test")
        .arg("--policies")
        .arg(rag().join("policies"))
        .env("NO_COLOR", "1");
    if let Some(tests) = tests {
        command.arg("--tests").arg(tests);
    }
    command.output().expect("run tenancy")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn file(text: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("case.tenancy-test"), text).unwrap();
    dir
}

#[test]
fn the_rag_expectations_hold() {
    let out = tenancy_test(None);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(text(&out.stdout).starts_with("ok: 18 expectation(s) hold in 1 file(s)"));
}

#[test]
fn a_failed_expectation_is_reported_with_its_line_and_a_counterexample() {
    let dir = file(
        "// editors may not touch other people's documents\n\
         editor can update documents\n\
         viewer cannot delete documents\n\
         editor cannot update documents where mime_type = 'text/plain'\n\
         admin can grant owner\n",
    );
    let out = tenancy_test(Some(dir.path()));
    assert_eq!(out.status.code(), Some(1));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("error: expectation does not hold: editor can update documents\n"),
        "{stderr}"
    );
    assert!(stderr.contains("case.tenancy-test:2:1\n"), "{stderr}");
    assert!(stderr.contains(
        "the model allows `editor` only rows where its `created_by` is the caller's user id"
    ));
    assert!(stderr.contains(
        "= note: counterexample: a caller holding `editor` in project P of tenant T may not \
         update, in `documents`, a row of project P where `created_by` is another user's id"
    ));
    assert!(stderr.contains("case.tenancy-test:4:1\n"), "{stderr}");
    assert!(stderr.contains(
        "may update, in `documents`, a row of project P where `created_by` is the caller's user \
         id and `mime_type` is 'text/plain'"
    ));
    assert!(stderr.contains("`admin` may grant only viewer, editor, admin"));
    // The expectation that holds is not reported.
    assert!(!stderr.contains("viewer cannot delete documents"));
    assert!(
        stderr
            .ends_with("error: 3 of 4 expectation(s) do not hold, 0 error(s) in the test files\n"),
        "{stderr}"
    );
}

#[test]
fn unreadable_lines_are_diagnostics_at_their_words() {
    let dir = file(
        "viewr cannot delete documents\n\
         editor can update documents where created_by = curent_user\n\
         editor can frobnicate documents\n\
         editor can update embedding_models where name = 'x'\n",
    );
    let out = tenancy_test(Some(dir.path()));
    assert_eq!(out.status.code(), Some(1));
    let stderr = text(&out.stderr);
    assert!(stderr.contains("error: unknown role `viewr`"), "{stderr}");
    assert!(stderr.contains("help: did you mean `viewer`?"));
    assert!(stderr.contains("case.tenancy-test:2:48\n"), "{stderr}");
    assert!(stderr.contains("did you mean `current_user`?"));
    assert!(stderr.contains("error: unknown command `frobnicate`"));
    assert!(stderr.contains("case.tenancy-test:3:12\n"));
    assert!(stderr.contains("table `embedding_models` is not a scoped table"));
}

#[test]
fn no_test_file_is_one_sentence() {
    let dir = tempfile::tempdir().unwrap();
    let out = tenancy_test(Some(dir.path()));
    assert_eq!(out.status.code(), Some(1));
    let stderr = text(&out.stderr);
    assert!(
        stderr.starts_with("error: no `*.tenancy-test` files in"),
        "{stderr}"
    );
    assert_eq!(stderr.lines().count(), 1);
}

/// `tenancy test --database-url URL` on a database with the RAG migrations (the test key
/// installed; TENANCY_CONTEXT_KEY comes from .cargo/config.toml).
fn tenancy_test_live(url: &str) -> Output {
    Command::new(env!("CARGO_BIN_EXE_tenancy"))
        .arg("test")
        .arg("--policies")
        .arg(rag().join("policies"))
        .arg("--database-url")
        .arg(url)
        .env("NO_COLOR", "1")
        .output()
        .expect("run tenancy")
}

#[tokio::test]
async fn the_rag_expectations_hold_on_a_live_database_and_nothing_is_left_behind() {
    let db = tenancy_tests::TestDb::fresh().await;
    let url = db.url().to_owned();
    let out = tokio::task::spawn_blocking(move || tenancy_test_live(&url))
        .await
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("on the model and on the database"));
    // Every check ran in a rolled-back transaction.
    let tenants: i64 = sqlx::query_scalar("SELECT count(*) FROM tenants")
        .fetch_one(db.admin_pool())
        .await
        .unwrap();
    assert_eq!(tenants, 0);
    db.drop_db().await;
}

#[tokio::test]
async fn a_database_that_admits_more_than_the_model_fails_live() {
    let db = tenancy_tests::TestDb::fresh().await;
    // A hand-added permissive policy: every caller deletes every document of its tenant.
    sqlx::raw_sql(
        "CREATE POLICY documents_everyone_deletes ON documents AS PERMISSIVE FOR DELETE \
         TO tenancy_app USING (true)",
    )
    .execute(db.admin_pool())
    .await
    .unwrap();
    let url = db.url().to_owned();
    let out = tokio::task::spawn_blocking(move || tenancy_test_live(&url))
        .await
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains(
            "error: expectation does not hold on the database: viewer cannot delete documents"
        ),
        "{stderr}"
    );
    assert!(stderr.contains("the database admits `viewer`"), "{stderr}");
    assert!(stderr.contains("run `tenancy audit`"));
    db.drop_db().await;
}
