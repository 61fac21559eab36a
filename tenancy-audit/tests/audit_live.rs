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
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/rag/policies");
    let sources = tenancy_core::dsl::read_dir(&dir).expect("read policies");
    let (model, diagnostics) = tenancy_core::dsl::compile(&sources);
    assert!(!diagnostics.has_errors(), "policies must compile");
    model.expect("model")
}

/// Installs a test key for the signed context (32 bytes, the minimum) unless the database
/// already has an active one (the test template may carry one).
const TEST_KEY_SQL: &str =
    "SELECT tenancy.install_context_key('tenancy_audit_test', decode(repeat('ab', 32), 'hex')) \
     WHERE NOT EXISTS (SELECT 1 FROM tenancy.context_keys WHERE retired_at IS NULL)";

/// Makes a database copied from the migrated template what an operator's database is after
/// `tenancy migrate apply` and `tenancy key install`: `CREATE DATABASE ... TEMPLATE` copies
/// neither the database's ACL (so the generated `REVOKE TEMPORARY ... FROM PUBLIC` is lost),
/// nor does any migration install a context key.
async fn operate(db: &TestDb, install_key: bool) {
    let revoke = format!(
        "REVOKE TEMPORARY ON DATABASE {} FROM PUBLIC",
        tenancy_tests::quote_ident(db.name())
    );
    sqlx::raw_sql(sqlx::AssertSqlSafe(revoke.as_str()))
        .execute(db.admin_pool())
        .await
        .expect("revoke TEMPORARY");
    if install_key {
        sqlx::raw_sql(TEST_KEY_SQL)
            .execute(db.admin_pool())
            .await
            .expect("install a context key");
    }
}

/// A fresh database as it runs in production: migrated, TEMP revoked, a context key installed.
async fn operated_db() -> TestDb {
    let db = TestDb::fresh().await;
    operate(&db, true).await;
    db
}

