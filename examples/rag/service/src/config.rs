//! Configuration from environment variables (documented defaults in `docs/service.md`).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{bail, Context};
use tenancy_runtime::http::JwtVerifier;
use tenancy_runtime::pool::{PoolConfig, Pooler};
use tenancy_runtime::vector::VectorConfig;

/// The development secret used when neither `RAG_JWT_SECRET` nor `RAG_JWT_JWKS_FILE` is set;
/// `serve` accepts it only in development mode ([`Config::dev`]).
pub const DEV_JWT_SECRET: &str = "rag-service-dev-secret";

/// Shortest `RAG_JWT_SECRET` `serve` accepts outside development mode, in bytes.
pub const MIN_JWT_SECRET_BYTES: usize = 32;

/// The environment variable that turns development mode on (`1` or `true`), like `--dev`.
pub const DEV_ENV: &str = "TENANCY_DEV";

/// Where token verification keys come from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum JwtKeys {
    /// HS256 with a shared secret (development).
    Secret(String),
    /// RS256/ES256 keys from a JWKS file (production).
    JwksFile(PathBuf),
}

/// The service configuration.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Config {
    /// `RAG_BIND` (default `127.0.0.1:8080`).
    pub bind: SocketAddr,
    /// `RAG_DATABASE_URL` (required): the application role (`tenancy_app`), never a superuser.
    pub database_url: String,
    /// `RAG_MAINTENANCE_DATABASE_URL` (optional): a privileged URL for tenant/project counts
    /// in `/metrics`, `seed-demo`, and the vector catalog and its periodic maintenance.
    pub maintenance_database_url: Option<String>,
    /// `RAG_JWT_JWKS_FILE` if set, else `RAG_JWT_SECRET` (default [`DEV_JWT_SECRET`]).
    pub jwt_keys: JwtKeys,
    /// `RAG_JWT_ISSUER` (default `rag-service-dev`).
    pub jwt_issuer: String,
    /// `RAG_JWT_AUDIENCE` (default `rag-service`).
    pub jwt_audience: String,
    /// `RAG_BODY_LIMIT_BYTES` (default 1 MiB).
    pub body_limit_bytes: usize,
    /// `RAG_METRICS_TENANTS` (default 10): tenants named individually in latency metrics.
    pub metrics_tenants: usize,
    /// `RAG_LOG_FORMAT` = `text` (default) or `json`.
    pub log_json: bool,
    /// `RAG_DB_MAX_CONNECTIONS` (default 10).
    pub max_connections: u32,
    /// `RAG_VECTOR_PROMOTE_AT` (default 10000): a tenant with this many embedded chunks gets
    /// its own HNSW index at the next maintenance run (demoted again below half of it).
    pub vector_promote_at: i64,
    /// `RAG_VECTOR_EXACT_SCOPE_MAX` (default 10000): searches over at most this many chunks
    /// are always exact.
    pub vector_exact_scope_max: i64,
    /// `RAG_VECTOR_MAINTENANCE_SECS` (default 60; `0` = never): how often the service runs
    /// vector maintenance (needs `RAG_MAINTENANCE_DATABASE_URL`).
    pub vector_maintenance_every: Option<Duration>,
    /// `TENANCY_DEV=1` (or `serve --dev`): development mode, the only mode in which `serve`
    /// runs with the built-in development JWT secret or one shorter than 32 bytes.
    pub dev: bool,
    /// `TENANCY_POOLER` (`none` or `transaction`; a `tenancy_pooler=` parameter of the URL
    /// wins): what sits between the service and PostgreSQL (docs/reliability.md).
    pub pooler: Pooler,
    /// `RAG_DB_ACQUIRE_TIMEOUT_MS` (default 5000): wait for a pooled connection, then 503.
    pub acquire_timeout: Duration,
    /// `RAG_STATEMENT_TIMEOUT_MS` (default 5000; `0` = none): per-statement limit in every
    /// request's transaction, then 503 `timeout`.
    pub statement_timeout: Option<Duration>,
    /// `RAG_REQUEST_TIMEOUT_MS` (default 15000; `0` = none): whole-request limit, then 503
    /// `timeout` (the transaction is rolled back).
    pub request_timeout: Option<Duration>,
    /// `RAG_HEADER_READ_TIMEOUT_MS` (default 10000): a client must send its request headers
    /// within this, or the connection is closed.
    pub header_read_timeout: Duration,
    /// `RAG_BODY_READ_TIMEOUT_MS` (default 10000): a client must send the request body within
    /// this, or it gets 408 `body_timeout`.
    pub body_read_timeout: Duration,
    /// `RAG_MAX_HTTP_CONNECTIONS` (default 512): open client connections; one more is answered
    /// 503 and closed.
    pub max_http_connections: usize,
    /// `RAG_METRICS_BIND` (default unset): serve `/metrics` on this address instead of the API
    /// port.
    pub metrics_bind: Option<SocketAddr>,
    /// `RAG_METRICS_TOKEN` (default unset): bearer token `/metrics` requires on the API port;
    /// without it and without `RAG_METRICS_BIND`, the API port answers `/metrics` with 404.
    pub metrics_token: Option<String>,
    /// `RAG_METRICS_LABEL_KEY` (default random per process): key of the hashed tenant labels.
    pub metrics_label_key: Option<String>,
    /// `RAG_JWT_LEEWAY_SECS` (default 30): clock skew accepted on `exp`, `nbf`, `iat`.
    pub jwt_leeway_secs: u64,
    /// `RAG_JWT_MAX_LIFETIME_SECS` (default 86400; `0` = no maximum): longest token lifetime.
    pub jwt_max_lifetime_secs: Option<u64>,
    /// `RAG_MAX_PAGE_SIZE` (default 1000): largest `limit` of a list request.
    pub max_page_size: u32,
    /// `RAG_MAX_K` (default 100): largest `k` of a search.
    pub max_k: u32,
}

