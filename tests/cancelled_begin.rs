//! A caller cancelled while `Tenancy::begin` is in flight must not leave its context on the
//! pooled connection.
//!
//! sqlx queues the ROLLBACK of a dropped transaction only after `begin` completed; a future
//! dropped between sending `BEGIN; SET LOCAL tenancy.context = ...` and reading the reply used
//! to return the connection to the pool inside an open transaction that still carried the
//! context, and the next user of the connection inherited it (found by the PgBouncer storm of
//! `tests/concurrency_isolation.rs`). The runtime now hands a begin dropped in flight to a task
//! that finishes it (and so rolls it back).

use std::time::Duration;

use tenancy_generated::roles::Viewer;
use tenancy_runtime::{ProjectId, Tenancy, TenantId, UserId};
use tenancy_tests::TestDb;
use uuid::Uuid;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_begin_cancelled_in_flight_leaves_no_context_on_the_connection() {
    let db = TestDb::fresh().await;
    let admin = db.admin_pool();
    let (tenant, project, user) = (Uuid::new_v4(), Uuid::new_v4(), Uuid::new_v4());
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
        "INSERT INTO tenants (id, name, slug) VALUES ('{tenant}', 't', 't'); \
         INSERT INTO projects (tenant_id, id, name, slug) VALUES ('{tenant}', '{project}', 'p', 'p'); \
         INSERT INTO user_project_roles (tenant_id, project_id, user_id, role) \
           VALUES ('{tenant}', '{project}', '{user}', 'viewer');"
    )))
    .execute(admin)
    .await
    .unwrap();
    // One connection, so every attempt reuses the connection a cancelled begin touched.
    let pool = sqlx::postgres::PgPoolOptions::new()
        .max_connections(1)
        .connect(db.app_url())
        .await
        .unwrap();
    let tenancy = Tenancy::with_config(pool.clone(), tenancy_generated::config());
    let scope = tenancy
        .authorize(UserId::new(user), TenantId::new(tenant))
        .await
        .unwrap()
        .project(ProjectId::new(project))
        .unwrap()
        .require::<Viewer>()
        .unwrap();

    let mut cancelled = 0;
    for attempt in 0..400u64 {
        // Cancel after a varying few microseconds: sometimes before the statement is sent,
        // sometimes while its reply is in flight, sometimes not at all.
        let wait = Duration::from_micros(attempt % 40 * 5);
        if tokio::time::timeout(wait, tenancy.begin(&scope))
            .await
            .is_err()
        {
            cancelled += 1;
        }
        // A plain transaction on the same pool must start without any context.
        let mut tx = pool.begin().await.unwrap();
        let seen: String =
            sqlx::query_scalar("SELECT coalesce(current_setting('tenancy.context', true), '')")
                .fetch_one(&mut *tx)
                .await
                .unwrap();
        tx.rollback().await.unwrap();
        assert_eq!(
            seen, "",
            "attempt {attempt}: a cancelled begin left its context on the connection"
        );
    }
    assert!(
        cancelled > 0,
        "no begin was cancelled: the test did not test"
    );
    pool.close().await;
    db.drop_db().await;
}
