//! Context lifecycle as the application role: no context, the `''` PostgreSQL leaves after a
//! transaction, malformed values, well-formed forged values (read by position, bounded by one
//! tenant), one pooled connection reused by several contexts, savepoints, and prepared
//! statements / generic plans that must never keep an earlier tenant's rows.
//!
//! The context is the one setting `tenancy.context = 'tenant;user;{viewer+};{editor+};..'`
//! (docs/context.md), set here with raw SQL as an attacker or a hand-written query would.
//!
//! World: tenants A (project A1, 3 documents) and B (project B1, 2 documents); `alice` owns A1,
//! `bob` owns B1. Rows are identified by their document ids, compared as sorted sets.

use sqlx::postgres::{PgConnection, PgPoolOptions};
use sqlx::{Connection, Executor, PgPool};
use tenancy_generated::roles::Viewer;
use tenancy_generated::{DocumentFilter, DocumentPage, Documents};
use tenancy_runtime::{ProjectId, Tenancy, TenantId, UserId};
use tenancy_tests::{context_value, install_claims, set_context, TestDb};
use uuid::Uuid;

/// The test database and its two tenants (`w.tenant_a`, `w.a_docs`, ... through `Deref`).
struct World {
    db: TestDb,
    tenants: tenancy_tests::TwoTenants,
}

impl std::ops::Deref for World {
    type Target = tenancy_tests::TwoTenants;
    fn deref(&self) -> &Self::Target {
        &self.tenants
    }
}

const SCOPED_TABLES: [&str; 8] = [
    "tenants",
    "projects",
    "user_project_roles",
    "documents",
    "chunks",
    "queries",
    "responses",
    "assertions",
];

impl World {
    async fn new() -> World {
        let db = TestDb::fresh().await;
        let tenants = tenancy_tests::TwoTenants::seed(&db, 3, 2).await;
        World { db, tenants }
    }

    /// The `SET LOCAL` of alice's context in A (no `BEGIN`).
    fn set_a(&self) -> String {
        set_context(
            &self.tenant_a.to_string(),
            &self.alice.to_string(),
            &format!("{}:owner", self.a1),
        )
    }

    /// The value of bob's context in B.
    fn context_b(&self) -> String {
        context_value(
            &self.tenant_b.to_string(),
            &self.bob.to_string(),
            &format!("{}:owner", self.b1),
        )
    }

    fn set_b(&self) -> String {
        install_claims(&self.context_b())
    }

    fn tenancy(&self, pool: &PgPool) -> Tenancy {
        Tenancy::with_config(pool.clone(), tenancy_generated::config())
    }
}

/// The document ids visible on `conn`, sorted (a prepared, cached statement).
async fn doc_ids(conn: &mut PgConnection) -> Vec<Uuid> {
    sqlx::query_scalar("SELECT id FROM documents ORDER BY id")
        .fetch_all(&mut *conn)
        .await
        .unwrap()
}

async fn exec(conn: &mut PgConnection, sql: &str) {
    sqlx::raw_sql(sqlx::AssertSqlSafe(sql))
        .execute(&mut *conn)
        .await
        .unwrap();
}

fn sqlstate(err: &sqlx::Error) -> String {
    err.as_database_error()
        .and_then(|e| e.code())
        .map(|c| c.into_owned())
        .unwrap_or_else(|| format!("non-database error: {err}"))
}

/// The INSERT that every refused-write check tries: a document in A1.
async fn try_insert_into_a1(conn: &mut PgConnection, w: &World) -> Result<u64, String> {
    sqlx::query(
        "INSERT INTO documents (tenant_id, project_id, title, content_hash, created_by) \
         VALUES ($1, $2, 'x', gen_random_uuid()::text, $3)",
    )
    .bind(w.tenant_a)
    .bind(w.a1)
    .bind(w.alice)
    .execute(&mut *conn)
    .await
    .map(|r| r.rows_affected())
    .map_err(|e| sqlstate(&e))
}

async fn count_all(conn: &mut PgConnection) -> Vec<(String, i64)> {
    let mut counts = Vec::new();
    for table in SCOPED_TABLES {
        let n: i64 =
            sqlx::query_scalar(sqlx::AssertSqlSafe(format!("SELECT count(*) FROM {table}")))
                .fetch_one(&mut *conn)
                .await
                .unwrap();
        counts.push((table.to_owned(), n));
    }
    counts
}