/// A fresh database with `breakage` applied (as superuser), audited against the rag model.
async fn audit_after(breakage: &str) -> Report {
    let db = operated_db().await;
    sqlx::raw_sql(sqlx::AssertSqlSafe(breakage))
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
async fn statistics_turned_back_on_are_ta090_stored_ones_ta091_extended_ones_ta092() {
    let report = audit_after(
        "ALTER TABLE chunks ALTER COLUMN tenant_id SET STATISTICS -1; \
         INSERT INTO tenants (id, name, slug) VALUES (gen_random_uuid(), 't', 't'); \
         ANALYZE tenants; \
         SELECT pg_catalog.pg_restore_attribute_stats('schemaname', 'public', \
           'relname', 'tenants', 'attname', 'slug', 'inherited', false, \
           'null_frac', 0.0::real, 'avg_width', 2, 'n_distinct', -1.0::real, \
           'most_common_vals', '{t}'::text, 'most_common_freqs', '{1.0}'::real[]); \
         CREATE STATISTICS chunks_ids ON tenant_id, project_id FROM chunks",
    )
    .await;
    assert_finding(
        &report,
        codes::STATISTICS_COLLECTED,
        "column chunks.tenant_id",
    );
    assert_finding(&report, codes::STATISTICS_STORED, "column tenants.slug");
    assert_finding(
        &report,
        codes::EXTENDED_STATISTICS,
        "statistics public.chunks_ids",
    );
    assert_only(
        &report,
        &[
            codes::STATISTICS_COLLECTED,
            codes::STATISTICS_STORED,
            codes::EXTENDED_STATISTICS,
        ],
    );
    let collected = report
        .findings
        .iter()
        .filter(|f| f.code == codes::STATISTICS_COLLECTED)
        .count();
    assert_eq!(collected, 1, "{}", report.to_text());
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
         USING ( ( PROJECT_ID = any((select TENANCY.PROJECT_IDS('admin'))::uuid[]) ) )",
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
    let db = operated_db().await;
    let report = audit_for_target(db.admin_pool(), &rag_model(), Target::Citus)
        .await
        .expect("audit");
    assert_finding(
        &report,
        codes::POLICY_DIFFERS,
        "policy documents_select on documents",
    );
    // Citus has no restrictive policy (it would lose AS RESTRICTIVE on the shards): the
    // PostgreSQL target's tenant boundaries are foreign to it.
    assert_finding(
        &report,
        codes::POLICY_EXTRA,
        "policy documents_tenant_boundary on documents",
    );
    // The Citus core also copies the context keys to the workers.
    assert_finding(
        &report,
        codes::HELPER_MISSING,
        "function tenancy.sync_context_keys",
    );
    // And the database has no citus extension (the Citus checks stop there), nor the trigger
    // the Citus target writes for `on delete set null`.
    assert_finding(&report, codes::CITUS_MISSING, "extension citus");
    assert_finding(
        &report,
        codes::TRIGGER_MISSING,
        "trigger assertions_chunk_id_set_null on chunks",
    );
    assert_only(
        &report,
        &[
            codes::POLICY_DIFFERS,
            codes::POLICY_EXTRA,
            codes::HELPER_MISSING,
            codes::TRIGGER_MISSING,
            codes::CITUS_MISSING,
        ],
    );
    db.drop_db().await;
}

#[tokio::test]
async fn startup_check_refuses_or_warns() {
    let db = operated_db().await;
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

/// The rag model with its own role pair (`<prefix>_app` / `<prefix>_owner`), applied to an
/// empty database, with a context key installed.
async fn own_roles_db(prefix: &str) -> (TestDb, Model) {
    let mut model = rag_model();
    model.settings.app_role = format!("{prefix}_app");
    model.settings.owner_role = format!("{prefix}_owner");
    let dir = tempfile::tempdir().expect("tempdir");
    for file in generate_migrations(&model, Target::Postgres) {
        let name = file.path.file_name().expect("file name");
        std::fs::write(dir.path().join(name), file.contents).expect("write migration");
    }
    let db = TestDb::empty().await;
    db.apply_migrations(dir.path()).await.expect("apply");
    sqlx::raw_sql(TEST_KEY_SQL)
        .execute(db.admin_pool())
        .await
        .expect("install a context key");
    (db, model)
}

#[tokio::test]
async fn app_role_superuser_bypassrls_and_owner_membership_are_ta021_ta022_ta024() {
    let (db, model) = own_roles_db("tenancy_audit").await;
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
        sqlx::raw_sql(sqlx::AssertSqlSafe(breakage))
            .execute(pool)
            .await
            .expect("break");
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

// ---------------------------------------------------------------------------------------------
// Context contract v3: the contract marker and the key table (TA045-TA047)
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn the_migrated_schema_without_a_context_key_is_ta046_only() {
    let db = TestDb::fresh().await;
    operate(&db, false).await;
    sqlx::raw_sql("DELETE FROM tenancy.context_keys")
        .execute(db.admin_pool())
        .await
        .expect("no key");
    let report = audit(db.admin_pool(), &rag_model()).await.expect("audit");
    assert_finding(
        &report,
        codes::CONTEXT_KEY_MISSING,
        "table tenancy.context_keys",
    );
    assert_only(&report, &[codes::CONTEXT_KEY_MISSING]);
    db.drop_db().await;
}

#[tokio::test]
async fn only_retired_context_keys_is_ta046() {
    let report = audit_after("UPDATE tenancy.context_keys SET retired_at = now()").await;
    assert_finding(
        &report,
        codes::CONTEXT_KEY_MISSING,
        "table tenancy.context_keys",
    );
    assert_only(&report, &[codes::CONTEXT_KEY_MISSING]);
}

#[tokio::test]
async fn a_database_without_the_v3_upgrade_is_ta045() {
    // Only 0001 and 0002: the core speaks the unsigned contract 2.
    let dir = tempfile::tempdir().expect("tempdir");
    let migrations =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/rag/generated/migrations");
    for name in ["0001_tenancy_core.sql", "0002_tables.sql"] {
        std::fs::copy(migrations.join(name), dir.path().join(name)).expect("copy migration");
    }
    let db = TestDb::empty().await;
    db.apply_migrations(dir.path()).await.expect("apply");
    let report = audit(db.admin_pool(), &rag_model()).await.expect("audit");
    assert_finding(
        &report,
        codes::CONTEXT_CONTRACT_OUTDATED,
        "function tenancy.context_contract()",
    );
    assert_finding(
        &report,
        codes::CONTEXT_CONTRACT_OUTDATED,
        "table tenancy.context_keys",
    );
    let finding = report
        .with_code(codes::CONTEXT_CONTRACT_OUTDATED)
        .next()
        .expect("TA045");
    assert!(
        finding
            .message
            .contains("the database has not been upgraded to the signed context: apply the generated migrations"),
        "{finding}"
    );
    // The verifier and installer are missing too, and 0001 alone does not revoke TEMP.
    assert_finding(
        &report,
        codes::HELPER_MISSING,
        "function tenancy.context_claims",
    );
    // Nor do they carry the authority rules of core revision 4 (0004_core_authority.sql).
    assert_finding(
        &report,
        codes::POLICY_MISSING,
        "policy user_project_roles_role_ceiling_update on user_project_roles",
    );
    assert_finding(
        &report,
        codes::HELPER_MISSING,
        "function tenancy.keep_top_role",
    );
    // Nor the row conditions of 0005 (the documents update and queries insert policies).
    assert_finding(
        &report,
        codes::POLICY_DIFFERS,
        "policy documents_update on documents",
    );
    assert_only(
        &report,
        &[
            codes::CONTEXT_CONTRACT_OUTDATED,
            codes::HELPER_MISSING,
            codes::APP_ROLE_TEMPORARY,
            codes::POLICY_MISSING,
            codes::POLICY_DIFFERS,
            codes::TRIGGER_MISSING,
            codes::APP_ROLE_LARGE_OBJECTS,
            codes::UNGENERATED_GRANT,
            // Nor the statistics targets of core revision 5 (0005_core_statistics.sql).
            codes::STATISTICS_COLLECTED,
            // Nor the tenant memberships table of 0010 (tenant-wide roles).
            codes::TABLE_MISSING,
        ],
    );
    assert_finding(&report, codes::TABLE_MISSING, "table tenant_user_roles");
    // ... and its app role still reads the audit table's global identity `id`.
    assert_finding(&report, codes::UNGENERATED_GRANT, "table tenancy.audit_log");
    // ... nor the large-object revoke.
    assert_finding(&report, codes::APP_ROLE_LARGE_OBJECTS, "role tenancy_app");
    db.drop_db().await;
}

#[tokio::test]
async fn a_context_contract_other_than_the_generated_one_is_ta045() {
    let report = audit_after(
        "CREATE OR REPLACE FUNCTION tenancy.context_contract() RETURNS integer \
         LANGUAGE sql IMMUTABLE AS $$ SELECT 2 $$",
    )
    .await;
    let finding = report
        .with_code(codes::CONTEXT_CONTRACT_OUTDATED)
        .next()
        .unwrap_or_else(|| panic!("no TA045:\n{}", report.to_text()));
    assert_eq!(finding.object, "function tenancy.context_contract()");
    assert!(finding.message.starts_with("returns 2 "), "{finding}");
    assert_only(&report, &[codes::CONTEXT_CONTRACT_OUTDATED]);
}

#[tokio::test]
async fn an_auditing_role_that_cannot_read_the_key_table_is_ta047() {
    // A non-superuser auditor that can read the model tables (CREATE TEMP TABLE ... LIKE needs
    // SELECT) but has no grant on the owner-only key table nor on context_contract().
    let db = operated_db().await;
    let auditor = format!("tenancy_audit_reader_{}", &db.name()[db.name().len() - 8..]);
    let database = tenancy_tests::quote_ident(db.name());
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
        "CREATE ROLE {auditor} NOLOGIN; \
         GRANT TEMPORARY ON DATABASE {database} TO {auditor}; \
         GRANT USAGE ON SCHEMA tenancy TO {auditor}; \
         GRANT SELECT ON ALL TABLES IN SCHEMA public TO {auditor}"
    )))
    .execute(db.admin_pool())
    .await
    .expect("create the auditor");
    // `-c role=...` at connection start: every session of the pool is the auditor.
    let options: sqlx::postgres::PgConnectOptions = db.url().parse().expect("url");
    let pool = sqlx::postgres::PgPoolOptions::new()
        .max_connections(1)
        .connect_with(options.options([("role", auditor.as_str())]))
        .await
        .expect("connect as the auditor");
    let report = audit(&pool, &rag_model()).await;
    pool.close().await;
    // Roles are cluster-wide: drop this one before asserting.
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
        "DROP OWNED BY {auditor}; DROP ROLE {auditor}"
    )))
    .execute(db.admin_pool())
    .await
    .expect("drop the auditor");
    let report = report.expect("audit");
    assert_finding(
        &report,
        codes::CONTEXT_UNCHECKED,
        "table tenancy.context_keys",
    );
    assert_finding(
        &report,
        codes::CONTEXT_UNCHECKED,
        "function tenancy.context_contract()",
    );
    assert!(
        !report.has(codes::CONTEXT_KEY_MISSING) && !report.has(codes::CONTEXT_CONTRACT_OUTDATED),
        "{}",
        report.to_text()
    );
    db.drop_db().await;
}

