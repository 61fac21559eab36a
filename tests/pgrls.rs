//! The pgrls linter (PyPI `pgrls`, pinned in `scripts/pgrls-lint`) on the generated schema and
//! the runtime's vector catalog (issue 18, item 4): a fresh database with every migration, the
//! catalog installed and one tenant promoted to its own HNSW index reports 0 errors under
//! `pgrls.toml` (whose allowlist says why each entry is by design). The script installs pgrls
//! from PyPI on first use; a failure to install or run it fails this test.

use std::process::Command;

use tenancy_generated::Chunks;
use tenancy_runtime::vector::{Tier, VectorConfig, VectorMaintenance};
use tenancy_tests::{repo_root, TestDb};
use uuid::Uuid;

#[tokio::test]
async fn pgrls_reports_no_error() {
    let db = TestDb::fresh().await;
    let (tenant, project) = (Uuid::new_v4(), Uuid::new_v4());
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
        "INSERT INTO tenants (id, name, slug) VALUES ('{tenant}', 't', 't');
         INSERT INTO projects (tenant_id, id, name, slug) VALUES ('{tenant}', '{project}', 'p', 'p');
         INSERT INTO documents (tenant_id, project_id, title, content_hash, created_by)
           SELECT '{tenant}', '{project}', 'd', 'h' || k, gen_random_uuid()
           FROM generate_series(1, 3) AS k;
         INSERT INTO chunks (tenant_id, project_id, document_id, ordinal, content, token_count,
                             embedding)
           SELECT tenant_id, project_id, id, o, 'c', 1,
                  array_fill((o + 1)::real, ARRAY[384])::vector
           FROM documents, generate_series(1, 10) AS o;"
    )))
    .execute(db.admin_pool())
    .await
    .unwrap();
    let config = VectorConfig {
        promote_at: 20,
        demote_below: Some(10),
        exact_scope_max: 10,
        ..VectorConfig::default()
    };
    let m = VectorMaintenance::new(db.admin_pool().clone(), "pgrls test", config).unwrap();
    m.install().await.unwrap();
    let report = m.refresh(&Chunks::EMBEDDING_VECTORS.spec).await.unwrap();
    assert_eq!(report.promoted.len(), 1, "{report:?}");
    assert_eq!(report.tenants[0].tier, Tier::Hnsw);

    let output = Command::new(repo_root().join("scripts/pgrls-lint"))
        .arg(db.url())
        .output()
        .expect("running scripts/pgrls-lint");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "pgrls failed ({}):\n{stdout}\n{stderr}",
        output.status
    );
    let summary = stdout.lines().last().unwrap_or_default();
    assert!(
        summary.starts_with("pgrls:") && !summary.contains("error"),
        "pgrls summary: {summary:?}\n{stdout}"
    );
    assert!(!stdout.contains("ERROR "), "{stdout}");
    db.drop_db().await;
}