fn zeros() -> Vec<(String, i64)> {
    SCOPED_TABLES.iter().map(|t| (t.to_string(), 0)).collect()
}

#[tokio::test]
async fn no_context_and_the_leftover_empty_value_see_nothing_and_write_nothing() {
    let w = World::new().await;
    let mut conn = PgConnection::connect(w.db.app_url()).await.unwrap();
    // Never set on this connection: current_setting(.., true) is NULL.
    let never: Option<String> =
        sqlx::query_scalar("SELECT current_setting('tenancy.context', true)")
            .fetch_one(&mut conn)
            .await
            .unwrap();
    assert_eq!(never, None);
    assert_eq!(count_all(&mut conn).await, zeros());
    assert_eq!(try_insert_into_a1(&mut conn, &w).await, Err("42501".into()));

    // Set in a committed transaction, and in a rolled-back one: '' afterwards, either way.
    let value_a = context_value(
        &w.tenant_a.to_string(),
        &w.alice.to_string(),
        &format!("{}:owner", w.a1),
    );
    for end in ["COMMIT", "ROLLBACK"] {
        exec(&mut conn, &format!("BEGIN; {}", w.set_a())).await;
        let inside: Option<String> = sqlx::query_scalar("SELECT tenancy.context_claims()")
            .fetch_one(&mut conn)
            .await
            .unwrap();
        assert_eq!(inside.as_deref(), Some(value_a.as_str()));
        assert_eq!(doc_ids(&mut conn).await, w.a_docs);
        exec(&mut conn, end).await;
        let left: Option<String> =
            sqlx::query_scalar("SELECT current_setting('tenancy.context', true)")
                .fetch_one(&mut conn)
                .await
                .unwrap();
        assert_eq!(left, Some(String::new()), "after {end}");
        // Outside a transaction (autocommit statements) and inside a new one without context.
        assert_eq!(
            count_all(&mut conn).await,
            zeros(),
            "autocommit after {end}"
        );
        assert_eq!(try_insert_into_a1(&mut conn, &w).await, Err("42501".into()));
        exec(&mut conn, "BEGIN").await;
        assert_eq!(count_all(&mut conn).await, zeros(), "new tx after {end}");
        exec(&mut conn, "COMMIT").await;
    }
    // The helpers say "no context" in the documented way.
    let helpers: (Option<Uuid>, Option<Uuid>, Vec<Uuid>) = sqlx::query_as(
        "SELECT tenancy.current_tenant_id(), tenancy.current_user_id(), tenancy.project_ids('viewer')",
    )
    .fetch_one(&mut conn)
    .await
    .unwrap();
    assert_eq!(helpers, (None, None, vec![]));
    conn.close().await.unwrap();
    w.db.drop_db().await;
}

/// What one context value gets from each probe of [`probe_value`]: the rows of
/// `SELECT id FROM documents`, the value of `SELECT count(*) FROM documents`, the rows of
/// `DELETE FROM documents RETURNING id`, the rows of `SELECT .. FROM user_project_roles`, and the
/// rows inserted by the INSERT into A1; or the SQLSTATE of the error.
type Probes = [Result<i64, String>; 5];

/// Runs every probe in its own transaction that sets `tenancy.context = 'value'` and is rolled
/// back. Also checks that a table holding no row of the tenant (chunks: the world has none)
/// answers nothing or the malformed-field error (22P02), never rows.
async fn probe_value(conn: &mut PgConnection, w: &World, value: &str) -> Probes {
    let begin = format!("BEGIN; {}", install_claims(value));
    let mut got = Vec::new();
    for sql in [
        "SELECT id FROM documents",
        "SELECT count(*) FROM documents",
        "DELETE FROM documents RETURNING id",
        "SELECT user_id FROM user_project_roles",
    ] {
        exec(conn, &begin).await;
        let result = if sql.contains("count(*)") {
            sqlx::query_scalar::<_, i64>(sqlx::AssertSqlSafe(sql))
                .fetch_one(&mut *conn)
                .await
                .map_err(|e| sqlstate(&e))
        } else {
            sqlx::query(sqlx::AssertSqlSafe(sql))
                .fetch_all(&mut *conn)
                .await
                .map(|rows| rows.len() as i64)
                .map_err(|e| sqlstate(&e))
        };
        exec(conn, "ROLLBACK").await;
        got.push(result);
    }
    exec(conn, &begin).await;
    let inserted = try_insert_into_a1(conn, w).await;
    exec(conn, "ROLLBACK").await;
    got.push(inserted.map(|n| n as i64));

    // No row of the tenant to check: still nothing, never rows.
    exec(conn, &begin).await;
    let empty = sqlx::query_scalar::<_, i64>("SELECT count(*) FROM chunks")
        .fetch_one(&mut *conn)
        .await
        .map_err(|e| sqlstate(&e));
    exec(conn, "ROLLBACK").await;
    assert!(
        matches!(empty, Ok(0)) || empty == Err("22P02".into()),
        "{value} / empty chunks: {empty:?}"
    );
    got.try_into().unwrap()
}

