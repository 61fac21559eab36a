//! Tenant-wide roles (docs/dsl.md, "Tenant-wide roles"): the RAG model's
//! `tenant_memberships table tenant_user_roles` gives a user a role in every project of the
//! tenant. Proven on the generated migrations, as the application role:
//!
//! - through the runtime: a tenant admin with no project membership is authorized, gets every
//!   project of its tenant (one created after the grant included) and none of another tenant,
//!   reads and writes project data as an admin, and the higher of a project role and the
//!   tenant-wide role wins;
//! - the generated repository of the tenant memberships table takes only a tenant scope (the
//!   compile-time side is the `TenantScope` doc test); a tenant admin grants up to its own role;
//! - with raw SQL under genuinely signed contexts: a project admin cannot write the tenant
//!   memberships table, the role ceiling refuses a tenant admin granting owner, a user reads
//!   only their own tenant membership row, and no project may carry its tenant's id.

#![allow(clippy::unwrap_used)]

use sqlx::{Connection, Executor, PgConnection};
use tenancy_generated::roles::{Admin, Editor, Owner, Viewer};
use tenancy_generated::{NewTenantUserRole, ProjectRole, TenantUserRoleFilter, TenantUserRoles};
use tenancy_runtime::{Error, ProjectId, Tenancy, TenantId, UserId};
use tenancy_tests::{set_context, TestDb, TwoTenants};
use uuid::Uuid;

struct World {
    db: TestDb,
    tenants: TwoTenants,
    /// A second project of tenant A.
    a2: Uuid,
    /// Tenant-wide admin of A; no project role.
    tara: Uuid,
    /// Tenant-wide viewer of A and editor of A2.
    vic: Uuid,
}

impl World {
    async fn new() -> World {
        let db = TestDb::fresh().await;
        let tenants = TwoTenants::seed(&db, 2, 2).await;
        let (a2, tara, vic) = (Uuid::new_v4(), Uuid::new_v4(), Uuid::new_v4());
        let admin = db.admin_pool();
        sqlx::query("INSERT INTO projects (tenant_id, id, name, slug) VALUES ($1, $2, 'A2', 'a2')")
            .bind(tenants.tenant_a)
            .bind(a2)
            .execute(admin)
            .await
            .unwrap();
        sqlx::query(
            "INSERT INTO tenant_user_roles (tenant_id, user_id, role) \
             VALUES ($1, $2, 'admin'), ($1, $3, 'viewer')",
        )
        .bind(tenants.tenant_a)
        .bind(tara)
        .bind(vic)
        .execute(admin)
        .await
        .unwrap();
        sqlx::query(
            "INSERT INTO user_project_roles (tenant_id, project_id, user_id, role) \
             VALUES ($1, $2, $3, 'editor')",
        )
        .bind(tenants.tenant_a)
        .bind(a2)
        .bind(vic)
        .execute(admin)
        .await
        .unwrap();
        World {
            db,
            tenants,
            a2,
            tara,
            vic,
        }
    }

    fn tenancy(&self) -> Tenancy {
        Tenancy::with_config(self.db.app_pool().clone(), tenancy_generated::config())
    }

    /// An app-role connection inside a transaction carrying a signed context with
    /// `entries` (`<id>:<role>,...`; the tenant id stands for a tenant-wide role, as the
    /// runtime writes it).
    async fn raw(&self, tenant: Uuid, user: Uuid, entries: &str) -> PgConnection {
        let mut conn = PgConnection::connect(self.db.app_url()).await.unwrap();
        conn.execute("BEGIN").await.unwrap();
        let context = set_context(&tenant.to_string(), &user.to_string(), entries);
        conn.execute(sqlx::AssertSqlSafe(context)).await.unwrap();
        conn
    }
}

fn code(err: &sqlx::Error) -> Option<String> {
    err.as_database_error()
        .and_then(|e| e.code())
        .map(|c| c.into_owned())
}

