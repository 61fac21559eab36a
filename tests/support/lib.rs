//! Test support for the tenancy workspace: a real PostgreSQL (with pgvector) and one fresh
//! database per test.
//!
//! * [`admin_url`] finds the server: `TENANCY_TEST_DATABASE_URL` if set, otherwise it runs
//!   `scripts/pg-up` (which honours `DATABASE_URL` when that server has pgvector, and otherwise
//!   starts a throwaway PostgreSQL 18 + pgvector cluster). It panics when no server is found:
//!   database tests never skip.
//! * [`TestDb::fresh`] creates a uniquely named database with every migration of
//!   `generated/migrations` applied (copied from a template database built once per migration
//!   set); [`TestDb::empty`] creates one without migrations.
//! * [`TestDb::admin_pool`] connects as the superuser (bypasses row-level security, for
//!   arranging fixtures); [`TestDb::app_pool`] connects as the application role [`APP_ROLE`],
//!   which row-level security always applies to.
//!
//! A `TestDb` drops its database when it goes out of scope (or explicitly with
//! [`TestDb::drop_db`]); set `TENANCY_TEST_KEEP_DB=1` to keep it for inspection. Databases left
//! behind by killed runs are dropped an hour later by the next run.

use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{anyhow, bail, Context, Result};
use sqlx::postgres::{PgConnection, PgPool, PgPoolOptions};
use sqlx::Connection;
use tokio::sync::OnceCell;

/// The roles of `policies/rag.tenancy`, least privileged first: a role's position is its rank.
pub const ROLES: [&str; 4] = ["viewer", "editor", "admin", "owner"];

/// The claims of a context (docs/context.md) for `tenant`, `user` and the user's role in some
/// projects, given as `project:role,project:role` (`""` for none):
/// `tenant;user;{projects of rank 0 or above};{rank 1 or above};...` up to the highest role
/// given. Tests sign them with [`context_token`] to install a context by hand with raw SQL.
/// Panics on a role that is not in [`ROLES`] or an entry without `:`.
pub fn context_value(tenant: &str, user: &str, project_roles: &str) -> String {
    let entries: Vec<(&str, usize)> = project_roles
        .split(',')
        .filter(|entry| !entry.is_empty())
        .map(|entry| {
            let (project, role) = entry
                .split_once(':')
                .unwrap_or_else(|| panic!("context entry {entry:?} is not project:role"));
            let rank = ROLES
                .iter()
                .position(|r| *r == role)
                .unwrap_or_else(|| panic!("unknown role {role:?} in {project_roles:?}"));
            (project, rank)
        })
        .collect();
    let mut value = format!("{tenant};{user}");
    if let Some(top) = entries.iter().map(|(_, rank)| *rank).max() {
        for rank in 0..=top {
            let projects: Vec<&str> = entries
                .iter()
                .filter(|(_, r)| *r >= rank)
                .map(|(project, _)| *project)
                .collect();
            value.push_str(&format!(";{{{}}}", projects.join(",")));
        }
    }
    value
}

/// The id of the context key every test database holds (see [`TEST_CONTEXT_KEY_HEX`]).
pub const TEST_CONTEXT_KEY_ID: &str = "tenancy-test-only";

/// The secret of the test context key, in hex. `.cargo/config.toml` hands it to every test
/// process as `TENANCY_CONTEXT_KEY`, so a runtime built with `Tenancy::new` signs with it.
pub const TEST_CONTEXT_KEY_HEX: &str =
    "7465737420636f6e74657874206b6579202d206e6f7420666f722070726f64210a";

/// The test key's secret bytes.
pub fn test_context_secret() -> Vec<u8> {
    (0..TEST_CONTEXT_KEY_HEX.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&TEST_CONTEXT_KEY_HEX[i..i + 2], 16).unwrap_or(0))
        .collect()
}

