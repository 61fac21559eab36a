//! Authority rules inside the database (docs/security.md, "Authority inside the database"),
//! against a caller who runs plain SQL as the application role under its own, genuine context:
//! an admin cannot promote itself, grant, demote or remove an owner; an owner cannot leave a
//! project without an owner, but can hand ownership over in one transaction; what admins may
//! legitimately do still works.
//!
//! World: tenant A, project A1: `alice` owner, `carol` admin, `dave` viewer.

use sqlx::{Executor, PgPool};
use tenancy_runtime::{ProjectId, ScopedTx, Tenancy, TenantId, UserId};
use tenancy_tests::{TestDb, TwoTenants};
use uuid::Uuid;

use tenancy_generated::roles::{Admin, Owner};

struct World {
    db: TestDb,
    tenants: TwoTenants,
    carol: Uuid,
    dave: Uuid,
    pool: PgPool,
}

impl World {
    async fn new() -> World {
        let db = TestDb::fresh().await;
        let tenants = TwoTenants::seed(&db, 1, 1).await;
        let (carol, dave) = (Uuid::new_v4(), Uuid::new_v4());
        for (user, role) in [(carol, "admin"), (dave, "viewer")] {
            sqlx::query(
                "INSERT INTO user_project_roles (tenant_id, project_id, user_id, role) \
                 VALUES ($1, $2, $3, $4::tenancy.project_role)",
            )
            .bind(tenants.tenant_a)
            .bind(tenants.a1)
            .bind(user)
            .bind(role)
            .execute(db.admin_pool())
            .await
            .unwrap();
        }
        let pool = PgPool::connect(db.app_url()).await.unwrap();
        World {
            db,
            tenants,
            carol,
            dave,
            pool,
        }
    }

    fn tenancy(&self) -> Tenancy {
        Tenancy::with_config(self.pool.clone(), tenancy_generated::config())
    }

    /// A transaction of `user` in A1 at least `R`, through the runtime.
    async fn begin<R: tenancy_runtime::Role>(
        &self,
        user: Uuid,
    ) -> ScopedTx<tenancy_runtime::ProjectScope<R>> {
        let tenancy = self.tenancy();
        let ctx = tenancy
            .authorize(UserId::new(user), TenantId::new(self.tenants.tenant_a))
            .await
            .unwrap();
        let scope = ctx
            .project(ProjectId::new(self.tenants.a1))
            .unwrap()
            .require::<R>()
            .unwrap();
        tenancy.begin(&scope).await.unwrap()
    }

    /// `user`'s role in A1 as the superuser sees it.
    async fn role_of(&self, user: Uuid) -> Option<String> {
        sqlx::query_scalar(
            "SELECT role::text FROM user_project_roles WHERE tenant_id = $1 AND project_id = $2 \
             AND user_id = $3",
        )
        .bind(self.tenants.tenant_a)
        .bind(self.tenants.a1)
        .bind(user)
        .fetch_optional(self.db.admin_pool())
        .await
        .unwrap()
    }
}

/// Runs `sql` in `tx`: the rows it affected, or the SQLSTATE and message of its error.
async fn run<S: tenancy_runtime::Scope>(
    tx: &mut ScopedTx<S>,
    sql: &str,
) -> Result<u64, (String, String)> {
    match tx.connection().execute(sqlx::AssertSqlSafe(sql)).await {
        Ok(done) => Ok(done.rows_affected()),
        Err(err) => {
            let db = err.as_database_error().expect("a database error");
            Err((
                db.code().map(|c| c.into_owned()).unwrap_or_default(),
                db.message().to_owned(),
            ))
        }
    }
}

