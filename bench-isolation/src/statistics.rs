//! What removing the planner statistics of the tenant-owned tables costs (issue 18, item 3):
//! the bench database (every migration, so no statistics on those tables) against a copy of it
//! whose statistics are back (targets reset to the default, `VACUUM ANALYZE`), which is what a
//! database migrated before `*_core_statistics.sql` has. Same data, same keys, the full layer
//! (`Tenancy::begin` + generated repository + commit) on both, interleaved.

use std::fmt::Write as _;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use sqlx::{Connection as _, PgConnection, PgPool};
use tenancy_generated::Chunks;
use tenancy_runtime::Tenancy;

use tenancy_tests::{database_url, APP_ROLE};

use crate::data::BenchDb;
use crate::ops::{Input, Op, Runner, Target, BATCH, JOIN_SQL};
use crate::{ms, percentiles, ratio, Rng, Settings};

/// Tables whose statistics the copy gets back (the generated tenant-owned tables).
const TABLES: &str = "tenants, projects, user_project_roles, documents, chunks, queries, \
                      responses, assertions, tenancy.audit_log";

/// Copies `db` to `<name>_stats` (template copy: same files, same data) and gives the copy its
/// statistics back. Nobody may be connected to `db` meanwhile.
pub async fn copy_with_statistics(db: &BenchDb) -> Result<BenchDb> {
    let name = format!("{}_stats", db.name);
    let mut conn = PgConnection::connect(&db.server_url).await?;
    for statement in [
        format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"),
        format!("CREATE DATABASE \"{name}\" TEMPLATE \"{}\"", db.name),
    ] {
        sqlx::raw_sql(sqlx::AssertSqlSafe(statement))
            .execute(&mut conn)
            .await
            .with_context(|| format!("copying {} to {name}", db.name))?;
    }
    conn.close().await?;
    let copy = BenchDb {
        admin_url: database_url(&db.server_url, None, None, &name)?,
        app_url: database_url(&db.server_url, Some(APP_ROLE), None, &name)?,
        server_url: db.server_url.clone(),
        name,
    };
    let mut conn = PgConnection::connect(&copy.admin_url).await?;
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
        "REVOKE TEMPORARY ON DATABASE \"{name}\" FROM PUBLIC;
         DO $$ DECLARE col record; BEGIN
           FOR col IN SELECT a.attrelid::regclass AS rel, a.attname FROM pg_catalog.pg_attribute a
             WHERE a.attrelid = ANY ('{{{TABLES}}}'::regclass[]) AND a.attnum > 0
               AND NOT a.attisdropped AND a.attstattarget = 0
           LOOP
             EXECUTE format('ALTER TABLE %s ALTER COLUMN %I SET STATISTICS -1', col.rel, col.attname);
           END LOOP;
         END $$;",
        name = copy.name
    )))
    .execute(&mut conn)
    .await
    .context("giving the copy its statistics back")?;
    // VACUUM cannot run in the transaction block a multi-statement query forms.
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!("VACUUM (ANALYZE) {TABLES}")))
        .execute(&mut conn)
        .await
        .context("VACUUM ANALYZE of the copy")?;
    let stored: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM pg_catalog.pg_statistic WHERE starelid = 'chunks'::regclass",
    )
    .fetch_one(&mut conn)
    .await?;
    if stored == 0 {
        bail!("the copy has no statistics on chunks after ANALYZE");
    }
    conn.close().await?;
    Ok(copy)
}

/// The index each hot statement's plan scans, per database (`EXPLAIN (COSTS OFF)` as the app
/// role inside a scoped transaction, custom plans).
pub async fn index_choices(after: &Tenancy, before: &Tenancy, target: &Target) -> Result<String> {
    let key = target.chunk_ids[target.chunk_ids.len() / 2];
    let mut out = String::from(
        "| statement | scans, no statistics (after) | scans, with statistics (before) |\n|---|---|---|\n",
    );
    for (name, sql) in [
        (
            "get by key (GET_IN_PROJECT_SQL)",
            Chunks::GET_IN_PROJECT_SQL,
        ),
        ("batch insert (INSERT_MANY_SQL)", Chunks::INSERT_MANY_SQL),
        ("list a page (LIST_AFTER_SQL)", Chunks::LIST_AFTER_SQL),
        ("count (COUNT_SQL)", Chunks::COUNT_SQL),
        ("join chunks+documents", JOIN_SQL),
        ("update (UPDATE_SQL)", Chunks::UPDATE_SQL),
        ("delete (DELETE_SQL)", Chunks::DELETE_SQL),
    ] {
        let mut cells = Vec::new();
        for tenancy in [after, before] {
            cells.push(scans(tenancy, target, sql, key).await?);
        }
        let _ = writeln!(out, "| {name} | {} | {} |", cells[0], cells[1]);
    }
    Ok(out)
}

