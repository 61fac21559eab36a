//! The scoped gateway: routed similarity search on any table the model declares with a vector
//! column, and batch updates of that column.

use std::collections::BTreeSet;
use std::fmt;

use pgvector::Vector;
use sqlx::postgres::{PgHasArrayType, PgRow};
use sqlx::{FromRow, PgConnection, Postgres, Row};
use uuid::Uuid;

use super::maintenance::{indexed_column, Tier};
use super::settings::{check_dimension, read_setting, EmbeddingModel, EmbeddingSetting};
use super::table::{quote_ident, VectorSpec, VectorTable};
use super::{VectorConfig, MAX_K};
use crate::error::Error;
use crate::ids::{ProjectId, TenantId};
use crate::role::Role;
use crate::scope::{ReadScope, Scope, WriteScope};
use crate::tenancy::ScopedTx;

/// The Rust type of a vector table's key column (`uuid::Uuid`, `i64`, `String`, ...): what a
/// search returns for each hit. Implemented for every type sqlx decodes from PostgreSQL that
/// is ordered (ties between equal distances are broken by project, then key).
pub trait VectorKey:
    for<'r> sqlx::Decode<'r, Postgres>
    + sqlx::Type<Postgres>
    + Ord
    + Clone
    + fmt::Debug
    + Send
    + Sync
    + Unpin
    + 'static
{
}

impl<K> VectorKey for K where
    K: for<'r> sqlx::Decode<'r, Postgres>
        + sqlx::Type<Postgres>
        + Ord
        + Clone
        + fmt::Debug
        + Send
        + Sync
        + Unpin
        + 'static
{
}

/// A new value for one row's vector column, written by [`VectorGateway::set_embeddings`].
///
/// `project_id` names the project the caller believes the row belongs to; a row whose project
/// is not the write scope's fails the whole batch.
#[derive(Clone, Debug, PartialEq)]
pub struct VectorUpdate<K> {
    /// The project of the row (must be the scope's project).
    pub project_id: ProjectId,
    /// The row's key (the table's key column).
    pub key: K,
    /// The new vector (`None` clears it, so searches skip the row); its length must be the
    /// column's dimension.
    pub vector: Option<Vector>,
}

/// A similarity search: the `k` nearest rows by the table's distance, optionally only rows
/// whose filter column equals a value.
#[derive(Clone, Debug, PartialEq)]
pub struct SearchRequest {
    /// The query vector (of the column's dimension).
    pub query: Vector,
    /// How many rows to return (1..=[`MAX_K`]); fewer only when the scope holds fewer.
    pub k: u32,
    /// Only rows whose column (one of [`VectorSpec::filter_columns`]) equals the value;
    /// always searched exactly.
    pub filter: Option<(&'static str, Uuid)>,
}

impl SearchRequest {
    /// The `k` nearest rows to `query` in the whole scope.
    pub fn new(query: Vector, k: u32) -> Self {
        Self {
            query,
            k,
            filter: None,
        }
    }

    /// Restricts the search to rows whose `column` (a filter column of the table) equals
    /// `value`, e.g. the rows of one parent row.
    pub fn where_eq(mut self, column: &'static str, value: Uuid) -> Self {
        self.filter = Some((column, value));
        self
    }
}

/// How a search was answered.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Route {
    /// Exact search over the scope's rows through the btree (recall 1.0).
    Exact,
    /// The tenant's own partial HNSW index.
    TenantHnsw,
    /// The tenant's HNSW answer was not trusted, so the search was repeated exactly in the
    /// same transaction: the index returned fewer than `k` rows, or (with
    /// [`VectorConfig::recheck_far_queries`]) the nearest row it returned is farther from the
    /// query than the tenant's re-check distance.
    ExactAfterShortHnsw,
    /// The scope holds no project: nothing was queried.
    EmptyScope,
}

/// One result row: its key, project and distance, and the row itself when the search asked
/// for it ([`VectorGateway::search_rows`]; `()` otherwise).
#[derive(Clone, Debug, PartialEq)]
pub struct SearchHit<K, R = ()> {
    /// The row's key.
    pub key: K,
    /// The row's project (one of the scope's).
    pub project_id: ProjectId,
    /// Distance to the query by the table's [`Distance`](super::Distance) (for inner
    /// product, the negative inner product), ascending.
    pub distance: f64,
    /// The row, decoded by its `FromRow` (by column name).
    pub row: R,
}

/// The rows of one search with the scope they came from and the route that produced them.
#[derive(Clone, Debug)]
pub struct SearchResults<S: Scope, K, R = ()> {
    /// The scope the search ran in (every hit's project is one of its projects).
    pub scope: S,
    /// How the search was answered.
    pub route: Route,
    /// Nearest first (ties by project id, then key).
    pub hits: Vec<SearchHit<K, R>>,
}

impl<S: Scope, K, R> SearchResults<S, K, R> {
    /// The tenant every hit belongs to.
    pub fn tenant_id(&self) -> TenantId {
        self.scope.tenant_id()
    }
}

