//! The layer against what a team would write instead (issue 22, item 1): the same data, the
//! same SQL text and binds, five variants interleaved in one run.
//!
//! - **plain**: superuser, no row-level security, `BEGIN` + statement + `COMMIT`;
//! - **tenancy**: the full layer (`Tenancy::begin` + generated repository method + `commit`);
//! - **Supabase naive**: role `peer_naive`, policies of `peers.sql` calling Supabase-style
//!   helpers (`auth.uid()` over the JSON claims setting) directly, the membership as
//!   `project_id IN (SELECT .. FROM memberships WHERE user_id = auth.uid())`; the claims set in
//!   the transaction-opening query (`BEGIN; SELECT set_config('request.jwt.claims', ..)`, one
//!   round trip, as the layer does);
//! - **Supabase wrapped**: role `peer_wrapped`, the same policies with every helper call
//!   wrapped as `(SELECT helper())` (the guide's advice), claims as for naive;
//! - **PostgREST**: role `peer_wrapped`, the claims installed by a separate prepared
//!   `SELECT set_config('request.jwt.claims', $1, true)` after `BEGIN`, as PostgREST does.
//!
//! Every variant must see or change the same number of rows on every iteration, or the bench
//! fails.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use sqlx::PgPool;
use uuid::Uuid;

use tenancy_generated::{Chunk, Chunks};
use tenancy_runtime::{Tenancy, TenancyConfig};

use crate::data::{pool, BenchDb};
use crate::ops::{run_sql, Input, Op, Runner, Target, BATCH};
use crate::Rng;

/// The peer designs' roles, helpers, policies and index (applied to the bench database).
pub const PEERS_SQL: &str = include_str!("../peers.sql");

/// The operations of the peer table, in report order.
pub const OPS: [Op; 8] = [
    Op::Get,
    Op::List,
    Op::Count,
    Op::Join,
    Op::InsertBatch,
    Op::Update,
    Op::Delete,
    Op::TopK,
];

/// The compared designs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Variant {
    /// Superuser, explicit WHERE, no row-level security.
    Plain,
    /// The full tenancy layer.
    Tenancy,
    /// Supabase-style policies, helpers called directly.
    Naive,
    /// Supabase-style policies, helpers wrapped as `(SELECT helper())`.
    Wrapped,
    /// The wrapped policies, claims installed by a separate statement.
    PostgRest,
}

impl Variant {
    /// Every variant, in report order.
    pub const ALL: [Variant; 5] = [
        Variant::Plain,
        Variant::Tenancy,
        Variant::Naive,
        Variant::Wrapped,
        Variant::PostgRest,
    ];

    /// The report's name.
    pub fn name(self) -> &'static str {
        match self {
            Variant::Plain => "plain",
            Variant::Tenancy => "tenancy",
            Variant::Naive => "Supabase naive",
            Variant::Wrapped => "Supabase wrapped",
            Variant::PostgRest => "PostgREST",
        }
    }
}

/// Applies [`PEERS_SQL`] to the bench database.
pub async fn install(db: &BenchDb) -> Result<()> {
    let admin = db.admin_pool(1).await?;
    sqlx::raw_sql(PEERS_SQL)
        .execute(&admin)
        .await
        .context("installing the peer policies (peers.sql)")?;
    admin.close().await;
    Ok(())
}

/// Random 384-dimensional embeddings (seeded) for every chunk of the measured projects, so
/// the top-k search has something to rank; then VACUUM ANALYZE.
pub async fn fill_embeddings(db: &BenchDb, targets: &[Target]) -> Result<()> {
    let admin = db.admin_pool(1).await?;
    let mut conn = admin.acquire().await?;
    sqlx::query("SELECT setseed(0.22)")
        .execute(&mut *conn)
        .await?;
    for target in targets {
        sqlx::query(
            "UPDATE chunks AS c SET embedding = (SELECT array_agg(random()::real)::vector \
               FROM generate_series(1, 384) WHERE c.id IS NOT NULL) \
             WHERE tenant_id = $1 AND project_id = $2",
        )
        .bind(target.tenant)
        .bind(target.project)
        .execute(&mut *conn)
        .await
        .context("filling embeddings")?;
    }
    sqlx::raw_sql("VACUUM (ANALYZE) chunks")
        .execute(&mut *conn)
        .await?;
    drop(conn);
    admin.close().await;
    Ok(())
}

