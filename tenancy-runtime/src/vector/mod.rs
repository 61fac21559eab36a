//! Vector search over any scoped table the model declares with a vector column, partitioned
//! by tenant and project.
//!
//! The table is described by a [`VectorSpec`] (names, dimension, [`Distance`]) wrapped in a
//! typed [`VectorTable`] (the roles its rules require, its key type); `tenancy generate` emits
//! one per vector column as `<Repository>::<COLUMN>_VECTORS`, and every statement below is
//! built from it with quoted, schema-qualified identifiers.
//!
//! pgvector filters *after* an approximate index scan, so one shared HNSW index with a tenant
//! filter returns short and wrong results for small tenants next to big ones. The gateway
//! therefore picks the route itself, per search, from a catalog of tenant sizes:
//!
//! * **exact**: `ORDER BY <vector> <op> $q` over the scope's rows only, read through the
//!   `(tenant_id, project_id, ...)` primary-key btree (the distance is computed in a
//!   `MATERIALIZED` CTE, so no HNSW index can serve the `ORDER BY`). Recall 1.0. Used for every
//!   small scope, with a filter, and for a big tenant until its own index is valid.
//! * **tenant HNSW**: a big tenant (above [`VectorConfig::promote_at`] rows of the table) gets
//!   its own partial index `<table>_<column>_hnsw_<16 random hex digits> ... WHERE
//!   uuid_hash_extended(tenant_id, '<random seed>'::bigint) = '<key>'::bigint` (operator class
//!   from the table's distance), built online by [`VectorMaintenance`] with `CREATE INDEX
//!   CONCURRENTLY`. Neither the name nor the predicate, which every role reads in
//!   `pg_indexes`, carries the tenant's UUID; name, seed and key are kept in the catalog. The
//!   query repeats the predicate with its constants inlined so the planner can prove it, runs
//!   with `enable_sort` off (the tenant-owned tables carry no planner statistics, so the
//!   planner cannot know the tenant is large; the setting is restored right after), and the
//!   pgvector settings (`hnsw.ef_search`, `hnsw.iterative_scan = relaxed_order`,
//!   `hnsw.max_scan_tuples`) are set with `set_config(..., true)` for the transaction only.
//!
//! The catalog (`<helper_schema>.vector_tiers` and `<helper_schema>.vector_project_sizes`,
//! keyed by table) is written by [`VectorMaintenance`] on a privileged pool and read by the
//! gateway under row-level security (each tenant sees only its own rows).
//!
//! A column declared `per tenant` (`vec vector(384)? per tenant`) is an unconstrained
//! `vector`: each tenant's embedding model (name and dimension) is a row of
//! `<helper_schema>.vector_settings` ([`EmbeddingSetting`]; the declared dimension when the
//! tenant has none). The gateway reads it in the same round trip as the catalog and refuses a
//! query or a vector of another length with [`Error::EmbeddingDimension`] before anything is
//! compared; a tenant's HNSW index casts the column to its dimension (`(col::vector(N))`).
//! [`VectorMaintenance::set_embedding_model`] changes a tenant's model and clears its vectors
//! of the old one (the application re-embeds them, [`VectorGateway::missing_vectors`]).
//!
//! Every gateway method takes a [`ScopedTx`](crate::ScopedTx) whose scope proves the role the
//! table's rules require; there is no unscoped method.

mod gateway;
mod maintenance;
mod settings;
mod table;

pub use gateway::{
    Route, SearchHit, SearchRequest, SearchResults, VectorGateway, VectorKey, VectorUpdate,
};
pub use maintenance::{
    catalog_sql, MaintenanceReport, TenantTier, Tier, VectorMaintenance, RECHECK_SAMPLE,
    VECTOR_CATALOG_SQL,
};
pub use settings::{
    EmbeddingChange, EmbeddingModel, EmbeddingSetting, DEFAULT_MODEL, SETTINGS_LOCK_CLASS,
    SETTINGS_TABLE,
};
pub use table::{Distance, NoUpdateRule, VectorSpec, VectorTable};

use crate::error::Error;
use crate::role::is_valid_identifier;

/// Largest `k` a search accepts.
pub const MAX_K: u32 = 1000;

