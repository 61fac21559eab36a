//! The signed context (docs/context.md, contract 3) against an attacker who runs arbitrary SQL
//! as the application role: forgery by every route, edited / expired / wrong-key /
//! other-connection tokens, replay of a harvested seal, two contexts in one transaction or one
//! statement, session state across COMMIT and pool reuse, TEMP shadowing, visibility in
//! `pg_stat_activity`, the startup check, and the in-place upgrade of a contract-2 database.
//!
//! World: tenants A (project A1, 3 documents) and B (project B1, 2 documents); `alice` owns
//! A1, `bob` owns B1. Every refusal is SQLSTATE 42501 with a `tenancy:` message, and nothing is
//! read or written.

use sqlx::postgres::{PgConnection, PgPoolOptions};
use sqlx::{Connection, Executor, PgPool};
use tenancy_runtime::{Error, ProjectId, Tenancy, TenancyConfig, TenantId, UserId};
use tenancy_tests::{
    context_token, context_value, forge_context, hmac_hex, set_context, test_context_secret,
    token_with, TestDb, TEST_CONTEXT_KEY_ID,
};
use uuid::Uuid;

tenancy_runtime::roles! { Viewer = "viewer", Editor = "editor", Admin = "admin", Owner = "owner" }

/// The test database and its two tenants (`w.tenant_a`, `w.alice`, ... through `Deref`).
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

impl World {
    async fn new() -> World {
        World::seeded(TestDb::fresh().await).await
    }

    async fn seeded(db: TestDb) -> World {
        let tenants = tenancy_tests::TwoTenants::seed(&db, 3, 2).await;
        World { db, tenants }
    }

    fn claims_a(&self) -> String {
        context_value(
            &self.tenant_a.to_string(),
            &self.alice.to_string(),
            &format!("{}:owner", self.a1),
        )
    }

    fn claims_b(&self) -> String {
        context_value(
            &self.tenant_b.to_string(),
            &self.bob.to_string(),
            &format!("{}:owner", self.b1),
        )
    }

    fn install_a(&self) -> String {
        set_context(
            &self.tenant_a.to_string(),
            &self.alice.to_string(),
            &format!("{}:owner", self.a1),
        )
    }

    async fn app(&self) -> PgConnection {
        PgConnection::connect(self.db.app_url()).await.unwrap()
    }

    fn tenancy(&self, pool: &PgPool) -> Tenancy {
        Tenancy::with_config(pool.clone(), tenancy_generated::config())
    }

    /// B's documents as the superuser sees them (the oracle).
    async fn b_documents(&self) -> i64 {
        sqlx::query_scalar("SELECT count(*) FROM documents WHERE tenant_id = $1")
            .bind(self.tenant_b)
            .fetch_one(self.db.admin_pool())
            .await
            .unwrap()
    }

    async fn b_owner_memberships(&self) -> i64 {
        sqlx::query_scalar(
            "SELECT count(*) FROM user_project_roles WHERE tenant_id = $1 AND role = 'owner'",
        )
        .bind(self.tenant_b)
        .fetch_one(self.db.admin_pool())
        .await
        .unwrap()
    }
}

/// `user`'s scope in one project of `tenant`, at least `R`, through the runtime.
async fn project_scope<R: tenancy_runtime::Role>(
    tenancy: &Tenancy,
    user: Uuid,
    tenant: Uuid,
    project: Uuid,
) -> tenancy_runtime::ProjectScope<R> {
    let ctx = tenancy
        .authorize(UserId::new(user), TenantId::new(tenant))
        .await
        .unwrap_or_else(|err| panic!("authorize: {err}"));
    let access = ctx
        .project(ProjectId::new(project))
        .unwrap_or_else(|err| panic!("project: {err}"));
    access
        .require::<R>()
        .unwrap_or_else(|err| panic!("require: {err}"))
}

/// The SQLSTATE and message of a failed statement, or the row count of a successful one.
async fn attempt(conn: &mut PgConnection, sql: &str) -> Result<i64, (String, String)> {
    match sqlx::query_scalar::<_, i64>(sqlx::AssertSqlSafe(sql))
        .fetch_one(&mut *conn)
        .await
    {
        Ok(n) => Ok(n),
        Err(err) => {
            let db = err
                .as_database_error()
                .unwrap_or_else(|| panic!("not a database error: {err}"));
            Err((
                db.code().map(|c| c.into_owned()).unwrap_or_default(),
                db.message().to_owned(),
            ))
        }
    }
}