#[tokio::test]
async fn an_admin_cannot_promote_itself_or_grant_owner() {
    let w = World::new().await;
    let a1 = w.tenants.a1;
    let t = w.tenants.tenant_a;

    let mut tx = w.begin::<Admin>(w.carol).await;
    let promoted = run(
        &mut tx,
        &format!(
            "UPDATE user_project_roles SET role = 'owner' WHERE project_id = '{a1}' AND user_id = '{}'",
            w.carol
        ),
    )
    .await;
    let (code, message) = promoted.expect_err("self-promotion to owner must fail");
    assert_eq!(code, "42501", "{message}");
    assert!(
        message.contains("user_project_roles_role_ceiling_update"),
        "the refusal names the rule: {message}"
    );
    drop(tx);
    assert_eq!(w.role_of(w.carol).await.as_deref(), Some("admin"));

    let newcomer = Uuid::new_v4();
    let mut tx = w.begin::<Admin>(w.carol).await;
    let granted = run(
        &mut tx,
        &format!(
            "INSERT INTO user_project_roles (tenant_id, project_id, user_id, role) \
             VALUES ('{t}', '{a1}', '{newcomer}', 'owner')"
        ),
    )
    .await;
    let (code, message) = granted.expect_err("an admin granting owner must fail");
    assert_eq!(code, "42501", "{message}");
    assert!(
        message.contains("user_project_roles_role_ceiling_insert"),
        "{message}"
    );
    drop(tx);
    assert_eq!(w.role_of(newcomer).await, None);
}

#[tokio::test]
async fn an_admin_cannot_demote_or_remove_an_owner() {
    let w = World::new().await;
    let (a1, alice) = (w.tenants.a1, w.tenants.alice);

    let mut tx = w.begin::<Admin>(w.carol).await;
    let demoted = run(
        &mut tx,
        &format!(
            "UPDATE user_project_roles SET role = 'viewer' WHERE project_id = '{a1}' AND user_id = '{alice}'"
        ),
    )
    .await;
    assert_eq!(demoted, Ok(0), "the owner row is out of an admin's reach");
    let removed = run(
        &mut tx,
        &format!(
            "DELETE FROM user_project_roles WHERE project_id = '{a1}' AND user_id = '{alice}'"
        ),
    )
    .await;
    assert_eq!(removed, Ok(0));
    tx.commit().await.unwrap();
    assert_eq!(w.role_of(alice).await.as_deref(), Some("owner"));
}

#[tokio::test]
async fn admins_still_manage_roles_up_to_their_own() {
    let w = World::new().await;
    let (t, a1) = (w.tenants.tenant_a, w.tenants.a1);
    let newcomer = Uuid::new_v4();

    let mut tx = w.begin::<Admin>(w.carol).await;
    assert_eq!(
        run(
            &mut tx,
            &format!(
                "INSERT INTO user_project_roles (tenant_id, project_id, user_id, role) \
                 VALUES ('{t}', '{a1}', '{newcomer}', 'admin')"
            )
        )
        .await,
        Ok(1)
    );
    assert_eq!(
        run(
            &mut tx,
            &format!(
                "UPDATE user_project_roles SET role = 'editor' WHERE project_id = '{a1}' AND user_id = '{}'",
                w.dave
            )
        )
        .await,
        Ok(1)
    );
    assert_eq!(
        run(
            &mut tx,
            &format!(
                "DELETE FROM user_project_roles WHERE project_id = '{a1}' AND user_id = '{newcomer}'"
            )
        )
        .await,
        Ok(1)
    );
    tx.commit().await.unwrap();
    assert_eq!(w.role_of(w.dave).await.as_deref(), Some("editor"));
    assert_eq!(w.role_of(newcomer).await, None);
}