#[tokio::test]
async fn a_tenant_admin_reaches_every_project_of_its_tenant_and_no_other() {
    let w = World::new().await;
    let tenancy = w.tenancy();
    let tenant_a = TenantId::new(w.tenants.tenant_a);
    let ctx = tenancy
        .authorize(UserId::new(w.tara), tenant_a)
        .await
        .unwrap();
    assert_eq!(ctx.tenant_role_name(), Some("admin"));
    let mut projects: Vec<Uuid> = ctx.memberships().map(|(p, _)| p.as_uuid()).collect();
    let mut expected = vec![w.tenants.a1, w.a2];
    projects.sort();
    expected.sort();
    assert_eq!(
        projects, expected,
        "every project of tenant A, nothing else"
    );
    assert!(ctx.memberships().all(|(_, role)| role == "admin"));

    // Another tenant's project is not found, as for any user without a role there.
    assert!(matches!(
        ctx.project(ProjectId::new(w.tenants.b1)),
        Err(Error::NotFound)
    ));
    // Tenant-wide admin: admin in A1, not owner.
    let a1 = ctx.project(ProjectId::new(w.tenants.a1)).unwrap();
    assert!(matches!(a1.require::<Owner>(), Err(Error::Forbidden)));
    let scope = a1.require::<Admin>().unwrap();

    // Reads A1's documents and deletes one (delete needs admin).
    let mut tx = tenancy.begin(&scope).await.unwrap();
    let visible: i64 = sqlx::query_scalar("SELECT count(*) FROM documents")
        .fetch_one(tx.connection())
        .await
        .unwrap();
    assert_eq!(visible, 2, "A1's two documents");
    let deleted = sqlx::query("DELETE FROM documents WHERE id = $1")
        .bind(w.tenants.a_docs[0])
        .execute(tx.connection())
        .await
        .unwrap()
        .rows_affected();
    assert_eq!(deleted, 1, "a tenant admin deletes in A1");
    let other_tenant = sqlx::query("DELETE FROM documents WHERE id = $1")
        .bind(w.tenants.b_docs[0])
        .execute(tx.connection())
        .await
        .unwrap()
        .rows_affected();
    assert_eq!(other_tenant, 0, "and nothing of tenant B");
    tx.commit().await.unwrap();

    // A user unknown to tenant B is not found there.
    assert!(matches!(
        tenancy
            .authorize(UserId::new(w.tara), TenantId::new(w.tenants.tenant_b))
            .await,
        Err(Error::NotFound)
    ));
}

#[tokio::test]
async fn a_project_created_after_the_grant_is_reached_and_the_higher_role_wins() {
    let w = World::new().await;
    let a3 = Uuid::new_v4();
    sqlx::query("INSERT INTO projects (tenant_id, id, name, slug) VALUES ($1, $2, 'A3', 'a3')")
        .bind(w.tenants.tenant_a)
        .bind(a3)
        .execute(w.db.admin_pool())
        .await
        .unwrap();
    let tenancy = w.tenancy();
    let ctx = tenancy
        .authorize(UserId::new(w.vic), TenantId::new(w.tenants.tenant_a))
        .await
        .unwrap();
    assert_eq!(ctx.tenant_role_name(), Some("viewer"));
    let roles: Vec<(Uuid, String)> = ctx
        .memberships()
        .map(|(p, r)| (p.as_uuid(), r.to_owned()))
        .collect();
    assert!(roles.contains(&(a3, "viewer".to_owned())), "{roles:?}");
    assert!(roles.contains(&(w.a2, "editor".to_owned())), "{roles:?}");
    assert!(
        roles.contains(&(w.tenants.a1, "viewer".to_owned())),
        "{roles:?}"
    );

    // Viewer in A1 through the tenant: reads, cannot insert (the database refuses too).
    let a1 = ctx.project(ProjectId::new(w.tenants.a1)).unwrap();
    assert!(matches!(a1.require::<Editor>(), Err(Error::Forbidden)));
    let scope = a1.require::<Viewer>().unwrap();
    let mut tx = tenancy.begin(&scope).await.unwrap();
    let visible: i64 = sqlx::query_scalar("SELECT count(*) FROM documents")
        .fetch_one(tx.connection())
        .await
        .unwrap();
    assert_eq!(visible, 2);
    let refused = sqlx::query(
        "INSERT INTO documents (tenant_id, project_id, title, content_hash) \
         VALUES ($1, $2, 'x', 'x')",
    )
    .bind(w.tenants.tenant_a)
    .bind(w.tenants.a1)
    .execute(tx.connection())
    .await
    .unwrap_err();
    assert_eq!(code(&refused).as_deref(), Some("42501"), "{refused}");
}