/// Lower-case hex HMAC-SHA256 of `<domain>;<body>` under `secret`: the tests' own oracle of
/// the token format of docs/context.md, written independently of the runtime.
pub fn hmac_hex(secret: &[u8], domain: &str, body: &str) -> String {
    use hmac::Mac;
    let mut mac = match hmac::Hmac::<sha2::Sha256>::new_from_slice(secret) {
        Ok(mac) => mac,
        Err(err) => panic!("hmac key: {err}"),
    };
    mac.update(domain.as_bytes());
    mac.update(b";");
    mac.update(body.as_bytes());
    mac.finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// A token (docs/context.md) for `claims` under `key_id`/`secret`, with `expires` (unix
/// seconds) and `binding` (`*` or a backend pid): `<hmac>.<kid>;<expires>;<binding>;<claims>`.
pub fn token_with(
    secret: &[u8],
    key_id: &str,
    expires: u64,
    binding: &str,
    claims: &str,
) -> String {
    let body = format!("{key_id};{expires};{binding};{claims}");
    format!("{}.{body}", hmac_hex(secret, "token", &body))
}

/// A token for `claims` under the test key, valid for a minute on any connection.
pub fn context_token(claims: &str) -> String {
    token_with(
        &test_context_secret(),
        TEST_CONTEXT_KEY_ID,
        now_secs() + 60,
        "*",
        claims,
    )
}

/// `SELECT tenancy.install_context('<token of context_value(..)>')`: installs a context by
/// hand inside a transaction, as a raw-SQL caller holding the key would.
pub fn set_context(tenant: &str, user: &str, project_roles: &str) -> String {
    format!(
        "SELECT tenancy.install_context('{}')",
        context_token(&context_value(tenant, user, project_roles))
    )
}

/// `SELECT tenancy.install_context('<token>')` for any claims text, signed with the test key
/// (single quotes doubled): claims a key holder signed, malformed or not.
pub fn install_claims(claims: &str) -> String {
    format!(
        "SELECT tenancy.install_context('{}')",
        context_token(claims).replace('\'', "''")
    )
}

/// `SET LOCAL tenancy.context = '<context_value(..)>'`: what a forger without the key writes
/// (contract 2's way of setting the context). Under contract 3 every policy then raises 42501.
pub fn forge_context(tenant: &str, user: &str, project_roles: &str) -> String {
    format!(
        "SET LOCAL tenancy.context = '{}'",
        context_value(tenant, user, project_roles)
    )
}

/// Installs the test context key in the database behind `conn` when its schema has a key
/// table (contract 3) and the key is not there yet.
pub async fn install_test_key(conn: &mut PgConnection) -> Result<()> {
    let has_keys: bool = sqlx::query_scalar(
        "SELECT pg_catalog.to_regprocedure('tenancy.install_context_key(text,bytea)') IS NOT NULL",
    )
    .fetch_one(&mut *conn)
    .await?;
    if !has_keys {
        return Ok(());
    }
    let present: bool =
        sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM tenancy.context_keys WHERE kid = $1)")
            .bind(TEST_CONTEXT_KEY_ID)
            .fetch_one(&mut *conn)
            .await?;
    if !present {
        sqlx::query("SELECT tenancy.install_context_key($1, $2)")
            .bind(TEST_CONTEXT_KEY_ID)
            .bind(test_context_secret())
            .execute(&mut *conn)
            .await?;
    }
    Ok(())
}

/// The application's login role created by the generated migrations (`app_role` in
/// `policies/*.tenancy`); [`TestDb::app_pool`] connects as this role.
pub const APP_ROLE: &str = "tenancy_app";

/// Prefix of every database created by [`TestDb`].
pub const TEST_DB_PREFIX: &str = "tenancy_t_";

/// Prefix of the template databases that hold the applied migrations.
pub const TEMPLATE_DB_PREFIX: &str = "tenancy_tmpl_";

/// Databases and templates older than this (left behind by killed runs) are dropped.
const STALE_AFTER: Duration = Duration::from_secs(3600);

/// Key of the advisory lock (taken in the admin database) that serialises migration runs:
/// roles are cluster-wide, so two databases must not create them at the same time.
pub const MIGRATION_LOCK_KEY: i64 = 0x7465_6e61_6e63_7901;

static ADMIN_URL: OnceCell<String> = OnceCell::const_new();
static TEMPLATE_NAME: OnceCell<String> = OnceCell::const_new();
static DB_COUNTER: AtomicU64 = AtomicU64::new(0);

/// The root of the checkout (where `scripts/` and `generated/` live).
pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The migrations [`TestDb::fresh`] applies: `TENANCY_TEST_MIGRATIONS_DIR` if set, otherwise
/// the committed `generated/migrations`.
pub fn migrations_dir() -> PathBuf {
    match std::env::var_os("TENANCY_TEST_MIGRATIONS_DIR") {
        Some(dir) if !dir.is_empty() => PathBuf::from(dir),
        _ => repo_root()
            .join("examples/rag/generated")
            .join("migrations"),
    }
}