#[tokio::test]
async fn the_last_owner_cannot_leave_but_can_hand_over() {
    let w = World::new().await;
    let (a1, alice) = (w.tenants.a1, w.tenants.alice);

    for statement in [
        format!("DELETE FROM user_project_roles WHERE project_id = '{a1}' AND user_id = '{alice}'"),
        format!(
            "UPDATE user_project_roles SET role = 'admin' WHERE project_id = '{a1}' AND user_id = '{alice}'"
        ),
    ] {
        // At commit: the runtime's typed error.
        let mut tx = w.begin::<Owner>(alice).await;
        assert_eq!(run(&mut tx, &statement).await, Ok(1), "{statement}");
        let committed = tx.commit().await;
        assert!(
            matches!(committed, Err(tenancy_runtime::Error::Forbidden)),
            "{statement}: {committed:?}"
        );
        // The same check run early (SET CONSTRAINTS ... IMMEDIATE) shows the database's words.
        let mut tx = w.begin::<Owner>(alice).await;
        assert_eq!(run(&mut tx, &statement).await, Ok(1), "{statement}");
        let (code, message) = run(&mut tx, "SET CONSTRAINTS ALL IMMEDIATE")
            .await
            .expect_err("the deferred check fires");
        assert_eq!(code, "42501", "{message}");
        assert!(
            message.starts_with("tenancy authority: project ")
                && message.ends_with("would be left with no owner"),
            "{statement}: {message}"
        );
        drop(tx);
        assert_eq!(w.role_of(alice).await.as_deref(), Some("owner"), "{statement}");
    }

    // Hand-over in one transaction: carol becomes owner, then alice steps down.
    let mut tx = w.begin::<Owner>(alice).await;
    for statement in [
        format!(
            "UPDATE user_project_roles SET role = 'owner' WHERE project_id = '{a1}' AND user_id = '{}'",
            w.carol
        ),
        format!(
            "UPDATE user_project_roles SET role = 'admin' WHERE project_id = '{a1}' AND user_id = '{alice}'"
        ),
    ] {
        assert_eq!(run(&mut tx, &statement).await, Ok(1), "{statement}");
    }
    tx.commit().await.unwrap();
    assert_eq!(w.role_of(w.carol).await.as_deref(), Some("owner"));
    assert_eq!(w.role_of(alice).await.as_deref(), Some("admin"));

    // Deleting the project (operator path) takes its memberships with it: no owner is needed
    // for a project that no longer exists.
    sqlx::query("DELETE FROM projects WHERE tenant_id = $1 AND id = $2")
        .bind(w.tenants.tenant_a)
        .bind(a1)
        .execute(w.db.admin_pool())
        .await
        .unwrap();
    assert_eq!(w.role_of(w.carol).await, None);
}

/// The audit table takes rows from the app role only as the current user and only for a
/// project the user holds a role in: no tenant-wide rows, no rows of a project of its tenant
/// that it has no role in.
#[tokio::test]
async fn audit_rows_name_only_the_callers_own_projects() {
    let w = World::new().await;
    let (t, a1) = (w.tenants.tenant_a, w.tenants.a1);
    let a2 = Uuid::new_v4();
    sqlx::query("INSERT INTO projects (tenant_id, id, name, slug) VALUES ($1, $2, 'a2', 'a2')")
        .bind(t)
        .bind(a2)
        .execute(w.db.admin_pool())
        .await
        .unwrap();
    let insert = |project: &str| {
        format!(
            "INSERT INTO tenancy.audit_log (tenant_id, project_id, actor, action) \
             VALUES ('{t}', {project}, '{}', 'note.added')",
            w.dave
        )
    };
    for (label, project) in [
        ("tenant-wide", "NULL".to_owned()),
        ("hidden project", format!("'{a2}'")),
    ] {
        let mut tx = w.begin::<tenancy_generated::roles::Viewer>(w.dave).await;
        let (code, message) = run(&mut tx, &insert(&project)).await.expect_err(label);
        assert_eq!(code, "42501", "{label}: {message}");
        assert!(message.contains("audit_log"), "{label}: {message}");
    }
    let mut tx = w.begin::<tenancy_generated::roles::Viewer>(w.dave).await;
    assert_eq!(run(&mut tx, &insert(&format!("'{a1}'"))).await, Ok(1));
    tx.commit().await.unwrap();
    let rows: i64 =
        sqlx::query_scalar("SELECT count(*) FROM tenancy.audit_log WHERE tenant_id = $1")
            .bind(t)
            .fetch_one(w.db.admin_pool())
            .await
            .unwrap();
    assert_eq!(rows, 1, "only the row naming dave's own project landed");

    // The identity `id` counts every tenant's audit rows: the app role cannot read it, only
    // the other columns.
    let mut tx = w.begin::<tenancy_generated::roles::Viewer>(w.dave).await;
    let (code, message) = run(&mut tx, "SELECT id FROM tenancy.audit_log")
        .await
        .expect_err("id is not readable");
    assert_eq!(code, "42501", "{message}");
    drop(tx);
    let mut tx = w.begin::<tenancy_generated::roles::Viewer>(w.dave).await;
    let actors: Vec<String> = sqlx::query_scalar("SELECT actor FROM tenancy.audit_log")
        .fetch_all(tx.connection())
        .await
        .unwrap();
    assert_eq!(actors, [w.dave.to_string()]);
}

