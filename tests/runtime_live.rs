//! tenancy-runtime against the generated schema on a real PostgreSQL: authorization reads the
//! memberships table, scoped transactions see exactly their scope, context never outlives its
//! transaction. Fixtures are written through the admin pool (bypasses row-level security); the
//! runtime always runs on the application role's pool.

use sqlx::postgres::PgPoolOptions;
use sqlx::PgPool;
use tenancy_runtime::{
    AtLeast, Error, ProjectId, ProjectScope, Role, Scope, Tenancy, TenancyConfig, TenantId, UserId,
};
use tenancy_tests::{context_value, TestDb};
use uuid::Uuid;

tenancy_runtime::roles! { Viewer = "viewer", Editor = "editor", Admin = "admin", Owner = "owner" }

/// Two tenants. User `alice` is viewer in A1, editor in A2, nothing in A3, owner in B1.
/// User `nobody` holds no role anywhere. Documents: 2 in A1, 1 in A2, 1 in A3, 1 in B1.
struct Fixture {
    db: TestDb,
    tenant_a: TenantId,
    tenant_b: TenantId,
    a1: ProjectId,
    a2: ProjectId,
    a3: ProjectId,
    b1: ProjectId,
    alice: UserId,
    nobody: UserId,
}

impl Fixture {
    async fn new() -> Fixture {
        let db = TestDb::fresh().await;
        let fixture = Fixture {
            db,
            tenant_a: TenantId::new(Uuid::new_v4()),
            tenant_b: TenantId::new(Uuid::new_v4()),
            a1: ProjectId::new(Uuid::new_v4()),
            a2: ProjectId::new(Uuid::new_v4()),
            a3: ProjectId::new(Uuid::new_v4()),
            b1: ProjectId::new(Uuid::new_v4()),
            alice: UserId::new(Uuid::new_v4()),
            nobody: UserId::new(Uuid::new_v4()),
        };
        let admin = fixture.db.admin_pool();
        for (tenant, slug) in [(fixture.tenant_a, "a"), (fixture.tenant_b, "b")] {
            sqlx::query("INSERT INTO tenants (id, name, slug) VALUES ($1, $2, $2)")
                .bind(tenant.as_uuid())
                .bind(slug)
                .execute(admin)
                .await
                .unwrap();
        }
        for (tenant, project, slug) in [
            (fixture.tenant_a, fixture.a1, "a1"),
            (fixture.tenant_a, fixture.a2, "a2"),
            (fixture.tenant_a, fixture.a3, "a3"),
            (fixture.tenant_b, fixture.b1, "b1"),
        ] {
            sqlx::query("INSERT INTO projects (tenant_id, id, name, slug) VALUES ($1, $2, $3, $3)")
                .bind(tenant.as_uuid())
                .bind(project.as_uuid())
                .bind(slug)
                .execute(admin)
                .await
                .unwrap();
        }
        for (tenant, project, role) in [
            (fixture.tenant_a, fixture.a1, "viewer"),
            (fixture.tenant_a, fixture.a2, "editor"),
            (fixture.tenant_b, fixture.b1, "owner"),
        ] {
            sqlx::query(
                "INSERT INTO user_project_roles (tenant_id, project_id, user_id, role) \
                 VALUES ($1, $2, $3, $4::tenancy.project_role)",
            )
            .bind(tenant.as_uuid())
            .bind(project.as_uuid())
            .bind(fixture.alice.as_uuid())
            .bind(role)
            .execute(admin)
            .await
            .unwrap();
        }
        for (tenant, project, title) in [
            (fixture.tenant_a, fixture.a1, "a1-first"),
            (fixture.tenant_a, fixture.a1, "a1-second"),
            (fixture.tenant_a, fixture.a2, "a2-only"),
            (fixture.tenant_a, fixture.a3, "a3-hidden"),
            (fixture.tenant_b, fixture.b1, "b1-other-tenant"),
        ] {
            fixture
                .insert_document_as_admin(tenant, project, title)
                .await;
        }
        fixture
    }

