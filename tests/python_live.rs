//! The Python twin of the RAG example (`examples/rag/python`, docs/python.md), run from cargo:
//!
//! * `python_static_checks`: the shared context vectors and `mypy --strict` on the generated
//!   package and on `tests/python/mypy_cases` (must-pass and must-fail snippets);
//! * `python_live_isolation`: pytest against a fresh migrated database
//!   (`tests/python/test_live.py`): the models match the database, tenant A's Python session
//!   never sees tenant B's rows, a viewer cannot write, no context gives no rows, and a
//!   Rust-minted and a Python-minted context are interchangeable (checked on both sides here).
//!
//! * `python_keyset_pages_seek`: pytest (`tests/python/test_keyset.py`): the repositories'
//!   keyset pages equal one ORDER BY and a late page is an index scan from the cursor.
//!
//! * `python_alembic_on_an_empty_database`: `alembic upgrade head` with the generated revision
//!   chain migrates an empty database that then audits clean against the model, and a second
//!   run does nothing.
//!
//! The virtualenv comes from `scripts/python-venv` (pinned versions, built once). When it cannot
//! be built the tests fail: they never skip.

#![allow(clippy::expect_used, clippy::unwrap_used)] // tests panic on broken fixtures

use std::path::PathBuf;
use std::process::Command;

use sqlx::Connection;
use tenancy_generated::roles::Viewer;
use tenancy_runtime::{ProjectId, Tenancy, TenantId, UserId};
use tenancy_tests::{install_test_key, repo_root, TestDb, TwoTenants, MIGRATION_LOCK_KEY};

