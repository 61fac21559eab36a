//! The repositories `build.rs` wrote into `OUT_DIR` (tenancy-build) compile, are bounded by
//! the roles the policies give, and work against PostgreSQL with row-level security.

use tenancy_build_entry_test::repos::roles::{Editor, Viewer};
use tenancy_build_entry_test::repos::{self, DocumentFilter, DocumentPage, Documents, NewDocument};
use tenancy_runtime::{ProjectId, ReadScope, ScopedTx, Tenancy, TenantId, UserId, WriteScope};
use tenancy_tests::{TestDb, TwoTenants};
use uuid::Uuid;

/// Type-checks the scoped calls: `list` needs a read scope of at least viewer, `insert` a
/// write scope of at least editor (the policies' rules), both through the included items.
async fn list_titles<S: ReadScope<Viewer>>(
    tx: &mut ScopedTx<S>,
) -> Result<Vec<String>, tenancy_runtime::Error> {
    let rows = Documents::list(tx, &DocumentFilter::default(), DocumentPage::default()).await?;
    Ok(rows.into_iter().map(|d| d.title).collect())
}

/// Inserts one document through the included repository.
async fn insert_document<S: WriteScope<Editor>>(
    tx: &mut ScopedTx<S>,
    title: &str,
) -> Result<repos::Document, tenancy_runtime::Error> {
    Documents::insert(
        tx,
        NewDocument {
            id: None,
            title: title.to_owned(),
            source_uri: None,
            mime_type: None,
            content_hash: format!("sha256:{}", Uuid::new_v4()),
            metadata: None,
        },
    )
    .await
}

#[test]
fn the_included_config_matches_the_policies() {
    let config = repos::config();
    assert_eq!(config.helper_schema, "tenancy");
    assert_eq!(config.memberships_table, "user_project_roles");
}

#[tokio::test]
async fn included_repositories_read_and_write_inside_the_scope_only() {
    let db = TestDb::fresh().await;
    let world = TwoTenants::seed(&db, 2, 3).await;
    let tenancy = Tenancy::with_config(db.app_pool().clone(), repos::config());
    let alice = UserId::new(world.alice);
    let ctx = tenancy
        .authorize(alice, TenantId::new(world.tenant_a))
        .await
        .expect("alice is a member of tenant A");

    // Alice (owner of A1) writes with an editor scope ...
    let scope = ctx
        .project(ProjectId::new(world.a1))
        .expect("A1")
        .require::<Editor>()
        .expect("owner >= editor");
    let mut tx = tenancy.begin(&scope).await.expect("begin");
    let inserted = insert_document(&mut tx, "from the build script")
        .await
        .expect("insert");
    tx.commit().await.expect("commit");
    assert_eq!(inserted.tenant_id, world.tenant_a);
    assert_eq!(inserted.project_id, world.a1);

    // ... and reads with a viewer scope: A1's two seeded documents and hers, none of B's.
    let scope = ctx
        .project(ProjectId::new(world.a1))
        .expect("A1")
        .require::<Viewer>()
        .expect("owner >= viewer");
    let mut tx = tenancy.begin(&scope).await.expect("begin");
    let mut titles = list_titles(&mut tx).await.expect("list");
    tx.commit().await.expect("commit");
    titles.sort();
    assert_eq!(titles, ["from the build script", "t", "t"]);

    let stored: (Uuid, Uuid) =
        sqlx::query_as("SELECT tenant_id, project_id FROM documents WHERE id = $1")
            .bind(inserted.id)
            .fetch_one(db.admin_pool())
            .await
            .expect("the row is stored");
    assert_eq!(stored, (world.tenant_a, world.a1));
    db.drop_db().await;
}
