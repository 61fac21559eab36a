//! `tenancy seed` as a process: seeds/dev.toml applies, the second run says "nothing to do",
//! --dry-run writes nothing, a bad file exits 1 naming file:line and leaves the database as it
//! was.

#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::path::PathBuf;
use std::process::{Command, Output};

use tenancy_tests::TestDb;

fn dev_seed() -> String {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../examples/rag/seeds/dev.toml")
        .display()
        .to_string()
}

async fn tenancy(args: &[&str]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_tenancy"));
    // From the repository root, where the policies the commands read their table names from are.
    command
        .current_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/../examples/rag"))
        .args(args)
        .env_remove("DATABASE_URL")
        .env("USER", "ci-user");
    tokio::task::spawn_blocking(move || command.output().expect("run tenancy"))
        .await
        .expect("join")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

async fn counts(db: &TestDb) -> (i64, i64, i64, i64) {
    sqlx::query_as(
        "SELECT (SELECT count(*) FROM tenants), (SELECT count(*) FROM projects), \
                (SELECT count(*) FROM user_project_roles), (SELECT count(*) FROM tenancy.audit_log)",
    )
    .fetch_one(db.admin_pool())
    .await
    .unwrap()
}

#[tokio::test]
async fn seed_dry_run_then_apply_then_nothing_to_do() {
    let db = TestDb::fresh().await;
    let seed = dev_seed();

    let out = tenancy(&["seed", &seed, "--database-url", db.url(), "--dry-run"]).await;
    assert_eq!(out.status.code(), Some(0), "stderr: {}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(
        stdout.contains("would create project globex/research\n"),
        "{stdout}"
    );
    assert!(
        stdout.ends_with(
            "dry run: 10 changes, 0 tenants, 0 projects, 0 memberships already present; \
             rolled back, nothing was written\n"
        ),
        "{stdout}"
    );
    assert_eq!(counts(&db).await, (0, 0, 0, 0));

    let out = tenancy(&[
        "seed",
        &seed,
        "--database-url",
        db.url(),
        "--actor",
        "seeder",
    ])
    .await;
    assert_eq!(out.status.code(), Some(0), "stderr: {}", text(&out.stderr));
    assert!(text(&out.stdout)
        .ends_with("applied: 10 changes, 0 tenants, 0 projects, 0 memberships already present\n"));
    assert_eq!(counts(&db).await, (2, 3, 5, 10));
    let actors: Vec<String> = sqlx::query_scalar("SELECT DISTINCT actor FROM tenancy.audit_log")
        .fetch_all(db.admin_pool())
        .await
        .unwrap();
    assert_eq!(actors, vec!["seeder".to_owned()]);

    let out = tenancy(&["seed", &seed, "--database-url", db.url()]).await;
    assert_eq!(out.status.code(), Some(0), "stderr: {}", text(&out.stderr));
    assert_eq!(
        text(&out.stdout),
        "nothing to do: 2 tenants, 3 projects, 5 memberships already present\n"
    );
    assert_eq!(counts(&db).await, (2, 3, 5, 10));
    db.drop_db().await;
}

#[tokio::test]
async fn a_bad_file_names_its_line_and_writes_nothing() {
    let db = TestDb::fresh().await;
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.toml");
    // Line 12: the role of the second member is not in the enum; the first entries are valid.
    let contents = std::fs::read_to_string(dev_seed()).unwrap().replacen(
        "role = \"editor\"",
        "role = \"god\"",
        1,
    );
    std::fs::write(&bad, &contents).unwrap();
    let line = contents
        .lines()
        .position(|l| l.contains("role = \"god\""))
        .unwrap()
        + 1;

    let out = tenancy(&["seed", bad.to_str().unwrap(), "--database-url", db.url()]).await;
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        text(&out.stderr),
        format!(
            "error: {}:{line}: unknown role `god` (roles: viewer, editor, admin, owner)\n",
            bad.display()
        )
    );
    assert_eq!(counts(&db).await, (0, 0, 0, 0));

    // A syntax error fails before connecting (the URL is not even valid).
    std::fs::write(&bad, "[[tenant]]\nslug = \"acme\nname = \"Acme\"\n").unwrap();
    let out = tenancy(&["seed", bad.to_str().unwrap(), "--database-url", "not-a-url"]).await;
    assert_eq!(out.status.code(), Some(1));
    let stderr = text(&out.stderr);
    assert!(
        stderr.starts_with(&format!("error: {}:2: ", bad.display())),
        "{stderr}"
    );
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    db.drop_db().await;
}
