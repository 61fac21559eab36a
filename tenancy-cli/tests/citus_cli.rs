//! `tenancy citus placement|isolate-tenant` and `tenancy audit` against a real 3-node Citus cluster
//! (`scripts/citus-up`, or `TENANCY_CITUS_URL`): the placement of every tenant, a tenant moved
//! to shards of its own, and one-sentence failures. Never skips.

#[path = "../../tests/citus_common/mod.rs"]
mod citus_common;

use std::process::{Command, Output};

use citus_common::{compile, rag_text, CitusDb};
use uuid::Uuid;

fn tenancy(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_tenancy"))
        .args(args)
        .env_remove("DATABASE_URL")
        .output()
        .unwrap_or_else(|e| panic!("running tenancy: {e}"))
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[tokio::test]
async fn placement_and_isolate_tenant() {
    let db = CitusDb::create(&compile(&rag_text())).await;
    let tenants: Vec<Uuid> = (0..3).map(|_| Uuid::new_v4()).collect();
    for (i, tenant) in tenants.iter().enumerate() {
        sqlx::query("INSERT INTO tenants (id, name, slug) VALUES ($1, $2, $2)")
            .bind(tenant)
            .bind(format!("t{i}"))
            .execute(&db.admin)
            .await
            .unwrap();
    }
    let url = db.url.clone();

    let out = tenancy(&["citus", "placement", "--database-url", &url]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let placement = text(&out.stdout);
    for tenant in &tenants {
        let line = placement
            .lines()
            .find(|l| l.starts_with(&tenant.to_string()))
            .unwrap_or_else(|| panic!("{tenant} missing:\n{placement}"));
        assert!(line.contains("127.0.0.1:"), "{line}");
    }

    let out = tenancy(&[
        "citus",
        "isolate-tenant",
        &tenants[0].to_string(),
        "--database-url",
        &url,
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(stdout.contains("now has shard"), "{stdout}");
    // The isolated tenant is alone in its shard.
    let line = stdout
        .lines()
        .find(|l| l.starts_with(&tenants[0].to_string()))
        .unwrap_or_default()
        .to_owned();
    assert!(line.trim_end().ends_with(" 1"), "{line}");
    let (min, max): (String, String) = sqlx::query_as(
        "SELECT shardminvalue, shardmaxvalue FROM pg_catalog.pg_dist_shard \
         WHERE shardid = pg_catalog.get_shard_id_for_distribution_column('public.projects', $1)",
    )
    .bind(tenants[0].to_string())
    .fetch_one(&db.admin)
    .await
    .unwrap();
    assert_eq!(min, max);

    // A tenant that does not exist: exit 1, one sentence.
    let missing = Uuid::new_v4().to_string();
    let out = tenancy(&["citus", "isolate-tenant", &missing, "--database-url", &url]);
    assert!(!out.status.success());
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains(&format!("tenant {missing} does not exist")),
        "{stderr}"
    );
    assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
    db.drop_db().await;
}

#[tokio::test]
async fn a_database_without_citus_is_refused_in_one_sentence() {
    let url = tenancy_tests::admin_url().await;
    let out = tenancy(&["citus", "placement", "--database-url", &url]);
    assert!(!out.status.success());
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("the database has no citus extension"),
        "{stderr}"
    );
}

#[tokio::test]
async fn audit_detects_citus_and_reports_an_unfolded_policy() {
    let db = CitusDb::create(&compile(&rag_text())).await;
    let policies = tenancy_tests::repo_root().join("examples/rag/policies");
    let policies = policies.to_string_lossy();
    // No --target: the audit sees the citus extension and audits the Citus form: clean.
    let out = tenancy(&["audit", "--database-url", &db.url, "--policies", &policies]);
    assert!(
        out.status.success(),
        "{}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    assert!(
        text(&out.stdout).contains("audit clean"),
        "{}",
        text(&out.stdout)
    );
    // A restrictive tenant boundary, as the PostgreSQL target writes it: lost on the shards.
    sqlx::raw_sql(
        "CREATE POLICY documents_boundary ON documents AS RESTRICTIVE TO tenancy_app \
         USING (tenant_id = tenancy.current_tenant_id())",
    )
    .execute(&db.admin)
    .await
    .unwrap();
    let out = tenancy(&["audit", "--database-url", &db.url, "--policies", &policies]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(
        stdout.contains("TA106 policy documents_boundary on public.documents: is RESTRICTIVE"),
        "{stdout}"
    );
    db.drop_db().await;
}
