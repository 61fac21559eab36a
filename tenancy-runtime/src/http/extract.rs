//! The axum extractor that turns a bearer token and a tenant path segment into a
//! [`RequestContext`], and the per-request tracing middleware.

use std::sync::{Arc, OnceLock};
use std::time::Instant;

use axum::extract::{FromRef, FromRequestParts, RawPathParams, Request, State};
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use axum::http::HeaderValue;
use axum::middleware::Next;
use axum::response::Response;
use tracing::field::Empty;
use tracing::Instrument;

use super::error::{ApiError, ErrorCode};
use super::jwt::{AuthFailure, JwtVerifier};
use super::metrics::{HttpMetrics, RefusalReason};
use crate::{
    Error, ProjectId, ProjectScope, ProjectsScope, RequestContext, Role, Tenancy, TenantId,
};

/// The path parameter that names the tenant (`/t/{tenant_id}/...`).
pub const TENANT_PATH_PARAM: &str = "tenant_id";

/// What the extractor needs: the runtime, the token verifier and the metrics. Cheap to clone;
/// put it in the router state and implement `FromRef<YourState> for HttpLayer`.
#[derive(Clone, Debug)]
pub struct HttpLayer {
    tenancy: Tenancy,
    verifier: Arc<JwtVerifier>,
    metrics: Arc<HttpMetrics>,
}

impl HttpLayer {
    /// Bundles the runtime, verifier and metrics.
    pub fn new(tenancy: Tenancy, verifier: Arc<JwtVerifier>, metrics: Arc<HttpMetrics>) -> Self {
        Self {
            tenancy,
            verifier,
            metrics,
        }
    }

    /// The same layer recording into `metrics` (e.g. metrics with a configured label key).
    pub fn with_metrics(mut self, metrics: Arc<HttpMetrics>) -> Self {
        self.metrics = metrics;
        self
    }

    /// The runtime.
    pub fn tenancy(&self) -> &Tenancy {
        &self.tenancy
    }

    /// The token verifier.
    pub fn verifier(&self) -> &JwtVerifier {
        &self.verifier
    }

    /// The metrics.
    pub fn metrics(&self) -> &Arc<HttpMetrics> {
        &self.metrics
    }
}

/// The tenant a request was authorized for, shared between the extractor (which sets it) and
/// [`trace_requests`] (which labels the latency with it). Only authorized tenants are set.
#[derive(Clone, Debug, Default)]
pub struct RequestTenant(Arc<OnceLock<TenantId>>);

impl RequestTenant {
    /// The authorized tenant, if the request got that far.
    pub fn get(&self) -> Option<TenantId> {
        self.0.get().copied()
    }
}

/// An authenticated, tenant-authorized request: the user's [`RequestContext`] in the tenant
/// named by the `tenant_id` path segment.
///
/// Rejections: 401 for a missing/malformed/expired/wrongly signed token; 404 when the tenant id
/// is not a UUID or the user holds no role in that tenant (same as a tenant that does not
/// exist). Every rejection is counted in [`HttpMetrics`].
#[derive(Debug)]
pub struct TenantRequest {
    context: RequestContext,
    metrics: Arc<HttpMetrics>,
}

impl TenantRequest {
    /// The request context (user, tenant, memberships).
    pub fn context(&self) -> &RequestContext {
        &self.context
    }

    /// A single-project scope with role at least `R`: 404 when the user holds no role in the
    /// project (or it does not exist), 403 when the role is too low. Records the project id on
    /// the request span and counts refusals.
    pub fn project_scope<R: Role>(&self, project: ProjectId) -> Result<ProjectScope<R>, ApiError> {
        tracing::Span::current().record("project_id", tracing::field::display(project));
        let access = self.context.project(project).map_err(|error| {
            self.metrics.record_refusal(RefusalReason::UnknownProject);
            ApiError::from(error)
        })?;
        access.require::<R>().map_err(|error| {
            if matches!(error, Error::Forbidden) {
                self.metrics.record_refusal(RefusalReason::RoleTooLow);
            }
            ApiError::from(error)
        })
    }

