//! An example multi-tenant RAG service on `tenancy_runtime::http` and the generated
//! repositories (see `docs/service.md`).
//!
//! Every `/t/{tenant_id}/...` route authenticates a bearer JWT, authorizes the user in the
//! tenant ([`tenancy_runtime::http::TenantRequest`]), proves the role the operation needs and
//! runs its SQL in a [`tenancy_runtime::ScopedTx`] under row-level security. Similarity search
//! goes through [`tenancy_runtime::vector::VectorGateway`] (exact search for small scopes, a
//! tenant's own HNSW index once [`vector::run_maintenance`] has promoted it).

pub mod api;
pub mod config;
pub mod demo;
pub mod edge;
pub mod input;
pub mod openapi;
pub mod vector;

use std::sync::Arc;

use axum::extract::{DefaultBodyLimit, FromRef, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::Router;
use sqlx::PgPool;
use tenancy_generated::roles::{Editor, Viewer};
use tenancy_generated::Chunks;
use tenancy_runtime::http::{trace_requests, ApiError, HttpLayer, HttpMetrics, JwtVerifier};
use tenancy_runtime::vector::{VectorConfig, VectorGateway};
use tenancy_runtime::{Tenancy, TenancyConfig};

pub use crate::config::Config;
pub use crate::edge::{serve, serve_with, Limits, ServeOptions};

/// Who may read `/metrics` on the API port.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MetricsAccess {
    /// Anyone (tests and embedding; the binary never uses it on the API port).
    Open,
    /// Only a request with `Authorization: Bearer <token>` (`RAG_METRICS_TOKEN`).
    Token(String),
    /// Nobody: 404 (the binary's default; `RAG_METRICS_BIND` serves it on its own listener).
    Off,
}

/// Shared state of every handler.
#[derive(Clone, Debug)]
pub struct AppState {
    http: HttpLayer,
    pool: PgPool,
    maintenance: Option<PgPool>,
    vector: VectorGateway<Viewer, Editor, uuid::Uuid>,
    limits: Limits,
    metrics_access: MetricsAccess,
}

impl AppState {
    /// State over the application-role pool, with the generated [`TenancyConfig`] (its
    /// context key from `TENANCY_CONTEXT_KEY` or `TENANCY_CONTEXT_KEY_FILE`, docs/keys.md);
    /// see [`with_tenancy_config`](Self::with_tenancy_config).
    pub async fn new(
        pool: PgPool,
        maintenance: Option<PgPool>,
        verifier: JwtVerifier,
        busiest_tenants: usize,
    ) -> anyhow::Result<Self> {
        Self::with_tenancy_config(
            pool,
            maintenance,
            verifier,
            busiest_tenants,
            tenancy_generated::config(),
        )
        .await
    }

    /// State over the application-role pool with the runtime configured by `config`.
    /// `maintenance` (a privileged pool) is used only to count tenants and projects for
    /// `/metrics`. Searches use the default [`VectorConfig`] until
    /// [`with_vector_config`](Self::with_vector_config).
    ///
    /// Runs [`Tenancy::check`] first, so a service without a context key, with a key the
    /// database does not hold, or against a database that speaks another context contract
    /// does not start: the error is that check's one sentence
    /// ([`tenancy_runtime::Error::Misconfigured`]), not a 403 on every request.
    pub async fn with_tenancy_config(
        pool: PgPool,
        maintenance: Option<PgPool>,
        verifier: JwtVerifier,
        busiest_tenants: usize,
        config: TenancyConfig,
    ) -> anyhow::Result<Self> {
        let tenancy = Tenancy::with_config(pool.clone(), config);
        tenancy.check().await?;
        let metrics = Arc::new(HttpMetrics::new(busiest_tenants)?);
        Ok(Self {
            http: HttpLayer::new(tenancy, Arc::new(verifier), metrics),
            pool,
            maintenance,
            vector: VectorGateway::new(Chunks::EMBEDDING_VECTORS, VectorConfig::default()),
            limits: Limits::default(),
            metrics_access: MetricsAccess::Open,
        })
    }

    /// The same state with `limits` (page size, `k`, body read and request timeouts).
    pub fn with_limits(mut self, limits: Limits) -> Self {
        self.limits = limits;
        self
    }

    /// The same state recording into `metrics` (e.g. with a stable tenant label key).
    pub fn with_metrics(mut self, metrics: HttpMetrics) -> Self {
        self.http = self.http.with_metrics(Arc::new(metrics));
        self
    }

