//! The scoped gateway: upsert, delete and routed similarity search on `chunks`.

use std::collections::HashSet;
use std::fmt;
use std::marker::PhantomData;

use pgvector::Vector;
use sqlx::PgConnection;
use uuid::Uuid;

use super::maintenance::Tier;
use super::{VectorConfig, MAX_K};
use crate::error::Error;
use crate::ids::{ProjectId, TenantId};
use crate::role::Role;
use crate::scope::{ReadScope, Scope, WriteScope};
use crate::tenancy::ScopedTx;

/// One chunk with its embedding, to be written by [`VectorGateway::upsert`].
///
/// `project_id` names the project the caller believes the row belongs to; a row whose project
/// is not the write scope's fails the whole batch.
#[derive(Clone, Debug, PartialEq)]
pub struct ChunkEmbedding {
    /// The project of the row (must be the scope's project).
    pub project_id: ProjectId,
    /// The chunk's id (the key within the project).
    pub id: Uuid,
    /// The document the chunk belongs to (a document of the same project).
    pub document_id: Uuid,
    /// Position of the chunk in its document (unique per document).
    pub ordinal: i32,
    /// The chunk's text.
    pub content: String,
    /// Number of tokens of `content`.
    pub token_count: i32,
    /// The embedding (384 dimensions in the generated schema).
    pub embedding: Vector,
}

/// A similarity search: the `k` nearest chunks by cosine distance, optionally within one
/// document.
#[derive(Clone, Debug, PartialEq)]
pub struct SearchRequest {
    /// The query embedding.
    pub embedding: Vector,
    /// How many rows to return (1..=[`MAX_K`]); fewer only when the scope holds fewer.
    pub k: u32,
    /// Only chunks of this document (always searched exactly).
    pub document_id: Option<Uuid>,
}

impl SearchRequest {
    /// The `k` nearest chunks to `embedding`, in any document.
    pub fn new(embedding: Vector, k: u32) -> Self {
        Self {
            embedding,
            k,
            document_id: None,
        }
    }

    /// Restricts the search to one document.
    pub fn in_document(mut self, document_id: Uuid) -> Self {
        self.document_id = Some(document_id);
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
    /// The tenant's HNSW index returned fewer than `k` rows, so the search was repeated
    /// exactly in the same transaction.
    ExactAfterShortHnsw,
    /// The scope holds no project: nothing was queried.
    EmptyScope,
}

/// One result row.
#[derive(Clone, Debug, PartialEq)]
pub struct SearchHit {
    /// The chunk's id.
    pub chunk_id: Uuid,
    /// The chunk's document.
    pub document_id: Uuid,
    /// The chunk's project (one of the scope's).
    pub project_id: ProjectId,
    /// Position of the chunk in its document.
    pub ordinal: i32,
    /// The chunk's text.
    pub content: String,
    /// Cosine distance to the query (`embedding <=> query`), ascending.
    pub distance: f64,
}

/// The rows of one search with the scope they came from and the route that produced them.
#[derive(Clone, Debug)]
pub struct SearchResults<S: Scope> {
    /// The scope the search ran in (every hit's project is one of its projects).
    pub scope: S,
    /// How the search was answered.
    pub route: Route,
    /// Nearest first (ties by project id, then chunk id).
    pub hits: Vec<SearchHit>,
}

impl<S: Scope> SearchResults<S> {
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
    tenant_chunks: i64,
    scope_chunks: i64,
}

/// Vector search and ingest on the generated `chunks` table, always inside a scope.
///
/// `Read` is the role the `chunks` SELECT rule requires (viewer in the generated model), `Write`
/// the role its INSERT/UPDATE/DELETE rules require (editor). Searches accept any scope that may
/// read (one project or several of one tenant); writes accept only a single-project scope that
/// may write. Row-level security remains the final gate.
///
/// ```no_run
/// # use tenancy_runtime::{Error, ProjectId, Tenancy, TenantId, UserId};
/// # use tenancy_runtime::vector::{SearchRequest, VectorConfig, VectorGateway};
/// tenancy_runtime::roles! { Viewer = "viewer", Editor = "editor" }
/// # async fn example(tenancy: Tenancy, user: UserId, tenant: TenantId, query: pgvector::Vector) -> Result<(), Error> {
/// let gateway = VectorGateway::<Viewer, Editor>::new(VectorConfig::default());
/// let ctx = tenancy.authorize(user, tenant).await?;
/// let scope = ctx.all_projects().with_at_least::<Viewer>();
/// let mut tx = tenancy.begin(&scope).await?;
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
/// # use tenancy_runtime::vector::{SearchRequest, VectorConfig, VectorGateway};
/// tenancy_runtime::roles! { Viewer = "viewer", Editor = "editor" }
/// async fn unscoped(pool: sqlx::PgPool, request: SearchRequest) {
///     let gateway = VectorGateway::<Viewer, Editor>::new(VectorConfig::default());
///     let _ = gateway.search(&pool, &request).await;
/// }
/// ```
pub struct VectorGateway<Read: Role, Write: Role> {
    config: VectorConfig,
    roles: PhantomData<fn() -> (Read, Write)>,
}

impl<Read: Role, Write: Role> Clone for VectorGateway<Read, Write> {
    fn clone(&self) -> Self {
        Self {
            config: self.config.clone(),
            roles: PhantomData,
        }
    }
}

impl<Read: Role, Write: Role> fmt::Debug for VectorGateway<Read, Write> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VectorGateway")
            .field("read_role", &Read::NAME)
            .field("write_role", &Write::NAME)
            .field("config", &self.config)
            .finish()
    }
}

