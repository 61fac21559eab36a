//! `tenancy login-role create|list` on a real database: the login role is a member of the
//! app role, subject to row-level security (it sees no tenant's rows without a context), its
//! password is never printed, and duplicates and bad names are refused with one sentence.

use std::path::Path;
use std::process::{Command, Output};

use sqlx::{Connection, PgConnection};
use tenancy_tests::TestDb;

fn tenancy(args: &[&str], url: &str) -> Output {
    Command::new(env!("CARGO_BIN_EXE_tenancy"))
        .current_dir(Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/rag"))
        .args(args)
        .env("DATABASE_URL", url)
        .output()
        .unwrap_or_else(|err| panic!("running tenancy: {err}"))
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[tokio::test]
async fn a_login_role_is_a_member_of_the_app_role_and_never_bypasses_rls() {
    let db = TestDb::fresh().await;
    sqlx::query("INSERT INTO tenants (id, name, slug) VALUES (gen_random_uuid(), 'Acme', 'acme')")
        .execute(db.admin_pool())
        .await
        .unwrap();
    let name = format!(
        "t_login_{}",
        &uuid::Uuid::new_v4().simple().to_string()[..12]
    );
    let dir = tempfile::tempdir().unwrap();
    let password_file = dir.path().join("password");
    std::fs::write(&password_file, "s3cret-Pa55word\n").unwrap();

    let created = tenancy(
        &[
            "login-role",
            "create",
            &name,
            "--password-file",
            password_file.to_str().unwrap(),
        ],
        db.url(),
    );
    assert!(created.status.success(), "{}", text(&created.stderr));
    let printed = format!("{}{}", text(&created.stdout), text(&created.stderr));
    assert!(printed.contains("password set (not shown)"), "{printed}");
    assert!(!printed.contains("s3cret-Pa55word"), "{printed}");

    let attributes: (bool, bool, bool, bool, bool) = sqlx::query_as(
        "SELECT rolcanlogin, rolinherit, rolsuper, rolbypassrls, \
         pg_has_role(rolname, 'tenancy_app', 'USAGE') FROM pg_roles WHERE rolname = $1",
    )
    .bind(&name)
    .fetch_one(db.admin_pool())
    .await
    .unwrap();
    assert_eq!(attributes, (true, true, false, false, true));

    // Logged in as it: the app role's grants apply, and so do its policies (no context: nothing).
    let url = db.app_url().replacen("tenancy_app", &name, 1);
    let mut conn = PgConnection::connect(&url).await.unwrap();
    let (can_select, visible): (bool, i64) = sqlx::query_as(
        "SELECT has_table_privilege('tenants', 'SELECT'), (SELECT count(*) FROM tenants)",
    )
    .fetch_one(&mut conn)
    .await
    .unwrap();
    assert!(can_select);
    assert_eq!(visible, 0);
    conn.close().await.unwrap();

    let listed = tenancy(&["login-role", "list"], db.url());
    assert!(
        text(&listed.stdout).lines().any(|l| l == name),
        "{}",
        text(&listed.stdout)
    );

    let again = tenancy(&["login-role", "create", &name], db.url());
    assert_eq!(again.status.code(), Some(1));
    assert!(
        text(&again.stderr).contains("already exists"),
        "{}",
        text(&again.stderr)
    );
    for bad in ["Bad", "tenancy_app", "x; DROP ROLE postgres"] {
        let refused = tenancy(&["login-role", "create", bad], db.url());
        assert_eq!(refused.status.code(), Some(1), "{bad}");
        assert_eq!(text(&refused.stderr).trim().lines().count(), 1, "{bad}");
    }

    sqlx::query(sqlx::AssertSqlSafe(format!("DROP ROLE \"{name}\"")))
        .execute(db.admin_pool())
        .await
        .unwrap();
}