    /// The limits in force.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// The same state with `/metrics` on the API port readable as `access` says.
    pub fn with_metrics_access(mut self, access: MetricsAccess) -> Self {
        self.metrics_access = access;
        self
    }

    /// The same state with the search gateway on `config` (use the configuration the vector
    /// maintenance runs with, so both agree on the catalog's schema and thresholds).
    pub fn with_vector_config(mut self, config: VectorConfig) -> Self {
        self.vector = VectorGateway::new(Chunks::EMBEDDING_VECTORS, config);
        self
    }

    /// The vector gateway the search endpoints use.
    pub fn vector(&self) -> &VectorGateway<Viewer, Editor, uuid::Uuid> {
        &self.vector
    }

    /// The tenancy runtime.
    pub fn tenancy(&self) -> &Tenancy {
        self.http.tenancy()
    }

    /// The metrics.
    pub fn metrics(&self) -> &HttpMetrics {
        self.http.metrics()
    }
}

impl FromRef<AppState> for HttpLayer {
    fn from_ref(state: &AppState) -> HttpLayer {
        state.http.clone()
    }
}

/// Every route: (method, path, minimum role or `-`, summary). The router and the OpenAPI
/// document are both checked against this table by the tests.
pub const ROUTES: &[(&str, &str, &str, &str)] = &[
    ("GET", "/healthz", "-", "Liveness"),
    ("GET", "/metrics", "-", "Prometheus metrics"),
    ("GET", "/openapi.json", "-", "This OpenAPI document"),
    (
        "GET",
        "/t/{tenant_id}/projects",
        "viewer",
        "The caller's projects and roles",
    ),
    (
        "POST",
        "/t/{tenant_id}/search",
        "viewer",
        "Similarity search over every readable project",
    ),
    (
        "GET",
        "/t/{tenant_id}/projects/{project_id}/documents",
        "viewer",
        "List documents",
    ),
    (
        "POST",
        "/t/{tenant_id}/projects/{project_id}/documents",
        "editor",
        "Create a document",
    ),
    (
        "GET",
        "/t/{tenant_id}/projects/{project_id}/documents/{document_id}",
        "viewer",
        "Get a document",
    ),
    (
        "PATCH",
        "/t/{tenant_id}/projects/{project_id}/documents/{document_id}",
        "editor",
        "Update a document",
    ),
    (
        "DELETE",
        "/t/{tenant_id}/projects/{project_id}/documents/{document_id}",
        "admin",
        "Delete a document",
    ),
    (
        "GET",
        "/t/{tenant_id}/projects/{project_id}/documents/{document_id}/chunks",
        "viewer",
        "List a document's chunks",
    ),
    (
        "POST",
        "/t/{tenant_id}/projects/{project_id}/documents/{document_id}/chunks",
        "editor",
        "Ingest a batch of chunks with embeddings",
    ),
    (
        "POST",
        "/t/{tenant_id}/projects/{project_id}/search",
        "viewer",
        "Similarity search in one project",
    ),
    (
        "GET",
        "/t/{tenant_id}/projects/{project_id}/queries",
        "viewer",
        "List queries",
    ),
    (
        "POST",
        "/t/{tenant_id}/projects/{project_id}/queries",
        "viewer",
        "Record a query",
    ),
    (
        "GET",
        "/t/{tenant_id}/projects/{project_id}/queries/{query_id}",
        "viewer",
        "Get a query",
    ),
    (
        "GET",
        "/t/{tenant_id}/projects/{project_id}/queries/{query_id}/responses",
        "viewer",
        "List a query's responses",
    ),
    (
        "POST",
        "/t/{tenant_id}/projects/{project_id}/queries/{query_id}/responses",
        "editor",
        "Record a response",
    ),
    (
        "GET",
        "/t/{tenant_id}/projects/{project_id}/responses/{response_id}/assertions",
        "viewer",
        "List a response's assertions",
    ),
    (
        "POST",
        "/t/{tenant_id}/projects/{project_id}/responses/{response_id}/assertions",
        "editor",
        "Record an assertion",
    ),
    (
        "GET",
        "/t/{tenant_id}/projects/{project_id}/members",
        "admin",
        "List members",
    ),
    (
        "POST",
        "/t/{tenant_id}/projects/{project_id}/members",
        "admin",
        "Add a member with a role",
    ),
    (
        "PUT",
        "/t/{tenant_id}/projects/{project_id}/members/{user_id}",
        "admin",
        "Change a member's role",
    ),
    (
        "DELETE",
        "/t/{tenant_id}/projects/{project_id}/members/{user_id}",
        "admin",
        "Remove a member",
    ),
    (
        "GET",
        "/t/{tenant_id}/projects/{project_id}/usage",
        "admin",
        "The project's rows per table",
    ),
];

