//! The entry point: authorization, and transactions that carry a scope's context.

use std::fmt;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use sqlx::{PgConnection, PgPool, Postgres};
use uuid::Uuid;

use crate::begin::begin_cancel_safe;
use crate::context_token::ContextKey;
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
/// assert!(config.context_key.is_none()); // then TENANCY_CONTEXT_KEY(_FILE) is read
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
    /// Whether the database is Citus (docs/citus.md). The context is the same signed token:
    /// the Citus target's `install_context` seals it to the distributed transaction and sends
    /// the seal to the workers itself. [`Tenancy::check`] then also checks that the database
    /// has the `citus` extension.
    pub citus: bool,
    /// The key context tokens are signed with (docs/keys.md). `None`: the key is read from
    /// `TENANCY_CONTEXT_KEY` or the file named by `TENANCY_CONTEXT_KEY_FILE` when the
    /// [`Tenancy`] is built; without one every scoped transaction fails with
    /// [`Error::Misconfigured`] and [`Tenancy::check`] says so at startup.
    pub context_key: Option<ContextKey>,
    /// How long a minted token is accepted by the database (default 30 s). It only has to
    /// cover the time between minting and the `BEGIN` reaching the server, plus clock skew
    /// between the application and the database.
    pub token_lifetime: Duration,
    /// The tenant memberships table `(tenant_id, user_id, role)` (optionally `schema.table`)
    /// when the model declares one (`tenant_memberships table ...`): [`Tenancy::authorize`]
    /// then reads the user's tenant-wide role too, and gives it in every project of the
    /// tenant. `None` (the default): project roles only.
    pub tenant_memberships_table: Option<String>,
    /// The projects table (optionally `schema.table`), read by [`Tenancy::authorize`] for a
    /// user with a tenant-wide role (default `projects`).
    pub projects_table: String,
    /// Whether the runtime's own queries (the memberships read of [`Tenancy::authorize`]) use
    /// sqlx's cached named prepared statements (default `true`, one round trip). Set `false`
    /// behind PgBouncer in transaction pooling before 1.21, where a named statement prepared on
    /// one server connection meets another client's of the same name (SQLSTATE 42P05); unnamed
    /// statements cost sqlx one more round trip.
    pub named_statements: bool,
    /// `statement_timeout` of every scoped transaction (default `None`: the connection's), sent
    /// as `SET LOCAL statement_timeout` in the `BEGIN` round trip, so it also holds behind
    /// PgBouncer, where startup options do not reach the server. A statement cut off by it
    /// fails with [`Error::Unavailable`] (SQLSTATE 57014, HTTP 503).
    pub statement_timeout: Option<Duration>,
    /// How many times [`Tenancy::authorize`] (a read that writes nothing) is retried after a
    /// transient fault ([`Error::is_transient`]) before the error is returned (default 1).
    pub read_retries: u32,
}