/// Large objects would be an unscoped store shared by every tenant (one login role owns them
/// all): the migrations revoke the large-object functions from PUBLIC, so the app role can
/// neither create one nor read one the operator created.
#[tokio::test]
async fn the_app_role_has_no_large_objects() {
    let w = World::new().await;
    let oid: i64 = sqlx::query_scalar("SELECT lo_from_bytea(0, 'tenant B secret')::int8")
        .fetch_one(w.db.admin_pool())
        .await
        .unwrap();
    for statement in [
        "SELECT lo_from_bytea(0, 'x')".to_owned(),
        format!("SELECT lo_get({oid})"),
        format!("SELECT lo_open({oid}, 262144)"),
        format!("SELECT lo_unlink({oid})"),
    ] {
        let mut tx = w.begin::<Admin>(w.carol).await;
        let (code, message) = run(&mut tx, &statement).await.expect_err(&statement);
        assert_eq!(code, "42501", "{statement}: {message}");
        assert!(
            message.starts_with("permission denied for function lo_"),
            "{statement}: {message}"
        );
    }
}

/// The one existence oracle the RAG model has (`tenancy explain` lists it): the projects' slug
/// is unique per tenant, so an admin renaming its project learns whether a project it cannot
/// see holds a slug, within its own tenant only; another tenant's slugs never collide.
#[tokio::test]
async fn a_project_slug_reveals_hidden_projects_of_the_own_tenant_only() {
    let w = World::new().await;
    let (t, a1) = (w.tenants.tenant_a, w.tenants.a1);
    sqlx::query("INSERT INTO projects (tenant_id, id, name, slug) VALUES ($1, $2, 'h', 'hidden')")
        .bind(t)
        .bind(Uuid::new_v4())
        .execute(w.db.admin_pool())
        .await
        .unwrap();
    sqlx::query("UPDATE projects SET slug = 'elsewhere' WHERE tenant_id = $1")
        .bind(w.tenants.tenant_b)
        .execute(w.db.admin_pool())
        .await
        .unwrap();
    let rename = |slug: &str| format!("UPDATE projects SET slug = '{slug}' WHERE id = '{a1}'");

    let mut tx = w.begin::<Admin>(w.carol).await;
    let visible: i64 = sqlx::query_scalar("SELECT count(*) FROM projects")
        .fetch_one(tx.connection())
        .await
        .unwrap();
    assert_eq!(visible, 1, "carol sees only A1");
    let (code, _) = run(&mut tx, &rename("hidden"))
        .await
        .expect_err("the hidden project's slug collides");
    assert_eq!(code, "23505");
    drop(tx);

    let mut tx = w.begin::<Admin>(w.carol).await;
    assert_eq!(
        run(&mut tx, &rename("elsewhere")).await,
        Ok(1),
        "tenant B's slug is no oracle"
    );
    tx.commit().await.unwrap();
}
