//! `tenancy_audit::audit` against a real PostgreSQL: the generated schema audits clean, and
//! each breakage, applied alone to a fresh database, is reported with its code and object.
//!
//! Breakages inside one database use the committed `generated/migrations` (app role
//! `tenancy_app`). Role attributes are cluster-wide, so those breakages use a model with its own
//! role pair (`tenancy_audit_app` / `tenancy_audit_owner`) that no other test logs in with, and
//! restore the roles before asserting.

// Helpers outside #[test] functions panic on setup failures, like the tests themselves.
#![allow(clippy::expect_used)]

use std::path::Path;

use tenancy_audit::{
    audit, audit_for_target, check_at_startup, codes, AuditError, Report, StartupMode,
};
use tenancy_core::model::Model;
use tenancy_core::sql::{generate_migrations, Target};
use tenancy_tests::TestDb;

/// The model of `policies/` (the one `generated/migrations` was produced from).
fn rag_model() -> Model {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../policies");
    let sources = tenancy_core::dsl::read_dir(&dir).expect("read policies");
    let (model, diagnostics) = tenancy_core::dsl::compile(&sources);
    assert!(!diagnostics.has_errors(), "policies must compile");
    model.expect("model")
}

/// A fresh database with `breakage` applied (as superuser), audited against the rag model.
async fn audit_after(breakage: &str) -> Report {
    let db = TestDb::fresh().await;
    sqlx::raw_sql(breakage)
        .execute(db.admin_pool())
        .await
        .unwrap_or_else(|e| panic!("breakage failed: {e}\n{breakage}"));
    let report = audit(db.admin_pool(), &rag_model()).await.expect("audit");
    db.drop_db().await;
    report
}

/// Asserts that `report` has a finding with `code` whose object is `object`, and prints the
/// report when not.
fn assert_finding(report: &Report, code: &str, object: &str) {
    assert!(
        report
            .findings
            .iter()
            .any(|f| f.code == code && f.object == object),
        "expected {code} on `{object}`, got:\n{}",
        report.to_text()
    );
}

/// Asserts that every finding of `report` has one of `codes` (the breakage caused nothing else).
fn assert_only(report: &Report, codes: &[&str]) {
    assert!(
        report.findings.iter().all(|f| codes.contains(&f.code)),
        "unexpected findings besides {codes:?}:\n{}",
        report.to_text()
    );
}

#[tokio::test]
async fn the_generated_schema_audits_clean() {
    let report = audit_after("SELECT 1").await;
    assert!(report.is_clean(), "{}", report.to_text());
    assert_eq!(
        report.to_text(),
        "audit clean: the database matches the policies\n"
    );
    let json: serde_json::Value = serde_json::from_str(&report.to_json()).expect("json");
    assert_eq!(json["clean"], true);
    assert_eq!(json["findings"].as_array().map(Vec::len), Some(0));
}

#[tokio::test]
async fn rls_disabled_is_ta002() {
    let report = audit_after("ALTER TABLE documents DISABLE ROW LEVEL SECURITY").await;
    assert_finding(&report, codes::RLS_DISABLED, "table documents");
    assert_only(&report, &[codes::RLS_DISABLED]);
}

#[tokio::test]
async fn rls_not_forced_is_ta003() {
    let report = audit_after("ALTER TABLE chunks NO FORCE ROW LEVEL SECURITY").await;
    assert_finding(&report, codes::RLS_NOT_FORCED, "table chunks");
    assert_only(&report, &[codes::RLS_NOT_FORCED]);
}

#[tokio::test]
async fn dropped_policy_is_ta010() {
    let report = audit_after("DROP POLICY documents_tenant_boundary ON documents").await;
    assert_finding(
        &report,
        codes::POLICY_MISSING,
        "policy documents_tenant_boundary on documents",
    );
    assert_only(&report, &[codes::POLICY_MISSING]);
}

#[tokio::test]
async fn extra_policy_is_ta011() {
    let report = audit_after(
        "CREATE POLICY documents_everyone ON documents AS PERMISSIVE FOR SELECT TO tenancy_app USING (true)",
    )
    .await;
    assert_finding(
        &report,
        codes::POLICY_EXTRA,
        "policy documents_everyone on documents",
    );
    assert_only(&report, &[codes::POLICY_EXTRA]);
}

