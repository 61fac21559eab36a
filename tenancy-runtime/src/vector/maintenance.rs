//! The catalog of tenant sizes and tiers per vector table, and the privileged maintenance that
//! fills it and builds (or drops) each big tenant's HNSW index online.

use std::fmt;
use std::time::{Duration, Instant};

use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use super::table::{quote_ident, VectorSpec};
use super::VectorConfig;
use crate::error::Error;
use crate::ids::TenantId;
use crate::system::SystemTx;

/// How many of a promoted tenant's vectors measure its re-check distance.
pub const RECHECK_SAMPLE: i64 = 200;

/// Key of the session advisory lock that serialises maintenance runs ("tenvect1").
const MAINTENANCE_LOCK_KEY: i64 = 0x7465_6e76_6563_7431;

/// The catalog DDL for the default names (`tenancy` schema, `tenancy_app` role); the same text
/// as `catalog_sql(&VectorConfig::default())`, for a migration emitter. Idempotent.
///
/// Both tables are keyed by `table_name` (the vector table's `schema.table`, see
/// [`VectorSpec::catalog_name`]), so one catalog serves every vector table of the model. A
/// catalog of the earlier shape (one table, without `table_name`) is dropped first, with the
/// per-tenant indexes it lists: the catalog only holds derived data, and the next
/// [`VectorMaintenance::refresh`] recounts every tenant and rebuilds the indexes under their
/// new names (searches are exact meanwhile).
///
/// Row-level security is forced on both tables. The role that installs the catalog (the
/// maintenance role, which owns the tables) keeps full access through a policy `TO
/// CURRENT_USER`; the app role reads the tiers of its own tenant and the sizes of the projects
/// it holds a role in only, so a member of one project learns nothing about the others.
pub const VECTOR_CATALOG_SQL: &str = "\
DO $upgrade$ DECLARE old record; BEGIN
  IF to_regclass('tenancy.vector_tiers') IS NOT NULL AND NOT EXISTS (
    SELECT 1 FROM pg_catalog.pg_attribute WHERE attrelid = to_regclass('tenancy.vector_tiers')
    AND attname = 'table_name' AND NOT attisdropped) THEN
    FOR old IN EXECUTE 'SELECT index_name FROM tenancy.vector_tiers WHERE index_name IS NOT NULL'
    LOOP EXECUTE format('DROP INDEX IF EXISTS %I', old.index_name); END LOOP; DROP TABLE
    IF EXISTS tenancy.vector_tiers, tenancy.vector_project_sizes; END IF; END
$upgrade$;
CREATE TABLE IF NOT EXISTS tenancy.vector_tiers (
  table_name  text NOT NULL,
  tenant_id   uuid NOT NULL,
  row_count   bigint NOT NULL DEFAULT 0,
  tier        text NOT NULL DEFAULT 'exact' CHECK (tier IN ('exact', 'building', 'hnsw')),
  index_name  text,
  updated_at  timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (table_name, tenant_id)
);
CREATE TABLE IF NOT EXISTS tenancy.vector_project_sizes (
  table_name  text NOT NULL,
  tenant_id   uuid NOT NULL,
  project_id  uuid NOT NULL,
  row_count   bigint NOT NULL,
  updated_at  timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (table_name, tenant_id, project_id)
);
ALTER TABLE tenancy.vector_tiers ADD COLUMN IF NOT EXISTS index_seed bigint;
ALTER TABLE tenancy.vector_tiers ADD COLUMN IF NOT EXISTS index_key bigint;
ALTER TABLE tenancy.vector_tiers ADD COLUMN IF NOT EXISTS index_dimensions integer;
ALTER TABLE tenancy.vector_tiers ADD COLUMN IF NOT EXISTS recheck_distance double precision;
ALTER TABLE tenancy.vector_tiers ALTER COLUMN table_name SET STATISTICS 0,
  ALTER COLUMN tenant_id SET STATISTICS 0, ALTER COLUMN row_count SET STATISTICS 0,
  ALTER COLUMN tier SET STATISTICS 0, ALTER COLUMN index_name SET STATISTICS 0,
  ALTER COLUMN updated_at SET STATISTICS 0, ALTER COLUMN index_seed SET STATISTICS 0,
  ALTER COLUMN index_key SET STATISTICS 0, ALTER COLUMN index_dimensions SET STATISTICS 0,
  ALTER COLUMN recheck_distance SET STATISTICS 0;
ALTER TABLE tenancy.vector_project_sizes ALTER COLUMN table_name SET STATISTICS 0,
  ALTER COLUMN tenant_id SET STATISTICS 0, ALTER COLUMN project_id SET STATISTICS 0,
  ALTER COLUMN row_count SET STATISTICS 0, ALTER COLUMN updated_at SET STATISTICS 0;
