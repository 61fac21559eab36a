//! The audited escape hatch for trusted maintenance work.

use std::fmt;

use sqlx::{PgConnection, PgPool, Postgres};

use crate::error::Error;

/// A transaction for trusted maintenance (migrations, seeding, onboarding a tenant) on a pool
/// that logs in as a privileged role (BYPASSRLS or the table owner).
///
/// It needs a reason, logged with `tracing` at WARN when the transaction opens and when it
/// commits. Nothing in a [`RequestContext`](crate::RequestContext) or a scope leads to one, and
/// it is not a [`Scope`](crate::Scope), so generated repositories do not accept it.
///
/// ```no_run
/// # async fn example(maintenance_pool: sqlx::PgPool) -> Result<(), tenancy_runtime::Error> {
/// use tenancy_runtime::SystemTx;
///
/// let mut tx = SystemTx::begin(&maintenance_pool, "onboarding: create tenant and first owner").await?;
/// sqlx::query("INSERT INTO tenants (id, name, slug) VALUES (gen_random_uuid(), 'Acme', 'acme')")
///     .execute(tx.connection())
///     .await?;
/// tx.commit().await?;
/// # Ok(())
/// # }
/// ```
///
/// ```compile_fail,E0277
/// fn needs_scope<S: tenancy_runtime::Scope>() {}
/// needs_scope::<tenancy_runtime::SystemTx>();
/// ```
pub struct SystemTx {
    tx: sqlx::Transaction<'static, Postgres>,
    reason: &'static str,
}

impl SystemTx {
    /// Begins a transaction on `maintenance_pool` and logs `reason` at WARN.
    /// An empty reason is refused with [`Error::Misconfigured`].
    pub async fn begin(maintenance_pool: &PgPool, reason: &'static str) -> Result<SystemTx, Error> {
        if reason.trim().is_empty() {
            return Err(Error::Misconfigured(
                "SystemTx::begin needs a non-empty reason".to_owned(),
            ));
        }
        let tx = maintenance_pool.begin().await?;
        tracing::warn!(reason, "system transaction opened: tenant scoping bypassed");
        Ok(SystemTx { tx, reason })
    }

    /// The connection, with the maintenance role's privileges.
    pub fn connection(&mut self) -> &mut PgConnection {
        &mut self.tx
    }

    /// Why this transaction exists.
    pub fn reason(&self) -> &'static str {
        self.reason
    }

    /// Commits and logs the reason at WARN.
    pub async fn commit(self) -> Result<(), Error> {
        let reason = self.reason;
        self.tx.commit().await?;
        tracing::warn!(reason, "system transaction committed");
        Ok(())
    }

    /// Rolls back (dropping the transaction does the same, without waiting).
    pub async fn rollback(self) -> Result<(), Error> {
        self.tx.rollback().await.map_err(Error::from)
    }
}

impl fmt::Debug for SystemTx {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SystemTx")
            .field("reason", &self.reason)
            .finish_non_exhaustive()
    }
}
