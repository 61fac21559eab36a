//! The one error type of the runtime and the repositories generated against it.

/// What went wrong, in terms an HTTP handler can answer with [`Error::http_status`].
///
/// `NotFound` and `Forbidden` carry no detail on purpose: a project of another tenant, a project
/// the user holds no role in and a project that does not exist all give the same `NotFound`, so
/// the error cannot be used to probe other tenants' data.
///
/// ```
/// use tenancy_runtime::Error;
///
/// let error = Error::from(sqlx::Error::RowNotFound);
/// assert!(matches!(error, Error::NotFound));
/// assert_eq!(error.http_status(), 404);
///
/// // SQLSTATE 42501 is what PostgreSQL raises when a row-level-security WITH CHECK fails.
/// let error = Error::for_sqlstate("42501").unwrap();
/// assert!(matches!(error, Error::Forbidden));
/// assert_eq!(error.http_status(), 403);
/// assert_eq!(Error::for_sqlstate("23505").unwrap().http_status(), 409);
/// assert_eq!(Error::for_sqlstate("23503").unwrap().http_status(), 422);
/// // Transient faults are 503s a client may retry (docs/reliability.md).
/// assert_eq!(Error::from(sqlx::Error::PoolTimedOut).http_status(), 503);
/// assert!(Error::is_transient_sqlstate("40001"));
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The row or project does not exist or is not visible to the caller (HTTP 404).
    #[error("not found")]
    NotFound,
    /// The caller's role is too low for the operation, or the database refused it (HTTP 403).
    #[error("forbidden")]
    Forbidden,
    /// The write conflicts with an existing row (unique or exclusion constraint, HTTP 409).
    #[error("conflict with an existing row")]
    Conflict,
    /// The input violates a constraint or has an invalid form (HTTP 422).
    #[error("invalid input")]
    InvalidInput,
    /// A vector's length is not the dimension of the embedding model its tenant uses for a
    /// `per tenant` vector column (a query vector or a vector to write), HTTP 422. Nothing was
    /// searched or written: vectors of two models are never compared.
    #[error(
        "a vector of {got} dimensions, but this tenant's model for the column ({model}) has \
         {expected}"
    )]
    EmbeddingDimension {
        /// The dimension of the tenant's model.
        expected: u32,
        /// The length of the vector given.
        got: u32,
        /// The tenant's model name (`default` when the tenant chose none).
        model: String,
    },
    /// The runtime's configuration or the database schema does not match what the runtime
    /// expects, e.g. a role name that is not `[a-z_][a-z0-9_]*` (HTTP 500).
    #[error("tenancy misconfigured: {0}")]
    Misconfigured(String),
    /// The database refused the transaction's context (SQLSTATE 42501 raised by the signed
    /// context's installer or verifier, docs/context.md): forged, edited, expired, copied from
    /// another transaction or connection, a second context in one transaction, or a key the
    /// database does not hold. HTTP 403. The message is the database's, without row data.
    #[error("context refused by the database: {0}")]
    ContextRefused(String),
    /// A transient fault (HTTP 503): the connection was lost or refused (SQLSTATE class 08, an
    /// I/O error, a closed stream), the server is shutting down or starting (57P01, 57P02,
    /// 57P03), too many connections (53300), a serialization failure or deadlock (40001,
    /// 40P01), a statement cancelled or timed out (57014), or no pooled connection within the
    /// pool's acquire timeout. Retrying the whole request later may succeed; whether a write
    /// whose commit was cut off took effect is unknown (docs/reliability.md).
    #[error("database unavailable ({kind}): {source}")]
    Unavailable {
        /// What happened: [`Error::transient_kind`]'s name for the fault.
        kind: &'static str,
        /// The driver's error (may contain SQL details: log it, do not show it).
        #[source]
        source: sqlx::Error,
    },
    /// Any other database error (HTTP 500). Its text may contain SQL details: log it, do not show
    /// it to end users.
    #[error("database error: {0}")]
    Database(#[source] sqlx::Error),
}

