//! tenancy-migrate on a real PostgreSQL: history and checksums, refusals, all-or-nothing
//! files, dry runs that change nothing, concurrent appliers, and every kind of incremental
//! change applied on top of the baseline with `tenancy audit` clean afterwards.

#![allow(clippy::expect_used, clippy::unwrap_used)]

#[path = "../../tenancy-core/tests/incremental_cases.rs"]
mod incremental_cases;

use std::path::{Path, PathBuf};

use incremental_cases::{base_policy, cases, model_of};
use sqlx::postgres::PgConnection;
use sqlx::Connection;
use tenancy_core::model::Model;
use tenancy_core::output::{self, ExistingOutput, GenerateOptions};
use tenancy_core::sql::Target;
use tenancy_migrate::{
    apply, connect, dry_run, read_migrations, status, MigrateError, State, HISTORY_TABLE,
};
use tenancy_tests::{admin_url, TestDb};

/// The test harness's cluster-wide migration lock: roles are cluster-wide, so two databases
/// must not run `0001` (CREATE/ALTER ROLE) at the same time.
const HARNESS_MIGRATION_LOCK_KEY: i64 = tenancy_tests::MIGRATION_LOCK_KEY;

/// Holds the harness lock while the returned connection is open.
async fn cluster_lock() -> PgConnection {
    let mut conn = PgConnection::connect(&admin_url().await).await.unwrap();
    sqlx::query("SELECT pg_catalog.pg_advisory_lock($1)")
        .bind(HARNESS_MIGRATION_LOCK_KEY)
        .execute(&mut conn)
        .await
        .unwrap();
    conn
}

/// Generates the output for `model` into `out` the way `tenancy generate` does (reading
/// what is already there), and returns the migrations directory.
fn generate_into(out: &Path, model: &Model, allow_data_loss: bool) -> PathBuf {
    let existing = ExistingOutput::read(out).unwrap();
    let files = output::generate(
        model,
        Target::Postgres,
        &existing,
        GenerateOptions { allow_data_loss },
    )
    .unwrap();
    output::write(out, &files).unwrap();
    out.join("migrations")
}

/// Applies every pending migration of `dir` under the harness lock.
async fn apply_dir(url: &str, dir: &Path) -> Result<Vec<String>, MigrateError> {
    let lock = cluster_lock().await;
    let mut conn = connect(url).await?;
    let result = apply(&mut conn, &read_migrations(dir)?).await;
    conn.close().await.unwrap();
    lock.close().await.unwrap();
    result.map(|applied| applied.into_iter().map(|a| a.file).collect())
}

async fn audit_findings(db: &TestDb, model: &Model) -> String {
    // A signed-context database audits clean only with an active key (TA046).
    let mut conn = db.admin_pool().acquire().await.unwrap();
    tenancy_tests::install_test_key(&mut conn).await.unwrap();
    drop(conn);
    let pool = tenancy_audit::connect(db.url()).await.unwrap();
    let report = tenancy_audit::audit_for_target(&pool, model, Target::Postgres)
        .await
        .unwrap();
    pool.close().await;
    if report.is_clean() {
        String::new()
    } else {
        report.to_text()
    }
}

/// A tenant, a project and a document, inserted as the superuser.
async fn insert_fixture_rows(db: &TestDb) {
    sqlx::raw_sql(
        "INSERT INTO tenants (id, name, slug) VALUES ('00000000-0000-0000-0000-0000000000a1', 'Acme', 'acme');\n\
         INSERT INTO projects (tenant_id, id, name, slug) VALUES ('00000000-0000-0000-0000-0000000000a1', '00000000-0000-0000-0000-0000000000b1', 'Docs', 'docs');\n\
         INSERT INTO documents (tenant_id, project_id, title, content_hash, created_by) \
           SELECT '00000000-0000-0000-0000-0000000000a1', '00000000-0000-0000-0000-0000000000b1', 'doc ' || n, 'hash ' || n, gen_random_uuid() \
           FROM generate_series(1, 3) AS n;",
    )
    .execute(db.admin_pool())
    .await
    .unwrap();
}

fn file_names(dir: &Path) -> Vec<String> {
    read_migrations(dir)
        .unwrap()
        .into_iter()
        .map(|m| m.file_name())
        .collect()
}