/// A seeded query vector.
fn query_vector(rng: &mut Rng) -> pgvector::Vector {
    let values: Vec<f32> = (0..384)
        .map(|_| (rng.next() % 1_000_000) as f32 / 1_000_000.0)
        .collect();
    pgvector::Vector::from(values)
}

/// The JSON claims of a target's user, as a Supabase/PostgREST JWT carries them.
fn claims(target: &Target) -> String {
    format!(
        r#"{{"sub":"{}","role":"authenticated","app_metadata":{{"tenant_id":"{}"}}}}"#,
        target.user, target.tenant
    )
}

/// The five variants' connections and the rows each inserted.
pub struct Peers {
    /// Plain and tenancy (the existing two variants).
    pub runner: Runner,
    naive: PgPool,
    wrapped: PgPool,
    postgrest: PgPool,
    inserted: [Vec<Uuid>; 3],
}

impl Peers {
    /// Opens one connection per peer variant (the peer roles log in without a password on
    /// the bench server, as `tenancy_app` does).
    pub async fn connect(db: &BenchDb, runner: Runner) -> Result<Peers> {
        let url =
            |role: &str| tenancy_tests::database_url(&db.server_url, Some(role), None, &db.name);
        Ok(Peers {
            runner,
            naive: pool(&url("peer_naive")?, 1).await?,
            wrapped: pool(&url("peer_wrapped")?, 1).await?,
            postgrest: pool(&url("peer_wrapped")?, 1).await?,
            inserted: Default::default(),
        })
    }

    /// Runs `op` as `variant`; returns the rows it saw or changed.
    pub async fn run(
        &mut self,
        variant: Variant,
        target: &Target,
        op: Op,
        input: &Input,
    ) -> Result<u64> {
        let claims = claims(target);
        let (slot, pool) = match variant {
            Variant::Plain => return self.runner.plain(target, op, input).await,
            Variant::Tenancy => return self.runner.layer(target, op, input).await,
            Variant::Naive => (0, &self.naive),
            Variant::Wrapped => (1, &self.wrapped),
            Variant::PostgRest => (2, &self.postgrest),
        };
        let mut tx = if variant == Variant::PostgRest {
            let mut tx = pool.begin().await?;
            sqlx::query("SELECT pg_catalog.set_config('request.jwt.claims', $1, true)")
                .bind(&claims)
                .execute(&mut *tx)
                .await?;
            tx
        } else {
            pool.begin_with(sqlx::AssertSqlSafe(format!(
                "BEGIN; SELECT pg_catalog.set_config('request.jwt.claims', '{claims}', true)"
            )))
            .await?
        };
        // Ordinals of their own: tenancy uses the input's, plain 500,000,000 above.
        let offset = 1_000_000_000 + 300_000_000 * slot as i32;
        let rows = run_sql(&mut tx, target, op, input, &mut self.inserted[slot], offset).await?;
        tx.commit().await?;
        Ok(rows)
    }

    /// Deletes (untimed, as the superuser) every row a variant inserted and did not delete.
    pub async fn discard_inserted(&mut self, target: &Target) -> Result<()> {
        let ids: Vec<Uuid> = self.inserted.iter_mut().flat_map(|v| v.drain(..)).collect();
        if !ids.is_empty() {
            sqlx::query(
                "DELETE FROM chunks WHERE tenant_id = $1 AND project_id = $2 AND id = ANY($3)",
            )
            .bind(target.tenant)
            .bind(target.project)
            .bind(ids)
            .execute(&self.runner.admin)
            .await?;
        }
        self.runner.discard_inserted(target).await
    }
}

/// p50, p95 and the sum of a sample.
fn stats(samples: &mut [Duration]) -> (Duration, Duration, Duration) {
    let total = samples.iter().sum();
    samples.sort();
    let at = |q: usize| samples[(samples.len() * q / 100).min(samples.len() - 1)];
    (at(50), at(95), total)
}