fn assert_refused(result: Result<i64, (String, String)>, label: &str) {
    match result {
        Err((code, message)) => {
            assert_eq!(code, "42501", "{label}: {message}");
            assert!(message.starts_with("tenancy: "), "{label}: {message}");
        }
        Ok(n) => panic!("{label}: expected 42501, the statement returned {n}"),
    }
}

const COUNT_B: &str = "SELECT count(*) FROM documents WHERE tenant_id = '{B}'";

fn count_b(w: &World) -> String {
    COUNT_B.replace("{B}", &w.tenant_b.to_string())
}

/// Forging B's claims by every route the app role has: SET LOCAL, set_config(.., true), a
/// session-level SET and set_config(.., false), and PGOPTIONS at login; inside a transaction
/// that carries A's signed context and without any context. Every read raises, nothing of B
/// is read, no write or owner membership lands in B.
#[tokio::test]
async fn forged_contexts_by_every_route_are_refused() {
    let w = World::new().await;
    let claims_b = w.claims_b();
    let routes = [
        format!("SET LOCAL tenancy.context = '{claims_b}'"),
        format!("SELECT set_config('tenancy.context', '{claims_b}', true)"),
        format!("SET tenancy.context = '{claims_b}'"),
        format!("SELECT set_config('tenancy.context', '{claims_b}', false)"),
        // A seal-shaped value: B's claims behind a made-up MAC and this transaction's identity.
        format!(
            "SELECT set_config('tenancy.context', repeat('0', 64) || '.{kid};' || \
             ((date_part('epoch', now()) * 1000000)::int8)::text || ';' || pg_backend_pid() || ';{claims_b}', true)",
            kid = TEST_CONTEXT_KEY_ID
        ),
    ];
    for (i, route) in routes.iter().enumerate() {
        for with_a in [false, true] {
            let mut conn = w.app().await;
            conn.execute("BEGIN").await.unwrap();
            if with_a {
                conn.execute(sqlx::AssertSqlSafe(w.install_a().as_str()))
                    .await
                    .unwrap();
            }
            conn.execute(sqlx::AssertSqlSafe(route.as_str()))
                .await
                .unwrap();
            assert_refused(
                attempt(&mut conn, &count_b(&w)).await,
                &format!("route {i}, A first: {with_a}"),
            );
            conn.execute("ROLLBACK").await.unwrap();
            // Writes and a planted owner membership in B, each in its own transaction.
            for write in [
                format!(
                    "WITH i AS (INSERT INTO documents (tenant_id, project_id, title, content_hash, created_by) \
                     VALUES ('{}', '{}', 'x', 'forged', '{}') RETURNING 1) SELECT count(*) FROM i",
                    w.tenant_b, w.b1, w.bob
                ),
                format!(
                    "WITH i AS (INSERT INTO user_project_roles (tenant_id, project_id, user_id, role) \
                     VALUES ('{}', '{}', '{}', 'owner') RETURNING 1) SELECT count(*) FROM i",
                    w.tenant_b, w.b1, w.alice
                ),
            ] {
                conn.execute("BEGIN").await.unwrap();
                conn.execute(sqlx::AssertSqlSafe(route.as_str())).await.unwrap();
                assert_refused(attempt(&mut conn, &write).await, &format!("route {i} write"));
                conn.execute("ROLLBACK").await.unwrap();
            }
        }
    }
    // PGOPTIONS at login: the forged value is the session's reset value.
    let url = format!(
        "{}{}options=-c%20tenancy.context%3D{}",
        w.db.app_url(),
        if w.db.app_url().contains('?') {
            "&"
        } else {
            "?"
        },
        claims_b
            .replace(';', "%3B")
            .replace('{', "%7B")
            .replace('}', "%7D")
    );
    let mut conn = PgConnection::connect(&url).await.unwrap();
    let shown: String = sqlx::query_scalar("SELECT current_setting('tenancy.context')")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    assert_eq!(shown, claims_b, "the login option took effect");
    assert_refused(attempt(&mut conn, &count_b(&w)).await, "PGOPTIONS");
    assert_eq!(w.b_documents().await, 2);
    assert_eq!(w.b_owner_memberships().await, 1);
}

