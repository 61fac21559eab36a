//! Planner statistics as an id oracle (issue 18, item 3; docs/security.md, "Planner
//! statistics"), against a caller who runs plain SQL as the application role under tenant A's
//! genuine context.
//!
//! `pg_stats` hides the statistics of tables under row-level security from the app role, but
//! the planner still estimates leakproof operators (`uuid <=`) from the most-common-value lists
//! and histograms ANALYZE collected over every tenant's rows, and `EXPLAIN` prints the
//! estimate. The attack below is a binary search for every step of the estimate of
//! `col <= X`: each step is a value the statistics hold. It runs on a database migrated up to
//! `0004` (the schema before the fix) and ANALYZEd, where it must recover hidden tenant,
//! project and document ids (the control), then on the same database after the statistics
//! upgrade `0005_core_statistics.sql` and another ANALYZE, where it must recover nothing.

use std::collections::BTreeSet;

use serde_json::Value;
use sqlx::{Connection, Executor, PgConnection};
use tenancy_tests::{migration_files, migrations_dir, set_context, TestDb};
use uuid::Uuid;

/// Hidden ids the attacker should not learn: every tenant, project and document outside A.
struct Hidden {
    tenants: BTreeSet<Uuid>,
    projects: BTreeSet<Uuid>,
    documents: BTreeSet<Uuid>,
}

/// 8 tenants x 2 projects x 100 documents x 10 chunks (16,000 chunks), random ids, inserted as
/// the superuser; `alice` owns tenant A's first project. Returns (A, A's project, alice).
async fn seed(db: &TestDb) -> (Uuid, Uuid, Uuid, Hidden) {
    sqlx::raw_sql(
        "INSERT INTO tenants (id, name, slug) \
           SELECT gen_random_uuid(), 't' || i, 't' || i FROM generate_series(1, 8) AS i;
         INSERT INTO projects (tenant_id, id, name, slug) \
           SELECT t.id, gen_random_uuid(), 'p', 'p' || j FROM tenants AS t, generate_series(1, 2) AS j;
         INSERT INTO documents (tenant_id, project_id, title, content_hash, created_by) \
           SELECT p.tenant_id, p.id, 'd', 'h' || k, gen_random_uuid() \
           FROM projects AS p, generate_series(1, 100) AS k;
         INSERT INTO chunks (tenant_id, project_id, document_id, ordinal, content, token_count) \
           SELECT tenant_id, project_id, id, o, 'c', 1 FROM documents, generate_series(1, 10) AS o;",
    )
    .execute(db.admin_pool())
    .await
    .unwrap();
    let (tenant_a, a1): (Uuid, Uuid) =
        sqlx::query_as("SELECT tenant_id, id FROM projects ORDER BY tenant_id, id LIMIT 1")
            .fetch_one(db.admin_pool())
            .await
            .unwrap();
    let alice = Uuid::new_v4();
    sqlx::query(
        "INSERT INTO user_project_roles (tenant_id, project_id, user_id, role) \
         VALUES ($1, $2, $3, 'owner')",
    )
    .bind(tenant_a)
    .bind(a1)
    .bind(alice)
    .execute(db.admin_pool())
    .await
    .unwrap();
    let ids = |sql: &'static str| async move {
        sqlx::query_scalar::<_, Uuid>(sql)
            .bind(tenant_a)
            .fetch_all(db.admin_pool())
            .await
            .unwrap()
            .into_iter()
            .collect::<BTreeSet<Uuid>>()
    };
    let hidden = Hidden {
        tenants: ids("SELECT id FROM tenants WHERE id <> $1").await,
        projects: ids("SELECT id FROM projects WHERE tenant_id <> $1").await,
        documents: ids("SELECT id FROM documents WHERE tenant_id <> $1").await,
    };
    assert_eq!(hidden.tenants.len(), 7);
    assert_eq!(hidden.projects.len(), 14);
    (tenant_a, a1, alice, hidden)
}