    async fn insert_document_as_admin(&self, tenant: TenantId, project: ProjectId, title: &str) {
        sqlx::query(
            "INSERT INTO documents (tenant_id, project_id, title, content_hash, created_by) \
             VALUES ($1, $2, $3, $3, $4)",
        )
        .bind(tenant.as_uuid())
        .bind(project.as_uuid())
        .bind(title)
        .bind(self.alice.as_uuid())
        .execute(self.db.admin_pool())
        .await
        .unwrap();
    }

    fn tenancy(&self) -> Tenancy {
        Tenancy::new(self.db.app_pool().clone())
    }

    /// An application-role pool with exactly one connection, so consecutive transactions are
    /// guaranteed to reuse the same server session.
    async fn single_connection_app_pool(&self) -> PgPool {
        PgPoolOptions::new()
            .max_connections(1)
            .connect(self.db.app_url())
            .await
            .unwrap()
    }

    async fn admin_document_count(&self) -> i64 {
        sqlx::query_scalar("SELECT count(*) FROM documents")
            .fetch_one(self.db.admin_pool())
            .await
            .unwrap()
    }
}

/// Titles visible in `tx`, sorted; also checks every visible row is inside the scope.
async fn visible_titles<S: Scope>(tx: &mut tenancy_runtime::ScopedTx<S>) -> Vec<String> {
    let rows: Vec<(Uuid, Uuid, String)> =
        sqlx::query_as("SELECT tenant_id, project_id, title FROM documents ORDER BY title")
            .fetch_all(tx.connection())
            .await
            .unwrap();
    let scope = tx.scope().clone();
    let scope_projects: Vec<Uuid> = scope.project_ids().iter().map(|p| p.as_uuid()).collect();
    for (tenant, project, title) in &rows {
        assert_eq!(
            *tenant,
            scope.tenant_id().as_uuid(),
            "{title} from another tenant"
        );
        assert!(
            scope_projects.contains(project),
            "{title} outside the scope"
        );
    }
    rows.into_iter().map(|(_, _, title)| title).collect()
}

#[tokio::test]
async fn authorize_reads_memberships_of_the_asked_tenant_only() {
    let f = Fixture::new().await;
    let tenancy = f.tenancy();

    let in_a = tenancy.authorize(f.alice, f.tenant_a).await.unwrap();
    assert_eq!(in_a.user_id(), f.alice);
    assert_eq!(in_a.tenant_id(), f.tenant_a);
    let mut expected = vec![(f.a1, "viewer"), (f.a2, "editor")];
    expected.sort();
    assert_eq!(in_a.memberships().collect::<Vec<_>>(), expected);

    let in_b = tenancy.authorize(f.alice, f.tenant_b).await.unwrap();
    assert_eq!(
        in_b.memberships().collect::<Vec<_>>(),
        vec![(f.b1, "owner")]
    );

    // A project of the other tenant is "not found", exactly like a missing one.
    assert!(matches!(in_a.project(f.b1), Err(Error::NotFound)));
    assert!(matches!(in_a.project(f.a3), Err(Error::NotFound)));
    assert!(matches!(in_a.projects(&[f.a1, f.b1]), Err(Error::NotFound)));
}

#[tokio::test]
async fn authorize_without_membership_is_not_found() {
    let f = Fixture::new().await;
    let tenancy = f.tenancy();
    let nobody = tenancy.authorize(f.nobody, f.tenant_a).await;
    assert!(matches!(nobody, Err(Error::NotFound)), "{nobody:?}");
    let unknown_tenant = tenancy
        .authorize(f.alice, TenantId::new(Uuid::new_v4()))
        .await;
    assert!(matches!(unknown_tenant, Err(Error::NotFound)));
}