/// Exact search: the distance is computed in a MATERIALIZED CTE over the scope's rows (found
/// through the primary-key btree), so no HNSW index can serve the ORDER BY. The CTE carries
/// only ids and distances; the `k` winners' ordinal and content are read afterwards through
/// the primary key, so a large scope's text is never materialized.
const EXACT_SQL: &str = "WITH scoped AS MATERIALIZED (\
     SELECT id, document_id, project_id, embedding <=> $3 AS distance FROM chunks \
     WHERE tenant_id = $1 AND project_id = ANY($2) AND embedding IS NOT NULL), \
     nearest AS (SELECT id, document_id, project_id, distance FROM scoped \
     ORDER BY distance, project_id, id LIMIT $4) \
     SELECT n.id, n.document_id, n.project_id, c.ordinal, c.content, n.distance \
     FROM nearest n JOIN chunks c \
     ON c.tenant_id = $1 AND c.project_id = n.project_id AND c.id = n.id \
     ORDER BY n.distance, n.project_id, n.id";

/// Exact search within one document (through the `(tenant_id, project_id, document_id,
/// ordinal)` unique btree), in the same shape as [`EXACT_SQL`].
const EXACT_IN_DOCUMENT_SQL: &str = "WITH scoped AS MATERIALIZED (\
     SELECT id, document_id, project_id, embedding <=> $3 AS distance FROM chunks \
     WHERE tenant_id = $1 AND project_id = ANY($2) AND document_id = $5 \
     AND embedding IS NOT NULL), \
     nearest AS (SELECT id, document_id, project_id, distance FROM scoped \
     ORDER BY distance, project_id, id LIMIT $4) \
     SELECT n.id, n.document_id, n.project_id, c.ordinal, c.content, n.distance \
     FROM nearest n JOIN chunks c \
     ON c.tenant_id = $1 AND c.project_id = n.project_id AND c.id = n.id \
     ORDER BY n.distance, n.project_id, n.id";

const UPSERT_SQL: &str = "INSERT INTO chunks \
     (tenant_id, project_id, id, document_id, ordinal, content, token_count, embedding) \
     SELECT $1, $2, u.id, u.document_id, u.ordinal, u.content, u.token_count, u.embedding \
     FROM unnest($3::uuid[], $4::uuid[], $5::integer[], $6::text[], $7::integer[], \
     $8::vector[]) AS u(id, document_id, ordinal, content, token_count, embedding) \
     ON CONFLICT (tenant_id, project_id, id) DO UPDATE SET \
     document_id = EXCLUDED.document_id, ordinal = EXCLUDED.ordinal, \
     content = EXCLUDED.content, token_count = EXCLUDED.token_count, \
     embedding = EXCLUDED.embedding";

const DELETE_SQL: &str =
    "DELETE FROM chunks WHERE tenant_id = $1 AND project_id = $2 AND id = ANY($3)";

