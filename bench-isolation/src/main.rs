//! The cost of isolation, side by side (issue 8; method and results in BENCHMARKS.md).
//!
//! Full run (about 10-15 minutes on 2 cores, most of it data generation and one cold
//! `cargo build`): `cargo run --release -p bench-isolation -- --out target/bench-isolation.md`.
//! `--smoke`: tiny data and few iterations (for CI; numbers meaningless). `--no-cargo-build`:
//! skip timing `cargo build` of the 200-table crate. `--peers-only`: the peer section (issue
//! 22). `--growth-only`: the growth table (issue 22, item 4) on databases of its own.
//! `--tenant-wide-only`: what a tenant-wide role costs as the tenant's projects grow. The server is `TENANCY_TEST_DATABASE_URL`
//! or the one `scripts/pg-up` starts; the bench (re)creates its own database there.

mod data;
mod generator;
mod growth;
mod ops;
mod peers;
mod plans;
mod proxy;
mod statistics;
mod tenant_wide;

use std::fmt::Write as _;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use sqlx::{Connection as _, PgPool};
use tenancy_generated::roles::Editor;
use tenancy_generated::{Chunk, Chunks};
use tenancy_runtime::{ProjectId, Tenancy, TenantId, UserId};
use uuid::Uuid;

use crate::data::{bench_key, seeded_id, BenchDb, Contract, DataShape};
use crate::ops::{by_hand, Input, Op, Runner, Target, BATCH};

/// The runtime configuration of every `Tenancy` in the bench: the generated one with the
/// bench key set explicitly (not read from `TENANCY_CONTEXT_KEY`), and a token lifetime of an
/// hour so a statement from `Tenancy::begin_statement` can be re-sent for a whole section
/// (the runtime's own `begin` mints a fresh token every time, as in production).
fn bench_config() -> Result<tenancy_runtime::TenancyConfig> {
    let mut config = tenancy_generated::config().with_context_key(bench_key()?);
    config.token_lifetime = Duration::from_secs(3600);
    Ok(config)
}

/// What a run does; `--smoke` shrinks everything.
struct Settings {
    smoke: bool,
    shape: DataShape,
    iterations: usize,
    count_iterations: usize,
    throughput_rounds: usize,
    throughput_slice: Duration,
    clients: Vec<u32>,
    cargo_build: bool,
    /// `--statistics-only`: the data, the plans and the statistics section only.
    statistics_only: bool,
    /// `--peers-only`: the data and the peer section (issue 22) only.
    peers_only: bool,
    /// `--growth-only`: only the growth section (issue 22, item 4), its own databases.
    growth_only: bool,
    /// `--tenant-wide-only`: only the tenant-wide role section, its own databases.
    tenant_wide_only: bool,
    out: Option<PathBuf>,
}

impl Settings {
    fn from_args() -> Result<Settings> {
        let mut smoke = false;
        let mut cargo_build = true;
        let mut statistics_only = false;
        let mut peers_only = false;
        let mut growth_only = false;
        let mut tenant_wide_only = false;
        let mut out = None;
        let mut args = std::env::args().skip(1);
        while let Some(arg) = args.next() {
            match arg.as_str() {
                "--smoke" => smoke = true,
                "--no-cargo-build" => cargo_build = false,
                "--statistics-only" => statistics_only = true,
                "--peers-only" => peers_only = true,
                "--growth-only" => growth_only = true,
                "--tenant-wide-only" => tenant_wide_only = true,
                "--out" => out = Some(PathBuf::from(args.next().context("--out needs a path")?)),
                other => bail!(
                    "unknown argument {other:?} (expected --smoke, --no-cargo-build, --statistics-only, --peers-only, --growth-only, --tenant-wide-only, --out FILE)"
                ),
            }
        }
        Ok(if smoke {
            Settings {
                smoke,
                shape: DataShape {
                    tenants: 4,
                    big_project_documents: [12, 6, 3],
                    small_project_documents: 2,
                    chunks_per_document: 5,
                },
                iterations: 6,
                count_iterations: 4,
                throughput_rounds: 1,
                throughput_slice: Duration::from_millis(150),
                clients: vec![1, 4],
                cargo_build: false,
                statistics_only,
                peers_only,
                growth_only,
                tenant_wide_only,
                out,
            }
        } else {
            Settings {
                smoke,
                // 30% in the big tenant: 15,000 of 50,046 documents, 20 chunks each.
                shape: DataShape {
                    tenants: 100,
                    big_project_documents: [7_500, 4_500, 3_000],
                    small_project_documents: 118,
                    chunks_per_document: 20,
                },
                iterations: 400,
                count_iterations: 100,
                throughput_rounds: 6,
                throughput_slice: Duration::from_secs(2),
                clients: vec![1, 4, 16],
                cargo_build,
                statistics_only,
                peers_only,
                growth_only,
                tenant_wide_only,
                out,
            }
        })
    }
}

/// A deterministic xorshift generator (fixed seed: every run picks the same keys).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn pick<T: Copy>(&mut self, items: &[T]) -> Result<T> {
        if items.is_empty() {
            bail!("nothing to pick from");
        }
        Ok(items[(self.next() % items.len() as u64) as usize])
    }
}

/// p50 and p95 of a sample.
fn percentiles(samples: &mut [Duration]) -> (Duration, Duration) {
    samples.sort();
    let at = |q: usize| samples[(samples.len() * q / 100).min(samples.len() - 1)];
    (at(50), at(95))
}

fn ms(d: Duration) -> String {
    format!("{:.3}", d.as_secs_f64() * 1000.0)
}

fn ratio(a: Duration, b: Duration) -> f64 {
    a.as_secs_f64() / b.as_secs_f64()
}