/// Shorthands for [`Probes`]: `rows(n)`, and the SQLSTATEs of a malformed field and of a
/// refused write.
fn rows(n: i64) -> Result<i64, String> {
    Ok(n)
}
fn raises() -> Result<i64, String> {
    Err("22P02".into())
}
fn refused() -> Result<i64, String> {
    Err("42501".into())
}
/// Either no row or the malformed-field error, whichever policy test PostgreSQL evaluates
/// first (both are safe: never a row).
fn nothing_or_raises() -> Result<i64, String> {
    Err("0 or 22P02".into())
}

/// Asserts that `got` is `want`, reading [`nothing_or_raises`] as either outcome.
fn assert_probes(got: &Probes, want: &Probes, label: &str, value: &str) {
    let agrees = got.iter().zip(want).all(|(got, want)| {
        got == want || (*want == nothing_or_raises() && (*got == rows(0) || *got == raises()))
    });
    assert!(
        agrees,
        "{label}: {value}
  got: {got:?}
 want: {want:?}"
    );
}

#[tokio::test]
async fn a_malformed_context_raises_instead_of_matching_nothing() {
    let w = World::new().await;
    let mut conn = PgConnection::connect(w.db.app_url()).await.unwrap();
    let (t, u, a1, other) = (w.tenant_a, w.alice, w.a1, Uuid::new_v4());
    // A good context for comparison: alice, owner of A1, sees A's 3 documents, may delete them
    // and insert into A1, and sees her own membership.
    let good = format!("{t};{u};{{{a1}}};{{{a1}}};{{{a1}}};{{{a1}}}");
    assert_eq!(
        good,
        context_value(&t.to_string(), &u.to_string(), &format!("{a1}:owner"))
    );
    let cases: Vec<(&str, String, Probes)> = vec![
        (
            "good",
            good.clone(),
            [rows(3), rows(3), rows(3), rows(1), rows(1)],
        ),
        // The tenant field is read by every policy: everything raises.
        (
            "tenant not a uuid",
            format!("not-a-uuid;{u};{{{a1}}};{{{a1}}};{{{a1}}};{{{a1}}}"),
            [raises(), raises(), raises(), raises(), raises()],
        ),
        (
            "tenant with a trailing space",
            format!("{t} ;{u};{{{a1}}};{{{a1}}};{{{a1}}};{{{a1}}}"),
            [raises(), raises(), raises(), raises(), raises()],
        ),
        // The user field is read by the membership policy (`.. OR user_id = current user`,
        // evaluated here because the context lists no project) and by the documents' stamp
        // trigger, which runs before the insert's policy check: the insert raises.
        (
            "user not a uuid",
            format!("{t};not-a-uuid"),
            [rows(0), rows(0), rows(0), raises(), raises()],
        ),
        // A bad viewer field: every read raises (DELETE .. RETURNING reads the row, so it
        // checks the viewer field too); the INSERT reads only the editor field.
        (
            "viewer field {not-a-uuid}",
            format!("{t};{u};{{not-a-uuid}};{{{a1}}};{{{a1}}};{{{a1}}}"),
            [raises(), raises(), raises(), raises(), rows(1)],
        ),
        (
            "viewer field unterminated {a1,other",
            format!("{t};{u};{{{a1},{other};{{{a1}}};{{{a1}}};{{{a1}}}"),
            [raises(), raises(), raises(), raises(), rows(1)],
        ),
        (
            "a bad entry next to a good one in every field",
            format!("{t};{u};{{{a1},nobody}};{{{a1},nobody}};{{{a1},nobody}};{{{a1},nobody}}"),
            [raises(), raises(), raises(), raises(), raises()],
        ),
        // The first design's `project:role` list is not an array: the reads raise, and the
        // missing editor field refuses the write. The DELETE's admin field is missing, so its
        // rule matches nothing whether or not the bad viewer field is evaluated.
        (
            "old project:role format",
            format!("{t};{u};{a1}:owner"),
            [raises(), raises(), nothing_or_raises(), raises(), refused()],
        ),
        (
            "bare uuids instead of arrays",
            format!("{t};{u};{a1};{a1};{a1};{a1}"),
            [raises(), raises(), raises(), raises(), raises()],
        ),
        // Fields are read by position only: a bad field raises in the statements whose
        // policies read it, and nowhere else.
        (
            "bad editor field",
            format!("{t};{u};{{{a1}}};{{not-a-uuid}}"),
            [rows(3), rows(3), rows(0), rows(1), raises()],
        ),
        (
            "bad admin field",
            format!("{t};{u};{{{a1}}};{{{a1}}};{{not-a-uuid}}"),
            [rows(3), rows(3), raises(), rows(1), rows(1)],
        ),
        (
            "bad field beyond the model's roles (never read)",
            format!("{good};{{not-a-uuid}}"),
            [rows(3), rows(3), rows(3), rows(1), rows(1)],
        ),
    ];
    for (label, value, want) in &cases {
        let got = probe_value(&mut conn, &w, value).await;
        assert_probes(&got, want, label, value);
    }
    // Nothing was deleted or inserted by any of them.
    let n: i64 = sqlx::query_scalar("SELECT count(*) FROM documents")
        .fetch_one(w.db.admin_pool())
        .await
        .unwrap();
    assert_eq!(n, 5);
    conn.close().await.unwrap();
    w.db.drop_db().await;
}