type HitRow = (Uuid, Uuid, Uuid, i32, String, f64);

impl<Read: Role, Write: Role> VectorGateway<Read, Write> {
    /// A gateway with `config` (checked on every call, see [`VectorConfig::validate`]).
    pub fn new(config: VectorConfig) -> Self {
        Self {
            config,
            roles: PhantomData,
        }
    }

    /// The configuration in use.
    pub fn config(&self) -> &VectorConfig {
        &self.config
    }

    /// Inserts or replaces (by chunk id) a batch of chunks in the scope's project, in one
    /// `INSERT ... SELECT FROM unnest(...)` statement (COPY is refused under row-level
    /// security). The tenant and project written are the scope's.
    ///
    /// The batch fails whole, writing nothing: [`Error::Forbidden`] when a row names another
    /// project, [`Error::InvalidInput`] for a repeated chunk id or a document that is not in
    /// the scope's project, [`Error::Conflict`] for a `(document_id, ordinal)` already taken by
    /// another chunk. Returns the number of rows written.
    pub async fn upsert<S: WriteScope<Write>>(
        &self,
        tx: &mut ScopedTx<S>,
        rows: &[ChunkEmbedding],
    ) -> Result<u64, Error> {
        self.config.validate()?;
        if rows.is_empty() {
            return Ok(0);
        }
        let project = tx.scope().project_id();
        if rows.iter().any(|row| row.project_id != project) {
            return Err(Error::Forbidden);
        }
        let mut seen = HashSet::with_capacity(rows.len());
        if !rows.iter().all(|row| seen.insert(row.id)) {
            return Err(Error::InvalidInput);
        }
        let tenant = tx.scope().tenant_id();
        let ids: Vec<Uuid> = rows.iter().map(|r| r.id).collect();
        let documents: Vec<Uuid> = rows.iter().map(|r| r.document_id).collect();
        let ordinals: Vec<i32> = rows.iter().map(|r| r.ordinal).collect();
        let contents: Vec<String> = rows.iter().map(|r| r.content.clone()).collect();
        let token_counts: Vec<i32> = rows.iter().map(|r| r.token_count).collect();
        let embeddings: Vec<Vector> = rows.iter().map(|r| r.embedding.clone()).collect();
        let result = sqlx::query(UPSERT_SQL)
            .bind(tenant.as_uuid())
            .bind(project.as_uuid())
            .bind(ids)
            .bind(documents)
            .bind(ordinals)
            .bind(contents)
            .bind(token_counts)
            .bind(embeddings)
            .execute(tx.connection())
            .await?;
        Ok(result.rows_affected())
    }

    /// Deletes chunks of the scope's project by id; ids of other projects or tenants are not
    /// touched. Returns the number of rows deleted.
    pub async fn delete<S: WriteScope<Write>>(
        &self,
        tx: &mut ScopedTx<S>,
        chunk_ids: &[Uuid],
    ) -> Result<u64, Error> {
        if chunk_ids.is_empty() {
            return Ok(0);
        }
        let tenant = tx.scope().tenant_id();
        let project = tx.scope().project_id();
        let result = sqlx::query(DELETE_SQL)
            .bind(tenant.as_uuid())
            .bind(project.as_uuid())
            .bind(chunk_ids)
            .execute(tx.connection())
            .await?;
        Ok(result.rows_affected())
    }

    /// The `k` chunks of the scope nearest to the query (cosine distance), over every project
    /// of the scope (one query with `project_id = ANY(...)`, so the top-k is global).
    ///
    /// Returns `k` rows whenever the scope holds at least `k` embedded chunks (matching the
    /// document filter): the tenant-HNSW route falls back to exact search when the index
    /// returns fewer. [`Error::InvalidInput`] when `k` is 0 or above [`MAX_K`].
    pub async fn search<S: ReadScope<Read>>(
        &self,
        tx: &mut ScopedTx<S>,
        request: &SearchRequest,
    ) -> Result<SearchResults<S>, Error> {
        self.config.validate()?;
        if request.k == 0 || request.k > MAX_K {
            return Err(Error::InvalidInput);
        }
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
        let facts = self.route_facts(tx.connection(), tenant, &projects).await?;
        let mut route = self.choose_route(&facts, request);
        let mut hits = if route == Route::TenantHnsw {
            let hits = hnsw_search(tx.connection(), tenant, &projects, request).await?;
            if hits.len() < request.k as usize {
                route = Route::ExactAfterShortHnsw;
                exact_search(tx.connection(), tenant, &projects, request).await?
            } else {
                hits
            }
        } else {
            exact_search(tx.connection(), tenant, &projects, request).await?
        };
        // relaxed_order may return the HNSW rows slightly out of order.
        hits.sort_by(|a, b| {
            a.distance
                .total_cmp(&b.distance)
                .then(a.project_id.cmp(&b.project_id))
                .then(a.chunk_id.cmp(&b.chunk_id))
        });
        Ok(SearchResults { scope, route, hits })
    }

