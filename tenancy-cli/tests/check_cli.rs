//! `tenancy check --database-url` as a process (issue 24): PostgreSQL parses every column
//! default of the policies; exit 0 when all parse, 2 when the database cannot be reached.
//! Live: needs the test server (`TENANCY_TEST_DATABASE_URL` or `scripts/pg-up`).

#![allow(clippy::expect_used)]

use std::path::PathBuf;
use std::process::{Command, Output};

fn policies_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../examples/rag/policies")
}

async fn tenancy_check(args: Vec<String>) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_tenancy"));
    command
        .arg("check")
        .arg("--policies")
        .arg(policies_dir())
        .args(args)
        .env_remove("DATABASE_URL");
    tokio::task::spawn_blocking(move || command.output().expect("run tenancy"))
        .await
        .expect("join")
}

#[tokio::test]
async fn postgresql_parses_every_default_of_the_rag_policies() {
    let url = tenancy_tests::admin_url().await;
    let out = tenancy_check(vec!["--database-url".into(), url]).await;
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stdout}{stderr}");
    assert!(stdout.contains("ok: PostgreSQL parses all "), "{stdout}");
    assert!(stdout.contains("ok: "), "{stdout}");
}

#[tokio::test]
async fn an_unreachable_database_exits_2() {
    let out = tenancy_check(vec![
        "--database-url".into(),
        "postgres://nobody@127.0.0.1:1/none".into(),
    ])
    .await;
    assert_eq!(
        out.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
