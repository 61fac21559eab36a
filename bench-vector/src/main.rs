//! Tenant-partitioned vector search benchmark (not a timed test; results go to BENCHMARKS.md).
//!
//! For each tenant count, one fresh database holds `--chunks` chunks of 384 dimensions whose
//! tenant sizes follow a Zipf law (s = 1), generated server-side with `setseed`. Queries are
//! stored embeddings plus seeded noise, drawn near the searching tenant's own data ("Own") and
//! near another tenant's data ("Other", far from the searching tenant's vectors; with a single
//! tenant, vectors of the generator of a rank that holds no rows). Variants, run one after the
//! other on the same data through the application role (row-level security on):
//!
//! * `exact`: the gateway with no promoted tenant (truth for recall);
//! * `shared-off` / `shared-relaxed` (unless `--no-shared`): one HNSW index over all tenants,
//!   tenant and project filter by the row-level-security policy only, `hnsw.iterative_scan`
//!   off / `relaxed_order`;
//! * `tiered before` (with `--before EF,M,EFC`): the gateway after `VectorMaintenance::refresh`
//!   promoted the big tenants with an earlier configuration; its indexes are then dropped;
//! * `tiered`: the gateway after `refresh` promoted the big tenants with `--m` /
//!   `--ef-construction`, once per `--ef-search` value on the same indexes;
//! * `solo`: the tiered gateway (first `--ef-search`) in a database holding only one tenant
//!   (every promoted queried tenant, the median and the smallest queried tenant), its searches
//!   alternated with the same searches in the shared database, for the p50 ratio.
//!
//! `--smoke` runs tiny sizes in seconds (for CI).

use std::collections::{BTreeMap, HashSet};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use pgvector::Vector;
use sqlx::PgPool;
use tenancy_generated::roles::{Editor, Viewer};
use tenancy_generated::Chunks;
use tenancy_runtime::vector::{SearchRequest, VectorConfig, VectorGateway, VectorMaintenance};
use tenancy_runtime::{ProjectId, ProjectScope, Tenancy, TenantId, UserId};
use tenancy_tests::TestDb;
use uuid::Uuid;

const K: usize = 10;
const DIMS: usize = 384;

/// Command-line settings.
#[derive(Clone, Debug)]
struct Args {
    chunks: i64,
    tenant_counts: Vec<usize>,
    queries_per_kind: usize,
    query_tenants: usize,
    promote_at: i64,
    solo: bool,
    shared: bool,
    /// The tenant-HNSW settings measured ("after"): the first `ef_search` is the one the solo
    /// comparison uses, every other one is measured on the same indexes.
    ef_search: Vec<u32>,
    hnsw_m: u32,
    ef_construction: u32,
    /// `(ef_search, m, ef_construction)` of an earlier configuration measured first on the
    /// same data and queries ("before"; its indexes are dropped and rebuilt for "after").
    before: Option<(u32, u32, u32)>,
    /// Solo comparison: passes over the tenant's queries, shared and solo interleaved.
    solo_passes: usize,
}

impl Args {
    fn parse() -> Result<Args> {
        let defaults = VectorConfig::default();
        let mut args = Args {
            chunks: 200_000,
            tenant_counts: vec![1, 100, 1000],
            queries_per_kind: 5,
            query_tenants: 24,
            promote_at: 10_000,
            solo: true,
            shared: true,
            ef_search: vec![defaults.ef_search],
            hnsw_m: defaults.hnsw_m,
            ef_construction: defaults.hnsw_ef_construction,
            before: None,
            solo_passes: 3,
        };
        let mut it = std::env::args().skip(1);
        let list = |text: String| -> Result<Vec<u32>> {
            Ok(text.split(',').map(str::parse).collect::<Result<_, _>>()?)
        };
        while let Some(arg) = it.next() {
            let mut value = || it.next().context("missing value");
            match arg.as_str() {
                "--smoke" => {
                    args.chunks = 3_000;
                    args.tenant_counts = vec![1, 10, 50];
                    args.queries_per_kind = 2;
                    args.query_tenants = 6;
                    args.promote_at = 300;
                    args.solo_passes = 1;
                }
                "--chunks" => args.chunks = value()?.parse()?,
                "--tenants" => {
                    args.tenant_counts = value()?
                        .split(',')
                        .map(str::parse)
                        .collect::<Result<_, _>>()?
                }
                "--queries" => args.queries_per_kind = value()?.parse()?,
                "--query-tenants" => args.query_tenants = value()?.parse()?,
                "--promote-at" => args.promote_at = value()?.parse()?,
                "--no-solo" => args.solo = false,
                "--no-shared" => args.shared = false,
                "--solo-passes" => args.solo_passes = value()?.parse()?,
                "--ef-search" => args.ef_search = list(value()?)?,
                "--m" => args.hnsw_m = value()?.parse()?,
                "--ef-construction" => args.ef_construction = value()?.parse()?,
                "--before" => {
                    let v = list(value()?)?;
                    let [ef, m, efc] = v[..] else {
                        bail!("--before EF_SEARCH,M,EF_CONSTRUCTION");
                    };
                    args.before = Some((ef, m, efc));
                }
                other => bail!("unknown argument {other}"),
            }
        }
        if args.ef_search.is_empty() {
            bail!("--ef-search needs at least one value");
        }
        Ok(args)
    }