// ---------------------------------------------------------------------------------------------
// Role posture: what SQL run as the app role could plant or use (TA026-TA029, TA080, TA081)
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn role_level_settings_of_the_app_role_and_its_roles_are_ta026() {
    // Scoped to this database (IN DATABASE): the app role is shared by every test database.
    let db = operated_db().await;
    let database = tenancy_tests::quote_ident(db.name());
    let inherited = format!("tenancy_audit_inh_{}", &db.name()[db.name().len() - 8..]);
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
        "ALTER ROLE tenancy_app IN DATABASE {database} SET statement_timeout = 1; \
         ALTER ROLE tenancy_app IN DATABASE {database} SET default_transaction_read_only = on; \
         CREATE ROLE {inherited} NOLOGIN; \
         ALTER ROLE {inherited} IN DATABASE {database} SET search_path = evil, public; \
         GRANT {inherited} TO tenancy_app"
    )))
    .execute(db.admin_pool())
    .await
    .expect("plant settings");
    let report = audit(db.admin_pool(), &rag_model()).await;
    // Restore before asserting (dropping the database would also drop its settings).
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
        "ALTER ROLE tenancy_app IN DATABASE {database} RESET ALL; \
         REVOKE {inherited} FROM tenancy_app; \
         ALTER ROLE {inherited} IN DATABASE {database} RESET ALL; \
         DROP ROLE {inherited}"
    )))
    .execute(db.admin_pool())
    .await
    .expect("restore");
    let report = report.expect("audit");
    let messages: Vec<&str> = report
        .with_code(codes::APP_ROLE_SETTING)
        .map(|f| {
            assert_eq!(f.object, "role tenancy_app");
            f.message.as_str()
        })
        .collect();
    assert_eq!(messages.len(), 3, "{}", report.to_text());
    assert!(
        messages
            .iter()
            .any(|m| m.contains("statement_timeout=1 in this database")),
        "{messages:?}"
    );
    assert!(
        messages
            .iter()
            .any(|m| m.contains("default_transaction_read_only=on")),
        "{messages:?}"
    );
    assert!(
        messages
            .iter()
            .any(|m| m.contains(&inherited) && m.contains("search_path=evil, public")),
        "{messages:?}"
    );
    assert_only(&report, &[codes::APP_ROLE_SETTING]);

    let restored = audit(db.admin_pool(), &rag_model()).await.expect("audit");
    assert!(restored.is_clean(), "{}", restored.to_text());
    db.drop_db().await;
}