/// Builds a measured target: the scope through `authorize` (as the application role) and the
/// project's keys (as the superuser).
async fn target(
    label: &str,
    tenancy: &Tenancy,
    admin: &PgPool,
    tenant_index: u32,
    project_index: u32,
) -> Result<Target> {
    let tenant = seeded_id(admin, &format!("tenant-{tenant_index}")).await?;
    let project = seeded_id(admin, &format!("project-{tenant_index}-{project_index}")).await?;
    let user = seeded_id(admin, &format!("user-{tenant_index}")).await?;
    let ctx = tenancy
        .authorize(UserId::new(user), TenantId::new(tenant))
        .await?;
    let scope = ctx.project(ProjectId::new(project))?.require::<Editor>()?;
    let chunk_ids: Vec<Uuid> = sqlx::query_scalar(
        "SELECT id FROM chunks WHERE tenant_id = $1 AND project_id = $2 ORDER BY id",
    )
    .bind(tenant)
    .bind(project)
    .fetch_all(admin)
    .await?;
    let document_ids: Vec<Uuid> = sqlx::query_scalar(
        "SELECT id FROM documents WHERE tenant_id = $1 AND project_id = $2 ORDER BY id",
    )
    .bind(tenant)
    .bind(project)
    .fetch_all(admin)
    .await?;
    Ok(Target {
        label: label.to_owned(),
        tenant,
        project,
        user,
        chunk_rows: chunk_ids.len() as i64,
        scope,
        chunk_ids,
        document_ids,
    })
}

/// Latency of every hot operation on every target, the two variants interleaved (their order
/// alternates per iteration; both get the same input). Returns the report's table.
async fn latency(
    settings: &Settings,
    runner: &mut Runner,
    targets: &[Target],
    rng: &mut Rng,
) -> Result<String> {
    let mut report = String::from(
        "| project | operation | n | layer p50 ms | plain p50 ms | **p50 ratio** | layer p95 ms | plain p95 ms | **p95 ratio** |\n\
         |---|---|---:|---:|---:|---:|---:|---:|---:|\n",
    );
    let mut next_ordinal: i32 = 1_000_000;
    for target in targets {
        let mut layer: Vec<Vec<Duration>> = vec![Vec::new(); Op::ALL.len()];
        let mut plain: Vec<Vec<Duration>> = vec![Vec::new(); Op::ALL.len()];
        // One warm-up iteration (prepares every statement on both connections) + measured ones.
        for iteration in 0..=settings.iterations {
            for (index, &op) in Op::ALL.iter().enumerate() {
                if op == Op::Count && iteration > settings.count_iterations {
                    continue;
                }
                let input = match op {
                    Op::Get | Op::List | Op::Join => Input::Key(rng.pick(&target.chunk_ids)?),
                    Op::Count | Op::Delete | Op::TopK => Input::None,
                    Op::InsertBatch => {
                        next_ordinal += BATCH as i32;
                        Input::Batch(rng.pick(&target.document_ids)?, next_ordinal)
                    }
                    Op::Update => Input::Update(
                        rng.pick(&target.chunk_ids)?,
                        format!("updated content {iteration}"),
                    ),
                };
                let layer_first = iteration % 2 == 0;
                let mut rows = [0u64; 2];
                for turn in 0..2 {
                    let run_layer = (turn == 0) == layer_first;
                    let start = Instant::now();
                    let seen = if run_layer {
                        runner.layer(target, op, &input).await?
                    } else {
                        runner.plain(target, op, &input).await?
                    };
                    let elapsed = start.elapsed();
                    rows[usize::from(!run_layer)] = seen;
                    if iteration > 0 {
                        if run_layer {
                            layer[index].push(elapsed);
                        } else {
                            plain[index].push(elapsed);
                        }
                    }
                }
                if rows[0] != rows[1] || rows[0] == 0 {
                    bail!(
                        "{} on {}: the layer saw {} rows, the plain variant {}",
                        op.name(),
                        target.label,
                        rows[0],
                        rows[1]
                    );
                }
            }
            runner.discard_inserted(target).await?;
        }
        for (index, &op) in Op::ALL.iter().enumerate() {
            let n = layer[index].len();
            let (l50, l95) = percentiles(&mut layer[index]);
            let (p50, p95) = percentiles(&mut plain[index]);
            let _ = writeln!(
                report,
                "| {} | {} | {n} | {} | {} | **{:.2}x** | {} | {} | **{:.2}x** |",
                target.label,
                op.name(),
                ms(l50),
                ms(p50),
                ratio(l50, p50),
                ms(l95),
                ms(p95),
                ratio(l95, p95),
            );
        }
    }
    Ok(report)
}

/// Transactions per second of `clients` concurrent tasks, scoped vs plain (get by key), in
/// alternating time slices. Returns (scoped tps, plain tps).
async fn throughput(
    settings: &Settings,
    db: &BenchDb,
    target: &Target,
    clients: u32,
) -> Result<(f64, f64)> {
    let tenancy = Tenancy::with_config(db.app_pool(clients).await?, bench_config()?);
    let admin = db.admin_pool(clients).await?;
    let ids = Arc::new(target.chunk_ids.clone());
    let mut totals = [0u64; 2];
    let mut elapsed = [Duration::ZERO; 2];
    for round in 0..settings.throughput_rounds * 2 {
        let scoped = round % 2 == 0;
        let done = Arc::new(AtomicU64::new(0));
        let start = Instant::now();
        let deadline = start + settings.throughput_slice;
        let mut tasks = Vec::new();
        for client in 0..clients {
            let (tenancy, admin, ids, done) = (
                tenancy.clone(),
                admin.clone(),
                Arc::clone(&ids),
                Arc::clone(&done),
            );
            let scope = target.scope.clone();
            let (tenant, project) = (target.tenant, target.project);
            tasks.push(tokio::spawn(async move {
                let mut rng = Rng(0x9e37_79b9_7f4a_7c15 ^ (u64::from(client) + 1));
                while Instant::now() < deadline {
                    let id = rng.pick(&ids)?;
                    let found = if scoped {
                        let mut tx = tenancy.begin(&scope).await?;
                        let row = Chunks::get(&mut tx, id).await?;
                        tx.commit().await?;
                        row.is_some()
                    } else {
                        let mut tx = admin.begin().await?;
                        let row: Option<Chunk> = sqlx::query_as(Chunks::GET_IN_PROJECT_SQL)
                            .bind(tenant)
                            .bind(project)
                            .bind(id)
                            .fetch_optional(&mut *tx)
                            .await?;
                        tx.commit().await?;
                        row.is_some()
                    };
                    if !found {
                        bail!("get by key found nothing");
                    }
                    done.fetch_add(1, Ordering::Relaxed);
                }
                Ok::<(), anyhow::Error>(())
            }));
        }
        for task in tasks {
            task.await??;
        }
        let slot = usize::from(!scoped);
        elapsed[slot] += start.elapsed();
        totals[slot] += done.load(Ordering::Relaxed);
    }
    Ok((
        totals[0] as f64 / elapsed[0].as_secs_f64(),
        totals[1] as f64 / elapsed[1].as_secs_f64(),
    ))
}

