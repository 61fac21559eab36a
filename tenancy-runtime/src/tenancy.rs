//! The entry point: authorization, and transactions that carry a scope's context.

use std::fmt;
use std::fmt::Write as _;

use sqlx::{PgConnection, PgPool, Postgres};
use uuid::Uuid;

use crate::begin::begin_cancel_safe;
use crate::error::Error;
use crate::ids::{ProjectId, TenantId, UserId};
use crate::role::is_valid_identifier;
use crate::scope::{scope_memberships, Membership, RequestContext, RoleName, Scope};

/// Names the runtime needs from the generated schema.
///
/// ```
/// let config = tenancy_runtime::TenancyConfig::default();
/// assert_eq!(config.helper_schema, "tenancy");
/// assert_eq!(config.memberships_table, "user_project_roles");
/// assert!(!config.citus);
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TenancyConfig {
    /// The schema holding the helper functions and the `project_role` enum; it is also the
    /// prefix of the context setting (`<helper_schema>.context`). Must match
    /// `[a-z_][a-z0-9_]*`.
    pub helper_schema: String,
    /// The memberships table `(tenant_id, project_id, user_id, role)`, optionally
    /// schema-qualified (`schema.table`); each part must match `[a-z_][a-z0-9_]*`.
    pub memberships_table: String,
    /// Whether the database is Citus: the context is then sent with
    /// `SET LOCAL citus.propagate_set_commands = 'local'` first so it reaches the workers.
    pub citus: bool,
}

impl Default for TenancyConfig {
    fn default() -> Self {
        Self {
            helper_schema: "tenancy".to_owned(),
            memberships_table: "user_project_roles".to_owned(),
            citus: false,
        }
    }
}

impl TenancyConfig {
    /// Checks the names that the runtime writes into SQL text.
    pub fn validate(&self) -> Result<(), Error> {
        if !is_valid_identifier(self.helper_schema.as_bytes()) {
            return Err(Error::Misconfigured(format!(
                "helper_schema {:?} does not match [a-z_][a-z0-9_]*",
                self.helper_schema
            )));
        }
        let parts: Vec<&str> = self.memberships_table.split('.').collect();
        if parts.len() > 2 || !parts.iter().all(|p| is_valid_identifier(p.as_bytes())) {
            return Err(Error::Misconfigured(format!(
                "memberships_table {:?} is not [schema.]table with parts matching [a-z_][a-z0-9_]*",
                self.memberships_table
            )));
        }
        Ok(())
    }

    /// `"schema"."table"` or `"table"`, from a validated name.
    fn quoted_memberships_table(&self) -> String {
        self.memberships_table
            .split('.')
            .map(|part| format!("\"{part}\""))
            .collect::<Vec<_>>()
            .join(".")
    }
}

/// The text of the single simple query that opens a transaction with its context: `BEGIN`
/// and one `SET LOCAL <helper_schema>.context` (docs/context.md).
///
/// The value is `tenant;user` followed, for every role rank from 0 to the highest rank the
/// user holds in the scope, by `{projects where the user's rank is at least that}` (projects in
/// the scope's order, sorted by id). Every interpolated value is typed (UUIDs in hyphenated
/// hex, ranks as numbers); the prefix comes from a validated [`TenancyConfig`]. `project_roles`
/// is `None` for the authorization transaction, which carries only tenant and user.
fn context_statement(
    config: &TenancyConfig,
    tenant: TenantId,
    user: UserId,
    project_roles: Option<&[Membership]>,
) -> String {
    let prefix = &config.helper_schema;
    let mut statement = String::from("BEGIN; ");
    if config.citus {
        statement.push_str("SET LOCAL citus.propagate_set_commands = 'local'; ");
    }
    // Writing into a String cannot fail.
    let _ = write!(statement, "SET LOCAL {prefix}.context = '{tenant};{user}");
    let memberships = project_roles.unwrap_or_default();
    if let Some(top_rank) = memberships.iter().map(|m| m.rank).max() {
        for rank in 0..=top_rank {
            statement.push_str(";{");
            let at_least = memberships.iter().filter(|m| m.rank >= rank);
            for (index, membership) in at_least.enumerate() {
                if index > 0 {
                    statement.push(',');
                }
                let _ = write!(statement, "{}", membership.project);
            }
            statement.push('}');
        }
    }
    statement.push('\'');
    statement
}

/// Entry point of the runtime: wraps the pool of the application's login role (a role subject
/// to row-level security) and the [`TenancyConfig`].
///
/// ```no_run
/// use tenancy_runtime::{ProjectId, Tenancy, TenantId, UserId};
/// tenancy_runtime::roles! { Viewer = "viewer", Editor = "editor", Admin = "admin", Owner = "owner" }
///
/// # async fn example(user: UserId, tenant: TenantId, project: ProjectId) -> Result<(), Box<dyn std::error::Error>> {
/// let pool = sqlx::PgPool::connect("postgres://tenancy_app@localhost/app").await?;
/// let tenancy = Tenancy::new(pool);
///
/// let ctx = tenancy.authorize(user, tenant).await?; // Error::NotFound: no role in that tenant
/// let scope = ctx.project(project)?.require::<Viewer>()?;
/// let mut tx = tenancy.begin(&scope).await?;
/// let visible: i64 = sqlx::query_scalar("SELECT count(*) FROM documents")
///     .fetch_one(tx.connection())
///     .await?; // only the scope's project's rows, enforced by the database
/// tx.commit().await?;
/// # let _ = visible;
/// # Ok(())
/// # }
/// ```
#[derive(Clone, Debug)]
pub struct Tenancy {
    pool: PgPool,
    config: TenancyConfig,
}

