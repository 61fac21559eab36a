//! Runs the walkthrough of `examples/quickstart.rs` against a fresh database, so the example
//! cannot rot: it must compile, run, and show what it claims.

#[path = "../examples/quickstart.rs"]
#[allow(dead_code)] // the example's `main` is not called here
mod quickstart;

use tenancy_runtime::Error;
use tenancy_tests::TestDb;

#[tokio::test]
async fn quickstart_walkthrough_runs_and_shows_what_it_claims() {
    let db = TestDb::fresh().await;
    let done = quickstart::walkthrough(db.admin_pool(), db.app_pool())
        .await
        .expect("the quickstart walkthrough");

    assert_eq!(done.titles_seen_by_viewer, vec!["Refund policy".to_owned()]);
    assert!(matches!(
        done.viewer_asking_for_editor,
        Some(Error::Forbidden)
    ));
    assert_eq!(done.carol_role.as_deref(), Some("viewer"));
    assert!(matches!(done.outsider_authorize, Some(Error::NotFound)));

    // The rows landed where the scope said, as seen by the superuser.
    let (tenant, project): (uuid::Uuid, uuid::Uuid) =
        sqlx::query_as("SELECT tenant_id, project_id FROM documents WHERE id = $1")
            .bind(done.document)
            .fetch_one(db.admin_pool())
            .await
            .unwrap();
    assert_eq!(tenant, done.tenant.as_uuid());
    assert_eq!(project, done.project.as_uuid());
    let memberships: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM user_project_roles WHERE tenant_id = $1 AND project_id = $2",
    )
    .bind(tenant)
    .bind(project)
    .fetch_one(db.admin_pool())
    .await
    .unwrap();
    assert_eq!(memberships, 3, "alice, bob and carol");
    db.drop_db().await;
}