/// Well-formed values the runtime never sends, as raw SQL can set them (the context is not
/// signed, docs/security.md threat 2): each field grants exactly what its position says, and
/// nothing reaches beyond the one tenant of the tenant field.
#[tokio::test]
async fn forged_values_are_read_by_position_within_one_tenant() {
    let w = World::new().await;
    let mut conn = PgConnection::connect(w.db.app_url()).await.unwrap();
    let (t, u, a1, b1) = (w.tenant_a, w.alice, w.a1, w.b1);
    let cases: Vec<(&str, String, Probes)> = vec![
        (
            "empty tenant field, A1 at every level",
            format!(";{u};{{{a1}}};{{{a1}}};{{{a1}}};{{{a1}}}"),
            [rows(0), rows(0), rows(0), rows(0), refused()],
        ),
        // Not nested: the owner field alone grants nothing on documents (their rules ask for
        // viewer, editor and admin); alice still sees her own membership (by user).
        (
            "A1 in the owner field only",
            format!("{t};{u};{{}};{{}};{{}};{{{a1}}}"),
            [rows(0), rows(0), rows(0), rows(1), refused()],
        ),
        // The admin field without the viewer field: DELETE .. RETURNING needs both.
        (
            "A1 in the admin field only",
            format!("{t};{u};{{}};{{}};{{{a1}}}"),
            [rows(0), rows(0), rows(0), rows(1), refused()],
        ),
        // The editor field only: the INSERT's rule is editor, so it passes; no read does.
        (
            "A1 in the editor field only",
            format!("{t};{u};{{}};{{{a1}}}"),
            [rows(0), rows(0), rows(0), rows(1), rows(1)],
        ),
        // Another tenant's project at every level, in tenant A: nothing of B, nothing of A.
        (
            "B1 at every level in tenant A",
            format!("{t};{u};{{{b1}}};{{{b1}}};{{{b1}}};{{{b1}}}"),
            [rows(0), rows(0), rows(0), rows(1), refused()],
        ),
        // Alice and B1 in tenant B: she is no member there, yet sees B's rows. This is the
        // documented limit: a session running raw SQL can claim any membership of any tenant.
        (
            "alice claims B1 as owner in tenant B",
            format!("{};{u};{{{b1}}};{{{b1}}};{{{b1}}};{{{b1}}}", w.tenant_b),
            [rows(2), rows(2), rows(2), rows(1), refused()],
        ),
    ];
    for (label, value, want) in &cases {
        let got = probe_value(&mut conn, &w, value).await;
        assert_probes(&got, want, label, value);
    }
    let n: i64 = sqlx::query_scalar("SELECT count(*) FROM documents")
        .fetch_one(w.db.admin_pool())
        .await
        .unwrap();
    assert_eq!(n, 5);
    conn.close().await.unwrap();
    w.db.drop_db().await;
}