    /// The gateway and maintenance configuration with these HNSW settings.
    fn config_with(&self, ef_search: u32, m: u32, ef_construction: u32) -> VectorConfig {
        VectorConfig {
            promote_at: self.promote_at,
            demote_below: Some(self.promote_at / 2),
            exact_scope_max: self.promote_at / 2,
            ef_search,
            build_maintenance_work_mem_mb: Some(512),
            hnsw_m: m,
            hnsw_ef_construction: ef_construction,
            ..VectorConfig::default()
        }
    }

    /// The "after" configuration (the first `--ef-search`).
    fn config(&self) -> VectorConfig {
        self.config_with(self.ef_search[0], self.hnsw_m, self.ef_construction)
    }
}

/// One tenant of the synthetic data set (one project, one document, one editor).
#[derive(Clone, Debug)]
struct Tenant {
    rank: usize,
    id: TenantId,
    project: ProjectId,
    document: Uuid,
    user: UserId,
    size: i64,
}

/// Zipf (s = 1) sizes summing to about `total`, every tenant at least 10 chunks.
fn zipf_sizes(tenants: usize, total: i64) -> Vec<i64> {
    let harmonic: f64 = (1..=tenants).map(|i| 1.0 / i as f64).sum();
    (1..=tenants)
        .map(|i| ((total as f64 / harmonic / i as f64).round() as i64).max(10))
        .collect()
}

fn seeded_uuid(state: &mut u64) -> Uuid {
    Uuid::from_u64_pair(splitmix(state), splitmix(state))
}

fn splitmix(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// Creates the tenants (rows only) through the superuser pool.
async fn create_tenants(admin: &PgPool, tenants: &[Tenant]) -> Result<()> {
    let ids: Vec<Uuid> = tenants.iter().map(|t| t.id.as_uuid()).collect();
    let projects: Vec<Uuid> = tenants.iter().map(|t| t.project.as_uuid()).collect();
    let documents: Vec<Uuid> = tenants.iter().map(|t| t.document).collect();
    let users: Vec<Uuid> = tenants.iter().map(|t| t.user.as_uuid()).collect();
    let mut tx = admin.begin().await?;
    sqlx::query(
        "INSERT INTO tenants (id, name, slug) SELECT t, t::text, t::text FROM unnest($1::uuid[]) t",
    )
    .bind(&ids)
    .execute(&mut *tx)
    .await?;
    sqlx::query(
        "INSERT INTO projects (tenant_id, id, name, slug) \
         SELECT t, p, 'p', 'p' FROM unnest($1::uuid[], $2::uuid[]) AS u(t, p)",
    )
    .bind(&ids)
    .bind(&projects)
    .execute(&mut *tx)
    .await?;
    sqlx::query(
        "INSERT INTO user_project_roles (tenant_id, project_id, user_id, role) \
         SELECT t, p, u, 'editor' FROM unnest($1::uuid[], $2::uuid[], $3::uuid[]) AS x(t, p, u)",
    )
    .bind(&ids)
    .bind(&projects)
    .bind(&users)
    .execute(&mut *tx)
    .await?;
    sqlx::query(
        "INSERT INTO documents (tenant_id, project_id, id, title, content_hash, created_by) \
         SELECT t, p, d, 'doc', d::text, u \
         FROM unnest($1::uuid[], $2::uuid[], $3::uuid[], $4::uuid[]) AS x(t, p, d, u)",
    )
    .bind(&ids)
    .bind(&projects)
    .bind(&documents)
    .bind(&users)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(())
}

/// Generates every chunk server-side: tenant `rank` has 8 clusters around deterministic
/// centres, each coordinate `sin(...) + uniform(-0.5, 0.5)` from `setseed(0.42)`.
async fn generate_chunks(admin: &PgPool, tenants: &[Tenant]) -> Result<Duration> {
    let started = Instant::now();
    let mut tx = admin.begin().await?;
    sqlx::query("SELECT setseed(0.42)")
        .execute(&mut *tx)
        .await?;
    sqlx::query(
        "INSERT INTO chunks (tenant_id, project_id, document_id, ordinal, content, token_count, embedding) \
         SELECT s.t, s.p, s.d, g, 'chunk', 1, \
           (SELECT array_agg(sin(s.rank * 3.7 + (g % 8) * 12.9898 + j * 78.233) + (random() - 0.5) \
                   ORDER BY j) FROM generate_series(1, 384) AS j)::vector \
         FROM unnest($1::int[], $2::uuid[], $3::uuid[], $4::uuid[], $5::int[]) AS s(rank, t, p, d, n), \
              generate_series(1, s.n) AS g",
    )
    .bind(tenants.iter().map(|t| t.rank as i32).collect::<Vec<_>>())
    .bind(tenants.iter().map(|t| t.id.as_uuid()).collect::<Vec<_>>())
    .bind(tenants.iter().map(|t| t.project.as_uuid()).collect::<Vec<_>>())
    .bind(tenants.iter().map(|t| t.document).collect::<Vec<_>>())
    .bind(tenants.iter().map(|t| t.size as i32).collect::<Vec<_>>())
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    sqlx::raw_sql("VACUUM ANALYZE chunks")
        .execute(admin)
        .await?;
    Ok(started.elapsed())
}

/// Kind of query vector.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Kind {
    Own,
    Other,
}

