//! Quickstart: the whole tenancy flow against a real PostgreSQL, step by step.
//!
//! ```text
//! cargo run --example quickstart
//! ```
//!
//! The server comes from the test harness (`tenancy_tests`): `TENANCY_TEST_DATABASE_URL` if set,
//! otherwise `scripts/pg-up` (which uses `DATABASE_URL` when that server has pgvector, or starts
//! a throwaway PostgreSQL 18 + pgvector). The walkthrough runs in a fresh database with the
//! generated migrations applied; it is dropped at the end (`TENANCY_TEST_KEEP_DB=1` keeps it).
//!
//! 1. Onboarding, as maintenance: a `SystemTx` on the privileged pool creates a tenant, a
//!    project and two memberships (alice: admin, bob: viewer).
//! 2. Alice: `authorize` -> `project(id)?.require::<Editor>()?` -> `begin` -> `Documents::insert`.
//! 3. Alice grants carol the viewer role (`require::<Admin>()`, `UserProjectRoles::insert`).
//! 4. Bob reads (`require::<Viewer>()`), and is refused an editor scope (`Error::Forbidden`).
//! 5. Someone from another tenant gets `Error::NotFound` from `authorize`.
//!
//! Removing any `require::<Role>()` from this file makes it fail to compile (checked by
//! `tests/compile_fail.rs`).

use sqlx::PgPool;
use tenancy_generated::roles::{Admin, Editor, Viewer};
use tenancy_generated::{
    DocumentFilter, DocumentPage, Documents, NewDocument, NewUserProjectRole, ProjectRole,
    UserProjectRoles,
};
use tenancy_runtime::{Error, ProjectId, SystemTx, Tenancy, TenantId, UserId};
use uuid::Uuid;

/// What the walkthrough did and saw, so a test can check it.
#[derive(Debug)]
pub struct Walkthrough {
    /// The tenant created during onboarding.
    pub tenant: TenantId,
    /// The project created during onboarding.
    pub project: ProjectId,
    /// The document alice inserted.
    pub document: Uuid,
    /// Titles bob (viewer) saw in the project.
    pub titles_seen_by_viewer: Vec<String>,
    /// What bob got when asking for an editor scope.
    pub viewer_asking_for_editor: Option<Error>,
    /// The role carol holds after alice's grant, as read by carol's own context.
    pub carol_role: Option<String>,
    /// What `authorize` answered for a user of no role in the tenant.
    pub outsider_authorize: Option<Error>,
}

/// Runs the walkthrough: `maintenance_pool` logs in as a privileged role (onboarding only),
/// `app_pool` as the application role that row-level security applies to.
pub async fn walkthrough(
    maintenance_pool: &PgPool,
    app_pool: &PgPool,
) -> Result<Walkthrough, Box<dyn std::error::Error>> {
    let tenant = TenantId::new(Uuid::new_v4());
    let project = ProjectId::new(Uuid::new_v4());
    let alice = UserId::new(Uuid::new_v4());
    let bob = UserId::new(Uuid::new_v4());
    let carol = UserId::new(Uuid::new_v4());
    let outsider = UserId::new(Uuid::new_v4());

    println!("1. onboarding through a SystemTx (logged, bypasses row-level security)");
    let mut system = SystemTx::begin(maintenance_pool, "quickstart: onboard tenant acme").await?;
    sqlx::query("INSERT INTO tenants (id, name, slug) VALUES ($1, 'Acme', 'acme')")
        .bind(tenant.as_uuid())
        .execute(system.connection())
        .await?;
    sqlx::query(
        "INSERT INTO projects (tenant_id, id, name, slug) VALUES ($1, $2, 'Support bot', 'support')",
    )
    .bind(tenant.as_uuid())
    .bind(project.as_uuid())
    .execute(system.connection())
    .await?;
    for (user, role) in [(alice, "admin"), (bob, "viewer")] {
        sqlx::query(
            "INSERT INTO user_project_roles (tenant_id, project_id, user_id, role) \
             VALUES ($1, $2, $3, $4::tenancy.project_role)",
        )
        .bind(tenant.as_uuid())
        .bind(project.as_uuid())
        .bind(user.as_uuid())
        .bind(role)
        .execute(system.connection())
        .await?;
    }
    system.commit().await?;
    println!("   tenant {tenant}, project {project}: alice is admin, bob is viewer");

    let tenancy = Tenancy::with_config(app_pool.clone(), tenancy_generated::config());

    println!("2. alice inserts a document with an editor scope");
    let ctx = tenancy.authorize(alice, tenant).await?;
    let scope = ctx.project(project)?.require::<Editor>()?;
    println!(
        "   context claims (signed by Tenancy::begin): {}",
        tenancy.context_claims(&scope)?
    );
    let mut tx = tenancy.begin(&scope).await?;
    let document = Documents::insert(
        &mut tx,
        NewDocument {
            id: None,
            title: "Refund policy".to_owned(),
            source_uri: Some("https://acme.example/refunds".to_owned()),
            mime_type: None,
            content_hash: "sha256:refunds-v1".to_owned(),
            metadata: None,
        },
    )
    .await?;
    tx.commit().await?;
    println!(
        "   inserted document {} ({:?})",
        document.id, document.title
    );

    println!("3. alice grants carol the viewer role with an admin scope");
    let scope = ctx.project(project)?.require::<Admin>()?;
    let mut tx = tenancy.begin(&scope).await?;
    UserProjectRoles::insert(
        &mut tx,
        NewUserProjectRole {
            user_id: carol.as_uuid(),
            role: ProjectRole::Viewer,
        },
    )
    .await?;
    tx.commit().await?;
    let carol_ctx = tenancy.authorize(carol, tenant).await?;
    let carol_role = carol_ctx
        .memberships()
        .next()
        .map(|(_, role)| role.to_owned());
    println!("   carol now holds: {carol_role:?}");

    println!("4. bob reads with a viewer scope, and cannot get an editor scope");
    let bob_ctx = tenancy.authorize(bob, tenant).await?;
    let scope = bob_ctx.project(project)?.require::<Viewer>()?;
    let mut tx = tenancy.begin(&scope).await?;
    let documents =
        Documents::list(&mut tx, &DocumentFilter::default(), DocumentPage::default()).await?;
    tx.commit().await?;
    let titles_seen_by_viewer: Vec<String> = documents.into_iter().map(|d| d.title).collect();
    println!("   bob sees {titles_seen_by_viewer:?}");
    let viewer_asking_for_editor = bob_ctx.project(project)?.require::<Editor>().err();
    println!("   bob asking for editor: {viewer_asking_for_editor:?}");

    println!("5. a user without a role in the tenant is not even authorized");
    let outsider_authorize = tenancy.authorize(outsider, tenant).await.err();
    println!("   outsider: {outsider_authorize:?}");

    Ok(Walkthrough {
        tenant,
        project,
        document: document.id,
        titles_seen_by_viewer,
        viewer_asking_for_editor,
        carol_role,
        outsider_authorize,
    })
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let db = tenancy_tests::TestDb::try_fresh().await?;
    println!("database {} (migrations applied)", db.name());
    let result = walkthrough(db.admin_pool(), db.app_pool()).await;
    db.drop_db().await;
    let done = result?;
    println!("done: {done:#?}");
    Ok(())
}
