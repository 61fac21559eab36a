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
}

impl ApiError {
    /// An error with an explicit status, machine-readable code and human message.
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
        }
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
            crate::Error::InvalidInput => ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_input",
                "the input violates a constraint (e.g. a reference to a row that does not exist)",
            ),
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
        (self.status, axum::Json(body)).into_response()
    }
}