#[tokio::test]
async fn altered_policy_using_is_ta012_with_both_definitions() {
    // Same name, same command: only the normalised definition tells them apart.
    let report = audit_after(
        "ALTER POLICY documents_select ON documents \
         USING (project_id = ANY ((SELECT tenancy.project_ids('owner'))::uuid[]))",
    )
    .await;
    assert_finding(
        &report,
        codes::POLICY_DIFFERS,
        "policy documents_select on documents",
    );
    assert_only(&report, &[codes::POLICY_DIFFERS]);
    let finding = report
        .with_code(codes::POLICY_DIFFERS)
        .next()
        .expect("finding");
    assert!(finding.message.starts_with("USING differs"), "{finding}");
    assert!(finding.message.contains("'viewer'"), "{finding}");
    assert!(finding.message.contains("'owner'"), "{finding}");
}

#[tokio::test]
async fn policy_widened_to_public_is_ta012() {
    let report = audit_after("ALTER POLICY chunks_tenant_boundary ON chunks TO PUBLIC").await;
    assert_finding(
        &report,
        codes::POLICY_DIFFERS,
        "policy chunks_tenant_boundary on chunks",
    );
    let finding = report
        .with_code(codes::POLICY_DIFFERS)
        .next()
        .expect("finding");
    assert!(finding.message.contains("roles differ"), "{finding}");
}

#[tokio::test]
async fn an_equivalent_policy_written_differently_is_not_a_finding() {
    // Different spacing, parentheses and letter case: PostgreSQL deparses both the same way.
    let report = audit_after(
        "DROP POLICY documents_delete ON documents; \
         CREATE POLICY documents_delete ON documents AS PERMISSIVE FOR DELETE TO tenancy_app \
         USING ( Coalesce( ( PROJECT_ID = any((select TENANCY.PROJECT_IDS('admin'))::uuid[]) ), FALSE ) )",
    )
    .await;
    assert!(report.is_clean(), "{}", report.to_text());
}

#[tokio::test]
async fn truncate_granted_to_app_is_ta025() {
    let report = audit_after("GRANT TRUNCATE ON documents TO tenancy_app").await;
    let finding = report
        .with_code(codes::APP_ROLE_PRIVILEGE)
        .next()
        .unwrap_or_else(|| panic!("no TA025:\n{}", report.to_text()));
    assert_eq!(finding.object, "role tenancy_app");
    assert!(
        finding.message.contains("TRUNCATE on documents"),
        "{finding}"
    );
    assert_only(&report, &[codes::APP_ROLE_PRIVILEGE]);
}

#[tokio::test]
async fn app_owning_a_table_is_ta023() {
    let report = audit_after("ALTER TABLE embedding_models OWNER TO tenancy_app").await;
    let finding = report
        .with_code(codes::APP_ROLE_OWNS)
        .next()
        .unwrap_or_else(|| panic!("no TA023:\n{}", report.to_text()));
    assert!(
        finding.message.contains("table embedding_models"),
        "{finding}"
    );
}

#[tokio::test]
async fn nullable_tenant_id_is_ta061_and_defaulted_project_id_is_ta062() {
    let report = audit_after(
        "ALTER TABLE assertions DROP CONSTRAINT assertions_pkey; \
         ALTER TABLE assertions ALTER COLUMN tenant_id DROP NOT NULL; \
         ALTER TABLE responses ALTER COLUMN project_id SET DEFAULT gen_random_uuid()",
    )
    .await;
    assert_finding(
        &report,
        codes::SCOPE_COLUMN_NULLABLE,
        "column assertions.tenant_id",
    );
    assert_finding(
        &report,
        codes::SCOPE_COLUMN_DEFAULT,
        "column responses.project_id",
    );
}

#[tokio::test]
async fn single_column_foreign_key_between_scoped_tables_is_ta030() {
    let report = audit_after(
        "CREATE UNIQUE INDEX documents_id_only ON documents (id); \
         ALTER TABLE chunks ADD CONSTRAINT chunks_document_only_fkey \
           FOREIGN KEY (document_id) REFERENCES documents (id)",
    )
    .await;
    assert_finding(
        &report,
        codes::FOREIGN_KEY_WITHOUT_TENANT,
        "foreign key chunks_document_only_fkey",
    );
    // The unique index the foreign key needs is itself a cross-tenant leak.
    assert_finding(
        &report,
        codes::UNIQUE_WITHOUT_TENANT,
        "index documents_id_only",
    );
    assert_only(
        &report,
        &[
            codes::FOREIGN_KEY_WITHOUT_TENANT,
            codes::UNIQUE_WITHOUT_TENANT,
        ],
    );
}

#[tokio::test]
async fn unique_key_without_tenant_id_is_ta031() {
    let report = audit_after(
        "ALTER TABLE documents ADD CONSTRAINT documents_hash_global_key UNIQUE (content_hash)",
    )
    .await;
    assert_finding(
        &report,
        codes::UNIQUE_WITHOUT_TENANT,
        "index documents_hash_global_key",
    );
    assert_only(&report, &[codes::UNIQUE_WITHOUT_TENANT]);
}