/// Tokens the installer must refuse: an edited claim, a wrong key under the right id, an
/// unknown key id, a retired key, an expired token, another connection's binding, garbage.
#[tokio::test]
async fn bad_tokens_are_refused_at_install() {
    let w = World::new().await;
    let secret = test_context_secret();
    let later = now() + 60;
    let good = context_token(&w.claims_a());
    let edited = good.replace(&w.tenant_a.to_string(), &w.tenant_b.to_string());
    let wrong_secret = vec![0x42; 32];
    let cases = [
        ("edited claims", edited),
        (
            "wrong secret",
            token_with(
                &wrong_secret,
                TEST_CONTEXT_KEY_ID,
                later,
                "*",
                &w.claims_a(),
            ),
        ),
        (
            "unknown key id",
            token_with(&secret, "no-such-key", later, "*", &w.claims_a()),
        ),
        (
            "expired",
            token_with(&secret, TEST_CONTEXT_KEY_ID, now() - 5, "*", &w.claims_a()),
        ),
        (
            "other connection",
            token_with(&secret, TEST_CONTEXT_KEY_ID, later, "1", &w.claims_a()),
        ),
        ("garbage", "not a token".to_owned()),
        ("empty", String::new()),
    ];
    for (label, token) in cases {
        let mut conn = w.app().await;
        conn.execute("BEGIN").await.unwrap();
        // The install itself succeeds (the BEGIN round trip never fails); the refusal is
        // raised by the first policy that reads the context.
        sqlx::query("SELECT tenancy.install_context($1)")
            .bind(&token)
            .execute(&mut conn)
            .await
            .unwrap_or_else(|err| panic!("{label}: {err}"));
        assert_refused(
            attempt(&mut conn, "SELECT count(*) FROM documents").await,
            label,
        );
    }
    // Bound to this very backend: accepted.
    let mut conn = w.app().await;
    let pid: i32 = sqlx::query_scalar("SELECT pg_backend_pid()")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    conn.execute("BEGIN").await.unwrap();
    let bound = token_with(
        &secret,
        TEST_CONTEXT_KEY_ID,
        later,
        &pid.to_string(),
        &w.claims_a(),
    );
    sqlx::query("SELECT tenancy.install_context($1)")
        .bind(&bound)
        .execute(&mut conn)
        .await
        .unwrap();
    let n: i64 = sqlx::query_scalar("SELECT count(*) FROM documents")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    assert_eq!(n, 3);
    conn.execute("ROLLBACK").await.unwrap();

    // A retired key: refused from the moment it is retired.
    sqlx::query("UPDATE tenancy.context_keys SET retired_at = now() WHERE kid = $1")
        .bind(TEST_CONTEXT_KEY_ID)
        .execute(w.db.admin_pool())
        .await
        .unwrap();
    conn.execute("BEGIN").await.unwrap();
    sqlx::query("SELECT tenancy.install_context($1)")
        .bind(&good)
        .execute(&mut conn)
        .await
        .unwrap();
    match attempt(&mut conn, "SELECT count(*) FROM documents").await {
        Err((code, message)) => {
            assert_eq!(code, "42501");
            assert!(message.contains("not an active key"), "{message}");
            // The MAC is never echoed back in the error.
            assert!(!message.contains(&good[..64]), "{message}");
        }
        Ok(n) => panic!("retired key: {n} rows"),
    }
    let _ = hmac_hex;
}

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// A seal harvested from one transaction (`current_setting`) is worthless in the next
/// transaction of the same connection, at session level, and on another connection.
#[tokio::test]
async fn a_harvested_seal_is_refused_everywhere_else() {
    let w = World::new().await;
    let mut victim = w.app().await;
    victim.execute("BEGIN").await.unwrap();
    victim
        .execute(sqlx::AssertSqlSafe(
            set_context(
                &w.tenant_b.to_string(),
                &w.bob.to_string(),
                &format!("{}:owner", w.b1),
            )
            .as_str(),
        ))
        .await
        .unwrap();
    let seal: String = sqlx::query_scalar("SELECT current_setting('tenancy.context')")
        .fetch_one(&mut victim)
        .await
        .unwrap();
    assert_eq!(
        attempt(&mut victim, &count_b(&w)).await,
        Ok(2),
        "the seal works in its own tx"
    );
    victim.execute("COMMIT").await.unwrap();

    // Next transaction, same connection.
    victim.execute("BEGIN").await.unwrap();
    victim
        .execute(sqlx::AssertSqlSafe(format!(
            "SET LOCAL tenancy.context = '{seal}'"
        )))
        .await
        .unwrap();
    assert_refused(
        attempt(&mut victim, &count_b(&w)).await,
        "same connection, next tx",
    );
    victim.execute("ROLLBACK").await.unwrap();
    // Session level, then a transaction without a context: refused, not trusted.
    victim
        .execute(sqlx::AssertSqlSafe(format!(
            "SET tenancy.context = '{seal}'"
        )))
        .await
        .unwrap();
    assert_refused(attempt(&mut victim, &count_b(&w)).await, "session level");
    // Another connection, inside a transaction started at once.
    let mut other = w.app().await;
    other.execute("BEGIN").await.unwrap();
    other
        .execute(sqlx::AssertSqlSafe(format!(
            "SET LOCAL tenancy.context = '{seal}'"
        )))
        .await
        .unwrap();
    assert_refused(attempt(&mut other, &count_b(&w)).await, "other connection");
}