#[tokio::test]
async fn a_password_expiry_on_the_app_role_is_ta027() {
    // VALID UNTIL is cluster-wide: this test has its own role pair, which nothing else uses.
    let (db, model) = own_roles_db("tenancy_audit_expiry").await;
    let pool = db.admin_pool();
    sqlx::raw_sql("ALTER ROLE tenancy_audit_expiry_app VALID UNTIL '2030-01-01'")
        .execute(pool)
        .await
        .expect("set VALID UNTIL");
    let report = audit(pool, &model).await;
    sqlx::raw_sql("ALTER ROLE tenancy_audit_expiry_app VALID UNTIL 'infinity'")
        .execute(pool)
        .await
        .expect("reset VALID UNTIL");
    let report = report.expect("audit");
    assert_finding(
        &report,
        codes::APP_ROLE_VALID_UNTIL,
        "role tenancy_audit_expiry_app",
    );
    assert_only(&report, &[codes::APP_ROLE_VALID_UNTIL]);

    // 'infinity' is what a reset leaves in rolvaliduntil: not a finding.
    let shown: Option<String> = sqlx::query_scalar(
        "SELECT rolvaliduntil::text FROM pg_roles WHERE rolname = 'tenancy_audit_expiry_app'",
    )
    .fetch_one(pool)
    .await
    .expect("rolvaliduntil");
    assert_eq!(shown.as_deref(), Some("infinity"));
    let restored = audit(pool, &model).await.expect("audit");
    assert!(restored.is_clean(), "{}", restored.to_text());
    db.drop_db().await;
}