/// The admin (superuser) URL of the test server; see the crate docs for how it is found.
///
/// # Panics
/// When no PostgreSQL can be found or started: database tests never skip.
pub async fn admin_url() -> String {
    match try_admin_url().await {
        Ok(url) => url,
        Err(err) => panic!(
            "no PostgreSQL with pgvector for the tests: {err:#}\n\
             Run `scripts/pg-up` to see why, or set TENANCY_TEST_DATABASE_URL to a superuser URL \
             of a server with the `vector` extension."
        ),
    }
}

/// Like [`admin_url`], but returns the error instead of panicking.
pub async fn try_admin_url() -> Result<String> {
    ADMIN_URL
        .get_or_try_init(|| async {
            let url = match std::env::var("TENANCY_TEST_DATABASE_URL") {
                Ok(url) if !url.trim().is_empty() => url.trim().to_owned(),
                _ => run_pg_up().await?,
            };
            drop_stale_databases(&url)
                .await
                .with_context(|| format!("connecting to {url}"))?;
            app_role_can_log_in(&url).await?;
            Ok(url)
        })
        .await
        .cloned()
}

/// The tests connect as the app role itself ([`TestDb::app_pool`]). Generated baselines create
/// it as a NOLOGIN group role (deployments log in as member roles, `tenancy login-role
/// create`), so make sure it exists and can log in on the test server before any migration
/// runs, under the migration lock (roles are cluster-wide).
async fn app_role_can_log_in(admin_url: &str) -> Result<()> {
    let mut lock = migration_lock(admin_url).await?;
    sqlx::raw_sql(
        "DO $$ BEGIN \
           IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = 'tenancy_app') THEN \
             CREATE ROLE tenancy_app LOGIN; \
           END IF; \
         END $$; \
         ALTER ROLE tenancy_app LOGIN",
    )
    .execute(&mut lock)
    .await
    .context("letting the app role log in on the test server")?;
    lock.close().await?;
    Ok(())
}

/// Runs `scripts/pg-up` (its diagnostics go to this process's stderr) and returns its URL.
async fn run_pg_up() -> Result<String> {
    let script = repo_root().join("scripts").join("pg-up");
    let output = tokio::task::spawn_blocking(move || {
        Command::new("bash")
            .arg(&script)
            .stdin(Stdio::null())
            .stderr(Stdio::inherit())
            .output()
            .with_context(|| format!("running {}", script.display()))
    })
    .await
    .context("scripts/pg-up task")??;
    if !output.status.success() {
        bail!("scripts/pg-up failed ({})", output.status);
    }
    let url = String::from_utf8(output.stdout)
        .context("scripts/pg-up printed non-UTF-8")?
        .trim()
        .to_owned();
    if url.is_empty() {
        bail!("scripts/pg-up printed no URL");
    }
    Ok(url)
}

/// Seconds since the Unix epoch.
fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// Drops test databases and templates left behind by runs that were killed more than
/// [`STALE_AFTER`] ago. A database still in use is never dropped (no `FORCE`); errors are ignored.
async fn drop_stale_databases(admin_url: &str) -> Result<()> {
    let mut conn = PgConnection::connect(admin_url).await?;
    let rows: Vec<(String, bool, Option<String>)> = sqlx::query_as(
        "SELECT datname::text, datistemplate, pg_catalog.shobj_description(oid, 'pg_database') \
         FROM pg_catalog.pg_database \
         WHERE datname LIKE 'tenancy\\_t\\_%' OR datname LIKE 'tenancy\\_tmpl\\_%'",
    )
    .fetch_all(&mut conn)
    .await?;
    let now = now_secs();
    let current_template = template_name().ok();
    for (name, is_template, comment) in rows {
        let created = if name.starts_with(TEMPLATE_DB_PREFIX) {
            if current_template.as_deref() == Some(name.as_str()) {
                continue;
            }
            comment.as_deref().and_then(created_secs_from_comment)
        } else {
            created_secs_from_db_name(&name)
        };
        let Some(created) = created else { continue };
        if now.saturating_sub(created) < STALE_AFTER.as_secs() {
            continue;
        }
        if is_template {
            let _ = sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
                "ALTER DATABASE {} WITH IS_TEMPLATE false",
                quote_ident(&name)
            )))
            .execute(&mut conn)
            .await;
        }
        let _ = sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
            "DROP DATABASE IF EXISTS {}",
            quote_ident(&name)
        )))
        .execute(&mut conn)
        .await;
    }
    conn.close().await?;
    Ok(())
}

