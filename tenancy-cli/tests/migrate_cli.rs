//! `tenancy generate` with history and `tenancy migrate status | apply [--dry-run]`, end to end
//! through the binary on a real database.

#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use sqlx::Connection;
use tenancy_tests::{admin_url, TestDb};

/// The test harness's cluster-wide migration lock: roles are cluster-wide, so two databases
/// must not run `0001` (CREATE/ALTER ROLE) at the same time.
const HARNESS_MIGRATION_LOCK_KEY: i64 = tenancy_tests::MIGRATION_LOCK_KEY;

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
        .env_remove("DATABASE_URL")
        .output()
        .expect("run tenancy")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// A scratch directory with a copy of the real policies, generated once.
fn generated_scratch() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    fs::create_dir_all(dir.path().join("policies")).unwrap();
    fs::copy(
        repo_root().join("examples/rag/policies/rag.tenancy"),
        dir.path().join("policies/rag.tenancy"),
    )
    .unwrap();
    let out = tenancy(dir.path(), &["generate"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    dir
}

fn edit_policy(dir: &Path, from: &str, to: &str) {
    let path = dir.join("policies/rag.tenancy");
    let policy = fs::read_to_string(&path).unwrap();
    assert_eq!(policy.matches(from).count(), 1, "fixture drifted: {from}");
    fs::write(&path, policy.replacen(from, to, 1)).unwrap();
}

fn migrations(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(dir.join("generated/migrations"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[test]
fn generate_appends_a_migration_and_never_rewrites_history() {
    let dir = generated_scratch();
    let before = migrations(dir.path());
    let baseline: Vec<String> = before
        .iter()
        .map(|n| fs::read_to_string(dir.path().join("generated/migrations").join(n)).unwrap())
        .collect();
    assert!(dir.path().join("generated/model.snapshot.json").is_file());

    edit_policy(
        dir.path(),
        "    source_uri text?\n",
        "    source_uri text?\n    summary text?\n",
    );
    let stale = tenancy(dir.path(), &["generate", "--check"]);
    assert_eq!(stale.status.code(), Some(1));
    assert!(text(&stale.stderr).contains("0003_add_documents_summary_and_2_more.sql (missing)"));

    let out = tenancy(dir.path(), &["generate"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let after = migrations(dir.path());
    assert_eq!(after.len(), before.len() + 1);
    assert_eq!(
        after.last().unwrap(),
        "0003_add_documents_summary_and_2_more.sql"
    );
    for (name, contents) in before.iter().zip(&baseline) {
        let now = fs::read_to_string(dir.path().join("generated/migrations").join(name)).unwrap();
        assert_eq!(&now, contents, "{name} was rewritten");
    }
    let check = tenancy(dir.path(), &["generate", "--check"]);
    assert!(check.status.success(), "{}", text(&check.stderr));

    // An edited history file stops generation with one sentence naming it.
    let first = dir
        .path()
        .join("generated/migrations/0001_tenancy_core.sql");
    let mut edited = fs::read_to_string(&first).unwrap();
    edited.push_str("-- hand fix\n");
    fs::write(&first, edited).unwrap();
    let refused = tenancy(dir.path(), &["generate"]);
    assert_eq!(refused.status.code(), Some(1));
    let stderr = text(&refused.stderr);
    assert!(
        stderr.starts_with(
            "error: migrations/0001_tenancy_core.sql was edited after it was generated"
        ),
        "{stderr}"
    );
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
}

#[test]
fn generate_refuses_unsafe_changes_and_drops_only_with_the_flag() {
    let dir = generated_scratch();
    edit_policy(
        dir.path(),
        "    source_uri text?\n",
        "    source_uri text?\n    owner_email text\n",
    );
    let refused = tenancy(dir.path(), &["generate"]);
    assert_eq!(refused.status.code(), Some(1));
    let stderr = text(&refused.stderr);
    assert!(
        stderr.contains("new column `documents.owner_email` is NOT NULL without a default"),
        "{stderr}"
    );

    edit_policy(
        dir.path(),
        "    source_uri text?\n    owner_email text\n",
        "",
    );
    let refused = tenancy(dir.path(), &["generate"]);
    assert_eq!(refused.status.code(), Some(1));
    assert!(text(&refused.stderr).contains("--allow-data-loss"));
    // --check still lists what is stale (it writes nothing).
    let check = tenancy(dir.path(), &["generate", "--check"]);
    assert!(
        text(&check.stderr).contains("0003_documents_drop_source_uri_and_4_more.sql (missing)"),
        "{}",
        text(&check.stderr)
    );
    let dropped = tenancy(dir.path(), &["generate", "--allow-data-loss"]);
    assert!(dropped.status.success(), "{}", text(&dropped.stderr));
    let sql = fs::read_to_string(
        dir.path()
            .join("generated/migrations/0003_documents_drop_source_uri_and_4_more.sql"),
    )
    .unwrap();
    assert!(sql.contains("DATA LOSS"));
    assert!(sql.contains("ALTER TABLE documents DROP COLUMN source_uri;"));
}

#[tokio::test]
async fn migrate_status_apply_and_dry_run_on_a_real_database() {
    let db = TestDb::empty().await;
    let dir = generated_scratch();
    let url = db.url().to_owned();
    let migrate = |args: &[&str]| {
        let mut all = vec!["migrate"];
        all.extend_from_slice(args);
        all.extend_from_slice(&["--database-url", &url]);
        tenancy(dir.path(), &all)
    };

    let status = migrate(&["status"]);
    assert!(status.status.success(), "{}", text(&status.stderr));
    assert!(text(&status.stdout).contains("pending   0001_tenancy_core.sql"));
    assert!(text(&status.stdout).contains("0 applied, 2 pending"));

    let mut lock = sqlx::PgConnection::connect(&admin_url().await)
        .await
        .unwrap();
    sqlx::query("SELECT pg_advisory_lock($1)")
        .bind(HARNESS_MIGRATION_LOCK_KEY)
        .execute(&mut lock)
        .await
        .unwrap();
    let dry = migrate(&["apply", "--dry-run"]);
    assert!(dry.status.success(), "{}", text(&dry.stderr));
    let plan = text(&dry.stdout);
    assert!(plan.contains("would apply 0002_tables.sql"), "{plan}");
    assert!(plan.contains("CREATE TABLE documents ("), "{plan}");
    assert!(plan.contains("public.documents"), "{plan}");
    assert!(plan.contains("rolled back"), "{plan}");
    assert!(text(&migrate(&["status"]).stdout).contains("0 applied, 2 pending"));

    let apply = migrate(&["apply"]);
    assert!(apply.status.success(), "{}", text(&apply.stderr));
    assert!(text(&apply.stdout).contains("applied 0002_tables.sql"));
    lock.close().await.unwrap();
    let again = migrate(&["apply"]);
    assert!(
        text(&again.stdout).contains("up to date"),
        "{}",
        text(&again.stdout)
    );

    // An incremental change: generated, dry-run, applied.
    edit_policy(
        dir.path(),
        "    source_uri text?\n",
        "    source_uri text?\n    summary text?\n",
    );
    assert!(tenancy(dir.path(), &["generate"]).status.success());
    let dry = migrate(&["apply", "--dry-run"]);
    let plan = text(&dry.stdout);
    assert!(
        plan.contains("would apply 0003_add_documents_summary_and_2_more.sql"),
        "{plan}"
    );
    assert!(
        plan.contains("ALTER TABLE documents ADD COLUMN summary text"),
        "{plan}"
    );
    let apply = migrate(&["apply"]);
    assert!(text(&apply.stdout).contains("applied 0003_add_documents_summary_and_2_more.sql"));
    // A signed-context database audits clean only with an active key (TA046).
    let mut conn = sqlx::PgConnection::connect(&url).await.unwrap();
    tenancy_tests::install_test_key(&mut conn).await.unwrap();
    let audit = tenancy(dir.path(), &["audit", "--database-url", &url]);
    assert!(
        audit.status.success(),
        "{}{}",
        text(&audit.stdout),
        text(&audit.stderr)
    );

    // An applied file edited: status flags it, apply refuses with one sentence.
    let path = dir
        .path()
        .join("generated/migrations/0003_add_documents_summary_and_2_more.sql");
    let mut sql = fs::read_to_string(&path).unwrap();
    sql.push_str("-- edited\n");
    fs::write(&path, sql).unwrap();
    let status = migrate(&["status"]);
    assert_eq!(status.status.code(), Some(1));
    assert!(text(&status.stdout).contains("MODIFIED  0003_add_documents_summary_and_2_more.sql"));
    let refused = migrate(&["apply"]);
    assert_eq!(refused.status.code(), Some(1));
    let stderr = text(&refused.stderr);
    assert!(
        stderr.starts_with(
            "error: 0003_add_documents_summary_and_2_more.sql was edited after it was applied"
        ),
        "{stderr}"
    );
    assert_eq!(stderr.lines().count(), 1, "{stderr}");

    // No database: one sentence.
    let none = tenancy(dir.path(), &["migrate", "status"]);
    assert_eq!(none.status.code(), Some(1));
    assert!(text(&none.stderr).contains("pass --database-url or set DATABASE_URL"));
    db.drop_db().await;
}
