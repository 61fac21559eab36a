//! Shared by the Citus tests (tests/citus_live.rs) and the Citus benchmark
//! (examples/citus/bench_citus.rs): the 3-node cluster from `scripts/citus-up` and one database
//! per run on every node, with the RAG model's Citus migrations applied through the migration
//! runner on the coordinator.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::process::Command;

use sqlx::postgres::{PgConnection, PgPool, PgPoolOptions};
use sqlx::Connection;
use tenancy_core::dsl::{self, SourceFile};
use tenancy_core::model::Model;
use tenancy_core::sql::Target;
use tenancy_runtime::{Tenancy, TenancyConfig};
use tenancy_tests::{repo_root, test_context_secret, TEST_CONTEXT_KEY_ID};
use uuid::Uuid;

/// Shards per distributed table in the test databases (Citus's default is 32; 4 keeps the
/// schema quick to create and still spreads tenants over both workers).
pub const SHARD_COUNT: i32 = 4;

/// The RAG policies (examples/rag/policies/rag.tenancy), unchanged: the same model runs on
/// PostgreSQL and on Citus.
pub fn rag_text() -> String {
    std::fs::read_to_string(repo_root().join("examples/rag/policies/rag.tenancy"))
        .unwrap_or_else(|e| panic!("reading rag.tenancy: {e}"))
}

pub fn compile(text: &str) -> Model {
    let (model, diagnostics) = dsl::compile(&[SourceFile::new("rag.tenancy", text)]);
    match model {
        Some(model) => model,
        None => panic!("the policies do not compile: {diagnostics:?}"),
    }
}

/// The coordinator's admin URL and every node (coordinator first), from `scripts/citus-up`.
pub struct Cluster {
    pub url: String,
    pub nodes: Vec<(String, u16)>,
}

pub async fn cluster() -> Cluster {
    let output = Command::new(repo_root().join("scripts/citus-up"))
        .output()
        .unwrap_or_else(|e| panic!("the Citus tests could not run scripts/citus-up: {e}"));
    if !output.status.success() {
        panic!(
            "the Citus tests need a Citus cluster and scripts/citus-up could not provide one: {}",
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    let url = String::from_utf8_lossy(&output.stdout).trim().to_owned();
    let mut conn = PgConnection::connect(&url).await.unwrap();
    let nodes: Vec<(String, i32)> = sqlx::query_as(
        "SELECT nodename, nodeport FROM pg_catalog.pg_dist_node \
         WHERE noderole = 'primary' ORDER BY groupid",
    )
    .fetch_all(&mut conn)
    .await
    .unwrap();
    conn.close().await.unwrap();
    let nodes = nodes
        .into_iter()
        .map(|(host, port)| (host, u16::try_from(port).unwrap_or(0)))
        .collect();
    Cluster { url, nodes }
}

pub fn node_url(base: &str, host: &str, port: u16, database: &str, user: Option<&str>) -> String {
    // `postgres://user[:password]@host:port/database[?query]`, rebuilt with another host, port,
    // database and (optionally) user without a password.
    let (scheme, rest) = base.split_once("://").unwrap_or(("postgres", base));
    let (userinfo, rest) = rest.rsplit_once('@').unwrap_or(("postgres", rest));
    let query = rest
        .split_once('?')
        .map(|(_, q)| format!("?{q}"))
        .unwrap_or_default();
    let userinfo = match user {
        Some(user) => user.to_owned(),
        None => userinfo.to_owned(),
    };
    format!("{scheme}://{userinfo}@{host}:{port}/{database}{query}")
}

/// Drops, on every node, the test databases of runs that started more than an hour ago (a
/// killed run leaves its database behind): `tenancy_citus_<unix seconds>_...`.
async fn drop_stale_databases(cluster: &Cluster, now: u64) {
    for (host, port) in &cluster.nodes {
        let postgres = node_url(&cluster.url, host, *port, "postgres", None);
        let Ok(mut conn) = PgConnection::connect(&postgres).await else {
            continue;
        };
        let names: Vec<String> = sqlx::query_scalar(
            "SELECT datname FROM pg_catalog.pg_database WHERE datname LIKE 'tenancy\\_citus\\_%'",
        )
        .fetch_all(&mut conn)
        .await
        .unwrap_or_default();
        for name in names {
            let started = name
                .split('_')
                .nth(2)
                .and_then(|s| s.parse::<u64>().ok())
                .unwrap_or(0);
            if now.saturating_sub(started) > 3600 {
                let _ = sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
                    "DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"
                )))
                .execute(&mut conn)
                .await;
            }
        }
        let _ = conn.close().await;
    }
}

/// One database with the same name on every node, Citus in each, the nodes registered in it,
/// and the model's Citus migrations applied through the migration runner on the coordinator.
pub struct CitusDb {
    pub name: String,
    pub cluster: Cluster,
    /// The superuser URL of the database on the coordinator.
    pub url: String,
    pub admin: PgPool,
    pub app: PgPool,
    pub migrations: Vec<tenancy_migrate::Migration>,
}