/// The service's router: body limit (413), body read and request timeouts (408, 503
/// `timeout`), one retry of idempotent requests after a transient fault, request spans and
/// metrics (see [`edge`]).
pub fn router(state: AppState, body_limit_bytes: usize) -> Router {
    const P: &str = "/t/{tenant_id}/projects/{project_id}";
    Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/metrics", get(metrics))
        .route("/openapi.json", get(openapi_json))
        .route("/t/{tenant_id}/projects", get(api::my_projects))
        .route("/t/{tenant_id}/search", post(api::search_tenant))
        .route(
            &format!("{P}/documents"),
            get(api::list_documents).post(api::create_document),
        )
        .route(
            &format!("{P}/documents/{{document_id}}"),
            get(api::get_document)
                .patch(api::update_document)
                .delete(api::delete_document),
        )
        .route(
            &format!("{P}/documents/{{document_id}}/chunks"),
            get(api::list_chunks).post(api::ingest_chunks),
        )
        .route(&format!("{P}/search"), post(api::search_project))
        .route(
            &format!("{P}/queries"),
            get(api::list_queries).post(api::create_query),
        )
        .route(&format!("{P}/queries/{{query_id}}"), get(api::get_query))
        .route(
            &format!("{P}/queries/{{query_id}}/responses"),
            get(api::list_responses).post(api::create_response),
        )
        .route(
            &format!("{P}/responses/{{response_id}}/assertions"),
            get(api::list_assertions).post(api::create_assertion),
        )
        .route(
            &format!("{P}/members"),
            get(api::list_members).post(api::add_member),
        )
        .route(
            &format!("{P}/members/{{user_id}}"),
            put(api::change_role).delete(api::remove_member),
        )
        .route(&format!("{P}/usage"), get(api::project_usage))
        .fallback(|| async { ApiError::not_found() })
        .method_not_allowed_fallback(|| async {
            ApiError::new(
                StatusCode::METHOD_NOT_ALLOWED,
                "method_not_allowed",
                "method not allowed",
            )
        })
        .layer(DefaultBodyLimit::max(body_limit_bytes))
        .layer(axum::middleware::from_fn_with_state(
            (state.clone(), body_limit_bytes),
            edge::limit_and_retry,
        ))
        .layer(axum::middleware::from_fn_with_state(
            state.http.clone(),
            trace_requests,
        ))
        .with_state(state)
}

/// A router with only `/metrics` (no authentication) and `/healthz`, for a listener of its own
/// (`RAG_METRICS_BIND`) that only the scraper can reach.
pub fn metrics_router(state: AppState) -> Router {
    Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/metrics", get(metrics_body))
        .with_state(state)
}

async fn openapi_json() -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "application/json")],
        openapi::document_json(),
    )
}

/// `/metrics` on the API port: as [`MetricsAccess`] says (404 when off, 401 without the
/// token).
async fn metrics(State(state): State<AppState>, headers: HeaderMap) -> Response {
    match &state.metrics_access {
        MetricsAccess::Open => {}
        MetricsAccess::Off => return ApiError::not_found().into_response(),
        MetricsAccess::Token(token) => {
            let presented = headers
                .get(header::AUTHORIZATION)
                .and_then(|value| value.to_str().ok())
                .and_then(|value| value.strip_prefix("Bearer "));
            if !presented.is_some_and(|presented| constant_time_eq(presented, token)) {
                return ApiError::unauthorized("/metrics needs its bearer token").into_response();
            }
        }
    }
    metrics_body(State(state)).await.into_response()
}

/// Compares two strings in time that depends only on their lengths.
fn constant_time_eq(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

async fn metrics_body(State(state): State<AppState>) -> impl IntoResponse {
    state.metrics().set_pool_usage(&state.pool);
    if let Some(maintenance) = &state.maintenance {
        // Counting every tenant needs a role that row-level security does not filter.
        let counts: Result<(i64, i64), sqlx::Error> = sqlx::query_as(
            "SELECT (SELECT count(*) FROM tenants), (SELECT count(*) FROM projects)",
        )
        .fetch_one(maintenance)
        .await;
        match counts {
            Ok((tenants, projects)) => state.metrics().set_entity_counts(tenants, projects),
            Err(_) => tracing::warn!("metrics: counting tenants and projects failed"),
        }
    }
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        state.metrics().render(),
    )
}