#[tokio::test]
async fn volatile_helper_is_ta041_and_set_clause_is_ta042() {
    let report = audit_after(
        "ALTER FUNCTION tenancy.current_tenant_id() VOLATILE; \
         ALTER FUNCTION tenancy.current_user_id() SET search_path = pg_catalog, pg_temp",
    )
    .await;
    assert_finding(
        &report,
        codes::HELPER_NOT_STABLE,
        "function tenancy.current_tenant_id()",
    );
    assert_finding(
        &report,
        codes::HELPER_SET_CLAUSE,
        "function tenancy.current_user_id()",
    );
    assert_only(
        &report,
        &[codes::HELPER_NOT_STABLE, codes::HELPER_SET_CLAUSE],
    );
}

#[tokio::test]
async fn dropped_helper_is_ta040() {
    // Policies call the helper, so they go too (CASCADE): both are reported.
    let report = audit_after("DROP FUNCTION tenancy.current_user_id() CASCADE").await;
    assert_finding(
        &report,
        codes::HELPER_MISSING,
        "function tenancy.current_user_id",
    );
    assert_finding(
        &report,
        codes::POLICY_MISSING,
        "policy user_project_roles_select on user_project_roles",
    );
}

#[tokio::test]
async fn security_definer_function_is_ta043_and_public_execute_is_ta044() {
    let report = audit_after(
        "CREATE FUNCTION public.count_all_documents() RETURNS bigint LANGUAGE sql \
         SECURITY DEFINER SET search_path = pg_catalog AS $$ SELECT count(*) FROM public.documents $$",
    )
    .await;
    let object = "function count_all_documents()";
    assert_finding(&report, codes::SECURITY_DEFINER_NOT_ALLOWED, object);
    assert_finding(&report, codes::SECURITY_DEFINER_PUBLIC, object);
    assert_only(
        &report,
        &[
            codes::SECURITY_DEFINER_NOT_ALLOWED,
            codes::SECURITY_DEFINER_PUBLIC,
        ],
    );
}

#[tokio::test]
async fn security_definer_revoked_from_public_is_only_ta043() {
    let report = audit_after(
        "CREATE FUNCTION public.count_all_documents() RETURNS bigint LANGUAGE sql \
         SECURITY DEFINER SET search_path = pg_catalog AS $$ SELECT count(*) FROM public.documents $$; \
         REVOKE ALL ON FUNCTION public.count_all_documents() FROM PUBLIC",
    )
    .await;
    assert_finding(
        &report,
        codes::SECURITY_DEFINER_NOT_ALLOWED,
        "function count_all_documents()",
    );
    assert_only(&report, &[codes::SECURITY_DEFINER_NOT_ALLOWED]);
}

#[tokio::test]
async fn views_without_security_invoker_are_ta050() {
    let report = audit_after(
        "CREATE VIEW doc_titles AS SELECT tenant_id, title FROM documents; \
         CREATE VIEW doc_titles_safe WITH (security_invoker = true) AS SELECT tenant_id, title FROM documents; \
         CREATE VIEW doc_titles_outer WITH (security_invoker = true) AS SELECT * FROM doc_titles_safe; \
         CREATE VIEW doc_titles_laundered AS SELECT * FROM doc_titles_safe; \
         CREATE VIEW model_names AS SELECT name FROM embedding_models; \
         CREATE MATERIALIZED VIEW chunk_counts AS SELECT tenant_id, count(*) FROM chunks GROUP BY tenant_id",
    )
    .await;
    assert_finding(&report, codes::VIEW_NOT_INVOKER, "view public.doc_titles");
    assert_finding(
        &report,
        codes::VIEW_NOT_INVOKER,
        "view public.doc_titles_laundered",
    );
    assert_finding(
        &report,
        codes::VIEW_NOT_INVOKER,
        "materialized view public.chunk_counts",
    );
    // security_invoker views and views over global tables are fine.
    assert_eq!(
        report.with_code(codes::VIEW_NOT_INVOKER).count(),
        3,
        "{}",
        report.to_text()
    );
    assert_only(&report, &[codes::VIEW_NOT_INVOKER]);
}

#[tokio::test]
async fn missing_table_is_ta001() {
    let report = audit_after("DROP TABLE assertions").await;
    assert_finding(&report, codes::TABLE_MISSING, "table assertions");
    assert_only(&report, &[codes::TABLE_MISSING]);
}

