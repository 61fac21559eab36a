//! Pooled connections that planted session state cannot steer (docs/security.md).
//!
//! An attacker who runs SQL as the application role can leave state on a pooled connection
//! (session-level `SET`, a held advisory lock, a `LISTEN`, an open cursor) and can plant role
//! defaults for every future login (`ALTER ROLE CURRENT_USER [IN DATABASE ..] SET ...`), which
//! stock PostgreSQL cannot refuse. [`pinned_connect_options`] sends every setting the runtime
//! depends on as a startup option, which PostgreSQL applies over role and database defaults, so a
//! planted `statement_timeout`, `default_transaction_read_only` or `search_path` changes nothing;
//! [`pool_options`] resets session state whenever a connection returns to the pool.
//!
//! Through PgBouncer in transaction mode neither applies (it refuses the `options` startup
//! parameter and reuses its own server connections): pin the same settings in PgBouncer's
//! `connect_query` and keep its `server_reset_query` (docs/security.md).

use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{Executor, PgPool};

use crate::error::Error;

/// What [`pool_options`] runs on a connection returned to the pool: every session-level
/// setting back to its startup value (the pinned ones included), cursors closed, channels
/// unlistened, advisory locks released.
pub const RESET_SESSION_SQL: &str =
    "RESET ALL; CLOSE ALL; UNLISTEN *; SELECT pg_catalog.pg_advisory_unlock_all()";

/// The session settings the runtime pins on its connections.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SessionSettings {
    /// `search_path` for the runtime's and the generated repositories' table names
    /// (default `public`; `pg_catalog` is always searched first).
    pub search_path: String,
    /// `statement_timeout` (default none).
    pub statement_timeout: Option<Duration>,
    /// `lock_timeout` (default none).
    pub lock_timeout: Option<Duration>,
}

impl Default for SessionSettings {
    fn default() -> Self {
        Self {
            search_path: crate::TABLE_SCHEMA.to_owned(),
            statement_timeout: None,
            lock_timeout: None,
        }
    }
}

impl SessionSettings {
    /// The `(name, value)` pairs sent as startup options, unescaped: sqlx (0.9 and later)
    /// escapes them for the `options` startup parameter itself (a backslash before every space
    /// and backslash), so escaping them here too would corrupt values such as
    /// `read committed`.
    pub fn startup_options(&self) -> Vec<(&'static str, String)> {
        let millis = |d: Option<Duration>| d.map_or(0, |d| d.as_millis()).to_string();
        vec![
            ("search_path", self.search_path.clone()),
            ("statement_timeout", millis(self.statement_timeout)),
            ("lock_timeout", millis(self.lock_timeout)),
            ("idle_in_transaction_session_timeout", "0".to_owned()),
            ("default_transaction_read_only", "off".to_owned()),
            ("default_transaction_isolation", "read committed".to_owned()),
            ("default_transaction_deferrable", "off".to_owned()),
            ("row_security", "on".to_owned()),
            ("plan_cache_mode", "auto".to_owned()),
        ]
    }
}

/// `options` with `settings` pinned as startup options (direct connections; see the module docs
/// for PgBouncer).
pub fn pinned_connect_options(
    options: PgConnectOptions,
    settings: &SessionSettings,
) -> PgConnectOptions {
    options.options(settings.startup_options())
}

/// Pool options whose connections are reset ([`RESET_SESSION_SQL`]) each time they return to
/// the pool. A connection whose reset fails is closed instead of reused.
pub fn pool_options() -> PgPoolOptions {
    PgPoolOptions::new().after_release(|conn, _meta| {
        Box::pin(async move {
            conn.execute(RESET_SESSION_SQL).await?;
            Ok(true)
        })
    })
}

/// A pool for the application role at `url` with pinned settings and the reset on release.
pub async fn connect(
    url: &str,
    settings: &SessionSettings,
    max_connections: u32,
) -> Result<PgPool, Error> {
    let options: PgConnectOptions = url
        .parse()
        .map_err(|err| Error::Misconfigured(format!("database URL: {err}")))?;
    Ok(pool_options()
        .max_connections(max_connections)
        .connect_with(pinned_connect_options(options, settings))
        .await?)
}
