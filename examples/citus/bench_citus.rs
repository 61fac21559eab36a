//! The cost of isolation on Citus (BENCHMARKS.md, "Citus"): get, list, insert and update of
//! the generated repository through the full layer (signed context in the BEGIN round trip,
//! policies evaluated on the worker) against the same SQL with the explicit WHERE run by the
//! superuser (no context, no policies), interleaved in one run, plus the share of these
//! statements that Citus router-plans to one shard.
//!
//! `cargo run --release --example bench_citus [-- ITERATIONS]` (default 400 per operation and
//! side). The cluster comes from `scripts/citus-up` (or `TENANCY_CITUS_URL`).

#[path = "../../tests/citus_common/mod.rs"]
mod citus_common;

use std::time::{Duration, Instant};

use citus_common::{compile, rag_text, CitusDb};
use sqlx::Connection;
use tenancy_generated::roles::Editor;
use tenancy_generated::{DocumentPatch, Documents, NewDocument};
use tenancy_runtime::{ProjectId, TenantId, UserId};
use uuid::Uuid;

/// Documents of the measured tenant's project (and of each of the other tenants).
const ROWS: i64 = 2_000;
const OTHER_TENANTS: i64 = 15;

fn median(mut samples: Vec<Duration>) -> f64 {
    samples.sort();
    samples
        .get(samples.len() / 2)
        .map_or(0.0, |d| d.as_secs_f64() * 1e6)
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    let iterations: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(400);
    let db = CitusDb::create(&compile(&rag_text())).await;
    let tenant = Uuid::new_v4();
    let project = Uuid::new_v4();
    let user = Uuid::new_v4();
    let admin = &db.admin;
    // The measured tenant and OTHER_TENANTS others, ROWS documents each.
    for (i, t) in std::iter::once(tenant)
        .chain((0..OTHER_TENANTS).map(|_| Uuid::new_v4()))
        .enumerate()
    {
        let p = if t == tenant { project } else { Uuid::new_v4() };
        sqlx::query("INSERT INTO tenants (id, name, slug) VALUES ($1, $2, $2)")
            .bind(t)
            .bind(format!("t{i}"))
            .execute(admin)
            .await?;
        sqlx::query("INSERT INTO projects (tenant_id, id, name, slug) VALUES ($1, $2, 'p', 'p')")
            .bind(t)
            .bind(p)
            .execute(admin)
            .await?;
        sqlx::query(
            "INSERT INTO documents (tenant_id, project_id, title, content_hash, created_by) \
             SELECT $1, $2, 'doc ' || g, 's' || g, $3 FROM generate_series(1, $4) AS g",
        )
        .bind(t)
        .bind(p)
        .bind(user)
        .bind(ROWS)
        .execute(admin)
        .await?;
    }
    sqlx::query(
        "INSERT INTO user_project_roles (tenant_id, project_id, user_id, role) \
         VALUES ($1, $2, $3, 'admin')",
    )
    .bind(tenant)
    .bind(project)
    .bind(user)
    .execute(admin)
    .await?;
    let ids: Vec<Uuid> =
        sqlx::query_scalar("SELECT id FROM documents WHERE tenant_id = $1 ORDER BY id")
            .bind(tenant)
            .fetch_all(admin)
            .await?;

    let tenancy = db.tenancy();
    tenancy.check().await?;
    let ctx = tenancy
        .authorize(UserId::new(user), TenantId::new(tenant))
        .await?;
    let scope = ctx.project(ProjectId::new(project))?.require::<Editor>()?;
    // The superuser side: one connection, explicit WHERE, no context.
    let mut plain = sqlx::PgConnection::connect_with(&admin.connect_options()).await?;

    let ops = ["get", "list", "insert", "update"];
    let mut layer: Vec<Vec<Duration>> = vec![Vec::new(); ops.len()];
    let mut by_hand: Vec<Vec<Duration>> = vec![Vec::new(); ops.len()];
    for i in 0..iterations {
        let id = ids[i * 7919 % ids.len()];
        for (op, name) in ops.iter().enumerate() {
            // Full layer: runtime transaction (signed context in BEGIN) + repository + commit.
            let started = Instant::now();
            let mut tx = tenancy.begin(&scope).await?;
            match *name {
                "get" => {
                    Documents::get(&mut tx, id).await?;
                }
                "list" => {
                    Documents::list(&mut tx, &Default::default(), Default::default()).await?;
                }
                "insert" => {
                    let hash = format!("l{i}");
                    Documents::insert(&mut tx, NewDocument::new("x".to_owned(), hash)).await?;
                }
                _ => {
                    let patch = DocumentPatch {
                        title: Some(format!("u{i}")),
                        ..Default::default()
                    };
                    Documents::update(&mut tx, id, patch).await?;
                }
            }
            tx.commit().await?;
            layer[op].push(started.elapsed());

            // By hand: the same SQL shape with the explicit WHERE, as the superuser.
            let started = Instant::now();
            let mut tx = plain.begin().await?;
            match *name {
                "get" => {
                    sqlx::query(
                        "SELECT * FROM documents WHERE tenant_id = $1 AND project_id = $2 AND id = $3",
                    )
                    .bind(tenant)
                    .bind(project)
                    .bind(id)
                    .fetch_optional(&mut *tx)
                    .await?;
                }
                "list" => {
                    sqlx::query(
                        "SELECT * FROM documents WHERE tenant_id = $1 AND project_id = ANY($2) \
                         ORDER BY project_id, id LIMIT 100",
                    )
                    .bind(tenant)
                    .bind(vec![project])
                    .fetch_all(&mut *tx)
                    .await?;
                }
                "insert" => {
                    sqlx::query(
                        "INSERT INTO documents (tenant_id, project_id, title, content_hash, created_by) \
                         VALUES ($1, $2, 'x', $3, $4) RETURNING *",
                    )
                    .bind(tenant)
                    .bind(project)
                    .bind(format!("h{i}"))
                    .bind(user)
                    .fetch_one(&mut *tx)
                    .await?;
                }
                _ => {
                    sqlx::query(
                        "UPDATE documents SET title = $4, updated_at = now() \
                         WHERE tenant_id = $1 AND project_id = $2 AND id = $3 RETURNING *",
                    )
                    .bind(tenant)
                    .bind(project)
                    .bind(id)
                    .bind(format!("v{i}"))
                    .fetch_optional(&mut *tx)
                    .await?;
                }
            }
            tx.commit().await?;
            by_hand[op].push(started.elapsed());
        }
    }

    // Router-plan share of the four repository statements.
    let mut router = 0;
    for (n, sql) in [
        Documents::GET_SQL,
        Documents::LIST_SQL,
        Documents::INSERT_SQL,
        Documents::UPDATE_SQL,
    ]
    .into_iter()
    .enumerate()
    {
        let mut tx = plain.begin().await?;
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!("PREPARE s{n} AS {sql}")))
            .execute(&mut *tx)
            .await?;
        let types: Vec<String> = sqlx::query_scalar(
            "SELECT unnest(parameter_types)::text FROM pg_prepared_statements WHERE name = $1",
        )
        .bind(format!("s{n}"))
        .fetch_all(&mut *tx)
        .await?;
        let args: Vec<String> = types
            .iter()
            .map(|t| match t.as_str() {
                "uuid" => format!("'{tenant}'"),
                "uuid[]" => format!("ARRAY['{project}']::uuid[]"),
                "boolean" => "false".to_owned(),
                "integer" | "bigint" => "10".to_owned(),
                other => format!("NULL::{other}"),
            })
            .collect();
        let plan: Vec<String> = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
            "EXPLAIN (COSTS OFF) EXECUTE s{n}({})",
            args.join(", ")
        )))
        .fetch_all(&mut *tx)
        .await?;
        if plan.iter().any(|l| l.trim() == "Task Count: 1") {
            router += 1;
        }
        tx.rollback().await?;
    }

    println!(
        "Citus 13.2 (coordinator + 2 workers, PostgreSQL 15, 127.0.0.1), {} shards per table, \
         {} tenants x {ROWS} documents, {iterations} iterations per side, interleaved, medians:",
        citus_common::SHARD_COUNT,
        OTHER_TENANTS + 1
    );
    println!("| operation | full layer (µs) | superuser, explicit WHERE (µs) | ratio |");
    println!("|---|---|---|---|");
    for (op, name) in ops.iter().enumerate() {
        let (a, b) = (median(layer[op].clone()), median(by_hand[op].clone()));
        println!("| {name} | {a:.0} | {b:.0} | {:.2}x |", a / b);
    }
    println!("router-planned (single task): {router} of 4 repository statements");
    plain.close().await?;
    db.drop_db().await;
    Ok(())
}
