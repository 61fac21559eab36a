//! tenancy_runtime::admin against PostgreSQL: onboarding end to end with its audit rows, the
//! refusals (duplicates, unknown roles, non-members, the last owner, also under concurrency),
//! and what the app role may do with the audit table.

#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::time::Duration;

use sqlx::PgPool;
use tenancy_runtime::admin::{AdminError, Onboarding};
use tenancy_runtime::{Error, ProjectId, SystemTx, TenantId, UserId};
use tenancy_tests::{context_value, TestDb};
use uuid::Uuid;

fn user(n: u128) -> UserId {
    UserId::new(Uuid::from_u128(n))
}

fn ops() -> Onboarding {
    Onboarding::new("ops-alice").expect("actor")
}

/// One tenant `acme` with project `docs` whose owner is user 1, committed.
async fn acme_docs(pool: &PgPool) -> (TenantId, ProjectId) {
    let ops = ops();
    let mut tx = SystemTx::begin(pool, "test: onboarding").await.unwrap();
    let tenant = ops.create_tenant(&mut tx, "acme", "Acme").await.unwrap();
    let project = ops
        .create_project(&mut tx, tenant, "docs", "Docs")
        .await
        .unwrap();
    ops.add_member(&mut tx, tenant, project, user(1), "owner")
        .await
        .unwrap();
    tx.commit().await.unwrap();
    (tenant, project)
}

async fn audit_rows(pool: &PgPool) -> Vec<(Uuid, Option<Uuid>, String, String, serde_json::Value)> {
    sqlx::query_as(
        "SELECT tenant_id, project_id, actor, action, subject FROM tenancy.audit_log ORDER BY id",
    )
    .fetch_all(pool)
    .await
    .unwrap()
}

#[tokio::test]
async fn onboarding_end_to_end_is_audited() {
    let db = TestDb::fresh().await;
    let pool = db.admin_pool();
    let (tenant, project) = acme_docs(pool).await;
    let ops = ops();

    let mut tx = SystemTx::begin(pool, "test: memberships").await.unwrap();
    ops.add_member(&mut tx, tenant, project, user(2), "viewer")
        .await
        .unwrap();
    let previous = ops
        .set_role(&mut tx, tenant, project, user(2), "editor")
        .await
        .unwrap();
    assert_eq!(previous, "viewer");
    // Setting the same role again changes and records nothing.
    assert_eq!(
        ops.set_role(&mut tx, tenant, project, user(2), "editor")
            .await
            .unwrap(),
        "editor"
    );
    ops.add_member(&mut tx, tenant, project, user(3), "admin")
        .await
        .unwrap();
    let members = ops.list_members(&mut tx, tenant, project).await.unwrap();
    let listed: Vec<(UserId, &str)> = members.iter().map(|m| (m.user, m.role.as_str())).collect();
    assert_eq!(
        listed,
        vec![(user(1), "owner"), (user(3), "admin"), (user(2), "editor")]
    );
    assert_eq!(
        ops.remove_member(&mut tx, tenant, project, user(3))
            .await
            .unwrap(),
        "admin"
    );
    tx.commit().await.unwrap();

    let rows = audit_rows(pool).await;
    let actions: Vec<&str> = rows.iter().map(|r| r.3.as_str()).collect();
    assert_eq!(
        actions,
        vec![
            "tenant.create",
            "project.create",
            "member.add",
            "member.add",
            "member.set_role",
            "member.add",
            "member.remove"
        ]
    );
    assert!(rows
        .iter()
        .all(|r| r.0 == tenant.as_uuid() && r.2 == "ops-alice"));
    assert_eq!(rows[0].1, None, "tenant.create is tenant-wide");
    assert!(rows[1..].iter().all(|r| r.1 == Some(project.as_uuid())));
    assert_eq!(
        rows[0].4,
        serde_json::json!({"tenant_id": tenant.to_string()})
    );
    assert_eq!(
        rows[4].4,
        serde_json::json!({
            "project_id": project.to_string(),
            "user_id": user(2).to_string(),
            "role": "editor",
            "previous_role": "viewer"
        })
    );
    assert_eq!(rows[6].4["previous_role"], "admin");
    let at_is_set: bool = sqlx::query_scalar("SELECT bool_and(at <= now()) FROM tenancy.audit_log")
        .fetch_one(pool)
        .await
        .unwrap();
    assert!(at_is_set);
    db.drop_db().await;
}