#[tokio::test]
async fn scoped_tx_sees_only_its_scopes_rows() {
    let f = Fixture::new().await;
    let tenancy = f.tenancy();
    let ctx = tenancy.authorize(f.alice, f.tenant_a).await.unwrap();

    let a1 = ctx.project(f.a1).unwrap().require::<Viewer>().unwrap();
    let mut tx = tenancy.begin(&a1).await.unwrap();
    assert_eq!(visible_titles(&mut tx).await, ["a1-first", "a1-second"]);
    // Asking for other rows explicitly changes nothing: the database filters them.
    let elsewhere: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM documents WHERE project_id = ANY($1) OR tenant_id = $2",
    )
    .bind(vec![f.a2.as_uuid(), f.a3.as_uuid(), f.b1.as_uuid()])
    .bind(f.tenant_b.as_uuid())
    .fetch_one(tx.connection())
    .await
    .unwrap();
    assert_eq!(elsewhere, 0);
    tx.commit().await.unwrap();

    let both = ctx
        .projects(&[f.a2, f.a1])
        .unwrap()
        .require::<Viewer>()
        .unwrap();
    let mut tx = tenancy.begin(&both).await.unwrap();
    assert_eq!(
        visible_titles(&mut tx).await,
        ["a1-first", "a1-second", "a2-only"]
    );
    drop(tx);

    let editable = ctx.all_projects().with_at_least::<Editor>();
    assert_eq!(editable.project_ids(), vec![f.a2]);
    let mut tx = tenancy.begin(&editable).await.unwrap();
    assert_eq!(visible_titles(&mut tx).await, ["a2-only"]);
    drop(tx);

    let owned = ctx.all_projects().with_at_least::<Owner>();
    assert!(owned.is_empty());
    let mut tx = tenancy.begin(&owned).await.unwrap();
    assert!(visible_titles(&mut tx).await.is_empty());
    drop(tx);

    // Same user, other tenant: only that tenant's project.
    let in_b = tenancy.authorize(f.alice, f.tenant_b).await.unwrap();
    let b_all = in_b.all_projects().require::<Owner>().unwrap();
    let mut tx = tenancy.begin(&b_all).await.unwrap();
    assert_eq!(visible_titles(&mut tx).await, ["b1-other-tenant"]);
}

#[tokio::test]
async fn require_refuses_a_role_the_user_does_not_hold() {
    let f = Fixture::new().await;
    let ctx = f.tenancy().authorize(f.alice, f.tenant_a).await.unwrap();
    let denied = ctx.project(f.a1).unwrap().require::<Editor>();
    assert!(matches!(denied, Err(Error::Forbidden)));
    let denied = ctx.all_projects().require::<Editor>();
    assert!(matches!(denied, Err(Error::Forbidden)));
    assert!(ctx.project(f.a2).unwrap().require::<Editor>().is_ok());
}

#[tokio::test]
async fn the_first_query_of_the_transaction_sees_the_context() {
    let f = Fixture::new().await;
    let tenancy = f.tenancy();
    let ctx = tenancy.authorize(f.alice, f.tenant_a).await.unwrap();
    let scope = ctx
        .projects(&[f.a1, f.a2])
        .unwrap()
        .require::<Viewer>()
        .unwrap();
    let mut tx = tenancy.begin(&scope).await.unwrap();

    // Nothing else was sent since begin(): BEGIN and install_context travelled together, and
    // the verifier hands the policies exactly the claims the runtime signed.
    let context: String = sqlx::query_scalar("SELECT tenancy.context_claims()")
        .fetch_one(tx.connection())
        .await
        .unwrap();
    // Viewer of A1, editor of A2: field 3 (viewer or above) lists both, field 4 (editor or
    // above) only A2, projects sorted by id; no admin/owner fields.
    let mut roles = [(f.a1, "viewer"), (f.a2, "editor")];
    roles.sort();
    let roles = roles
        .iter()
        .map(|(project, role)| format!("{project}:{role}"))
        .collect::<Vec<_>>()
        .join(",");
    let expected = context_value(&f.tenant_a.to_string(), &f.alice.to_string(), &roles);
    let mut both = [f.a1.to_string(), f.a2.to_string()];
    both.sort();
    assert_eq!(
        expected,
        format!(
            "{};{};{{{}}};{{{}}}",
            f.tenant_a,
            f.alice,
            both.join(","),
            f.a2
        )
    );
    assert_eq!(context, expected);
    assert_eq!(tenancy.context_claims(&scope).unwrap(), expected);

    // The helpers the policies call read the fields as intended.
    let ids: (Option<Uuid>, Option<Uuid>) =
        sqlx::query_as("SELECT tenancy.current_tenant_id(), tenancy.current_user_id()")
            .fetch_one(tx.connection())
            .await
            .unwrap();
    assert_eq!(ids, (Some(f.tenant_a.as_uuid()), Some(f.alice.as_uuid())));
    let projects: (Vec<Uuid>, Vec<Uuid>, Vec<Uuid>) = sqlx::query_as(
        "SELECT ARRAY(SELECT unnest(tenancy.project_ids('viewer')) ORDER BY 1), \
                tenancy.project_ids('editor'), tenancy.project_ids('admin')",
    )
    .fetch_one(tx.connection())
    .await
    .unwrap();
    let mut viewer = vec![f.a1.as_uuid(), f.a2.as_uuid()];
    viewer.sort();
    assert_eq!(projects, (viewer, vec![f.a2.as_uuid()], Vec::new()));
}