DO $clear$ DECLARE col record; BEGIN
  IF pg_catalog.to_regprocedure('pg_catalog.pg_clear_attribute_stats(text,text,text,boolean)')
    IS NOT NULL THEN FOR col IN SELECT n.nspname::text AS nsp, c.relname::text AS rel,
    a.attname::text AS att FROM pg_catalog.pg_attribute a
    JOIN pg_catalog.pg_class c ON c.oid = a.attrelid
    JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
    WHERE a.attrelid IN ('tenancy.vector_tiers'::regclass, 'tenancy.vector_project_sizes'::regclass)
    AND a.attnum > 0 AND NOT a.attisdropped LOOP PERFORM
    pg_catalog.pg_clear_attribute_stats(col.nsp, col.rel, col.att, false); END LOOP; END IF; END
$clear$;
ALTER TABLE tenancy.vector_tiers ENABLE ROW LEVEL SECURITY;
ALTER TABLE tenancy.vector_tiers FORCE ROW LEVEL SECURITY;
ALTER TABLE tenancy.vector_project_sizes ENABLE ROW LEVEL SECURITY;
ALTER TABLE tenancy.vector_project_sizes FORCE ROW LEVEL SECURITY;
DROP POLICY IF EXISTS vector_tiers_maintenance ON tenancy.vector_tiers;
CREATE POLICY vector_tiers_maintenance ON tenancy.vector_tiers FOR ALL TO CURRENT_USER
  USING (true) WITH CHECK (true);
DROP POLICY IF EXISTS vector_project_sizes_maintenance ON tenancy.vector_project_sizes;
CREATE POLICY vector_project_sizes_maintenance ON tenancy.vector_project_sizes FOR ALL
  TO CURRENT_USER USING (true) WITH CHECK (true);
DROP POLICY IF EXISTS vector_tiers_tenant ON tenancy.vector_tiers;
CREATE POLICY vector_tiers_tenant ON tenancy.vector_tiers FOR SELECT TO tenancy_app
  USING (tenant_id = (SELECT tenancy.current_tenant_id()));
DROP POLICY IF EXISTS vector_project_sizes_tenant ON tenancy.vector_project_sizes;
CREATE POLICY vector_project_sizes_tenant ON tenancy.vector_project_sizes FOR SELECT TO tenancy_app
  USING (tenant_id = (SELECT tenancy.current_tenant_id()) AND COALESCE(project_id = ANY (
    (SELECT tenancy.project_ids(pg_catalog.enum_first(NULL::tenancy.project_role)))::uuid[]),
    false));
REVOKE ALL ON TABLE tenancy.vector_tiers, tenancy.vector_project_sizes FROM PUBLIC;
GRANT SELECT ON TABLE tenancy.vector_tiers, tenancy.vector_project_sizes TO tenancy_app;
";

/// The catalog DDL for `config`'s schema and app role (see [`VECTOR_CATALOG_SQL`]).
///
/// ```
/// use tenancy_runtime::vector::{catalog_sql, VectorConfig, VECTOR_CATALOG_SQL};
/// assert_eq!(catalog_sql(&VectorConfig::default()).unwrap(), VECTOR_CATALOG_SQL);
/// ```
pub fn catalog_sql(config: &VectorConfig) -> Result<String, Error> {
    config.validate()?;
    Ok(VECTOR_CATALOG_SQL
        .replace("tenancy_app", "\u{0}APP\u{0}")
        .replace("tenancy.", &format!("{}.", config.helper_schema))
        .replace("\u{0}APP\u{0}", &config.app_role))
}

/// A tenant's search tier, as recorded in the catalog.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Tier {
    /// Every search is exact.
    Exact,
    /// Its HNSW index is being built; searches stay exact until it is valid.
    Building,
    /// Its HNSW index is valid; large scopes use it.
    Hnsw,
}

impl Tier {
    /// The catalog's text for this tier.
    pub fn as_str(self) -> &'static str {
        match self {
            Tier::Exact => "exact",
            Tier::Building => "building",
            Tier::Hnsw => "hnsw",
        }
    }

    pub(crate) fn parse(text: &str) -> Result<Tier, Error> {
        match text {
            "exact" => Ok(Tier::Exact),
            "building" => Ok(Tier::Building),
            "hnsw" => Ok(Tier::Hnsw),
            other => Err(Error::Misconfigured(format!(
                "unknown vector tier {other:?}"
            ))),
        }
    }
}