/// The creation time encoded in a test database name `tenancy_t_<secs>_<pid>_<n>_<random>`.
fn created_secs_from_db_name(name: &str) -> Option<u64> {
    name.strip_prefix(TEST_DB_PREFIX)?
        .split('_')
        .next()?
        .parse()
        .ok()
}

/// The creation time recorded in a template's comment `tenancy-tests template created <secs>`.
fn created_secs_from_comment(comment: &str) -> Option<u64> {
    comment
        .strip_prefix("tenancy-tests template created ")?
        .trim()
        .parse()
        .ok()
}

/// Quotes a PostgreSQL identifier.
pub fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// `base` with its user (when `Some`) and database replaced. The password is removed when the
/// user changes, unless `password` is given.
pub fn database_url(
    base: &str,
    user: Option<&str>,
    password: Option<&str>,
    database: &str,
) -> Result<String> {
    let mut url = url::Url::parse(base).with_context(|| format!("parsing database URL {base}"))?;
    if let Some(user) = user {
        url.set_username(user)
            .map_err(|()| anyhow!("cannot set a user on {base} (it needs a host)"))?;
        url.set_password(password)
            .map_err(|()| anyhow!("cannot set a password on {base}"))?;
    }
    url.set_path(&format!("/{database}"));
    Ok(url.to_string())
}

/// The `.sql` files of `dir`, in name order.
pub fn migration_files(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))? {
        let path = entry?.path();
        if path.extension().is_some_and(|ext| ext == "sql") && path.is_file() {
            files.push(path);
        }
    }
    files.sort();
    Ok(files)
}

/// Holds the cluster-wide migration lock while the returned connection is open.
async fn migration_lock(admin_url: &str) -> Result<PgConnection> {
    let mut conn = PgConnection::connect(admin_url).await?;
    sqlx::query("SELECT pg_catalog.pg_advisory_lock($1)")
        .bind(MIGRATION_LOCK_KEY)
        .execute(&mut conn)
        .await?;
    Ok(conn)
}

/// Applies every `.sql` file of `dir` (in name order) to the database at `url`, each file in its
/// own transaction, while holding the cluster-wide migration lock. Returns the files applied.
pub async fn apply_migrations(url: &str, dir: &Path) -> Result<Vec<PathBuf>> {
    let files = migration_files(dir)?;
    let lock = migration_lock(&try_admin_url().await?).await?;
    let mut conn = PgConnection::connect(url)
        .await
        .with_context(|| format!("connecting to {url}"))?;
    for file in &files {
        let sql =
            std::fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))?;
        let mut tx = conn.begin().await?;
        sqlx::raw_sql(sqlx::AssertSqlSafe(sql.as_str()))
            .execute(&mut *tx)
            .await
            .with_context(|| format!("applying {}", file.display()))?;
        tx.commit()
            .await
            .with_context(|| format!("committing {}", file.display()))?;
    }
    install_test_key(&mut conn).await?;
    conn.close().await?;
    lock.close().await?;
    Ok(files)
}

/// The template name for the current migration set: a hash of the file names and contents.
fn template_name() -> Result<String> {
    let files = migration_files(&migrations_dir())?;
    if files.is_empty() {
        bail!(
            "{} holds no .sql files: run `cargo run -p tenancy-cli --bin tenancy -- generate`",
            migrations_dir().display()
        );
    }
    let mut hasher = DefaultHasher::new();
    // What the template holds besides the migrations: the test context key.
    (TEST_CONTEXT_KEY_ID, TEST_CONTEXT_KEY_HEX).hash(&mut hasher);
    for file in &files {
        file.file_name().hash(&mut hasher);
        std::fs::read(file)
            .with_context(|| format!("reading {}", file.display()))?
            .hash(&mut hasher);
    }
    Ok(format!("{TEMPLATE_DB_PREFIX}{:016x}", hasher.finish()))
}