#[tokio::test]
async fn temporary_for_public_or_the_app_role_is_ta028() {
    for grantee in ["PUBLIC", "tenancy_app"] {
        let db = operated_db().await;
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
            "GRANT TEMPORARY ON DATABASE {} TO {grantee}",
            tenancy_tests::quote_ident(db.name())
        )))
        .execute(db.admin_pool())
        .await
        .expect("grant TEMPORARY");
        let report = audit(db.admin_pool(), &rag_model()).await.expect("audit");
        assert_finding(&report, codes::APP_ROLE_TEMPORARY, "role tenancy_app");
        assert_only(&report, &[codes::APP_ROLE_TEMPORARY]);
        let public = report
            .with_code(codes::APP_ROLE_TEMPORARY)
            .any(|f| f.message.contains("(granted to PUBLIC)"));
        assert_eq!(public, grantee == "PUBLIC", "{}", report.to_text());
        db.drop_db().await;
    }
}

#[tokio::test]
async fn create_on_a_schema_is_ta029() {
    let report = audit_after(
        "GRANT CREATE ON SCHEMA public TO tenancy_app; GRANT CREATE ON SCHEMA tenancy TO PUBLIC",
    )
    .await;
    assert_finding(&report, codes::APP_ROLE_CREATE_IN_SCHEMA, "schema public");
    assert_finding(&report, codes::APP_ROLE_CREATE_IN_SCHEMA, "schema tenancy");
    assert_only(&report, &[codes::APP_ROLE_CREATE_IN_SCHEMA]);
}

#[tokio::test]
async fn an_undeclared_table_the_app_role_can_use_is_ta080() {
    let report = audit_after(
        "CREATE TABLE public.leak (x int); GRANT SELECT ON public.leak TO tenancy_app; \
         CREATE TABLE public.column_leak (x int, y int); GRANT UPDATE (y) ON public.column_leak TO tenancy_app; \
         CREATE VIEW tenancy.all_tenants AS SELECT 1 AS one; GRANT SELECT ON tenancy.all_tenants TO PUBLIC; \
         CREATE TABLE public.private (x int); \
         CREATE SCHEMA hidden; CREATE TABLE hidden.t (x int); GRANT SELECT ON hidden.t TO tenancy_app",
    )
    .await;
    assert_finding(&report, codes::UNDECLARED_RELATION, "table public.leak");
    assert_finding(
        &report,
        codes::UNDECLARED_RELATION,
        "table public.column_leak",
    );
    assert_finding(
        &report,
        codes::UNDECLARED_RELATION,
        "view tenancy.all_tenants",
    );
    // Not readable by the app role, or in a schema it cannot use: not findings.
    assert_eq!(
        report.with_code(codes::UNDECLARED_RELATION).count(),
        3,
        "{}",
        report.to_text()
    );
    assert_only(&report, &[codes::UNDECLARED_RELATION]);
}