/// One row of the catalog: a tenant's size and tier for one vector table.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TenantTier {
    /// The tenant.
    pub tenant_id: TenantId,
    /// Its rows with a vector in the table, at the last refresh.
    pub row_count: i64,
    /// Its tier.
    pub tier: Tier,
    /// Its HNSW index (`schema.name`), when promoted or being promoted.
    pub index_name: Option<String>,
}

/// What one [`VectorMaintenance::refresh`] of one table did.
#[derive(Clone, Debug, Default)]
pub struct MaintenanceReport {
    /// The table (`schema.table`).
    pub table: String,
    /// Every tenant's catalog row for the table after the refresh.
    pub tenants: Vec<TenantTier>,
    /// Tenants whose index was built, with the build time.
    pub promoted: Vec<(TenantId, Duration)>,
    /// Tenants whose index was dropped.
    pub demoted: Vec<TenantId>,
}

/// Privileged maintenance of the tiered vector store, per vector table of the model: counts
/// the rows with a vector per tenant and project, promotes tenants above
/// [`VectorConfig::promote_at`] by building their partial HNSW index (operator class from the
/// table's [`Distance`](super::Distance)) with `CREATE INDEX CONCURRENTLY` (which cannot run in
/// a transaction; writes and searches go on meanwhile, served exactly), and demotes them below
/// [`VectorConfig::demote_below`].
///
/// Like [`SystemTx`], it runs on a maintenance pool (a role that bypasses row-level security
/// and may create indexes on the tables, e.g. their owner) and needs a reason, logged at WARN.
/// Runs are serialised by a session advisory lock.
pub struct VectorMaintenance {
    pool: PgPool,
    reason: &'static str,
    config: VectorConfig,
}

impl fmt::Debug for VectorMaintenance {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VectorMaintenance")
            .field("reason", &self.reason)
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

type TierRow = (Uuid, i64, String, Option<String>);

/// [`VectorMaintenance::catalog`]'s select list: a [`TierRow`], then key present, index
/// dimensions, re-check distance missing.
type CatalogTuple = (Uuid, i64, String, Option<String>, bool, Option<i32>, bool);

/// A tenant's catalog row as `refresh` reads it.
struct CatalogRow {
    tier: TenantTier,
    /// Its index has a predicate key (the current shape; an index named after the tenant
    /// has none).
    keyed: bool,
    /// The dimension its index casts to (`per tenant` columns).
    index_dimensions: Option<u32>,
    /// Promoted before the re-check distance existed.
    recheck_missing: bool,
}

impl VectorMaintenance {
    /// Maintenance on `maintenance_pool`; an empty reason or an invalid config is refused with
    /// [`Error::Misconfigured`].
    pub fn new(
        maintenance_pool: PgPool,
        reason: &'static str,
        config: VectorConfig,
    ) -> Result<Self, Error> {
        if reason.trim().is_empty() {
            return Err(Error::Misconfigured(
                "VectorMaintenance needs a non-empty reason".to_owned(),
            ));
        }
        config.validate()?;
        Ok(Self {
            pool: maintenance_pool,
            reason,
            config,
        })
    }

    /// The configuration in use.
    pub fn config(&self) -> &VectorConfig {
        &self.config
    }

    fn schema(&self) -> String {
        quote_ident(&self.config.helper_schema)
    }

    /// The maintenance pool.
    pub(crate) fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// The reason every transaction logs.
    pub(crate) fn reason(&self) -> &'static str {
        self.reason
    }

    /// A connection holding the session advisory lock that serialises maintenance runs.
    pub(crate) async fn lock(&self) -> Result<sqlx::pool::PoolConnection<sqlx::Postgres>, Error> {
        let mut lock = self.pool.acquire().await?;
        sqlx::query("SELECT pg_catalog.pg_advisory_lock($1)")
            .bind(MAINTENANCE_LOCK_KEY)
            .execute(&mut *lock)
            .await?;
        Ok(lock)
    }

    /// Releases the lock [`lock`](Self::lock) took.
    pub(crate) async fn unlock(&self, conn: &mut PgConnection) -> Result<(), Error> {
        sqlx::query("SELECT pg_catalog.pg_advisory_unlock($1)")
            .bind(MAINTENANCE_LOCK_KEY)
            .execute(conn)
            .await?;
        Ok(())
    }

    /// Demotes the tenant on `table` (exact search first, then its index dropped online);
    /// returns the dropped index's `schema.name`.
    pub(crate) async fn demote_tenant(
        &self,
        conn: &mut PgConnection,
        table: &VectorSpec,
        tenant: TenantId,
    ) -> Result<Option<String>, Error> {
        // No catalog (never installed): no tier, no index.
        let installed: bool = sqlx::query_scalar(
            "SELECT pg_catalog.to_regclass(pg_catalog.quote_ident($1) || '.vector_tiers') IS NOT NULL",
        )
        .bind(&self.config.helper_schema)
        .fetch_one(&mut *conn)
        .await?;
        if !installed {
            return Ok(None);
        }
        let (name, _, _) = self.index_of(table, tenant).await?;
        self.demote(conn, table, tenant).await?;
        Ok(name)
    }