/// What the catalog says about the searching tenant, read in the scope's transaction.
#[derive(Clone, Debug, PartialEq)]
struct RouteFacts {
    tier: Tier,
    index_valid: bool,
    /// The tenant index's predicate seed and key (both set when it has one of the current
    /// shape).
    index_key: Option<(i64, i64)>,
    /// `enable_sort` before the search, restored after the tenant-HNSW statement.
    enable_sort: String,
    tenant_rows: i64,
    scope_rows: i64,
    /// The dimension the tenant's index was built for (`per tenant` columns).
    index_dimensions: Option<u32>,
    /// The tenant's embedding model (`per tenant` columns only).
    setting: Option<EmbeddingSetting>,
    /// The tenant's re-check distance, when measured.
    recheck_distance: Option<f64>,
}

impl RouteFacts {
    /// The dimension the tenant-HNSW statement casts the column to (`per tenant` columns).
    fn cast(&self) -> Option<u32> {
        self.setting.as_ref().map(|s| s.model.dimensions)
    }
}

/// Sets `enable_sort` to `off` and the pgvector settings for the tenant-HNSW statement
/// (`restore` `None`), or `enable_sort` back to `restore`, for this transaction, in one round
/// trip.
///
/// The tenant-HNSW statement runs with sorts disabled: the tenant-owned tables carry no planner
/// statistics (docs/security.md, "Planner statistics"), so the planner estimates a tenant's rows
/// at a default fraction of the table, and for so few rows a btree scan plus a sort looks
/// cheaper than the HNSW index's ordered scan. The gateway has already decided from the
/// catalog that the scope is large; this makes the planner follow. The caller's setting is
/// restored right after, so later statements of the transaction are not affected.
///
/// These are `SET LOCAL` statements, not `set_config`: on Citus the statement is planned on
/// the worker holding the tenant's shard, and only `SET LOCAL` reaches the workers (the context
/// installer turns on `citus.propagate_set_commands = 'local'` for the transaction;
/// docs/citus.md). The values are numbers from the validated configuration and the
/// `enable_sort` read back from the server, quoted as literals.
async fn sort_disabled(
    conn: &mut PgConnection,
    config: &VectorConfig,
    restore: Option<&str>,
) -> Result<(), Error> {
    let sql = match restore {
        Some(value) => format!("SET LOCAL enable_sort = '{}'", value.replace('\'', "''")),
        None => format!(
            "SET LOCAL enable_sort = off; SET LOCAL hnsw.ef_search = {}; \
             SET LOCAL hnsw.iterative_scan = relaxed_order; SET LOCAL hnsw.max_scan_tuples = {}",
            config.ef_search, config.max_scan_tuples
        ),
    };
    sqlx::raw_sql(sqlx::AssertSqlSafe(sql))
        .execute(conn)
        .await?;
    Ok(())
}

/// `= ANY` of the scope's projects (`$2`) in the exact search and the route lookup, read
/// through an InitPlan so that custom and generic plans estimate it alike.
///
/// sqlx prepares every statement, and after five executions PostgreSQL keeps the generic plan
/// only if it is not costlier than the custom plans were. A custom plan sees `ANY($2)` as an
/// array of the scope's length (usually 1) and `LIMIT $4` as `k`; the generic plan assumes 10
/// elements and a LIMIT of 10% of the estimated rows. Tenant tables carry no statistics, so in
/// a table of some 20,000 rows the scope is estimated in thousands and the generic plan costs
/// more: the exact search was then planned again on every call (about 0.1 ms of a 0.25 ms
/// search of a small tenant in a 1,000-tenant database), while in a database holding only
/// that tenant both plans cost the same and the generic one was kept (issue 22, item 3). Read
/// through `(SELECT ...)`, the values are unknown to both plans; the plan shape is unchanged.
const SCOPE_PROJECTS: &str = "ANY((SELECT $2::uuid[])::uuid[])";

/// Vector search on one table of the model, always inside a scope.
///
/// The table comes from the model: `tenancy generate` emits a [`VectorTable`] constant per
/// vector column (`<Repository>::<COLUMN>_VECTORS`), whose types carry the role the table's
/// SELECT rule requires (`Read`), the role its UPDATE rule requires (`Update`) and the key type
/// (`K`), and a typed search returning its rows (`<Repository>::nearest_by_<column>`).
/// Searches accept any scope that may read (one project or several of one tenant);
/// [`set_embeddings`](Self::set_embeddings) only a single-project scope that may update.
/// Row-level security remains the final gate. Inserts and deletes go through the generated
/// repository.
///
/// ```no_run
/// # use tenancy_runtime::{Error, ProjectId, Tenancy, TenantId, UserId};
/// # use tenancy_runtime::vector::{Distance, SearchRequest, VectorConfig, VectorGateway, VectorSpec, VectorTable};
/// tenancy_runtime::roles! { Viewer = "viewer", Editor = "editor" }
/// // What `tenancy generate` emits for `notes { id uuid ... vec vector(3)? distance l2 }`.
/// const NOTES: VectorTable<Viewer, Editor, uuid::Uuid> = VectorTable::new(VectorSpec {
///     schema: "public", table: "notes", key_column: "id", vector_column: "vec",
///     dimensions: 3, distance: Distance::L2, filter_columns: &[], per_tenant: false,
/// });
/// # async fn example(tenancy: Tenancy, user: UserId, tenant: TenantId) -> Result<(), Error> {
/// let gateway = VectorGateway::new(NOTES, VectorConfig::default());
/// let ctx = tenancy.authorize(user, tenant).await?;
/// let scope = ctx.all_projects().with_at_least::<Viewer>();
/// let mut tx = tenancy.begin(&scope).await?;
/// let query = pgvector::Vector::from(vec![1.0, 0.0, 0.0]);
/// let results = gateway.search(&mut tx, &SearchRequest::new(query, 10)).await?;
/// tx.commit().await?;
/// # let _ = results;
/// # Ok(())
/// # }
/// ```
///
/// A pool is not a scope:
///
/// ```compile_fail,E0308
/// # use tenancy_runtime::vector::{Distance, SearchRequest, VectorConfig, VectorGateway, VectorSpec, VectorTable};
/// tenancy_runtime::roles! { Viewer = "viewer", Editor = "editor" }
/// const NOTES: VectorTable<Viewer, Editor, uuid::Uuid> = VectorTable::new(VectorSpec {
///     schema: "public", table: "notes", key_column: "id", vector_column: "vec",
///     dimensions: 3, distance: Distance::L2, filter_columns: &[], per_tenant: false,
/// });
/// async fn unscoped(pool: sqlx::PgPool, request: SearchRequest) {
///     let gateway = VectorGateway::new(NOTES, VectorConfig::default());
///     let _ = gateway.search(&pool, &request).await;
/// }
/// ```
pub struct VectorGateway<Read: Role, Update: Role, K> {
    table: VectorTable<Read, Update, K>,
    config: VectorConfig,
}