#[tokio::test]
async fn one_pooled_connection_a_then_nothing_then_b() {
    let w = World::new().await;
    let pool = PgPoolOptions::new()
        .max_connections(1)
        .connect(w.db.app_url())
        .await
        .unwrap();
    let tenancy = w.tenancy(&pool);
    let scope_a = tenancy
        .authorize(UserId::new(w.alice), TenantId::new(w.tenant_a))
        .await
        .unwrap()
        .project(ProjectId::new(w.a1))
        .unwrap()
        .require::<Viewer>()
        .unwrap();
    let scope_b = tenancy
        .authorize(UserId::new(w.bob), TenantId::new(w.tenant_b))
        .await
        .unwrap()
        .project(ProjectId::new(w.b1))
        .unwrap()
        .require::<Viewer>()
        .unwrap();
    let backend_pid = |pool: PgPool| async move {
        let pid: i32 = sqlx::query_scalar("SELECT pg_backend_pid()")
            .fetch_one(&pool)
            .await
            .unwrap();
        pid
    };
    let pid = backend_pid(pool.clone()).await;

    for round in 0..3 {
        // A, through the runtime: committed, then (second round) dropped without commit.
        let mut tx = tenancy.begin(&scope_a).await.unwrap();
        assert_eq!(doc_ids(tx.connection()).await, w.a_docs);
        if round == 1 {
            drop(tx);
        } else {
            tx.commit().await.unwrap();
        }
        // Nothing set: a plain transaction on the same connection.
        let mut plain = pool.begin().await.unwrap();
        assert_eq!(
            doc_ids(&mut plain).await,
            Vec::<Uuid>::new(),
            "round {round}"
        );
        assert_eq!(count_all(&mut plain).await, zeros(), "round {round}");
        plain.commit().await.unwrap();
        // No transaction at all.
        let none: Vec<Uuid> = sqlx::query_scalar("SELECT id FROM documents")
            .fetch_all(&pool)
            .await
            .unwrap();
        assert!(none.is_empty(), "round {round}");
        // B, through the runtime: only B.
        let mut tx = tenancy.begin(&scope_b).await.unwrap();
        assert_eq!(doc_ids(tx.connection()).await, w.b_docs, "round {round}");
        let filter = DocumentFilter::default();
        let listed: Vec<Uuid> = Documents::list(&mut tx, &filter, DocumentPage::default())
            .await
            .unwrap()
            .into_iter()
            .map(|d| d.id)
            .collect();
        assert_eq!(listed, w.b_docs);
        tx.rollback().await.unwrap();
    }
    // It really was one connection all along.
    assert_eq!(backend_pid(pool.clone()).await, pid);
    pool.close().await;
    w.db.drop_db().await;
}