/// The scan nodes (`Index Scan using x on t`, ...) of `sql`'s plan (EXPLAIN ANALYZE as the
/// app role in a scoped transaction, rolled back), checked like every bench plan (InitPlans,
/// no helper per row), joined by `; `.
async fn scans(tenancy: &Tenancy, target: &Target, sql: &str, key: uuid::Uuid) -> Result<String> {
    let plan = crate::plans::explain_one(tenancy, target, sql, key, target.document_ids[0]).await?;
    crate::plans::check_plan(&plan)?;
    let scans: Vec<String> = plan
        .lines()
        .map(|l| l.trim().trim_start_matches("-> ").to_owned())
        .filter(|l| l.contains(" Scan") && l.contains(" on "))
        .map(|l| match l.find(" (actual") {
            Some(at) => l[..at].to_owned(),
            None => l,
        })
        .collect();
    Ok(format!("`{}`", scans.join("; ")))
}

/// Latency of every hot operation, the layer on the database without statistics (after) and
/// on the copy with statistics (before), interleaved, order alternating. Returns the table.
pub async fn latency(
    settings: &Settings,
    after: &mut Runner,
    before: &mut Runner,
    targets: &[Target],
    rng: &mut Rng,
) -> Result<String> {
    let mut report = String::from(
        "| project | operation | n | after p50 ms | before p50 ms | **p50 after/before** | after p95 ms | before p95 ms | **p95 after/before** |\n\
         |---|---|---:|---:|---:|---:|---:|---:|---:|\n",
    );
    let mut next_ordinal: i32 = 2_000_000;
    for target in targets {
        let mut samples: [Vec<Vec<Duration>>; 2] = [
            vec![Vec::new(); Op::ALL.len()],
            vec![Vec::new(); Op::ALL.len()],
        ];
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
                let after_first = iteration % 2 == 0;
                let mut rows = [0u64; 2];
                for turn in 0..2 {
                    let which = usize::from((turn == 0) != after_first);
                    let start = Instant::now();
                    let seen = if which == 0 {
                        after.layer(target, op, &input).await?
                    } else {
                        before.layer(target, op, &input).await?
                    };
                    let elapsed = start.elapsed();
                    rows[which] = seen;
                    if iteration > 0 {
                        samples[which][index].push(elapsed);
                    }
                }
                if rows[0] != rows[1] || rows[0] == 0 {
                    bail!(
                        "{} on {}: {} rows without statistics, {} with",
                        op.name(),
                        target.label,
                        rows[0],
                        rows[1]
                    );
                }
            }
            after.discard_inserted(target).await?;
            before.discard_inserted(target).await?;
        }
        let [mut a, mut b] = samples;
        for (index, &op) in Op::ALL.iter().enumerate() {
            let n = a[index].len();
            let (a50, a95) = percentiles(&mut a[index]);
            let (b50, b95) = percentiles(&mut b[index]);
            let _ = writeln!(
                report,
                "| {} | {} | {n} | {} | {} | **{:.2}x** | {} | {} | **{:.2}x** |",
                target.label,
                op.name(),
                ms(a50),
                ms(b50),
                ratio(a50, b50),
                ms(a95),
                ms(b95),
                ratio(a95, b95),
            );
        }
    }
    Ok(report)
}

/// A runner over `db` (its own app and admin pools of one connection).
pub async fn runner(db: &BenchDb, config: tenancy_runtime::TenancyConfig) -> Result<Runner> {
    let admin: PgPool = db.admin_pool(1).await?;
    Ok(Runner {
        tenancy: Tenancy::with_config(db.app_pool(1).await?, config),
        admin,
        layer_inserted: Vec::new(),
        plain_inserted: Vec::new(),
    })
}