#[tokio::test]
async fn refusals_say_what_is_wrong() {
    let db = TestDb::fresh().await;
    let pool = db.admin_pool();
    let (tenant, project) = acme_docs(pool).await;
    let ops = ops();
    let mut tx = SystemTx::begin(pool, "test: refusals").await.unwrap();

    let error = ops
        .create_tenant(&mut tx, "acme", "Again")
        .await
        .unwrap_err();
    assert_eq!(error.to_string(), "tenant `acme` already exists");
    assert!(matches!(Error::from(error), Error::Conflict));

    let error = ops
        .create_project(&mut tx, tenant, "docs", "Again")
        .await
        .unwrap_err();
    assert_eq!(
        error.to_string(),
        format!("project `docs` in tenant {tenant} already exists")
    );

    let error = ops
        .create_project(&mut tx, TenantId::new(Uuid::from_u128(99)), "x", "X")
        .await
        .unwrap_err();
    assert!(matches!(error, AdminError::TenantNotFound(_)), "{error}");

    let error = ops
        .create_tenant(&mut tx, "Bad Slug", "X")
        .await
        .unwrap_err();
    assert!(matches!(Error::from(error), Error::InvalidInput));

    let error = ops
        .add_member(&mut tx, tenant, project, user(2), "superuser")
        .await
        .unwrap_err();
    assert_eq!(
        error.to_string(),
        "unknown role `superuser` (roles: viewer, editor, admin, owner)"
    );

    let error = ops
        .add_member(&mut tx, tenant, project, user(1), "viewer")
        .await
        .unwrap_err();
    assert!(matches!(error, AdminError::AlreadyExists(_)), "{error}");

    let error = ops
        .remove_member(&mut tx, tenant, project, user(7))
        .await
        .unwrap_err();
    assert_eq!(
        error.to_string(),
        format!("user {} is not a member of project {project}", user(7))
    );

    // A project of another tenant is not found through this tenant.
    let other = ops
        .create_tenant(&mut tx, "globex", "Globex")
        .await
        .unwrap();
    let error = ops
        .add_member(&mut tx, other, project, user(2), "viewer")
        .await
        .unwrap_err();
    assert!(
        matches!(error, AdminError::ProjectNotFound { .. }),
        "{error}"
    );
    tx.rollback().await.unwrap();

    assert!(Onboarding::new("  ").is_err());
    db.drop_db().await;
}

#[tokio::test]
async fn the_last_owner_cannot_be_removed_or_demoted() {
    let db = TestDb::fresh().await;
    let pool = db.admin_pool();
    let (tenant, project) = acme_docs(pool).await;
    let ops = ops();
    let mut tx = SystemTx::begin(pool, "test: last owner").await.unwrap();

    let error = ops
        .remove_member(&mut tx, tenant, project, user(1))
        .await
        .unwrap_err();
    assert_eq!(
        error.to_string(),
        format!(
            "user {} is the last owner of project {project}: grant owner to someone else first",
            user(1)
        )
    );
    assert!(matches!(Error::from(error), Error::Conflict));
    tx.rollback().await.unwrap();

    let mut tx = SystemTx::begin(pool, "test: last owner").await.unwrap();
    let error = ops
        .set_role(&mut tx, tenant, project, user(1), "admin")
        .await
        .unwrap_err();
    assert!(matches!(error, AdminError::LastOwner { .. }), "{error}");
    tx.rollback().await.unwrap();

    // With a second owner, the first may step down; then the second is the last one.
    let mut tx = SystemTx::begin(pool, "test: last owner").await.unwrap();
    ops.add_member(&mut tx, tenant, project, user(2), "owner")
        .await
        .unwrap();
    ops.set_role(&mut tx, tenant, project, user(1), "admin")
        .await
        .unwrap();
    let error = ops
        .remove_member(&mut tx, tenant, project, user(2))
        .await
        .unwrap_err();
    assert!(matches!(error, AdminError::LastOwner { .. }), "{error}");
    // The transaction's connection must go back before the pool closes (sqlx 0.9's close
    // waits for every checked-out connection).
    tx.rollback().await.unwrap();
    db.drop_db().await;
}