/// The venv's python, built by `scripts/python-venv` (which fails loudly).
fn venv_python() -> PathBuf {
    let out = Command::new(repo_root().join("scripts/python-venv"))
        .output()
        .expect("run scripts/python-venv");
    assert!(
        out.status.success(),
        "scripts/python-venv failed (the Python tests need it):\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    PathBuf::from(String::from_utf8(out.stdout).unwrap().trim())
}

/// Runs pytest on `files` (relative to tests/python) with `env`; panics with its output on failure.
fn pytest(files: &[&str], env: &[(&str, String)]) {
    let python = venv_python();
    let dir = repo_root().join("tests/python");
    let out = Command::new(python)
        .args([
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            "-W",
            "error::pytest.PytestUnraisableExceptionWarning",
        ])
        .args(files)
        .current_dir(&dir)
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .output()
        .expect("run pytest");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    eprintln!("{text}");
    assert!(out.status.success(), "pytest failed:\n{text}");
    assert!(!text.contains(" skipped"), "pytest skipped tests:\n{text}");
}

#[test]
fn python_static_checks() {
    pytest(&["test_vectors.py", "test_mypy.py"], &[]);
}

#[tokio::test]
async fn python_live_isolation() {
    let db = TestDb::fresh().await;
    let two = TwoTenants::seed(&db, 5, 3).await;
    let tenancy = Tenancy::with_config(db.app_pool().clone(), tenancy_generated::config());
    tenancy
        .check()
        .await
        .expect("the Rust runtime's startup check");
    let ctx = tenancy
        .authorize(UserId::new(two.alice), TenantId::new(two.tenant_a))
        .await
        .unwrap();
    let scope = ctx
        .project(ProjectId::new(two.a1))
        .unwrap()
        .require::<Viewer>()
        .unwrap();
    // Sent by pytest after its own start-up and the tests before it: a token that outlives
    // them (the default 30 s expired on a loaded machine).
    let mut long_lived = tenancy_generated::config();
    long_lived.token_lifetime = std::time::Duration::from_secs(900);
    let rust_statement = Tenancy::with_config(db.app_pool().clone(), long_lived)
        .begin_statement(&scope)
        .unwrap();
    let rust_claims = tenancy.context_claims(&scope).unwrap();

    let python_out = std::env::temp_dir().join(format!(
        "tenancy-python-statement-{}-{}",
        std::process::id(),
        db.name()
    ));
    let ids = |v: &[uuid::Uuid]| v.iter().map(ToString::to_string).collect::<Vec<_>>();
    let fixture = serde_json::json!({
        "tenant_a": two.tenant_a.to_string(),
        "a1": two.a1.to_string(),
        "tenant_b": two.tenant_b.to_string(),
        "b1": two.b1.to_string(),
        "alice": two.alice.to_string(),
        "bob": two.bob.to_string(),
        "a_docs": ids(&two.a_docs),
        "b_docs": ids(&two.b_docs),
    });
    let key =
        std::env::var("TENANCY_CONTEXT_KEY").expect("TENANCY_CONTEXT_KEY (.cargo/config.toml)");
    pytest(
        &["test_live.py"],
        &[
            ("TENANCY_TEST_APP_URL", db.app_url().to_owned()),
            ("TENANCY_TEST_ADMIN_URL", db.url().to_owned()),
            ("TENANCY_TEST_FIXTURE", fixture.to_string()),
            ("TENANCY_TEST_RUST_STATEMENT", rust_statement),
            ("TENANCY_TEST_RUST_CLAIMS", rust_claims),
            ("TENANCY_TEST_PYTHON_OUT", python_out.display().to_string()),
            ("TENANCY_CONTEXT_KEY", key),
        ],
    );

    // The Python-minted statement opens a transaction the Rust side reads through: exactly
    // tenant A's rows, including the one the Python repositories committed.
    let python_statement = std::fs::read_to_string(&python_out).expect("the Python statement");
    let _ = std::fs::remove_file(&python_out);
    assert!(python_statement.starts_with("BEGIN; /*"));
    let mut conn = sqlx::PgConnection::connect(db.app_url()).await.unwrap();
    let mut tx = conn
        .begin_with(sqlx::AssertSqlSafe(python_statement))
        .await
        .unwrap();
    let rows: Vec<(uuid::Uuid, String)> =
        sqlx::query_as("SELECT tenant_id, title FROM documents ORDER BY id")
            .fetch_all(&mut *tx)
            .await
            .unwrap();
    tx.rollback().await.unwrap();
    assert!(
        rows.iter().all(|(tenant, _)| *tenant == two.tenant_a),
        "{rows:?}"
    );
    assert!(
        rows.iter().any(|(_, title)| title == "written by python"),
        "{rows:?}"
    );
    // A's seeded documents plus the two the Python suite committed (sync and async).
    assert_eq!(rows.len(), two.a_docs.len() + 2, "{rows:?}");

    // And through the Rust runtime's own transaction.
    let mut tx = tenancy.begin(&scope).await.unwrap();
    let titles: Vec<String> = sqlx::query_scalar("SELECT title FROM documents")
        .fetch_all(tx.connection())
        .await
        .unwrap();
    tx.commit().await.unwrap();
    assert!(titles.iter().any(|t| t == "written by python"));
    db.drop_db().await;
}

/// Keyset pages of the Python repositories (`tests/python/test_keyset.py`, its own tenant on a
/// fresh migrated database): walking every page of a one-project and of a several-project
/// scope gives exactly one ORDER BY's rows (across page and project boundaries, sync and
/// async), and a late page's statement, captured from the engine and EXPLAINed in the same
/// scoped session, is an index scan whose condition starts at the cursor (both branches for
/// several projects), reading about what the first page reads.
#[tokio::test]
async fn python_keyset_pages_seek() {
    let db = TestDb::fresh().await;
    let key =
        std::env::var("TENANCY_CONTEXT_KEY").expect("TENANCY_CONTEXT_KEY (.cargo/config.toml)");
    pytest(
        &["test_keyset.py"],
        &[
            ("TENANCY_TEST_APP_URL", db.app_url().to_owned()),
            ("TENANCY_TEST_ADMIN_URL", db.url().to_owned()),
            ("TENANCY_CONTEXT_KEY", key),
        ],
    );
    db.drop_db().await;
}

/// `postgres://...` -> `postgresql+psycopg://...`.
fn sqlalchemy_url(url: &str) -> String {
    let rest = url
        .strip_prefix("postgresql://")
        .or_else(|| url.strip_prefix("postgres://"))
        .unwrap_or(url);
    format!("postgresql+psycopg://{rest}")
}

/// Runs `alembic -c examples/rag/python/alembic.ini <args>` against `url`; returns stdout.
fn alembic(url: &str, args: &[&str]) -> String {
    let out = Command::new(venv_python())
        .args(["-m", "alembic", "-c"])
        .arg(repo_root().join("examples/rag/python/alembic.ini"))
        .args(args)
        .env("TENANCY_MIGRATION_URL", sqlalchemy_url(url))
        .output()
        .expect("run alembic");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "alembic {args:?} failed:\n{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

#[tokio::test]
async fn python_alembic_on_an_empty_database() {
    let db = TestDb::empty().await;
    venv_python();
    {
        // Roles are cluster-wide: migrate under the lock the other tests' migrations take.
        let admin = tenancy_tests::admin_url().await;
        let mut lock = sqlx::PgConnection::connect(&admin).await.unwrap();
        sqlx::query("SELECT pg_catalog.pg_advisory_lock($1)")
            .bind(MIGRATION_LOCK_KEY)
            .execute(&mut lock)
            .await
            .unwrap();
        let url = db.url().to_owned();
        tokio::task::spawn_blocking(move || alembic(&url, &["upgrade", "head"]))
            .await
            .unwrap();
        lock.close().await.unwrap();
    }
    let url = db.url().to_owned();
    let current = tokio::task::spawn_blocking(move || {
        // A second run has nothing to do.
        alembic(&url, &["upgrade", "head"]);
        alembic(&url, &["current"])
    })
    .await
    .unwrap();
    // The head is the last generated migration's number.
    let last =
        tenancy_tests::migration_files(&repo_root().join("examples/rag/generated/migrations"))
            .unwrap()
            .last()
            .and_then(|f| f.file_name().map(|n| n.to_string_lossy()[..4].to_owned()))
            .unwrap();
    assert!(current.contains(&format!("{last} (head)")), "{current}");

    let snapshot =
        std::fs::read_to_string(repo_root().join("examples/rag/generated/model.snapshot.json"))
            .unwrap();
    let model = tenancy_core::snapshot::Snapshot::from_json(&snapshot)
        .unwrap()
        .model;
    // The key is installed after the migrations, as `tenancy key install` would (TA046 otherwise).
    let mut conn = sqlx::PgConnection::connect(db.url()).await.unwrap();
    install_test_key(&mut conn).await.unwrap();
    conn.close().await.unwrap();
    let report = tenancy_audit::audit(db.admin_pool(), &model).await.unwrap();
    assert!(report.is_clean(), "{}", report.to_text());

    // The migrated database works: the app role is refused without a context, and sees its
    // rows with one.
    let two = TwoTenants::seed(&db, 2, 1).await;
    let tenancy = Tenancy::with_config(db.app_pool().clone(), tenancy_generated::config());
    tenancy.check().await.unwrap();
    let scope = tenancy
        .authorize(UserId::new(two.alice), TenantId::new(two.tenant_a))
        .await
        .unwrap()
        .project(ProjectId::new(two.a1))
        .unwrap()
        .require::<Viewer>()
        .unwrap();
    let mut tx = tenancy.begin(&scope).await.unwrap();
    let count: i64 = sqlx::query_scalar("SELECT count(*) FROM documents")
        .fetch_one(tx.connection())
        .await
        .unwrap();
    tx.commit().await.unwrap();
    assert_eq!(count, 2);
    db.drop_db().await;
}
