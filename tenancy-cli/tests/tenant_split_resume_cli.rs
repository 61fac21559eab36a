//! `tenancy tenant split --batched`: each project moves in its own transaction; a split killed
//! after its first project (SIGKILL while the second one waits on a row lock) is resumed by the
//! same command, which says so, skips the project already moved and moves the rest; the rows
//! add up and the other tenants never change. A finished split run again is refused in one
//! sentence.

#![allow(clippy::expect_used, clippy::unwrap_used)]

mod lifecycle;

use std::time::{Duration, Instant};

use lifecycle::{command, counts_of, fingerprint, ok, refused, tenancy, tenant_id, without, world};
use tenancy_tests::TestDb;

const SPLIT: &[&str] = &[
    "tenant",
    "split",
    "--from",
    "default",
    "--to",
    "acme-new",
    "--create",
    "Acme New",
    "--project",
    "a-docs,a-wiki",
    "--batched",
];

/// The id of project `slug` of `tenant`, if it is there.
async fn project_in(pool: &sqlx::PgPool, tenant: uuid::Uuid, slug: &str) -> Option<uuid::Uuid> {
    sqlx::query_scalar("SELECT id FROM projects WHERE tenant_id = $1 AND slug = $2")
        .bind(tenant)
        .bind(slug)
        .fetch_optional(pool)
        .await
        .unwrap()
}

#[tokio::test]
async fn a_killed_batched_split_is_resumed_by_the_same_command() {
    let db = TestDb::fresh().await;
    let pool = db.admin_pool();
    world(&db, 4).await;
    let default = lifecycle::seed_tenant(pool, "default", &["a-docs", "a-wiki", "b-docs"], 5).await;
    let before = fingerprint(pool).await;

    // Hold the a-wiki project row: its move copies the rows, then waits to delete it.
    let mut blocker = pool.begin().await.unwrap();
    sqlx::query("SELECT 1 FROM projects WHERE tenant_id = $1 AND slug = 'a-wiki' FOR UPDATE")
        .bind(default)
        .execute(&mut *blocker)
        .await
        .unwrap();
    let mut child = command(db.url(), SPLIT)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // Wait until a-docs has moved (committed) and the a-wiki move is blocked.
    let started = Instant::now();
    loop {
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "the split never reached a-wiki"
        );
        let moved = match tenant_id(pool, "acme-new").await {
            Some(to) => project_in(pool, to, "a-docs").await.is_some(),
            None => false,
        };
        let waiting: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() \
             AND wait_event_type = 'Lock'",
        )
        .fetch_one(pool)
        .await
        .unwrap();
        if moved && waiting > 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    child.kill().unwrap();
    child.wait().unwrap();
    blocker.rollback().await.unwrap();

    // Half done: a-docs in the new tenant, a-wiki still in default (its transaction died).
    let acme_new = tenant_id(pool, "acme-new").await.unwrap();
    assert!(project_in(pool, default, "a-docs").await.is_none());
    assert!(project_in(pool, default, "a-wiki").await.is_some());
    assert!(project_in(pool, acme_new, "a-wiki").await.is_none());

    // The same command again: says it resumes, skips a-docs, moves a-wiki.
    let stdout = ok(&tenancy(db.url(), SPLIT).await);
    assert!(
        stdout.contains(
            "resuming the split of tenant default into acme-new that ci-user started at "
        ),
        "{stdout}"
    );
    assert!(stdout.contains("UTC (already moved: a-docs)"), "{stdout}");
    assert!(
        stdout.contains("moved project a-wiki from default to acme-new"),
        "{stdout}"
    );
    assert!(!stdout.contains("moved project a-docs"), "{stdout}");
    assert!(!stdout.contains("created tenant"), "{stdout}");
    assert!(project_in(pool, acme_new, "a-wiki").await.is_some());
    assert!(project_in(pool, default, "b-docs").await.is_some());

    // Every row is somewhere, once; the other tenants did not change.
    let after = fingerprint(pool).await;
    assert_eq!(
        without(after.clone(), &[default, acme_new]),
        without(before.clone(), &[default])
    );
    let (old, moved, left) = (
        counts_of(&before, default),
        counts_of(&after, acme_new),
        counts_of(&after, default),
    );
    for (table, rows) in &old {
        if table != "tenants" {
            let now =
                moved.get(table).copied().unwrap_or(0) + left.get(table).copied().unwrap_or(0);
            assert_eq!(*rows, now, "{table}");
        }
    }

    // One start and one end in the audit table.
    let actions: Vec<String> = sqlx::query_scalar(
        "SELECT action FROM tenancy.audit_log WHERE tenant_id = $1 \
         AND action LIKE 'tenant.split%' ORDER BY id",
    )
    .bind(default)
    .fetch_all(pool)
    .await
    .unwrap();
    assert_eq!(actions, ["tenant.split_started", "tenant.split"]);

    // Finished: running it once more is refused in one sentence and changes nothing (with
    // --create, and without).
    let line = refused(&tenancy(db.url(), SPLIT).await);
    assert_eq!(
        line,
        "error: tenant `acme-new` already exists: drop --create to move into it"
    );
    let again: Vec<&str> = SPLIT
        .iter()
        .copied()
        .filter(|a| !["--create", "Acme New"].contains(a))
        .collect();
    let line = refused(&tenancy(db.url(), &again).await);
    assert_eq!(
        line,
        "error: project `a-docs` is already in tenant `acme-new`, and no split into it is unfinished"
    );
    assert_eq!(fingerprint(pool).await, after);
}