impl Config {
    /// Reads the process environment (`dev` also from a `--dev` argument, see `main`).
    pub fn from_env() -> anyhow::Result<Config> {
        Self::from_lookup(|name| std::env::var(name).ok().filter(|v| !v.trim().is_empty()))
    }

    /// Reads variables through `lookup` (tests pass a map).
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> anyhow::Result<Config> {
        let parse_number = |name: &str, default: usize| -> anyhow::Result<usize> {
            match lookup(name) {
                None => Ok(default),
                Some(value) => value
                    .trim()
                    .parse()
                    .with_context(|| format!("{name} must be a non-negative integer")),
            }
        };
        let bind = lookup("RAG_BIND")
            .unwrap_or_else(|| "127.0.0.1:8080".to_owned())
            .parse()
            .context("RAG_BIND must be host:port")?;
        let database_url = lookup("RAG_DATABASE_URL")
            .context("RAG_DATABASE_URL is required (the tenancy_app role's URL)")?;
        let jwt_keys = match (lookup("RAG_JWT_JWKS_FILE"), lookup("RAG_JWT_SECRET")) {
            (Some(file), _) => JwtKeys::JwksFile(PathBuf::from(file)),
            (None, Some(secret)) => JwtKeys::Secret(secret),
            (None, None) => JwtKeys::Secret(DEV_JWT_SECRET.to_owned()),
        };
        let log_json = match lookup("RAG_LOG_FORMAT").as_deref() {
            None | Some("text") => false,
            Some("json") => true,
            Some(_) => bail!("RAG_LOG_FORMAT must be `text` or `json`"),
        };
        let millis = |name: &str, default: usize| -> anyhow::Result<Option<Duration>> {
            Ok(match parse_number(name, default)? {
                0 => None,
                ms => Some(Duration::from_millis(ms as u64)),
            })
        };
        let required_millis = |name: &str, default: usize| -> anyhow::Result<Duration> {
            millis(name, default)?.with_context(|| format!("{name} must be at least 1"))
        };
        let dev = match lookup(DEV_ENV).as_deref().map(str::trim) {
            None | Some("0") | Some("false") => false,
            Some("1") | Some("true") => true,
            Some(_) => bail!("{DEV_ENV} must be 1 or 0"),
        };
        let pooler = match lookup(tenancy_runtime::pool::POOLER_ENV) {
            None => Pooler::None,
            Some(value) => Pooler::parse(&value)?,
        };
        let metrics_bind = match lookup("RAG_METRICS_BIND") {
            None => None,
            Some(value) => Some(
                value
                    .parse()
                    .context("RAG_METRICS_BIND must be host:port")?,
            ),
        };
        let max_page_size = u32::try_from(parse_number("RAG_MAX_PAGE_SIZE", 1000)?)
            .context("RAG_MAX_PAGE_SIZE is too large")?;
        let max_k =
            u32::try_from(parse_number("RAG_MAX_K", 100)?).context("RAG_MAX_K is too large")?;
        if max_page_size == 0 || max_k == 0 {
            bail!("RAG_MAX_PAGE_SIZE and RAG_MAX_K must be at least 1");
        }
        let max_http_connections = parse_number("RAG_MAX_HTTP_CONNECTIONS", 512)?;
        if max_http_connections == 0 {
            bail!("RAG_MAX_HTTP_CONNECTIONS must be at least 1");
        }
        Ok(Config {
            dev,
            pooler,
            acquire_timeout: required_millis("RAG_DB_ACQUIRE_TIMEOUT_MS", 5_000)?,
            statement_timeout: millis("RAG_STATEMENT_TIMEOUT_MS", 5_000)?,
            request_timeout: millis("RAG_REQUEST_TIMEOUT_MS", 15_000)?,
            header_read_timeout: required_millis("RAG_HEADER_READ_TIMEOUT_MS", 10_000)?,
            body_read_timeout: required_millis("RAG_BODY_READ_TIMEOUT_MS", 10_000)?,
            max_http_connections,
            metrics_bind,
            metrics_token: lookup("RAG_METRICS_TOKEN"),
            metrics_label_key: lookup("RAG_METRICS_LABEL_KEY"),
            jwt_leeway_secs: parse_number("RAG_JWT_LEEWAY_SECS", 30)? as u64,
            jwt_max_lifetime_secs: match parse_number("RAG_JWT_MAX_LIFETIME_SECS", 86_400)? {
                0 => None,
                secs => Some(secs as u64),
            },
            max_page_size,
            max_k,
            bind,
            database_url,
            maintenance_database_url: lookup("RAG_MAINTENANCE_DATABASE_URL"),
            jwt_keys,
            jwt_issuer: lookup("RAG_JWT_ISSUER").unwrap_or_else(|| "rag-service-dev".to_owned()),
            jwt_audience: lookup("RAG_JWT_AUDIENCE").unwrap_or_else(|| "rag-service".to_owned()),
            body_limit_bytes: parse_number("RAG_BODY_LIMIT_BYTES", 1 << 20)?,
            metrics_tenants: parse_number("RAG_METRICS_TENANTS", 10)?,
            log_json,
            max_connections: u32::try_from(parse_number("RAG_DB_MAX_CONNECTIONS", 10)?)
                .context("RAG_DB_MAX_CONNECTIONS is too large")?,
            vector_promote_at: i64::try_from(parse_number("RAG_VECTOR_PROMOTE_AT", 10_000)?)
                .context("RAG_VECTOR_PROMOTE_AT is too large")?,
            vector_exact_scope_max: i64::try_from(parse_number(
                "RAG_VECTOR_EXACT_SCOPE_MAX",
                10_000,
            )?)
            .context("RAG_VECTOR_EXACT_SCOPE_MAX is too large")?,
            vector_maintenance_every: match parse_number("RAG_VECTOR_MAINTENANCE_SECS", 60)? {
                0 => None,
                secs => Some(Duration::from_secs(secs as u64)),
            },
        })
    }

