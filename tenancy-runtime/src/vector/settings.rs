//! Per-tenant embedding models of `per tenant` vector columns: what the gateway reads, and
//! the operator's change of a tenant's model (which clears the tenant's vectors of the old
//! model, so no search ever compares vectors of two models).

use sqlx::PgConnection;

use super::maintenance::VectorMaintenance;
use super::table::{quote_ident, VectorSpec};
use crate::error::Error;
use crate::ids::TenantId;
use crate::system::SystemTx;

/// The settings table (in the helper schema) the generated migrations create for a model with
/// a `per tenant` vector column.
pub const SETTINGS_TABLE: &str = "vector_settings";

/// The first key of the per-tenant transaction advisory lock the generated dimension trigger
/// takes shared and [`VectorMaintenance::set_embedding_model`] exclusive (`'tenv'`; the second
/// key is `hashtext(tenant_id::text)`), the same value as tenancy-core's
/// `sql::vector_settings::SETTINGS_LOCK_CLASS`.
pub const SETTINGS_LOCK_CLASS: i32 = 0x7465_6e76;

/// The model name reported for a tenant that chose none (the column's declared dimension).
pub const DEFAULT_MODEL: &str = "default";

/// An embedding model: its name (as the application knows it, e.g. `bge-m3`) and the length
/// of the vectors it produces.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EmbeddingModel {
    /// The model's name (not empty, at most 200 bytes, no control characters).
    pub name: String,
    /// The length of its vectors (1..=16000, pgvector's range).
    pub dimensions: u32,
}

impl EmbeddingModel {
    /// A model named `name` producing `dimensions`-long vectors.
    pub fn new(name: impl Into<String>, dimensions: u32) -> Self {
        Self {
            name: name.into(),
            dimensions,
        }
    }

    /// Checks the name and the dimension.
    pub fn validate(&self) -> Result<(), Error> {
        let name = self.name.trim();
        if name.is_empty() || self.name.len() > 200 || self.name.chars().any(char::is_control) {
            return Err(Error::Misconfigured(format!(
                "vector model name {:?} must be 1 to 200 printable bytes",
                self.name
            )));
        }
        if !(1..=16_000).contains(&self.dimensions) {
            return Err(Error::Misconfigured(format!(
                "vector model {}: dimensions {} not in 1..=16000",
                self.name, self.dimensions
            )));
        }
        Ok(())
    }
}

/// A tenant's embedding model for one column, as the settings table says.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EmbeddingSetting {
    /// The model (name [`DEFAULT_MODEL`] and the column's declared dimension when the tenant
    /// chose none).
    pub model: EmbeddingModel,
    /// 0 for the column's default, then 1, 2, ... for each change of the tenant's model.
    pub version: i32,
}

/// What [`VectorMaintenance::set_embedding_model`] did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EmbeddingChange {
    /// The tenant's model before.
    pub previous: EmbeddingSetting,
    /// The tenant's model now.
    pub current: EmbeddingSetting,
    /// Vectors of the old model that were cleared (set to NULL): the rows the application
    /// re-embeds ([`VectorGateway::missing_vectors`](super::VectorGateway::missing_vectors)).
    pub stale_vectors: u64,
    /// The tenant's HNSW index on the column that was dropped (`schema.name`); the next
    /// [`VectorMaintenance::refresh`] builds one for the new dimension when the tenant is large.
    pub dropped_index: Option<String>,
    /// True when the tenant already used this model: nothing was changed or cleared.
    pub unchanged: bool,
}

impl EmbeddingSetting {
    /// A setting from the settings table's columns (or their defaults).
    pub(crate) fn from_row(dimensions: i32, name: String, version: i32) -> Result<Self, Error> {
        Ok(EmbeddingSetting {
            model: EmbeddingModel {
                name,
                dimensions: u32::try_from(dimensions).map_err(|_| {
                    Error::Misconfigured(format!("negative dimension {dimensions} in the settings"))
                })?,
            },
            version,
        })
    }
}