impl<Read: Role, Update: Role, K> Clone for VectorGateway<Read, Update, K> {
    fn clone(&self) -> Self {
        Self {
            table: self.table,
            config: self.config.clone(),
        }
    }
}

impl<Read: Role, Update: Role, K> fmt::Debug for VectorGateway<Read, Update, K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VectorGateway")
            .field("table", &self.table)
            .field("config", &self.config)
            .finish()
    }
}

/// The SQL text of one table's statements, built from its [`VectorSpec`] with quoted,
/// schema-qualified identifiers. Every hit query returns `__key`, `__project_id` and
/// `__distance` first, then (for row searches) the table's columns.
struct Statements<'a> {
    spec: &'a VectorSpec,
}

impl Statements<'_> {
    fn table(&self) -> String {
        self.spec.qualified_table()
    }

    fn key(&self) -> String {
        quote_ident(self.spec.key_column)
    }

    fn vector(&self) -> String {
        quote_ident(self.spec.vector_column)
    }

    /// Exact search: the distance is computed in a MATERIALIZED CTE over the scope's rows
    /// (found through the primary-key btree, or the filter column's index), so no HNSW index
    /// can serve the ORDER BY. The CTE carries only keys and distances; the `k` winners' rows
    /// are read afterwards through the primary key, so a large scope's rows are never
    /// materialized. `$1` tenant, `$2` projects, `$3` query, `$4` k, `$5` filter value.
    ///
    /// The projects and `k` are read through `(SELECT $n)` (an InitPlan), so a custom plan
    /// does not see them as constants either: see [`SCOPE_PROJECTS`].
    fn exact(&self, filter: Option<&str>, rows: bool) -> String {
        let (table, key, vector) = (self.table(), self.key(), self.vector());
        let op = self.spec.distance.operator();
        let filter = match filter {
            Some(column) => format!(" AND {} = $5", quote_ident(column)),
            None => String::new(),
        };
        let (columns, join) = if rows {
            (
                ", t.*",
                format!(
                    " JOIN {table} t ON t.tenant_id = $1 AND t.project_id = n.project_id \
                     AND t.{key} = n.k"
                ),
            )
        } else {
            ("", String::new())
        };
        format!(
            "WITH scoped AS MATERIALIZED (\
             SELECT {key} AS k, project_id, {vector} {op} $3 AS distance FROM {table} \
             WHERE tenant_id = $1 AND project_id = {SCOPE_PROJECTS} AND {vector} IS NOT NULL{filter}), \
             nearest AS (SELECT k, project_id, distance FROM scoped \
             ORDER BY distance, project_id, k LIMIT (SELECT $4::int8)) \
             SELECT n.k AS __key, n.project_id AS __project_id, n.distance AS __distance{columns} \
             FROM nearest n{join} ORDER BY n.distance, n.project_id, n.k"
        )
    }

    /// The tenant-HNSW query. The partial index's predicate
    /// `uuid_hash_extended(tenant_id, seed) = key` is repeated with its constants inlined
    /// (integers read from the catalog, so formatting them is safe) because the planner must
    /// prove it, which bind parameters under a generic plan do not allow; the tenant itself is
    /// a bind parameter. `$1` projects, `$2` query, `$3` k, `$4` tenant.
    /// For a `per tenant` column, `cast` is the tenant's dimension: the statement orders by
    /// `(t.col::vector(N))`, the expression the tenant's index is built on.
    fn hnsw(&self, seed: i64, key: i64, rows: bool, cast: Option<u32>) -> String {
        let (table, key_column) = (self.table(), self.key());
        let vector = indexed_column(&format!("t.{}", self.vector()), cast);
        let op = self.spec.distance.operator();
        let columns = if rows { ", t.*" } else { "" };
        let predicate = super::maintenance::predicate("t.tenant_id", seed, key);
        format!(
            "SELECT t.{key_column} AS __key, t.project_id AS __project_id, \
             {vector} {op} $2 AS __distance{columns} \
             FROM {table} t WHERE {predicate} AND t.tenant_id = $4 AND t.project_id = ANY($1) \
             ORDER BY {vector} {op} $2 LIMIT $3"
        )
    }

    /// `$1` tenant, `$2` project, `$3` keys, `$4` vectors.
    fn set_vectors(&self) -> String {
        let (table, key, vector) = (self.table(), self.key(), self.vector());
        format!(
            "UPDATE {table} AS t SET {vector} = u.v \
             FROM unnest($3, $4::vector[]) AS u(k, v) \
             WHERE t.tenant_id = $1 AND t.project_id = $2 AND t.{key} = u.k"
        )
    }
}

