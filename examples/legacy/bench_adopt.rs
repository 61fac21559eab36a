//! Adoption benchmark (not a timed test): adopt a legacy database of 1,000,000 chunks while a
//! second connection keeps inserting and reading, and report how long each phase took and how
//! long the concurrent statements waited on locks. The numbers go into BENCHMARKS.md
//! ("Adopting a legacy schema").
//!
//! ```text
//! cargo run --release --example bench_adopt -- [--documents 20000] [--chunks-per-document 50]
//!     [--queries 20000] [--no-embeddings] [--database-url URL] [--keep]
//! ```
//!
//! The server is `--database-url` (a superuser URL), else `TENANCY_TEST_DATABASE_URL`, else the
//! test harness's throwaway PostgreSQL 18 + pgvector (`scripts/pg-up`). The database
//! `tenancy_bench_adopt` is dropped and re-created, and dropped at the end unless `--keep`.
//!
//! Method:
//! 1. `examples/legacy/schema.sql` + `generate.sql` load the legacy data; `VACUUM ANALYZE`.
//! 2. `0001_tenancy_core.sql` (the tenancy core) is applied before the clock starts.
//! 3. The workload connection starts: it alternates one INSERT of a chunk and one read of
//!    ten chunks of a document, each its own autocommit statement, as fast as it can. Until
//!    the expand phase commits it writes like the legacy application (no scope columns; the
//!    transition default fills them); from then on like the new version (explicit scope).
//!    Every statement is timed. Five seconds of it run before the migration (the baseline).
//! 4. A sampler connection polls `pg_locks` joined with `pg_stat_activity` every 2 ms for a
//!    lock the workload's backend is waiting for, and records how long each wait was seen.
//! 5. The adoption files 0002..0010 run one after the other (the way they say: one
//!    transaction each, or statement by statement for the no-transaction ones), each timed.
//! 6. After two more seconds of workload: counts, NULL scopes and `tenancy audit`.
#![allow(clippy::print_stdout)]

#[path = "runner.rs"]
mod runner;

use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use runner::{apply_file, file_name, legacy_model, load_legacy, migrations, LegacySize};
use sqlx::{Connection, PgConnection};
use uuid::Uuid;

const DATABASE: &str = "tenancy_bench_adopt";

/// Command-line options.
struct Options {
    size: LegacySize,
    database_url: Option<String>,
    keep: bool,
}

fn options() -> Result<Options> {
    let mut size = LegacySize {
        documents: 20_000,
        chunks_per_document: 50,
        queries: 20_000,
        assertions_per_response: 3,
        embeddings: true,
    };
    let mut database_url = None;
    let mut keep = false;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut number = |name: &str| -> Result<u32> {
            args.next()
                .with_context(|| format!("{name} needs a value"))?
                .parse()
                .with_context(|| format!("{name} needs a number"))
        };
        match arg.as_str() {
            "--documents" => size.documents = number("--documents")?,
            "--chunks-per-document" => size.chunks_per_document = number("--chunks-per-document")?,
            "--queries" => size.queries = number("--queries")?,
            "--no-embeddings" => size.embeddings = false,
            "--keep" => keep = true,
            "--database-url" => database_url = args.next(),
            other => bail!("unknown option {other}"),
        }
    }
    Ok(Options {
        size,
        database_url,
        keep,
    })
}

/// One statement of the workload.
#[derive(Clone, Copy)]
struct Timed {
    started: Instant,
    took: Duration,
    insert: bool,
    ok: bool,
}

/// A wait of the workload's backend (for a lock, or for I/O, WAL, ...) as seen by the sampler.
#[derive(Clone)]
struct Wait {
    first_seen: Instant,
    last_seen: Instant,
    /// A heavyweight lock (`wait_event_type = 'Lock'`), as opposed to I/O, LWLocks, ...
    lock: bool,
    what: String,
}

impl Wait {
    fn seen_for(&self) -> Duration {
        self.last_seen - self.first_seen
    }
}

/// What the workload shares with the driver.
struct Shared {
    stop: AtomicBool,
    /// 0: legacy statements; 1: statements that name the default scope.
    mode: AtomicU8,
    scope: Mutex<Option<(Uuid, Uuid)>>,
    errors: Mutex<Vec<String>>,
}