/// One context per transaction; and a statement cannot switch contexts halfway (a volatile
/// set_config in a MATERIALIZED CTE runs before the policies' InitPlans).
#[tokio::test]
async fn one_context_per_transaction_and_per_statement() {
    let w = World::new().await;
    let mut conn = w.app().await;
    conn.execute("BEGIN").await.unwrap();
    conn.execute(sqlx::AssertSqlSafe(w.install_a().as_str()))
        .await
        .unwrap();
    let second = format!(
        "SELECT tenancy.install_context('{}')",
        context_token(&w.claims_b())
    );
    let refused = conn
        .execute(sqlx::AssertSqlSafe(second.as_str()))
        .await
        .expect_err("second context");
    assert!(
        refused.to_string().contains("already carries a context"),
        "{refused}"
    );
    conn.execute("ROLLBACK").await.unwrap();

    // Mid-statement: forged claims, and B's genuine token installed over A's.
    for switch in [
        format!(
            "SELECT set_config('tenancy.context', '{}', true)",
            w.claims_b()
        ),
        format!(
            "SELECT tenancy.install_context('{}')::text",
            context_token(&w.claims_b())
        ),
    ] {
        conn.execute("BEGIN").await.unwrap();
        conn.execute(sqlx::AssertSqlSafe(w.install_a().as_str()))
            .await
            .unwrap();
        let statement = format!(
            "WITH s AS MATERIALIZED ({switch}) \
             SELECT count(*) FROM s, documents WHERE documents.tenant_id = '{}'",
            w.tenant_b
        );
        // Either the switched value is read and refused, or the policies' InitPlans ran
        // before the switch and saw A: never a row of B.
        match attempt(&mut conn, &statement).await {
            Ok(n) => assert_eq!(n, 0, "{switch}"),
            Err((code, message)) => {
                assert_eq!(code, "42501", "{switch}: {message}");
                assert!(message.starts_with("tenancy: "), "{message}");
            }
        }
        conn.execute("ROLLBACK").await.unwrap();
    }
}

