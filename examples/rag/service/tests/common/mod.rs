//! Starts the service over real HTTP (127.0.0.1:0) on a fresh database with the demo data.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use rag_service::demo::{ids, mint_token, seed};
use rag_service::{router, serve, vector, AppState};
use reqwest::{Client, Method, StatusCode};
use serde_json::Value;
use tenancy_runtime::http::JwtVerifier;
use tenancy_runtime::vector::VectorConfig;
use tenancy_tests::TestDb;
use uuid::Uuid;

pub const SECRET: &[u8] = b"test-secret";
pub const ISSUER: &str = "test-issuer";
pub const AUDIENCE: &str = "test-audience";
/// The tenant label key of the tests' metrics.
pub const LABEL_KEY: &[u8] = b"test-metrics-label-key";

/// The `tenant` label the tests' metrics give `tenant`.
pub fn tenant_label(tenant: Uuid) -> String {
    tenancy_runtime::http::HttpMetrics::new(1)
        .unwrap()
        .with_label_key(LABEL_KEY)
        .tenant_label(tenancy_runtime::TenantId::new(tenant))
}

fn test_metrics() -> tenancy_runtime::http::HttpMetrics {
    tenancy_runtime::http::HttpMetrics::new(10)
        .unwrap()
        .with_label_key(LABEL_KEY)
}

/// How [`Service::start_opts`] builds the service.
pub struct StartOptions {
    pub body_limit: usize,
    pub limits: rag_service::Limits,
    pub serve: rag_service::ServeOptions,
    pub metrics_access: rag_service::MetricsAccess,
    pub tenancy_config: tenancy_runtime::TenancyConfig,
    /// The app pool (default: the test database's).
    pub app_pool: Option<sqlx::PgPool>,
    /// An existing database (default: a fresh one with the demo data).
    pub db: Option<TestDb>,
    /// The token verifier (default: HS256 with [`SECRET`], no leeway, no maximum lifetime).
    pub verifier: Option<JwtVerifier>,
}

impl Default for StartOptions {
    fn default() -> Self {
        StartOptions {
            body_limit: 64 * 1024,
            limits: rag_service::Limits::default(),
            serve: rag_service::ServeOptions::default(),
            metrics_access: rag_service::MetricsAccess::Open,
            tenancy_config: tenancy_generated::config(),
            app_pool: None,
            db: None,
            verifier: None,
        }
    }
}

pub struct Service {
    pub db: TestDb,
    pub base: String,
    pub client: Client,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    maintenance: Option<tokio::task::JoinHandle<()>>,
}

impl Service {
    pub async fn start() -> Service {
        Self::start_with_limit(64 * 1024).await
    }

    pub async fn start_with_limit(body_limit: usize) -> Service {
        Self::start_with(body_limit, VectorConfig::default(), None).await
    }

    /// As the binary does with a maintenance URL: the vector catalog is installed through the
    /// admin pool, and maintenance runs every `maintenance_every` (never when `None`).
    pub async fn start_with(
        body_limit: usize,
        vector_config: VectorConfig,
        maintenance_every: Option<std::time::Duration>,
    ) -> Service {
        let db = TestDb::fresh().await;
        seed(db.admin_pool()).await.expect("seed");
        let maintenance =
            vector::prepare_maintenance(db.admin_pool().clone(), vector_config.clone())
                .await
                .expect("vector catalog");
        let maintenance =
            maintenance_every.map(|every| vector::spawn_maintenance(maintenance, every));
        let state = AppState::new(
            db.app_pool().clone(),
            Some(db.admin_pool().clone()),
            JwtVerifier::hs256(SECRET, ISSUER, AUDIENCE),
            10,
        )
        .await
        .expect("state")
        .with_vector_config(vector_config)
        .with_metrics(test_metrics());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(serve(listener, router(state, body_limit), async {
            let _ = rx.await;
        }));
        Service {
            db,
            base,
            client: Client::new(),
            shutdown: Some(tx),
            maintenance,
        }
    }