/// Latency of every operation of [`OPS`] on every target, the five variants interleaved
/// (their order rotating per iteration; all get the same input). `heavy_iterations` bounds
/// count and top-k. Returns the report's tables: p50 and ratio to plain, p95 ratio to plain,
/// and single-client throughput per operation.
pub async fn latency(
    peers: &mut Peers,
    targets: &[Target],
    iterations: usize,
    heavy_iterations: usize,
    rng: &mut Rng,
) -> Result<String> {
    let n_variants = Variant::ALL.len();
    let header = |what: &str| {
        let mut h = format!("| project | operation | n | {what} plain |");
        for v in &Variant::ALL[1..] {
            let _ = write!(h, " {} |", v.name());
        }
        h.push_str("\n|---|---|---:|---:|");
        h.push_str(&"---:|".repeat(n_variants - 1));
        h.push('\n');
        h
    };
    let mut p50_table = header("p50 ms (x plain):");
    let mut p95_table = header("p95 ms (x plain):");
    let mut tput_table = header("tx/s, one client (x plain):");
    let mut next_ordinal: i32 = 2_000_000;
    for target in targets {
        let mut samples: Vec<Vec<Vec<Duration>>> = vec![vec![Vec::new(); n_variants]; OPS.len()];
        // Cursors leave at least a page after them.
        let list_keys = &target.chunk_ids[..target.chunk_ids.len().saturating_sub(101).max(1)];
        for iteration in 0..=iterations {
            for (index, &op) in OPS.iter().enumerate() {
                if matches!(op, Op::Count | Op::TopK) && iteration > heavy_iterations {
                    continue;
                }
                let input = match op {
                    Op::Get => Input::Key(rng.pick(&target.chunk_ids)?),
                    Op::List | Op::Join => Input::Key(rng.pick(list_keys)?),
                    Op::Count | Op::Delete => Input::None,
                    Op::InsertBatch => {
                        next_ordinal += BATCH as i32;
                        Input::Batch(rng.pick(&target.document_ids)?, next_ordinal)
                    }
                    Op::Update => Input::Update(
                        rng.pick(&target.chunk_ids)?,
                        format!("peer content {iteration}"),
                    ),
                    Op::TopK => Input::Vector(query_vector(rng)),
                };
                let mut rows = vec![0u64; n_variants];
                for turn in 0..n_variants {
                    let slot = (turn + iteration) % n_variants;
                    let variant = Variant::ALL[slot];
                    let start = Instant::now();
                    rows[slot] = peers.run(variant, target, op, &input).await?;
                    if iteration > 0 {
                        samples[index][slot].push(start.elapsed());
                    }
                }
                if rows[0] == 0 || rows.iter().any(|&r| r != rows[0]) {
                    let seen: Vec<String> = Variant::ALL
                        .iter()
                        .zip(&rows)
                        .map(|(v, r)| format!("{} {r}", v.name()))
                        .collect();
                    bail!(
                        "{} on {}: the variants disagree: {}",
                        op.name(),
                        target.label,
                        seen.join(", ")
                    );
                }
            }
            peers.discard_inserted(target).await?;
        }
        for (index, &op) in OPS.iter().enumerate() {
            let measured: Vec<(Duration, Duration, Duration)> =
                samples[index].iter_mut().map(|s| stats(s)).collect();
            let n = samples[index][0].len();
            let row = |table: &mut String, values: Vec<f64>| {
                let _ = write!(
                    table,
                    "| {} | {} | {n} | {:.3} |",
                    target.label,
                    op.name(),
                    values[0]
                );
                for value in &values[1..] {
                    let _ = write!(table, " {value:.3} ({:.2}x) |", value / values[0]);
                }
                table.push('\n');
            };
            let ms = |d: Duration| d.as_secs_f64() * 1000.0;
            let tps = |total: Duration| n as f64 / total.as_secs_f64();
            row(&mut p50_table, measured.iter().map(|m| ms(m.0)).collect());
            row(&mut p95_table, measured.iter().map(|m| ms(m.1)).collect());
            row(&mut tput_table, measured.iter().map(|m| tps(m.2)).collect());
        }
    }
    Ok(format!(
        "p50, ms, and the ratio to plain (< 1 faster than plain):\n\n{p50_table}\n\
         p95, ms, and the ratio to plain:\n\n{p95_table}\n\
         Throughput per operation, one client (the interleaved samples: n / their total time), \
         and the ratio to plain (> 1 more than plain):\n\n{tput_table}"
    ))
}

/// The pools of one throughput measurement: `clients` connections per variant.
#[derive(Clone)]
struct Pools {
    tenancy: Tenancy,
    admin: PgPool,
    naive: PgPool,
    wrapped: PgPool,
    postgrest: PgPool,
}

