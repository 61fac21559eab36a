//! Configuration from environment variables (documented defaults in `docs/service.md`).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{bail, Context};
use tenancy_runtime::http::JwtVerifier;
use tenancy_runtime::vector::VectorConfig;

/// The development secret used when neither `RAG_JWT_SECRET` nor `RAG_JWT_JWKS_FILE` is set.
pub const DEV_JWT_SECRET: &str = "rag-service-dev-secret";

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
}

impl Config {
    /// Reads the process environment.
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
        Ok(Config {
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

    /// The token verifier this configuration describes.
    pub fn verifier(&self) -> anyhow::Result<JwtVerifier> {
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
}