    /// The vector gateway's and maintenance's settings: the library defaults with
    /// `promote_at`, `demote_below` (half of it) and `exact_scope_max` from the environment.
    pub fn vector_config(&self) -> anyhow::Result<VectorConfig> {
        let config = VectorConfig {
            promote_at: self.vector_promote_at,
            demote_below: Some(self.vector_promote_at / 2),
            exact_scope_max: self.vector_exact_scope_max,
            ..VectorConfig::default()
        };
        config
            .validate()
            .context("RAG_VECTOR_PROMOTE_AT must be at least 1")?;
        Ok(config)
    }

    /// Refuses a configuration `serve` must not run with outside development mode: the
    /// built-in development JWT secret (anyone could mint a token for any user) or a secret
    /// shorter than [`MIN_JWT_SECRET_BYTES`].
    pub fn check_serve(&self) -> anyhow::Result<()> {
        if self.dev {
            return Ok(());
        }
        if let JwtKeys::Secret(secret) = &self.jwt_keys {
            if secret == DEV_JWT_SECRET {
                bail!(
                    "no JWT key: set RAG_JWT_JWKS_FILE or RAG_JWT_SECRET (at least \
                     {MIN_JWT_SECRET_BYTES} bytes); the built-in development secret needs \
                     `serve --dev` or {DEV_ENV}=1"
                );
            }
            if secret.len() < MIN_JWT_SECRET_BYTES {
                bail!(
                    "RAG_JWT_SECRET is shorter than {MIN_JWT_SECRET_BYTES} bytes (use \
                     RAG_JWT_JWKS_FILE, a longer secret, or `serve --dev` / {DEV_ENV}=1)"
                );
            }
        }
        Ok(())
    }

    /// The application pool's settings: size, acquire timeout and pooler.
    pub fn pool_config(&self) -> PoolConfig {
        PoolConfig {
            max_connections: self.max_connections,
            acquire_timeout: self.acquire_timeout,
            pooler: self.pooler,
            ..PoolConfig::default()
        }
    }

    /// The token verifier this configuration describes (leeway and maximum lifetime
    /// included).
    pub fn verifier(&self) -> anyhow::Result<JwtVerifier> {
        let verifier = self.keys_verifier()?.with_leeway(self.jwt_leeway_secs);
        Ok(match self.jwt_max_lifetime_secs {
            Some(max) => verifier.with_max_lifetime(max),
            None => verifier,
        })
    }