/// One get by key as `variant` on `pools`; true when the row was found.
async fn get_once(pools: &Pools, variant: Variant, target: &Target, id: Uuid) -> Result<bool> {
    if variant == Variant::Tenancy {
        let mut tx = pools.tenancy.begin(&target.scope).await?;
        let row = Chunks::get(&mut tx, id).await?;
        tx.commit().await?;
        return Ok(row.is_some());
    }
    let claims = claims(target);
    let mut tx = match variant {
        Variant::Plain => pools.admin.begin().await?,
        Variant::PostgRest => {
            let mut tx = pools.postgrest.begin().await?;
            sqlx::query("SELECT pg_catalog.set_config('request.jwt.claims', $1, true)")
                .bind(&claims)
                .execute(&mut *tx)
                .await?;
            tx
        }
        _ => {
            let pool = if variant == Variant::Naive {
                &pools.naive
            } else {
                &pools.wrapped
            };
            pool.begin_with(sqlx::AssertSqlSafe(format!(
                "BEGIN; SELECT pg_catalog.set_config('request.jwt.claims', '{claims}', true)"
            )))
            .await?
        }
    };
    let row: Option<Chunk> = sqlx::query_as(Chunks::GET_IN_PROJECT_SQL)
        .bind(target.tenant)
        .bind(target.project)
        .bind(id)
        .fetch_optional(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(row.is_some())
}

/// Transactions per second of get by key for every variant at each client count: `clients`
/// tasks per slice, the variants' slices rotating, `rounds` slices of `slice` each per variant.
/// Returns the report's table (tx/s and the ratio to plain).
pub async fn throughput(
    db: &BenchDb,
    config: &TenancyConfig,
    target: &Target,
    client_counts: &[u32],
    rounds: usize,
    slice: Duration,
) -> Result<String> {
    let mut report = String::from("| clients |");
    for v in Variant::ALL {
        let _ = write!(report, " {} tx/s |", v.name());
    }
    report.push_str("\n|---:|");
    report.push_str(&"---:|".repeat(Variant::ALL.len()));
    report.push('\n');
    for &clients in client_counts {
        let url =
            |role: &str| tenancy_tests::database_url(&db.server_url, Some(role), None, &db.name);
        let pools = Pools {
            tenancy: Tenancy::with_config(db.app_pool(clients).await?, config.clone()),
            admin: db.admin_pool(clients).await?,
            naive: pool(&url("peer_naive")?, clients).await?,
            wrapped: pool(&url("peer_wrapped")?, clients).await?,
            postgrest: pool(&url("peer_wrapped")?, clients).await?,
        };
        let ids = Arc::new(target.chunk_ids.clone());
        let mut totals = [0u64; 5];
        let mut elapsed = [Duration::ZERO; 5];
        for round in 0..rounds * Variant::ALL.len() {
            let slot = (round + round / Variant::ALL.len()) % Variant::ALL.len();
            let variant = Variant::ALL[slot];
            let done = Arc::new(AtomicU64::new(0));
            let start = Instant::now();
            let deadline = start + slice;
            let mut tasks = Vec::new();
            for client in 0..clients {
                let (pools, ids, done) = (pools.clone(), Arc::clone(&ids), Arc::clone(&done));
                let target = Target {
                    label: String::new(),
                    tenant: target.tenant,
                    project: target.project,
                    user: target.user,
                    chunk_rows: 0,
                    scope: target.scope.clone(),
                    chunk_ids: Vec::new(),
                    document_ids: Vec::new(),
                };
                tasks.push(tokio::spawn(async move {
                    let mut rng = Rng(0x2f1d_c7a5_93b8_e641 ^ (u64::from(client) + 1));
                    while Instant::now() < deadline {
                        let id = rng.pick(&ids)?;
                        if !get_once(&pools, variant, &target, id).await? {
                            bail!("{}: get by key found nothing", variant.name());
                        }
                        done.fetch_add(1, Ordering::Relaxed);
                    }
                    Ok::<(), anyhow::Error>(())
                }));
            }
            for task in tasks {
                task.await??;
            }
            elapsed[slot] += start.elapsed();
            totals[slot] += done.load(Ordering::Relaxed);
        }
        let tps: Vec<f64> = (0..5)
            .map(|i| totals[i] as f64 / elapsed[i].as_secs_f64())
            .collect();
        let _ = write!(report, "| {clients} | {:.0} |", tps[0]);
        for value in &tps[1..] {
            let _ = write!(report, " {value:.0} ({:.2}x) |", value / tps[0]);
        }
        report.push('\n');
        pools.admin.close().await;
        pools.naive.close().await;
        pools.wrapped.close().await;
        pools.postgrest.close().await;
    }
    Ok(report)
}