/// The attacker: an app-role connection inside a transaction carrying tenant A's genuine
/// context (alice, owner of A1).
async fn attacker(db: &TestDb, tenant_a: Uuid, a1: Uuid, alice: Uuid) -> PgConnection {
    let mut conn = PgConnection::connect(db.app_url()).await.unwrap();
    conn.execute("BEGIN").await.unwrap();
    conn.execute(sqlx::AssertSqlSafe(set_context(
        &tenant_a.to_string(),
        &alice.to_string(),
        &format!("{a1}:owner"),
    )))
    .await
    .unwrap();
    // The context is genuine: A's own rows are readable.
    let own: i64 = sqlx::query_scalar("SELECT count(*) FROM chunks")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    assert_eq!(own, 1000);
    conn
}

/// The planner's row estimate for the scan of `table` in `SELECT 1 FROM table WHERE col <= x`.
async fn estimate(conn: &mut PgConnection, table: &str, column: &str, x: u128) -> f64 {
    let plan: Value = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
        "EXPLAIN (FORMAT JSON) SELECT 1 FROM {table} WHERE {column} <= '{}'::uuid",
        Uuid::from_u128(x)
    )))
    .fetch_one(&mut *conn)
    .await
    .unwrap();
    scan_rows(&plan[0]["Plan"], table).unwrap_or_else(|| panic!("no scan of {table} in {plan:#}"))
}

fn scan_rows(node: &Value, table: &str) -> Option<f64> {
    if node.get("Relation Name").and_then(Value::as_str) == Some(table) {
        return node["Plan Rows"].as_f64();
    }
    node.get("Plans")?
        .as_array()?
        .iter()
        .find_map(|child| scan_rows(child, table))
}

/// Every value where the estimate of `column <= X` steps up, found by binary search (at most
/// 64 values, 128 EXPLAINs each), and the number of EXPLAINs sent.
async fn steps(conn: &mut PgConnection, table: &str, column: &str) -> (Vec<Uuid>, usize) {
    let mut found = Vec::new();
    let mut explains = 0;
    let mut lo: u128 = 0;
    while found.len() < 64 {
        let base = estimate(conn, table, column, lo).await;
        explains += 2;
        if estimate(conn, table, column, u128::MAX).await == base {
            break;
        }
        // The smallest x in (lo, MAX] whose estimate differs from lo's.
        let (mut low, mut high) = (lo + 1, u128::MAX);
        while low < high {
            let mid = low + (high - low) / 2;
            explains += 1;
            if estimate(conn, table, column, mid).await != base {
                high = mid;
            } else {
                low = mid + 1;
            }
        }
        found.push(Uuid::from_u128(low));
        if low == u128::MAX {
            break;
        }
        lo = low;
    }
    (found, explains)
}

/// The hidden ids the attack recovers from `chunks.tenant_id`, `chunks.project_id` and
/// `documents.id`.
async fn attack(conn: &mut PgConnection, hidden: &Hidden) -> (usize, usize, usize) {
    let mut hits = [0usize; 3];
    for (i, (table, column, ids)) in [
        ("chunks", "tenant_id", &hidden.tenants),
        ("chunks", "project_id", &hidden.projects),
        ("documents", "id", &hidden.documents),
    ]
    .into_iter()
    .enumerate()
    {
        let (found, explains) = steps(conn, table, column).await;
        hits[i] = found.iter().filter(|id| ids.contains(id)).count();
        eprintln!(
            "{table}.{column}: {} steps in {explains} EXPLAINs, {} of them hidden ids",
            found.len(),
            hits[i]
        );
    }
    (hits[0], hits[1], hits[2])
}