impl<Read: Role, Update: Role, K: VectorKey> VectorGateway<Read, Update, K> {
    /// A gateway on `table` with `config` (both checked on every call, see
    /// [`VectorConfig::validate`] and [`VectorSpec::validate`]).
    pub fn new(table: VectorTable<Read, Update, K>, config: VectorConfig) -> Self {
        Self { table, config }
    }

    /// The configuration in use.
    pub fn config(&self) -> &VectorConfig {
        &self.config
    }

    /// The table searched.
    pub fn spec(&self) -> &VectorSpec {
        &self.table.spec
    }

    fn statements(&self) -> Statements<'_> {
        Statements {
            spec: &self.table.spec,
        }
    }

    fn check(&self) -> Result<(), Error> {
        self.config.validate()?;
        self.table.spec.validate()
    }

    /// The fixed dimension check (a `per tenant` column is checked against the tenant's model
    /// once it is read, see [`check_dimension`]).
    fn check_vector(&self, vector: &Vector) -> Result<(), Error> {
        if self.table.spec.per_tenant
            || vector.as_slice().len() == self.table.spec.dimensions as usize
        {
            Ok(())
        } else {
            Err(Error::InvalidInput)
        }
    }

    /// Sets (or, with `None`, clears) the vector column of existing rows of the scope's
    /// project, in one `UPDATE ... FROM unnest(...)` statement; rows are found by key, and
    /// keys of other projects or tenants are not touched. Returns the number of rows updated.
    ///
    /// The batch fails whole, writing nothing: [`Error::Forbidden`] when a row names another
    /// project, [`Error::InvalidInput`] for a repeated key or a vector whose length is not the
    /// column's dimension.
    pub async fn set_embeddings<S: WriteScope<Update>>(
        &self,
        tx: &mut ScopedTx<S>,
        rows: &[VectorUpdate<K>],
    ) -> Result<u64, Error>
    where
        K: for<'q> sqlx::Encode<'q, Postgres> + PgHasArrayType,
    {
        self.check()?;
        if rows.is_empty() {
            return Ok(0);
        }
        let project = tx.scope().project_id();
        if rows.iter().any(|row| row.project_id != project) {
            return Err(Error::Forbidden);
        }
        let mut seen = BTreeSet::new();
        if !rows.iter().all(|row| seen.insert(&row.key)) {
            return Err(Error::InvalidInput);
        }
        for vector in rows.iter().filter_map(|row| row.vector.as_ref()) {
            self.check_vector(vector)?;
        }
        let tenant = tx.scope().tenant_id();
        if self.table.spec.per_tenant {
            let setting = self.read_setting(tx.connection(), tenant).await?;
            for vector in rows.iter().filter_map(|row| row.vector.as_ref()) {
                check_dimension(&setting, vector.as_slice().len())?;
            }
        }
        let keys: Vec<K> = rows.iter().map(|r| r.key.clone()).collect();
        let vectors: Vec<Option<Vector>> = rows.iter().map(|r| r.vector.clone()).collect();
        let result = sqlx::query(sqlx::AssertSqlSafe(self.statements().set_vectors()))
            .bind(tenant.as_uuid())
            .bind(project.as_uuid())
            .bind(keys)
            .bind(vectors)
            .execute(tx.connection())
            .await?;
        Ok(result.rows_affected())
    }

    /// The `k` rows of the scope nearest to the query, over every project of the scope (one
    /// query with `project_id = ANY(...)`, so the top-k is global): keys, projects and
    /// distances.
    ///
    /// Returns `k` rows whenever the scope holds at least `k` rows with a vector (matching the
    /// filter): the tenant-HNSW route falls back to exact search when the index returns fewer.
    /// [`Error::InvalidInput`] when `k` is 0 or above [`MAX_K`], the query's length is not the
    /// column's dimension, or the filter names a column that is not a filter column.
    pub async fn search<S: ReadScope<Read>>(
        &self,
        tx: &mut ScopedTx<S>,
        request: &SearchRequest,
    ) -> Result<SearchResults<S, K>, Error> {
        self.search_with(tx, request, false, |_| Ok(())).await
    }

    /// [`search`](Self::search), also reading each hit's row (`R`, e.g. the generated row
    /// struct, decoded by column name) in the same statement.
    pub async fn search_rows<S: ReadScope<Read>, R>(
        &self,
        tx: &mut ScopedTx<S>,
        request: &SearchRequest,
    ) -> Result<SearchResults<S, K, R>, Error>
    where
        R: for<'r> FromRow<'r, PgRow> + Send + Unpin,
    {
        self.search_with(tx, request, true, |row| R::from_row(row))
            .await
    }

    async fn search_with<S: ReadScope<Read>, R>(
        &self,
        tx: &mut ScopedTx<S>,
        request: &SearchRequest,
        rows: bool,
        decode: fn(&PgRow) -> Result<R, sqlx::Error>,
    ) -> Result<SearchResults<S, K, R>, Error> {
        self.check_request(request)?;
        let scope = tx.scope().clone();
        let projects: Vec<Uuid> = scope.project_ids().iter().map(|p| p.as_uuid()).collect();
        if projects.is_empty() {
            return Ok(SearchResults {
                scope,
                route: Route::EmptyScope,
                hits: Vec::new(),
            });
        }
        let tenant = scope.tenant_id();
        let facts = self
            .route_facts(tx.connection(), tenant, &projects, request)
            .await?;
        let mut route = self.choose_route(&facts, request);
        let statements = self.statements();
        let k = i64::from(request.k);
        let fetched: Vec<PgRow> = if route == Route::TenantHnsw {
            let (seed, key) = facts.index_key.unwrap_or_default();
            sort_disabled(tx.connection(), &self.config, None).await?;
            let found = sqlx::query(sqlx::AssertSqlSafe(statements.hnsw(
                seed,
                key,
                rows,
                facts.cast(),
            )))
            .bind(&projects)
            .bind(&request.query)
            .bind(k)
            .bind(tenant.as_uuid())
            .fetch_all(tx.connection())
            .await?;
            sort_disabled(tx.connection(), &self.config, Some(&facts.enable_sort)).await?;
            let distances = found
                .iter()
                .map(|row| row.try_get::<f64, _>("__distance"))
                .collect::<Result<Vec<_>, sqlx::Error>>()?;
            if self.untrusted(&facts, request.k, &distances) {
                route = Route::ExactAfterShortHnsw;
                self.exact_rows(tx.connection(), tenant, &projects, request, rows)
                    .await?
            } else {
                found
            }
        } else {
            self.exact_rows(tx.connection(), tenant, &projects, request, rows)
                .await?
        };
        let mut hits = fetched
            .iter()
            .map(|row| {
                Ok(SearchHit {
                    key: row.try_get::<K, _>("__key")?,
                    project_id: ProjectId::new(row.try_get::<Uuid, _>("__project_id")?),
                    distance: row.try_get::<f64, _>("__distance")?,
                    row: decode(row)?,
                })
            })
            .collect::<Result<Vec<_>, sqlx::Error>>()?;
        // relaxed_order may return the HNSW rows slightly out of order.
        hits.sort_by(|a, b| {
            a.distance
                .total_cmp(&b.distance)
                .then(a.project_id.cmp(&b.project_id))
                .then(a.key.cmp(&b.key))
        });
        Ok(SearchResults { scope, route, hits })
    }

    /// The tenant's embedding model for this column: the model a query must be embedded with
    /// (for a column that is not `per tenant`, the name [`DEFAULT_MODEL`](super::DEFAULT_MODEL)
    /// and the column's dimension).
    pub async fn embedding_model<S: ReadScope<Read>>(
        &self,
        tx: &mut ScopedTx<S>,
    ) -> Result<EmbeddingSetting, Error> {
        self.check()?;
        let tenant = tx.scope().tenant_id();
        self.read_setting(tx.connection(), tenant).await
    }

    async fn read_setting(
        &self,
        conn: &mut PgConnection,
        tenant: TenantId,
    ) -> Result<EmbeddingSetting, Error> {
        if !self.table.spec.per_tenant {
            return Ok(EmbeddingSetting {
                model: EmbeddingModel::new(super::DEFAULT_MODEL, self.table.spec.dimensions),
                version: 0,
            });
        }
        read_setting(conn, &self.config.helper_schema, &self.table.spec, tenant).await
    }

    /// Up to `limit` (1..=10000) rows of the scope whose vector is NULL, by project then key:
    /// the rows to embed, e.g. after [`set_embedding_model`](super::VectorMaintenance::set_embedding_model)
    /// cleared the tenant's vectors of its old model. [`Error::InvalidInput`] for another
    /// `limit`.
    pub async fn missing_vectors<S: ReadScope<Read>>(
        &self,
        tx: &mut ScopedTx<S>,
        limit: i64,
    ) -> Result<Vec<(ProjectId, K)>, Error> {
        self.check()?;
        if !(1..=10_000).contains(&limit) {
            return Err(Error::InvalidInput);
        }
        let scope = tx.scope().clone();
        let projects: Vec<Uuid> = scope.project_ids().iter().map(|p| p.as_uuid()).collect();
        let sql = format!(
            "SELECT project_id, {key} FROM {table} WHERE tenant_id = $1 \
             AND project_id = ANY($2) AND {vector} IS NULL ORDER BY project_id, {key} LIMIT $3",
            key = quote_ident(self.table.spec.key_column),
            table = self.table.spec.qualified_table(),
            vector = quote_ident(self.table.spec.vector_column),
        );
        let rows: Vec<PgRow> = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(scope.tenant_id().as_uuid())
            .bind(&projects)
            .bind(limit)
            .fetch_all(tx.connection())
            .await?;
        rows.iter()
            .map(|row| {
                Ok((
                    ProjectId::new(row.try_get::<Uuid, _>(0)?),
                    row.try_get::<K, _>(1)?,
                ))
            })
            .collect::<Result<Vec<_>, sqlx::Error>>()
            .map_err(Error::from)
    }

    fn check_request(&self, request: &SearchRequest) -> Result<(), Error> {
        self.check()?;
        if request.k == 0 || request.k > MAX_K {
            return Err(Error::InvalidInput);
        }
        self.check_vector(&request.query)?;
        if let Some((column, _)) = request.filter {
            if !self.table.spec.filter_columns.contains(&column) {
                return Err(Error::InvalidInput);
            }
        }
        Ok(())
    }

    async fn exact_rows(
        &self,
        conn: &mut PgConnection,
        tenant: TenantId,
        projects: &[Uuid],
        request: &SearchRequest,
        rows: bool,
    ) -> Result<Vec<PgRow>, Error> {
        let sql = self
            .statements()
            .exact(request.filter.map(|(column, _)| column), rows);
        let query = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(tenant.as_uuid())
            .bind(projects)
            .bind(&request.query)
            .bind(i64::from(request.k));
        let query = match request.filter {
            Some((_, value)) => query.bind(value),
            None => query,
        };
        Ok(query.fetch_all(conn).await?)
    }

    /// The route [`search`](Self::search) would take for `request` in this transaction and the
    /// `EXPLAIN` text of its query, for tests and diagnosis (the catalog settings are applied
    /// to the transaction as a search would).
    pub async fn explain_search<S: ReadScope<Read>>(
        &self,
        tx: &mut ScopedTx<S>,
        request: &SearchRequest,
    ) -> Result<(Route, String), Error> {
        self.check_request(request)?;
        let scope = tx.scope().clone();
        let projects: Vec<Uuid> = scope.project_ids().iter().map(|p| p.as_uuid()).collect();
        let tenant = scope.tenant_id();
        let facts = self
            .route_facts(tx.connection(), tenant, &projects, request)
            .await?;
        let route = self.choose_route(&facts, request);
        let k = i64::from(request.k);
        let statements = self.statements();
        let lines: Vec<String> = if route == Route::TenantHnsw {
            let (seed, key) = facts.index_key.unwrap_or_default();
            let explain = format!(
                "EXPLAIN {}",
                statements.hnsw(seed, key, false, facts.cast())
            );
            sort_disabled(tx.connection(), &self.config, None).await?;
            let lines = sqlx::query_scalar(sqlx::AssertSqlSafe(explain))
                .bind(&projects)
                .bind(&request.query)
                .bind(k)
                .bind(tenant.as_uuid())
                .fetch_all(tx.connection())
                .await?;
            sort_disabled(tx.connection(), &self.config, Some(&facts.enable_sort)).await?;
            lines
        } else {
            let sql = statements.exact(request.filter.map(|(column, _)| column), false);
            let query = sqlx::query_scalar(sqlx::AssertSqlSafe(format!("EXPLAIN {sql}")))
                .bind(tenant.as_uuid())
                .bind(&projects)
                .bind(&request.query)
                .bind(k);
            match request.filter {
                Some((_, value)) => query.bind(value),
                None => query,
            }
            .fetch_all(tx.connection())
            .await?
        };
        Ok((route, lines.join("\n")))
    }

    /// Reads the tenant's tier for this table, whether its index is valid, the scope's size
    /// and (`per tenant` columns) the tenant's embedding model from the catalog, and sets the
    /// pgvector settings for this transaction, in one round trip. A query whose length is not
    /// the tenant's model's is [`Error::EmbeddingDimension`].
    async fn route_facts(
        &self,
        conn: &mut PgConnection,
        tenant: TenantId,
        projects: &[Uuid],
        request: &SearchRequest,
    ) -> Result<RouteFacts, Error> {
        let schema = quote_ident(&self.config.helper_schema);
        let spec = &self.table.spec;
        // A `per tenant` column: the tenant's model, from the settings table (under RLS).
        let (setting, join) = if spec.per_tenant {
            (
                format!(
                    ", COALESCE(s.dimensions, {}), COALESCE(s.model, '{}'), COALESCE(s.version, 0)",
                    spec.dimensions,
                    super::DEFAULT_MODEL
                ),
                format!(
                    " LEFT JOIN {schema}.{} s ON s.tenant_id = $1 AND s.table_name = $5 \
                     AND s.column_name = '{}'",
                    quote_ident(super::SETTINGS_TABLE),
                    spec.vector_column
                ),
            )
        } else {
            (
                ", NULL::int4, NULL::text, NULL::int4".to_owned(),
                String::new(),
            )
        };
        let sql = format!(
            "SELECT set_config('hnsw.ef_search', $3, true), \
             set_config('hnsw.iterative_scan', 'relaxed_order', true), \
             set_config('hnsw.max_scan_tuples', $4, true), \
             t.tier, \
             COALESCE((SELECT i.indisvalid AND i.indisready FROM pg_catalog.pg_index i \
                WHERE i.indexrelid = pg_catalog.to_regclass(t.index_name) \
                AND i.indrelid = pg_catalog.to_regclass($5)), false), \
             COALESCE(t.row_count, 0), t.index_seed, t.index_key, \
             pg_catalog.current_setting('enable_sort'), \
             (SELECT COALESCE(sum(p.row_count), 0)::bigint FROM {schema}.vector_project_sizes p \
                WHERE p.table_name = $5 AND p.tenant_id = $1 AND p.project_id = {SCOPE_PROJECTS}), \
             t.index_dimensions, t.recheck_distance{setting} \
             FROM (SELECT 1) AS one LEFT JOIN {schema}.vector_tiers t \
             ON t.table_name = $5 AND t.tenant_id = $1{join}"
        );
        #[allow(clippy::type_complexity)]
        let row: (
            String,
            String,
            String,
            Option<String>,
            bool,
            i64,
            Option<i64>,
            Option<i64>,
            String,
            i64,
            Option<i32>,
            Option<f64>,
            Option<i32>,
            Option<String>,
            Option<i32>,
        ) = sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .bind(tenant.as_uuid())
            .bind(projects)
            .bind(self.config.ef_search.to_string())
            .bind(self.config.max_scan_tuples.to_string())
            .bind(self.table.spec.catalog_name())
            .fetch_one(conn)
            .await?;
        let (_, _, _, tier, index_valid, tenant_rows, seed, key, enable_sort, scope_rows) = (
            row.0, row.1, row.2, row.3, row.4, row.5, row.6, row.7, row.8, row.9,
        );
        let index_dimensions = row.10.and_then(|d| u32::try_from(d).ok());
        let recheck_distance = row.11;
        let setting = match (row.12, row.13, row.14) {
            (Some(dimensions), Some(name), Some(version)) => {
                Some(EmbeddingSetting::from_row(dimensions, name, version)?)
            }
            _ => None,
        };
        if let Some(setting) = &setting {
            check_dimension(setting, request.query.as_slice().len())?;
        }
        let tier = match tier.as_deref() {
            None => Tier::Exact,
            Some(text) => Tier::parse(text)?,
        };
        let index_key = seed.zip(key);
        Ok(RouteFacts {
            tier,
            // An index of the earlier shape (no predicate key) is never used.
            index_valid: index_valid && index_key.is_some(),
            index_key,
            enable_sort,
            tenant_rows,
            scope_rows,
            index_dimensions,
            setting,
            recheck_distance,
        })
    }

    /// True when the tenant-HNSW answer `found` must be re-checked exactly: fewer than `k`
    /// rows, or (with [`VectorConfig::recheck_far_queries`]) a nearest row farther than the
    /// tenant's re-check distance.
    fn untrusted(&self, facts: &RouteFacts, k: u32, distances: &[f64]) -> bool {
        if distances.len() < k as usize {
            return true;
        }
        let nearest = distances.iter().copied().fold(f64::INFINITY, f64::min);
        self.config.recheck_far_queries
            && facts.recheck_distance.is_some_and(|limit| nearest > limit)
    }

    /// The gateway's routing rule (the planner is never asked to guess the tenant's size).
    fn choose_route(&self, facts: &RouteFacts, request: &SearchRequest) -> Route {
        // A `per tenant` column's index must be built for the tenant's current dimension.
        let promoted = facts.tier == Tier::Hnsw
            && facts.index_valid
            && (facts.setting.is_none() || facts.index_dimensions == facts.cast());
        let large_scope = facts.scope_rows > self.config.exact_scope_max;
        let share = if facts.tenant_rows > 0 {
            facts.scope_rows as f64 / facts.tenant_rows as f64
        } else {
            0.0
        };
        if promoted
            && request.filter.is_none()
            && large_scope
            && share >= self.config.min_hnsw_scope_share
        {
            Route::TenantHnsw
        } else {
            Route::Exact
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::Distance;
    use super::*;

    crate::roles! { Viewer = "viewer", Editor = "editor" }

    const NOTES: VectorTable<Viewer, Editor, Uuid> = VectorTable::new(VectorSpec {
        schema: "public",
        table: "notes",
        key_column: "note_key",
        vector_column: "vec",
        dimensions: 2,
        distance: Distance::L2,
        filter_columns: &["folder_id"],
        per_tenant: false,
    });

    fn facts(tier: Tier, valid: bool, tenant: i64, scope: i64) -> RouteFacts {
        RouteFacts {
            tier,
            index_valid: valid,
            index_key: Some((1, 2)),
            enable_sort: "on".to_owned(),
            tenant_rows: tenant,
            scope_rows: scope,
            index_dimensions: None,
            setting: None,
            recheck_distance: None,
        }
    }

    #[test]
    fn short_or_far_hnsw_answers_are_rechecked_exactly() {
        let gateway = VectorGateway::new(NOTES, VectorConfig::default());
        let mut f = facts(Tier::Hnsw, true, 50_000, 50_000);
        let near = [0.05, 0.1, 0.2];
        // Short: always re-checked, measured or not.
        assert!(gateway.untrusted(&f, 4, &near));
        assert!(!gateway.untrusted(&f, 3, &near));
        // Not measured yet: trusted.
        assert!(!gateway.untrusted(&f, 3, &[0.9, 0.95, 1.0]));
        f.recheck_distance = Some(0.12);
        assert!(!gateway.untrusted(&f, 3, &near));
        // The nearest hit farther than the tenant's re-check distance (order does not matter).
        assert!(gateway.untrusted(&f, 3, &[0.2, 0.13, 0.3]));
        assert!(!gateway.untrusted(&f, 3, &[0.2, 0.11, 0.3]));
        // Switched off.
        let off = VectorGateway::new(
            NOTES,
            VectorConfig {
                recheck_far_queries: false,
                ..VectorConfig::default()
            },
        );
        assert!(!off.untrusted(&f, 3, &[0.2, 0.13, 0.3]));
        assert!(off.untrusted(&f, 4, &near));
    }

    #[test]
    fn routing_uses_hnsw_only_for_large_scopes_of_promoted_tenants_with_a_valid_index() {
        let gateway = VectorGateway::new(NOTES, VectorConfig::default());
        let request = SearchRequest::new(Vector::from(vec![1.0, 0.0]), 10);
        let route = |f: RouteFacts| gateway.choose_route(&f, &request);
        assert_eq!(
            route(facts(Tier::Hnsw, true, 50_000, 50_000)),
            Route::TenantHnsw
        );
        assert_eq!(
            route(facts(Tier::Hnsw, false, 50_000, 50_000)),
            Route::Exact
        );
        assert_eq!(
            route(facts(Tier::Building, true, 50_000, 50_000)),
            Route::Exact
        );
        assert_eq!(
            route(facts(Tier::Exact, true, 50_000, 50_000)),
            Route::Exact
        );
        // Small scope inside a promoted tenant.
        assert_eq!(route(facts(Tier::Hnsw, true, 50_000, 9_000)), Route::Exact);
        // Large but very selective scope.
        assert_eq!(
            route(facts(Tier::Hnsw, true, 500_000, 20_000)),
            Route::Exact
        );
        // A filter is always exact.
        let filtered = request.clone().where_eq("folder_id", Uuid::nil());
        assert_eq!(
            gateway.choose_route(&facts(Tier::Hnsw, true, 50_000, 50_000), &filtered),
            Route::Exact
        );
    }

    #[test]
    fn statements_use_the_table_names_and_distance_operator() {
        let statements = Statements { spec: &NOTES.spec };
        let sql = statements.hnsw(-7, 42, false, None);
        assert!(
            sql.contains(
                "pg_catalog.uuid_hash_extended(t.tenant_id, '-7'::bigint) = '42'::bigint \
                 AND t.tenant_id = $4"
            ),
            "{sql}"
        );
        assert!(sql.contains("ORDER BY t.\"vec\" <-> $2 LIMIT $3"), "{sql}");
        assert!(sql.contains("FROM \"public\".\"notes\" t"), "{sql}");
        let exact = statements.exact(Some("folder_id"), true);
        assert!(exact.contains("\"vec\" <-> $3 AS distance"), "{exact}");
        assert!(exact.contains("AND \"folder_id\" = $5"), "{exact}");
        assert!(exact.contains("t.\"note_key\" = n.k"), "{exact}");
    }

    #[test]
    fn per_tenant_columns_order_by_the_cast_the_index_is_built_on_and_need_its_dimension() {
        let spec = VectorSpec {
            per_tenant: true,
            ..NOTES.spec
        };
        let sql = Statements { spec: &spec }.hnsw(1, 2, false, Some(768));
        assert!(
            sql.contains("ORDER BY (t.\"vec\"::vector(768)) <-> $2 LIMIT $3"),
            "{sql}"
        );
        let gateway = VectorGateway::new(
            VectorTable::<Viewer, Editor, Uuid>::new(spec),
            VectorConfig::default(),
        );
        let request = SearchRequest::new(Vector::from(vec![1.0; 768]), 10);
        let setting = |dimensions| EmbeddingSetting {
            model: EmbeddingModel::new("m", dimensions),
            version: 1,
        };
        let mut current = facts(Tier::Hnsw, true, 50_000, 50_000);
        current.setting = Some(setting(768));
        current.index_dimensions = Some(768);
        assert_eq!(gateway.choose_route(&current, &request), Route::TenantHnsw);
        // An index built for the tenant's earlier model is never used.
        current.index_dimensions = Some(384);
        assert_eq!(gateway.choose_route(&current, &request), Route::Exact);
        // The query's length is checked against the tenant's model, not the declared one.
        assert!(gateway.check_request(&request).is_ok());
        assert!(matches!(
            check_dimension(&setting(384), 768),
            Err(Error::EmbeddingDimension {
                expected: 384,
                got: 768,
                ..
            })
        ));
    }

    #[test]
    fn requests_with_a_wrong_length_k_or_filter_column_are_refused() {
        let gateway = VectorGateway::new(NOTES, VectorConfig::default());
        let ok = SearchRequest::new(Vector::from(vec![1.0, 0.0]), 10);
        assert!(gateway.check_request(&ok).is_ok());
        for bad in [
            SearchRequest::new(Vector::from(vec![1.0, 0.0, 0.0]), 10),
            SearchRequest::new(Vector::from(vec![1.0, 0.0]), 0),
            SearchRequest::new(Vector::from(vec![1.0, 0.0]), MAX_K + 1),
            ok.clone().where_eq("tenant_id", Uuid::nil()),
        ] {
            assert!(matches!(
                gateway.check_request(&bad),
                Err(Error::InvalidInput)
            ));
        }
    }
}