impl Default for TenancyConfig {
    fn default() -> Self {
        Self {
            helper_schema: "tenancy".to_owned(),
            memberships_table: "user_project_roles".to_owned(),
            tenant_memberships_table: None,
            projects_table: "projects".to_owned(),
            citus: false,
            context_key: None,
            token_lifetime: Duration::from_secs(30),
            named_statements: true,
            statement_timeout: None,
            read_retries: 1,
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
        let tables = [
            ("memberships_table", Some(&self.memberships_table)),
            (
                "tenant_memberships_table",
                self.tenant_memberships_table.as_ref(),
            ),
            ("projects_table", Some(&self.projects_table)),
        ];
        for (setting, table) in tables {
            let Some(table) = table else { continue };
            let parts: Vec<&str> = table.split('.').collect();
            if parts.len() > 2 || !parts.iter().all(|p| is_valid_identifier(p.as_bytes())) {
                return Err(Error::Misconfigured(format!(
                    "{setting} {table:?} is not [schema.]table with parts matching [a-z_][a-z0-9_]*"
                )));
            }
        }
        Ok(())
    }

    /// `role::text, <rank of role in the role enum>`: the select list of the membership reads.
    fn role_and_rank_sql(&self) -> String {
        format!(
            "role::pg_catalog.text, \
             pg_catalog.array_position(pg_catalog.enum_range(NULL::\"{}\".project_role), role) - 1",
            self.helper_schema
        )
    }

    /// `"schema"."table"` or `"table"`, from a validated name.
    fn quoted_memberships_table(&self) -> String {
        crate::sql_names::qualified_table(&self.memberships_table)
    }

    /// This configuration with `key` as its context key.
    pub fn with_context_key(mut self, key: ContextKey) -> Self {
        self.context_key = Some(key);
        self
    }

    /// The context contract this configuration speaks: 3, the signed context (on Citus too).
    pub fn context_contract(&self) -> u32 {
        CONTEXT_CONTRACT
    }
}

/// The signed context contract this runtime speaks on plain PostgreSQL (docs/context.md).
pub const CONTEXT_CONTRACT: u32 = 3;

/// The bytes of a query's text that `pg_stat_activity` shows when the server's
/// `track_activity_query_size` is not known yet (PostgreSQL's default).
const DEFAULT_ACTIVITY_QUERY_SIZE: usize = 1024;

/// The claims of a context (docs/context.md): `tenant;user` followed, for every role rank
/// from 0 to the highest rank the user holds in the scope, by `{projects where the user's rank
/// is at least that}` (projects in the scope's order, sorted by id). `project_roles` is `None`
/// for the authorization transaction, which carries only tenant and user. Every interpolated
/// value is typed (UUIDs in hyphenated hex), so the text needs no quoting.
fn context_claims(tenant: TenantId, user: UserId, project_roles: Option<&[Membership]>) -> String {
    // Writing into a String cannot fail.
    let mut claims = String::new();
    let _ = write!(claims, "{tenant};{user}");
    let memberships = project_roles.unwrap_or_default();
    if let Some(top_rank) = memberships.iter().map(|m| m.rank).max() {
        for rank in 0..=top_rank {
            claims.push_str(";{");
            let at_least = memberships.iter().filter(|m| m.rank >= rank);
            for (index, membership) in at_least.enumerate() {
                if index > 0 {
                    claims.push(',');
                }
                let _ = write!(claims, "{}", membership.project);
            }
            claims.push('}');
        }
    }
    claims
}

/// `SET LOCAL statement_timeout = <ms>; ` when the configuration has a statement timeout (at
/// least 1 ms: 0 would mean none).
fn push_statement_timeout(statement: &mut String, config: &TenancyConfig) {
    if let Some(timeout) = config.statement_timeout {
        let millis = timeout.as_millis().max(1);
        let _ = write!(statement, "SET LOCAL statement_timeout = {millis}; ");
    }
}

/// The signed statement (contract 3): `BEGIN`, a comment of `pad` bytes, and
/// `SELECT <schema>.install_context('<token>')`. `pg_stat_activity` shows only the first
/// `track_activity_query_size` bytes of a query to other sessions, so with `pad` at least
/// that size the token is never visible there (docs/context.md).
fn signed_statement(config: &TenancyConfig, token: &str, pad: usize) -> String {
    let mut statement = String::with_capacity(pad + token.len() + 96);
    statement.push_str("BEGIN; ");
    push_statement_timeout(&mut statement, config);
    statement.push_str("/*");
    statement.extend(std::iter::repeat_n('.', pad));
    let _ = write!(
        statement,
        "*/ SELECT \"{}\".install_context('{token}')",
        config.helper_schema
    );
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
/// let visible: i64 = sqlx::query_scalar("SELECT count(*) FROM notes")
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
    /// The signing key, or why there is none.
    key: Result<ContextKey, String>,
    /// The server's `track_activity_query_size`, learnt by [`Tenancy::check`].
    activity_query_size: Arc<AtomicUsize>,
}

impl Tenancy {
    /// A runtime with the default [`TenancyConfig`].
    pub fn new(pool: PgPool) -> Self {
        Self::with_config(pool, TenancyConfig::default())
    }