/// One query: who searches, with which vector.
struct Query {
    tenant: usize,
    kind: Kind,
    vector: Vector,
}

/// Stored embeddings of `source` plus seeded noise.
async fn near(admin: &PgPool, source: &Tenant, n: usize, seed: &mut u64) -> Result<Vec<Vector>> {
    let stored: Vec<Vector> = sqlx::query_scalar(
        "SELECT embedding FROM chunks WHERE tenant_id = $1 ORDER BY ordinal * 7919 % 10007 LIMIT $2",
    )
    .bind(source.id.as_uuid())
    .bind(n as i64)
    .fetch_all(admin)
    .await?;
    Ok(stored
        .into_iter()
        .map(|v| {
            let noisy: Vec<f32> = v
                .as_slice()
                .iter()
                .map(|x| x + ((splitmix(seed) as f64 / u64::MAX as f64 - 0.5) * 0.4) as f32)
                .collect();
            Vector::from(noisy)
        })
        .collect())
}

/// Result of one variant over every query.
#[derive(Default)]
struct Outcome {
    /// Per query: ids returned, latency.
    rows: Vec<(Vec<Uuid>, Duration)>,
    routes: BTreeMap<String, usize>,
}

type Gateway = VectorGateway<Viewer, Editor, Uuid>;

async fn scope_of(tenancy: &Tenancy, tenant: &Tenant) -> Result<ProjectScope<Viewer>> {
    let ctx = tenancy.authorize(tenant.user, tenant.id).await?;
    Ok(ctx.project(tenant.project)?.require::<Viewer>()?)
}

async fn run_gateway(
    tenancy: &Tenancy,
    gateway: &Gateway,
    scopes: &[ProjectScope<Viewer>],
    queries: &[Query],
    warm: bool,
) -> Result<Outcome> {
    let mut outcome = Outcome::default();
    for query in queries {
        let scope = &scopes[query.tenant];
        let mut tx = tenancy.begin(scope).await?;
        let started = Instant::now();
        let results = gateway
            .search(&mut tx, &SearchRequest::new(query.vector.clone(), K as u32))
            .await?;
        let took = started.elapsed();
        tx.commit().await?;
        if !warm {
            *outcome
                .routes
                .entry(format!("{:?}", results.route))
                .or_default() += 1;
            outcome
                .rows
                .push((results.hits.iter().map(|h| h.key).collect(), took));
        }
    }
    Ok(outcome)
}

/// The shared-HNSW variant: one index over every tenant, the tenant/project filter only in the
/// row-level-security policy (as in NOTES section 4), `enable_sort` off so the planner cannot
/// fall back to the btree and a sort for small tenants (that fallback is exact search, not the
/// design measured here). The untimed warm-up pass records which plan each query got.
async fn run_shared(
    tenancy: &Tenancy,
    scopes: &[ProjectScope<Viewer>],
    queries: &[Query],
    iterative: &str,
    ef_search: u32,
    warm: bool,
) -> Result<Outcome> {
    const SHARED_SQL: &str = "SELECT id FROM chunks ORDER BY embedding <=> $1 LIMIT $2";
    let mut outcome = Outcome::default();
    for query in queries {
        let scope = &scopes[query.tenant];
        let mut tx = tenancy.begin(scope).await?;
        sqlx::query(
            "SELECT set_config('hnsw.iterative_scan', $1, true), \
             set_config('hnsw.ef_search', $2, true), set_config('enable_sort', 'off', true)",
        )
        .bind(iterative)
        .bind(ef_search.to_string())
        .execute(tx.connection())
        .await?;
        if warm {
            let plan: String = sqlx::query_scalar::<_, String>(sqlx::AssertSqlSafe(format!(
                "EXPLAIN (COSTS OFF) {SHARED_SQL}"
            )))
            .bind(&query.vector)
            .bind(K as i64)
            .fetch_all(tx.connection())
            .await?
            .join("\n");
            let used = if plan.contains("chunks_shared_hnsw") {
                "shared HNSW index"
            } else {
                "another plan"
            };
            *outcome.routes.entry(used.to_owned()).or_default() += 1;
        }
        let started = Instant::now();
        let ids: Vec<Uuid> = sqlx::query_scalar(SHARED_SQL)
            .bind(&query.vector)
            .bind(K as i64)
            .fetch_all(tx.connection())
            .await?;
        let took = started.elapsed();
        tx.commit().await?;
        if !warm {
            outcome.rows.push((ids, took));
        }
    }
    Ok(outcome)
}

