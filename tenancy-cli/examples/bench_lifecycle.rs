//! Benchmark of the tenant lifecycle commands on the 1M-chunk shape of BENCHMARKS.md: `tenancy
//! usage` (all tenants, one big, one small) against a bare `count(*)` of the same tables,
//! `tenancy tenant export` of the big tenant (30% of the rows) and of a small one (peak memory
//! side by side: it must not grow with the tenant), `tenancy tenant import` into an empty
//! database, `tenancy tenant delete` (with the export check).
//!
//! ```text
//! cargo build --release -p tenancy-cli --bin tenancy --example bench_lifecycle
//! TENANCY_BIN=$CARGO_TARGET_DIR/release/tenancy \
//!   $CARGO_TARGET_DIR/release/examples/bench_lifecycle [--chunks N]
//! ```
//!
//! Uses `TENANCY_TEST_DATABASE_URL` (or starts `scripts/pg-up`) like the tests; measures wall
//! time of each command as a process and its peak RSS (`/usr/bin/time -f %M`).

#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use tenancy_tests::TestDb;

/// One measured process run: wall time and peak RSS in KiB.
struct Run {
    wall: Duration,
    rss_kib: u64,
    stdout: String,
}

/// Runs the tenancy binary under `/usr/bin/time -f %M` from examples/rag.
fn run(bin: &str, url: &str, args: &[&str]) -> Run {
    let rss_file = std::env::temp_dir().join(format!("bench-lifecycle-rss-{}", std::process::id()));
    let start = Instant::now();
    let out = Command::new("/usr/bin/time")
        .arg("-f")
        .arg("%M")
        .arg("-o")
        .arg(&rss_file)
        .arg(bin)
        .args(args)
        .current_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/../examples/rag"))
        .env("DATABASE_URL", url)
        .env("USER", "bench")
        .output()
        .expect("run tenancy");
    let wall = start.elapsed();
    assert!(
        out.status.success(),
        "tenancy {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let rss_kib = std::fs::read_to_string(&rss_file)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    Run {
        wall,
        rss_kib,
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
    }
}

/// The median wall time of `n` runs.
fn median(bin: &str, url: &str, args: &[&str], n: usize) -> Duration {
    let mut times: Vec<Duration> = (0..n).map(|_| run(bin, url, args).wall).collect();
    times.sort();
    times[n / 2]
}

fn dir_bytes(dir: &Path) -> u64 {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().metadata().unwrap().len())
        .sum()
}

fn ms(d: Duration) -> String {
    format!("{:.0}", d.as_secs_f64() * 1000.0)
}

