//! The operator commands as processes, end to end on a real database: tenant create, project
//! create, member add|set-role|remove|list, each audited with --actor; refusals exit 1 with one
//! sentence and write nothing; the app role's URL is refused; `tenancy audit` stays clean.

#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::path::PathBuf;
use std::process::{Command, Output};

use tenancy_tests::TestDb;

const ALICE: &str = "11111111-1111-4111-8111-111111111111";
const BOB: &str = "22222222-2222-4222-8222-222222222222";

/// Runs `tenancy <args>` with DATABASE_URL=`url` and USER=ci-user.
async fn tenancy(url: &str, args: &[&str]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_tenancy"));
    // From the repository root, where the policies the commands read their table names from are.
    command
        .current_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/../examples/rag"))
        .args(args)
        .env("DATABASE_URL", url)
        .env("USER", "ci-user");
    tokio::task::spawn_blocking(move || command.output().expect("run tenancy"))
        .await
        .expect("join")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Asserts success and returns stdout.
fn ok(out: &Output) -> String {
    assert_eq!(out.status.code(), Some(0), "stderr: {}", text(&out.stderr));
    text(&out.stdout)
}

/// Asserts exit 1 with exactly one `error: ...` line and returns it.
fn refused(out: &Output) -> String {
    assert_eq!(out.status.code(), Some(1), "stdout: {}", text(&out.stdout));
    let stderr = text(&out.stderr);
    let lines: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(lines.len(), 1, "{stderr}");
    assert!(lines[0].starts_with("error: "), "{stderr}");
    lines[0].to_owned()
}

async fn audit_actions(db: &TestDb) -> Vec<(String, String)> {
    sqlx::query_as("SELECT actor, action FROM tenancy.audit_log ORDER BY id")
        .fetch_all(db.admin_pool())
        .await
        .unwrap()
}

#[tokio::test]
async fn onboarding_commands_end_to_end() {
    let db = TestDb::fresh().await;
    let url = db.url();

    let out = tenancy(
        url,
        &["tenant", "create", "--slug", "acme", "--name", "Acme Corp"],
    )
    .await;
    assert!(
        ok(&out).starts_with("created tenant acme ("),
        "{}",
        text(&out.stdout)
    );
    let out = tenancy(
        url,
        &[
            "project", "create", "--tenant", "acme", "--slug", "docs", "--name", "Docs", "--actor",
            "ops-bob",
        ],
    )
    .await;
    assert!(ok(&out).starts_with("created project acme/docs ("));
    let member = |verb: &'static str, user: &'static str, role: Option<&'static str>| {
        let mut args = vec![
            "member",
            verb,
            "--tenant",
            "acme",
            "--project",
            "docs",
            "--user",
            user,
        ];
        if let Some(role) = role {
            args.extend(["--role", role]);
        }
        args
    };
    let out = tenancy(url, &member("add", ALICE, Some("owner"))).await;
    assert_eq!(ok(&out), format!("granted owner in acme/docs to {ALICE}\n"));
    let out = tenancy(url, &member("add", BOB, Some("viewer"))).await;
    ok(&out);
    let out = tenancy(url, &member("set-role", BOB, Some("editor"))).await;
    assert_eq!(
        ok(&out),
        format!("changed role of {BOB} in acme/docs: viewer -> editor\n")
    );
    let out = tenancy(
        url,
        &["member", "list", "--tenant", "acme", "--project", "docs"],
    )
    .await;
    assert_eq!(ok(&out), format!("{ALICE}\towner\n{BOB}\teditor\n"));
    let out = tenancy(url, &member("remove", BOB, None)).await;
    assert_eq!(
        ok(&out),
        format!("removed {BOB} from acme/docs (was editor)\n")
    );

    assert_eq!(
        audit_actions(&db).await,
        vec![
            ("ci-user".to_owned(), "tenant.create".to_owned()),
            ("ops-bob".to_owned(), "project.create".to_owned()),
            ("ci-user".to_owned(), "member.add".to_owned()),
            ("ci-user".to_owned(), "member.add".to_owned()),
            ("ci-user".to_owned(), "member.set_role".to_owned()),
            ("ci-user".to_owned(), "member.remove".to_owned()),
        ]
    );

    // The audit table is part of the generated schema: the live audit stays clean.
    let policies = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../examples/rag/policies");
    let out = tenancy(
        url,
        &[
            "audit",
            "--policies",
            policies.to_str().unwrap(),
            "--database-url",
            url,
        ],
    )
    .await;
    assert_eq!(ok(&out), "audit clean: the database matches the policies\n");
    db.drop_db().await;
}