#[tokio::test]
async fn a_grant_the_generated_sql_does_not_make_is_ta081() {
    let report = audit_after(
        "GRANT UPDATE (tenant_id) ON documents TO tenancy_app; \
         GRANT UPDATE ON chunks TO tenancy_app; \
         GRANT SELECT ON tenancy.context_keys TO tenancy_app; \
         GRANT INSERT ON embedding_models TO PUBLIC",
    )
    .await;
    assert_finding(
        &report,
        codes::UNGENERATED_GRANT,
        "column documents.tenant_id",
    );
    assert_finding(&report, codes::UNGENERATED_GRANT, "table chunks");
    assert_finding(
        &report,
        codes::UNGENERATED_GRANT,
        "table tenancy.context_keys",
    );
    assert_finding(&report, codes::UNGENERATED_GRANT, "table embedding_models");
    // The whole-table UPDATE on chunks is one finding, not one per column.
    assert_eq!(
        report.with_code(codes::UNGENERATED_GRANT).count(),
        4,
        "{}",
        report.to_text()
    );
    assert_only(&report, &[codes::UNGENERATED_GRANT]);
}

#[tokio::test]
async fn a_dropped_or_disabled_keep_top_role_trigger_is_ta032() {
    for breakage in [
        "DROP TRIGGER user_project_roles_keep_top_role ON user_project_roles",
        "ALTER TABLE user_project_roles DISABLE TRIGGER user_project_roles_keep_top_role",
    ] {
        let report = audit_after(breakage).await;
        assert_finding(
            &report,
            codes::TRIGGER_MISSING,
            "trigger user_project_roles_keep_top_role on user_project_roles",
        );
        assert_only(&report, &[codes::TRIGGER_MISSING]);
    }
}

#[tokio::test]
async fn a_dropped_or_disabled_stamp_trigger_is_ta032() {
    // Without it, the app role writes any author into `created_by`.
    for breakage in [
        "DROP TRIGGER documents_stamp ON documents",
        "ALTER TABLE documents DISABLE TRIGGER documents_stamp",
    ] {
        let report = audit_after(breakage).await;
        assert_finding(
            &report,
            codes::TRIGGER_MISSING,
            "trigger documents_stamp on documents",
        );
        assert_only(&report, &[codes::TRIGGER_MISSING]);
    }
}

#[tokio::test]
async fn a_dropped_or_disabled_column_rights_trigger_is_ta032() {
    // Without it, an editor changes the admins' columns (`source_uri`, ...) of any document
    // it may update.
    for breakage in [
        "DROP TRIGGER documents_column_rights ON documents",
        "ALTER TABLE documents DISABLE TRIGGER documents_column_rights",
    ] {
        let report = audit_after(breakage).await;
        assert_finding(
            &report,
            codes::TRIGGER_MISSING,
            "trigger documents_column_rights on documents",
        );
        assert_only(&report, &[codes::TRIGGER_MISSING]);
    }
}

#[tokio::test]
async fn large_object_functions_granted_back_are_ta033() {
    let report = audit_after("GRANT EXECUTE ON FUNCTION lo_get(oid) TO PUBLIC").await;
    assert_finding(&report, codes::APP_ROLE_LARGE_OBJECTS, "role tenancy_app");
    let finding = report
        .with_code(codes::APP_ROLE_LARGE_OBJECTS)
        .next()
        .expect("TA033");
    assert!(finding.message.contains("(lo_get)"), "{finding}");
    assert_only(&report, &[codes::APP_ROLE_LARGE_OBJECTS]);
}
