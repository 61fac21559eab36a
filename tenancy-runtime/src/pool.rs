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
//!
//! [`Pooler::Transaction`] (`TENANCY_POOLER=transaction`, or `tenancy_pooler=transaction` in
//! the URL's query) makes [`connect_with`] build a pool that works behind such a pooler: sqlx's
//! statement cache off (every statement unnamed, so no `prepared statement "sqlx_s_1" already
//! exists`, SQLSTATE 42P05/26000/08P01, when another client's statement of the same name sits
//! on the server connection), no startup options, no reset on release (docs/reliability.md).

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

/// The environment variable naming the connection pooler between the runtime and PostgreSQL:
/// `none` (default) or `transaction` (PgBouncer or another pooler in transaction mode).
pub const POOLER_ENV: &str = "TENANCY_POOLER";

/// The URL query parameter naming the pooler (`tenancy_pooler=transaction`); [`connect_with`]
/// removes it before sqlx parses the URL and it takes precedence over [`POOLER_ENV`].
pub const POOLER_URL_PARAM: &str = "tenancy_pooler";

/// What sits between the runtime and PostgreSQL.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Pooler {
    /// Nothing, or a pooler in session mode: each client connection is one server connection.
    #[default]
    None,
    /// A pooler in transaction mode (PgBouncer `pool_mode = transaction`): consecutive
    /// transactions of one client connection may run on different server connections.
    Transaction,
}

impl Pooler {
    /// `none`/`session`/empty or `transaction`; anything else is [`Error::Misconfigured`].
    pub fn parse(value: &str) -> Result<Pooler, Error> {
        match value.trim() {
            "" | "none" | "session" => Ok(Pooler::None),
            "transaction" => Ok(Pooler::Transaction),
            other => Err(Error::Misconfigured(format!(
                "{POOLER_ENV}/{POOLER_URL_PARAM} must be `none` or `transaction`, not {other:?}"
            ))),
        }
    }

    /// [`POOLER_ENV`] from the process environment (unset: [`Pooler::None`]).
    pub fn from_env() -> Result<Pooler, Error> {
        match std::env::var(POOLER_ENV) {
            Ok(value) => Pooler::parse(&value),
            Err(_) => Ok(Pooler::None),
        }
    }

    /// The pooler a URL names with [`POOLER_URL_PARAM`], and the URL without that parameter.
    pub fn from_url(url: &str) -> Result<(Option<Pooler>, String), Error> {
        let Some((base, query)) = url.split_once('?') else {
            return Ok((None, url.to_owned()));
        };
        let mut pooler = None;
        let mut kept = Vec::new();
        for pair in query.split('&').filter(|pair| !pair.is_empty()) {
            match pair.split_once('=') {
                Some((POOLER_URL_PARAM, value)) => pooler = Some(Pooler::parse(value)?),
                _ => kept.push(pair),
            }
        }
        let url = if kept.is_empty() {
            base.to_owned()
        } else {
            format!("{base}?{}", kept.join("&"))
        };
        Ok((pooler, url))
    }
}

/// How [`connect_with`] builds the application pool.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PoolConfig {
    /// Pinned session settings (direct connections only; see the module docs).
    pub settings: SessionSettings,
    /// Most connections (default 10).
    pub max_connections: u32,
    /// How long a request waits for a pooled connection before [`Error::Unavailable`]
    /// (`pool_timeout`, HTTP 503); default 5 s.
    pub acquire_timeout: Duration,
    /// The pooler in front of PostgreSQL; [`connect_with`] lets the URL's
    /// [`POOLER_URL_PARAM`] override it.
    pub pooler: Pooler,
}

impl Default for PoolConfig {
    fn default() -> Self {
        Self {
            settings: SessionSettings::default(),
            max_connections: 10,
            acquire_timeout: Duration::from_secs(5),
            pooler: Pooler::None,
        }
    }
}

/// The connect options for `url` under `pooler`: direct connections get the pinned startup
/// options; behind a transaction pooler the statement cache is off (unnamed statements) and
/// no startup options are sent. The URL must not carry [`POOLER_URL_PARAM`] any more.
pub fn connect_options(
    url: &str,
    settings: &SessionSettings,
    pooler: Pooler,
) -> Result<PgConnectOptions, Error> {
    let options: PgConnectOptions = url
        .parse()
        .map_err(|err| Error::Misconfigured(format!("database URL: {err}")))?;
    Ok(match pooler {
        Pooler::None => pinned_connect_options(options, settings),
        Pooler::Transaction => options.statement_cache_capacity(0),
    })
}

/// A lazily connecting pool for the application role at `url` as `config` says: with
/// [`Pooler::None`] pinned settings and the reset on release (as [`connect`]); with
/// [`Pooler::Transaction`] unnamed statements only (see the module docs). Every pooled
/// connection is pinged before it is handed out, so one the server dropped while idle is
/// replaced instead of failing a request. Connects on first use, so a service can start
/// while the database is still coming up.
pub fn connect_with(url: &str, config: &PoolConfig) -> Result<(PgPool, Pooler), Error> {
    let (from_url, url) = Pooler::from_url(url)?;
    let pooler = from_url.unwrap_or(config.pooler);
    let options = connect_options(&url, &config.settings, pooler)?;
    let pool_options = match pooler {
        Pooler::None => pool_options(),
        Pooler::Transaction => PgPoolOptions::new(),
    };
    let pool = pool_options
        .max_connections(config.max_connections)
        .acquire_timeout(config.acquire_timeout)
        .test_before_acquire(true)
        .connect_lazy_with(options);
    Ok((pool, pooler))
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pooler_from_env_values_and_urls() {
        assert_eq!(Pooler::parse("transaction").ok(), Some(Pooler::Transaction));
        assert_eq!(Pooler::parse("").ok(), Some(Pooler::None));
        assert!(Pooler::parse("statement").is_err());
        let (pooler, url) =
            Pooler::from_url("postgres://app@h:6432/db?tenancy_pooler=transaction&sslmode=disable")
                .unwrap_or((None, String::new()));
        assert_eq!(pooler, Some(Pooler::Transaction));
        assert_eq!(url, "postgres://app@h:6432/db?sslmode=disable");
        let (pooler, url) = Pooler::from_url("postgres://app@h/db?tenancy_pooler=transaction")
            .unwrap_or((None, String::new()));
        assert_eq!(pooler, Some(Pooler::Transaction));
        assert_eq!(url, "postgres://app@h/db");
        let (pooler, url) =
            Pooler::from_url("postgres://app@h/db").unwrap_or((None, String::new()));
        assert_eq!((pooler, url.as_str()), (None, "postgres://app@h/db"));
        assert!(Pooler::from_url("postgres://h/db?tenancy_pooler=bogus").is_err());
    }
}