impl Error {
    /// The HTTP status code that answers this error: 404, 403, 409, 422, 503 or 500.
    ///
    /// ```
    /// assert_eq!(tenancy_runtime::Error::InvalidInput.http_status(), 422);
    /// assert_eq!(tenancy_runtime::Error::Conflict.http_status(), 409);
    /// ```
    pub fn http_status(&self) -> u16 {
        match self {
            Error::NotFound => 404,
            Error::Forbidden | Error::ContextRefused(_) => 403,
            Error::Conflict => 409,
            Error::InvalidInput | Error::EmbeddingDimension { .. } => 422,
            Error::Unavailable { .. } => 503,
            Error::Misconfigured(_) | Error::Database(_) => 500,
        }
    }

    /// Whether this is an [`Error::Unavailable`]: a fault a later retry may not meet.
    pub fn is_transient(&self) -> bool {
        matches!(self, Error::Unavailable { .. })
    }

    /// Whether a SQLSTATE names a transient fault: class 08 (connection exception), 57P01,
    /// 57P02, 57P03 (shutdown, crash, starting up), 53300 (too many connections), 40001,
    /// 40P01 (serialization failure, deadlock) or 57014 (statement cancelled or timed out).
    pub fn is_transient_sqlstate(code: &str) -> bool {
        code.starts_with("08")
            || matches!(
                code,
                "57P01" | "57P02" | "57P03" | "53300" | "40001" | "40P01" | "57014"
            )
    }

    /// The kind of transient fault `error` is, or `None` when it is not one: `connection`
    /// (I/O, a closed or broken stream, SQLSTATE class 08), `shutdown` (57P01-57P03, 53300),
    /// `serialization` (40001, 40P01), `statement_timeout` (57014) or `pool_timeout` (no
    /// pooled connection in time, or the pool is closed).
    pub fn transient_kind(error: &sqlx::Error) -> Option<&'static str> {
        match error {
            sqlx::Error::Io(_) | sqlx::Error::Tls(_) | sqlx::Error::Protocol(_) => {
                Some("connection")
            }
            sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed | sqlx::Error::WorkerCrashed => {
                Some("pool_timeout")
            }
            sqlx::Error::Database(db) => {
                let code = db.code()?;
                let code: &str = &code;
                if code.starts_with("08") {
                    Some("connection")
                } else {
                    match code {
                        "57P01" | "57P02" | "57P03" | "53300" => Some("shutdown"),
                        "40001" | "40P01" => Some("serialization"),
                        "57014" => Some("statement_timeout"),
                        _ => None,
                    }
                }
            }
            _ => None,
        }
    }

    /// The error a PostgreSQL SQLSTATE maps to, or `None` when it has no mapping (such errors
    /// become [`Error::Database`]).
    ///
    /// 42501 -> `Forbidden`; 23505, 23P01 -> `Conflict`; 23503, 22P02, 23502, 23514, 22001 ->
    /// `InvalidInput`.
    pub fn for_sqlstate(code: &str) -> Option<Error> {
        match code {
            "42501" => Some(Error::Forbidden),
            "23505" | "23P01" => Some(Error::Conflict),
            "23503" | "22P02" | "23502" | "23514" | "22001" => Some(Error::InvalidInput),
            _ => None,
        }
    }
}

