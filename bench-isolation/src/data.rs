//! The benchmark database: created fresh, migrated, filled server-side with a fixed seed.

use anyhow::{Context, Result};
use sqlx::postgres::{PgConnection, PgPool, PgPoolOptions};
use sqlx::Connection;
use tenancy_runtime::ContextKey;
use tenancy_tests::{
    apply_migrations, database_url, migration_files, migrations_dir, quote_ident, APP_ROLE,
};
use uuid::Uuid;

/// The id of the key the bench signs context tokens with (installed in its databases).
pub const BENCH_KEY_ID: &str = "bench-isolation";

/// The bench key's secret (32 bytes, hex). A benchmark key, never a production one.
pub const BENCH_KEY_HEX: &str =
    "62656e63682d69736f6c6174696f6e206b6579202d206e6f742073656372657421";

/// The bench key as the runtime takes it.
pub fn bench_key() -> Result<ContextKey> {
    Ok(ContextKey::parse(&format!(
        "{BENCH_KEY_ID}:{BENCH_KEY_HEX}"
    ))?)
}

/// Which design a benchmark database is migrated to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Contract {
    /// Every file of `generated/migrations` (contract 3, the signed context), plus the bench key.
    V3,
    /// Only the files before the first `*_core_context_v3.sql` (0001 + 0002): exactly the
    /// contract-2 design (`SET LOCAL tenancy.context`, helpers reading the setting inline).
    V2,
}

/// A directory holding the migrations of `contract` (copies, for [`apply_migrations`]).
fn contract_migrations(contract: Contract, name: &str) -> Result<std::path::PathBuf> {
    let all = migrations_dir();
    if contract == Contract::V3 {
        return Ok(all);
    }
    let dir = std::env::temp_dir().join(format!("{name}-migrations-v2"));
    if dir.exists() {
        std::fs::remove_dir_all(&dir)?;
    }
    std::fs::create_dir_all(&dir)?;
    for file in migration_files(&all)? {
        let file_name = file.file_name().context("a migration without a name")?;
        if file_name.to_string_lossy().contains("_core_context_v3") {
            break;
        }
        std::fs::copy(&file, dir.join(file_name))?;
    }
    Ok(dir)
}

/// The shape of the generated dataset.
#[derive(Clone, Debug)]
pub struct DataShape {
    /// Number of tenants (tenant 0 is the big one).
    pub tenants: u32,
    /// Documents in each of the big tenant's three projects.
    pub big_project_documents: [u32; 3],
    /// Documents in each project of every other tenant.
    pub small_project_documents: u32,
    /// Chunks per document (ordinals 0..chunks_per_document).
    pub chunks_per_document: u32,
}

impl DataShape {
    /// Every tenant has this many projects.
    pub const PROJECTS_PER_TENANT: u32 = 3;

    /// Total documents.
    pub fn documents(&self) -> u64 {
        let big: u64 = self
            .big_project_documents
            .iter()
            .map(|&d| u64::from(d))
            .sum();
        let others = u64::from(self.tenants.saturating_sub(1))
            * u64::from(Self::PROJECTS_PER_TENANT)
            * u64::from(self.small_project_documents);
        big + others
    }

    /// Total chunks.
    pub fn chunks(&self) -> u64 {
        self.documents() * u64::from(self.chunks_per_document)
    }
}

/// The deterministic id the dataset gives `text` (`md5(text)::uuid`), e.g. `tenant-0`,
/// `project-0-1`, `user-0`.
pub async fn seeded_id(pool: &PgPool, text: &str) -> Result<Uuid> {
    let id = sqlx::query_scalar("SELECT md5($1)::uuid")
        .bind(text)
        .fetch_one(pool)
        .await?;
    Ok(id)
}

/// URLs and pools of the benchmark database.
pub struct BenchDb {
    /// Superuser URL of the benchmark database.
    pub admin_url: String,
    /// URL of the benchmark database for the application role.
    pub app_url: String,
    /// Superuser URL of the server's maintenance database.
    pub server_url: String,
    /// The database name.
    pub name: String,
}

impl BenchDb {
    /// Drops and recreates `name`, applies the generated migrations of `contract` and, for
    /// contract 3, installs the bench key ([`BENCH_KEY_ID`]).
    pub async fn create(server_url: &str, name: &str, contract: Contract) -> Result<BenchDb> {
        let mut conn = PgConnection::connect(server_url)
            .await
            .with_context(|| format!("connecting to {server_url}"))?;
        // Two round trips: several statements in one simple query form a transaction block.
        for statement in [
            "DROP DATABASE IF EXISTS {} WITH (FORCE)",
            "CREATE DATABASE {}",
        ] {
            sqlx::raw_sql(sqlx::AssertSqlSafe(
                statement.replace("{}", &quote_ident(name)),
            ))
            .execute(&mut conn)
            .await
            .with_context(|| format!("recreating database {name}"))?;
        }
        conn.close().await?;
        let admin_url = database_url(server_url, None, None, name)?;
        let app_url = database_url(server_url, Some(APP_ROLE), None, name)?;
        let dir = contract_migrations(contract, name)?;
        apply_migrations(&admin_url, &dir).await?;
        if contract == Contract::V3 {
            let mut conn = PgConnection::connect(&admin_url).await?;
            sqlx::query("SELECT tenancy.install_context_key($1, decode($2, 'hex'))")
                .bind(BENCH_KEY_ID)
                .bind(BENCH_KEY_HEX)
                .execute(&mut conn)
                .await
                .context("installing the bench context key")?;
            // apply_migrations installed the test suite's key as well: retire it, so the
            // bench can only work with the key it configures itself.
            sqlx::query("UPDATE tenancy.context_keys SET retired_at = now() WHERE kid <> $1")
                .bind(BENCH_KEY_ID)
                .execute(&mut conn)
                .await?;
            conn.close().await?;
        } else {
            std::fs::remove_dir_all(&dir)?;
        }
        Ok(BenchDb {
            admin_url,
            app_url,
            server_url: server_url.to_owned(),
            name: name.to_owned(),
        })
    }

