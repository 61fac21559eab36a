//! The fixture of the per-tenant embedding tests (`tests/vector_settings_live.rs` and
//! `tenancy-cli/tests/tenant_vector_model_cli.rs`): a model with a `per tenant` vector column,
//! generated from DSL text into a temporary directory, and tenants with vectors.

#![allow(dead_code, clippy::expect_used, clippy::unwrap_used)]

use std::path::Path;

use tenancy_runtime::{ProjectId, TenantId, UserId};
use tenancy_tests::TestDb;
use uuid::Uuid;

/// The policy: `passages.embedding` is `vector(3)? distance l2 per tenant`.
pub const POLICY: &str = "tenancy {
    roles = viewer < editor < admin
}
tenants table tenants {
    name text
    slug text
    unique (slug)
    allow select to viewer
}
projects table projects {
    name text
    slug text
    allow select to viewer
}
memberships table memberships {
    allow select to viewer
}
/// A passage with the embedding of its tenant's model.
scoped table passages {
    id uuid default gen_random_uuid()
    body text
    embedding vector(3)? distance l2 per tenant
    primary key (id)
    allow select to viewer
    allow insert, update to editor
}
";

/// Writes the policy into `dir/policies` and generates `dir/generated`.
pub fn generate(dir: &Path) {
    std::fs::create_dir_all(dir.join("policies")).unwrap();
    std::fs::write(dir.join("policies/notes.tenancy"), POLICY).unwrap();
    let sources = [tenancy_core::dsl::SourceFile::new(
        "notes.tenancy",
        POLICY.to_owned(),
    )];
    let (model, diags) = tenancy_core::dsl::compile(&sources);
    assert!(!diags.has_errors(), "{}", diags.render(&sources, false));
    let model = model.unwrap();
    std::fs::create_dir_all(dir.join("generated/migrations")).unwrap();
    for file in tenancy_core::sql::generate_migrations(&model, tenancy_core::sql::Target::Postgres)
    {
        std::fs::write(dir.join("generated").join(&file.path), &file.contents).unwrap();
    }
}

/// One tenant with one project (slug `<tenant>-p`) and a user who is editor in it.
pub struct Tenant {
    /// The tenant.
    pub id: TenantId,
    /// Its project.
    pub project: ProjectId,
    /// An editor of the project.
    pub user: UserId,
}

pub async fn add_tenant(db: &TestDb, slug: &str) -> Tenant {
    let t = Tenant {
        id: TenantId::new(Uuid::new_v4()),
        project: ProjectId::new(Uuid::new_v4()),
        user: UserId::new(Uuid::new_v4()),
    };
    let admin = db.admin_pool();
    sqlx::query("INSERT INTO tenants (id, name, slug) VALUES ($1, $2, $2)")
        .bind(t.id.as_uuid())
        .bind(slug)
        .execute(admin)
        .await
        .unwrap();
    sqlx::query("INSERT INTO projects (tenant_id, id, name, slug) VALUES ($1, $2, $3, $3)")
        .bind(t.id.as_uuid())
        .bind(t.project.as_uuid())
        .bind(format!("{slug}-p"))
        .execute(admin)
        .await
        .unwrap();
    sqlx::query(
        "INSERT INTO memberships (tenant_id, project_id, user_id, role) \
         VALUES ($1, $2, $3, 'editor')",
    )
    .bind(t.id.as_uuid())
    .bind(t.project.as_uuid())
    .bind(t.user.as_uuid())
    .execute(admin)
    .await
    .unwrap();
    t
}

/// `count` passages of `tenant` with `dims`-long vectors: passage i is `[i, i, ...]`.
pub async fn fill(db: &TestDb, t: &Tenant, dims: i32, count: i32) {
    sqlx::query(
        "INSERT INTO passages (tenant_id, project_id, body, embedding) \
         SELECT $1, $2, 'p' || g, array_fill(g::real, ARRAY[$3::int])::vector \
         FROM generate_series(1, $4::int) AS g",
    )
    .bind(t.id.as_uuid())
    .bind(t.project.as_uuid())
    .bind(dims)
    .bind(count)
    .execute(db.admin_pool())
    .await
    .unwrap();
}

/// (rows, rows with a vector) of the tenant.
pub async fn count_vectors(db: &TestDb, t: &Tenant) -> (i64, i64) {
    sqlx::query_as("SELECT count(*), count(embedding) FROM passages WHERE tenant_id = $1")
        .bind(t.id.as_uuid())
        .fetch_one(db.admin_pool())
        .await
        .unwrap()
}

/// A database with the policy's migrations, and the directory holding `policies/` and
/// `generated/` (the CLI's working directory).
pub async fn database() -> (TestDb, tempfile::TempDir) {
    let tmp = tempfile::tempdir().unwrap();
    generate(tmp.path());
    let db = TestDb::empty().await;
    db.apply_migrations(&tmp.path().join("generated/migrations"))
        .await
        .unwrap();
    (db, tmp)
}