fn percentile(sorted_ms: &[f64], p: f64) -> f64 {
    if sorted_ms.is_empty() {
        return f64::NAN;
    }
    let index = ((sorted_ms.len() - 1) as f64 * p).round() as usize;
    sorted_ms[index.min(sorted_ms.len() - 1)]
}

/// One line of the report.
struct Summary {
    mean_recall: f64,
    worst_recall: f64,
    worst_tenant_size: i64,
    short_share: f64,
    p50: f64,
    p95: f64,
}

fn summarise(
    outcome: &Outcome,
    truth: &Outcome,
    queries: &[Query],
    tenants: &[Tenant],
    kind: Kind,
) -> Summary {
    let mut per_tenant: BTreeMap<usize, (usize, usize)> = BTreeMap::new();
    let mut short = 0usize;
    let mut total = 0usize;
    let mut latencies = Vec::new();
    for (i, query) in queries.iter().enumerate() {
        if query.kind != kind {
            continue;
        }
        let (got, took) = &outcome.rows[i];
        let expected: HashSet<&Uuid> = truth.rows[i].0.iter().collect();
        let entry = per_tenant.entry(query.tenant).or_default();
        entry.0 += got.iter().filter(|id| expected.contains(id)).count();
        entry.1 += expected.len();
        if got.len() < expected.len() {
            short += 1;
        }
        total += 1;
        latencies.push(took.as_secs_f64() * 1000.0);
    }
    latencies.sort_by(f64::total_cmp);
    let recalls: Vec<(usize, f64)> = per_tenant
        .iter()
        .map(|(t, (hit, all))| (*t, *hit as f64 / (*all).max(1) as f64))
        .collect();
    let mean = recalls.iter().map(|r| r.1).sum::<f64>() / recalls.len().max(1) as f64;
    let worst = recalls
        .iter()
        .copied()
        .min_by(|a, b| a.1.total_cmp(&b.1))
        .unwrap_or((0, f64::NAN));
    Summary {
        mean_recall: mean,
        worst_recall: worst.1,
        worst_tenant_size: tenants.get(worst.0).map_or(0, |t| t.size),
        short_share: short as f64 / total.max(1) as f64,
        p50: percentile(&latencies, 0.5),
        p95: percentile(&latencies, 0.95),
    }
}

/// A fresh database holding only `tenant` (its rows copied from `source`), with the catalog
/// installed and the tenant promoted by `config`; returns it with the refresh time.
async fn solo_db(
    source: &PgPool,
    tenant: &Tenant,
    config: &VectorConfig,
) -> Result<(TestDb, Duration)> {
    let db = TestDb::try_fresh().await?;
    create_tenants(db.admin_pool(), std::slice::from_ref(tenant)).await?;
    let mut offset = 0i64;
    loop {
        let rows: Vec<(Uuid, i32, Vector)> = sqlx::query_as(
            "SELECT id, ordinal, embedding FROM chunks WHERE tenant_id = $1 \
             ORDER BY ordinal LIMIT 5000 OFFSET $2",
        )
        .bind(tenant.id.as_uuid())
        .bind(offset)
        .fetch_all(source)
        .await?;
        if rows.is_empty() {
            break;
        }
        offset += rows.len() as i64;
        sqlx::query(
            "INSERT INTO chunks (tenant_id, project_id, id, document_id, ordinal, content, token_count, embedding) \
             SELECT $1, $2, u.id, $3, u.o, 'chunk', 1, u.e \
             FROM unnest($4::uuid[], $5::int[], $6::vector[]) AS u(id, o, e)",
        )
        .bind(tenant.id.as_uuid())
        .bind(tenant.project.as_uuid())
        .bind(tenant.document)
        .bind(rows.iter().map(|r| r.0).collect::<Vec<_>>())
        .bind(rows.iter().map(|r| r.1).collect::<Vec<_>>())
        .bind(rows.iter().map(|r| r.2.clone()).collect::<Vec<_>>())
        .execute(db.admin_pool())
        .await?;
    }
    sqlx::raw_sql("VACUUM ANALYZE chunks")
        .execute(db.admin_pool())
        .await?;
    let maintenance =
        VectorMaintenance::new(db.admin_pool().clone(), "bench: solo", config.clone())?;
    maintenance.install().await?;
    let started = Instant::now();
    maintenance.refresh(&Chunks::EMBEDDING_VECTORS.spec).await?;
    Ok((db, started.elapsed()))
}