    /// The route [`search`](Self::search) would take for `request` in this transaction and the
    /// `EXPLAIN` text of its query, for tests and diagnosis (the catalog settings are applied
    /// to the transaction as a search would).
    pub async fn explain_search<S: ReadScope<Read>>(
        &self,
        tx: &mut ScopedTx<S>,
        request: &SearchRequest,
    ) -> Result<(Route, String), Error> {
        self.config.validate()?;
        let scope = tx.scope().clone();
        let projects: Vec<Uuid> = scope.project_ids().iter().map(|p| p.as_uuid()).collect();
        let tenant = scope.tenant_id();
        let facts = self.route_facts(tx.connection(), tenant, &projects).await?;
        let route = self.choose_route(&facts, request);
        let k = i64::from(request.k);
        let lines: Vec<String> = if route == Route::TenantHnsw {
            sqlx::query_scalar(sqlx::AssertSqlSafe(format!("EXPLAIN {}", hnsw_sql(tenant))))
                .bind(&projects)
                .bind(&request.embedding)
                .bind(k)
                .fetch_all(tx.connection())
                .await?
        } else {
            let sql = match request.document_id {
                Some(_) => EXACT_IN_DOCUMENT_SQL,
                None => EXACT_SQL,
            };
            let explain = format!("EXPLAIN {sql}");
            let query = sqlx::query_scalar(sqlx::AssertSqlSafe(explain))
                .bind(tenant.as_uuid())
                .bind(&projects)
                .bind(&request.embedding)
                .bind(k);
            match request.document_id {
                Some(document) => query.bind(document),
                None => query,
            }
            .fetch_all(tx.connection())
            .await?
        };
        Ok((route, lines.join("\n")))
    }

    /// Reads the tenant's tier, whether its index is valid and the scope's size from the
    /// catalog, and sets the pgvector settings for this transaction, in one round trip.
    async fn route_facts(
        &self,
        conn: &mut PgConnection,
        tenant: TenantId,
        projects: &[Uuid],
    ) -> Result<RouteFacts, Error> {
        let schema = &self.config.helper_schema;
        let sql = format!(
            "SELECT set_config('hnsw.ef_search', $3, true), \
             set_config('hnsw.iterative_scan', 'relaxed_order', true), \
             set_config('hnsw.max_scan_tuples', $4, true), \
             t.tier, \
             COALESCE((SELECT i.indisvalid AND i.indisready FROM pg_catalog.pg_index i \
                WHERE i.indexrelid = pg_catalog.to_regclass(t.index_name) \
                AND i.indrelid = 'chunks'::regclass), false), \
             COALESCE(t.chunk_count, 0), \
             (SELECT COALESCE(sum(p.chunk_count), 0)::bigint FROM {schema}.vector_project_sizes p \
                WHERE p.tenant_id = $1 AND p.project_id = ANY($2)) \
             FROM (SELECT 1) AS one LEFT JOIN {schema}.vector_tiers t ON t.tenant_id = $1"
        );
        let row: (String, String, String, Option<String>, bool, i64, i64) =
            sqlx::query_as(sqlx::AssertSqlSafe(sql))
                .bind(tenant.as_uuid())
                .bind(projects)
                .bind(self.config.ef_search.to_string())
                .bind(self.config.max_scan_tuples.to_string())
                .fetch_one(conn)
                .await?;
        let (_, _, _, tier, index_valid, tenant_chunks, scope_chunks) = row;
        let tier = match tier.as_deref() {
            None => Tier::Exact,
            Some(text) => Tier::parse(text)?,
        };
        Ok(RouteFacts {
            tier,
            index_valid,
            tenant_chunks,
            scope_chunks,
        })
    }