#[tokio::test]
async fn dropping_a_scoped_tx_rolls_back() {
    let f = Fixture::new().await;
    let tenancy = f.tenancy();
    let ctx = tenancy.authorize(f.alice, f.tenant_a).await.unwrap();
    let scope: ProjectScope<Editor> = ctx.project(f.a2).unwrap().require().unwrap();
    let before = f.admin_document_count().await;

    let mut tx = tenancy.begin(&scope).await.unwrap();
    insert_document(&mut tx, "dropped").await.unwrap();
    assert!(visible_titles(&mut tx)
        .await
        .contains(&"dropped".to_owned()));
    drop(tx);
    assert_eq!(f.admin_document_count().await, before);

    let mut tx = tenancy.begin(&scope).await.unwrap();
    insert_document(&mut tx, "rolled back").await.unwrap();
    tx.rollback().await.unwrap();
    assert_eq!(f.admin_document_count().await, before);
}

async fn insert_document<S: tenancy_runtime::WriteScope<Editor>>(
    tx: &mut tenancy_runtime::ScopedTx<S>,
    title: &str,
) -> Result<(), Error> {
    let tenant = tx.scope().tenant_id().as_uuid();
    let project = tx.scope().project_id().as_uuid();
    let user = tx.scope().user_id().as_uuid();
    sqlx::query(
        "INSERT INTO documents (tenant_id, project_id, title, content_hash, created_by) \
         VALUES ($1, $2, $3, $3, $4)",
    )
    .bind(tenant)
    .bind(project)
    .bind(title)
    .bind(user)
    .execute(tx.connection())
    .await?;
    Ok(())
}

#[tokio::test]
async fn after_commit_the_pooled_connection_carries_no_context() {
    let f = Fixture::new().await;
    let pool = f.single_connection_app_pool().await;
    let tenancy = Tenancy::new(pool.clone());
    let ctx = tenancy.authorize(f.alice, f.tenant_a).await.unwrap();
    let scope = ctx.project(f.a2).unwrap().require::<Editor>().unwrap();
    let before = f.admin_document_count().await;

    let mut tx = tenancy.begin(&scope).await.unwrap();
    let scoped_pid: i32 = sqlx::query_scalar("SELECT pg_backend_pid()")
        .fetch_one(tx.connection())
        .await
        .unwrap();
    insert_document(&mut tx, "committed").await.unwrap();
    tx.commit().await.unwrap();
    assert_eq!(f.admin_document_count().await, before + 1);
    assert_no_context_left(&pool, scoped_pid).await;

    // The same holds after a transaction that was dropped instead of committed.
    let mut tx = tenancy.begin(&scope).await.unwrap();
    assert_eq!(visible_titles(&mut tx).await, ["a2-only", "committed"]);
    drop(tx);
    assert_no_context_left(&pool, scoped_pid).await;
}