/// Builds (once per migration set, shared by all test processes) the template database holding
/// every migration, and returns its name.
async fn ensure_template() -> Result<String> {
    TEMPLATE_NAME
        .get_or_try_init(|| async {
            let name = template_name()?;
            let admin = try_admin_url().await?;
            let mut lock = migration_lock(&admin).await?;
            let state: Option<bool> = sqlx::query_scalar(
                "SELECT datistemplate FROM pg_catalog.pg_database WHERE datname = $1",
            )
            .bind(&name)
            .fetch_optional(&mut lock)
            .await?;
            match state {
                Some(true) => {
                    lock.close().await?;
                    return Ok(name);
                }
                // A build that died half-way.
                Some(false) => {
                    sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
                        "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                        quote_ident(&name)
                    )))
                    .execute(&mut lock)
                    .await?;
                }
                None => {}
            }
            let quoted = quote_ident(&name);
            sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE DATABASE {quoted}")))
                .execute(&mut lock)
                .await?;
            let url = database_url(&admin, None, None, &name)?;
            let mut conn = PgConnection::connect(&url).await?;
            for file in migration_files(&migrations_dir())? {
                let sql = std::fs::read_to_string(&file)
                    .with_context(|| format!("reading {}", file.display()))?;
                let mut tx = conn.begin().await?;
                sqlx::raw_sql(sqlx::AssertSqlSafe(sql.as_str()))
                    .execute(&mut *tx)
                    .await
                    .with_context(|| format!("applying {}", file.display()))?;
                tx.commit()
                    .await
                    .with_context(|| format!("committing {}", file.display()))?;
            }
            install_test_key(&mut conn).await?;
            conn.close().await?;
            // Nobody may connect to a template while it is copied, so forbid connections.
            sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
                "COMMENT ON DATABASE {quoted} IS 'tenancy-tests template created {}';\n\
                 ALTER DATABASE {quoted} WITH ALLOW_CONNECTIONS false;\n\
                 ALTER DATABASE {quoted} WITH IS_TEMPLATE true;",
                now_secs()
            )))
            .execute(&mut lock)
            .await?;
            lock.close().await?;
            Ok(name)
        })
        .await
        .cloned()
}

/// A uniquely named database on the test server, dropped when this value is dropped.
pub struct TestDb {
    name: String,
    url: String,
    app_url: String,
    admin_url: String,
    admin_pool: PgPool,
    app_pool: PgPool,
    dropped: bool,
}

impl TestDb {
    /// A new database with every migration of `generated/migrations` applied.
    ///
    /// # Panics
    /// When there is no server, no migration, or a migration fails.
    pub async fn fresh() -> TestDb {
        match Self::try_fresh().await {
            Ok(db) => db,
            Err(err) => panic!("TestDb::fresh failed: {err:#}"),
        }
    }

    /// Like [`TestDb::fresh`], but returns the error instead of panicking.
    pub async fn try_fresh() -> Result<TestDb> {
        let template = ensure_template().await?;
        Self::create(Some(&template)).await
    }

    /// A new database without migrations (for tests that apply migrations themselves).
    ///
    /// # Panics
    /// When there is no server or the database cannot be created.
    pub async fn empty() -> TestDb {
        match Self::try_empty().await {
            Ok(db) => db,
            Err(err) => panic!("TestDb::empty failed: {err:#}"),
        }
    }

    /// Like [`TestDb::empty`], but returns the error instead of panicking.
    pub async fn try_empty() -> Result<TestDb> {
        Self::create(None).await
    }