/// One search through the gateway in its own scoped transaction: ids, latency of the search
/// call, route.
async fn search_once(
    tenancy: &Tenancy,
    gateway: &Gateway,
    scope: &ProjectScope<Viewer>,
    vector: &Vector,
) -> Result<(Vec<Uuid>, Duration, String)> {
    let mut tx = tenancy.begin(scope).await?;
    let started = Instant::now();
    let results = gateway
        .search(&mut tx, &SearchRequest::new(vector.clone(), K as u32))
        .await?;
    let took = started.elapsed();
    tx.commit().await?;
    Ok((
        results.hits.iter().map(|h| h.key).collect(),
        took,
        format!("{:?}", results.route),
    ))
}

/// Recall@10 of `got` against `truth`, summed: (found, expected).
fn overlap(got: &[Uuid], truth: &[Uuid]) -> (usize, usize) {
    let expected: HashSet<&Uuid> = truth.iter().collect();
    (
        got.iter().filter(|id| expected.contains(id)).count(),
        expected.len(),
    )
}

/// Per query kind of the solo comparison: shared ms, solo ms, shared recall (found,
/// expected), solo recall (found, expected).
type SoloSamples = (Vec<f64>, Vec<f64>, (usize, usize), (usize, usize));

/// The solo comparison of one tenant: its queries of both kinds against the shared database
/// and a database holding only that tenant, alternating which goes first, `passes` timed
/// passes after one warm-up pass. Prints one line per query kind.
#[allow(clippy::too_many_arguments)]
async fn solo_compare(
    args: &Args,
    shared: (&Tenancy, &ProjectScope<Viewer>),
    admin: &PgPool,
    tenant: &Tenant,
    queries: &[(usize, &Query)],
    truth: &Outcome,
    route: &str,
    config: &VectorConfig,
) -> Result<()> {
    let (solo, build) = solo_db(admin, tenant, config).await?;
    let solo_tenancy = Tenancy::new(solo.app_pool().clone());
    let solo_scope = scope_of(&solo_tenancy, tenant).await?;
    let gateway = Gateway::new(Chunks::EMBEDDING_VECTORS, config.clone());
    let mut per_kind: BTreeMap<Kind, SoloSamples> = BTreeMap::new();
    let mut routes: BTreeMap<String, usize> = BTreeMap::new();
    // Exact-route searches take about a millisecond: more passes, so a burst of load on the
    // shared cores does not decide the median.
    let passes = if route == "exact" {
        args.solo_passes * 5
    } else {
        args.solo_passes
    };
    let mut paired: BTreeMap<Kind, Vec<f64>> = BTreeMap::new();
    for pass in 0..=passes {
        for (n, (i, query)) in queries.iter().enumerate() {
            let shared_first = (pass + n) % 2 == 0;
            let mut shared_result = None;
            let mut solo_result = None;
            for side in 0..2 {
                if (side == 0) == shared_first {
                    shared_result =
                        Some(search_once(shared.0, &gateway, shared.1, &query.vector).await?);
                } else {
                    solo_result = Some(
                        search_once(&solo_tenancy, &gateway, &solo_scope, &query.vector).await?,
                    );
                }
            }
            let (Some(a), Some(b)) = (shared_result, solo_result) else {
                bail!("a side of the solo comparison did not run");
            };
            if pass == 0 {
                continue;
            }
            paired
                .entry(query.kind)
                .or_default()
                .push(a.1.as_secs_f64() / b.1.as_secs_f64().max(1e-9));
            let entry = per_kind.entry(query.kind).or_default();
            entry.0.push(a.1.as_secs_f64() * 1000.0);
            entry.1.push(b.1.as_secs_f64() * 1000.0);
            let (fa, ea) = overlap(&a.0, &truth.rows[*i].0);
            let (fb, eb) = overlap(&b.0, &truth.rows[*i].0);
            entry.2 = (entry.2 .0 + fa, entry.2 .1 + ea);
            entry.3 = (entry.3 .0 + fb, entry.3 .1 + eb);
            *routes.entry(format!("shared {}", a.2)).or_default() += 1;
            *routes.entry(format!("solo {}", b.2)).or_default() += 1;
        }
    }
    for (kind, (mut a, mut b, ra, rb)) in per_kind {
        a.sort_by(f64::total_cmp);
        b.sort_by(f64::total_cmp);
        let (pa, pb) = (percentile(&a, 0.5), percentile(&b, 0.5));
        let mut ratios = paired.remove(&kind).unwrap_or_default();
        ratios.sort_by(f64::total_cmp);
        println!(
            "| rank {} ({}) | {route} | {kind:?} | {} | {pa:.2} | {pb:.2} | {:.2}x | {:.2}x | {:.3} | {:.3} |",
            tenant.rank + 1,
            tenant.size,
            a.len(),
            pa / pb,
            percentile(&ratios, 0.5),
            ra.0 as f64 / ra.1.max(1) as f64,
            rb.0 as f64 / rb.1.max(1) as f64,
        );
    }
    println!(
        "<!-- solo database refresh {:.1} s; routes {routes:?} -->",
        build.as_secs_f64()
    );
    solo.drop_db().await;
    Ok(())
}

