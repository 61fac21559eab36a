//! Smoke test of the test harness (`tenancy_tests`): a real PostgreSQL with pgvector, fresh
//! databases, URLs for the app role, the migrations applied by `TestDb::fresh`.

use tenancy_tests::{admin_url, database_url, migration_files, migrations_dir, TestDb, APP_ROLE};

#[tokio::test]
async fn server_has_pgvector() {
    let db = TestDb::empty().await;
    sqlx::raw_sql("CREATE EXTENSION vector")
        .execute(db.admin_pool())
        .await
        .expect("create extension vector");
    let distance: f64 = sqlx::query_scalar("SELECT '[1,2,3]'::vector <-> '[1,2,5]'::vector")
        .fetch_one(db.admin_pool())
        .await
        .expect("vector distance");
    assert_eq!(distance, 2.0);
    db.drop_db().await;
}

#[tokio::test]
async fn databases_are_distinct_and_created_concurrently() {
    let (a, b, c) = tokio::join!(TestDb::empty(), TestDb::empty(), TestDb::empty());
    assert_ne!(a.name(), b.name());
    assert_ne!(b.name(), c.name());
    for db in [&a, &b, &c] {
        let current: String = sqlx::query_scalar("SELECT current_database()::text")
            .fetch_one(db.admin_pool())
            .await
            .expect("current_database");
        assert_eq!(current, db.name());
        assert!(db.name().starts_with("tenancy_t_"));
    }
    // A table made in one database is not visible in another.
    sqlx::raw_sql("CREATE TABLE only_in_a (x int)")
        .execute(a.admin_pool())
        .await
        .expect("create table");
    let in_b: Option<String> = sqlx::query_scalar("SELECT to_regclass('only_in_a')::text")
        .fetch_one(b.admin_pool())
        .await
        .expect("to_regclass");
    assert_eq!(in_b, None);
    a.drop_db().await;
    b.drop_db().await;
    drop(c); // the Drop impl drops it too
}

#[tokio::test]
async fn dropped_databases_are_gone() {
    let admin = admin_url().await;
    let explicit = TestDb::empty().await;
    let explicit_name = explicit.name().to_owned();
    explicit.drop_db().await;
    let implicit = TestDb::empty().await;
    let implicit_name = implicit.name().to_owned();
    drop(implicit);

    let pool = sqlx::PgPool::connect(&admin).await.expect("connect admin");
    for name in [explicit_name, implicit_name] {
        let exists: bool =
            sqlx::query_scalar("SELECT exists(SELECT 1 FROM pg_database WHERE datname = $1)")
                .bind(&name)
                .fetch_one(&pool)
                .await
                .expect("query pg_database");
        assert!(!exists, "{name} still exists");
    }
}

#[tokio::test]
async fn urls_point_at_the_database_and_the_app_role() {
    let db = TestDb::empty().await;
    let admin = url::Url::parse(db.url()).expect("admin url");
    let app = url::Url::parse(db.app_url()).expect("app url");
    assert_eq!(admin.path(), format!("/{}", db.name()));
    assert_eq!(app.path(), format!("/{}", db.name()));
    assert_eq!(app.username(), APP_ROLE);
    assert_eq!(app.password(), None);
    assert_eq!(app.host_str(), admin.host_str());
    assert_eq!(app.port(), admin.port());

    assert_eq!(
        database_url(
            "postgres://postgres:secret@db.example:6543/postgres?sslmode=disable",
            Some("tenancy_app"),
            None,
            "other"
        )
        .expect("database_url"),
        "postgres://tenancy_app@db.example:6543/other?sslmode=disable"
    );
    db.drop_db().await;
}

#[tokio::test]
async fn fresh_applies_every_migration_and_the_app_role_is_subject_to_rls() {
    let files = migration_files(&migrations_dir()).expect("list generated/migrations");
    assert!(
        !files.is_empty(),
        "generated/migrations is empty: run `cargo run -p tenancy-cli --bin tenancy -- generate`"
    );
    let db = TestDb::fresh().await;

    // Every scoped table of policies/rag.tenancy exists with row-level security forced.
    let forced: Vec<String> = sqlx::query_scalar(
        "SELECT c.relname::text FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
         WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p') \
           AND c.relrowsecurity AND c.relforcerowsecurity ORDER BY 1",
    )
    .fetch_all(db.admin_pool())
    .await
    .expect("list tables");
    for table in ["chunks", "documents", "projects", "tenants"] {
        assert!(
            forced.iter().any(|t| t == table),
            "{table} missing from {forced:?}"
        );
    }

    // The app role connects (trust auth), is not a superuser and does not bypass RLS.
    let (user, is_super, bypass): (String, bool, bool) = sqlx::query_as(
        "SELECT current_user::text, rolsuper, rolbypassrls FROM pg_roles WHERE rolname = current_user",
    )
    .fetch_one(db.app_pool())
    .await
    .expect("connect as the app role");
    assert_eq!(user, APP_ROLE);
    assert!(!is_super && !bypass);

    // Without a context the app role sees no rows, even though the superuser inserted one.
    sqlx::raw_sql("INSERT INTO tenants (name, slug) VALUES ('Acme', 'acme')")
        .execute(db.admin_pool())
        .await
        .expect("insert as superuser");
    let visible: i64 = sqlx::query_scalar("SELECT count(*) FROM tenants")
        .fetch_one(db.app_pool())
        .await
        .expect("count as app");
    assert_eq!(visible, 0);

    // A second fresh database (copied from the same template) starts empty.
    let other = TestDb::fresh().await;
    let rows: i64 = sqlx::query_scalar("SELECT count(*) FROM tenants")
        .fetch_one(other.admin_pool())
        .await
        .expect("count in second db");
    assert_eq!(rows, 0);
    other.drop_db().await;
    db.drop_db().await;
}