    /// Drops the database.
    pub async fn drop_db(self) -> Result<()> {
        let mut conn = PgConnection::connect(&self.server_url).await?;
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
            "DROP DATABASE IF EXISTS {} WITH (FORCE)",
            quote_ident(&self.name)
        )))
        .execute(&mut conn)
        .await?;
        conn.close().await?;
        Ok(())
    }

    /// A pool of `size` connections as the superuser (no row-level security).
    pub async fn admin_pool(&self, size: u32) -> Result<PgPool> {
        pool(&self.admin_url, size).await
    }

    /// A pool of `size` connections as the application role (row-level security applies).
    pub async fn app_pool(&self, size: u32) -> Result<PgPool> {
        pool(&self.app_url, size).await
    }
}

/// A pool with every connection opened up front.
pub async fn pool(url: &str, size: u32) -> Result<PgPool> {
    let pool = PgPoolOptions::new()
        .max_connections(size)
        .min_connections(size)
        .connect(url)
        .await
        .with_context(|| format!("connecting to {url}"))?;
    Ok(pool)
}

/// Fills the database as the superuser, server-side, with a fixed seed; then VACUUM ANALYZE.
pub async fn fill(admin_url: &str, shape: &DataShape) -> Result<()> {
    let mut conn = PgConnection::connect(admin_url).await?;
    let [b0, b1, b2] = shape.big_project_documents;
    let script = format!(
        "
        -- Every row is consistent by construction: skip the per-row FK triggers.
        SET session_replication_role = replica;
        SELECT setseed(0.42);
        CREATE TEMP TABLE bench_projects AS
          SELECT t, p, md5('tenant-' || t)::uuid AS tenant_id,
                 md5('project-' || t || '-' || p)::uuid AS project_id,
                 CASE WHEN t = 0 THEN (ARRAY[{b0}, {b1}, {b2}])[p + 1] ELSE {small} END AS documents
          FROM generate_series(0, {last_tenant}) AS t, generate_series(0, {last_project}) AS p;
        INSERT INTO tenants (id, name, slug)
          SELECT DISTINCT tenant_id, 'tenant ' || t, 'tenant-' || t FROM bench_projects;
        INSERT INTO projects (tenant_id, id, name, slug)
          SELECT tenant_id, project_id, 'project ' || t || '/' || p, 'p-' || p FROM bench_projects;
        INSERT INTO user_project_roles (tenant_id, project_id, user_id, role)
          SELECT tenant_id, project_id, md5('user-' || t)::uuid, 'editor' FROM bench_projects;
        INSERT INTO documents (tenant_id, project_id, id, title, content_hash, created_by)
          SELECT bp.tenant_id, bp.project_id, md5('doc-' || bp.t || '-' || bp.p || '-' || d)::uuid,
                 'document ' || d, md5('hash-' || bp.t || '-' || bp.p || '-' || d),
                 md5('user-' || bp.t)::uuid
          FROM bench_projects AS bp, generate_series(0, bp.documents - 1) AS d
          ORDER BY 1, 2, 3;
        INSERT INTO chunks (tenant_id, project_id, id, document_id, ordinal, content, token_count)
          SELECT d.tenant_id, d.project_id, md5(d.id::text || ':' || o)::uuid, d.id, o,
                 'chunk ' || o || ' of ' || d.title || ': ' || repeat('lorem ipsum ', 5 + (random() * 20)::int),
                 50 + (random() * 450)::int
          FROM documents AS d, generate_series(0, {last_ordinal}) AS o
          ORDER BY 1, 2, 3;
        RESET session_replication_role;
        ",
        small = shape.small_project_documents,
        last_tenant = shape.tenants.saturating_sub(1),
        last_project = DataShape::PROJECTS_PER_TENANT - 1,
        last_ordinal = shape.chunks_per_document.saturating_sub(1),
    );
    sqlx::raw_sql(sqlx::AssertSqlSafe(script.as_str()))
        .execute(&mut conn)
        .await
        .context("generating the dataset")?;
    sqlx::raw_sql("VACUUM (ANALYZE) tenants, projects, user_project_roles, documents, chunks")
        .execute(&mut conn)
        .await
        .context("VACUUM ANALYZE")?;
    conn.close().await?;
    Ok(())
}