/// The token never shows in `pg_stat_activity` to another session of the same role, while
/// the scoped transaction is open (idle in transaction after the BEGIN round trip).
#[tokio::test]
async fn the_token_is_not_visible_in_pg_stat_activity() {
    let w = World::new().await;
    let pool = PgPoolOptions::new()
        .max_connections(1)
        .connect(w.db.app_url())
        .await
        .unwrap();
    let tenancy = w.tenancy(&pool);
    tenancy.check().await.unwrap();
    let scope =
        project_scope::<tenancy_generated::roles::Viewer>(&tenancy, w.alice, w.tenant_a, w.a1)
            .await;
    let mut tx = tenancy.begin(&scope).await.unwrap();
    let pid: i32 = sqlx::query_scalar("SELECT pg_backend_pid()")
        .fetch_one(tx.connection())
        .await
        .unwrap();
    let seal: String = sqlx::query_scalar("SELECT current_setting('tenancy.context')")
        .fetch_one(tx.connection())
        .await
        .unwrap();
    // Make the BEGIN statement the last one the server saw on that backend again.
    drop(tx);
    let tx = tenancy.begin(&scope).await.unwrap();
    let mut observer = w.app().await;
    let shown: String = sqlx::query_scalar("SELECT query FROM pg_stat_activity WHERE pid = $1")
        .bind(pid)
        .fetch_one(&mut observer)
        .await
        .unwrap();
    assert!(shown.starts_with("BEGIN; /*"), "{shown}");
    assert!(!shown.contains("install_context"), "{shown}");
    assert!(!shown.contains(&w.tenant_a.to_string()), "{shown}");
    assert!(!shown.contains(&seal[..64]), "{shown}");
    tx.rollback().await.unwrap();
}

/// Session state planted through a runtime transaction does not survive into the next user
/// of the pooled connection: the runtime installs its own context, and a statement without one
/// is refused rather than scoped by the planted value.
#[tokio::test]
async fn planted_session_state_never_scopes_the_next_user() {
    let w = World::new().await;
    let pool = PgPoolOptions::new()
        .max_connections(1)
        .connect(w.db.app_url())
        .await
        .unwrap();
    let tenancy = w.tenancy(&pool);
    let b_scope = project_scope::<Owner>(&tenancy, w.bob, w.tenant_b, w.b1).await;
    // Bob's request, with an injected statement that copies its seal to session level.
    let mut tx = tenancy.begin(&b_scope).await.unwrap();
    tx.connection()
        .execute("SELECT set_config('tenancy.context', current_setting('tenancy.context'), false)")
        .await
        .unwrap();
    tx.commit().await.unwrap();
    // Alice's request on the same (only) connection sees A only.
    let a_scope = project_scope::<Viewer>(&tenancy, w.alice, w.tenant_a, w.a1).await;
    let mut tx = tenancy.begin(&a_scope).await.unwrap();
    let seen: Vec<Uuid> = sqlx::query_scalar("SELECT DISTINCT tenant_id FROM documents")
        .fetch_all(tx.connection())
        .await
        .unwrap();
    assert_eq!(seen, [w.tenant_a]);
    tx.commit().await.unwrap();
    // A raw statement on that connection outside a scoped transaction: refused.
    let mut conn = pool.acquire().await.unwrap();
    assert_refused(attempt(&mut conn, &count_b(&w)).await, "after pool reuse");
}

/// The app role cannot create temporary tables, so none can shadow a table name.
#[tokio::test]
async fn temp_tables_cannot_shadow_tenant_tables() {
    let w = World::new().await;
    let mut conn = w.app().await;
    for name in ["user_project_roles", "documents", "tenants"] {
        let created = conn
            .execute(sqlx::AssertSqlSafe(format!(
                "CREATE TEMP TABLE {name} (x int)"
            )))
            .await
            .expect_err(name);
        assert_eq!(
            created.as_database_error().unwrap().code().as_deref(),
            Some("42501"),
            "{created}"
        );
    }
    let temp: bool = sqlx::query_scalar(
        "SELECT has_database_privilege(current_user, current_database(), 'TEMPORARY')",
    )
    .fetch_one(&mut conn)
    .await
    .unwrap();
    assert!(!temp);
}