/// The statement that reads a tenant's setting for `spec`'s column (`$1` tenant):
/// `(dimensions, model, version)`, the column's default when there is no row.
pub(crate) fn setting_sql(helper_schema: &str, spec: &VectorSpec) -> String {
    format!(
        "SELECT COALESCE(s.dimensions, {default}), COALESCE(s.model, '{DEFAULT_MODEL}'), \
         COALESCE(s.version, 0) FROM (SELECT 1) AS one LEFT JOIN {schema}.{table} s \
         ON s.tenant_id = $1 AND s.table_name = '{catalog}' AND s.column_name = '{column}'",
        default = spec.dimensions,
        schema = quote_ident(helper_schema),
        table = quote_ident(SETTINGS_TABLE),
        // Validated lowercase identifiers: safe inside a literal.
        catalog = spec.catalog_name(),
        column = spec.vector_column,
    )
}

/// The tenant's setting for `spec`'s column, read on `conn` (under row-level security for the
/// app role: its own tenant only).
pub(crate) async fn read_setting(
    conn: &mut PgConnection,
    helper_schema: &str,
    spec: &VectorSpec,
    tenant: TenantId,
) -> Result<EmbeddingSetting, Error> {
    let (dimensions, name, version): (i32, String, i32) =
        sqlx::query_as(sqlx::AssertSqlSafe(setting_sql(helper_schema, spec)))
            .bind(tenant.as_uuid())
            .fetch_one(conn)
            .await?;
    EmbeddingSetting::from_row(dimensions, name, version)
}

/// [`Error::EmbeddingDimension`] unless `got` is the setting's dimension.
pub(crate) fn check_dimension(setting: &EmbeddingSetting, got: usize) -> Result<(), Error> {
    if got == setting.model.dimensions as usize {
        Ok(())
    } else {
        Err(Error::EmbeddingDimension {
            expected: setting.model.dimensions,
            got: u32::try_from(got).unwrap_or(u32::MAX),
            model: setting.model.name.clone(),
        })
    }
}

/// A validated dimension (at most 16000) as PostgreSQL's `int4`.
fn dimension_i32(dimensions: u32) -> i32 {
    i32::try_from(dimensions).unwrap_or(i32::MAX)
}

fn require_per_tenant(spec: &VectorSpec) -> Result<(), Error> {
    spec.validate()?;
    if spec.per_tenant {
        Ok(())
    } else {
        Err(Error::Misconfigured(format!(
            "{}.{} is not declared `per tenant`: every tenant has its {} dimensions",
            spec.table, spec.vector_column, spec.dimensions
        )))
    }
}

impl VectorMaintenance {
    /// The tenant's embedding model for `spec`'s `per tenant` column.
    pub async fn embedding_model(
        &self,
        spec: &VectorSpec,
        tenant: TenantId,
    ) -> Result<EmbeddingSetting, Error> {
        require_per_tenant(spec)?;
        let mut conn = self.pool().acquire().await?;
        read_setting(&mut conn, &self.config().helper_schema, spec, tenant).await
    }

    /// Switches the tenant to `model` for `spec`'s `per tenant` column, recording `actor` in
    /// the audit table:
    ///
    /// 1. the tenant's HNSW index on the column is dropped online (its searches are exact
    ///    meanwhile; the index's dimension is the old model's);
    /// 2. in one transaction: the setting is written (its version increased), every vector of
    ///    the tenant in the column is cleared (they belong to the old model: the application
    ///    re-embeds those rows) and an audit row `vector.set_embedding` is written.
    ///
    /// Other tenants are not touched. Setting the model the tenant already uses changes
    /// nothing (`unchanged`). Runs under the maintenance lock, so no refresh builds an index
    /// in between. A vector of the old dimension written after the change is refused by the
    /// database (SQLSTATE 23514) and by the gateway ([`Error::EmbeddingDimension`]).
    pub async fn set_embedding_model(
        &self,
        spec: &VectorSpec,
        tenant: TenantId,
        model: &EmbeddingModel,
        actor: &str,
    ) -> Result<EmbeddingChange, Error> {
        require_per_tenant(spec)?;
        model.validate()?;
        if actor.trim().is_empty() {
            return Err(Error::Misconfigured("an empty actor".to_owned()));
        }
        let mut lock = self.lock().await?;
        let result = self
            .set_embedding_locked(&mut lock, spec, tenant, model, actor)
            .await;
        let unlocked = self.unlock(&mut lock).await;
        let change = result?;
        unlocked?;
        Ok(change)
    }