    /// Creates the catalog tables if missing (idempotent; upgrades a catalog of the earlier
    /// shape, see [`VECTOR_CATALOG_SQL`]), with row-level security by tenant and `SELECT`
    /// granted to the app role.
    pub async fn install(&self) -> Result<(), Error> {
        let sql = catalog_sql(&self.config)?;
        let mut tx = SystemTx::begin(&self.pool, self.reason).await?;
        // One statement at a time: sqlx's multi-statement `raw_sql` future is not `Send`. (No
        // line inside the DO block ends with `;`.)
        for statement in sql.split(";\n").map(str::trim).filter(|s| !s.is_empty()) {
            sqlx::query(sqlx::AssertSqlSafe(statement))
                .execute(tx.connection())
                .await?;
        }
        tx.commit().await
    }

    /// Every tenant's catalog row for `table`, by tenant id.
    pub async fn tiers(&self, table: &VectorSpec) -> Result<Vec<TenantTier>, Error> {
        let sql = format!(
            "SELECT tenant_id, row_count, tier, index_name FROM {}.vector_tiers \
             WHERE table_name = $1 ORDER BY tenant_id",
            self.schema()
        );
        let rows: Vec<TierRow> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .bind(table.catalog_name())
            .fetch_all(&self.pool)
            .await?;
        rows.into_iter().map(tier_row).collect()
    }

    /// Every tenant's catalog row for `table` with what `refresh` decides on, in one read
    /// (not one query per tenant and question).
    async fn catalog(&self, table: &VectorSpec) -> Result<Vec<CatalogRow>, Error> {
        let sql = format!(
            "SELECT tenant_id, row_count, tier, index_name, index_key IS NOT NULL, \
             index_dimensions, recheck_distance IS NULL FROM {}.vector_tiers \
             WHERE table_name = $1 ORDER BY tenant_id",
            self.schema()
        );
        let rows: Vec<CatalogTuple> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .bind(table.catalog_name())
            .fetch_all(&self.pool)
            .await?;
        rows.into_iter()
            .map(
                |(tenant, row_count, tier, index_name, keyed, dimensions, recheck_missing)| {
                    Ok(CatalogRow {
                        tier: tier_row((tenant, row_count, tier, index_name))?,
                        keyed,
                        index_dimensions: dimensions.and_then(|d| u32::try_from(d).ok()),
                        recheck_missing,
                    })
                },
            )
            .collect()
    }

    /// [`refresh`](Self::refresh) of every table, in order (e.g. the generated
    /// `VECTOR_TABLES`); stops at the first error.
    pub async fn refresh_all(
        &self,
        tables: &[&VectorSpec],
    ) -> Result<Vec<MaintenanceReport>, Error> {
        let mut reports = Vec::with_capacity(tables.len());
        for table in tables {
            reports.push(self.refresh(table).await?);
        }
        Ok(reports)
    }

    /// Recounts every tenant and project of `table`, then promotes and demotes tenants
    /// (building or dropping their index online). A tenant whose build failed stays `building`
    /// (searched exactly) and is retried by the next refresh; the error is returned.
    pub async fn refresh(&self, table: &VectorSpec) -> Result<MaintenanceReport, Error> {
        table.validate()?;
        let mut lock = self.lock().await?;
        let result = self.refresh_locked(&mut lock, table).await;
        let unlocked = self.unlock(&mut lock).await;
        let report = result?;
        unlocked?;
        Ok(report)
    }