#[tokio::test]
async fn two_operators_cannot_demote_the_last_two_owners_at_once() {
    let db = TestDb::fresh().await;
    let pool = db.admin_pool().clone();
    let (tenant, project) = acme_docs(&pool).await;
    let ops = ops();
    let mut tx = SystemTx::begin(&pool, "test").await.unwrap();
    ops.add_member(&mut tx, tenant, project, user(2), "owner")
        .await
        .unwrap();
    tx.commit().await.unwrap();

    let mut first = SystemTx::begin(&pool, "test: first").await.unwrap();
    ops.set_role(&mut first, tenant, project, user(1), "admin")
        .await
        .unwrap();
    let second = tokio::spawn({
        let pool = pool.clone();
        let ops = ops.clone();
        async move {
            let mut tx = SystemTx::begin(&pool, "test: second").await.unwrap();
            let result = ops
                .set_role(&mut tx, tenant, project, user(2), "admin")
                .await;
            if result.is_ok() {
                tx.commit().await.unwrap();
            }
            result
        }
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        !second.is_finished(),
        "the second demotion must wait for the project lock"
    );
    first.commit().await.unwrap();
    let result = second.await.unwrap();
    assert!(
        matches!(result, Err(AdminError::LastOwner { .. })),
        "{result:?}"
    );
    let owners: i64 =
        sqlx::query_scalar("SELECT count(*) FROM user_project_roles WHERE role = 'owner'")
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(owners, 1);
    db.drop_db().await;
}

/// Runs `sql` as the app role with the context of `tenant` / `user` and the user's roles in
/// `project_roles` (`project:role,...`, turned into the `tenancy.context` value by
/// [`context_value`]) and returns the SQLSTATE of the failure, if any.
async fn as_app(
    db: &TestDb,
    tenant: TenantId,
    user: UserId,
    project_roles: &str,
    sql: &str,
) -> Result<Vec<String>, String> {
    let mut tx = db.app_pool().begin().await.unwrap();
    sqlx::query("SELECT tenancy.install_context($1)")
        .bind(tenancy_tests::context_token(&context_value(
            &tenant.to_string(),
            &user.to_string(),
            project_roles,
        )))
        .execute(&mut *tx)
        .await
        .unwrap();
    let result = sqlx::query_scalar::<_, String>(sqlx::AssertSqlSafe(sql))
        .fetch_all(&mut *tx)
        .await;
    match result {
        Ok(rows) => {
            tx.commit().await.unwrap();
            Ok(rows)
        }
        Err(error) => Err(error
            .as_database_error()
            .and_then(|e| e.code())
            .map(|c| c.into_owned())
            .unwrap_or_else(|| error.to_string())),
    }
}

#[tokio::test]
async fn the_app_role_reads_only_its_own_tenants_audit_rows_and_never_rewrites_them() {
    let db = TestDb::fresh().await;
    let pool = db.admin_pool();
    let (acme, docs) = acme_docs(pool).await;
    let ops = ops();
    let mut tx = SystemTx::begin(pool, "test").await.unwrap();
    let secret = ops
        .create_project(&mut tx, acme, "secret", "Secret")
        .await
        .unwrap();
    ops.add_member(&mut tx, acme, secret, user(5), "owner")
        .await
        .unwrap();
    let globex = ops
        .create_tenant(&mut tx, "globex", "Globex")
        .await
        .unwrap();
    tx.commit().await.unwrap();

    // User 1 is owner of acme/docs only: tenant-wide rows and docs rows, not secret's.
    let roles = format!("{docs}:owner");
    let seen = as_app(
        &db,
        acme,
        user(1),
        &roles,
        // ORDER BY 1: the app role cannot read `id` (a global identity).
        "SELECT action || coalesce(':' || project_id::text, '') FROM tenancy.audit_log ORDER BY 1",
    )
    .await
    .unwrap();
    assert_eq!(
        seen,
        vec![
            format!("member.add:{docs}"),
            format!("project.create:{docs}"),
            "tenant.create".to_owned(),
        ]
    );
    // No context: nothing.
    let mut conn = db.app_pool().acquire().await.unwrap();
    let none: i64 = sqlx::query_scalar("SELECT count(*) FROM tenancy.audit_log")
        .fetch_one(&mut *conn)
        .await
        .unwrap();
    assert_eq!(none, 0);
    drop(conn);
    // Another tenant's context sees only its own row.
    let seen = as_app(
        &db,
        globex,
        user(9),
        "",
        "SELECT action FROM tenancy.audit_log",
    )
    .await
    .unwrap();
    assert_eq!(seen, vec!["tenant.create".to_owned()]);

    // Never UPDATE or DELETE (no grant), never TRUNCATE.
    for sql in [
        "UPDATE tenancy.audit_log SET actor = 'x' RETURNING actor",
        "DELETE FROM tenancy.audit_log RETURNING actor",
        "TRUNCATE tenancy.audit_log",
    ] {
        assert_eq!(
            as_app(&db, acme, user(1), &roles, sql).await,
            Err("42501".to_owned()),
            "{sql}"
        );
    }
    // INSERT only as the current user, only into the current tenant.
    let insert = |tenant: TenantId, actor: String| {
        format!(
            "INSERT INTO tenancy.audit_log (tenant_id, project_id, actor, action) \
             VALUES ('{tenant}', '{docs}', '{actor}', 'member.add') RETURNING action"
        )
    };
    assert_eq!(
        as_app(
            &db,
            acme,
            user(1),
            &roles,
            &insert(acme, user(1).to_string())
        )
        .await,
        Ok(vec!["member.add".to_owned()])
    );
    assert_eq!(
        as_app(
            &db,
            acme,
            user(1),
            &roles,
            &insert(acme, "ops-alice".into())
        )
        .await,
        Err("42501".to_owned())
    );
    assert_eq!(
        as_app(
            &db,
            acme,
            user(1),
            &roles,
            &insert(globex, user(1).to_string())
        )
        .await,
        Err("42501".to_owned())
    );
    let total: i64 = sqlx::query_scalar("SELECT count(*) FROM tenancy.audit_log")
        .fetch_one(pool)
        .await
        .unwrap();
    assert_eq!(total, 3 + 2 + 1 + 1);
    db.drop_db().await;
}
