//! `tenancy audit` as a process: exit 0 on the generated schema, 1 with findings (text and
//! JSON), 2 when the database cannot be reached.

#![allow(clippy::expect_used)]

use std::path::PathBuf;
use std::process::{Command, Output};

use tenancy_tests::TestDb;

fn policies_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../examples/rag/policies")
}

/// Runs `tenancy audit --policies policies/ <args>` without DATABASE_URL from the environment.
async fn tenancy_audit(args: &[&str]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_tenancy"));
    command
        .arg("audit")
        .arg("--policies")
        .arg(policies_dir())
        .args(args)
        .env_remove("DATABASE_URL");
    tokio::task::spawn_blocking(move || command.output().expect("run tenancy"))
        .await
        .expect("join")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[tokio::test]
async fn clean_database_exits_0() {
    let db = TestDb::fresh().await;
    let out = tenancy_audit(&["--database-url", db.url()]).await;
    assert_eq!(out.status.code(), Some(0), "stderr: {}", text(&out.stderr));
    assert_eq!(
        text(&out.stdout),
        "audit clean: the database matches the policies\n"
    );
    db.drop_db().await;
}

#[tokio::test]
async fn findings_exit_1_in_text_and_json() {
    let db = TestDb::fresh().await;
    sqlx::raw_sql(
        "ALTER TABLE documents DISABLE ROW LEVEL SECURITY; \
         GRANT TRUNCATE ON chunks TO tenancy_app",
    )
    .execute(db.admin_pool())
    .await
    .expect("break");

    let out = tenancy_audit(&["--database-url", db.url()]).await;
    assert_eq!(out.status.code(), Some(1), "stderr: {}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(
        stdout
            .lines()
            .any(|l| l == "TA002 table documents: row-level security is not enabled"),
        "{stdout}"
    );
    assert!(
        stdout
            .lines()
            .any(|l| l.starts_with("TA025 role tenancy_app: ")),
        "{stdout}"
    );
    assert_eq!(
        stdout.lines().last(),
        Some("2 finding(s) (TA002, TA025)"),
        "{stdout}"
    );

    let out = tenancy_audit(&["--database-url", db.url(), "--format", "json"]).await;
    assert_eq!(out.status.code(), Some(1), "stderr: {}", text(&out.stderr));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json on stdout");
    assert_eq!(json["clean"], false);
    let codes: Vec<&str> = json["findings"]
        .as_array()
        .expect("findings")
        .iter()
        .map(|f| f["code"].as_str().expect("code"))
        .collect();
    assert_eq!(codes, ["TA002", "TA025"]);
    assert_eq!(json["findings"][0]["object"], "table documents");
    db.drop_db().await;
}

#[tokio::test]
async fn unreachable_database_exits_2() {
    // Port 1 on localhost: nothing listens there, the connection is refused at once.
    let out = tenancy_audit(&["--database-url", "postgres://postgres@127.0.0.1:1/none"]).await;
    assert_eq!(out.status.code(), Some(2), "stdout: {}", text(&out.stdout));
    assert!(
        text(&out.stderr).contains("could not connect to the database"),
        "{}",
        text(&out.stderr)
    );
    assert!(out.stdout.is_empty());
}

#[tokio::test]
async fn missing_database_url_is_an_error() {
    let out = tenancy_audit(&[]).await;
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("pass --database-url or set DATABASE_URL"),
        "{}",
        text(&out.stderr)
    );
}