    async fn refresh_locked(
        &self,
        conn: &mut PgConnection,
        table: &VectorSpec,
    ) -> Result<MaintenanceReport, Error> {
        self.recount(table).await?;
        let mut report = MaintenanceReport {
            table: table.catalog_name(),
            ..MaintenanceReport::default()
        };
        let ops = table.distance.operator_class();
        for row in self.catalog(table).await? {
            let tenant = row.tier;
            // An index built for another distance (the model's changed) counts as invalid, and
            // so does one of the earlier shape (named after the tenant, no predicate key).
            let valid = match &tenant.index_name {
                Some(name) => row.keyed && index_state(conn, name, ops).await? == Some(true),
                None => false,
            };
            // A `per tenant` column's index casts to the tenant's dimension: one built for an
            // earlier model is dropped (the tenant is searched exactly) and built again below.
            if table.per_tenant && tenant.tier != Tier::Exact {
                let wanted = self
                    .tenant_dimensions(conn, table, tenant.tenant_id)
                    .await?;
                if row.index_dimensions != Some(wanted) {
                    self.demote(conn, table, tenant.tenant_id).await?;
                    if tenant.row_count >= self.config.promote_at {
                        let took = self.promote(conn, table, tenant.tenant_id).await?;
                        report.promoted.push((tenant.tenant_id, took));
                    } else {
                        report.demoted.push(tenant.tenant_id);
                    }
                    continue;
                }
            }
            let demote = self
                .config
                .demote_below
                .is_some_and(|below| tenant.row_count < below);
            match tenant.tier {
                Tier::Exact if tenant.row_count >= self.config.promote_at => {
                    let took = self.promote(conn, table, tenant.tenant_id).await?;
                    report.promoted.push((tenant.tenant_id, took));
                }
                Tier::Building | Tier::Hnsw if demote => {
                    self.demote(conn, table, tenant.tenant_id).await?;
                    report.demoted.push(tenant.tenant_id);
                }
                // An interrupted build, or an index dropped behind the catalog's back.
                Tier::Building | Tier::Hnsw if !valid => {
                    let took = self.promote(conn, table, tenant.tenant_id).await?;
                    report.promoted.push((tenant.tenant_id, took));
                }
                // Promoted before the re-check distance existed: measure it now.
                Tier::Hnsw if row.recheck_missing => {
                    let identity = self.identity(table, tenant.tenant_id).await?;
                    self.try_measure_recheck(table, tenant.tenant_id, &identity)
                        .await;
                }
                _ => {}
            }
        }
        report.tenants = self.tiers(table).await?;
        Ok(report)
    }

    /// Rewrites the table's per-project sizes and every tenant's count in one system
    /// transaction.
    async fn recount(&self, table: &VectorSpec) -> Result<(), Error> {
        let schema = self.schema();
        let source = table.qualified_table();
        let vector = quote_ident(table.vector_column);
        let mut tx = SystemTx::begin(&self.pool, self.reason).await?;
        let statements = [
            format!("DELETE FROM {schema}.vector_project_sizes WHERE table_name = $1"),
            format!(
                "INSERT INTO {schema}.vector_project_sizes \
                 (table_name, tenant_id, project_id, row_count) \
                 SELECT $1, tenant_id, project_id, count(*) FROM {source} \
                 WHERE {vector} IS NOT NULL GROUP BY tenant_id, project_id"
            ),
            format!(
                "INSERT INTO {schema}.vector_tiers (table_name, tenant_id, row_count) \
                 SELECT $1, tenant_id, sum(row_count)::bigint FROM {schema}.vector_project_sizes \
                 WHERE table_name = $1 GROUP BY tenant_id \
                 ON CONFLICT (table_name, tenant_id) DO UPDATE \
                 SET row_count = EXCLUDED.row_count, updated_at = now()"
            ),
            format!(
                "UPDATE {schema}.vector_tiers t SET row_count = 0, updated_at = now() \
                 WHERE t.table_name = $1 AND row_count <> 0 AND NOT EXISTS (SELECT 1 FROM \
                 {schema}.vector_project_sizes p WHERE p.table_name = $1 \
                 AND p.tenant_id = t.tenant_id)"
            ),
        ];
        for statement in statements {
            sqlx::query(sqlx::AssertSqlSafe(statement))
                .bind(table.catalog_name())
                .execute(tx.connection())
                .await?;
        }
        tx.commit().await
    }