impl Tenancy {
    /// A runtime with the default [`TenancyConfig`].
    pub fn new(pool: PgPool) -> Self {
        Self::with_config(pool, TenancyConfig::default())
    }

    /// A runtime with an explicit configuration. The configuration is checked on every use
    /// (see [`TenancyConfig::validate`]); a bad one makes every call fail with
    /// [`Error::Misconfigured`].
    pub fn with_config(pool: PgPool, config: TenancyConfig) -> Self {
        Self { pool, config }
    }

    /// The configuration in use.
    pub fn config(&self) -> &TenancyConfig {
        &self.config
    }

    /// Reads the user's memberships in `tenant` and builds their [`RequestContext`].
    ///
    /// The read runs in a transaction whose context holds only the tenant and the user (the
    /// memberships SELECT policy lets a user read their own rows). No membership in that tenant
    /// gives [`Error::NotFound`], the same as a tenant that does not exist.
    #[tracing::instrument(skip_all, fields(tenant_id = %tenant, user_id = %user))]
    pub async fn authorize(&self, user: UserId, tenant: TenantId) -> Result<RequestContext, Error> {
        self.config.validate()?;
        let statement = context_statement(&self.config, tenant, user, None);
        // Cancellation-safe: see crate::begin.
        let mut tx = begin_cancel_safe(&self.pool, statement).await?;
        let query = format!(
            "SELECT project_id, role::text, \
             array_position(enum_range(NULL::\"{schema}\".project_role), role) - 1 \
             FROM {table} WHERE tenant_id = $1 AND user_id = $2 ORDER BY project_id",
            schema = self.config.helper_schema,
            table = self.config.quoted_memberships_table(),
        );
        let rows: Vec<(Uuid, String, Option<i32>)> = sqlx::query_as(&query)
            .bind(tenant.as_uuid())
            .bind(user.as_uuid())
            .fetch_all(&mut *tx)
            .await?;
        tx.commit().await?;

        if rows.is_empty() {
            return Err(Error::NotFound);
        }
        let memberships = rows
            .into_iter()
            .map(|(project, role, rank)| {
                let rank = rank
                    .and_then(|rank| u8::try_from(rank).ok())
                    .ok_or_else(|| Error::Misconfigured(format!("role {role:?} has no rank")))?;
                Ok(Membership {
                    project: ProjectId::new(project),
                    role: RoleName::parse(&role)?,
                    rank,
                })
            })
            .collect::<Result<Vec<_>, Error>>()?;
        Ok(RequestContext::from_memberships(user, tenant, memberships))
    }

    /// The statement [`Tenancy::begin`] sends for `scope`, e.g.
    /// `BEGIN; SET LOCAL tenancy.context = '<tenant>;<user>;{<p1>,<p2>};{<p2>}'` for a viewer of
    /// p1 who is an editor of p2 (one `{...}` per role rank up to the user's highest, each with
    /// the projects where the user's actual role is at least that). For logs and debugging.
    pub fn context_statement<S: Scope>(&self, scope: &S) -> Result<String, Error> {
        self.config.validate()?;
        Ok(context_statement(
            &self.config,
            scope.tenant_id(),
            scope.user_id(),
            Some(scope_memberships(scope)),
        ))
    }

    /// Opens a transaction carrying `scope`'s context: `BEGIN` and the context's `SET LOCAL` go
    /// to the database as one simple query, in one round trip. The setting ends with the
    /// transaction, so nothing leaks to the next user of the pooled connection.
    #[tracing::instrument(
        skip_all,
        fields(
            tenant_id = %scope.tenant_id(),
            user_id = %scope.user_id(),
            project_ids = ?scope.project_ids(),
        )
    )]
    pub async fn begin<S: Scope>(&self, scope: &S) -> Result<ScopedTx<S>, Error> {
        let statement = self.context_statement(scope)?;
        let tx = begin_cancel_safe(&self.pool, statement).await?;
        Ok(ScopedTx {
            tx,
            scope: scope.clone(),
        })
    }
}

/// A transaction that carries a scope's context: the only door to generated repositories.
///
/// Dropping it without [`commit`](ScopedTx::commit) rolls back. `commit` consumes it, so a
/// committed transaction cannot be used again:
///
/// ```compile_fail,E0382
/// tenancy_runtime::roles! { Editor = "editor" }
/// async fn example(mut tx: tenancy_runtime::ScopedTx<tenancy_runtime::ProjectScope<Editor>>) {
///     tx.commit().await.ok();
///     let _ = tx.connection(); // error: use of moved value `tx`
/// }
/// ```
pub struct ScopedTx<S: Scope> {
    tx: sqlx::Transaction<'static, Postgres>,
    scope: S,
}