#[tokio::test]
async fn the_tenant_memberships_repository_grants_up_to_the_callers_role() {
    let w = World::new().await;
    let tenancy = w.tenancy();
    let ctx = tenancy
        .authorize(UserId::new(w.tara), TenantId::new(w.tenants.tenant_a))
        .await
        .unwrap();
    let scope = ctx.tenant().unwrap().require::<Admin>().unwrap();
    let newcomer = Uuid::new_v4();
    let mut tx = tenancy.begin(&scope).await.unwrap();
    let row = TenantUserRoles::insert(
        &mut tx,
        NewTenantUserRole {
            user_id: newcomer,
            role: ProjectRole::Editor,
        },
    )
    .await
    .unwrap();
    assert_eq!(row.tenant_id, w.tenants.tenant_a);
    assert_eq!(row.granted_by, Some(w.tara), "stamped by the database");
    let listed = TenantUserRoles::count(&mut tx, &TenantUserRoleFilter::default())
        .await
        .unwrap();
    assert_eq!(listed, 3, "tara, vic and the newcomer");
    let editors = TenantUserRoles::count(
        &mut tx,
        &TenantUserRoleFilter {
            role: Some(ProjectRole::Editor),
        },
    )
    .await
    .unwrap();
    assert_eq!(editors, 1, "the newcomer");
    tx.commit().await.unwrap();

    // Owner is above the caller's own tenant-wide role: the role ceiling refuses it.
    let mut tx = tenancy.begin(&scope).await.unwrap();
    let refused = TenantUserRoles::insert(
        &mut tx,
        NewTenantUserRole {
            user_id: Uuid::new_v4(),
            role: ProjectRole::Owner,
        },
    )
    .await
    .unwrap_err();
    assert!(matches!(refused, Error::Forbidden), "{refused:?}");
    drop(tx);

    // A tenant-wide viewer has no tenant scope for writing.
    let viewer = tenancy
        .authorize(UserId::new(w.vic), TenantId::new(w.tenants.tenant_a))
        .await
        .unwrap();
    assert!(matches!(
        viewer.tenant().unwrap().require::<Admin>(),
        Err(Error::Forbidden)
    ));
    // A project owner without a tenant-wide role has no tenant scope at all.
    let alice = tenancy
        .authorize(
            UserId::new(w.tenants.alice),
            TenantId::new(w.tenants.tenant_a),
        )
        .await
        .unwrap();
    assert!(matches!(alice.tenant(), Err(Error::NotFound)));
}

#[tokio::test]
async fn raw_sql_cannot_widen_tenant_roles() {
    let w = World::new().await;
    let (tenant_a, a1, alice) = (w.tenants.tenant_a, w.tenants.a1, w.tenants.alice);

    // The owner of project A1 (no tenant-wide role) cannot grant tenant-wide roles.
    let mut conn = w.raw(tenant_a, alice, &format!("{a1}:owner")).await;
    let refused = sqlx::query(
        "INSERT INTO tenant_user_roles (tenant_id, user_id, role) VALUES ($1, $2, 'viewer')",
    )
    .bind(tenant_a)
    .bind(alice)
    .execute(&mut conn)
    .await
    .unwrap_err();
    assert_eq!(code(&refused).as_deref(), Some("42501"), "{refused}");
    drop(conn);
    // ... and reads no one's tenant membership but its own (none).
    let mut conn = w.raw(tenant_a, alice, &format!("{a1}:owner")).await;
    let seen: i64 = sqlx::query_scalar("SELECT count(*) FROM tenant_user_roles")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    assert_eq!(seen, 0);
    drop(conn);

    // A tenant-wide viewer reads only its own row, and cannot promote itself.
    let mut conn = w.raw(tenant_a, w.vic, &format!("{tenant_a}:viewer")).await;
    let seen: Vec<Uuid> = sqlx::query_scalar("SELECT user_id FROM tenant_user_roles")
        .fetch_all(&mut conn)
        .await
        .unwrap();
    assert_eq!(seen, vec![w.vic]);
    let promoted = sqlx::query("UPDATE tenant_user_roles SET role = 'admin' WHERE user_id = $1")
        .bind(w.vic)
        .execute(&mut conn)
        .await
        .unwrap()
        .rows_affected();
    assert_eq!(promoted, 0, "no update policy admits a viewer");
    drop(conn);

    // A tenant admin cannot raise anyone to owner (the role ceiling).
    let mut conn = w.raw(tenant_a, w.tara, &format!("{tenant_a}:admin")).await;
    let refused = sqlx::query("UPDATE tenant_user_roles SET role = 'owner' WHERE user_id = $1")
        .bind(w.vic)
        .execute(&mut conn)
        .await
        .unwrap_err();
    assert_eq!(code(&refused).as_deref(), Some("42501"), "{refused}");
    drop(conn);

    // A tenant-wide admin of A writes nothing into tenant B.
    let mut conn = w.raw(tenant_a, w.tara, &format!("{tenant_a}:admin")).await;
    let refused = sqlx::query(
        "INSERT INTO tenant_user_roles (tenant_id, user_id, role) VALUES ($1, $2, 'viewer')",
    )
    .bind(w.tenants.tenant_b)
    .bind(w.tara)
    .execute(&mut conn)
    .await
    .unwrap_err();
    assert_eq!(code(&refused).as_deref(), Some("42501"), "{refused}");
    drop(conn);

    // No project may carry its tenant's id (it would read as a tenant-wide role).
    let refused = sqlx::query(
        "INSERT INTO projects (tenant_id, id, name, slug) VALUES ($1, $1, 'clash', 'clash')",
    )
    .bind(tenant_a)
    .execute(w.db.admin_pool())
    .await
    .unwrap_err();
    assert_eq!(code(&refused).as_deref(), Some("23514"), "{refused}");
}