    /// The tenant's index in the catalog: (`schema.name`, predicate seed, predicate key).
    async fn index_of(
        &self,
        table: &VectorSpec,
        tenant: TenantId,
    ) -> Result<(Option<String>, Option<i64>, Option<i64>), Error> {
        let row: Option<(Option<String>, Option<i64>, Option<i64>)> =
            sqlx::query_as(sqlx::AssertSqlSafe(format!(
                "SELECT index_name, index_seed, index_key FROM {}.vector_tiers \
                 WHERE table_name = $1 AND tenant_id = $2",
                self.schema()
            )))
            .bind(table.catalog_name())
            .bind(tenant.as_uuid())
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.unwrap_or((None, None, None)))
    }

    /// Writes the tenant's tier and index (`schema.name`, predicate seed and key; all `None`
    /// when it has none).
    async fn set_tier(
        &self,
        table: &VectorSpec,
        tenant: TenantId,
        tier: Tier,
        index: Option<&IndexIdentity>,
    ) -> Result<(), Error> {
        let mut tx = SystemTx::begin(&self.pool, self.reason).await?;
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "UPDATE {}.vector_tiers SET tier = $3, index_name = $4, index_seed = $5, \
             index_key = $6, index_dimensions = $7, recheck_distance = NULL, \
             updated_at = now() WHERE table_name = $1 AND tenant_id = $2",
            self.schema()
        )))
        .bind(table.catalog_name())
        .bind(tenant.as_uuid())
        .bind(tier.as_str())
        .bind(index.map(|i| i.catalog_name.clone()))
        .bind(index.map(|i| i.seed))
        .bind(index.map(|i| i.key))
        .bind(index.and_then(|i| i.dimensions).map(|d| d as i32))
        .execute(tx.connection())
        .await?;
        tx.commit().await
    }

    /// The tenant's index identity: the one in the catalog when it has the current shape
    /// (a predicate key), otherwise a new one: a random name and a random seed, with the key
    /// `uuid_hash_extended(tenant, seed)` computed by the database (the function the partial
    /// index's predicate calls, so the two agree by construction).
    async fn identity(&self, table: &VectorSpec, tenant: TenantId) -> Result<IndexIdentity, Error> {
        let dimensions = if table.per_tenant {
            let mut conn = self.pool.acquire().await?;
            Some(self.tenant_dimensions(&mut conn, table, tenant).await?)
        } else {
            None
        };
        if let (Some(catalog_name), Some(seed), Some(key)) = self.index_of(table, tenant).await? {
            return Ok(IndexIdentity {
                name: catalog_name
                    .strip_prefix(&format!("{}.", table.schema))
                    .unwrap_or(&catalog_name)
                    .to_owned(),
                catalog_name,
                seed,
                key,
                dimensions,
            });
        }
        let random = Uuid::new_v4().as_u128();
        let name = table.index_name_for_token(random as u64);
        let seed = (random >> 64) as u64 as i64;
        let key: i64 = sqlx::query_scalar("SELECT pg_catalog.uuid_hash_extended($1, $2)")
            .bind(tenant.as_uuid())
            .bind(seed)
            .fetch_one(&self.pool)
            .await?;
        Ok(IndexIdentity {
            catalog_name: format!("{}.{name}", table.schema),
            name,
            seed,
            key,
            dimensions,
        })
    }

    /// The dimension of the tenant's embedding model for a `per tenant` column.
    async fn tenant_dimensions(
        &self,
        conn: &mut PgConnection,
        table: &VectorSpec,
        tenant: TenantId,
    ) -> Result<u32, Error> {
        let setting =
            super::settings::read_setting(conn, &self.config.helper_schema, table, tenant).await?;
        Ok(setting.model.dimensions)
    }

    /// Marks the tenant `building`, builds its index concurrently (dropping first an invalid
    /// leftover, or an index of another operator class after the model's distance changed), and
    /// marks it `hnsw` once `pg_index.indisvalid`. Returns the build time.
    async fn promote(
        &self,
        conn: &mut PgConnection,
        table: &VectorSpec,
        tenant: TenantId,
    ) -> Result<Duration, Error> {
        // An index of the earlier shape (named after the tenant's UUID, its predicate the
        // UUID itself) is dropped first; its replacement gets an opaque name and predicate.
        if let (Some(old), None, _) = self.index_of(table, tenant).await? {
            sqlx::query(sqlx::AssertSqlSafe(format!(
                "DROP INDEX CONCURRENTLY IF EXISTS {}",
                qualified_index(&old)
            )))
            .execute(&mut *conn)
            .await?;
        }
        let identity = self.identity(table, tenant).await?;
        let name = identity.name.clone();
        let qualified = format!("{}.{}", quote_ident(table.schema), quote_ident(&name));
        let catalog_name = identity.catalog_name.clone();
        self.set_tier(table, tenant, Tier::Building, Some(&identity))
            .await?;
        tracing::warn!(
            reason = self.reason, %tenant, table = %table.catalog_name(), index = %name,
            "building tenant HNSW index"
        );
        let ops = table.distance.operator_class();
        if index_state(conn, &catalog_name, ops).await? == Some(false) {
            sqlx::query(sqlx::AssertSqlSafe(format!(
                "DROP INDEX CONCURRENTLY IF EXISTS {qualified}"
            )))
            .execute(&mut *conn)
            .await?;
        }
        if let Some(mb) = self.config.build_maintenance_work_mem_mb {
            sqlx::query(sqlx::AssertSqlSafe(format!(
                "SET maintenance_work_mem = '{mb}MB'"
            )))
            .execute(&mut *conn)
            .await?;
        }
        let started = Instant::now();
        // Every value is typed or validated (quoted identifiers of a validated spec, Uuid
        // Display, validated integers, a fixed operator class): safe to format.
        let built = sqlx::query(sqlx::AssertSqlSafe(format!(
            "CREATE INDEX CONCURRENTLY IF NOT EXISTS {index} ON {source} \
             USING hnsw ({vector} {ops}) WITH (m = {m}, ef_construction = {ef}) \
             WHERE {predicate}",
            predicate = identity.predicate("tenant_id"),
            index = quote_ident(&name),
            source = table.qualified_table(),
            vector = indexed_expression(table, identity.dimensions),
            ops = table.distance.operator_class(),
            m = self.config.hnsw_m,
            ef = self.config.hnsw_ef_construction,
        )))
        .execute(&mut *conn)
        .await;
        let took = started.elapsed();
        if self.config.build_maintenance_work_mem_mb.is_some() {
            sqlx::query("RESET maintenance_work_mem")
                .execute(&mut *conn)
                .await?;
        }
        built?;
        if index_state(conn, &catalog_name, ops).await? != Some(true) {
            return Err(Error::Misconfigured(format!(
                "index {catalog_name} is not valid after CREATE INDEX CONCURRENTLY"
            )));
        }
        self.set_tier(table, tenant, Tier::Hnsw, Some(&identity))
            .await?;
        self.try_measure_recheck(table, tenant, &identity).await;
        Ok(took)
    }

    /// [`measure_recheck`](Self::measure_recheck), logging a failure at WARN instead of
    /// failing the refresh: without a re-check distance the tenant's searches are simply not
    /// re-checked, and the next refresh tries again.
    async fn try_measure_recheck(
        &self,
        table: &VectorSpec,
        tenant: TenantId,
        identity: &IndexIdentity,
    ) {
        if let Err(error) = self.measure_recheck(table, tenant, identity).await {
            tracing::warn!(
                reason = self.reason, %tenant, table = %table.catalog_name(), %error,
                "could not measure the tenant's vector re-check distance"
            );
        }
    }

    /// Measures and stores the tenant's re-check distance (see
    /// [`VectorConfig::recheck_far_queries`]): the 99th percentile, over up to
    /// [`RECHECK_SAMPLE`] of the tenant's own vectors (a fixed sample: ordered by the hash of
    /// the key), of the distance from each to its nearest other vector, found through the
    /// tenant's index with the search settings. A query whose nearest hit is farther than
    /// that lies outside the tenant's data, where the graph is unreliable.
    async fn measure_recheck(
        &self,
        table: &VectorSpec,
        tenant: TenantId,
        identity: &IndexIdentity,
    ) -> Result<Option<f64>, Error> {
        let vector = indexed_expression(table, identity.dimensions);
        let neighbour = indexed_column(
            &format!("n.{}", quote_ident(table.vector_column)),
            identity.dimensions,
        );
        let op = table.distance.operator();
        let source = table.qualified_table();
        let mut tx = self.pool.begin().await?;
        // Numbers from the validated configuration.
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
            "SET LOCAL enable_sort = off; SET LOCAL hnsw.ef_search = {}; \
             SET LOCAL hnsw.iterative_scan = relaxed_order; SET LOCAL hnsw.max_scan_tuples = {}",
            self.config.ef_search, self.config.max_scan_tuples
        )))
        .execute(&mut *tx)
        .await?;
        // Quoted identifiers of a validated spec, the predicate's typed integers, a fixed
        // operator: safe to format. The nearest other vector is the second hit (the first is
        // the vector itself, or a duplicate at the same distance 0).
        let distance: Option<f64> = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
            "SELECT percentile_cont(0.99) WITHIN GROUP (ORDER BY d) FROM (\
             SELECT (SELECT {neighbour} {op} s.v FROM {source} n \
             WHERE {predicate} AND n.tenant_id = $1 \
             ORDER BY {neighbour} {op} s.v LIMIT 1 OFFSET 1) AS d \
             FROM (SELECT {vector} AS v FROM {source} WHERE tenant_id = $1 \
             AND {column} IS NOT NULL ORDER BY pg_catalog.md5({key}::text) LIMIT $2) AS s) AS x",
            predicate = identity.predicate("n.tenant_id"),
            column = quote_ident(table.vector_column),
            key = quote_ident(table.key_column),
        )))
        .bind(tenant.as_uuid())
        .bind(RECHECK_SAMPLE)
        .fetch_one(&mut *tx)
        .await?;
        tx.commit().await?;
        let mut tx = SystemTx::begin(&self.pool, self.reason).await?;
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "UPDATE {}.vector_tiers SET recheck_distance = $3 \
             WHERE table_name = $1 AND tenant_id = $2",
            self.schema()
        )))
        .bind(table.catalog_name())
        .bind(tenant.as_uuid())
        .bind(distance)
        .execute(tx.connection())
        .await?;
        tx.commit().await?;
        Ok(distance)
    }

    /// Switches the tenant to exact search first, then drops its index concurrently.
    async fn demote(
        &self,
        conn: &mut PgConnection,
        table: &VectorSpec,
        tenant: TenantId,
    ) -> Result<(), Error> {
        let (name, _, _) = self.index_of(table, tenant).await?;
        self.set_tier(table, tenant, Tier::Exact, None).await?;
        let Some(name) = name else {
            return Ok(());
        };
        tracing::warn!(
            reason = self.reason, %tenant, table = %table.catalog_name(), index = %name,
            "dropping tenant HNSW index"
        );
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "DROP INDEX CONCURRENTLY IF EXISTS {}",
            qualified_index(&name)
        )))
        .execute(&mut *conn)
        .await?;
        Ok(())
    }
}

