//! Seeds against PostgreSQL: seeds/dev.toml applies, a second run changes nothing and says
//! so, a dry run writes nothing, and a file that fails anywhere (while parsing or half-way
//! through writing) leaves the database exactly as it was, with the error naming file:line.

#![allow(clippy::expect_used, clippy::unwrap_used)]

use tenancy_runtime::admin::Onboarding;
use tenancy_seed::{Change, SeedError, SeedFile};
use tenancy_tests::{repo_root, TestDb};

/// Row counts of every table a seed writes, and of the audit table.
async fn counts(db: &TestDb) -> (i64, i64, i64, i64) {
    sqlx::query_as(
        "SELECT (SELECT count(*) FROM tenants), (SELECT count(*) FROM projects), \
                (SELECT count(*) FROM user_project_roles), (SELECT count(*) FROM tenancy.audit_log)",
    )
    .fetch_one(db.admin_pool())
    .await
    .expect("counts")
}

fn dev_seed() -> SeedFile {
    SeedFile::read(&repo_root().join("examples/rag/seeds/dev.toml")).expect("seeds/dev.toml parses")
}

fn operator() -> Onboarding {
    Onboarding::new("seed-test").expect("actor")
}

#[tokio::test]
async fn dev_seed_applies_once_and_the_second_run_changes_nothing() {
    let db = TestDb::fresh().await;
    let seed = dev_seed();

    let first = tenancy_seed::run(db.admin_pool(), &operator(), &seed, false)
        .await
        .expect("first run");
    assert!(!first.dry_run);
    assert_eq!(first.changes.len(), 2 + 3 + 5, "{first}");
    assert!(first.changes.contains(&Change::TenantCreated {
        tenant: "acme".into()
    }));
    assert!(first
        .to_string()
        .ends_with("applied: 10 changes, 0 tenants, 0 projects, 0 memberships already present\n"));
    assert_eq!(counts(&db).await, (2, 3, 5, 10));

    // Every change is audited with the operator's name, in the same transaction.
    let actions: Vec<(String, String)> =
        sqlx::query_as("SELECT action, actor FROM tenancy.audit_log ORDER BY id")
            .fetch_all(db.admin_pool())
            .await
            .unwrap();
    assert_eq!(actions[0], ("tenant.create".into(), "seed-test".into()));
    assert_eq!(actions.iter().filter(|(a, _)| a == "member.add").count(), 5);
    assert_eq!(
        actions
            .iter()
            .filter(|(a, _)| a == "project.create")
            .count(),
        3
    );

    // Emails are display-only: nothing stored holds one.
    let stored_emails: i64 =
        sqlx::query_scalar("SELECT count(*) FROM tenancy.audit_log WHERE subject::text LIKE '%@%'")
            .fetch_one(db.admin_pool())
            .await
            .unwrap();
    assert_eq!(stored_emails, 0);

    let ids_before: Vec<uuid::Uuid> = sqlx::query_scalar("SELECT id FROM projects ORDER BY id")
        .fetch_all(db.admin_pool())
        .await
        .unwrap();
    let second = tenancy_seed::run(db.admin_pool(), &operator(), &seed, false)
        .await
        .expect("second run");
    assert!(second.is_noop());
    assert_eq!(
        second.to_string(),
        "nothing to do: 2 tenants, 3 projects, 5 memberships already present\n"
    );
    assert_eq!(counts(&db).await, (2, 3, 5, 10));
    let ids_after: Vec<uuid::Uuid> = sqlx::query_scalar("SELECT id FROM projects ORDER BY id")
        .fetch_all(db.admin_pool())
        .await
        .unwrap();
    assert_eq!(ids_before, ids_after);
    db.drop_db().await;
}

#[tokio::test]
async fn dry_run_reports_the_plan_and_writes_nothing() {
    let db = TestDb::fresh().await;
    let report = tenancy_seed::run(db.admin_pool(), &operator(), &dev_seed(), true)
        .await
        .expect("dry run");
    assert!(report.dry_run);
    assert_eq!(report.changes.len(), 10);
    let text = report.to_string();
    assert!(text.contains("would create tenant acme\n"), "{text}");
    assert!(
        text.contains(
            "would grant owner in acme/docs to 11111111-1111-4111-8111-111111111111 (alice@acme.example)\n"
        ),
        "{text}"
    );
    assert!(
        text.ends_with("rolled back, nothing was written\n"),
        "{text}"
    );
    assert_eq!(counts(&db).await, (0, 0, 0, 0));
    db.drop_db().await;
}