#[tokio::test]
async fn apply_records_every_file_with_its_checksum_and_is_idempotent() {
    let db = TestDb::empty().await;
    let out = tempfile::tempdir().unwrap();
    let model = model_of(&base_policy());
    let dir = generate_into(out.path(), &model, false);

    let applied = apply_dir(db.url(), &dir).await.unwrap();
    assert_eq!(applied, file_names(&dir));
    let rows: Vec<(String, String, i64)> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT version, checksum, execution_ms FROM {HISTORY_TABLE} ORDER BY version"
    )))
    .fetch_all(db.admin_pool())
    .await
    .unwrap();
    let files = read_migrations(&dir).unwrap();
    assert_eq!(rows.len(), files.len());
    for (row, file) in rows.iter().zip(&files) {
        assert_eq!(row.0, file.version);
        assert_eq!(row.1, file.checksum);
        assert!(row.2 >= 0);
    }

    // Up to date: a second apply does nothing, status says all applied.
    assert!(apply_dir(db.url(), &dir).await.unwrap().is_empty());
    let mut conn = connect(db.url()).await.unwrap();
    let report = status(&mut conn, &files).await.unwrap();
    assert_eq!(report.pending(), 0);
    assert!(report
        .entries
        .iter()
        .all(|e| matches!(e.state, State::Applied { .. })));
    assert!(report
        .to_string()
        .contains("applied   0001_tenancy_core.sql"));
    conn.close().await.unwrap();

    assert_eq!(audit_findings(&db, &model).await, "");

    // The app role cannot read or write the history.
    let denied = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT * FROM {HISTORY_TABLE}"
    )))
    .fetch_all(db.app_pool())
    .await
    .unwrap_err();
    let code = denied.as_database_error().and_then(|e| e.code());
    assert_eq!(code.as_deref(), Some("42501"), "{denied}");
    db.drop_db().await;
}

#[tokio::test]
async fn edited_deleted_and_out_of_order_files_are_refused() {
    let db = TestDb::empty().await;
    let out = tempfile::tempdir().unwrap();
    let dir = generate_into(out.path(), &model_of(&base_policy()), false);
    apply_dir(db.url(), &dir).await.unwrap();
    let files = file_names(&dir);
    let last = dir.join(files.last().unwrap());
    let original = std::fs::read_to_string(&last).unwrap();

    // Edited after it was applied.
    std::fs::write(&last, format!("{original}\n-- a hand fix\n")).unwrap();
    let err = apply_dir(db.url(), &dir).await.unwrap_err();
    assert!(matches!(err, MigrateError::Modified { .. }), "{err}");
    let message = err.to_string();
    assert!(
        message.starts_with(&format!(
            "{} was edited after it was applied",
            files.last().unwrap()
        )),
        "{message}"
    );
    assert!(!message.contains('\n'), "one sentence: {message}");
    let mut conn = connect(db.url()).await.unwrap();
    let report = status(&mut conn, &read_migrations(&dir).unwrap())
        .await
        .unwrap();
    assert!(report.has_problems());
    assert!(report.to_string().contains("MODIFIED"), "{report}");

    // Deleted after it was applied.
    std::fs::remove_file(&last).unwrap();
    let err = apply_dir(db.url(), &dir).await.unwrap_err();
    assert!(matches!(err, MigrateError::Missing { .. }), "{err}");

    // A new file numbered before the last applied one.
    std::fs::write(&last, &original).unwrap();
    std::fs::write(dir.join("0000_early.sql"), "SELECT 1;").unwrap();
    let err = apply_dir(db.url(), &dir).await.unwrap_err();
    assert!(matches!(err, MigrateError::OutOfOrder { .. }), "{err}");
    std::fs::remove_file(dir.join("0000_early.sql")).unwrap();

    // Restored: nothing to do.
    assert!(apply_dir(db.url(), &dir).await.unwrap().is_empty());
    conn.close().await.unwrap();
    db.drop_db().await;
}