impl From<sqlx::Error> for Error {
    fn from(error: sqlx::Error) -> Self {
        if let sqlx::Error::RowNotFound = error {
            return Error::NotFound;
        }
        if let Some(kind) = Error::transient_kind(&error) {
            return Error::Unavailable {
                kind,
                source: error,
            };
        }
        if let Some(db_error) = error.as_database_error() {
            if db_error.code().is_some_and(|code| code == "42501")
                && db_error.message().starts_with("tenancy: ")
            {
                tracing::warn!(
                    reason = db_error.message(),
                    "context refused by the database"
                );
                return Error::ContextRefused(db_error.message().to_owned());
            }
        }
        let mapped = error
            .as_database_error()
            .and_then(|db_error| db_error.code())
            .and_then(|code| Error::for_sqlstate(&code));
        match mapped {
            Some(mapped) => {
                // The detail (constraint, values) stays in the server log, never in the error.
                tracing::debug!(error = %error, "database error mapped to {mapped:?}");
                mapped
            }
            None => Error::Database(error),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::borrow::Cow;
    use std::error::Error as StdError;
    use std::fmt;

    use sqlx::error::{DatabaseError, ErrorKind};

    use super::*;

    /// A database error with a chosen SQLSTATE, as the driver would produce it.
    #[derive(Debug)]
    struct FakeDbError(&'static str);

    impl fmt::Display for FakeDbError {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            write!(f, "fake error {} with tenant secret detail", self.0)
        }
    }

    impl StdError for FakeDbError {}

    impl DatabaseError for FakeDbError {
        fn message(&self) -> &str {
            "fake error with tenant secret detail"
        }
        fn code(&self) -> Option<Cow<'_, str>> {
            Some(Cow::Borrowed(self.0))
        }
        fn as_error(&self) -> &(dyn StdError + Send + Sync + 'static) {
            self
        }
        fn as_error_mut(&mut self) -> &mut (dyn StdError + Send + Sync + 'static) {
            self
        }
        fn into_error(self: Box<Self>) -> Box<dyn StdError + Send + Sync + 'static> {
            self
        }
        fn kind(&self) -> ErrorKind {
            ErrorKind::Other
        }
    }

    fn from_code(code: &'static str) -> Error {
        Error::from(sqlx::Error::Database(Box::new(FakeDbError(code))))
    }

    #[test]
    fn sqlstates_map_to_variants_and_statuses() {
        let cases: &[(&str, u16)] = &[
            ("42501", 403),
            ("23505", 409),
            ("23P01", 409),
            ("23503", 422),
            ("22P02", 422),
            ("23502", 422),
            ("23514", 422),
            ("22001", 422),
            ("40001", 503),
            ("40P01", 503),
            ("57P01", 503),
            ("57014", 503),
            ("08006", 503),
            ("XX000", 500),
        ];
        for (code, status) in cases {
            assert_eq!(from_code(code).http_status(), *status, "SQLSTATE {code}");
        }
        assert!(matches!(from_code("42501"), Error::Forbidden));
        assert!(matches!(from_code("23505"), Error::Conflict));
        assert!(matches!(from_code("23503"), Error::InvalidInput));
        assert!(matches!(
            from_code("40001"),
            Error::Unavailable {
                kind: "serialization",
                ..
            }
        ));
        assert!(matches!(from_code("XX000"), Error::Database(_)));
    }

    #[test]
    fn row_not_found_is_not_found() {
        let error = Error::from(sqlx::Error::RowNotFound);
        assert!(matches!(error, Error::NotFound));
        assert_eq!(error.http_status(), 404);
    }

    #[test]
    fn mapped_errors_do_not_carry_database_detail() {
        for code in ["42501", "23505", "23503"] {
            let text = from_code(code).to_string();
            assert!(!text.contains("secret"), "{code}: {text}");
        }
        assert_eq!(Error::NotFound.to_string(), "not found");
        assert_eq!(Error::Forbidden.to_string(), "forbidden");
    }

    #[test]
    fn pool_timeouts_are_transient_and_other_driver_errors_are_not() {
        let error = Error::from(sqlx::Error::PoolTimedOut);
        assert!(matches!(
            error,
            Error::Unavailable {
                kind: "pool_timeout",
                ..
            }
        ));
        assert_eq!(error.http_status(), 503);
        assert!(error.is_transient());
        let error = Error::from(sqlx::Error::ColumnNotFound("x".into()));
        assert!(matches!(error, Error::Database(_)));
        assert_eq!(error.http_status(), 500);
    }
}