    /// The gateway's routing rule (the planner is never asked to guess the tenant's size).
    fn choose_route(&self, facts: &RouteFacts, request: &SearchRequest) -> Route {
        let promoted = facts.tier == Tier::Hnsw && facts.index_valid;
        let large_scope = facts.scope_chunks > self.config.exact_scope_max;
        let share = if facts.tenant_chunks > 0 {
            facts.scope_chunks as f64 / facts.tenant_chunks as f64
        } else {
            0.0
        };
        if promoted
            && request.document_id.is_none()
            && large_scope
            && share >= self.config.min_hnsw_scope_share
        {
            Route::TenantHnsw
        } else {
            Route::Exact
        }
    }
}

/// The tenant-HNSW query. The tenant's UUID is inlined as a literal (a typed [`Uuid`], so
/// formatting it is safe) because the planner must prove the partial index's
/// `tenant_id = '<uuid>'` predicate, which a bind parameter under a generic plan does not allow.
fn hnsw_sql(tenant: TenantId) -> String {
    format!(
        "SELECT id, document_id, project_id, ordinal, content, embedding <=> $2 AS distance \
         FROM chunks WHERE tenant_id = '{tenant}'::uuid AND project_id = ANY($1) \
         ORDER BY embedding <=> $2 LIMIT $3"
    )
}

async fn hnsw_search(
    conn: &mut PgConnection,
    tenant: TenantId,
    projects: &[Uuid],
    request: &SearchRequest,
) -> Result<Vec<SearchHit>, Error> {
    let rows: Vec<HitRow> = sqlx::query_as(sqlx::AssertSqlSafe(hnsw_sql(tenant)))
        .bind(projects)
        .bind(&request.embedding)
        .bind(i64::from(request.k))
        .fetch_all(conn)
        .await?;
    Ok(rows.into_iter().map(hit).collect())
}

async fn exact_search(
    conn: &mut PgConnection,
    tenant: TenantId,
    projects: &[Uuid],
    request: &SearchRequest,
) -> Result<Vec<SearchHit>, Error> {
    let k = i64::from(request.k);
    let rows: Vec<HitRow> = match request.document_id {
        Some(document) => {
            sqlx::query_as(EXACT_IN_DOCUMENT_SQL)
                .bind(tenant.as_uuid())
                .bind(projects)
                .bind(&request.embedding)
                .bind(k)
                .bind(document)
                .fetch_all(conn)
                .await?
        }
        None => {
            sqlx::query_as(EXACT_SQL)
                .bind(tenant.as_uuid())
                .bind(projects)
                .bind(&request.embedding)
                .bind(k)
                .fetch_all(conn)
                .await?
        }
    };
    Ok(rows.into_iter().map(hit).collect())
}

fn hit((chunk_id, document_id, project_id, ordinal, content, distance): HitRow) -> SearchHit {
    SearchHit {
        chunk_id,
        document_id,
        project_id: ProjectId::new(project_id),
        ordinal,
        content,
        distance,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    crate::roles! { Viewer = "viewer", Editor = "editor" }

    fn facts(tier: Tier, valid: bool, tenant: i64, scope: i64) -> RouteFacts {
        RouteFacts {
            tier,
            index_valid: valid,
            tenant_chunks: tenant,
            scope_chunks: scope,
        }
    }

    #[test]
    fn routing_uses_hnsw_only_for_large_scopes_of_promoted_tenants_with_a_valid_index() {
        let gateway = VectorGateway::<Viewer, Editor>::new(VectorConfig::default());
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
        // A document filter is always exact.
        let in_document = request.clone().in_document(Uuid::nil());
        assert_eq!(
            gateway.choose_route(&facts(Tier::Hnsw, true, 50_000, 50_000), &in_document),
            Route::Exact
        );
    }

    #[test]
    fn hnsw_sql_inlines_the_tenant_literal() {
        let tenant = TenantId::new(Uuid::from_u128(0xabc));
        let sql = hnsw_sql(tenant);
        assert!(sql.contains("tenant_id = '00000000-0000-0000-0000-000000000abc'::uuid"));
        assert!(sql.contains("ORDER BY embedding <=> $2 LIMIT $3"));
    }
}