#[tokio::test]
async fn auditing_for_the_wrong_target_reports_every_permissive_policy() {
    // Citus policies call helpers directly instead of through (SELECT ...): the deparsed
    // definitions differ, so this proves the comparison looks at definitions, not names.
    let db = TestDb::fresh().await;
    let report = audit_for_target(db.admin_pool(), &rag_model(), Target::Citus)
        .await
        .expect("audit");
    assert_finding(
        &report,
        codes::POLICY_DIFFERS,
        "policy documents_tenant_boundary on documents",
    );
    // Citus keeps the unsigned context: its allowlist has no SECURITY DEFINER function, so the
    // signed context's verifier and installer are foreign to it.
    assert_finding(
        &report,
        codes::SECURITY_DEFINER_NOT_ALLOWED,
        "function tenancy.context_claims()",
    );
    assert_only(
        &report,
        &[codes::POLICY_DIFFERS, codes::SECURITY_DEFINER_NOT_ALLOWED],
    );
    db.drop_db().await;
}

#[tokio::test]
async fn startup_check_refuses_or_warns() {
    let db = TestDb::fresh().await;
    let model = rag_model();
    let clean = check_at_startup(db.admin_pool(), &model, StartupMode::Refuse)
        .await
        .expect("a clean database starts");
    assert!(clean.is_clean());

    sqlx::raw_sql("ALTER TABLE documents DISABLE ROW LEVEL SECURITY")
        .execute(db.admin_pool())
        .await
        .expect("break");
    match check_at_startup(db.admin_pool(), &model, StartupMode::Refuse).await {
        Err(AuditError::Refused(report)) => assert!(report.has(codes::RLS_DISABLED)),
        other => panic!("expected a refusal, got {other:?}"),
    }
    let warned = check_at_startup(db.admin_pool(), &model, StartupMode::Warn)
        .await
        .expect("warn mode starts");
    assert!(warned.has(codes::RLS_DISABLED));
    db.drop_db().await;
}

/// The rag model with its own role pair, applied to an empty database.
async fn own_roles_db() -> (TestDb, Model) {
    let mut model = rag_model();
    model.settings.app_role = "tenancy_audit_app".to_owned();
    model.settings.owner_role = "tenancy_audit_owner".to_owned();
    let dir = tempfile::tempdir().expect("tempdir");
    for file in generate_migrations(&model, Target::Postgres) {
        let name = file.path.file_name().expect("file name");
        std::fs::write(dir.path().join(name), file.contents).expect("write migration");
    }
    let db = TestDb::empty().await;
    db.apply_migrations(dir.path()).await.expect("apply");
    (db, model)
}

#[tokio::test]
async fn app_role_superuser_bypassrls_and_owner_membership_are_ta021_ta022_ta024() {
    let (db, model) = own_roles_db().await;
    let clean = audit(db.admin_pool(), &model).await.expect("audit");
    assert!(clean.is_clean(), "{}", clean.to_text());

    let pool = db.admin_pool();
    let mut reports = Vec::new();
    for (breakage, restore) in [
        (
            "ALTER ROLE tenancy_audit_app SUPERUSER",
            "ALTER ROLE tenancy_audit_app NOSUPERUSER",
        ),
        (
            "ALTER ROLE tenancy_audit_app BYPASSRLS",
            "ALTER ROLE tenancy_audit_app NOBYPASSRLS",
        ),
        (
            "GRANT tenancy_audit_owner TO tenancy_audit_app",
            "REVOKE tenancy_audit_owner FROM tenancy_audit_app",
        ),
    ] {
        sqlx::raw_sql(breakage).execute(pool).await.expect("break");
        let report = audit(pool, &model).await;
        // Restore before asserting anything: roles are cluster-wide.
        sqlx::raw_sql(restore).execute(pool).await.expect("restore");
        reports.push(report.expect("audit"));
    }
    assert_finding(
        &reports[0],
        codes::APP_ROLE_SUPERUSER,
        "role tenancy_audit_app",
    );
    assert_finding(
        &reports[1],
        codes::APP_ROLE_BYPASSRLS,
        "role tenancy_audit_app",
    );
    assert_only(&reports[1], &[codes::APP_ROLE_BYPASSRLS]);
    assert_finding(
        &reports[2],
        codes::APP_ROLE_MEMBER_OF_OWNER,
        "role tenancy_audit_app",
    );
    assert_only(&reports[2], &[codes::APP_ROLE_MEMBER_OF_OWNER]);

    let restored = audit(pool, &model).await.expect("audit");
    assert!(restored.is_clean(), "{}", restored.to_text());
    db.drop_db().await;
}