/// Contract 3 allows one context per transaction: a second install after a savepoint raises
/// (42501), a forged value set inside a savepoint is refused, and ROLLBACK TO brings back the
/// context the transaction had, never another one.
#[tokio::test]
async fn savepoints_and_rollback_to_restore_the_earlier_context() {
    let w = World::new().await;
    let mut conn = PgConnection::connect(w.db.app_url()).await.unwrap();
    let none: Vec<Uuid> = Vec::new();

    // A, savepoint, B: the second install raises; ROLLBACK TO restores A.
    exec(&mut conn, &format!("BEGIN; {}", w.set_a())).await;
    exec(&mut conn, "SAVEPOINT s1").await;
    let second = sqlx::raw_sql(sqlx::AssertSqlSafe(w.set_b()))
        .execute(&mut conn)
        .await
        .unwrap_err();
    assert_eq!(sqlstate(&second), "42501");
    exec(&mut conn, "ROLLBACK TO SAVEPOINT s1").await;
    assert_eq!(doc_ids(&mut conn).await, w.a_docs);
    // A forged value (set_config(.., true)) inside a savepoint is refused, not trusted.
    exec(&mut conn, "SAVEPOINT s2").await;
    sqlx::query("SELECT set_config('tenancy.context', $1, true)")
        .bind(w.context_b())
        .execute(&mut conn)
        .await
        .unwrap();
    let forged = sqlx::query_scalar::<_, Uuid>("SELECT id FROM documents")
        .fetch_all(&mut conn)
        .await
        .unwrap_err();
    assert_eq!(sqlstate(&forged), "42501");
    exec(&mut conn, "ROLLBACK TO SAVEPOINT s2").await;
    assert_eq!(doc_ids(&mut conn).await, w.a_docs);
    exec(&mut conn, "COMMIT").await;
    assert_eq!(doc_ids(&mut conn).await, none);

    // No context, savepoint, A, ROLLBACK TO: no context again (not A).
    exec(&mut conn, &format!("BEGIN; SAVEPOINT s; {}", w.set_a())).await;
    assert_eq!(doc_ids(&mut conn).await, w.a_docs);
    exec(&mut conn, "ROLLBACK TO SAVEPOINT s").await;
    assert_eq!(doc_ids(&mut conn).await, none);
    exec(&mut conn, "COMMIT").await;

    // Through the runtime: a nested sqlx transaction (a savepoint) inside a scoped one keeps
    // the scope's context; another context inside it raises, and its rollback restores A.
    let pool = PgPoolOptions::new()
        .max_connections(1)
        .connect(w.db.app_url())
        .await
        .unwrap();
    let tenancy = w.tenancy(&pool);
    let scope_a = tenancy
        .authorize(UserId::new(w.alice), TenantId::new(w.tenant_a))
        .await
        .unwrap()
        .all_projects()
        .with_at_least::<Viewer>();
    let mut tx = tenancy.begin(&scope_a).await.unwrap();
    {
        let mut nested = tx.connection().begin().await.unwrap();
        assert_eq!(doc_ids(&mut nested).await, w.a_docs);
        let err = sqlx::raw_sql(sqlx::AssertSqlSafe(w.set_b()))
            .execute(&mut *nested)
            .await
            .unwrap_err();
        assert_eq!(sqlstate(&err), "42501");
        nested.rollback().await.unwrap();
    }
    assert_eq!(doc_ids(tx.connection()).await, w.a_docs);
    tx.commit().await.unwrap();
    pool.close().await;
    conn.close().await.unwrap();
    w.db.drop_db().await;
}

