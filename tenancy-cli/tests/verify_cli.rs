//! `tenancy verify` as a process: exit 0 when proven, 4 when the proof fails (with the table,
//! the command and a counterexample, in text and JSON), 1 on errors; on migration files and
//! on a live database (`--database-url`).

#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use tenancy_tests::TestDb;

fn rag() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../examples/rag")
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

/// The RAG migrations copied into a temporary directory, plus `extra` as a last migration.
fn migrations_with(extra: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for entry in std::fs::read_dir(rag().join("generated/migrations")).unwrap() {
        let path = entry.unwrap().path();
        std::fs::copy(&path, dir.path().join(path.file_name().unwrap())).unwrap();
    }
    std::fs::write(dir.path().join("9999_hand_edit.sql"), extra).unwrap();
    dir
}

#[test]
fn the_committed_migrations_are_proven_exit_0() {
    let out = tenancy(&rag(), &["verify"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(
        stdout.contains("ok   documents: select viewer+;"),
        "{stdout}"
    );
    assert!(stdout
        .lines()
        .last()
        .unwrap()
        .starts_with("proven: 45 checks over 9 tables"));

    let out = tenancy(&rag(), &["verify", "--format", "json"]);
    assert_eq!(out.status.code(), Some(0));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["proven"], true);
    assert_eq!(json["proofs"].as_array().unwrap().len(), 45);
    assert_eq!(json["failures"].as_array().unwrap().len(), 0);
}

#[test]
fn a_widened_role_fails_exit_4_with_a_counterexample() {
    let dir = migrations_with(
        "ALTER POLICY documents_delete ON documents \
         USING (COALESCE(project_id = ANY ((SELECT tenancy.project_ids('editor'))::uuid[]), false));",
    );
    let migrations = dir.path().to_str().unwrap();
    let out = tenancy(&rag(), &["verify", "--migrations", migrations]);
    assert_eq!(out.status.code(), Some(4), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(
        stdout.contains(
            "error[widened] documents delete: the deployed policies admit more than the model: \
             a caller holding `editor` in project P of tenant T may delete, in `documents`, \
             a row of tenant T in project P"
        ),
        "{stdout}"
    );
    let out = tenancy(
        &rag(),
        &["verify", "--migrations", migrations, "--format", "json"],
    );
    assert_eq!(out.status.code(), Some(4));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["proven"], false);
    let failure = &json["failures"][0];
    assert_eq!(failure["table"], "documents");
    assert_eq!(failure["command"], "delete");
    assert_eq!(failure["kind"], "widened");
    assert_eq!(failure["counterexample"]["role"], "editor");
    assert_eq!(failure["counterexample"]["tenant"], "T");
}

#[test]
fn errors_exit_1_with_one_sentence() {
    // no such directory
    let out = tenancy(&rag(), &["verify", "--migrations", "no/such/dir"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("could not read `no/such/dir`"),
        "{}",
        text(&out.stderr)
    );
    // SQL PostgreSQL's parser refuses
    let dir = migrations_with("CREATE POLICY broken ON documents USING (;");
    let out = tenancy(
        &rag(),
        &["verify", "--migrations", dir.path().to_str().unwrap()],
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("PostgreSQL's parser refuses"),
        "{}",
        text(&out.stderr)
    );
    // nothing listens
    let out = tenancy(
        &rag(),
        &[
            "verify",
            "--database-url",
            "postgres://postgres@127.0.0.1:1/none",
        ],
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("could not connect"),
        "{}",
        text(&out.stderr)
    );
}

#[tokio::test]
async fn a_live_database_is_proven_then_fails_after_a_dropped_boundary() {
    let db = TestDb::fresh().await;
    let out = tenancy(&rag(), &["verify", "--database-url", db.url()]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    assert!(text(&out.stdout).starts_with("verify: the policies deployed by the database\n"));

    sqlx::raw_sql("DROP POLICY responses_tenant_boundary ON responses")
        .execute(db.admin_pool())
        .await
        .unwrap();
    let out = tenancy(&rag(), &["verify", "--database-url", db.url()]);
    assert_eq!(out.status.code(), Some(4), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(
        stdout.contains(
            "error[boundary] responses select: the tenant boundary is not a conjunct of what \
             select admits: a caller holding `viewer` in project P of tenant T may select, in \
             `responses`, a row of another tenant T2 in project P"
        ),
        "{stdout}"
    );
    db.drop_db().await;
}

/// The three hand-broken policies of the issue, each on its own migrated database, through
/// `--database-url`: exit 4 and the failure's kind, table and command.
#[tokio::test]
async fn hand_broken_live_databases_fail_exit_4() {
    let cases = [
        (
            "DROP POLICY documents_tenant_boundary ON documents",
            "error[boundary] documents select:",
        ),
        (
            "CREATE POLICY chunks_all ON chunks AS PERMISSIVE FOR ALL TO tenancy_app USING (true)",
            "error[extra-policy] chunks select: permissive policy `chunks_all` on `chunks` is not in the model",
        ),
        (
            "ALTER POLICY projects_update ON projects \
             USING (COALESCE(id = ANY ((SELECT tenancy.project_ids('editor'))::uuid[]), false))",
            "error[widened] projects update: the deployed policies admit more than the model: \
             a caller holding `editor` in project P of tenant T may update",
        ),
    ];
    for (breakage, expected) in cases {
        let db = TestDb::fresh().await;
        sqlx::raw_sql(breakage)
            .execute(db.admin_pool())
            .await
            .unwrap();
        let out = tenancy(&rag(), &["verify", "--database-url", db.url()]);
        assert_eq!(
            out.status.code(),
            Some(4),
            "{breakage}: {}",
            text(&out.stderr)
        );
        assert!(
            text(&out.stdout).contains(expected),
            "{breakage}: {}",
            text(&out.stdout)
        );
        db.drop_db().await;
    }
}