#[tokio::test]
async fn a_failing_migration_changes_nothing_and_is_not_recorded() {
    let db = TestDb::empty().await;
    let out = tempfile::tempdir().unwrap();
    let dir = generate_into(out.path(), &model_of(&base_policy()), false);
    let baseline = apply_dir(db.url(), &dir).await.unwrap().len();

    let next = format!("{:04}_broken.sql", baseline + 1);
    std::fs::write(
        dir.join(&next),
        "CREATE TABLE half_done (x integer);\nALTER TABLE documents ADD COLUMN no_such_type nope;\n",
    )
    .unwrap();
    let err = apply_dir(db.url(), &dir).await.unwrap_err();
    let message = err.to_string();
    assert!(
        message.starts_with(&format!("{next} failed and was rolled back")),
        "{message}"
    );
    assert!(message.contains("nope"), "{message}");
    let exists: bool = sqlx::query_scalar("SELECT to_regclass('half_done') IS NOT NULL")
        .fetch_one(db.admin_pool())
        .await
        .unwrap();
    assert!(!exists, "the failed file left a table behind");
    let recorded: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
        "SELECT count(*) FROM {HISTORY_TABLE}"
    )))
    .fetch_one(db.admin_pool())
    .await
    .unwrap();
    assert_eq!(recorded as usize, baseline);
    db.drop_db().await;
}

#[tokio::test]
async fn dry_run_prints_the_plan_and_counts_then_rolls_back() {
    let db = TestDb::empty().await;
    let out = tempfile::tempdir().unwrap();
    let base = base_policy();
    let dir = generate_into(out.path(), &model_of(&base), false);
    apply_dir(db.url(), &dir).await.unwrap();
    insert_fixture_rows(&db).await;

    let edit = |name: &str| cases().into_iter().find(|c| c.name == name).unwrap().edit;
    let edited = edit("new_table")(&edit("new_nullable_column")(&base));
    generate_into(out.path(), &model_of(&edited), false);

    let lock = cluster_lock().await;
    let mut conn = connect(db.url()).await.unwrap();
    let plan = dry_run(&mut conn, &read_migrations(&dir).unwrap())
        .await
        .unwrap();
    lock.close().await.unwrap();
    assert_eq!(plan.files.len(), 1);
    assert!(
        plan.files[0]
            .file
            .ends_with("_add_documents_summary_and_3_more.sql"),
        "{}",
        plan.files[0].file
    );
    assert!(plan.files[0]
        .statements
        .contains(&"ALTER TABLE documents ADD COLUMN summary text".to_owned()));
    let count = |table: &str| {
        plan.counts
            .iter()
            .find(|c| c.table == table)
            .cloned()
            .unwrap()
    };
    assert_eq!(count("public.documents").before, Some(3));
    assert_eq!(count("public.documents").after, Some(3));
    assert_eq!(count("public.feedback").before, None);
    assert_eq!(count("public.feedback").after, Some(0));
    let text = plan.to_string();
    assert!(text.contains("would apply"), "{text}");
    assert!(text.contains("rolled back"), "{text}");

    // Nothing happened: no column, no table, no history row, the file still pending.
    let column: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM information_schema.columns \
         WHERE table_name = 'documents' AND column_name = 'summary'",
    )
    .fetch_one(db.admin_pool())
    .await
    .unwrap();
    assert_eq!(column, 0);
    let report = status(&mut conn, &read_migrations(&dir).unwrap())
        .await
        .unwrap();
    assert_eq!(report.pending(), 1);
    conn.close().await.unwrap();

    // The real apply then does what the dry run showed.
    apply_dir(db.url(), &dir).await.unwrap();
    assert_eq!(audit_findings(&db, &model_of(&edited)).await, "");
    db.drop_db().await;
}

#[tokio::test]
async fn two_appliers_at_once_apply_each_file_once() {
    let db = TestDb::empty().await;
    let out = tempfile::tempdir().unwrap();
    let dir = generate_into(out.path(), &model_of(&base_policy()), false);
    let migrations = read_migrations(&dir).unwrap();
    let lock = cluster_lock().await;
    let mut first = connect(db.url()).await.unwrap();
    let mut second = connect(db.url()).await.unwrap();
    let (a, b) = tokio::join!(
        apply(&mut first, &migrations),
        apply(&mut second, &migrations)
    );
    lock.close().await.unwrap();
    let (a, b) = (a.unwrap(), b.unwrap());
    assert_eq!(a.len() + b.len(), migrations.len(), "{a:?} {b:?}");
    assert!(
        a.is_empty() || b.is_empty(),
        "the lock serialises the appliers"
    );
    let recorded: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
        "SELECT count(*) FROM {HISTORY_TABLE}"
    )))
    .fetch_one(db.admin_pool())
    .await
    .unwrap();
    assert_eq!(recorded as usize, migrations.len());
    db.drop_db().await;
}