#[tokio::main]
async fn main() {
    let mut chunks: i64 = 1_000_000;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--chunks" => chunks = args.next().unwrap().parse().unwrap(),
            other => panic!("unknown argument {other} (expected --chunks N)"),
        }
    }
    let bin = std::env::var("TENANCY_BIN").expect("set TENANCY_BIN to a release `tenancy`");
    // 100 tenants x 3 projects, 20 chunks per document; tenant 0 holds 30% of the documents;
    // one chunk in ten has a 384-dimension embedding; 10 queries with a response per project.
    let documents = chunks / 20;
    let big = documents * 3 / 10;
    let small = (documents - big) / 297;
    let db = TestDb::fresh().await;
    let admin = db.admin_pool();
    let fill = Instant::now();
    let script = format!(
        "SET session_replication_role = replica;
         SELECT setseed(0.42);
         CREATE TEMP TABLE bp AS
           SELECT t, p, md5('tenant-' || t)::uuid AS tenant_id,
                  md5('project-' || t || '-' || p)::uuid AS project_id,
                  CASE WHEN t = 0 THEN {big} / 3 ELSE {small} END AS documents
           FROM generate_series(0, 99) t, generate_series(0, 2) p;
         INSERT INTO tenants (id, name, slug)
           SELECT DISTINCT tenant_id, 'tenant ' || t, 'tenant-' || t FROM bp;
         INSERT INTO projects (tenant_id, id, name, slug)
           SELECT tenant_id, project_id, 'project ' || p, 'p-' || p FROM bp;
         INSERT INTO user_project_roles (tenant_id, project_id, user_id, role)
           SELECT tenant_id, project_id, md5('user-' || t)::uuid, 'owner' FROM bp;
         INSERT INTO documents (tenant_id, project_id, id, title, content_hash, created_by)
           SELECT bp.tenant_id, bp.project_id, md5('doc-' || t || '-' || p || '-' || d)::uuid,
                  'document ' || d, md5('hash-' || t || '-' || p || '-' || d), md5('user-' || t)::uuid
           FROM bp, generate_series(0, bp.documents - 1) d ORDER BY 1, 2, 3;
         INSERT INTO chunks (tenant_id, project_id, id, document_id, ordinal, content, token_count, embedding)
           SELECT d.tenant_id, d.project_id, md5(d.id::text || ':' || o)::uuid, d.id, o,
                  'chunk ' || o || ' of ' || d.title || ': ' || repeat('lorem ipsum ', 5 + (random() * 20)::int),
                  50 + (random() * 450)::int,
                  CASE WHEN o % 10 = 0 THEN array_fill(random()::real, ARRAY[384])::vector END
           FROM documents d, generate_series(0, 19) o ORDER BY 1, 2, 3;
         INSERT INTO queries (tenant_id, project_id, asked_by, query_text)
           SELECT tenant_id, project_id, md5('user-' || t)::uuid, 'question ' || q
           FROM bp, generate_series(1, 10) q;
         INSERT INTO responses (tenant_id, project_id, query_id, answer_text, model, prompt_tokens, completion_tokens)
           SELECT tenant_id, project_id, id, 'answer', 'm', 500, 80 FROM queries;
         RESET session_replication_role;"
    );
    sqlx::raw_sql(sqlx::AssertSqlSafe(script))
        .execute(admin)
        .await
        .expect("fill");
    sqlx::raw_sql("VACUUM ANALYZE")
        .execute(admin)
        .await
        .expect("vacuum");
    let fill = fill.elapsed();
    let counts: (i64, i64, i64) = sqlx::query_as(
        "SELECT (SELECT count(*) FROM chunks), \
                (SELECT count(*) FROM chunks WHERE tenant_id = md5('tenant-0')::uuid), \
                (SELECT count(*) FROM chunks WHERE tenant_id = md5('tenant-50')::uuid)",
    )
    .fetch_one(admin)
    .await
    .unwrap();
    println!(
        "Dataset: {} chunks ({} in tenant-0, {} in tenant-50), filled in {:.0} s",
        counts.0,
        counts.1,
        counts.2,
        fill.as_secs_f64()
    );

    // The floor: one bare count(*) per table usage reads (documents, chunks, queries,
    // responses, assertions, memberships), run in the same process loop.
    let mut floor = Vec::new();
    for _ in 0..3 {
        let start = Instant::now();
        for table in [
            "user_project_roles",
            "documents",
            "chunks",
            "queries",
            "responses",
            "assertions",
        ] {
            let _: i64 =
                sqlx::query_scalar(sqlx::AssertSqlSafe(format!("SELECT count(*) FROM {table}")))
                    .fetch_one(admin)
                    .await
                    .unwrap();
        }
        floor.push(start.elapsed());
    }
    floor.sort();
    let floor = floor[1];
    let url = db.url();
    let usage_all = median(&bin, url, &["usage", "--format", "json"], 3);
    let usage_big = median(
        &bin,
        url,
        &["usage", "--tenant", "tenant-0", "--format", "json"],
        3,
    );
    let usage_small = median(
        &bin,
        url,
        &["usage", "--tenant", "tenant-50", "--format", "json"],
        3,
    );

    let tmp = tempfile::tempdir().unwrap();
    let big_dir = tmp.path().join("big");
    let small_dir = tmp.path().join("small");
    let export_big = run(
        &bin,
        url,
        &[
            "tenant",
            "export",
            "tenant-0",
            "--out",
            big_dir.to_str().unwrap(),
        ],
    );
    let export_small = run(
        &bin,
        url,
        &[
            "tenant",
            "export",
            "tenant-50",
            "--out",
            small_dir.to_str().unwrap(),
        ],
    );
    let big_rows: u64 = export_big
        .stdout
        .lines()
        .filter_map(|l| l.split_once('\t'))
        .map(|(_, n)| n.parse::<u64>().unwrap())
        .sum();

    let empty = TestDb::fresh().await;
    let import_big = run(
        &bin,
        empty.url(),
        &["tenant", "import", big_dir.to_str().unwrap()],
    );
    let delete_big = run(
        &bin,
        url,
        &[
            "tenant",
            "delete",
            "tenant-0",
            "--confirm",
            "tenant-0",
            "--export",
            big_dir.to_str().unwrap(),
        ],
    );

    println!();
    println!("| measurement | wall ms | peak RSS MiB | note |");
    println!("|---|---:|---:|---|");
    println!(
        "| bare `count(*)` of the 6 tables (floor, in-process) | {} | - | 1.00x |",
        ms(floor)
    );
    let ratio = |d: Duration| d.as_secs_f64() / floor.as_secs_f64();
    println!(
        "| `tenancy usage` all tenants (process, median of 3) | {} | - | {:.2}x of the floor |",
        ms(usage_all),
        ratio(usage_all)
    );
    println!(
        "| `tenancy usage --tenant tenant-0` (30%) | {} | - | {:.2}x |",
        ms(usage_big),
        ratio(usage_big)
    );
    println!(
        "| `tenancy usage --tenant tenant-50` | {} | - | {:.2}x |",
        ms(usage_small),
        ratio(usage_small)
    );
    println!(
        "| export tenant-0: {} rows, {:.0} MiB of files | {} | {:.1} | {:.0} rows/s |",
        big_rows,
        dir_bytes(&big_dir) as f64 / 1048576.0,
        ms(export_big.wall),
        export_big.rss_kib as f64 / 1024.0,
        big_rows as f64 / export_big.wall.as_secs_f64()
    );
    println!(
        "| export tenant-50: {:.1} MiB of files | {} | {:.1} | memory side by side with tenant-0 |",
        dir_bytes(&small_dir) as f64 / 1048576.0,
        ms(export_small.wall),
        export_small.rss_kib as f64 / 1024.0
    );
    println!(
        "| import tenant-0 into an empty database (one transaction) | {} | {:.1} | {:.0} rows/s |",
        ms(import_big.wall),
        import_big.rss_kib as f64 / 1024.0,
        big_rows as f64 / import_big.wall.as_secs_f64()
    );
    println!(
        "| delete tenant-0 (export re-checked, batches of 5000) | {} | {:.1} | {:.0} rows/s |",
        ms(delete_big.wall),
        delete_big.rss_kib as f64 / 1024.0,
        big_rows as f64 / delete_big.wall.as_secs_f64()
    );
}