/// Every table the generated repositories and the runtime name is schema-qualified: a
/// `search_path` pointed at a schema of readable look-alike tables (an operator's mistake that
/// TA080 reports) redirects neither a repository read inside the transaction (`SET LOCAL`) nor
/// the runtime's membership read (a session-level `SET` left on a pooled connection that is
/// not reset): no decoy row is read, no planted membership grants tenant B.
#[tokio::test]
async fn a_changed_search_path_redirects_no_generated_or_runtime_query() {
    let w = World::new().await;
    let admin = w.db.admin_pool();
    for statement in [
        "CREATE SCHEMA decoy".to_owned(),
        "CREATE TABLE decoy.documents (LIKE public.documents INCLUDING DEFAULTS)".to_owned(),
        "CREATE TABLE decoy.user_project_roles (LIKE public.user_project_roles INCLUDING DEFAULTS)"
            .to_owned(),
        "GRANT USAGE ON SCHEMA decoy TO tenancy_app".to_owned(),
        "GRANT SELECT ON ALL TABLES IN SCHEMA decoy TO tenancy_app".to_owned(),
        format!(
            "INSERT INTO decoy.documents (tenant_id, project_id, title, content_hash, created_by) \
             SELECT '{}', '{}', 'decoy', 'decoy' || g, '{}' FROM generate_series(1, 5) g",
            w.tenant_a, w.a1, w.alice
        ),
        format!(
            "INSERT INTO decoy.user_project_roles (tenant_id, project_id, user_id, role) \
             VALUES ('{}', '{}', '{}', 'owner')",
            w.tenant_b, w.b1, w.alice
        ),
    ] {
        admin.execute(sqlx::AssertSqlSafe(statement)).await.unwrap();
    }

    // Inside a scoped transaction: SET LOCAL, then the generated repository's count and list.
    let pool = PgPoolOptions::new()
        .max_connections(1)
        .connect(w.db.app_url())
        .await
        .unwrap();
    let tenancy = w.tenancy(&pool);
    let scope =
        project_scope::<tenancy_generated::roles::Viewer>(&tenancy, w.alice, w.tenant_a, w.a1)
            .await;
    let mut tx = tenancy.begin(&scope).await.unwrap();
    sqlx::query("SET LOCAL search_path = decoy, public")
        .execute(tx.connection())
        .await
        .unwrap();
    let filter = tenancy_generated::documents::DocumentFilter::default();
    let counted = tenancy_generated::documents::Documents::count(&mut tx, &filter)
        .await
        .unwrap();
    let listed =
        tenancy_generated::documents::Documents::list(&mut tx, &filter, Default::default())
            .await
            .unwrap();
    tx.commit().await.unwrap();
    assert_eq!(counted, 3, "the count read the decoy table");
    let mut ids: Vec<Uuid> = listed.iter().map(|d| d.id).collect();
    ids.sort();
    assert_eq!(ids, w.a_docs, "the list read the decoy table");

    // A session-level search_path left on a connection the pool does not reset: `authorize`
    // still reads the real memberships, so alice gets no scope in tenant B.
    sqlx::query("SET search_path = decoy, public")
        .execute(&pool)
        .await
        .unwrap();
    let path: String = sqlx::query_scalar("SHOW search_path")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(
        path, "decoy, public",
        "the planted setting must be on the connection"
    );
    let authorized = tenancy
        .authorize(UserId::new(w.alice), TenantId::new(w.tenant_b))
        .await;
    assert!(
        matches!(authorized, Err(Error::NotFound)),
        "a planted membership in decoy.user_project_roles authorized alice in B: {authorized:?}"
    );
}

/// `Tenancy::check` at startup: fine with the right key; one clear sentence for a missing
/// key, a key the database does not hold and one that does not match.
#[tokio::test]
async fn startup_check_names_the_key_problem() {
    let w = World::new().await;
    let pool = w.db.app_pool().clone();
    w.tenancy(&pool).check().await.unwrap();
    let configured = |key| {
        Tenancy::with_config(
            pool.clone(),
            TenancyConfig {
                context_key: Some(key),
                ..tenancy_generated::config()
            },
        )
    };
    let unknown = tenancy_runtime::ContextKey::new("other-key", vec![7; 32]).unwrap();
    let wrong = tenancy_runtime::ContextKey::new(TEST_CONTEXT_KEY_ID, vec![7; 32]).unwrap();
    for (key, needle) in [(unknown, "not an active key"), (wrong, "does not verify")] {
        match configured(key).check().await {
            Err(Error::Misconfigured(message)) => {
                assert!(
                    message.contains("refused this runtime's context key"),
                    "{message}"
                );
                assert!(message.contains(needle), "{message}");
            }
            other => panic!("expected Misconfigured, got {other:?}"),
        }
    }
    // The same refusal at request time is the typed ContextRefused (HTTP 403).
    let wrong = tenancy_runtime::ContextKey::new(TEST_CONTEXT_KEY_ID, vec![7; 32]).unwrap();
    let refused = configured(wrong)
        .authorize(UserId::new(w.alice), TenantId::new(w.tenant_a))
        .await;
    match refused {
        Err(error @ Error::ContextRefused(_)) => assert_eq!(error.http_status(), 403),
        other => panic!("expected ContextRefused, got {other:?}"),
    }
}

