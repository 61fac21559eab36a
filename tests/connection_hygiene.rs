//! Pooled connections an attacker cannot steer (docs/security.md, "Clean pooled connections"):
//! role defaults planted with `ALTER ROLE CURRENT_USER IN DATABASE .. SET ..` (which stock
//! PostgreSQL accepts from the role itself) change nothing on the runtime's pinned connections,
//! and session state left by one transaction is gone when the next user takes the connection.

use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{Connection, Executor, PgConnection};
use tenancy_runtime::pool::{self, SessionSettings};
use tenancy_runtime::{ProjectId, Tenancy, TenantId, UserId};
use tenancy_tests::TestDb;
use uuid::Uuid;

tenancy_runtime::roles! { Viewer = "viewer", Editor = "editor", Admin = "admin", Owner = "owner" }

/// A tenant, a project and an owner, as the superuser.
async fn seed(db: &TestDb) -> (Uuid, Uuid, Uuid) {
    let (tenant, project, user) = (Uuid::new_v4(), Uuid::new_v4(), Uuid::new_v4());
    let admin = db.admin_pool();
    sqlx::query("INSERT INTO tenants (id, name, slug) VALUES ($1, 't', 't')")
        .bind(tenant)
        .execute(admin)
        .await
        .unwrap();
    sqlx::query("INSERT INTO projects (tenant_id, id, name, slug) VALUES ($1, $2, 'p', 'p')")
        .bind(tenant)
        .bind(project)
        .execute(admin)
        .await
        .unwrap();
    sqlx::query(
        "INSERT INTO user_project_roles (tenant_id, project_id, user_id, role) VALUES ($1, $2, $3, 'owner')",
    )
    .bind(tenant)
    .bind(project)
    .bind(user)
    .execute(admin)
    .await
    .unwrap();
    (tenant, project, user)
}

/// Inserts a document and reads it back after a 20 ms sleep, through the runtime.
async fn write_and_wait(
    tenancy: &Tenancy,
    tenant: Uuid,
    project: Uuid,
    user: Uuid,
) -> Result<i64, String> {
    let ctx = tenancy
        .authorize(UserId::new(user), TenantId::new(tenant))
        .await
        .map_err(|e| e.to_string())?;
    let scope = ctx
        .project(ProjectId::new(project))
        .map_err(|e| e.to_string())?
        .require::<Editor>()
        .map_err(|e| e.to_string())?;
    let mut tx = tenancy.begin(&scope).await.map_err(|e| e.to_string())?;
    sqlx::query(
        "INSERT INTO documents (tenant_id, project_id, title, content_hash, created_by) \
         VALUES ($1, $2, 'd', $3, $4)",
    )
    .bind(tenant)
    .bind(project)
    .bind(Uuid::new_v4().to_string())
    .bind(user)
    .execute(tx.connection())
    .await
    .map_err(|e| e.to_string())?;
    let n: i64 = sqlx::query_scalar("SELECT count(*) FROM documents, pg_sleep(0.02)")
        .fetch_one(tx.connection())
        .await
        .map_err(|e| e.to_string())?;
    tx.commit().await.map_err(|e| e.to_string())?;
    Ok(n)
}

