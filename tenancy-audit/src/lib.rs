//! `tenancy audit`: compares a live PostgreSQL database with what the policies generate and
//! reports every difference that weakens tenant isolation as a [`Finding`] with a stable code
//! (see [`codes`] and `docs/audit.md`).
//!
//! * [`audit`] runs every check in one read-only transaction that is always rolled back;
//! * [`check_at_startup`] is the same audit for a service that starts: it refuses to start
//!   ([`StartupMode::Refuse`]) or logs the findings with `tracing::warn!` ([`StartupMode::Warn`]);
//! * [`connect`] opens a small pool and tells a connection failure apart from everything else
//!   (the CLI exits 2 on it).
//!
//! Policies are compared by their normalised definitions: PostgreSQL itself deparses the
//! generated `CREATE POLICY` statements on scratch copies of the tables (temporary tables
//! inside the rolled-back transaction) and the audit compares that deparsed text with
//! `pg_policy` of the live tables.

mod checks;
pub mod defaults;
mod finding;
mod generated;
pub mod sarif;
pub mod static_scan;

use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgConnection, PgPool, PgPoolOptions};
use sqlx::Connection;
use tenancy_core::model::Model;
use tenancy_core::sql::Target;

pub use finding::{codes, Finding, Report};

/// Why an audit could not run (findings are not errors, except in [`StartupMode::Refuse`]).
#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    /// The database could not be reached.
    #[error("could not connect to the database: {0}")]
    Connect(#[source] sqlx::Error),
    /// A catalog query failed.
    #[error("could not audit the database: {0}")]
    Query(#[from] sqlx::Error),
    /// [`check_at_startup`] in [`StartupMode::Refuse`] found problems.
    #[error("refusing to start: the database weakens tenant isolation ({} finding(s): {})", .0.findings.len(), .0.codes().join(", "))]
    Refused(Report),
}

/// What [`check_at_startup`] does with findings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum StartupMode {
    /// Return [`AuditError::Refused`]: the service must not start.
    #[default]
    Refuse,
    /// Log every finding with `tracing::warn!` and carry on.
    Warn,
}

/// Connects to `url` with a one-connection pool. A first direct connection surfaces the
/// server's own error (refused, unknown database, authentication) at once, instead of a pool
/// timeout.
pub async fn connect(url: &str) -> Result<PgPool, AuditError> {
    let options: PgConnectOptions = url.parse().map_err(AuditError::Connect)?;
    let probe = PgConnection::connect_with(&options)
        .await
        .map_err(AuditError::Connect)?;
    probe.close().await.map_err(AuditError::Connect)?;
    Ok(PgPoolOptions::new()
        .max_connections(1)
        .acquire_timeout(Duration::from_secs(10))
        .connect_lazy_with(options))
}

/// The target the database behind `pool` is for: [`Target::Citus`] when it has the citus
/// extension (a Citus coordinator), [`Target::Postgres`] otherwise.
pub async fn detect_target(pool: &PgPool) -> Result<Target, AuditError> {
    let citus: bool = sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_extension WHERE extname = 'citus')",
    )
    .fetch_one(pool)
    .await?;
    Ok(if citus {
        Target::Citus
    } else {
        Target::Postgres
    })
}

/// Audits the database behind `pool` against `model` as generated for plain PostgreSQL.
pub async fn audit(pool: &PgPool, model: &Model) -> Result<Report, AuditError> {
    audit_for_target(pool, model, Target::Postgres).await
}

/// Audits the database behind `pool` against `model` as generated for `target`.
///
/// Runs in one transaction that is rolled back: the audit never changes the database.
/// The connected role must be able to read the catalogs, create temporary tables, read the
/// context key table and execute `context_contract()` (a superuser, or the owner role with
/// `TEMPORARY` on the database); otherwise the context checks report that they could not run
/// ([`codes::CONTEXT_UNCHECKED`]).
pub async fn audit_for_target(
    pool: &PgPool,
    model: &Model,
    target: Target,
) -> Result<Report, AuditError> {
    let expected = generated::expected(model, target);
    let mut tx = pool.begin().await?;
    let result = checks::run(&mut tx, model, &expected, target).await;
    tx.rollback().await?;
    let mut report = Report { findings: result? };
    report.normalise();
    Ok(report)
}

/// The audit a service runs when it starts: with findings, [`StartupMode::Refuse`] returns
/// [`AuditError::Refused`] and [`StartupMode::Warn`] logs each one and returns the report.
pub async fn check_at_startup(
    pool: &PgPool,
    model: &Model,
    mode: StartupMode,
) -> Result<Report, AuditError> {
    let report = audit(pool, model).await?;
    if report.is_clean() {
        return Ok(report);
    }
    match mode {
        StartupMode::Refuse => Err(AuditError::Refused(report)),
        StartupMode::Warn => {
            for finding in &report.findings {
                tracing::warn!(
                    code = finding.code,
                    object = %finding.object,
                    "tenancy audit: {}",
                    finding.message
                );
            }
            Ok(report)
        }
    }
}