#[tokio::test]
async fn refusals_exit_1_with_one_sentence_and_write_nothing() {
    let db = TestDb::fresh().await;
    let url = db.url();
    ok(&tenancy(
        url,
        &["tenant", "create", "--slug", "acme", "--name", "Acme"],
    )
    .await);
    ok(&tenancy(
        url,
        &[
            "project", "create", "--tenant", "acme", "--slug", "docs", "--name", "Docs",
        ],
    )
    .await);
    ok(&tenancy(
        url,
        &[
            "member",
            "add",
            "--tenant",
            "acme",
            "--project",
            "docs",
            "--user",
            ALICE,
            "--role",
            "owner",
        ],
    )
    .await);
    let before = audit_actions(&db).await;

    let cases: Vec<(Vec<&str>, String)> = vec![
        (
            vec!["tenant", "create", "--slug", "acme", "--name", "Again"],
            "error: tenant `acme` already exists".to_owned(),
        ),
        (
            vec![
                "project", "create", "--tenant", "nope", "--slug", "x", "--name", "X",
            ],
            "error: no tenant with slug `nope`".to_owned(),
        ),
        (
            vec!["member", "list", "--tenant", "acme", "--project", "nope"],
            "error: no project with slug `nope` in tenant `acme`".to_owned(),
        ),
        (
            vec![
                "member",
                "add",
                "--tenant",
                "acme",
                "--project",
                "docs",
                "--user",
                BOB,
                "--role",
                "root",
            ],
            "error: unknown role `root` (roles: viewer, editor, admin, owner)".to_owned(),
        ),
        (
            vec![
                "member",
                "remove",
                "--tenant",
                "acme",
                "--project",
                "docs",
                "--user",
                BOB,
            ],
            format!("error: user {BOB} is not a member of project "),
        ),
        (
            vec![
                "member",
                "set-role",
                "--tenant",
                "acme",
                "--project",
                "docs",
                "--user",
                ALICE,
                "--role",
                "admin",
            ],
            format!("error: user {ALICE} is the last owner of project "),
        ),
        (
            vec![
                "member",
                "remove",
                "--tenant",
                "acme",
                "--project",
                "docs",
                "--user",
                ALICE,
            ],
            format!("error: user {ALICE} is the last owner of project "),
        ),
        (
            vec!["tenant", "create", "--slug", "Not A Slug", "--name", "X"],
            "error: tenant slug \"Not A Slug\" must be 1-63 characters of a-z, 0-9 and inner '-'"
                .to_owned(),
        ),
    ];
    for (args, expected) in cases {
        let line = refused(&tenancy(url, &args).await);
        assert!(line.starts_with(&expected), "{args:?}: {line}");
    }
    assert_eq!(audit_actions(&db).await, before);

    // The app role is refused before anything runs.
    let line = refused(
        &tenancy(
            db.app_url(),
            &["tenant", "create", "--slug", "b", "--name", "B"],
        )
        .await,
    );
    assert_eq!(
        line,
        "error: tenancy misconfigured: role tenancy_app is subject to row-level security: connect \
         as a superuser or a BYPASSRLS role (the migration role), not as the app role"
    );
    // No database at all.
    let mut command = Command::new(env!("CARGO_BIN_EXE_tenancy"));
    command
        .args(["tenant", "create", "--slug", "b", "--name", "B"])
        .env_remove("DATABASE_URL")
        .env("USER", "ci-user");
    let out = tokio::task::spawn_blocking(move || command.output().unwrap())
        .await
        .unwrap();
    assert_eq!(
        refused(&out),
        "error: no database: pass --database-url or set DATABASE_URL"
    );
    assert_eq!(audit_actions(&db).await, before);
    db.drop_db().await;
}

#[tokio::test]
async fn help_says_the_connection_must_be_privileged() {
    let out = tenancy("postgres://unused", &["member", "add", "--help"]).await;
    let help = ok(&out);
    assert!(help.contains("PRIVILEGED database URL"), "{help}");
    assert!(help.contains("never the app role"), "{help}");
    assert!(help.contains("--actor <NAME>"), "{help}");
}

/// `member set-tenant-role` / `remove-tenant-role`: a role in every project of the tenant on
/// the operator path, audited; a bad role or a user without one is refused with one sentence
/// and writes nothing.
#[tokio::test]
async fn tenant_wide_roles_by_command() {
    let db = TestDb::fresh().await;
    let url = db.url();
    ok(&tenancy(
        url,
        &["tenant", "create", "--slug", "acme", "--name", "Acme"],
    )
    .await);
    let set = |role: &'static str| {
        vec![
            "member",
            "set-tenant-role",
            "--tenant",
            "acme",
            "--user",
            ALICE,
            "--role",
            role,
        ]
    };
    let out = tenancy(url, &set("admin")).await;
    assert_eq!(
        ok(&out),
        format!("granted admin in every project of acme to {ALICE}\n")
    );
    let out = tenancy(url, &set("viewer")).await;
    assert_eq!(
        ok(&out),
        format!("{ALICE} now holds viewer in every project of acme (was admin)\n")
    );
    let line = refused(&tenancy(url, &set("emperor")).await);
    assert!(line.contains("emperor"), "{line}");
    let role: String = sqlx::query_scalar("SELECT role::text FROM tenant_user_roles")
        .fetch_one(db.admin_pool())
        .await
        .unwrap();
    assert_eq!(role, "viewer", "the refused command wrote nothing");

    let remove = [
        "member",
        "remove-tenant-role",
        "--tenant",
        "acme",
        "--user",
        ALICE,
    ];
    let out = tenancy(url, &remove).await;
    assert_eq!(
        ok(&out),
        format!("removed the tenant-wide role of {ALICE} in acme (was viewer)\n")
    );
    let line = refused(&tenancy(url, &remove).await);
    assert!(line.contains("holds no tenant-wide role"), "{line}");
    let actions: Vec<String> = audit_actions(&db)
        .await
        .into_iter()
        .map(|(_, action)| action)
        .collect();
    assert_eq!(
        actions,
        [
            "tenant.create",
            "tenant_member.set_role",
            "tenant_member.set_role",
            "tenant_member.remove"
        ]
    );
}
