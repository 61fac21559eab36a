//! The HTTP layer (feature `axum`): where a request meets the tenancy runtime.
//!
//! * [`JwtVerifier`] checks a bearer JWT (HS256 with a shared secret for development,
//!   RS256/ES256 with keys from a JWKS document for production; issuer, audience and expiry
//!   always checked) and yields the user id (`sub`, a UUID).
//! * [`TenantRequest`] is an axum extractor: bearer token -> user, the `tenant_id` path segment
//!   -> tenant, [`crate::Tenancy::authorize`] -> [`crate::RequestContext`]. Failures answer
//!   401 (token), 404 (not a member of the tenant, same as a tenant that does not exist).
//!   [`TenantRequest::project_scope`] answers 404 for a project the user holds no role in and
//!   403 for a role too low, and counts each refusal in [`HttpMetrics`].
//! * [`ApiError`] is the JSON error answer `{"error": {"code": "...", "message": "..."}}`.
//! * [`trace_requests`] is a middleware that opens one `request` span per request (request id,
//!   tenant id, project id, user id: ids only) and records the latency histogram.
//! * [`HttpMetrics`] renders Prometheus text: refusals by reason, tenant/project counts,
//!   latency by tenant (a keyed hash, never the id) with bounded label cardinality, error
//!   answers by status and code, database pool usage.

mod error;
mod extract;
mod jwt;
mod metrics;

pub use self::error::{ApiError, ErrorCode, UNAVAILABLE_RETRY_AFTER_SECS};
pub use self::extract::{trace_requests, HttpLayer, RequestTenant, TenantRequest};
pub use self::jwt::{AuthFailure, Claims, JwtConfigError, JwtVerifier, MAX_TOKEN_BYTES};
pub use self::metrics::{HttpMetrics, RefusalReason};