/// Thresholds and pgvector settings of the tiered vector store.
///
/// ```
/// let config = tenancy_runtime::vector::VectorConfig::default();
/// assert_eq!(config.promote_at, 10_000);
/// assert_eq!(config.demote_below, Some(5_000));
/// assert_eq!((config.ef_search, config.hnsw_m, config.hnsw_ef_construction), (1000, 32, 256));
/// assert!(config.recheck_far_queries);
/// assert!(config.validate().is_ok());
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct VectorConfig {
    /// Schema of the context helpers and of the catalog tables (`[a-z_][a-z0-9_]*`).
    pub helper_schema: String,
    /// The application's login role, granted `SELECT` on the catalog (`[a-z_][a-z0-9_]*`).
    pub app_role: String,
    /// A tenant with at least this many rows with a vector (in one table) is promoted to its own
    /// HNSW index on that table.
    pub promote_at: i64,
    /// A promoted tenant is demoted (its index dropped) only below this many rows; `None`
    /// never demotes. Must be below `promote_at`, so a tenant near the threshold does not flap.
    pub demote_below: Option<i64>,
    /// Scopes holding at most this many rows are always searched exactly, even in a
    /// promoted tenant.
    pub exact_scope_max: i64,
    /// In a promoted tenant, a scope holding less than this share of the tenant's rows is
    /// searched exactly (pgvector filters projects after the index scan, and a very selective
    /// filter loses recall even with iterative scans).
    pub min_hnsw_scope_share: f64,
    /// `hnsw.ef_search` for the tenant-HNSW route (1..=1000). Default 1000 (was 100 before
    /// issue 22): on bench-vector's data (BENCHMARKS.md, "Recall per tier") a 200,000-vector
    /// tenant's recall@10 grows with it up to pgvector's maximum (0.980 at 200, 0.995 at 1000),
    /// at about half the latency of exact search there; for tenants near `promote_at` the
    /// route then costs about as much as exact search. Lower it where latency matters more.
    pub ef_search: u32,
    /// `hnsw.max_scan_tuples` for the tenant-HNSW route's iterative scan.
    pub max_scan_tuples: u32,
    /// `maintenance_work_mem` in MiB for index builds (`None` keeps the server's setting).
    pub build_maintenance_work_mem_mb: Option<u32>,
    /// HNSW `m` of the per-tenant indexes (2..=100; pgvector's default is 16). Default 32
    /// (was 16 before issue 22): a denser graph links a tenant's clusters to each other, so a
    /// search starting in the wrong one still reaches the right one.
    pub hnsw_m: u32,
    /// HNSW `ef_construction` of the per-tenant indexes (at least `2 * hnsw_m`, at most 1000;
    /// pgvector's default is 64). Higher builds slower and finds more of the true neighbours.
    /// Default 256 (was 64 before issue 22); with `hnsw_m` 32 an index build took 2.0 to 4.3
    /// times as long as with 16 / 128 in bench-vector.
    pub hnsw_ef_construction: u32,
    /// Re-check far queries on the tenant-HNSW route (default `true`): when the nearest row the
    /// index returned is farther from the query than the tenant's re-check distance (the 99th
    /// percentile of the distance from its own vectors to their nearest neighbour, measured by
    /// [`VectorMaintenance::refresh`] when it promotes the tenant), the query lies outside the
    /// tenant's data, where an HNSW search can stay stranded in one cluster of the graph; the
    /// search is then repeated exactly in the same transaction
    /// ([`Route::ExactAfterShortHnsw`]). Costs exact search's latency for such queries only.
    pub recheck_far_queries: bool,
}

impl Default for VectorConfig {
    fn default() -> Self {
        Self {
            helper_schema: "tenancy".to_owned(),
            app_role: "tenancy_app".to_owned(),
            promote_at: 10_000,
            demote_below: Some(5_000),
            exact_scope_max: 10_000,
            min_hnsw_scope_share: 0.1,
            ef_search: 1000,
            max_scan_tuples: 20_000,
            build_maintenance_work_mem_mb: None,
            hnsw_m: 32,
            hnsw_ef_construction: 256,
            recheck_far_queries: true,
        }
    }
}

impl VectorConfig {
    /// Checks the names written into SQL text and the thresholds' order.
    pub fn validate(&self) -> Result<(), Error> {
        let bad = |what: String| Err(Error::Misconfigured(format!("vector config: {what}")));
        if !is_valid_identifier(self.helper_schema.as_bytes()) {
            return bad(format!("helper_schema {:?}", self.helper_schema));
        }
        if !is_valid_identifier(self.app_role.as_bytes()) {
            return bad(format!("app_role {:?}", self.app_role));
        }
        if self.promote_at < 1 {
            return bad(format!("promote_at {} < 1", self.promote_at));
        }
        if let Some(demote) = self.demote_below {
            if demote >= self.promote_at {
                return bad(format!(
                    "demote_below {demote} must be below promote_at {}",
                    self.promote_at
                ));
            }
        }
        if !(0.0..=1.0).contains(&self.min_hnsw_scope_share) {
            return bad(format!(
                "min_hnsw_scope_share {} not in 0..=1",
                self.min_hnsw_scope_share
            ));
        }
        if !(1..=1000).contains(&self.ef_search) {
            return bad(format!("ef_search {} not in 1..=1000", self.ef_search));
        }
        if self.max_scan_tuples < 1 {
            return bad("max_scan_tuples < 1".to_owned());
        }
        if !(2..=100).contains(&self.hnsw_m) {
            return bad(format!("hnsw_m {} not in 2..=100", self.hnsw_m));
        }
        if self.hnsw_ef_construction < 2 * self.hnsw_m || self.hnsw_ef_construction > 1000 {
            return bad(format!(
                "hnsw_ef_construction {} not in {}..=1000 (2 * hnsw_m..=1000)",
                self.hnsw_ef_construction,
                2 * self.hnsw_m
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_validation_rejects_flapping_thresholds_and_bad_names() {
        assert!(VectorConfig::default().validate().is_ok());
        let flapping = VectorConfig {
            demote_below: Some(10_000),
            ..VectorConfig::default()
        };
        assert!(matches!(flapping.validate(), Err(Error::Misconfigured(_))));
        let bad_schema = VectorConfig {
            helper_schema: "x; drop".to_owned(),
            ..VectorConfig::default()
        };
        assert!(bad_schema.validate().is_err());
        let never_demote = VectorConfig {
            demote_below: None,
            ..VectorConfig::default()
        };
        assert!(never_demote.validate().is_ok());
        let bad_share = VectorConfig {
            min_hnsw_scope_share: 1.5,
            ..VectorConfig::default()
        };
        assert!(bad_share.validate().is_err());
        let thin_graph = VectorConfig {
            hnsw_m: 16,
            hnsw_ef_construction: 31,
            ..VectorConfig::default()
        };
        assert!(thin_graph.validate().is_err(), "ef_construction < 2 * m");
        let tuned = VectorConfig {
            hnsw_m: 24,
            hnsw_ef_construction: 200,
            ..VectorConfig::default()
        };
        assert!(tuned.validate().is_ok());
    }
}