    /// A service built as `options` say (vector catalog installed, no maintenance loop).
    pub async fn start_opts(options: StartOptions) -> Service {
        let db = match options.db {
            Some(db) => db,
            None => {
                let db = TestDb::fresh().await;
                seed(db.admin_pool()).await.expect("seed");
                db
            }
        };
        vector::prepare_maintenance(db.admin_pool().clone(), VectorConfig::default())
            .await
            .expect("vector catalog");
        let pool = options.app_pool.unwrap_or_else(|| db.app_pool().clone());
        let state = AppState::with_tenancy_config(
            pool,
            Some(db.admin_pool().clone()),
            options
                .verifier
                .unwrap_or_else(|| JwtVerifier::hs256(SECRET, ISSUER, AUDIENCE)),
            10,
            options.tenancy_config,
        )
        .await
        .expect("state")
        .with_limits(options.limits)
        .with_metrics_access(options.metrics_access)
        .with_metrics(test_metrics());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(rag_service::serve_with(
            listener,
            router(state, options.body_limit),
            async {
                let _ = rx.await;
            },
            options.serve,
        ));
        Service {
            db,
            base,
            client: Client::new(),
            shutdown: Some(tx),
            maintenance: None,
        }
    }

    /// `host:port` of the listener.
    pub fn address(&self) -> String {
        self.base.trim_start_matches("http://").to_owned()
    }

    pub fn token(&self, user: Uuid) -> String {
        mint_token(SECRET, ISSUER, AUDIENCE, user, 600).unwrap()
    }

    /// Sends a request as `user` (no token when `None`); returns status and JSON (or Null).
    pub async fn call(
        &self,
        user: Option<Uuid>,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let mut request = self
            .client
            .request(method, format!("{}{}", self.base, path));
        if let Some(user) = user {
            request = request.bearer_auth(self.token(user));
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.unwrap();
        let status = response.status();
        let text = response.text().await.unwrap();
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    pub async fn get(&self, user: Uuid, path: &str) -> (StatusCode, Value) {
        self.call(Some(user), Method::GET, path, None).await
    }

    pub async fn post(&self, user: Uuid, path: &str, body: Value) -> (StatusCode, Value) {
        self.call(Some(user), Method::POST, path, Some(body)).await
    }

    pub async fn metrics(&self) -> String {
        self.client
            .get(format!("{}/metrics", self.base))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    }

    /// Adds a membership directly (superuser), for fixtures.
    pub async fn grant(&self, tenant: Uuid, project: Uuid, user: Uuid, role: &str) {
        sqlx::query(
            "INSERT INTO user_project_roles (tenant_id, project_id, user_id, role) \
             VALUES ($1, $2, $3, $4::tenancy.project_role)",
        )
        .bind(tenant)
        .bind(project)
        .bind(user)
        .bind(role)
        .execute(self.db.admin_pool())
        .await
        .unwrap();
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(task) = self.maintenance.take() {
            task.abort();
        }
    }
}

pub fn acme(project: Uuid) -> String {
    format!("/t/{}/projects/{}", ids::ACME, project)
}

pub fn globex(project: Uuid) -> String {
    format!("/t/{}/projects/{}", ids::GLOBEX, project)
}

/// A 384-dimensional unit vector along axis `axis`.
pub fn axis(axis: usize) -> Vec<f32> {
    let mut v = vec![0.0f32; 384];
    v[axis % 384] = 1.0;
    v
}

/// The value of one sample line of the Prometheus text, e.g. `name{label="x"}`.
pub fn sample(metrics: &str, series: &str) -> Option<f64> {
    metrics
        .lines()
        .find(|line| line.starts_with(series) && line[series.len()..].starts_with(' '))
        .and_then(|line| line[series.len()..].trim().parse().ok())
}