impl CitusDb {
    pub async fn create(model: &Model) -> CitusDb {
        let cluster = cluster().await;
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let name = format!(
            "tenancy_citus_{now}_{}_{}",
            std::process::id(),
            &Uuid::new_v4().simple().to_string()[..8]
        );
        drop_stale_databases(&cluster, now).await;
        // Roles are cluster-wide: one migration at a time.
        let mut lock = PgConnection::connect(&cluster.url).await.unwrap();
        sqlx::query("SELECT pg_catalog.pg_advisory_lock(7401)")
            .execute(&mut lock)
            .await
            .unwrap();
        for (host, port) in &cluster.nodes {
            let postgres = node_url(&cluster.url, host, *port, "postgres", None);
            let mut conn = PgConnection::connect(&postgres).await.unwrap();
            sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
                .execute(&mut conn)
                .await
                .unwrap();
            conn.close().await.unwrap();
            let db = node_url(&cluster.url, host, *port, &name, None);
            let mut conn = PgConnection::connect(&db).await.unwrap();
            sqlx::raw_sql("CREATE EXTENSION citus; CREATE EXTENSION vector;")
                .execute(&mut conn)
                .await
                .unwrap();
            conn.close().await.unwrap();
        }
        let (coordinator_host, coordinator_port) = cluster.nodes[0].clone();
        let url = node_url(
            &cluster.url,
            &coordinator_host,
            coordinator_port,
            &name,
            None,
        );
        let mut conn = PgConnection::connect(&url).await.unwrap();
        sqlx::query("SELECT pg_catalog.citus_set_coordinator_host($1, $2)")
            .bind(&coordinator_host)
            .bind(i32::from(coordinator_port))
            .execute(&mut conn)
            .await
            .unwrap();
        for (host, port) in &cluster.nodes[1..] {
            sqlx::query("SELECT pg_catalog.citus_add_node($1, $2)")
                .bind(host)
                .bind(i32::from(*port))
                .execute(&mut conn)
                .await
                .unwrap();
        }
        // The generated migrations, through the migration runner.
        let dir = std::env::temp_dir().join(format!("{name}_migrations"));
        std::fs::create_dir_all(&dir).unwrap();
        for file in tenancy_core::output::generate_all(model, Target::Citus).unwrap() {
            if let Ok(file_name) = file.path.strip_prefix("migrations") {
                std::fs::write(dir.join(file_name), &file.contents).unwrap();
            }
        }
        let migrations = tenancy_migrate::read_migrations(&dir).unwrap();
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
            "SET citus.shard_count = {SHARD_COUNT}"
        )))
        .execute(&mut conn)
        .await
        .unwrap();
        let applied = tenancy_migrate::apply(&mut conn, &migrations)
            .await
            .unwrap_or_else(|e| panic!("migrate apply on the coordinator: {e}"));
        assert_eq!(applied.len(), migrations.len());
        let status = tenancy_migrate::status(&mut conn, &migrations)
            .await
            .unwrap();
        assert_eq!(status.pending(), 0);
        assert!(!status.has_problems());
        // The tests log in as the app role itself (ALTER ROLE reaches the workers too), and
        // the key is installed on every node.
        sqlx::raw_sql("ALTER ROLE tenancy_app LOGIN")
            .execute(&mut conn)
            .await
            .unwrap();
        sqlx::query("SELECT tenancy.install_context_key($1, $2)")
            .bind(TEST_CONTEXT_KEY_ID)
            .bind(test_context_secret())
            .execute(&mut conn)
            .await
            .unwrap();
        conn.close().await.unwrap();
        lock.close().await.unwrap();
        let _ = std::fs::remove_dir_all(&dir);
        let admin = PgPoolOptions::new()
            .max_connections(3)
            .connect(&url)
            .await
            .unwrap();
        let app_url = node_url(
            &cluster.url,
            &coordinator_host,
            coordinator_port,
            &name,
            Some("tenancy_app"),
        );
        let app = PgPoolOptions::new()
            .max_connections(3)
            .connect(&app_url)
            .await
            .unwrap();
        CitusDb {
            name,
            cluster,
            url,
            admin,
            app,
            migrations,
        }
    }

    pub fn tenancy(&self) -> Tenancy {
        Tenancy::with_config(
            self.app.clone(),
            TenancyConfig {
                citus: true,
                ..TenancyConfig::default()
            },
        )
    }

    /// A connection to `database` on worker `index` (0 or 1) as the superuser.
    pub async fn worker(&self, index: usize) -> PgConnection {
        let (host, port) = &self.cluster.nodes[index + 1];
        PgConnection::connect(&node_url(&self.cluster.url, host, *port, &self.name, None))
            .await
            .unwrap()
    }

    pub async fn drop_db(self) {
        self.admin.close().await;
        self.app.close().await;
        if std::env::var("TENANCY_TEST_KEEP_DB").is_ok_and(|v| !v.is_empty() && v != "0") {
            eprintln!("TENANCY_TEST_KEEP_DB: keeping database {}", self.name);
            return;
        }
        for (host, port) in &self.cluster.nodes {
            let postgres = node_url(&self.cluster.url, host, *port, "postgres", None);
            if let Ok(mut conn) = PgConnection::connect(&postgres).await {
                let _ = sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
                    "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                    self.name
                )))
                .execute(&mut conn)
                .await;
            }
        }
    }
}
