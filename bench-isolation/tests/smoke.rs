//! Runs the benchmark binary in `--smoke` mode against the real test server (no timing is
//! asserted): it must finish, find both variants agreeing on every operation, show the policy
//! helpers as InitPlans, count no extra round trip, time the generator, and compare the layer
//! without and with planner statistics.

use std::process::{Command, Stdio};

/// Runs the bench binary with `--smoke`, `args` and `--out` against `server`; returns its
/// report and the process id (which names the databases it creates). Fails the test when the
/// run fails.
fn run_smoke(server: &str, args: &[&str]) -> (String, u32) {
    let out = std::env::temp_dir().join(format!(
        "bench-isolation-smoke{}-{}.md",
        args.join(""),
        std::process::id()
    ));
    let child = Command::new(env!("CARGO_BIN_EXE_bench-isolation"))
        .arg("--smoke")
        .args(args)
        .arg("--out")
        .arg(&out)
        .env("TENANCY_TEST_DATABASE_URL", server)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|err| panic!("running bench-isolation: {err}"));
    let pid = child.id();
    let output = child
        .wait_with_output()
        .unwrap_or_else(|err| panic!("bench-isolation output: {err}"));
    assert!(
        output.status.success(),
        "bench-isolation --smoke {args:?} failed:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let report = std::fs::read_to_string(&out)
        .unwrap_or_else(|err| panic!("the report file {}: {err}", out.display()));
    let _ = std::fs::remove_file(&out);
    (report, pid)
}

#[tokio::test]
async fn smoke_run_reports_every_section() {
    // Finds or starts the server the same way every database test does (panics without one).
    let server = tenancy_tests::admin_url().await;
    let (report, _) = run_smoke(&server, &[]);

    // Latency: both targets x seven operations, each with a ratio.
    for operation in [
        "get by key",
        "list a page (100)",
        "count (whole project)",
        "join chunks+documents (100)",
        "batch insert (100)",
        "update",
        "delete",
    ] {
        let rows = report
            .lines()
            .filter(|line| line.contains(&format!("| {operation} |")) && line.contains("x** |"))
            .filter(|line| line.matches(" | ").count() == 8)
            .count();
        // Two targets in the latency section, two in the statistics section (same columns).
        assert_eq!(rows, 4, "latency rows for {operation:?} in:\n{report}");
    }
    // Planner statistics: both databases' plans for both targets, and their latency above.
    assert!(
        report.contains("## Planner statistics: none on tenant-owned tables (after)"),
        "{report}"
    );
    assert_eq!(
        report
            .matches("| get by key (GET_IN_PROJECT_SQL) | ` Index Scan using chunks_pkey")
            .count(),
        2,
        "{report}"
    );
    // Plans: the helpers appear as InitPlans (the bench fails if one runs per row), inlined:
    // the InitPlan reads field 1 of the verified claims (contract 3).
    assert!(report.contains("InitPlan 1"), "{report}");
    assert!(
        report.contains("split_part(tenancy.context_claims(), ';'::text, 1)"),
        "{report}"
    );
    // Contract 3 vs contract 2: get and update on both targets, and the verifier's cost.
    for operation in ["get by key", "update"] {
        let rows = report
            .lines()
            .filter(|line| line.contains(&format!("| {operation} | ")) && line.contains("x** | "))
            .filter(|line| line.matches("x**").count() == 2 && line.matches(" | ").count() == 12)
            .count();
        assert_eq!(
            rows, 2,
            "contract comparison rows for {operation:?} in:\n{report}"
        );
    }
    assert!(
        report.contains("Highest p50 ratio v3 runtime / v2"),
        "{report}"
    );
    assert!(
        report.contains("| v3: `tenancy.context_claims()` (seal check) | "),
        "{report}"
    );
    assert!(report.contains("µs per InitPlan"), "{report}");
    // Round trips: counted by the proxy, none added by the scoped transaction (contract 3),
    // which needs 4 (BEGIN with the token, the get's prepare-once extended query, COMMIT).
    assert!(
        report.contains("Round trips a scoped transaction adds: **0**"),
        "{report}"
    );
    assert!(
        report
            .lines()
            .any(|line| line.starts_with("| scoped, contract 3:") && line.ends_with("| **4.0** |")),
        "{report}"
    );
    // Throughput and generator sections.
    assert!(report.contains("| 1 | "), "{report}");
    assert!(report.contains("| synthetic | 200 |"), "{report}");
}

/// `--growth-only` in smoke mode: every shape of both axes gets its own database and a row per
/// operation, in which the layer and plain SQL saw the same rows (the bench fails otherwise).
#[tokio::test]
async fn smoke_growth_reports_every_shape_and_operation() {
    let server = tenancy_tests::admin_url().await;
    let (report, pid) = run_smoke(&server, &["--growth-only"]);
    let database = format!("tenancy_bench_growth_{pid}");
    // Smoke shapes: 2 and 4 tenants sharing 240 chunks; tenant 0's project of 100 and 400.
    for (axis, tenants, project_chunks) in [
        ("tenants grow", 2, 40),
        ("tenants grow", 4, 20),
        ("one tenant grows", 4, 100),
        ("one tenant grows", 4, 400),
    ] {
        for operation in [
            "get by key",
            "list a page (100)",
            "count (whole project)",
            "update",
        ] {
            let prefix = format!("| {axis} | {tenants} | {project_chunks} | ");
            let rows = report
                .lines()
                .filter(|line| line.starts_with(&prefix))
                .filter(|line| {
                    line.contains(&format!(" | {operation} | ")) && line.contains("x** |")
                })
                .count();
            assert_eq!(rows, 1, "{axis}, {tenants} tenants, {operation}:\n{report}");
        }
    }
    // No database of the section is left behind.
    let pool = sqlx::PgPool::connect(&server).await.expect("server");
    let left: i64 = sqlx::query_scalar("SELECT count(*) FROM pg_database WHERE datname = $1")
        .bind(&database)
        .fetch_one(&pool)
        .await
        .expect("pg_database");
    assert_eq!(left, 0, "{database} was left behind");
}

/// `--tenant-wide-only` in smoke mode: both tenant sizes get a row per step, and the
/// tenant-wide member's context holds every project of the tenant (the bench fails otherwise).
#[tokio::test]
async fn smoke_tenant_wide_reports_every_size_and_step() {
    let server = tenancy_tests::admin_url().await;
    let (report, _) = run_smoke(&server, &["--tenant-wide-only"]);
    for projects in [3, 20] {
        for step in [
            "authorize",
            "get by key, one-project scope",
            "count over every project held (`Chunks::count`)",
        ] {
            let row = format!("| {projects} | {step} | ");
            assert_eq!(
                report
                    .lines()
                    .filter(|l| l.starts_with(&row) && l.ends_with("x** |"))
                    .count(),
                1,
                "{projects} projects, {step}:\n{report}"
            );
        }
        // The member holds one project, the tenant-wide member all of them.
        assert!(
            report.contains(&format!("| {projects} | 1 / {projects} | ")),
            "{report}"
        );
    }
}