/// Vectors drawn from the data generator of a tenant rank that holds no rows, plus the query
/// noise: the "far" queries of a database holding a single tenant.
fn synthetic(rank: usize, n: usize, seed: &mut u64) -> Vec<Vector> {
    let mut unit = || splitmix(seed) as f64 / u64::MAX as f64;
    (0..n)
        .map(|i| {
            let cluster = ((i + 1) % 8) as f64;
            let v: Vec<f32> = (1..=DIMS)
                .map(|j| {
                    let centre = (rank as f64 * 3.7 + cluster * 12.9898 + j as f64 * 78.233).sin();
                    (centre + (unit() - 0.5) + (unit() - 0.5) * 0.4) as f32
                })
                .collect();
            Vector::from(v)
        })
        .collect()
}

/// Drops every promoted tenant's index behind the catalog's back (the next refresh builds
/// them again with its own configuration).
async fn drop_tenant_indexes(admin: &PgPool, maintenance: &VectorMaintenance) -> Result<()> {
    for tier in maintenance.tiers(&Chunks::EMBEDDING_VECTORS.spec).await? {
        if let Some(name) = tier.index_name {
            // A name the maintenance generated (`schema.table_column_hnsw_<hex>`).
            sqlx::raw_sql(sqlx::AssertSqlSafe(format!("DROP INDEX IF EXISTS {name}")))
                .execute(admin)
                .await?;
        }
    }
    Ok(())
}