#[tokio::test]
async fn every_kind_of_change_applies_on_top_of_the_baseline_and_audits_clean() {
    let base = base_policy();
    for case in cases() {
        let db = TestDb::empty().await;
        let out = tempfile::tempdir().unwrap();
        let dir = generate_into(out.path(), &model_of(&base), false);
        let baseline = apply_dir(db.url(), &dir).await.unwrap();
        insert_fixture_rows(&db).await;

        let edited = model_of(&(case.edit)(&base));
        generate_into(out.path(), &edited, case.data_loss);
        let applied = apply_dir(db.url(), &dir)
            .await
            .unwrap_or_else(|e| panic!("{}: {e}", case.name));
        assert_eq!(applied.len(), case.files, "{}: {applied:?}", case.name);
        assert!(applied[0].starts_with(&format!("{:04}_", baseline.len() + 1)));
        assert_eq!(
            audit_findings(&db, &edited).await,
            "",
            "{}: the database differs from a fresh one",
            case.name
        );
        let documents: i64 = sqlx::query_scalar("SELECT count(*) FROM documents")
            .fetch_one(db.admin_pool())
            .await
            .unwrap();
        assert_eq!(documents, 3, "{}: rows kept", case.name);
        db.drop_db().await;
    }
}

#[tokio::test]
async fn a_chain_of_changes_applies_migration_after_migration() {
    let db = TestDb::empty().await;
    let out = tempfile::tempdir().unwrap();
    let mut text = base_policy();
    let dir = generate_into(out.path(), &model_of(&text), false);
    apply_dir(db.url(), &dir).await.unwrap();
    insert_fixture_rows(&db).await;
    for name in [
        "new_nullable_column",
        "new_table",
        // before new_index, whose edit touches the same table block
        "new_role_used_by_a_rule",
        "new_index",
        "changed_min_role",
        "dropped_column",
    ] {
        let case = cases().into_iter().find(|c| c.name == name).unwrap();
        text = (case.edit)(&text);
        let model = model_of(&text);
        generate_into(out.path(), &model, case.data_loss);
        apply_dir(db.url(), &dir)
            .await
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(audit_findings(&db, &model).await, "", "after {name}");
    }
    let names = file_names(&dir);
    let last = names.last().unwrap();
    assert!(last.contains("drop_source_uri"), "{names:?}");
    let mut conn = connect(db.url()).await.unwrap();
    let report = status(&mut conn, &read_migrations(&dir).unwrap())
        .await
        .unwrap();
    assert_eq!(report.pending(), 0);
    assert!(!report.has_problems());
    conn.close().await.unwrap();
    db.drop_db().await;
}

#[tokio::test]
async fn a_dry_run_past_a_new_role_explains_the_enum_restriction() {
    let db = TestDb::empty().await;
    let out = tempfile::tempdir().unwrap();
    let base = base_policy();
    let dir = generate_into(out.path(), &model_of(&base), false);
    apply_dir(db.url(), &dir).await.unwrap();
    let case = cases()
        .into_iter()
        .find(|c| c.name == "new_role_used_by_a_rule")
        .unwrap();
    generate_into(out.path(), &model_of(&(case.edit)(&base)), false);
    let migrations = read_migrations(&dir).unwrap();
    let roles_file = migrations[migrations.len() - 2].file_name();

    let mut conn = connect(db.url()).await.unwrap();
    let err = dry_run(&mut conn, &migrations).await.unwrap_err();
    let message = err.to_string();
    assert!(matches!(err, MigrateError::Failed { .. }), "{message}");
    assert!(
        message.contains(&format!("apply up to {roles_file} first")),
        "{message}"
    );
    // The dry run rolled back: the role is not in the enum.
    let labels: Vec<String> = sqlx::query_scalar(
        "SELECT enumlabel::text FROM pg_enum WHERE enumtypid = 'tenancy.project_role'::regtype",
    )
    .fetch_all(db.admin_pool())
    .await
    .unwrap();
    assert!(!labels.contains(&"reviewer".to_owned()), "{labels:?}");
    conn.close().await.unwrap();

    // Applying (each file its own transaction) works.
    let lock = cluster_lock().await;
    let mut conn = connect(db.url()).await.unwrap();
    assert_eq!(apply(&mut conn, &migrations).await.unwrap().len(), 2);
    lock.close().await.unwrap();
    conn.close().await.unwrap();
    db.drop_db().await;
}