#[tokio::test]
async fn a_changed_role_is_applied_and_audited_and_new_entries_are_added() {
    let db = TestDb::fresh().await;
    tenancy_seed::run(db.admin_pool(), &operator(), &dev_seed(), false)
        .await
        .expect("first run");
    let text = std::fs::read_to_string(repo_root().join("examples/rag/seeds/dev.toml"))
        .unwrap()
        .replace(
            "bob@acme.example\"\n    role = \"editor\"",
            "bob@acme.example\"\n    role = \"admin\"",
        )
        + "\n[[tenant]]\nslug = \"initech\"\nname = \"Initech\"\n";
    let seed = SeedFile::parse("changed.toml", &text).expect("parse");
    let report = tenancy_seed::run(db.admin_pool(), &operator(), &seed, false)
        .await
        .expect("second run");
    assert_eq!(report.changes.len(), 2, "{report}");
    assert!(report.to_string().contains(
        "change role of 22222222-2222-4222-8222-222222222222 (bob@acme.example) in acme/docs: editor -> admin"
    ));
    assert_eq!(report.present.memberships, 4);
    let role: String = sqlx::query_scalar(
        "SELECT role::text FROM user_project_roles WHERE user_id = '22222222-2222-4222-8222-222222222222'",
    )
    .fetch_one(db.admin_pool())
    .await
    .unwrap();
    assert_eq!(role, "admin");
    let audited: (String, serde_json::Value) = sqlx::query_as(
        "SELECT action, subject FROM tenancy.audit_log WHERE action = 'member.set_role'",
    )
    .fetch_one(db.admin_pool())
    .await
    .unwrap();
    assert_eq!(audited.1["role"], "admin");
    assert_eq!(audited.1["previous_role"], "editor");
    assert_eq!(counts(&db).await, (3, 3, 5, 12));
    db.drop_db().await;
}

/// A seed that creates a tenant, a project and members, then fails at a later entry.
const FAILS_AT_LINE_15: &str = r#"[[tenant]]
slug = "acme"
name = "Acme"

  [[tenant.project]]
  slug = "docs"
  name = "Docs"

    [[tenant.project.member]]
    user = "11111111-1111-4111-8111-111111111111"
    role = "owner"

    [[tenant.project.member]]
    user = "22222222-2222-4222-8222-222222222222"
    role = "superuser"
"#;

#[tokio::test]
async fn an_unknown_role_names_its_line_and_nothing_is_written() {
    let db = TestDb::fresh().await;
    let seed = SeedFile::parse("bad.toml", FAILS_AT_LINE_15).expect("syntax is fine");
    let error = tenancy_seed::run(db.admin_pool(), &operator(), &seed, false)
        .await
        .expect_err("unknown role");
    assert_eq!(
        error.to_string(),
        "bad.toml:15: unknown role `superuser` (roles: viewer, editor, admin, owner)"
    );
    assert_eq!(counts(&db).await, (0, 0, 0, 0));
    db.drop_db().await;
}

#[tokio::test]
async fn a_failure_after_writes_rolls_everything_back() {
    let db = TestDb::fresh().await;
    tenancy_seed::run(db.admin_pool(), &operator(), &dev_seed(), false)
        .await
        .expect("dev seed");
    let before = counts(&db).await;
    // A new tenant and project first (written), then demoting globex's only owner (refused).
    let text = r#"[[tenant]]
slug = "initech"
name = "Initech"

  [[tenant.project]]
  slug = "tps"
  name = "TPS reports"

[[tenant]]
slug = "globex"
name = "Globex"

  [[tenant.project]]
  slug = "research"
  name = "Research notes"

    [[tenant.project.member]]
    user = "44444444-4444-4444-8444-444444444444"
    role = "viewer"
"#;
    let seed = SeedFile::parse("demote.toml", text).expect("parse");
    let error = tenancy_seed::run(db.admin_pool(), &operator(), &seed, false)
        .await
        .expect_err("last owner");
    let message = error.to_string();
    assert!(message.starts_with("demote.toml:17: user 44444444-4444-4444-8444-444444444444 is the last owner of project "), "{message}");
    assert!(matches!(error, SeedError::At { line: 17, .. }));
    assert_eq!(counts(&db).await, before);
    let initech: i64 = sqlx::query_scalar("SELECT count(*) FROM tenants WHERE slug = 'initech'")
        .fetch_one(db.admin_pool())
        .await
        .unwrap();
    assert_eq!(initech, 0);
    db.drop_db().await;
}

#[tokio::test]
async fn the_app_role_cannot_seed() {
    let db = TestDb::fresh().await;
    let error = tenancy_seed::run(db.app_pool(), &operator(), &dev_seed(), false)
        .await
        .expect_err("app role refused");
    assert!(
        error
            .to_string()
            .contains("tenancy_app is subject to row-level security"),
        "{error}"
    );
    assert_eq!(counts(&db).await, (0, 0, 0, 0));
    db.drop_db().await;
}
