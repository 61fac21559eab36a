//! The JSON error answer of every endpoint.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

/// An error answer: an HTTP status and `{"error": {"code": "...", "message": "..."}}`.
///
/// Messages never carry database detail: [`crate::Error::Database`] and
/// [`crate::Error::Misconfigured`] become a generic 500 whose cause is logged (its kind only).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    status: StatusCode,
    code: &'static str,
    message: String,
    retry_after: Option<u32>,
}

/// The code of an error answer, left in the response's extensions by [`ApiError`]'s
/// `into_response` so that middleware ([`super::trace_requests`]) can count errors by code.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ErrorCode(pub &'static str);

/// Seconds a client is told to wait (`Retry-After`) after a transient database fault.
pub const UNAVAILABLE_RETRY_AFTER_SECS: u32 = 1;

impl ApiError {
    /// An error with an explicit status, machine-readable code and human message.
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            retry_after: None,
        }
    }

    /// The same error with a `Retry-After: <seconds>` header.
    pub fn with_retry_after(mut self, seconds: u32) -> Self {
        self.retry_after = Some(seconds);
        self
    }

    /// 503 `unavailable` with `Retry-After`: a transient fault (database connection lost or
    /// refused, server shutting down, serialization failure or deadlock, no pooled connection
    /// in time); the same request may succeed later.
    pub fn unavailable(message: impl Into<String>) -> Self {
        Self::new(StatusCode::SERVICE_UNAVAILABLE, "unavailable", message)
            .with_retry_after(UNAVAILABLE_RETRY_AFTER_SECS)
    }

    /// 503 `timeout` with `Retry-After`: the request or one of its statements ran past its
    /// time limit and was cancelled (nothing it wrote was committed unless it had answered).
    pub fn timeout(message: impl Into<String>) -> Self {
        Self::new(StatusCode::SERVICE_UNAVAILABLE, "timeout", message)
            .with_retry_after(UNAVAILABLE_RETRY_AFTER_SECS)
    }

    /// The `Retry-After` seconds, if any.
    pub fn retry_after(&self) -> Option<u32> {
        self.retry_after
    }

    /// 401 `unauthorized`.
    pub fn unauthorized(message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "unauthorized", message)
    }

    /// 404 `not_found` (also the answer for things the caller may not know exist).
    pub fn not_found() -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", "not found")
    }

    /// 403 `forbidden`.
    pub fn forbidden() -> Self {
        Self::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            "your role does not allow this",
        )
    }

    /// 422 `invalid_field` naming the offending field.
    pub fn invalid_field(field: &str, problem: &str) -> Self {
        Self::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_field",
            format!("{field}: {problem}"),
        )
    }

    /// 409 `conflict`.
    pub fn conflict(message: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, "conflict", message)
    }

    /// 500 `internal` with a generic message.
    pub fn internal() -> Self {
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "internal error",
        )
    }

    /// The HTTP status.
    pub fn status(&self) -> StatusCode {
        self.status
    }

    /// The machine-readable code, e.g. `not_found`.
    pub fn code(&self) -> &'static str {
        self.code
    }

    /// The human-readable message.
    pub fn message(&self) -> &str {
        &self.message
    }
}

impl From<crate::Error> for ApiError {
    fn from(error: crate::Error) -> Self {
        match error {
            crate::Error::NotFound => ApiError::not_found(),
            crate::Error::Forbidden => ApiError::forbidden(),
            crate::Error::ContextRefused(_) => ApiError::new(
                StatusCode::FORBIDDEN,
                "context_refused",
                "the database refused the request context",
            ),
            crate::Error::Conflict => ApiError::conflict("conflicts with an existing row"),
            crate::Error::EmbeddingDimension { expected, got, .. } => ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "vector_dimension",
                format!(
                    "the vector has {got} dimensions; this tenant's vector model has {expected}"
                ),
            ),
            crate::Error::InvalidInput => ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_input",
                "the input violates a constraint (e.g. a reference to a row that does not exist)",
            ),
            crate::Error::Unavailable { kind, ref source } => {
                let sqlstate = source
                    .as_database_error()
                    .and_then(|e| e.code())
                    .map(|c| c.into_owned())
                    .unwrap_or_default();
                tracing::warn!(
                    kind,
                    sqlstate = %sqlstate,
                    error_kind = database_error_kind(source),
                    "transient database fault"
                );
                if kind == "statement_timeout" {
                    ApiError::timeout("a database statement ran past its time limit; retry later")
                } else {
                    ApiError::unavailable("the database is unavailable for a moment; retry later")
                }
            }
            crate::Error::Misconfigured(_) => {
                tracing::error!("tenancy misconfigured");
                ApiError::internal()
            }
            crate::Error::Database(ref db) => {
                // The error text may quote values; log only its kind and SQLSTATE.
                let sqlstate = db
                    .as_database_error()
                    .and_then(|e| e.code())
                    .map(|c| c.into_owned())
                    .unwrap_or_default();
                tracing::error!(sqlstate = %sqlstate, kind = database_error_kind(db), "database error");
                ApiError::internal()
            }
        }
    }
}

/// A short, value-free name for a sqlx error.
fn database_error_kind(error: &sqlx::Error) -> &'static str {
    match error {
        sqlx::Error::Database(_) => "database",
        sqlx::Error::PoolTimedOut => "pool_timed_out",
        sqlx::Error::PoolClosed => "pool_closed",
        sqlx::Error::Io(_) => "io",
        sqlx::Error::Protocol(_) => "protocol",
        sqlx::Error::ColumnDecode { .. } | sqlx::Error::Decode(_) => "decode",
        _ => "other",
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} {}: {}",
            self.status.as_u16(),
            self.code,
            self.message
        )
    }
}

impl std::error::Error for ApiError {}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = serde_json::json!({
            "error": { "code": self.code, "message": self.message }
        });
        let mut response = (self.status, axum::Json(body)).into_response();
        if let Some(seconds) = self.retry_after {
            response.headers_mut().insert(
                axum::http::header::RETRY_AFTER,
                axum::http::HeaderValue::from(seconds),
            );
        }
        response.extensions_mut().insert(ErrorCode(self.code));
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transient_faults_answer_503_with_retry_after() {
        let response =
            ApiError::from(crate::Error::from(sqlx::Error::PoolTimedOut)).into_response();
        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(
            response.headers().get(axum::http::header::RETRY_AFTER),
            Some(&axum::http::HeaderValue::from(UNAVAILABLE_RETRY_AFTER_SECS))
        );
        assert_eq!(
            response.extensions().get::<ErrorCode>(),
            Some(&ErrorCode("unavailable"))
        );
        let not_found = ApiError::not_found().into_response();
        assert!(not_found
            .headers()
            .get(axum::http::header::RETRY_AFTER)
            .is_none());
    }

    #[test]
    fn a_vector_of_another_dimension_answers_422_with_both_lengths() {
        let error = ApiError::from(crate::Error::EmbeddingDimension {
            expected: 1024,
            got: 384,
            model: "bge-m3".to_owned(),
        });
        assert_eq!(error.code(), "vector_dimension");
        assert_eq!(
            error.message(),
            "the vector has 384 dimensions; this tenant's vector model has 1024"
        );
        assert_eq!(
            error.into_response().status(),
            StatusCode::UNPROCESSABLE_ENTITY
        );
    }
}