#[tokio::test]
async fn prepared_statements_and_generic_plans_never_keep_an_earlier_tenants_rows() {
    let w = World::new().await;
    for plan_cache_mode in ["auto", "force_generic_plan", "force_custom_plan"] {
        let mut conn = PgConnection::connect(w.db.app_url()).await.unwrap();
        exec(
            &mut conn,
            &format!("SET plan_cache_mode = {plan_cache_mode}"),
        )
        .await;
        // Client-side prepared statements (sqlx caches and reuses them): 8 runs per tenant,
        // beyond the 5 custom plans after which `auto` may switch to a generic plan.
        let statements = [
            "SELECT id FROM documents ORDER BY id",
            "SELECT id FROM documents WHERE project_id IS NOT NULL ORDER BY id",
        ];
        for sql in statements {
            for (set, want, other) in [
                (w.set_a(), &w.a_docs, &w.b_docs),
                (w.set_b(), &w.b_docs, &w.a_docs),
                (w.set_a(), &w.a_docs, &w.b_docs),
            ] {
                for run in 0..8 {
                    exec(&mut conn, &format!("BEGIN; {set}")).await;
                    let got: Vec<Uuid> = sqlx::query_scalar(sqlx::AssertSqlSafe(sql))
                        .fetch_all(&mut conn)
                        .await
                        .unwrap();
                    exec(&mut conn, "COMMIT").await;
                    assert_eq!(&got, want, "{plan_cache_mode} {sql} run {run}");
                    assert!(!got.iter().any(|id| other.contains(id)));
                }
                // And with no context at all, the cached plan returns nothing.
                let got: Vec<Uuid> = sqlx::query_scalar(sqlx::AssertSqlSafe(sql))
                    .fetch_all(&mut conn)
                    .await
                    .unwrap();
                assert!(got.is_empty(), "{plan_cache_mode} {sql} without context");
            }
        }
        // Server-side PREPARE / EXECUTE, and the same through a parameterised count.
        conn.execute(
            "PREPARE visible AS SELECT coalesce(array_agg(id ORDER BY id), '{}') FROM documents",
        )
        .await
        .unwrap();
        conn.execute(
            "PREPARE count_in(uuid) AS SELECT count(*) FROM documents WHERE project_id = $1",
        )
        .await
        .unwrap();
        for (set, want, project, other_project) in [
            (w.set_a(), &w.a_docs, w.a1, w.b1),
            (w.set_b(), &w.b_docs, w.b1, w.a1),
            (w.set_a(), &w.a_docs, w.a1, w.b1),
        ] {
            for run in 0..8 {
                exec(&mut conn, &format!("BEGIN; {set}")).await;
                let got: Vec<Uuid> = sqlx::query_scalar("EXECUTE visible")
                    .persistent(false)
                    .fetch_one(&mut conn)
                    .await
                    .unwrap();
                let own: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
                    "EXECUTE count_in('{project}')"
                )))
                .persistent(false)
                .fetch_one(&mut conn)
                .await
                .unwrap();
                let other: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
                    "EXECUTE count_in('{other_project}')"
                )))
                .persistent(false)
                .fetch_one(&mut conn)
                .await
                .unwrap();
                exec(&mut conn, "COMMIT").await;
                assert_eq!(&got, want, "{plan_cache_mode} EXECUTE run {run}");
                assert_eq!(
                    (own, other),
                    (want.len() as i64, 0),
                    "{plan_cache_mode} run {run}"
                );
            }
        }
        // The generic plan really was used where forced (so the test exercised it).
        if plan_cache_mode == "force_generic_plan" {
            let generic: i64 = sqlx::query_scalar(
                "SELECT generic_plans FROM pg_prepared_statements WHERE name = 'count_in'",
            )
            .fetch_one(&mut conn)
            .await
            .unwrap();
            assert!(generic >= 24, "generic plans used: {generic}");
        }
        conn.close().await.unwrap();
    }

    // The generated repository on a one-connection pool (its statements are cached per
    // connection), with generic plans forced on every connection.
    let pool = PgPoolOptions::new()
        .max_connections(1)
        .after_connect(|conn, _| {
            Box::pin(async move {
                conn.execute("SET plan_cache_mode = force_generic_plan")
                    .await?;
                Ok(())
            })
        })
        .connect(w.db.app_url())
        .await
        .unwrap();
    let tenancy = w.tenancy(&pool);
    let scope = |user, tenant, project| {
        let tenancy = tenancy.clone();
        async move {
            tenancy
                .authorize(UserId::new(user), TenantId::new(tenant))
                .await
                .unwrap()
                .project(ProjectId::new(project))
                .unwrap()
                .require::<Viewer>()
                .unwrap()
        }
    };
    let scope_a = scope(w.alice, w.tenant_a, w.a1).await;
    let scope_b = scope(w.bob, w.tenant_b, w.b1).await;
    for (s, want) in [
        (&scope_a, &w.a_docs),
        (&scope_b, &w.b_docs),
        (&scope_a, &w.a_docs),
    ] {
        for run in 0..8 {
            let mut tx = tenancy.begin(s).await.unwrap();
            let listed: Vec<Uuid> =
                Documents::list(&mut tx, &DocumentFilter::default(), DocumentPage::default())
                    .await
                    .unwrap()
                    .into_iter()
                    .map(|d| d.id)
                    .collect();
            let count = Documents::count(&mut tx, &DocumentFilter::default())
                .await
                .unwrap();
            let first = Documents::get(&mut tx, want[0])
                .await
                .unwrap()
                .map(|d| d.id);
            tx.commit().await.unwrap();
            assert_eq!(&listed, want, "repository run {run}");
            assert_eq!(count, want.len() as i64);
            assert_eq!(first, Some(want[0]));
        }
    }
    // Even a scope of A asking for B's row by id gets nothing from the cached generic plan.
    let mut tx = tenancy.begin(&scope_a).await.unwrap();
    assert_eq!(Documents::get(&mut tx, w.b_docs[0]).await.unwrap(), None);
    tx.commit().await.unwrap();
    pool.close().await;
    w.db.drop_db().await;
}