async fn run_one(args: &Args, tenant_count: usize) -> Result<()> {
    let config = args.config();
    let sizes = zipf_sizes(tenant_count, args.chunks);
    let mut seed = 0x5eed_u64 + tenant_count as u64;
    let tenants: Vec<Tenant> = sizes
        .iter()
        .enumerate()
        .map(|(rank, size)| Tenant {
            rank,
            id: TenantId::new(seeded_uuid(&mut seed)),
            project: ProjectId::new(seeded_uuid(&mut seed)),
            document: seeded_uuid(&mut seed),
            user: UserId::new(seeded_uuid(&mut seed)),
            size: *size,
        })
        .collect();
    let total: i64 = sizes.iter().sum();
    let db = TestDb::try_fresh().await?;
    let admin = db.admin_pool();
    create_tenants(admin, &tenants).await?;
    let generated = generate_chunks(admin, &tenants).await?;
    println!(
        "\n### {tenant_count} tenant(s): {total} chunks (largest {}, smallest {}), generated in {:.1} s",
        sizes[0],
        sizes[sizes.len() - 1],
        generated.as_secs_f64()
    );

    // Queried tenants: spread evenly over the size ranks, and every tenant large enough to be
    // promoted.
    let picked: Vec<usize> = if tenant_count <= args.query_tenants {
        (0..tenant_count).collect()
    } else {
        let mut p: Vec<usize> = (0..args.query_tenants)
            .map(|i| i * (tenant_count - 1) / (args.query_tenants - 1))
            .chain((0..tenant_count).filter(|t| sizes[*t] >= args.promote_at))
            .collect();
        p.sort_unstable();
        p.dedup();
        p
    };
    let mut queries = Vec::new();
    for &t in &picked {
        for v in near(admin, &tenants[t], args.queries_per_kind, &mut seed).await? {
            queries.push(Query {
                tenant: t,
                kind: Kind::Own,
                vector: v,
            });
        }
        let others = if tenant_count > 1 {
            let other = &tenants[(t + 1 + tenant_count / 2) % tenant_count];
            near(admin, other, args.queries_per_kind, &mut seed).await?
        } else {
            // No other tenant: vectors of the generator of rank 51, which holds no rows.
            synthetic(51, args.queries_per_kind, &mut seed)
        };
        for v in others {
            queries.push(Query {
                tenant: t,
                kind: Kind::Other,
                vector: v,
            });
        }
    }

    let tenancy = Tenancy::new(db.app_pool().clone());
    let mut scopes = Vec::new();
    for t in &tenants {
        // Only the picked tenants are used; others get a placeholder scope lazily below.
        if picked.contains(&t.rank) {
            scopes.push(Some(scope_of(&tenancy, t).await?));
        } else {
            scopes.push(None);
        }
    }
    let any_scope = scopes
        .iter()
        .flatten()
        .next()
        .cloned()
        .context("no scope")?;
    let scopes: Vec<ProjectScope<Viewer>> = scopes
        .into_iter()
        .map(|s| s.unwrap_or_else(|| any_scope.clone()))
        .collect();

    let maintenance = VectorMaintenance::new(admin.clone(), "bench: vector tiers", config.clone())?;
    maintenance.install().await?;
    let gateway = Gateway::new(Chunks::EMBEDDING_VECTORS, config.clone());
    let spec = &Chunks::EMBEDDING_VECTORS.spec;

    // 1. exact (no index but the btrees): the truth.
    run_gateway(&tenancy, &gateway, &scopes, &queries, true).await?;
    let exact = run_gateway(&tenancy, &gateway, &scopes, &queries, false).await?;
    let mut variants: Vec<(String, Outcome)> = Vec::new();
    let mut notes: Vec<String> = Vec::new();

    // 2. one shared HNSW index.
    if args.shared {
        let (ef_search, m, ef_construction) =
            args.before
                .unwrap_or((args.ef_search[0], args.hnsw_m, args.ef_construction));
        let started = Instant::now();
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
            "SET maintenance_work_mem = '512MB'; \
             CREATE INDEX chunks_shared_hnsw ON chunks USING hnsw (embedding vector_cosine_ops) \
               WITH (m = {m}, ef_construction = {ef_construction}); \
             RESET maintenance_work_mem"
        )))
        .execute(admin)
        .await?;
        let shared_build = started.elapsed();
        let shared_plans = run_shared(&tenancy, &scopes, &queries, "off", ef_search, true)
            .await?
            .routes;
        let off = run_shared(&tenancy, &scopes, &queries, "off", ef_search, false).await?;
        let relaxed = run_shared(
            &tenancy,
            &scopes,
            &queries,
            "relaxed_order",
            ef_search,
            false,
        )
        .await?;
        sqlx::raw_sql("DROP INDEX chunks_shared_hnsw")
            .execute(admin)
            .await?;
        notes.push(format!(
            "shared HNSW (m {m}, ef_construction {ef_construction}, ef_search {ef_search}) \
             built in {:.1} s, plans {shared_plans:?}",
            shared_build.as_secs_f64()
        ));
        variants.push(("shared HNSW, iterative off".to_owned(), off));
        variants.push(("shared HNSW, relaxed_order".to_owned(), relaxed));
    }

    // 3. tiered "before": an earlier configuration on the same data and queries.
    if let Some((ef_search, m, ef_construction)) = args.before {
        let before = VectorConfig {
            recheck_far_queries: false,
            ..args.config_with(ef_search, m, ef_construction)
        };
        let before_maintenance = VectorMaintenance::new(
            admin.clone(),
            "bench: vector tiers (before)",
            before.clone(),
        )?;
        let started = Instant::now();
        let report = before_maintenance.refresh(spec).await?;
        notes.push(format!(
            "tiered before (m {m}, ef_construction {ef_construction}): {} tenant(s) promoted, \
             builds {:.1} s",
            report.promoted.len(),
            report
                .promoted
                .iter()
                .map(|p| p.1)
                .sum::<Duration>()
                .as_secs_f64()
        ));
        let _ = started;
        let before_gateway = Gateway::new(Chunks::EMBEDDING_VECTORS, before);
        run_gateway(&tenancy, &before_gateway, &scopes, &queries, true).await?;
        let outcome = run_gateway(&tenancy, &before_gateway, &scopes, &queries, false).await?;
        notes.push(format!("tiered before routes {:?}", outcome.routes));
        variants.push((
            format!(
                "tiered before: ef_search {ef_search}, m {m}, ef_construction {ef_construction}, \
                 no re-check"
            ),
            outcome,
        ));
        drop_tenant_indexes(admin, &before_maintenance).await?;
    }

    // 4. tiered: promote the big tenants online, then every ef_search on the same indexes.
    let started = Instant::now();
    let report = maintenance.refresh(spec).await?;
    let refresh_took = started.elapsed();
    notes.push(format!(
        "tiered (m {}, ef_construction {}): {} tenant(s) promoted (>= {} chunks), builds {:.1} s \
         in total, whole refresh {:.1} s",
        args.hnsw_m,
        args.ef_construction,
        report.promoted.len(),
        config.promote_at,
        report
            .promoted
            .iter()
            .map(|p| p.1)
            .sum::<Duration>()
            .as_secs_f64(),
        refresh_took.as_secs_f64(),
    ));
    // Every ef_search with the far-query re-check, then the first one without it.
    let sweep = args
        .ef_search
        .iter()
        .map(|ef| (*ef, config.recheck_far_queries))
        .chain(std::iter::once((
            args.ef_search[0],
            !config.recheck_far_queries,
        )));
    for (ef_search, recheck) in sweep {
        let swept = Gateway::new(
            Chunks::EMBEDDING_VECTORS,
            VectorConfig {
                recheck_far_queries: recheck,
                ..args.config_with(ef_search, args.hnsw_m, args.ef_construction)
            },
        );
        run_gateway(&tenancy, &swept, &scopes, &queries, true).await?;
        let outcome = run_gateway(&tenancy, &swept, &scopes, &queries, false).await?;
        let name = format!(
            "tiered: ef_search {ef_search}, m {}, ef_construction {}, {}",
            args.hnsw_m,
            args.ef_construction,
            if recheck { "re-check" } else { "no re-check" }
        );
        notes.push(format!("{name}: routes {:?}", outcome.routes));
        variants.push((name, outcome));
    }

    println!();
    for note in &notes {
        println!("- {note}");
    }
    println!();
    println!("| variant | queries | recall@10 mean | recall@10 worst (tenant size) | short results | p50 ms | p95 ms | p50 vs exact |");
    println!("|---|---|---|---|---|---|---|---|");
    for kind in [Kind::Own, Kind::Other] {
        let base = summarise(&exact, &exact, &queries, &tenants, kind);
        let all = std::iter::once(("exact".to_owned(), &exact))
            .chain(variants.iter().map(|(name, o)| (name.clone(), o)));
        for (name, outcome) in all {
            let s = summarise(outcome, &exact, &queries, &tenants, kind);
            println!(
                "| {name} | {kind:?} | {:.3} | {:.3} ({}) | {:.0}% | {:.2} | {:.2} | {:.2}x |",
                s.mean_recall,
                s.worst_recall,
                s.worst_tenant_size,
                s.short_share * 100.0,
                s.p50,
                s.p95,
                s.p50 / base.p50
            );
        }
    }

    if args.solo && tenant_count > 1 {
        println!(
            "\nSolo comparison (tiered, ef_search {}, re-check {}; shared and solo searches \
             alternated, {} timed pass(es) after a warm-up):\n",
            config.ef_search, config.recheck_far_queries, args.solo_passes
        );
        println!(
            "| tenant (size) | route | queries | searches | shared db p50 ms | solo db p50 ms | ratio of p50s | median of paired ratios | recall shared | recall solo |"
        );
        println!("|---|---|---|---|---|---|---|---|---|---|");
        // Every promoted queried tenant, and the median and smallest queried tenants.
        let mut chosen: Vec<usize> = picked
            .iter()
            .copied()
            .filter(|t| report.promoted.iter().any(|p| p.0 == tenants[*t].id))
            .collect();
        chosen.push(picked[picked.len() / 2]);
        chosen.push(picked[picked.len() - 1]);
        chosen.dedup();
        for t in chosen {
            let own: Vec<(usize, &Query)> = queries
                .iter()
                .enumerate()
                .filter(|(_, q)| q.tenant == t)
                .collect();
            let route = if report.promoted.iter().any(|p| p.0 == tenants[t].id) {
                "tenant HNSW"
            } else {
                "exact"
            };
            solo_compare(
                args,
                (&tenancy, &scopes[t]),
                admin,
                &tenants[t],
                &own,
                &exact,
                route,
                &config,
            )
            .await?;
        }
    }
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    println!("\nload average at the end: {}", load.trim());
    db.drop_db().await;
    Ok(())
}

#[tokio::main]
async fn main() -> Result<()> {
    let args = Args::parse()?;
    let server: String = tenancy_tests::try_admin_url().await?;
    let version: String = {
        let pool = PgPool::connect(&server).await?;
        let v = sqlx::query_scalar(
            "SELECT current_setting('server_version') || ', pgvector ' || \
             (SELECT default_version FROM pg_available_extensions WHERE name = 'vector')",
        )
        .fetch_one(&pool)
        .await?;
        pool.close().await;
        v
    };
    println!(
        "bench-vector: {} chunks x {DIMS} dims, tenants {:?}, {} queries per kind per tenant on up to {} tenants, promote_at {}, ef_search {:?}, HNSW m {} / ef_construction {}, before {:?}; PostgreSQL {version}",
        args.chunks,
        args.tenant_counts,
        args.queries_per_kind,
        args.query_tenants,
        args.promote_at,
        args.ef_search,
        args.hnsw_m,
        args.ef_construction,
        args.before,
    );
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    println!("load average at start: {}", load.trim());
    for &count in &args.tenant_counts {
        run_one(&args, count).await?;
    }
    Ok(())
}