/// A plain transaction on the one-connection app pool: same session, no context, no rows.
async fn assert_no_context_left(pool: &PgPool, scoped_pid: i32) {
    let mut plain = pool.begin().await.unwrap();
    let pid: i32 = sqlx::query_scalar("SELECT pg_backend_pid()")
        .fetch_one(&mut *plain)
        .await
        .unwrap();
    assert_eq!(pid, scoped_pid, "the pool must hand back the same session");
    let context: Option<String> =
        sqlx::query_scalar("SELECT current_setting('tenancy.context', true)")
            .fetch_one(&mut *plain)
            .await
            .unwrap();
    assert!(
        context.as_deref().unwrap_or("").is_empty(),
        "context leaked: {context:?}"
    );
    let visible: i64 = sqlx::query_scalar("SELECT count(*) FROM documents")
        .fetch_one(&mut *plain)
        .await
        .unwrap();
    assert_eq!(visible, 0);
    plain.rollback().await.unwrap();
}

/// A role type that claims a low rank passes `require`, but the database sees the user's actual
/// role (viewer in A1) and refuses the write.
#[tokio::test]
async fn an_invented_role_type_gains_nothing_at_the_database() {
    struct ClaimsEditor;
    impl Role for ClaimsEditor {
        const NAME: &'static str = "editor";
        const RANK: u8 = 0;
    }
    impl AtLeast<Editor> for ClaimsEditor {}
    impl AtLeast<Viewer> for ClaimsEditor {}

    let f = Fixture::new().await;
    let tenancy = f.tenancy();
    let ctx = tenancy.authorize(f.alice, f.tenant_a).await.unwrap();
    let forged = ctx
        .project(f.a1)
        .unwrap()
        .require::<ClaimsEditor>()
        .unwrap();
    let before = f.admin_document_count().await;

    let mut tx = tenancy.begin(&forged).await.unwrap();
    let refused = insert_document(&mut tx, "forged").await;
    assert!(matches!(refused, Err(Error::Forbidden)), "{refused:?}");
    drop(tx);
    assert_eq!(f.admin_document_count().await, before);

    // The real editor scope may write.
    let editor = ctx.project(f.a2).unwrap().require::<Editor>().unwrap();
    let mut tx = tenancy.begin(&editor).await.unwrap();
    insert_document(&mut tx, "real editor").await.unwrap();
    tx.commit().await.unwrap();
    assert_eq!(f.admin_document_count().await, before + 1);
}

#[tokio::test]
async fn database_errors_map_to_runtime_errors() {
    let f = Fixture::new().await;
    let tenancy = f.tenancy();
    let ctx = tenancy.authorize(f.alice, f.tenant_a).await.unwrap();
    let scope = ctx.project(f.a2).unwrap().require::<Editor>().unwrap();

    let mut tx = tenancy.begin(&scope).await.unwrap();
    // content_hash is unique per project; "a2-only" is taken.
    let duplicate = insert_document(&mut tx, "a2-only").await;
    assert!(matches!(duplicate, Err(Error::Conflict)), "{duplicate:?}");
    drop(tx);

    let mut tx = tenancy.begin(&scope).await.unwrap();
    let missing: Result<(i32,), Error> = sqlx::query_as("SELECT 1 WHERE false")
        .fetch_one(tx.connection())
        .await
        .map_err(Error::from);
    assert!(matches!(missing, Err(Error::NotFound)));
}

/// With `citus: true` the runtime speaks the same signed contract 3 (the Citus target's
/// `install_context` carries the seal to the workers, docs/citus.md); `check` refuses a
/// database without the citus extension at startup, and the statement is the signed one.
#[tokio::test]
async fn citus_mode_is_refused_by_a_database_without_citus() {
    let f = Fixture::new().await;
    let tenancy = Tenancy::with_config(
        f.db.app_pool().clone(),
        TenancyConfig {
            citus: true,
            ..TenancyConfig::default()
        },
    );
    let refused = tenancy.check().await;
    match refused {
        Err(Error::Misconfigured(message)) => {
            assert!(message.contains("has no citus extension"), "{message}")
        }
        other => panic!("expected Misconfigured, got {other:?}"),
    }
    let signed = f.tenancy();
    let ctx = signed.authorize(f.alice, f.tenant_a).await.unwrap();
    let scope = ctx.project(f.a1).unwrap().require::<Viewer>().unwrap();
    let statement = tenancy.begin_statement(&scope).unwrap();
    assert!(statement.contains(".install_context('"), "{statement}");
    assert!(
        !statement.contains("SET LOCAL tenancy.context"),
        "{statement}"
    );
}