    async fn create(template: Option<&str>) -> Result<TestDb> {
        let admin_url = try_admin_url().await?;
        let name = format!(
            "{TEST_DB_PREFIX}{}_{}_{}_{}",
            now_secs(),
            std::process::id(),
            DB_COUNTER.fetch_add(1, Ordering::Relaxed),
            &uuid::Uuid::new_v4().simple().to_string()[..8],
        );
        let template_clause = match template {
            Some(template) => format!(" TEMPLATE {}", quote_ident(template)),
            None => String::new(),
        };
        let mut conn = PgConnection::connect(&admin_url)
            .await
            .with_context(|| format!("connecting to {admin_url}"))?;
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
            "CREATE DATABASE {}{template_clause}",
            quote_ident(&name)
        )))
        .execute(&mut conn)
        .await
        .with_context(|| format!("creating database {name}"))?;
        if template.is_some() {
            // A copy does not inherit the template's database-level grants: revoke TEMP again,
            // as the generated core migration does.
            sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
                "REVOKE TEMPORARY ON DATABASE {} FROM PUBLIC",
                quote_ident(&name)
            )))
            .execute(&mut conn)
            .await
            .with_context(|| format!("revoking TEMP on {name}"))?;
        }
        conn.close().await?;

        let url = database_url(&admin_url, None, None, &name)?;
        let app_password = std::env::var("TENANCY_TEST_APP_PASSWORD").ok();
        let app_url = database_url(&admin_url, Some(APP_ROLE), app_password.as_deref(), &name)?;
        let admin_pool = PgPoolOptions::new()
            .max_connections(5)
            .connect(&url)
            .await
            .with_context(|| format!("connecting to {url}"))?;
        // Lazy: the app role exists only once the migrations ran.
        let app_pool = PgPoolOptions::new()
            .max_connections(5)
            .connect_lazy(&app_url)?;
        Ok(TestDb {
            name,
            url,
            app_url,
            admin_url,
            admin_pool,
            app_pool,
            dropped: false,
        })
    }

    /// The database's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The superuser URL of this database.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The URL of this database for the application role [`APP_ROLE`].
    pub fn app_url(&self) -> &str {
        &self.app_url
    }

    /// A pool connected as the superuser: bypasses row-level security (arrange fixtures here).
    pub fn admin_pool(&self) -> &PgPool {
        &self.admin_pool
    }

    /// A pool connected as [`APP_ROLE`]: always subject to row-level security. Connects lazily,
    /// so it works only once the migrations created the role.
    pub fn app_pool(&self) -> &PgPool {
        &self.app_pool
    }

    /// Applies every `.sql` file of `dir` to this database (see [`apply_migrations`]).
    pub async fn apply_migrations(&self, dir: &Path) -> Result<Vec<PathBuf>> {
        apply_migrations(&self.url, dir).await
    }

    /// Closes the pools and drops the database.
    ///
    /// # Panics
    /// When the database cannot be dropped.
    pub async fn drop_db(mut self) {
        self.admin_pool.close().await;
        self.app_pool.close().await;
        self.dropped = true;
        if keep_databases() {
            eprintln!("TENANCY_TEST_KEEP_DB: keeping database {}", self.name);
            return;
        }
        if let Err(err) = drop_database(&self.admin_url, &self.name).await {
            panic!("dropping database {}: {err:#}", self.name);
        }
    }
}

/// Whether `TENANCY_TEST_KEEP_DB` asks to keep test databases.
fn keep_databases() -> bool {
    std::env::var("TENANCY_TEST_KEEP_DB").is_ok_and(|v| !v.is_empty() && v != "0")
}

async fn drop_database(admin_url: &str, name: &str) -> Result<()> {
    let mut conn = PgConnection::connect(admin_url).await?;
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
        "DROP DATABASE IF EXISTS {} WITH (FORCE)",
        quote_ident(name)
    )))
    .execute(&mut conn)
    .await?;
    conn.close().await?;
    Ok(())
}

impl Drop for TestDb {
    /// Drops the database on a helper thread with its own runtime (async code cannot run in
    /// `drop`); failures are reported on stderr only, the stale-database sweep catches them.
    fn drop(&mut self) {
        if self.dropped {
            return;
        }
        if keep_databases() {
            eprintln!("TENANCY_TEST_KEEP_DB: keeping database {}", self.name);
            return;
        }
        let admin_url = self.admin_url.clone();
        let name = self.name.clone();
        let dropper = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .context("building a runtime")?;
            runtime.block_on(drop_database(&admin_url, &name))
        });
        // Written to stderr directly: libtest captures `eprintln!` of passing tests.
        let warning = match dropper.join() {
            Ok(Ok(())) => return,
            Ok(Err(err)) => format!("could not drop test database {}: {err:#}", self.name),
            Err(_) => format!("the thread dropping test database {} panicked", self.name),
        };
        let _ = writeln!(std::io::stderr(), "warning: {warning}");
    }
}

/// A PgBouncer in transaction-pooling mode in front of the test server, started by
/// `scripts/pgbouncer-up` (which installs it when missing), killed and its directory removed
/// on drop.
pub struct PgBouncer {
    /// The port it listens on (127.0.0.1).
    pub port: u16,
    pid: i32,
    dir: String,
}