async fn workload(
    mut conn: PgConnection,
    shared: Arc<Shared>,
    documents: u32,
    embedding: Option<String>,
) -> Vec<Timed> {
    let mut out = Vec::new();
    let mut i: u64 = 0;
    while !shared.stop.load(Ordering::Relaxed) {
        i += 1;
        let document = (i % u64::from(documents)) as i64 + 1;
        let ordinal = 1_000_000 + i as i64;
        let scope = if shared.mode.load(Ordering::Relaxed) == 1 {
            *shared.scope.lock().unwrap_or_else(|e| e.into_inner())
        } else {
            None
        };
        let started = Instant::now();
        let result = match scope {
            None => sqlx::query(
                "INSERT INTO chunks (document_id, ordinal, content, token_count, embedding) \
                 VALUES (md5('document' || $1)::uuid, $2, 'inserted during the adoption', 5, $3::vector)",
            )
            .bind(document)
            .bind(ordinal as i32)
            .bind(embedding.as_deref())
            .execute(&mut conn)
            .await
            .map(|_| ()),
            Some((tenant, project)) => sqlx::query(
                "INSERT INTO chunks (tenant_id, project_id, document_id, ordinal, content, token_count, embedding) \
                 VALUES ($4, $5, md5('document' || $1)::uuid, $2, 'inserted during the adoption', 5, $3::vector)",
            )
            .bind(document)
            .bind(ordinal as i32)
            .bind(embedding.as_deref())
            .bind(tenant)
            .bind(project)
            .execute(&mut conn)
            .await
            .map(|_| ()),
        };
        out.push(Timed {
            started,
            took: started.elapsed(),
            insert: true,
            ok: result.is_ok(),
        });
        if let Err(e) = result {
            shared
                .errors
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push(format!("insert: {e}"));
        }
        let started = Instant::now();
        let result = match scope {
            None => sqlx::query(
                "SELECT id, content FROM chunks WHERE document_id = md5('document' || $1)::uuid \
                 ORDER BY ordinal LIMIT 10",
            )
            .bind(document)
            .fetch_all(&mut conn)
            .await
            .map(|_| ()),
            Some((tenant, project)) => sqlx::query(
                "SELECT id, content FROM chunks WHERE tenant_id = $2 AND project_id = $3 \
                 AND document_id = md5('document' || $1)::uuid ORDER BY ordinal LIMIT 10",
            )
            .bind(document)
            .bind(tenant)
            .bind(project)
            .fetch_all(&mut conn)
            .await
            .map(|_| ()),
        };
        out.push(Timed {
            started,
            took: started.elapsed(),
            insert: false,
            ok: result.is_ok(),
        });
        if let Err(e) = result {
            shared
                .errors
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push(format!("read: {e}"));
        }
    }
    let _ = conn.close().await;
    out
}