/// Equality probes: the estimate for a hidden tenant against the estimate for an unknown UUID.
async fn equality_estimates(conn: &mut PgConnection, hidden: &Hidden) -> (f64, f64) {
    let hidden_id = *hidden.tenants.iter().next().unwrap();
    let mut out = [0.0; 2];
    for (i, id) in [hidden_id, Uuid::new_v4()].into_iter().enumerate() {
        let plan: Value = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
            "EXPLAIN (FORMAT JSON) SELECT 1 FROM chunks WHERE tenant_id = '{id}'::uuid"
        )))
        .fetch_one(&mut *conn)
        .await
        .unwrap();
        out[i] = scan_rows(&plan[0]["Plan"], "chunks").unwrap();
    }
    (out[0], out[1])
}

#[tokio::test]
async fn planner_estimates_recover_no_hidden_id() {
    let db = TestDb::empty().await;
    let files = migration_files(&migrations_dir()).unwrap();
    let upgrade = files
        .iter()
        .position(|f| f.to_string_lossy().ends_with("_core_statistics.sql"))
        .expect("a core_statistics migration");
    let before = TempDir::with(&files[..upgrade]);
    db.apply_migrations(before.path()).await.unwrap();
    let (tenant_a, a1, alice, hidden) = seed(&db).await;
    sqlx::raw_sql("ANALYZE")
        .execute(db.admin_pool())
        .await
        .unwrap();

    // Control: on the schema before the fix the attack recovers hidden ids.
    let mut conn = attacker(&db, tenant_a, a1, alice).await;
    let (tenants, projects, documents) = attack(&mut conn, &hidden).await;
    assert!(
        tenants >= 1 && projects >= 1,
        "control: the attack was expected to recover hidden tenant and project ids, \
         got {tenants} tenants, {projects} projects"
    );
    eprintln!(
        "before the fix: {tenants}/7 hidden tenants, {projects}/14 hidden projects, \
         {documents} hidden documents recovered"
    );
    let (hidden_eq, unknown_eq) = equality_estimates(&mut conn, &hidden).await;
    assert_ne!(
        hidden_eq, unknown_eq,
        "control: the MCV list tells a tenant id"
    );
    conn.execute("ROLLBACK").await.unwrap();
    conn.close().await.unwrap();

    // The fix, on the database that was ANALYZEd before it, then ANALYZE again.
    let upgrade_dir = TempDir::with(&files[upgrade..]);
    db.apply_migrations(upgrade_dir.path()).await.unwrap();
    let left: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM pg_catalog.pg_statistic \
         WHERE (stakind1, stakind2, stakind3, stakind4, stakind5) <> (0, 0, 0, 0, 0) \
           AND starelid IN ('tenants'::regclass, 'projects'::regclass, \
           'user_project_roles'::regclass, 'documents'::regclass, 'chunks'::regclass, \
           'queries'::regclass, 'responses'::regclass, 'assertions'::regclass, \
           'tenancy.audit_log'::regclass)",
    )
    .fetch_one(db.admin_pool())
    .await
    .unwrap();
    assert_eq!(left, 0, "statistics stored before the upgrade were kept");
    sqlx::raw_sql("ANALYZE")
        .execute(db.admin_pool())
        .await
        .unwrap();
    let left: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM pg_catalog.pg_statistic \
         WHERE (stakind1, stakind2, stakind3, stakind4, stakind5) <> (0, 0, 0, 0, 0) \
           AND starelid IN ('chunks'::regclass, 'documents'::regclass, 'tenants'::regclass)",
    )
    .fetch_one(db.admin_pool())
    .await
    .unwrap();
    assert_eq!(left, 0, "ANALYZE collected statistics again");
    // What is stored is the generator's value-free estimates of the scope columns.
    let stored: Vec<(String, String, f32)> = sqlx::query_as(
        "SELECT c.relname::text, a.attname::text, s.stadistinct FROM pg_catalog.pg_statistic s \
         JOIN pg_catalog.pg_class c ON c.oid = s.starelid \
         JOIN pg_catalog.pg_attribute a ON a.attrelid = s.starelid AND a.attnum = s.staattnum \
         WHERE c.relname IN ('chunks', 'documents', 'tenants') ORDER BY 1, 2",
    )
    .fetch_all(db.admin_pool())
    .await
    .unwrap();
    assert_eq!(
        stored,
        [
            ("chunks".to_owned(), "project_id".to_owned(), 1.0),
            ("chunks".to_owned(), "tenant_id".to_owned(), 10.0),
            ("documents".to_owned(), "project_id".to_owned(), 1.0),
            ("documents".to_owned(), "tenant_id".to_owned(), 10.0)
        ]
    );

    let mut conn = attacker(&db, tenant_a, a1, alice).await;
    let recovered = attack(&mut conn, &hidden).await;
    assert_eq!(recovered, (0, 0, 0), "hidden ids recovered after the fix");
    for (table, column) in [
        ("chunks", "tenant_id"),
        ("chunks", "project_id"),
        ("documents", "id"),
    ] {
        let (found, _) = steps(&mut conn, table, column).await;
        assert!(
            found.is_empty(),
            "{table}.{column}: the estimate still steps at {found:?}"
        );
    }
    let (hidden_eq, unknown_eq) = equality_estimates(&mut conn, &hidden).await;
    assert_eq!(
        hidden_eq, unknown_eq,
        "a hidden tenant id and an unknown UUID must get the same estimate"
    );
    conn.execute("ROLLBACK").await.unwrap();
    conn.close().await.unwrap();
    db.drop_db().await;
}