#[tokio::test]
async fn planted_role_defaults_change_nothing_on_pinned_connections() {
    let db = TestDb::fresh().await;
    let (tenant, project, user) = seed(&db).await;
    // The app role plants defaults for its own future logins in this database.
    let mut app = PgConnection::connect(db.app_url()).await.unwrap();
    for plant in [
        "statement_timeout = '5ms'",
        "default_transaction_read_only = on",
        "search_path = pg_catalog",
    ] {
        app.execute(sqlx::AssertSqlSafe(format!(
            "ALTER ROLE CURRENT_USER IN DATABASE \"{}\" SET {plant}",
            db.name()
        )))
        .await
        .unwrap_or_else(|err| panic!("PostgreSQL refused {plant}: {err}"));
    }
    app.close().await.unwrap();

    // A plain pool logs in with the planted defaults: the same work fails.
    let plain = PgPoolOptions::new()
        .max_connections(1)
        .connect(db.app_url())
        .await
        .unwrap();
    let failed = write_and_wait(
        &Tenancy::with_config(plain, tenancy_generated::config()),
        tenant,
        project,
        user,
    )
    .await;
    assert!(
        failed.is_err(),
        "the planted defaults did not take effect: {failed:?}"
    );

    // The runtime's pinned pool: unaffected.
    let pinned = pool::connect(db.app_url(), &SessionSettings::default(), 1)
        .await
        .unwrap();
    let tenancy = Tenancy::with_config(pinned.clone(), tenancy_generated::config());
    assert_eq!(write_and_wait(&tenancy, tenant, project, user).await, Ok(1));
    let shown: (String, String, String) = sqlx::query_as(
        "SELECT current_setting('statement_timeout'), current_setting('default_transaction_read_only'), \
         current_setting('search_path')",
    )
    .fetch_one(&pinned)
    .await
    .unwrap();
    assert_eq!(
        shown,
        ("0".to_owned(), "off".to_owned(), "public".to_owned())
    );

    // An explicit timeout is the pinned value, whatever the role default says.
    let settings = SessionSettings {
        statement_timeout: Some(Duration::from_secs(30)),
        ..SessionSettings::default()
    };
    let options: PgConnectOptions = db.app_url().parse().unwrap();
    let mut conn = PgConnection::connect_with(&pool::pinned_connect_options(options, &settings))
        .await
        .unwrap();
    let timeout: String = sqlx::query_scalar("SELECT current_setting('statement_timeout')")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    assert_eq!(timeout, "30s");

    sqlx::query(sqlx::AssertSqlSafe(format!(
        "ALTER ROLE tenancy_app IN DATABASE \"{}\" RESET ALL",
        db.name()
    )))
    .execute(db.admin_pool())
    .await
    .unwrap();
}

#[tokio::test]
async fn session_state_is_reset_when_a_connection_returns_to_the_pool() {
    let db = TestDb::fresh().await;
    let (tenant, project, user) = seed(&db).await;
    let pool = pool::connect(db.app_url(), &SessionSettings::default(), 1)
        .await
        .unwrap();
    let tenancy = Tenancy::with_config(pool.clone(), tenancy_generated::config());
    let ctx = tenancy
        .authorize(UserId::new(user), TenantId::new(tenant))
        .await
        .unwrap();
    let scope = ctx
        .project(ProjectId::new(project))
        .unwrap()
        .require::<Viewer>()
        .unwrap();
    // A request whose injected statements leave session state behind.
    let mut tx = tenancy.begin(&scope).await.unwrap();
    tx.connection()
        .execute(
            "SELECT set_config('tenancy.context', current_setting('tenancy.context'), false); \
             SET SESSION search_path = pg_catalog; SET SESSION statement_timeout = '1ms'; \
             LISTEN leak; SELECT pg_advisory_lock(42); \
             DECLARE held CURSOR WITH HOLD FOR SELECT 1",
        )
        .await
        .unwrap();
    let pid: i32 = sqlx::query_scalar("SELECT pg_backend_pid()")
        .fetch_one(tx.connection())
        .await
        .unwrap();
    tx.commit().await.unwrap();

    // The next user of the (only) connection.
    let mut conn = pool.acquire().await.unwrap();
    let same: i32 = sqlx::query_scalar("SELECT pg_backend_pid()")
        .fetch_one(&mut *conn)
        .await
        .unwrap();
    assert_eq!(same, pid, "the pool handed out another connection");
    let state: (Option<String>, String, String, i64, i64, i64) = sqlx::query_as(
        "SELECT current_setting('tenancy.context', true), current_setting('search_path'), \
         current_setting('statement_timeout'), \
         (SELECT count(*) FROM pg_catalog.pg_listening_channels()), \
         (SELECT count(*) FROM pg_catalog.pg_locks WHERE locktype = 'advisory' AND pid = pg_backend_pid()), \
         (SELECT count(*) FROM pg_catalog.pg_cursors WHERE name = 'held')",
    )
    .fetch_one(&mut *conn)
    .await
    .unwrap();
    assert!(state.0.as_deref().unwrap_or("").is_empty(), "{state:?}");
    assert_eq!(
        (
            state.1.as_str(),
            state.2.as_str(),
            state.3,
            state.4,
            state.5
        ),
        ("public", "0", 0, 0, 0),
        "{state:?}"
    );
}
