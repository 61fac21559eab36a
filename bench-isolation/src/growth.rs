//! Cost as the work grows (issue 22, item 4): the layer's ratio to plain while the number of
//! tenants grows (same total rows) and while one tenant grows (the others unchanged).
//!
//! Every shape gets a fresh database from the generated migrations, filled by
//! [`crate::data::fill`]; then get by key, a page after a cursor, a count of the project and an
//! update by key run through the full layer and as plain SQL, interleaved (the two variants'
//! order alternating per iteration, both on the same input). The database is dropped before
//! the next shape, so every shape starts from the same server state.

use std::fmt::Write as _;
use std::time::{Duration, Instant};

use anyhow::{bail, Result};
use tenancy_runtime::Tenancy;

use crate::data::{self, BenchDb, Contract, DataShape};
use crate::ops::{Input, Op, Runner};
use crate::{bench_config, percentiles, target, Rng};

/// The operations measured per shape, in report order.
const OPS: [Op; 4] = [Op::Get, Op::List, Op::Count, Op::Update];

/// One database of the growth table.
struct Shape {
    /// "tenants grow" or "one tenant grows".
    axis: &'static str,
    /// The dataset.
    data: DataShape,
    /// The measured project: (tenant index, project index).
    measured: (u32, u32),
}

/// Chunks per document in every growth shape.
const CHUNKS_PER_DOCUMENT: u32 = 10;

/// The shapes of a full run (`smoke`: two tiny ones per axis).
fn shapes(smoke: bool) -> Vec<Shape> {
    let (tenant_counts, total, sizes, others): (&[u32], u32, &[u32], u32) = if smoke {
        (&[2, 4], 240, &[100, 400], 4)
    } else {
        (
            &[10, 100, 1_000],
            200_000,
            &[1_000, 10_000, 100_000, 1_000_000],
            100,
        )
    };
    let mut shapes = Vec::new();
    for &tenants in tenant_counts {
        // Every project the same size: the total shared by tenants x 3 projects.
        let per_project = total / (tenants * DataShape::PROJECTS_PER_TENANT * CHUNKS_PER_DOCUMENT);
        let documents = per_project.max(1);
        shapes.push(Shape {
            axis: "tenants grow",
            data: DataShape {
                tenants,
                big_project_documents: [documents; 3],
                small_project_documents: documents,
                chunks_per_document: CHUNKS_PER_DOCUMENT,
            },
            measured: (1, 0),
        });
    }
    for &size in sizes {
        // Tenant 0's first project grows; every other tenant keeps about 1,000 chunks.
        shapes.push(Shape {
            axis: "one tenant grows",
            data: DataShape {
                tenants: others,
                big_project_documents: [size / CHUNKS_PER_DOCUMENT, 0, 0],
                small_project_documents: if smoke { 2 } else { 33 },
                chunks_per_document: CHUNKS_PER_DOCUMENT,
            },
            measured: (0, 0),
        });
    }
    shapes
}

/// The growth section: one row per shape and operation.
pub async fn run(server: &str, smoke: bool, iterations: usize, heavy: usize) -> Result<String> {
    let mut report = String::from(
        "| axis | tenants | measured project chunks | table chunks | operation | n | plain p50 ms | layer p50 ms | **p50 ratio** | plain p95 ms | layer p95 ms | p95 ratio |\n\
         |---|---:|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|\n",
    );
    let mut rng = Rng(0x3c6e_f372_fe94_f82b);
    for shape in shapes(smoke) {
        let name = format!("tenancy_bench_growth_{}", std::process::id());
        eprintln!(
            "bench: growth, {} ({} tenants, {} chunks)",
            shape.axis,
            shape.data.tenants,
            shape.data.chunks()
        );
        let db = BenchDb::create(server, &name, Contract::V3).await?;
        data::fill(&db.admin_url, &shape.data).await?;
        let admin = db.admin_pool(1).await?;
        let tenancy = Tenancy::with_config(db.app_pool(1).await?, bench_config()?);
        tenancy.check().await?;
        let (t, p) = shape.measured;
        let target = target("growth", &tenancy, &admin, t, p).await?;
        let table_chunks: i64 = sqlx::query_scalar("SELECT count(*) FROM chunks")
            .fetch_one(&admin)
            .await?;
        let mut runner = Runner {
            tenancy: tenancy.clone(),
            admin: admin.clone(),
            layer_inserted: Vec::new(),
            plain_inserted: Vec::new(),
        };
        let mut plain: Vec<Vec<Duration>> = vec![Vec::new(); OPS.len()];
        let mut layer: Vec<Vec<Duration>> = vec![Vec::new(); OPS.len()];
        let list_keys = &target.chunk_ids[..target.chunk_ids.len().saturating_sub(101).max(1)];
        // One warm-up iteration (prepares every statement on both connections).
        for iteration in 0..=iterations {
            for (index, &op) in OPS.iter().enumerate() {
                if op == Op::Count && iteration > heavy {
                    continue;
                }
                let input = match op {
                    Op::Get => Input::Key(rng.pick(&target.chunk_ids)?),
                    Op::List => Input::Key(rng.pick(list_keys)?),
                    Op::Update => Input::Update(
                        rng.pick(&target.chunk_ids)?,
                        format!("growth content {iteration}"),
                    ),
                    _ => Input::None,
                };
                let mut rows = [0u64; 2];
                for turn in 0..2 {
                    let layer_turn = (turn + iteration) % 2 == 0;
                    let start = Instant::now();
                    if layer_turn {
                        rows[0] = runner.layer(&target, op, &input).await?;
                    } else {
                        rows[1] = runner.plain(&target, op, &input).await?;
                    }
                    if iteration > 0 {
                        let samples = if layer_turn { &mut layer } else { &mut plain };
                        samples[index].push(start.elapsed());
                    }
                }
                if rows[0] == 0 || rows[0] != rows[1] {
                    bail!(
                        "growth ({} tenants, {} chunks): {} saw {} rows through the layer, {} plain",
                        shape.data.tenants,
                        target.chunk_rows,
                        op.name(),
                        rows[0],
                        rows[1]
                    );
                }
            }
        }
        for (index, &op) in OPS.iter().enumerate() {
            let (plain50, plain95) = percentiles(&mut plain[index]);
            let (layer50, layer95) = percentiles(&mut layer[index]);
            let ms = |d: Duration| d.as_secs_f64() * 1000.0;
            let _ = writeln!(
                report,
                "| {} | {} | {} | {table_chunks} | {} | {} | {:.3} | {:.3} | **{:.2}x** | {:.3} | {:.3} | {:.2}x |",
                shape.axis,
                shape.data.tenants,
                target.chunk_rows,
                op.name(),
                plain[index].len(),
                ms(plain50),
                ms(layer50),
                ms(layer50) / ms(plain50),
                ms(plain95),
                ms(layer95),
                ms(layer95) / ms(plain95),
            );
        }
        drop(runner);
        drop(tenancy);
        admin.close().await;
        db.drop_db().await?;
    }
    Ok(report)
}
