//! `verify` of a live database (`pg_policies` parsed by PostgreSQL's own parser) on a real
//! PostgreSQL: the migrated RAG schema is proven; a dropped boundary, an extra permissive
//! policy and a widened role fail with a counterexample.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;

use tenancy_core::dsl::{self, SourceFile};
use tenancy_core::model::{Command, Model};
use tenancy_core::sql::Target;
use tenancy_tests::TestDb;
use tenancy_verify::{verify, Deployed, FailureKind, Report};

fn rag() -> Model {
    let text = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/rag/policies/rag.tenancy"),
    )
    .unwrap();
    let (model, diagnostics) = dsl::compile(&[SourceFile::new("rag.tenancy", &text)]);
    assert!(!diagnostics.has_errors(), "{diagnostics:?}");
    model.unwrap()
}

/// A fresh migrated database, `sql` run on it as the superuser, then verified.
async fn verify_after(sql: &str) -> Report {
    let db = TestDb::fresh().await;
    if !sql.is_empty() {
        sqlx::raw_sql(sqlx::AssertSqlSafe(sql.to_owned()))
            .execute(db.admin_pool())
            .await
            .unwrap();
    }
    let model = rag();
    let deployed = Deployed::from_database(db.admin_pool(), &model)
        .await
        .unwrap();
    let report = verify(&model, &deployed, Target::Postgres);
    db.drop_db().await;
    report
}

#[tokio::test]
async fn the_migrated_database_is_proven() {
    let report = verify_after("").await;
    assert!(report.is_proven(), "{}", report.to_text());
    assert_eq!(report.proofs.len(), 9 * 5);
    assert_eq!(report.source, "the database");
}

#[tokio::test]
async fn a_dropped_boundary_fails_live() {
    let report = verify_after("DROP POLICY chunks_tenant_boundary ON chunks").await;
    let f = report
        .failures
        .iter()
        .find(|f| f.kind == FailureKind::Boundary && f.command == Some(Command::Select))
        .unwrap_or_else(|| panic!("{}", report.to_text()));
    assert_eq!(f.table, "chunks");
    let w = f.counterexample.as_ref().unwrap();
    assert_eq!((w.tenant.as_str(), w.project.as_deref()), ("T2", Some("P")));
    assert!(report.failures.iter().all(|f| f.table == "chunks"));
}

#[tokio::test]
async fn an_extra_permissive_policy_fails_live() {
    let report = verify_after(
        "CREATE POLICY queries_support ON queries AS PERMISSIVE FOR SELECT TO PUBLIC \
         USING (asked_by IS NOT NULL)",
    )
    .await;
    let f = report
        .failures
        .iter()
        .find(|f| f.kind == FailureKind::ExtraPolicy)
        .unwrap_or_else(|| panic!("{}", report.to_text()));
    assert_eq!(
        (f.table.as_str(), f.command),
        ("queries", Some(Command::Select))
    );
    assert!(f.message.contains("queries_support"), "{}", f.message);
    assert_eq!(f.counterexample.as_ref().unwrap().role, None);
}

#[tokio::test]
async fn a_policy_for_a_role_the_app_role_is_not_in_does_not_count() {
    let report = verify_after(
        "DO $$ BEGIN CREATE ROLE tenancy_verify_reporting NOLOGIN; \
         EXCEPTION WHEN duplicate_object THEN NULL; END $$; \
         CREATE POLICY queries_reporting ON queries AS PERMISSIVE FOR SELECT \
         TO tenancy_verify_reporting USING (true)",
    )
    .await;
    assert!(report.is_proven(), "{}", report.to_text());
}

#[tokio::test]
async fn a_widened_role_fails_live() {
    let report = verify_after(
        "ALTER POLICY assertions_delete ON assertions \
         USING (COALESCE(project_id = ANY ((SELECT tenancy.project_ids('viewer'))::uuid[]), false))",
    )
    .await;
    assert_eq!(report.failures.len(), 1, "{}", report.to_text());
    let f = &report.failures[0];
    assert_eq!(f.kind, FailureKind::Widened);
    assert_eq!(
        (f.table.as_str(), f.command),
        ("assertions", Some(Command::Delete))
    );
    assert_eq!(
        f.counterexample.as_ref().unwrap().role.as_deref(),
        Some("viewer")
    );
}

#[tokio::test]
async fn a_revoked_grant_narrows_live() {
    let report = verify_after("REVOKE INSERT ON responses FROM tenancy_app").await;
    assert_eq!(report.failures.len(), 1, "{}", report.to_text());
    let f = &report.failures[0];
    assert_eq!(f.kind, FailureKind::Narrowed);
    assert_eq!(
        (f.table.as_str(), f.command),
        ("responses", Some(Command::Insert))
    );
}