/// A database migrated with the contract-2 core (0001 + 0002), holding data, is upgraded in
/// place by the generated 0003: no row lost, the runtime refuses to start before the upgrade
/// and works after it with a key installed.
#[tokio::test]
async fn a_contract_2_database_upgrades_in_place() {
    let db = TestDb::empty().await;
    let dir = tenancy_tests::migrations_dir();
    let files = tenancy_tests::migration_files(&dir).unwrap();
    let old = tempdir_with(&files[..2]);
    db.apply_migrations(old.path()).await.unwrap();
    let w = World::seeded(db).await;
    let before: i64 = sqlx::query_scalar("SELECT count(*) FROM documents")
        .fetch_one(w.db.admin_pool())
        .await
        .unwrap();
    let pool = w.db.app_pool().clone();
    match w.tenancy(&pool).check().await {
        Err(Error::Misconfigured(message)) => assert!(
            message.contains("speaks context contract 2") && message.contains("speaks 3"),
            "{message}"
        ),
        other => panic!("expected Misconfigured, got {other:?}"),
    }
    // Under contract 2 the forged value is trusted (what the upgrade fixes).
    let mut conn = w.app().await;
    conn.execute("BEGIN").await.unwrap();
    conn.execute(sqlx::AssertSqlSafe(
        forge_context(
            &w.tenant_b.to_string(),
            &w.bob.to_string(),
            &format!("{}:owner", w.b1),
        )
        .as_str(),
    ))
    .await
    .unwrap();
    assert_eq!(attempt(&mut conn, &count_b(&w)).await, Ok(2));
    conn.execute("ROLLBACK").await.unwrap();

    // The upgrade: every migration after the two (0003_core_context_v3.sql).
    let all = tempdir_with(&files[2..]);
    w.db.apply_migrations(all.path()).await.unwrap();
    let after: i64 = sqlx::query_scalar("SELECT count(*) FROM documents")
        .fetch_one(w.db.admin_pool())
        .await
        .unwrap();
    assert_eq!(after, before);
    w.tenancy(&pool).check().await.unwrap();
    // ... and the upgraded database audits clean against the committed model.
    let snapshot = std::fs::read_to_string(
        tenancy_tests::repo_root()
            .join("examples/rag/generated")
            .join("model.snapshot.json"),
    )
    .unwrap();
    let model = tenancy_core::snapshot::Snapshot::from_json(&snapshot)
        .unwrap()
        .model;
    let report = tenancy_audit::audit(w.db.admin_pool(), &model)
        .await
        .unwrap();
    assert!(report.is_clean(), "{}", report.to_text());
    conn.execute("BEGIN").await.unwrap();
    conn.execute(sqlx::AssertSqlSafe(
        forge_context(
            &w.tenant_b.to_string(),
            &w.bob.to_string(),
            &format!("{}:owner", w.b1),
        )
        .as_str(),
    ))
    .await
    .unwrap();
    assert_refused(
        attempt(&mut conn, &count_b(&w)).await,
        "forged after the upgrade",
    );
    conn.execute("ROLLBACK").await.unwrap();
    let ctx = w
        .tenancy(&pool)
        .authorize(UserId::new(w.bob), TenantId::new(w.tenant_b))
        .await
        .unwrap();
    let scope = ctx
        .project(ProjectId::new(w.b1))
        .unwrap()
        .require::<Editor>()
        .unwrap();
    let mut tx = w.tenancy(&pool).begin(&scope).await.unwrap();
    let n: i64 = sqlx::query_scalar("SELECT count(*) FROM documents")
        .fetch_one(tx.connection())
        .await
        .unwrap();
    assert_eq!(n, 2);
    let _ = std::marker::PhantomData::<Admin>;
    drop(tx);
}