    /// A runtime with an explicit configuration. The configuration is checked on every use
    /// (see [`TenancyConfig::validate`]); a bad one makes every call fail with
    /// [`Error::Misconfigured`].
    ///
    /// The context key is `config.context_key`, or else the one in the environment
    /// (`TENANCY_CONTEXT_KEY`, `TENANCY_CONTEXT_KEY_FILE`).
    pub fn with_config(pool: PgPool, config: TenancyConfig) -> Self {
        let key = match config.context_key.clone() {
            Some(key) => Ok(key),
            None => match ContextKey::from_env() {
                Ok(Some(key)) => Ok(key),
                Ok(None) => Err(format!(
                    "no context key: set {} or {}, or TenancyConfig::context_key (docs/keys.md)",
                    crate::context_token::CONTEXT_KEY_ENV,
                    crate::context_token::CONTEXT_KEY_FILE_ENV
                )),
                Err(err) => Err(crate::context_token::message(err)),
            },
        };
        Self {
            pool,
            config,
            key,
            activity_query_size: Arc::new(AtomicUsize::new(DEFAULT_ACTIVITY_QUERY_SIZE)),
        }
    }

    /// Checks, once at startup, that this runtime can open scoped transactions on the
    /// database: the configuration is valid, the database speaks this runtime's context
    /// contract, and (signed contract) the database accepts the context key. Each failure is
    /// one [`Error::Misconfigured`] sentence that says what to do. It also reads the server's
    /// `track_activity_query_size`, so tokens stay out of `pg_stat_activity` even on a server
    /// that shows more than the default 1024 bytes of a query.
    pub async fn check(&self) -> Result<(), Error> {
        self.config.validate()?;
        let schema = &self.config.helper_schema;
        let wanted = self.config.context_contract();
        // Every read runs inside a transaction: behind PgBouncer in transaction pooling the
        // Parse and the Execute of an unnamed statement sent outside one may reach different
        // server connections.
        let mut probe = self.pool.begin().await?;
        let found: Result<i32, sqlx::Error> = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
            "SELECT \"{schema}\".context_contract()"
        )))
        .persistent(false)
        .fetch_one(&mut *probe)
        .await;
        let found = match found {
            Ok(found) => u32::try_from(found).unwrap_or(0),
            Err(err)
                if err
                    .as_database_error()
                    .and_then(|e| e.code())
                    .is_some_and(|code| code == "42883") =>
            {
                2
            }
            Err(err) => return Err(Error::from(err)),
        };
        drop(probe);
        if found != wanted {
            return Err(Error::Misconfigured(format!(
                "the database speaks context contract {found} and this runtime speaks {wanted}: {}",
                if found < wanted {
                    "apply the generated migrations (`tenancy migrate apply`) before starting it"
                } else {
                    "upgrade the runtime to the version that generated the migrations"
                }
            )));
        }
        if self.config.citus {
            let mut probe = self.pool.begin().await?;
            let has_citus: bool = sqlx::query_scalar(
                "SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_extension WHERE extname = 'citus')",
            )
            .persistent(false)
            .fetch_one(&mut *probe)
            .await?;
            probe.commit().await?;
            if !has_citus {
                return Err(Error::Misconfigured(
                    "the configuration says Citus (`citus: true`) but the database has no citus \
                     extension: connect to the Citus coordinator or set `citus: false`"
                        .to_owned(),
                ));
            }
        }
        let mut probe = self.pool.begin().await?;
        let size: i32 = sqlx::query_scalar(
            "SELECT setting::pg_catalog.int4 FROM pg_catalog.pg_settings WHERE name = 'track_activity_query_size'",
        )
        .persistent(false)
        .fetch_one(&mut *probe)
        .await?;
        probe.commit().await?;
        if let Ok(size) = usize::try_from(size) {
            self.activity_query_size
                .store(size.max(DEFAULT_ACTIVITY_QUERY_SIZE), Ordering::Relaxed);
        }
        let key = self
            .key
            .as_ref()
            .map_err(|err| Error::Misconfigured(err.clone()))?;
        // The probe carries empty claims: nothing is visible under it, and it is rolled back.
        let mut tx = self
            .pool
            .begin_with(sqlx::AssertSqlSafe(self.open_statement_for_claims("")?))
            .await?;
        // A refused token is reported by the first read of the context, not by BEGIN.
        let claims: Result<Option<String>, sqlx::Error> = sqlx::query_scalar(sqlx::AssertSqlSafe(
            format!("SELECT \"{schema}\".context_claims()"),
        ))
        .persistent(false)
        .fetch_one(&mut *tx)
        .await;
        drop(tx);
        match claims {
            Ok(_) => Ok(()),
            Err(err) => match err.as_database_error() {
                Some(db) if db.code().is_some_and(|code| code == "42501") => {
                    Err(Error::Misconfigured(format!(
                        "the database refused this runtime's context key \"{}\": {}",
                        key.kid(),
                        db.message()
                    )))
                }
                _ => Err(Error::from(err)),
            },
        }
    }

    /// The statement that opens a transaction with the context of `tenant`, `user` and their
    /// memberships in scope (`None`: tenant and user only).
    fn open_statement(
        &self,
        tenant: TenantId,
        user: UserId,
        project_roles: Option<&[Membership]>,
    ) -> Result<String, Error> {
        self.open_statement_for_claims(&context_claims(tenant, user, project_roles))
    }

    /// What opening a transaction needs before a connection is taken: a valid configuration
    /// and a context key.
    fn ready_to_open(&self) -> Result<(), Error> {
        self.config.validate()?;
        self.key
            .as_ref()
            .map_err(|err| Error::Misconfigured(err.clone()))?;
        Ok(())
    }

    /// The statement that opens a transaction carrying `claims`.
    fn open_statement_for_claims(&self, claims: &str) -> Result<String, Error> {
        self.ready_to_open()?;
        let key = self
            .key
            .as_ref()
            .map_err(|err| Error::Misconfigured(err.clone()))?;
        let token = key.mint(claims, self.config.token_lifetime)?;
        Ok(signed_statement(
            &self.config,
            &token,
            self.activity_query_size.load(Ordering::Relaxed),
        ))
    }

    /// The configuration in use.
    pub fn config(&self) -> &TenancyConfig {
        &self.config
    }

    /// Reads the user's memberships in `tenant` and builds their [`RequestContext`].
    ///
    /// The read runs in a transaction whose context holds only the tenant and the user (the
    /// memberships SELECT policy lets a user read their own rows). No membership in that tenant
    /// gives [`Error::NotFound`], the same as a tenant that does not exist. A transient fault
    /// ([`Error::is_transient`]) is retried [`TenancyConfig::read_retries`] times (default once)
    /// on a new transaction before it is returned.
    #[tracing::instrument(skip_all, fields(tenant_id = %tenant, user_id = %user))]
    pub async fn authorize(&self, user: UserId, tenant: TenantId) -> Result<RequestContext, Error> {
        let mut attempt = 0;
        loop {
            match self.authorize_once(user, tenant).await {
                Err(error) if error.is_transient() && attempt < self.config.read_retries => {
                    attempt += 1;
                    tracing::warn!(%error, attempt, "authorize: transient fault, retrying the read");
                }
                outcome => return outcome,
            }
        }
    }

    /// One attempt of [`Tenancy::authorize`].
    async fn authorize_once(
        &self,
        user: UserId,
        tenant: TenantId,
    ) -> Result<RequestContext, Error> {
        // A configuration problem is this function's error; the statement (a fresh token) is
        // built once the pool has handed out a connection. Cancellation-safe: see crate::begin.
        self.ready_to_open()?;
        let this = self.clone();
        let mut tx = begin_cancel_safe(&self.pool, move || {
            this.open_statement(tenant, user, None)
                .map_err(|e| sqlx::Error::Configuration(e.to_string().into()))
        })
        .await?;
        let query = format!(
            "SELECT project_id, {role_and_rank} \
             FROM {table} WHERE tenant_id = $1 AND user_id = $2 ORDER BY project_id",
            role_and_rank = self.config.role_and_rank_sql(),
            table = self.config.quoted_memberships_table(),
        );
        let rows: Vec<(Uuid, String, Option<i32>)> = sqlx::query_as(sqlx::AssertSqlSafe(query))
            .persistent(self.config.named_statements)
            .bind(tenant.as_uuid())
            .bind(user.as_uuid())
            .fetch_all(&mut *tx)
            .await?;
        // The tenant-wide role, read under the same context (a user reads their own row).
        let tenant_role: Option<(String, Option<i32>)> = match &self.config.tenant_memberships_table
        {
            Some(table) => {
                let query = format!(
                    "SELECT {role_and_rank} FROM {table} WHERE tenant_id = $1 AND user_id = $2",
                    role_and_rank = self.config.role_and_rank_sql(),
                    table = crate::sql_names::qualified_table(table),
                );
                sqlx::query_as(sqlx::AssertSqlSafe(query))
                    .persistent(self.config.named_statements)
                    .bind(tenant.as_uuid())
                    .bind(user.as_uuid())
                    .fetch_optional(&mut *tx)
                    .await?
            }
            None => None,
        };
        tx.commit().await?;

        let ranked =
            |project: Uuid, role: String, rank: Option<i32>| -> Result<Membership, Error> {
                let rank = rank
                    .and_then(|rank| u8::try_from(rank).ok())
                    .ok_or_else(|| Error::Misconfigured(format!("role {role:?} has no rank")))?;
                Ok(Membership {
                    project: ProjectId::new(project),
                    role: RoleName::parse(&role)?,
                    rank,
                })
            };
        let memberships = rows
            .into_iter()
            .map(|(project, role, rank)| ranked(project, role, rank))
            .collect::<Result<Vec<_>, Error>>()?;
        let Some((role, rank)) = tenant_role else {
            if memberships.is_empty() {
                return Err(Error::NotFound);
            }
            return Ok(RequestContext::from_memberships(user, tenant, memberships));
        };
        // A tenant-wide role: the tenant's projects, read in a transaction whose context
        // lists the tenant id at that role's ranks (the projects policy admits a tenant-wide
        // member to every project of the tenant).
        let tenant_entry = ranked(tenant.as_uuid(), role, rank)?;
        let projects = self.tenant_projects(tenant, user, &tenant_entry).await?;
        Ok(RequestContext::with_tenant_role(
            user,
            tenant,
            memberships,
            (tenant_entry.role, tenant_entry.rank),
            projects,
        ))
    }

    /// The ids of every project of `tenant`, read with the context of `user`'s tenant-wide
    /// role `entry`.
    async fn tenant_projects(
        &self,
        tenant: TenantId,
        user: UserId,
        entry: &Membership,
    ) -> Result<Vec<ProjectId>, Error> {
        let this = self.clone();
        let entries = vec![entry.clone()];
        let mut tx = begin_cancel_safe(&self.pool, move || {
            this.open_statement(tenant, user, Some(&entries))
                .map_err(|e| sqlx::Error::Configuration(e.to_string().into()))
        })
        .await?;
        let ids: Vec<Uuid> = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
            "SELECT id FROM {} WHERE tenant_id = $1 ORDER BY id",
            crate::sql_names::qualified_table(&self.config.projects_table)
        )))
        .persistent(self.config.named_statements)
        .bind(tenant.as_uuid())
        .fetch_all(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(ids.into_iter().map(ProjectId::new).collect())
    }

    /// The claims [`Tenancy::begin`] signs for `scope`, e.g.
    /// `<tenant>;<user>;{<p1>,<p2>};{<p2>}` for a viewer of p1 who is an editor of p2 (one
    /// `{...}` per role rank up to the user's highest, each with the projects where the user's
    /// actual role is at least that). Safe to log: it is not a token.
    pub fn context_claims<S: Scope>(&self, scope: &S) -> Result<String, Error> {
        self.config.validate()?;
        Ok(context_claims(
            scope.tenant_id(),
            scope.user_id(),
            Some(scope_memberships(scope)),
        ))
    }

    /// The statement [`Tenancy::begin`] would send for `scope` now: `BEGIN; /*...*/ SELECT
    /// <schema>.install_context('<token>')` (or contract 2's `SET LOCAL` for Citus). It holds a
    /// live token, valid for [`TenancyConfig::token_lifetime`] on any connection: never log it.
    /// For benchmarks and tests that compare with sending the statement by hand.
    pub fn begin_statement<S: Scope>(&self, scope: &S) -> Result<String, Error> {
        self.open_statement(
            scope.tenant_id(),
            scope.user_id(),
            Some(scope_memberships(scope)),
        )
    }

    /// Opens a transaction carrying `scope`'s context: `BEGIN` and
    /// `SELECT <schema>.install_context('<signed token>')` go to the database as one simple
    /// query, in one round trip (docs/context.md). The database verifies the token and binds
    /// the context to this transaction on this connection; it ends with the transaction, so
    /// nothing leaks to the next user of the pooled connection.
    #[tracing::instrument(
        skip_all,
        fields(
            tenant_id = %scope.tenant_id(),
            user_id = %scope.user_id(),
            project_ids = ?scope.project_ids(),
        )
    )]
    pub async fn begin<S: Scope>(&self, scope: &S) -> Result<ScopedTx<S>, Error> {
        // A configuration problem is this function's error; the statement (a fresh token) is
        // built once the pool has handed out a connection, so a wait for a busy pool never
        // expires it.
        self.ready_to_open()?;
        let (this, for_token) = (self.clone(), scope.clone());
        let tx = begin_cancel_safe(&self.pool, move || {
            this.begin_statement(&for_token)
                .map_err(|e| sqlx::Error::Configuration(e.to_string().into()))
        })
        .await?;
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

    fn claims(scope: &impl Scope) -> String {
        context_claims(
            scope.tenant_id(),
            scope.user_id(),
            Some(scope_memberships(scope)),
        )
    }

    #[test]
    fn one_project_claims_are_exact() {
        let ctx = context();
        let scope = ctx
            .project(project(2))
            .unwrap()
            .require::<Viewer>()
            .unwrap();
        assert_eq!(claims(&scope), format!("{TENANT};{USER};{{{P2}}};{{{P2}}}"));
    }

    #[test]
    fn several_projects_claims_are_sorted_with_actual_roles() {
        let ctx = context();
        let scope = ctx
            .projects(&[project(2), project(1)])
            .unwrap()
            .require::<Viewer>()
            .unwrap();
        assert_eq!(Viewer::RANK, 0);
        assert_eq!(
            claims(&scope),
            format!("{TENANT};{USER};{{{P1},{P2}}};{{{P2}}}")
        );
    }

    #[test]
    fn empty_scope_has_no_project_fields() {
        let ctx = context();
        let scope = ctx.all_projects().with_at_least::<Admin>();
        assert!(scope.is_empty());
        assert_eq!(claims(&scope), format!("{TENANT};{USER}"));
    }

    #[test]
    fn citus_speaks_the_signed_contract() {
        let config = TenancyConfig {
            citus: true,
            ..TenancyConfig::default()
        };
        assert_eq!(config.context_contract(), CONTEXT_CONTRACT);
        let statement = signed_statement(&config, "mac.k1;1;*;t;u", 1024);
        assert!(statement.ends_with("*/ SELECT \"tenancy\".install_context('mac.k1;1;*;t;u')"));
        assert!(
            !statement.contains("SET LOCAL tenancy.context"),
            "{statement}"
        );
    }

    #[test]
    fn signed_statement_keeps_the_token_past_the_visible_prefix() {
        let statement = signed_statement(&TenancyConfig::default(), "mac.k1;1;*;t;u", 1024);
        assert!(statement.starts_with("BEGIN; /*"));
        assert!(statement.ends_with("*/ SELECT \"tenancy\".install_context('mac.k1;1;*;t;u')"));
        let token_at = statement.find("mac.k1").unwrap();
        assert!(token_at > 1024, "{token_at}");
    }

    #[test]
    fn statement_timeout_is_set_local_before_the_padding() {
        let config = TenancyConfig {
            statement_timeout: Some(Duration::from_millis(2500)),
            ..TenancyConfig::default()
        };
        let statement = signed_statement(&config, "mac.k1;1;*;t;u", 1024);
        assert!(
            statement.starts_with("BEGIN; SET LOCAL statement_timeout = 2500; /*"),
            "{statement}"
        );
        assert!(statement.find("mac.k1").unwrap() > 1024);
    }

    #[test]
    fn authorize_claims_hold_only_tenant_and_user() {
        let tenant = TenantId::new(Uuid::from_u128(0xa));
        let user = UserId::new(Uuid::from_u128(0xb));
        assert_eq!(
            context_claims(tenant, user, None),
            format!("{TENANT};{USER}")
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
                ..TenancyConfig::default()
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
