//! `tenancy login-role create|list`: the login roles the application connects as. The
//! generated migrations create the app role as a NOLOGIN group role (when it does not exist
//! yet); an operator makes one login role per deployment that is a member of it, inherits its
//! grants and is subject to the same row-level-security policies, and can never bypass them.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{bail, Context, Result};
use sqlx::postgres::PgConnection;
use sqlx::{Connection, Row};

/// `tenancy login-role ...`.
#[derive(Debug, clap::Subcommand)]
pub(crate) enum LoginRoleCommand {
    /// Create a login role that is a member of the app role (INHERIT, NOSUPERUSER, NOBYPASSRLS,
    /// NOCREATEDB, NOCREATEROLE, NOREPLICATION). The password, if any, is read from a file and
    /// never printed or logged.
    Create {
        /// The new role's name: `[a-z_][a-z0-9_]*`, at most 63 bytes.
        name: String,
        /// A file holding the password (its first line). Without it the role has no password
        /// (certificate or peer authentication, configured in pg_hba.conf).
        #[arg(long, value_name = "PATH")]
        password_file: Option<PathBuf>,
        #[command(flatten)]
        args: LoginRoleArgs,
    },
    /// List the login roles that are members of the app role.
    List {
        #[command(flatten)]
        args: LoginRoleArgs,
    },
}

/// The connection and the policies (which name the app role).
#[derive(Debug, clap::Args)]
pub(crate) struct LoginRoleArgs {
    /// PRIVILEGED database URL (default: DATABASE_URL): a superuser or a role with CREATEROLE
    /// and the app role's ADMIN option.
    #[arg(long, value_name = "URL")]
    database_url: Option<String>,
    #[command(flatten)]
    policy: crate::PolicyArgs,
}

impl LoginRoleArgs {
    fn url(&self) -> Result<String> {
        crate::database_url(self.database_url.as_deref())
    }
}

/// Runs a `tenancy login-role` command.
pub(crate) fn login_role(command: LoginRoleCommand) -> Result<ExitCode> {
    crate::block_on(async move {
        match command {
            LoginRoleCommand::Create {
                name,
                password_file,
                args,
            } => create(&name, password_file.as_deref(), &args).await,
            LoginRoleCommand::List { args } => list(&args).await,
        }
    })
}

/// `"name"` for a validated identifier.
fn quoted(name: &str) -> String {
    format!("\"{name}\"")
}

/// `'text'` with single quotes doubled.
fn literal(text: &str) -> String {
    format!("'{}'", text.replace('\'', "''"))
}

fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 63
        && name
            .bytes()
            .enumerate()
            .all(|(i, b)| b.is_ascii_lowercase() || b == b'_' || (i > 0 && b.is_ascii_digit()))
}

async fn create(
    name: &str,
    password_file: Option<&std::path::Path>,
    args: &LoginRoleArgs,
) -> Result<ExitCode> {
    if !valid_name(name) {
        bail!("the role name {name:?} does not match [a-z_][a-z0-9_]* (at most 63 bytes)");
    }
    let url = args.url()?;
    let model = crate::load(&args.policy)?;
    let app = model.settings.app_role.clone();
    if name == app || name == model.settings.owner_role {
        bail!("{name} is a role of the generated schema; choose another name for the login role");
    }
    let password = match password_file {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("could not read the password file {}", path.display()))?;
            let first = text.lines().next().unwrap_or_default().to_owned();
            if first.is_empty() {
                bail!("the password file {} is empty", path.display());
            }
            Some(first)
        }
        None => None,
    };
    let mut conn = PgConnection::connect(&url)
        .await
        .context("could not connect to the database")?;
    let mut tx = conn.begin().await?;
    let exists: bool =
        sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = $1)")
            .bind(name)
            .fetch_one(&mut *tx)
            .await?;
    if exists {
        bail!("role {name} already exists; nothing was changed");
    }
    let app_exists: bool =
        sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = $1)")
            .bind(&app)
            .fetch_one(&mut *tx)
            .await?;
    if !app_exists {
        bail!(
            "the app role {app} does not exist: apply the migrations first (tenancy migrate apply)"
        );
    }
    if password.is_some() {
        // CREATE ROLE ... PASSWORD cannot take a bind parameter: keep the statement out of the
        // server log (only a superuser may change these; anyone else is refused below).
        let superuser: bool = sqlx::query_scalar(
            "SELECT rolsuper FROM pg_catalog.pg_roles WHERE rolname = current_user",
        )
        .fetch_one(&mut *tx)
        .await?;
        if superuser {
            sqlx::raw_sql(
                "SET LOCAL log_statement = 'none'; SET LOCAL log_min_duration_statement = -1",
            )
            .execute(&mut *tx)
            .await?;
        } else {
            let logged: String = sqlx::query_scalar("SELECT current_setting('log_statement')")
                .fetch_one(&mut *tx)
                .await?;
            if logged == "ddl" || logged == "all" {
                bail!("the server logs DDL statements (log_statement = {logged}) and only a superuser can turn that off for this statement: the password would be logged; nothing was changed");
            }
        }
    }
    let mut statement = format!(
        "CREATE ROLE {} LOGIN INHERIT NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE NOREPLICATION IN ROLE {}",
        quoted(name),
        quoted(&app)
    );
    if let Some(password) = &password {
        statement.push_str(" PASSWORD ");
        statement.push_str(&literal(password));
    }
    sqlx::raw_sql(sqlx::AssertSqlSafe(statement))
        .execute(&mut *tx)
        .await
        .map_err(|err| anyhow::anyhow!("could not create role {name}: {}", db_message(&err)))?;
    tx.commit().await?;
    println!(
        "created login role {name}: member of {app}, subject to row-level security{}",
        if password.is_some() {
            ", password set (not shown)"
        } else {
            ", no password"
        }
    );
    Ok(ExitCode::SUCCESS)
}

/// The server's message of a database error, never the statement (it may hold a password).
fn db_message(err: &sqlx::Error) -> String {
    match err.as_database_error() {
        Some(db) => db.message().to_owned(),
        None => "the connection failed".to_owned(),
    }
}

async fn list(args: &LoginRoleArgs) -> Result<ExitCode> {
    let url = args.url()?;
    let model = crate::load(&args.policy)?;
    let mut conn = PgConnection::connect(&url)
        .await
        .context("could not connect to the database")?;
    let rows = sqlx::query(
        "SELECT r.rolname, r.rolbypassrls OR r.rolsuper AS bypasses, r.rolinherit \
         FROM pg_catalog.pg_roles AS r \
         JOIN pg_catalog.pg_auth_members AS m ON m.member = r.oid \
         JOIN pg_catalog.pg_roles AS app ON app.oid = m.roleid \
         WHERE app.rolname = $1 AND r.rolcanlogin ORDER BY r.rolname",
    )
    .bind(&model.settings.app_role)
    .fetch_all(&mut conn)
    .await?;
    for row in rows {
        let name: String = row.try_get(0)?;
        let bypasses: bool = row.try_get(1)?;
        let inherits: bool = row.try_get(2)?;
        let mut notes = Vec::new();
        if bypasses {
            notes.push("BYPASSES row-level security");
        }
        if !inherits {
            notes.push("NOINHERIT: does not get the app role's grants");
        }
        if notes.is_empty() {
            println!("{name}");
        } else {
            println!("{name}  ({})", notes.join("; "));
        }
    }
    Ok(ExitCode::SUCCESS)
}