/// A tenant's partial HNSW index: an opaque name and the predicate
/// `uuid_hash_extended(tenant_id, seed) = key`, so neither the name nor the predicate in
/// `pg_indexes` carries the tenant's UUID. Seed and name are random; seed and key are stored in
/// the catalog (`vector_tiers`), which the app role reads for its own tenant only.
#[derive(Clone, Debug)]
pub(crate) struct IndexIdentity {
    /// The index name, without schema.
    pub(crate) name: String,
    /// `schema.name`, as the catalog stores it.
    pub(crate) catalog_name: String,
    /// The hash seed of the predicate.
    pub(crate) seed: i64,
    /// `uuid_hash_extended(tenant, seed)`.
    pub(crate) key: i64,
    /// For a `per tenant` column, the dimension the index casts the column to.
    pub(crate) dimensions: Option<u32>,
}

/// What a tenant's HNSW index is built on, and what the search orders by so the planner
/// matches it: the column, or for a `per tenant` column (an unconstrained `vector`, which HNSW
/// cannot index) the expression `(column::vector(N))` with the tenant's dimension.
pub(crate) fn indexed_expression(table: &VectorSpec, dimensions: Option<u32>) -> String {
    indexed_column(&quote_ident(table.vector_column), dimensions)
}

/// [`indexed_expression`] for an already written column reference (`t."vec"`).
pub(crate) fn indexed_column(column: &str, dimensions: Option<u32>) -> String {
    match dimensions {
        Some(n) => format!("({column}::vector({n}))"),
        None => column.to_owned(),
    }
}