    async fn set_embedding_locked(
        &self,
        conn: &mut PgConnection,
        spec: &VectorSpec,
        tenant: TenantId,
        model: &EmbeddingModel,
        actor: &str,
    ) -> Result<EmbeddingChange, Error> {
        let schema = &self.config().helper_schema;
        let previous = read_setting(conn, schema, spec, tenant).await?;
        if previous.model == *model {
            return Ok(EmbeddingChange {
                current: previous.clone(),
                previous,
                stale_vectors: 0,
                dropped_index: None,
                unchanged: true,
            });
        }
        let dropped_index = self.demote_tenant(conn, spec, tenant).await?;
        let quoted = quote_ident(schema);
        let mut tx = SystemTx::begin(self.pool(), self.reason()).await?;
        // Waits for the tenant's writes in flight (their trigger holds the lock shared); the
        // writes after it wait for this commit and then see the new model.
        sqlx::query(
            "SELECT pg_catalog.pg_advisory_xact_lock($1, pg_catalog.hashtext($2::uuid::text))",
        )
        .bind(SETTINGS_LOCK_CLASS)
        .bind(tenant.as_uuid())
        .execute(tx.connection())
        .await?;
        let version: i32 = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
            "INSERT INTO {quoted}.{table} AS s \
             (tenant_id, table_name, column_name, model, dimensions) \
             VALUES ($1, $2, $3, $4, $5) \
             ON CONFLICT (tenant_id, table_name, column_name) DO UPDATE \
             SET model = EXCLUDED.model, dimensions = EXCLUDED.dimensions, \
             version = s.version + 1, changed_at = now() RETURNING version",
            table = quote_ident(SETTINGS_TABLE),
        )))
        .bind(tenant.as_uuid())
        .bind(spec.catalog_name())
        .bind(spec.vector_column)
        .bind(&model.name)
        .bind(dimension_i32(model.dimensions))
        .fetch_one(tx.connection())
        .await?;
        let vector = quote_ident(spec.vector_column);
        let cleared = sqlx::query(sqlx::AssertSqlSafe(format!(
            "UPDATE {} SET {vector} = NULL WHERE tenant_id = $1 AND {vector} IS NOT NULL",
            spec.qualified_table()
        )))
        .bind(tenant.as_uuid())
        .execute(tx.connection())
        .await?
        .rows_affected();
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "INSERT INTO {quoted}.{} (tenant_id, project_id, actor, action, subject) \
             VALUES ($1, NULL, $2, 'vector.set_embedding', jsonb_build_object(\
             'table', $3::text, 'column', $4::text, \
             'from', jsonb_build_object('model', $5::text, 'dimensions', $6::int4), \
             'to', jsonb_build_object('model', $7::text, 'dimensions', $8::int4), \
             'version', $9::int4, 'stale_vectors', $10::int8, 'dropped_index', $11::text))",
            quote_ident(crate::admin::AUDIT_TABLE)
        )))
        .bind(tenant.as_uuid())
        .bind(actor)
        .bind(spec.catalog_name())
        .bind(spec.vector_column)
        .bind(&previous.model.name)
        .bind(dimension_i32(previous.model.dimensions))
        .bind(&model.name)
        .bind(dimension_i32(model.dimensions))
        .bind(version)
        .bind(i64::try_from(cleared).unwrap_or(i64::MAX))
        .bind(dropped_index.as_deref())
        .execute(tx.connection())
        .await?;
        tx.commit().await?;
        tracing::warn!(
            reason = self.reason(), %tenant, table = %spec.catalog_name(),
            column = spec.vector_column, model = %model.name, dimensions = model.dimensions,
            stale_vectors = cleared, "tenant vector model changed"
        );
        Ok(EmbeddingChange {
            previous,
            current: EmbeddingSetting {
                model: model.clone(),
                version,
            },
            stale_vectors: cleared,
            dropped_index,
            unchanged: false,
        })
    }
}