/// A directory holding copies of `files` (migrations applied in name order).
fn tempdir_with(files: &[std::path::PathBuf]) -> TempDir {
    let dir = std::env::temp_dir().join(format!("tenancy-mig-{}", Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).unwrap();
    for file in files {
        std::fs::copy(file, dir.join(file.file_name().unwrap())).unwrap();
    }
    TempDir(dir)
}

struct TempDir(std::path::PathBuf);

impl TempDir {
    fn path(&self) -> &std::path::Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Through PgBouncer in transaction pooling (the backend changes between transactions): the
/// runtime's signed context works transaction after transaction on whatever backend serves it;
/// a seal harvested in one transaction is refused in the next, and a forged value is refused.
#[tokio::test]
async fn through_pgbouncer_transaction_pooling() {
    let w = World::new().await;
    let bouncer = tenancy_tests::PgBouncer::start(w.db.url());
    let direct: sqlx::postgres::PgConnectOptions = w.db.app_url().parse().unwrap();
    // PgBouncer 1.18 has no prepared-statement support: unnamed statements only.
    let options = direct
        .port(bouncer.port)
        .host("127.0.0.1")
        .statement_cache_capacity(0);
    let pool = PgPoolOptions::new()
        .max_connections(3)
        .connect_with(options)
        .await
        .unwrap();
    let tenancy = Tenancy::with_config(
        pool.clone(),
        TenancyConfig {
            named_statements: false,
            ..tenancy_generated::config()
        },
    );
    tenancy.check().await.unwrap();
    let mut backends = std::collections::BTreeSet::new();
    for (user, tenant, project, other) in [
        (w.alice, w.tenant_a, w.a1, w.tenant_b),
        (w.bob, w.tenant_b, w.b1, w.tenant_a),
    ]
    .into_iter()
    .cycle()
    .take(40)
    {
        let ctx = tenancy
            .authorize(UserId::new(user), TenantId::new(tenant))
            .await
            .unwrap();
        let scope = ctx
            .project(ProjectId::new(project))
            .unwrap()
            .require::<Owner>()
            .unwrap();
        let mut tx = tenancy.begin(&scope).await.unwrap();
        let (pid, own, foreign): (i32, i64, i64) = sqlx::query_as(
            "SELECT pg_backend_pid(), \
             (SELECT count(*) FROM documents WHERE tenant_id = $1), \
             (SELECT count(*) FROM documents WHERE tenant_id = $2)",
        )
        .persistent(false)
        .bind(tenant)
        .bind(other)
        .fetch_one(tx.connection())
        .await
        .unwrap();
        assert!(own > 0 && foreign == 0, "{own} {foreign}");
        backends.insert(pid);
        tx.commit().await.unwrap();
    }
    assert!(backends.len() <= 2, "{backends:?}");

    // Harvest a seal in one transaction, replay it in the next (any backend): refused.
    let mut conn = pool.acquire().await.unwrap();
    conn.execute("BEGIN").await.unwrap();
    conn.execute(sqlx::AssertSqlSafe(w.install_a().as_str()))
        .await
        .unwrap();
    let seal: String = sqlx::query_scalar("SELECT current_setting('tenancy.context')")
        .persistent(false)
        .fetch_one(&mut *conn)
        .await
        .unwrap();
    conn.execute("COMMIT").await.unwrap();
    for replay in [
        format!("SET LOCAL tenancy.context = '{seal}'"),
        format!("SET LOCAL tenancy.context = '{}'", w.claims_b()),
    ] {
        conn.execute("BEGIN").await.unwrap();
        conn.execute(sqlx::AssertSqlSafe(replay.as_str()))
            .await
            .unwrap();
        assert_refused(
            attempt(&mut conn, "SELECT count(*) FROM documents").await,
            &replay,
        );
        conn.execute("ROLLBACK").await.unwrap();
    }
    drop(conn);
    pool.close().await;
}