    fn keys_verifier(&self) -> anyhow::Result<JwtVerifier> {
        Ok(match &self.jwt_keys {
            JwtKeys::Secret(secret) => {
                JwtVerifier::hs256(secret.as_bytes(), &self.jwt_issuer, &self.jwt_audience)
            }
            JwtKeys::JwksFile(path) => {
                JwtVerifier::from_jwks_file(path, &self.jwt_issuer, &self.jwt_audience)?
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    #[test]
    fn defaults_and_overrides() {
        let mut env = HashMap::from([("RAG_DATABASE_URL", "postgres://app@h/db")]);
        let config = Config::from_lookup(|k| env.get(k).map(|v| v.to_string())).unwrap();
        assert_eq!(config.bind.to_string(), "127.0.0.1:8080");
        assert_eq!(config.jwt_keys, JwtKeys::Secret(DEV_JWT_SECRET.into()));
        assert_eq!(config.body_limit_bytes, 1 << 20);
        assert!(!config.log_json);
        assert_eq!(
            config.vector_maintenance_every,
            Some(std::time::Duration::from_secs(60))
        );
        let vector = config.vector_config().unwrap();
        assert_eq!(
            (
                vector.promote_at,
                vector.demote_below,
                vector.exact_scope_max
            ),
            (10_000, Some(5_000), 10_000)
        );
        env.insert("RAG_VECTOR_PROMOTE_AT", "300");
        env.insert("RAG_VECTOR_EXACT_SCOPE_MAX", "40");
        env.insert("RAG_VECTOR_MAINTENANCE_SECS", "0");
        let config = Config::from_lookup(|k| env.get(k).map(|v| v.to_string())).unwrap();
        assert_eq!(config.vector_maintenance_every, None);
        let vector = config.vector_config().unwrap();
        assert_eq!(
            (
                vector.promote_at,
                vector.demote_below,
                vector.exact_scope_max
            ),
            (300, Some(150), 40)
        );
        env.insert("RAG_VECTOR_PROMOTE_AT", "0");
        let config = Config::from_lookup(|k| env.get(k).map(|v| v.to_string())).unwrap();
        assert!(config.vector_config().is_err());
        env.remove("RAG_VECTOR_PROMOTE_AT");
        env.insert("RAG_JWT_JWKS_FILE", "/keys.json");
        env.insert("RAG_LOG_FORMAT", "json");
        env.insert("RAG_BODY_LIMIT_BYTES", "2048");
        let config = Config::from_lookup(|k| env.get(k).map(|v| v.to_string())).unwrap();
        assert_eq!(config.jwt_keys, JwtKeys::JwksFile("/keys.json".into()));
        assert!(config.log_json);
        assert_eq!(config.body_limit_bytes, 2048);
        env.insert("RAG_LOG_FORMAT", "xml");
        assert!(Config::from_lookup(|k| env.get(k).map(|v| v.to_string())).is_err());
        assert!(Config::from_lookup(|_| None).is_err());
    }

    #[test]
    fn serve_refuses_the_development_secret_outside_dev_mode() {
        let mut env = HashMap::from([("RAG_DATABASE_URL", "postgres://app@h/db")]);
        let config = Config::from_lookup(|k| env.get(k).map(|v| v.to_string())).unwrap();
        let refused = config.check_serve().unwrap_err().to_string();
        assert!(refused.contains("--dev"), "{refused}");
        env.insert("TENANCY_DEV", "1");
        let config = Config::from_lookup(|k| env.get(k).map(|v| v.to_string())).unwrap();
        assert!(config.check_serve().is_ok());
        env.remove("TENANCY_DEV");
        env.insert("RAG_JWT_SECRET", "short");
        let config = Config::from_lookup(|k| env.get(k).map(|v| v.to_string())).unwrap();
        assert!(config.check_serve().is_err());
        env.insert("RAG_JWT_SECRET", "0123456789abcdef0123456789abcdef");
        let config = Config::from_lookup(|k| env.get(k).map(|v| v.to_string())).unwrap();
        assert!(config.check_serve().is_ok());
        env.insert("TENANCY_POOLER", "transaction");
        env.insert("RAG_STATEMENT_TIMEOUT_MS", "0");
        let config = Config::from_lookup(|k| env.get(k).map(|v| v.to_string())).unwrap();
        assert_eq!(config.pooler, Pooler::Transaction);
        assert_eq!(config.statement_timeout, None);
        assert_eq!(config.acquire_timeout, Duration::from_secs(5));
        env.insert("RAG_DB_ACQUIRE_TIMEOUT_MS", "0");
        assert!(Config::from_lookup(|k| env.get(k).map(|v| v.to_string())).is_err());
    }
}