/// Where a scoped get-by-key transaction's extra time goes: six variants interleaved, each
/// `begin; Chunks::GET_IN_PROJECT_SQL; commit` on its own pooled connection: plain (superuser, `BEGIN`),
/// plain plus the context statement (superuser, so no row-level security: the cost of the
/// `SET LOCAL`s), the full layer (application role), and plain and full layer with
/// `plan_cache_mode = force_generic_plan` set in the same transaction-opening query (what
/// re-planning the statement on every execution costs: `project_id = ANY($2)` makes the
/// generic plan look dearer, so PostgreSQL keeps planning it per execution), and the
/// application role sending the same context statement itself (the full layer minus this is
/// the runtime's client-side cost: the task that opens the transaction, the span, the context
/// string). Returns the report's table.
async fn breakdown(settings: &Settings, db: &BenchDb, target: &Target) -> Result<String> {
    let tenancy = Tenancy::with_config(db.app_pool(1).await?, bench_config()?);
    let admin = db.admin_pool(1).await?;
    let admin_ctx = db.admin_pool(1).await?;
    let generic = db.app_pool(1).await?;
    let context = tenancy.begin_statement(&target.scope)?;
    let generic_context = format!("{context}; SET LOCAL plan_cache_mode = force_generic_plan");
    let iterations = if settings.smoke { 10 } else { 2_000 };
    let plain_generic = db.admin_pool(1).await?;
    let app_direct = db.app_pool(1).await?;
    let mut samples: [Vec<Duration>; 6] = Default::default();
    let mut rng = Rng(0x51ed_270b_27a0_12f5);
    for iteration in 0..=iterations {
        let id = rng.pick(&target.chunk_ids)?;
        for turn in 0..6 {
            let variant = (turn + iteration) % 6;
            let start = Instant::now();
            let found = match variant {
                0 | 1 | 3 | 5 => {
                    let mut tx = match variant {
                        0 => admin.begin().await?,
                        1 => {
                            admin_ctx
                                .begin_with(sqlx::AssertSqlSafe(context.clone()))
                                .await?
                        }
                        5 => {
                            app_direct
                                .begin_with(sqlx::AssertSqlSafe(context.clone()))
                                .await?
                        }
                        _ => {
                            plain_generic
                                .begin_with("BEGIN; SET LOCAL plan_cache_mode = force_generic_plan")
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
                    row.is_some()
                }
                2 => {
                    let mut tx = tenancy.begin(&target.scope).await?;
                    let row = Chunks::get(&mut tx, id).await?;
                    tx.commit().await?;
                    row.is_some()
                }
                _ => {
                    let mut tx = generic
                        .begin_with(sqlx::AssertSqlSafe(generic_context.clone()))
                        .await?;
                    let row: Option<Chunk> = sqlx::query_as(Chunks::GET_IN_PROJECT_SQL)
                        .bind(target.tenant)
                        .bind(target.project)
                        .bind(id)
                        .fetch_optional(&mut *tx)
                        .await?;
                    tx.commit().await?;
                    row.is_some()
                }
            };
            let elapsed = start.elapsed();
            if !found {
                bail!("breakdown: variant {variant} did not find the row");
            }
            if iteration > 0 {
                samples[variant].push(elapsed);
            }
        }
    }
    let labels = [
        "plain: superuser, `BEGIN` + GET_IN_PROJECT_SQL + `COMMIT`",
        "+ context: superuser, the context statement (`BEGIN; /*pad*/ SELECT tenancy.install_context('<token>')`, one token re-sent) + GET_IN_PROJECT_SQL",
        "+ row-level security: the full layer (`Tenancy::begin` + `Chunks::get`)",
        "plain with `plan_cache_mode = force_generic_plan` (no re-planning)",
        "full layer with `plan_cache_mode = force_generic_plan` (no re-planning)",
        "application role, the context statement sent with sqlx's `begin_with` in the caller's task + GET_IN_PROJECT_SQL (row-level security without the runtime's client-side work)",
    ];
    let (base50, base95) = percentiles(&mut samples[0].clone());
    let mut report =
        String::from("| variant | p50 ms | p95 ms | p50 vs plain |\n|---|---:|---:|---:|\n");
    for (label, sample) in labels.iter().zip(samples.iter_mut()) {
        let (p50, p95) = percentiles(sample);
        let _ = writeln!(
            report,
            "| {label} | {} | {} | **{:.2}x** |",
            ms(p50),
            ms(p95),
            ratio(p50, base50)
        );
    }
    let _ = base95;
    tenancy_close(tenancy, admin).await;
    admin_ctx.close().await;
    generic.close().await;
    plain_generic.close().await;
    app_direct.close().await;
    Ok(report)
}

/// The statement contract 2 sent for `target`'s scope: `BEGIN; SET LOCAL tenancy.context =
/// '<claims>'` (the claims are the same text contract 3 signs).
fn v2_statement(tenancy: &Tenancy, target: &Target) -> Result<String> {
    Ok(format!(
        "BEGIN; SET LOCAL tenancy.context = '{}'",
        tenancy.context_claims(&target.scope)?
    ))
}

/// Contract 3 against contract 2, get and update by key on every target, three variants
/// interleaved (order rotating per iteration, same key for all three): **v2**, the contract-2
/// database (0001 + 0002 only, the same data) through the application role, opened with the
/// v2 statement sent by hand; **v3 runtime**, the contract-3 database through `Tenancy::begin`
/// and the generated repository method (what an application runs); **v3 by hand**, the
/// contract-3 database with the statement `Tenancy::begin_statement` returns (one token,
/// minted once) sent by hand exactly like v2 (so v3 by hand / v2 is the database side alone).
/// Returns the report's table.
async fn contract_comparison(
    settings: &Settings,
    db: &BenchDb,
    db_v2: &BenchDb,
    targets: &[Target],
) -> Result<String> {
    let tenancy = Tenancy::with_config(db.app_pool(1).await?, bench_config()?);
    tenancy.check().await?;
    let hand_v3 = db.app_pool(1).await?;
    let hand_v2 = db_v2.app_pool(1).await?;
    let mut runner = Runner {
        tenancy: tenancy.clone(),
        admin: db.admin_pool(1).await?,
        layer_inserted: Vec::new(),
        plain_inserted: Vec::new(),
    };
    let iterations = if settings.smoke { 10 } else { 2_000 };
    let mut rng = Rng(0x0dd5_ee11_c0de_2bad);
    let mut report = String::from(
        "| project | operation | n | v2 p50 ms | v3 runtime p50 ms | v3 by hand p50 ms | **p50 v3 runtime / v2** | p50 v3 by hand / v2 | v2 p95 ms | v3 runtime p95 ms | v3 by hand p95 ms | **p95 v3 runtime / v2** | p95 v3 by hand / v2 |\n\
         |---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n",
    );
    let mut ratios = Vec::new();
    for target in targets {
        let v2 = v2_statement(&tenancy, target)?;
        let v3 = tenancy.begin_statement(&target.scope)?;
        for op in [Op::Get, Op::Update] {
            let mut samples: [Vec<Duration>; 3] = Default::default();
            for iteration in 0..=iterations {
                let input = match op {
                    Op::Get => Input::Key(rng.pick(&target.chunk_ids)?),
                    _ => Input::Update(
                        rng.pick(&target.chunk_ids)?,
                        format!("contract comparison {iteration}"),
                    ),
                };
                let mut rows = [0u64; 3];
                for turn in 0..3 {
                    let variant = (turn + iteration) % 3;
                    let start = Instant::now();
                    rows[variant] = match variant {
                        0 => by_hand(&hand_v2, &v2, target, op, &input).await?,
                        1 => runner.layer(target, op, &input).await?,
                        _ => by_hand(&hand_v3, &v3, target, op, &input).await?,
                    };
                    if iteration > 0 {
                        samples[variant].push(start.elapsed());
                    }
                }
                if rows != [1, 1, 1] {
                    bail!(
                        "contract comparison, {} on {}: rows seen by v2 / v3 runtime / v3 by hand: {rows:?}",
                        op.name(),
                        target.label
                    );
                }
            }
            let [(v2_50, v2_95), (rt_50, rt_95), (hand_50, hand_95)] =
                samples.map(|mut sample| percentiles(&mut sample));
            let _ = writeln!(
                report,
                "| {} | {} | {iterations} | {} | {} | {} | **{:.3}x** | {:.3}x | {} | {} | {} | **{:.3}x** | {:.3}x |",
                target.label,
                op.name(),
                ms(v2_50),
                ms(rt_50),
                ms(hand_50),
                ratio(rt_50, v2_50),
                ratio(hand_50, v2_50),
                ms(v2_95),
                ms(rt_95),
                ms(hand_95),
                ratio(rt_95, v2_95),
                ratio(hand_95, v2_95),
            );
            ratios.push(ratio(rt_50, v2_50));
        }
    }
    let worst = ratios.iter().copied().fold(0.0_f64, f64::max);
    let _ = writeln!(
        report,
        "\nHighest p50 ratio v3 runtime / v2: **{worst:.3}x** (target <= 1.03x for get by key)."
    );
    runner.admin.close().await;
    hand_v3.close().await;
    hand_v2.close().await;
    Ok(report)
}

/// Milliseconds of one simple query on `conn` (its result is ignored).
async fn time_query(conn: &mut sqlx::PgConnection, sql: &str) -> Result<Duration> {
    let start = Instant::now();
    sqlx::raw_sql(sqlx::AssertSqlSafe(sql.to_owned()))
        .execute(&mut *conn)
        .await?;
    Ok(start.elapsed())
}

/// The median of `samples`.
fn median(samples: &mut [Duration]) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

/// What the verifier costs on the server, in microseconds, without the rest of a statement:
/// - per call, inside one transaction with a context: `SELECT count(<expr>) FROM
///   generate_series(1, N)` minus the same with `count(1)`, divided by N, for the seal check
///   (`tenancy.context_claims()`), the raw setting, and the helpers as an InitPlan evaluates
///   them (inlined: v3 calls `context_claims()`, v2 reads the setting) on both databases;
/// - per transaction: a `DO` block looping N times over `install_context('<token>');
///   COMMIT` (contract 3) or `set_config('tenancy.context', '<claims>', true); COMMIT`
///   (contract 2's `SET LOCAL`), minus the loop with only `COMMIT`, divided by N.
///
/// Each figure is the median of several interleaved rounds. Returns the report's text.
async fn verifier_cost(
    settings: &Settings,
    db: &BenchDb,
    db_v2: &BenchDb,
    target: &Target,
) -> Result<String> {
    let tenancy = Tenancy::with_config(db.app_pool(1).await?, bench_config()?);
    let claims = tenancy.context_claims(&target.scope)?;
    let v3 = tenancy.begin_statement(&target.scope)?;
    let v2 = v2_statement(&tenancy, target)?;
    let token = v3
        .rsplit_once("install_context('")
        .and_then(|(_, rest)| rest.strip_suffix("')"))
        .context("no token in the begin statement")?
        .to_owned();
    let (calls, loops, rounds) = if settings.smoke {
        (200, 50, 3)
    } else {
        (20_000, 5_000, 7)
    };
    let per_call = |expr: &str| {
        format!("SELECT pg_catalog.count({expr}) FROM pg_catalog.generate_series(1, {calls})")
    };
    // (label, contract-3 database?, expression)
    let calls_measured: [(&str, bool, &str); 7] = [
        ("baseline `count(1)`", true, "1"),
        (
            "v3: `pg_catalog.current_setting('tenancy.context', true)` (reads the seal, no check)",
            true,
            "pg_catalog.current_setting('tenancy.context', true)",
        ),
        (
            "v3: `tenancy.context_claims()` (seal check)",
            true,
            "tenancy.context_claims()",
        ),
        (
            "v3: `tenancy.current_tenant_id()` (one InitPlan of the tenant boundary)",
            true,
            "tenancy.current_tenant_id()",
        ),
        ("baseline `count(1)` (v2 database)", false, "1"),
        (
            "v2: `pg_catalog.current_setting('tenancy.context', true)`",
            false,
            "pg_catalog.current_setting('tenancy.context', true)",
        ),
        (
            "v2: `tenancy.current_tenant_id()` (inlined over the setting)",
            false,
            "tenancy.current_tenant_id()",
        ),
    ];
    let mut conn_v3 = sqlx::PgConnection::connect(&db.app_url).await?;
    let mut conn_v2 = sqlx::PgConnection::connect(&db_v2.app_url).await?;
    sqlx::raw_sql(sqlx::AssertSqlSafe(v3.clone()))
        .execute(&mut conn_v3)
        .await?;
    sqlx::raw_sql(sqlx::AssertSqlSafe(v2.clone()))
        .execute(&mut conn_v2)
        .await?;
    let mut call_samples: Vec<Vec<Duration>> = vec![Vec::new(); calls_measured.len()];
    for _round in 0..=rounds {
        for (index, (_, on_v3, expr)) in calls_measured.iter().enumerate() {
            let conn = if *on_v3 { &mut conn_v3 } else { &mut conn_v2 };
            call_samples[index].push(time_query(conn, &per_call(expr)).await?);
        }
    }
    sqlx::raw_sql("COMMIT").execute(&mut conn_v3).await?;
    sqlx::raw_sql("COMMIT").execute(&mut conn_v2).await?;
    let medians: Vec<Duration> = call_samples
        .iter_mut()
        .map(|samples| median(&mut samples[1..]))
        .collect();
    let us_per_call = |index: usize, base: usize| {
        (medians[index].as_secs_f64() - medians[base].as_secs_f64()) * 1e6 / calls as f64
    };
    let mut report = format!(
        "Per call, in one transaction carrying the large project's context (application role; \
         `SELECT count(<expr>) FROM generate_series(1, {calls})` minus `count(1)`, / {calls}; \
         median of {rounds} rounds):\n\n| expression | µs per call |\n|---|---:|\n"
    );
    for (index, (label, on_v3, _)) in calls_measured.iter().enumerate() {
        if index == 0 || index == 4 {
            continue;
        }
        let base = if *on_v3 { 0 } else { 4 };
        let _ = writeln!(report, "| {label} | {:.2} |", us_per_call(index, base));
    }
    let helper_v3 = us_per_call(3, 0);
    let helper_v2 = us_per_call(6, 4);
    let per_init_plan = helper_v3 - helper_v2;

    // Per transaction: the install, in a DO block that commits after every iteration.
    let looped = |body: &str| {
        format!("DO $bench$ BEGIN FOR i IN 1..{loops} LOOP {body} COMMIT; END LOOP; END $bench$")
    };
    // (label, contract-3 database?, statement)
    let installs: [(&str, bool, String); 4] = [
        ("v3 database: `COMMIT` only", true, looped("")),
        (
            "v3: `PERFORM tenancy.install_context('<token>')` (verify the token, write the seal)",
            true,
            looped(&format!("PERFORM tenancy.install_context('{token}');")),
        ),
        ("v2 database: `COMMIT` only", false, looped("")),
        (
            "v2: `PERFORM set_config('tenancy.context', '<claims>', true)` (what `SET LOCAL` does)",
            false,
            looped(&format!(
                "PERFORM pg_catalog.set_config('tenancy.context', '{claims}', true);"
            )),
        ),
    ];
    let mut install_samples: Vec<Vec<Duration>> = vec![Vec::new(); installs.len()];
    for _round in 0..=rounds {
        for (index, (_, on_v3, sql)) in installs.iter().enumerate() {
            let conn = if *on_v3 { &mut conn_v3 } else { &mut conn_v2 };
            install_samples[index].push(time_query(conn, sql).await?);
        }
    }
    let install_medians: Vec<Duration> = install_samples
        .iter_mut()
        .map(|samples| median(&mut samples[1..]))
        .collect();
    let us_per_tx = |index: usize, base: usize| {
        (install_medians[index].as_secs_f64() - install_medians[base].as_secs_f64()) * 1e6
            / loops as f64
    };
    let install_v3 = us_per_tx(1, 0);
    let install_v2 = us_per_tx(3, 2);
    let _ = write!(
        report,
        "\nPer transaction (`DO` block of {loops} iterations, each ending with `COMMIT`, minus \
         the loop with only `COMMIT`, / {loops}; median of {rounds} rounds):\n\n\
         | statement | µs per transaction |\n|---|---:|\n\
         | {} | {install_v3:.2} |\n| {} | {install_v2:.2} |\n",
        installs[1].0, installs[3].0
    );
    let _ = write!(
        report,
        "\nAdded by contract 3, from these: **{:.2} µs per transaction** (install) + **{per_init_plan:.2} µs per InitPlan** \
         (helper v3 - helper v2); a get by key has 2 InitPlans: **{:.2} µs per get**; an update by key 6: \
         **{:.2} µs per update** (server side only; the 1 KB statement's transfer and parsing and the \
         client's signing are in the latency comparison).\n",
        install_v3 - install_v2,
        install_v3 - install_v2 + 2.0 * per_init_plan,
        install_v3 - install_v2 + 6.0 * per_init_plan,
    );
    conn_v3.close().await?;
    conn_v2.close().await?;
    Ok(report)
}

/// Round trips per transaction (get by key), counted by a proxy: scoped vs plain, and
/// `authorize` for reference. Returns the report's table and the number the scoped one adds.
async fn round_trips(db: &BenchDb, db_v2: &BenchDb, target: &Target) -> Result<(String, i64)> {
    let parsed = url::Url::parse(&db.admin_url)?;
    let upstream = format!(
        "{}:{}",
        parsed.host_str().unwrap_or("127.0.0.1"),
        parsed.port().unwrap_or(5432)
    );
    let through = |url: &str, port: u16| -> Result<String> {
        let mut url = url::Url::parse(url)?;
        url.set_host(Some("127.0.0.1"))?;
        url.set_port(Some(port))
            .map_err(|()| anyhow::anyhow!("cannot set a port"))?;
        url.query_pairs_mut().append_pair("sslmode", "disable");
        Ok(url.to_string())
    };
    let (app_port, app_counts) = proxy::start(upstream.clone()).await?;
    let (admin_port, admin_counts) = proxy::start(upstream).await?;
    // Without sqlx's ping on acquire (one extra Sync round trip per transaction, the same for
    // both variants), so the counts are the transaction's own.
    let unpinged = |url: String| async move {
        sqlx::postgres::PgPoolOptions::new()
            .max_connections(1)
            .test_before_acquire(false)
            .connect(&url)
            .await
    };
    let tenancy = Tenancy::with_config(
        unpinged(through(&db.app_url, app_port)?).await?,
        bench_config()?,
    );
    let admin = unpinged(through(&db.admin_url, admin_port)?).await?;
    let app_v2 = unpinged(through(&db_v2.app_url, app_port)?).await?;
    let v2 = v2_statement(&tenancy, target)?;
    let id = target.chunk_ids[0];
    const N: u64 = 20;
    let mut rows = Vec::new();
    for phase in 0..2 {
        let before = (app_counts.snapshot(), admin_counts.snapshot());
        for _ in 0..N {
            let mut tx = tenancy.begin(&target.scope).await?;
            Chunks::get(&mut tx, id).await?;
            tx.commit().await?;
        }
        let scoped = app_counts.snapshot() - before.0;
        for _ in 0..N {
            let mut tx = admin.begin().await?;
            let _: Option<Chunk> = sqlx::query_as(Chunks::GET_IN_PROJECT_SQL)
                .bind(target.tenant)
                .bind(target.project)
                .bind(id)
                .fetch_optional(&mut *tx)
                .await?;
            tx.commit().await?;
        }
        let plain = admin_counts.snapshot() - before.1;
        let before_auth = app_counts.snapshot();
        for _ in 0..N {
            let user = seeded_id(&admin, "user-0").await?;
            tenancy
                .authorize(UserId::new(user), TenantId::new(target.tenant))
                .await?;
        }
        let authorize = app_counts.snapshot() - before_auth;
        let before_v2 = app_counts.snapshot();
        for _ in 0..N {
            by_hand(&app_v2, &v2, target, Op::Get, &Input::Key(id)).await?;
        }
        let scoped_v2 = app_counts.snapshot() - before_v2;
        if phase == 1 {
            rows = vec![
                (
                    "scoped, contract 3: Tenancy::begin (`BEGIN; /*pad*/ SELECT install_context(token)`) + Chunks::get + commit",
                    scoped,
                ),
                ("plain: BEGIN + the same SELECT + COMMIT", plain),
                (
                    "Tenancy::authorize (per request context, for reference)",
                    authorize,
                ),
                (
                    "scoped, contract 2 (for reference): `BEGIN; SET LOCAL tenancy.context` + the same SELECT + commit, contract-2 database",
                    scoped_v2,
                ),
            ];
        }
    }
    let mut report = String::from(
        "| transaction | Query (Q) | Sync (S) | ReadyForQuery (Z) = round trips |\n|---|---:|---:|---:|\n",
    );
    for (label, counts) in &rows {
        let _ = writeln!(
            report,
            "| {label} | {:.1} | {:.1} | **{:.1}** |",
            counts.queries as f64 / N as f64,
            counts.syncs as f64 / N as f64,
            counts.ready as f64 / N as f64,
        );
    }
    let added = (rows[0].1.ready as i64 - rows[1].1.ready as i64) / N as i64;
    Ok((report, added))
}

async fn run(settings: Settings) -> Result<String> {
    let repo = tenancy_tests::repo_root();
    let mut report = String::new();
    let server = tenancy_tests::try_admin_url().await?;
    if settings.growth_only {
        return growth_only(&settings, &server).await;
    }
    if settings.tenant_wide_only {
        return Ok(format!(
            "## A tenant-wide role as the tenant's projects grow\n\nMode: {}. {}",
            if settings.smoke {
                "SMOKE (numbers meaningless)"
            } else {
                "full"
            },
            tenant_wide::run(&server, settings.smoke).await?
        ));
    }
    let db_name = if settings.smoke {
        format!("tenancy_bench_smoke_{}", std::process::id())
    } else {
        "tenancy_bench".to_owned()
    };
    eprintln!("bench: creating {db_name} on {server}");
    let db = BenchDb::create(&server, &db_name, Contract::V3).await?;
    let started = Instant::now();
    data::fill(&db.admin_url, &settings.shape).await?;
    let fill_time = started.elapsed();
    if settings.peers_only {
        return peers_only(&settings, db, fill_time).await;
    }
    eprintln!("bench: copying {db_name} to {db_name}_stats, with planner statistics");
    let db_stats = statistics::copy_with_statistics(&db).await?;
    let db_v2 = if settings.statistics_only {
        None
    } else {
        let db_v2_name = format!("{db_name}_v2");
        eprintln!("bench: creating {db_v2_name} (contract 2: 0001 + 0002 only, the same data)");
        let db_v2 = BenchDb::create(&server, &db_v2_name, Contract::V2).await?;
        data::fill(&db_v2.admin_url, &settings.shape).await?;
        Some(db_v2)
    };
    let server_version: String = {
        let admin = db.admin_pool(1).await?;
        sqlx::query_scalar("SELECT version()")
            .fetch_one(&admin)
            .await?
    };
    let _ = writeln!(
        report,
        "Dataset: {} tenants x 3 projects, {} documents, {} chunks (tenant 0 holds {:.0}%), \
         embeddings NULL; generated server-side in {:.1} s (setseed 0.42, md5 ids).\n\
         Server: {server_version}.\nMode: {}.\n",
        settings.shape.tenants,
        settings.shape.documents(),
        settings.shape.chunks(),
        100.0 * f64::from(settings.shape.big_project_documents.iter().sum::<u32>())
            / settings.shape.documents() as f64,
        fill_time.as_secs_f64(),
        if settings.smoke {
            "SMOKE (numbers meaningless)"
        } else {
            "full"
        },
    );

    let tenancy = Tenancy::with_config(db.app_pool(1).await?, bench_config()?);
    // Fails unless the database speaks contract 3 and accepts the bench key.
    tenancy.check().await?;
    let admin = db.admin_pool(1).await?;
    let targets = vec![
        target("large (tenant 0, project 0)", &tenancy, &admin, 0, 0).await?,
        target("small (tenant 1, project 0)", &tenancy, &admin, 1, 0).await?,
    ];
    for t in &targets {
        let _ = writeln!(
            report,
            "- {}: {} chunks, {} documents",
            t.label,
            t.chunk_rows,
            t.document_ids.len()
        );
    }

    eprintln!("bench: plans");
    let _ = writeln!(
        report,
        "\n## Plans (EXPLAIN ANALYZE as tenancy_app, large project)\n"
    );
    report.push_str(&plans::explain_all(&tenancy, &admin, &targets[0]).await?);

    eprintln!("bench: statistics");
    let mut rng = Rng(0x2545_f491_4f6c_dd1d);
    {
        let mut after = statistics::runner(&db, bench_config()?).await?;
        let mut before = statistics::runner(&db_stats, bench_config()?).await?;
        let _ = writeln!(
            report,
            "\n## Planner statistics: none on tenant-owned tables (after) vs statistics (before)\n\n\
             Scans of the hot statements, large project:\n"
        );
        report.push_str(
            &statistics::index_choices(&after.tenancy, &before.tenancy, &targets[0]).await?,
        );
        let _ = writeln!(report, "\nScans, small project:\n");
        report.push_str(
            &statistics::index_choices(&after.tenancy, &before.tenancy, &targets[1]).await?,
        );
        let _ = writeln!(
            report,
            "\nLatency, full layer on both, interleaved ({} iterations, count {}):\n",
            settings.iterations, settings.count_iterations
        );
        report.push_str(
            &statistics::latency(&settings, &mut after, &mut before, &targets, &mut rng).await?,
        );
        after.admin.close().await;
        before.admin.close().await;
    }
    let Some(db_v2) = db_v2 else {
        tenancy_close(tenancy, admin).await;
        if settings.smoke {
            db.drop_db().await?;
        }
        db_stats.drop_db().await?;
        return Ok(report);
    };

    eprintln!("bench: latency");
    let mut runner = Runner {
        tenancy: tenancy.clone(),
        admin: admin.clone(),
        layer_inserted: Vec::new(),
        plain_inserted: Vec::new(),
    };
    // Its own generator, seeded as before the statistics section existed: the same keys.
    let mut rng = Rng(0x2545_f491_4f6c_dd1d);
    let _ = writeln!(
        report,
        "\n## Latency: full layer vs plain (interleaved, {} iterations, count {})\n",
        settings.iterations, settings.count_iterations
    );
    report.push_str(&latency(&settings, &mut runner, &targets, &mut rng).await?);

    eprintln!("bench: peers");
    report.push_str(&peer_section(&settings, &db, &runner, &targets).await?);

    eprintln!("bench: contract 3 vs contract 2");
    let _ = writeln!(
        report,
        "\n## Signed context (contract 3) vs contract 2 (get and update by key, interleaved)\n"
    );
    report.push_str(&contract_comparison(&settings, &db, &db_v2, &targets).await?);

    eprintln!("bench: verifier cost");
    let _ = writeln!(
        report,
        "\n## What the verifier costs on the server (large project's context)\n"
    );
    report.push_str(&verifier_cost(&settings, &db, &db_v2, &targets[0]).await?);

    eprintln!("bench: overhead breakdown");
    let _ = writeln!(
        report,
        "\n## Where the scoped transaction's time goes (get by key, large project, interleaved)\n"
    );
    report.push_str(&breakdown(&settings, &db, &targets[0]).await?);

    eprintln!("bench: round trips");
    let (trips, added) = round_trips(&db, &db_v2, &targets[0]).await?;
    let _ = writeln!(report, "\n## Round trips per transaction (counting proxy, pool without ping-on-acquire)\n\n{trips}\nRound trips a scoped transaction adds: **{added}**");

    eprintln!("bench: throughput");
    let _ = writeln!(
        report,
        "\n## Throughput: scoped vs plain transactions (get by key, {} x {:.1} s slices each, alternating)\n\n\
         | clients | scoped tx/s | plain tx/s | **ratio** |\n|---:|---:|---:|---:|",
        settings.throughput_rounds,
        settings.throughput_slice.as_secs_f64()
    );
    for &clients in &settings.clients {
        let (scoped, plain) = throughput(&settings, &db, &targets[0], clients).await?;
        let _ = writeln!(
            report,
            "| {clients} | {scoped:.0} | {plain:.0} | **{:.3}x** |",
            scoped / plain
        );
    }

    eprintln!("bench: generator");
    let work = std::env::temp_dir().join("tenancy-bench-generator");
    std::fs::create_dir_all(&work)?;
    let synthetic = work.join("synthetic-policies");
    std::fs::create_dir_all(&synthetic)?;
    std::fs::write(
        synthetic.join("model.tenancy"),
        generator::synthetic_model(200),
    )?;
    let runs = if settings.smoke { 1 } else { 5 };
    let real = generator::time_generate(
        &repo.join("examples/rag/policies"),
        &work.join("out-real"),
        runs,
    )?;
    let synthetic_times = generator::time_generate(&synthetic, &work.join("out-200"), runs)?;
    let _ = writeln!(
        report,
        "\n## Generator\n\n| model | tables | in-process generate ms (median of {runs}) | parse+validate | emit | write | `tenancy generate` process ms |\n|---|---:|---:|---:|---:|---:|---:|"
    );
    let cli = generator::cli_binary(&repo);
    for (label, policies, times) in [
        (
            "policies/rag.tenancy",
            repo.join("examples/rag/policies"),
            real,
        ),
        ("synthetic", synthetic.clone(), synthetic_times),
    ] {
        let process = match &cli {
            Some(binary) => {
                let t = generator::time_cli(binary, &policies, &work.join("out-cli"), runs)?;
                format!("{} ({})", ms(t), binary.display())
            }
            None => "not built".to_owned(),
        };
        let _ = writeln!(
            report,
            "| {label} | {} | {} | {} | {} | {} | {process} |",
            times.tables,
            ms(times.total()),
            ms(times.compile),
            ms(times.emit),
            ms(times.write)
        );
    }
    if settings.cargo_build {
        eprintln!("bench: cargo build of the 200-table crate (slow)");
        // A failed build is reported, not fatal: the rest of the run is still worth keeping.
        match generator::time_cargo_build(&repo, &work.join("out-200"), &work) {
            Ok(times) => {
                let _ = writeln!(
                    report,
                    "\n`cargo build` (dev profile) of the generated 200-table repository crate ({} lines): \
                     first build in its own target dir {:.1} s (includes dependencies unless cached by a previous run); \
                     the crate alone (touch lib.rs, rebuild) {:.1} s.",
                    times.lines,
                    times.first.as_secs_f64(),
                    times.crate_alone.as_secs_f64()
                );
            }
            Err(err) => {
                let _ = writeln!(
                    report,
                    "\n`cargo build` of the generated 200-table repository crate FAILED: {err:#}"
                );
            }
        }
    }

    tenancy_close(tenancy, admin).await;
    if settings.smoke {
        db.drop_db().await?;
        db_v2.drop_db().await?;
    }
    db_stats.drop_db().await?;
    Ok(report)
}

async fn tenancy_close(tenancy: Tenancy, admin: PgPool) {
    drop(tenancy);
    admin.close().await;
}

/// The peer section (issue 22): the peer policies installed, embeddings filled for the
/// measured projects, then five variants interleaved (`peers.rs`).
async fn peer_section(
    settings: &Settings,
    db: &BenchDb,
    runner: &Runner,
    targets: &[Target],
) -> Result<String> {
    peers::install(db).await?;
    let started = Instant::now();
    peers::fill_embeddings(db, targets).await?;
    let fill = started.elapsed();
    let runner = Runner {
        tenancy: runner.tenancy.clone(),
        admin: runner.admin.clone(),
        layer_inserted: Vec::new(),
        plain_inserted: Vec::new(),
    };
    let mut peers = peers::Peers::connect(db, runner).await?;
    let heavy = (settings.count_iterations / 2).max(2);
    let mut rng = Rng(0x6a09_e667_f3bc_c908);
    let mut report = format!(
        "\n## Against the peers (issue 22): five variants interleaved, same SQL, same data \
         ({} iterations, count and top-k {heavy}; embeddings of the measured projects filled in \
         {:.1} s)\n\n",
        settings.iterations,
        fill.as_secs_f64()
    );
    report.push_str(
        &peers::latency(&mut peers, targets, settings.iterations, heavy, &mut rng).await?,
    );
    let _ = write!(
        report,
        "\nThroughput, get by key, large project ({} slices of {:.1} s per variant and client \
         count, the variants' slices rotating; pool size = clients):\n\n",
        settings.throughput_rounds,
        settings.throughput_slice.as_secs_f64()
    );
    report.push_str(
        &peers::throughput(
            db,
            &bench_config()?,
            &targets[0],
            &settings.clients,
            settings.throughput_rounds,
            settings.throughput_slice,
        )
        .await?,
    );
    Ok(report)
}

/// `--growth-only`: the growth table (issue 22, item 4) on databases of its own.
async fn growth_only(settings: &Settings, server: &str) -> Result<String> {
    let (iterations, heavy) = if settings.smoke { (4, 2) } else { (300, 30) };
    let admin = data::pool(server, 1).await?;
    let server_version: String = sqlx::query_scalar("SELECT version()")
        .fetch_one(&admin)
        .await?;
    admin.close().await;
    let mut report = format!(
        "## Cost as the work grows (issue 22, item 4)\n\nServer: {server_version}.\nMode: {}. \
         {iterations} iterations (count {heavy}), layer and plain interleaved; a fresh database \
         per shape; 10 chunks per document, 3 projects per tenant; the measured project is \
         tenant 1's first (tenants grow) or tenant 0's first (one tenant grows).\n\n",
        if settings.smoke {
            "SMOKE (numbers meaningless)"
        } else {
            "full"
        },
    );
    report.push_str(&growth::run(server, settings.smoke, iterations, heavy).await?);
    Ok(report)
}

/// `--peers-only`: the dataset, then only the peer section.
async fn peers_only(settings: &Settings, db: BenchDb, fill_time: Duration) -> Result<String> {
    let admin = db.admin_pool(1).await?;
    let server_version: String = sqlx::query_scalar("SELECT version()")
        .fetch_one(&admin)
        .await?;
    let mut report = format!(
        "Dataset: {} tenants x 3 projects, {} documents, {} chunks; generated server-side in \
         {:.1} s (setseed 0.42, md5 ids).\nServer: {server_version}.\nMode: {}, peers only.\n\n",
        settings.shape.tenants,
        settings.shape.documents(),
        settings.shape.chunks(),
        fill_time.as_secs_f64(),
        if settings.smoke {
            "SMOKE (numbers meaningless)"
        } else {
            "full"
        },
    );
    let tenancy = Tenancy::with_config(db.app_pool(1).await?, bench_config()?);
    tenancy.check().await?;
    let targets = vec![
        target("large (tenant 0, project 0)", &tenancy, &admin, 0, 0).await?,
        target("small (tenant 1, project 0)", &tenancy, &admin, 1, 0).await?,
    ];
    for t in &targets {
        let _ = writeln!(
            report,
            "- {}: {} chunks, {} documents",
            t.label,
            t.chunk_rows,
            t.document_ids.len()
        );
    }
    let runner = Runner {
        tenancy: tenancy.clone(),
        admin: admin.clone(),
        layer_inserted: Vec::new(),
        plain_inserted: Vec::new(),
    };
    report.push_str(&peer_section(settings, &db, &runner, &targets).await?);
    tenancy_close(tenancy, admin).await;
    if settings.smoke {
        db.drop_db().await?;
    }
    Ok(report)
}

#[tokio::main]
async fn main() -> Result<()> {
    let settings = Settings::from_args()?;
    let out = settings.out.clone();
    let report = run(settings).await?;
    print!("{report}");
    if let Some(path) = out {
        std::fs::write(&path, &report).with_context(|| format!("writing {}", path.display()))?;
        eprintln!("bench: report written to {}", path.display());
    }
    Ok(())
}