impl IndexIdentity {
    /// The partial index's predicate over `column`; a query repeats it verbatim so that the
    /// planner can prove it. The constants are typed literals, so both sides parse to the same
    /// expression (a negative number written `-1::bigint` would be an operator call).
    pub(crate) fn predicate(&self, column: &str) -> String {
        predicate(column, self.seed, self.key)
    }
}

/// `pg_catalog.uuid_hash_extended(<column>, '<seed>'::bigint) = '<key>'::bigint`.
pub(crate) fn predicate(column: &str, seed: i64, key: i64) -> String {
    format!("pg_catalog.uuid_hash_extended({column}, '{seed}'::bigint) = '{key}'::bigint")
}

/// `schema.name` from the catalog, each part quoted.
fn qualified_index(catalog_name: &str) -> String {
    match catalog_name.split_once('.') {
        Some((schema, name)) => format!("{}.{}", quote_ident(schema), quote_ident(name)),
        None => quote_ident(catalog_name),
    }
}

/// `None` when the index (`schema.name`) does not exist, otherwise whether it is valid, ready
/// and built with the operator class `ops`.
async fn index_state(
    conn: &mut PgConnection,
    index_name: &str,
    ops: &str,
) -> Result<Option<bool>, Error> {
    let state: Option<bool> = sqlx::query_scalar(
        "SELECT i.indisvalid AND i.indisready AND COALESCE((SELECT c.opcname = $2 \
         FROM pg_catalog.pg_opclass c WHERE c.oid = i.indclass[0]), false) \
         FROM pg_catalog.pg_index i WHERE i.indexrelid = pg_catalog.to_regclass($1)",
    )
    .bind(index_name)
    .bind(ops)
    .fetch_optional(&mut *conn)
    .await?;
    Ok(state)
}

fn tier_row((tenant, row_count, tier, index_name): TierRow) -> Result<TenantTier, Error> {
    Ok(TenantTier {
        tenant_id: TenantId::new(tenant),
        row_count,
        tier: Tier::parse(&tier)?,
        index_name,
    })
}