/// Polls what the workload backend waits for; one [`Wait`] per statement and wait event.
async fn sampler(mut conn: PgConnection, shared: Arc<Shared>, workload_pid: i32) -> Vec<Wait> {
    let mut waits: Vec<Wait> = Vec::new();
    let mut current: Option<(String, Wait)> = None;
    while !shared.stop.load(Ordering::Relaxed) {
        let row: Option<(String, bool, String)> = sqlx::query_as(
            "SELECT a.query_start::text || '/' || a.wait_event_type || '/' || a.wait_event, \
                    a.wait_event_type = 'Lock', \
                    CASE WHEN a.wait_event_type = 'Lock' THEN coalesce( \
                      (SELECT l.mode || ' on ' || coalesce(l.relation::regclass::text, l.locktype) \
                       FROM pg_catalog.pg_locks AS l WHERE l.pid = a.pid AND NOT l.granted LIMIT 1), \
                      a.wait_event) \
                    ELSE a.wait_event_type || ':' || a.wait_event END \
                    || ' (' || left(a.query, 40) || ')' \
             FROM pg_catalog.pg_stat_activity AS a \
             WHERE a.pid = $1 AND a.state = 'active' AND a.wait_event_type IS NOT NULL \
               AND a.wait_event_type NOT IN ('Client', 'Activity')",
        )
        .bind(workload_pid)
        .fetch_optional(&mut conn)
        .await
        .unwrap_or(None);
        let now = Instant::now();
        match (row, current.take()) {
            (Some((started, _, _)), Some((key, mut wait))) if key == started => {
                wait.last_seen = now;
                current = Some((key, wait));
            }
            (Some((started, lock, what)), previous) => {
                waits.extend(previous.map(|(_, w)| w));
                current = Some((
                    started,
                    Wait {
                        first_seen: now,
                        last_seen: now,
                        lock,
                        what,
                    },
                ));
            }
            (None, previous) => waits.extend(previous.map(|(_, w)| w)),
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    waits.extend(current.map(|(_, w)| w));
    let _ = conn.close().await;
    waits
}

fn millis(d: Duration) -> String {
    format!("{:.1}", d.as_secs_f64() * 1000.0)
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let index = ((sorted.len() - 1) as f64 * p).round() as usize;
    sorted[index.min(sorted.len() - 1)]
}

#[tokio::main]
async fn main() -> Result<()> {
    let options = options()?;
    let admin = match options.database_url.clone() {
        Some(url) => url,
        None => tenancy_tests::admin_url().await,
    };
    let mut admin_conn = PgConnection::connect(&admin).await?;
    let quoted = tenancy_tests::quote_ident(DATABASE);
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
        "DROP DATABASE IF EXISTS {quoted} WITH (FORCE)"
    )))
    .execute(&mut admin_conn)
    .await?;
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE DATABASE {quoted}")))
        .execute(&mut admin_conn)
        .await?;
    let url = tenancy_tests::database_url(&admin, None, None, DATABASE)?;
    let mut conn = PgConnection::connect(&url).await?;
    let version: String = sqlx::query_scalar("SHOW server_version")
        .fetch_one(&mut conn)
        .await?;

    let size = options.size;
    let started = Instant::now();
    load_legacy(&mut conn, size).await?;
    let load_time = started.elapsed();
    let started = Instant::now();
    sqlx::raw_sql("VACUUM ANALYZE").execute(&mut conn).await?;
    let vacuum_time = started.elapsed();
    let sizes: Vec<(String, i64, String)> = sqlx::query_as(
        "SELECT c.relname::text, c.reltuples::bigint, pg_size_pretty(pg_total_relation_size(c.oid)) \
         FROM pg_class AS c WHERE c.relname IN ('documents', 'chunks', 'queries', 'responses', 'assertions') \
         ORDER BY pg_total_relation_size(c.oid) DESC",
    )
    .fetch_all(&mut conn)
    .await?;
    println!(
        "PostgreSQL {version}; legacy data loaded in {:.1} s, VACUUM ANALYZE {:.1} s",
        load_time.as_secs_f64(),
        vacuum_time.as_secs_f64()
    );
    for (table, rows, bytes) in &sizes {
        println!("  {table}: {rows} rows, {bytes}");
    }

    let model = legacy_model()?;
    let files = migrations(&model);
    apply_file(&mut conn, &files[0]).await?;

    let shared = Arc::new(Shared {
        stop: AtomicBool::new(false),
        mode: AtomicU8::new(0),
        scope: Mutex::new(None),
        errors: Mutex::new(Vec::new()),
    });
    let mut workload_conn = PgConnection::connect(&url).await?;
    let workload_pid: i32 = sqlx::query_scalar("SELECT pg_backend_pid()")
        .fetch_one(&mut workload_conn)
        .await?;
    let embedding = size.embeddings.then(|| {
        let values: Vec<String> = (0..384)
            .map(|i| format!("{:.3}", (i % 17) as f32 / 17.0))
            .collect();
        format!("[{}]", values.join(","))
    });
    let sampler_conn = PgConnection::connect(&url).await?;
    let workload_task = tokio::spawn(workload(
        workload_conn,
        shared.clone(),
        size.documents,
        embedding,
    ));
    let sampler_task = tokio::spawn(sampler(sampler_conn, shared.clone(), workload_pid));

    let baseline_start = Instant::now();
    tokio::time::sleep(Duration::from_secs(5)).await;
    let baseline_end = Instant::now();

    let mut phases: Vec<(String, Instant, Instant)> = Vec::new();
    let adoption_start = Instant::now();
    for file in &files[1..] {
        let name = file_name(file);
        let start = Instant::now();
        let result = apply_file(&mut conn, file).await;
        let end = Instant::now();
        if let Err(e) = result {
            shared.stop.store(true, Ordering::Relaxed);
            bail!("{name} failed: {e:#}");
        }
        println!("  {name}: {:.2} s", (end - start).as_secs_f64());
        phases.push((name.clone(), start, end));
        if name.contains("expand") {
            let scope: (Uuid, Uuid) = sqlx::query_as(
                "SELECT tenant_id, project_id FROM tenancy.adoption WHERE table_name = 'chunks'",
            )
            .fetch_one(&mut conn)
            .await?;
            *shared.scope.lock().unwrap_or_else(|e| e.into_inner()) = Some(scope);
            shared.mode.store(1, Ordering::Relaxed);
        }
    }
    // 0011_tables.sql (new tables, after the adoption) is not part of the adoption time.
    let adoption_end = phases
        .iter()
        .filter(|(name, _, _)| name.contains("adopt"))
        .map(|(_, _, end)| *end)
        .max()
        .unwrap_or(adoption_start);
    tokio::time::sleep(Duration::from_secs(2)).await;
    shared.stop.store(true, Ordering::Relaxed);
    let statements = workload_task.await?;
    let waits = sampler_task.await?;

    // Results.
    let total = adoption_end - adoption_start;
    let during = |from: Instant, to: Instant| -> Vec<Timed> {
        statements
            .iter()
            .filter(|s| s.started < to && s.started + s.took > from)
            .copied()
            .collect()
    };
    let mut baseline: Vec<Duration> = statements
        .iter()
        .filter(|s| s.started >= baseline_start && s.started < baseline_end)
        .map(|s| s.took)
        .collect();
    baseline.sort();
    println!();
    println!(
        "Workload baseline (5 s before the adoption): {} statements, p50 {} ms, p99 {} ms, max {} ms",
        baseline.len(),
        millis(percentile(&baseline, 0.5)),
        millis(percentile(&baseline, 0.99)),
        millis(baseline.last().copied().unwrap_or_default()),
    );
    println!();
    println!(
        "| file | time (s) | concurrent statements | slowest (ms) | longest lock wait seen (ms) | lock waited for | longest other wait seen (ms) | other wait |"
    );
    println!("|------|---------:|---------------------:|-------------:|----------------------------:|-----------------|-----------------------------:|------------|");
    let longest = |lock: bool, from: Instant, to: Instant| -> (String, String) {
        match waits
            .iter()
            .filter(|w| w.lock == lock && w.first_seen < to && w.last_seen >= from)
            .max_by_key(|w| w.seen_for())
        {
            Some(w) => (millis(w.seen_for()), w.what.clone()),
            None => ("-".to_owned(), "none seen".to_owned()),
        }
    };
    for (name, start, end) in &phases {
        let concurrent = during(*start, *end);
        let slowest = concurrent.iter().map(|s| s.took).max().unwrap_or_default();
        let (lock_ms, lock_what) = longest(true, *start, *end);
        let (other_ms, other_what) = longest(false, *start, *end);
        println!(
            "| `{name}` | {:.2} | {} | {} | {lock_ms} | {lock_what} | {other_ms} | {other_what} |",
            (*end - *start).as_secs_f64(),
            concurrent.len(),
            millis(slowest),
        );
    }
    let concurrent = during(adoption_start, adoption_end);
    let slowest = concurrent.iter().max_by_key(|s| s.took);
    let inserts = statements.iter().filter(|s| s.insert && s.ok).count();
    let failed = statements.iter().filter(|s| !s.ok).count();
    println!();
    println!(
        "Total adoption time (0002..0010): {:.2} s",
        total.as_secs_f64()
    );
    println!(
        "Concurrent statements during the adoption: {} ({} failed); slowest {} ms ({})",
        concurrent.len(),
        concurrent.iter().filter(|s| !s.ok).count(),
        slowest.map(|s| millis(s.took)).unwrap_or_default(),
        slowest
            .map(|s| if s.insert { "insert" } else { "read" })
            .unwrap_or("-"),
    );
    let (lock_ms, lock_what) = longest(true, adoption_start, adoption_end);
    let (other_ms, other_what) = longest(false, adoption_start, adoption_end);
    println!(
        "Longest lock wait seen by the sampler: {lock_ms} ms ({lock_what}); {} lock waits seen in all",
        waits.iter().filter(|w| w.lock).count()
    );
    println!("Longest other wait seen by the sampler: {other_ms} ms ({other_what})");
    for error in shared
        .errors
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .iter()
        .take(5)
    {
        println!("  workload error: {error}");
    }

    // Afterwards: every row kept, none without a scope, audit clean.
    let chunks: i64 = sqlx::query_scalar("SELECT count(*) FROM chunks")
        .fetch_one(&mut conn)
        .await?;
    let expected = i64::from(size.documents) * i64::from(size.chunks_per_document) + inserts as i64;
    let unscoped: i64 = sqlx::query_scalar(
        "SELECT (SELECT count(*) FROM chunks WHERE tenant_id IS NULL OR project_id IS NULL) \
              + (SELECT count(*) FROM documents WHERE tenant_id IS NULL OR project_id IS NULL)",
    )
    .fetch_one(&mut conn)
    .await?;
    let pool = tenancy_audit::connect(&url).await?;
    let report = tenancy_audit::audit(&pool, &model).await?;
    pool.close().await;
    println!(
        "After: {chunks} chunks ({expected} expected: legacy + {inserts} inserted during the run), \
         {unscoped} without a scope, {failed} failed workload statements, audit: {}",
        if report.is_clean() { "clean".to_owned() } else { report.to_text() }
    );
    conn.close().await?;
    if !options.keep {
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
            "DROP DATABASE IF EXISTS {quoted} WITH (FORCE)"
        )))
        .execute(&mut admin_conn)
        .await?;
    }
    if chunks != expected || unscoped != 0 || !report.is_clean() {
        bail!("the adopted database is not what it should be");
    }
    Ok(())
}