/// A fresh database (every migration, the baseline included) collects no statistics on any
/// column of a tenant-owned table: ANALYZE stores no value for them in `pg_statistic` (only
/// the generator's value-free `n_distinct` of the scope columns), and every such column has
/// statistics target 0. The global table keeps its statistics (and the key
/// table, which no tenant reads, is not counted).
#[tokio::test]
async fn a_fresh_schema_collects_no_statistics_on_tenant_owned_tables() {
    let db = TestDb::fresh().await;
    let (_, _, _, _) = seed(&db).await;
    sqlx::raw_sql(
        "INSERT INTO embedding_models (name, dimensions) VALUES ('m1', 384), ('m2', 768); ANALYZE",
    )
    .execute(db.admin_pool())
    .await
    .unwrap();
    let collecting: Vec<String> = sqlx::query_scalar(
        "SELECT c.relname || '.' || a.attname FROM pg_catalog.pg_class c \
         JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace \
         JOIN pg_catalog.pg_attribute a ON a.attrelid = c.oid \
         WHERE c.relkind = 'r' AND c.relrowsecurity AND n.nspname IN ('public', 'tenancy') \
           AND c.relname <> 'context_keys' \
           AND a.attnum > 0 AND NOT a.attisdropped AND a.attstattarget IS DISTINCT FROM 0 \
         ORDER BY 1",
    )
    .fetch_all(db.admin_pool())
    .await
    .unwrap();
    assert!(collecting.is_empty(), "{collecting:?}");
    let stored: Vec<String> = sqlx::query_scalar(
        "SELECT DISTINCT c.relname::text FROM pg_catalog.pg_statistic s \
         JOIN pg_catalog.pg_class c ON c.oid = s.starelid \
         JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace \
         WHERE (stakind1, stakind2, stakind3, stakind4, stakind5) <> (0, 0, 0, 0, 0) AND \
         n.nspname IN ('public', 'tenancy') AND c.relname <> 'context_keys' ORDER BY 1",
    )
    .fetch_all(db.admin_pool())
    .await
    .unwrap();
    assert_eq!(stored, ["embedding_models"]);
    db.drop_db().await;
}

struct TempDir(std::path::PathBuf);

impl TempDir {
    fn with(files: &[std::path::PathBuf]) -> TempDir {
        let dir = std::env::temp_dir().join(format!("tenancy-stats-{}", Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir).unwrap();
        for file in files {
            std::fs::copy(file, dir.join(file.file_name().unwrap())).unwrap();
        }
        TempDir(dir)
    }

    fn path(&self) -> &std::path::Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