impl<S: Scope> ScopedTx<S> {
    /// The scope the transaction was opened with.
    pub fn scope(&self) -> &S {
        &self.scope
    }

    /// The connection, for generated code and audited raw SQL (still under row-level security
    /// and the scope's context).
    pub fn connection(&mut self) -> &mut PgConnection {
        &mut self.tx
    }

    /// Commits; the context settings end with the transaction.
    pub async fn commit(self) -> Result<(), Error> {
        self.tx.commit().await.map_err(Error::from)
    }

    /// Rolls back explicitly (dropping the transaction does the same, without waiting).
    pub async fn rollback(self) -> Result<(), Error> {
        self.tx.rollback().await.map_err(Error::from)
    }
}

impl<S: Scope + fmt::Debug> fmt::Debug for ScopedTx<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ScopedTx")
            .field("scope", &self.scope)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use uuid::Uuid;

    use super::*;
    use crate::scope::tests::{context, membership, project};
    use crate::Role;

    crate::roles! { Viewer = "viewer", Editor = "editor", Admin = "admin" }

    const TENANT: &str = "00000000-0000-0000-0000-00000000000a";
    const USER: &str = "00000000-0000-0000-0000-00000000000b";
    const P1: &str = "00000000-0000-0000-0000-000000000001";
    const P2: &str = "00000000-0000-0000-0000-000000000002";

    fn statement(config: &TenancyConfig, scope: &impl Scope) -> String {
        context_statement(
            config,
            scope.tenant_id(),
            scope.user_id(),
            Some(scope_memberships(scope)),
        )
    }

    #[test]
    fn one_project_statement_is_exact() {
        let ctx = context();
        let scope = ctx
            .project(project(2))
            .unwrap()
            .require::<Viewer>()
            .unwrap();
        assert_eq!(
            statement(&TenancyConfig::default(), &scope),
            format!("BEGIN; SET LOCAL tenancy.context = '{TENANT};{USER};{{{P2}}};{{{P2}}}'")
        );
    }

    #[test]
    fn several_projects_statement_is_sorted_with_actual_roles() {
        let ctx = context();
        let scope = ctx
            .projects(&[project(2), project(1)])
            .unwrap()
            .require::<Viewer>()
            .unwrap();
        assert_eq!(Viewer::RANK, 0);
        assert_eq!(
            statement(&TenancyConfig::default(), &scope),
            format!("BEGIN; SET LOCAL tenancy.context = '{TENANT};{USER};{{{P1},{P2}}};{{{P2}}}'")
        );
    }

    #[test]
    fn empty_scope_sets_no_project_fields() {
        let ctx = context();
        let scope = ctx.all_projects().with_at_least::<Admin>();
        assert!(scope.is_empty());
        assert_eq!(
            statement(&TenancyConfig::default(), &scope),
            format!("BEGIN; SET LOCAL tenancy.context = '{TENANT};{USER}'")
        );
    }

    #[test]
    fn citus_prefix_and_custom_schema() {
        let config = TenancyConfig {
            helper_schema: "acl".to_owned(),
            memberships_table: "app.members".to_owned(),
            citus: true,
        };
        let ctx = context();
        let scope = ctx
            .project(project(1))
            .unwrap()
            .require::<Viewer>()
            .unwrap();
        assert_eq!(
            statement(&config, &scope),
            format!(
                "BEGIN; SET LOCAL citus.propagate_set_commands = 'local'; \
                 SET LOCAL acl.context = '{TENANT};{USER};{{{P1}}}'"
            )
        );
    }

    #[test]
    fn authorize_statement_holds_only_tenant_and_user() {
        let tenant = TenantId::new(Uuid::from_u128(0xa));
        let user = UserId::new(Uuid::from_u128(0xb));
        assert_eq!(
            context_statement(&TenancyConfig::default(), tenant, user, None),
            format!("BEGIN; SET LOCAL tenancy.context = '{TENANT};{USER}'")
        );
        let _ = membership(1, "viewer", 0);
    }

    #[test]
    fn config_validation() {
        assert!(TenancyConfig::default().validate().is_ok());
        for (schema, table) in [
            ("tenancy'; drop", "user_project_roles"),
            ("Tenancy", "user_project_roles"),
            ("", "user_project_roles"),
            ("tenancy", "a.b.c"),
            ("tenancy", "roles\"; --"),
            ("tenancy", ".roles"),
        ] {
            let config = TenancyConfig {
                helper_schema: schema.to_owned(),
                memberships_table: table.to_owned(),
                citus: false,
            };
            assert!(
                matches!(config.validate(), Err(Error::Misconfigured(_))),
                "{schema:?} {table:?}"
            );
        }
        let qualified = TenancyConfig {
            memberships_table: "app.members".to_owned(),
            ..TenancyConfig::default()
        };
        assert!(qualified.validate().is_ok());
        assert_eq!(qualified.quoted_memberships_table(), "\"app\".\"members\"");
    }
}