impl PgBouncer {
    /// Starts one for the database of `upstream_admin_url`, with `PGBOUNCER_POOL_SIZE=2`.
    ///
    /// # Panics
    /// When the script fails.
    pub fn start(upstream_admin_url: &str) -> PgBouncer {
        let script = repo_root().join("scripts").join("pgbouncer-up");
        let output = match Command::new("bash")
            .arg(&script)
            .arg(upstream_admin_url)
            .env("PGBOUNCER_POOL_SIZE", "2")
            .stderr(Stdio::inherit())
            .output()
        {
            Ok(output) => output,
            Err(err) => panic!("running scripts/pgbouncer-up: {err}"),
        };
        assert!(
            output.status.success(),
            "scripts/pgbouncer-up failed: {}",
            output.status
        );
        let line = String::from_utf8_lossy(&output.stdout).into_owned();
        let fields: Vec<&str> = line.split_whitespace().collect();
        assert_eq!(fields.len(), 3, "scripts/pgbouncer-up printed {line:?}");
        PgBouncer {
            port: fields[0]
                .parse()
                .unwrap_or_else(|_| panic!("port in {line:?}")),
            pid: fields[1]
                .parse()
                .unwrap_or_else(|_| panic!("pid in {line:?}")),
            dir: fields[2].to_owned(),
        }
    }
}

impl Drop for PgBouncer {
    fn drop(&mut self) {
        let _ = Command::new("kill").arg(self.pid.to_string()).status();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Two tenants for isolation tests: A (project `a1`, owned by `alice`) and B (project `b1`,
/// owned by `bob`), each with some documents, inserted as the superuser.
#[derive(Clone, Debug)]
pub struct TwoTenants {
    /// Tenant A.
    pub tenant_a: uuid::Uuid,
    /// A's project.
    pub a1: uuid::Uuid,
    /// Tenant B.
    pub tenant_b: uuid::Uuid,
    /// B's project.
    pub b1: uuid::Uuid,
    /// Owner of A1.
    pub alice: uuid::Uuid,
    /// Owner of B1.
    pub bob: uuid::Uuid,
    /// A's document ids, sorted.
    pub a_docs: Vec<uuid::Uuid>,
    /// B's document ids, sorted.
    pub b_docs: Vec<uuid::Uuid>,
}

impl TwoTenants {
    /// Inserts the two tenants into `db` with `a_count` and `b_count` documents.
    ///
    /// # Panics
    /// When an insert fails.
    pub async fn seed(db: &TestDb, a_count: usize, b_count: usize) -> TwoTenants {
        let admin = db.admin_pool();
        let ids = || uuid::Uuid::new_v4();
        let (tenant_a, a1, tenant_b, b1, alice, bob) = (ids(), ids(), ids(), ids(), ids(), ids());
        let mut docs = [Vec::new(), Vec::new()];
        for (i, (tenant, project, user, n)) in
            [(tenant_a, a1, alice, a_count), (tenant_b, b1, bob, b_count)]
                .into_iter()
                .enumerate()
        {
            let statements = [
                sqlx::query("INSERT INTO tenants (id, name, slug) VALUES ($1, $2, $2)")
                    .bind(tenant)
                    .bind(format!("t{i}")),
                sqlx::query(
                    "INSERT INTO projects (tenant_id, id, name, slug) VALUES ($1, $2, 'p', 'p')",
                )
                .bind(tenant)
                .bind(project),
                sqlx::query(
                    "INSERT INTO user_project_roles (tenant_id, project_id, user_id, role) \
                     VALUES ($1, $2, $3, 'owner')",
                )
                .bind(tenant)
                .bind(project)
                .bind(user),
            ];
            for statement in statements {
                if let Err(err) = statement.execute(admin).await {
                    panic!("seeding tenant {i}: {err}");
                }
            }
            for k in 0..n {
                let id = ids();
                let inserted = sqlx::query(
                    "INSERT INTO documents (tenant_id, project_id, id, title, content_hash, created_by) \
                     VALUES ($1, $2, $3, 't', $4, $5)",
                )
                .bind(tenant)
                .bind(project)
                .bind(id)
                .bind(format!("h{k}"))
                .bind(user)
                .execute(admin)
                .await;
                if let Err(err) = inserted {
                    panic!("seeding a document: {err}");
                }
                docs[i].push(id);
            }
            docs[i].sort();
        }
        let [a_docs, b_docs] = docs;
        TwoTenants {
            tenant_a,
            a1,
            tenant_b,
            b1,
            alice,
            bob,
            a_docs,
            b_docs,
        }
    }
}