    /// Every project of the tenant where the user's role is at least `R` (read scope; may be
    /// empty, then reads return nothing).
    pub fn readable_projects<R: Role>(&self) -> ProjectsScope<R> {
        self.context.all_projects().with_at_least::<R>()
    }

    /// Counts a refusal decided by the handler (e.g. a membership rule).
    pub fn record_refusal(&self, reason: RefusalReason) {
        self.metrics.record_refusal(reason);
    }
}

/// The bearer token of the request.
fn bearer_token(parts: &Parts) -> Result<&str, AuthFailure> {
    let value = parts
        .headers
        .get(AUTHORIZATION)
        .ok_or(AuthFailure::Missing)?
        .to_str()
        .map_err(|_| AuthFailure::Malformed)?;
    let (scheme, token) = value.split_once(' ').ok_or(AuthFailure::Malformed)?;
    if !scheme.eq_ignore_ascii_case("bearer") || token.trim().is_empty() {
        return Err(AuthFailure::Malformed);
    }
    Ok(token.trim())
}

impl<S> FromRequestParts<S> for TenantRequest
where
    HttpLayer: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let layer = HttpLayer::from_ref(state);
        let metrics = Arc::clone(&layer.metrics);
        let user = bearer_token(parts)
            .and_then(|token| layer.verifier.verify(token))
            .map_err(|failure| {
                metrics.record_refusal(RefusalReason::Token(failure.reason()));
                ApiError::unauthorized(format!(
                    "a valid bearer token is required ({})",
                    failure.reason()
                ))
            })?;
        let span = tracing::Span::current();
        span.record("user_id", tracing::field::display(user));

        let params = RawPathParams::from_request_parts(parts, state)
            .await
            .map_err(|_| ApiError::not_found())?;
        let tenant = params
            .iter()
            .find(|(name, _)| *name == TENANT_PATH_PARAM)
            .and_then(|(_, value)| uuid::Uuid::parse_str(value).ok())
            .map(TenantId::new)
            .ok_or_else(|| {
                metrics.record_refusal(RefusalReason::UnknownTenant);
                ApiError::not_found()
            })?;
        let context = layer
            .tenancy
            .authorize(user, tenant)
            .await
            .map_err(|error| {
                if matches!(error, Error::NotFound) {
                    metrics.record_refusal(RefusalReason::UnknownTenant);
                }
                ApiError::from(error)
            })?;
        span.record("tenant_id", tracing::field::display(tenant));
        if let Some(slot) = parts.extensions.get::<RequestTenant>() {
            let _ = slot.0.set(tenant);
        }
        Ok(TenantRequest { context, metrics })
    }
}

/// Middleware (`axum::middleware::from_fn_with_state(layer, trace_requests)`): one `request`
/// span per request with a fresh `request_id` (also returned as `x-request-id`) and empty
/// `tenant_id`, `project_id`, `user_id` fields the extractor fills in; logs one
/// `request finished` event (status, latency) and records the latency histogram.
pub async fn trace_requests(
    State(layer): State<HttpLayer>,
    mut request: Request,
    next: Next,
) -> Response {
    let request_id = uuid::Uuid::new_v4();
    let tenant_slot = RequestTenant::default();
    request.extensions_mut().insert(tenant_slot.clone());
    let span = tracing::info_span!(
        "request",
        request_id = %request_id,
        method = %request.method(),
        tenant_id = Empty,
        project_id = Empty,
        user_id = Empty,
        status = Empty,
    );
    let started = Instant::now();
    let mut response = next.run(request).instrument(span.clone()).await;
    let elapsed = started.elapsed();
    span.record("status", response.status().as_u16());
    span.in_scope(|| {
        tracing::info!(
            latency_us = u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX),
            "request finished"
        );
    });
    layer
        .metrics
        .observe_request(tenant_slot.get(), elapsed.as_secs_f64());
    if let Some(code) = response.extensions().get::<ErrorCode>() {
        layer
            .metrics
            .record_error(response.status().as_u16(), code.0);
    }
    if let Ok(value) = HeaderValue::from_str(&request_id.to_string()) {
        response.headers_mut().insert("x-request-id", value);
    }
    response
}
