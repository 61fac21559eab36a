//! `tenancy key install|rotate|retire|list`: the signing keys of the signed request context
//! (context contract v3, docs/keys.md).
//!
//! The keys live in `<helper_schema>.context_keys`, which only the owner role reads; a key is
//! added with `<helper_schema>.install_context_key(kid, secret)`. Every command runs in one
//! transaction on a privileged connection. A secret is never printed: it goes from the random
//! source (or a secret file) to the database and to a 0600 file, nowhere else.

use std::fmt::Write as _;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{bail, Context, Result};
use clap::ValueEnum;
use sqlx::postgres::PgConnection;
use sqlx::{Connection, Row};

/// Bytes of a generated secret (the HMAC-SHA256 block is 64 bytes; 32 is the minimum the
/// database accepts and the strength of SHA-256).
const GENERATED_SECRET_BYTES: usize = 32;

/// The fewest bytes `install_context_key` accepts.
const MIN_SECRET_BYTES: usize = 32;

/// The longest key id the key table accepts.
const MAX_KID_LEN: usize = 64;

/// The connection and the policies, shared by every `tenancy key` command.
#[derive(Debug, clap::Args)]
pub(crate) struct KeyArgs {
    /// PRIVILEGED database URL (default: the DATABASE_URL environment variable): a superuser
    /// or a member of the owner role such as the role that applies the migrations, never the
    /// app role (it cannot read the key table).
    #[arg(long, value_name = "URL")]
    database_url: Option<String>,
    /// The policies name the helper schema that holds the key table.
    #[command(flatten)]
    policy: crate::PolicyArgs,
}

/// `--format` values of `tenancy key list`.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub(crate) enum ListFormat {
    /// One line per key under a header: kid, status, created_at, retired_at.
    Text,
    /// `{"keys": [{"kid", "active", "created_at", "retired_at"}]}` (timestamps in UTC, RFC 3339;
    /// `retired_at` is null for an active key).
    Json,
}

/// `tenancy key ...`.
#[derive(Debug, clap::Subcommand)]
pub(crate) enum KeyCommand {
    /// Install a context key: from a secret file, or a new random one written to a new file
    /// (mode 0600). The secret is never printed.
    Install {
        /// The key id: 1 to 64 of A-Z, a-z, 0-9, '_' and '-'. Tokens name it.
        #[arg(long, value_name = "KID")]
        kid: String,
        /// Read the secret from this file: `KID:HEX` or just `HEX` (at least 32 bytes).
        #[arg(
            long,
            value_name = "PATH",
            conflicts_with = "generate",
            required_unless_present = "generate"
        )]
        secret_file: Option<PathBuf>,
        /// Generate 32 random bytes and write `KID:HEX` to --out.
        #[arg(long, requires = "out")]
        generate: bool,
        /// With --generate: the new file for the secret (mode 0600; an existing file is never
        /// overwritten). Give it to the runtime as TENANCY_CONTEXT_KEY_FILE.
        #[arg(long, value_name = "PATH", requires = "generate")]
        out: Option<PathBuf>,
        #[command(flatten)]
        args: KeyArgs,
    },
    /// Start a rotation: generate and install a new key while the old ones stay active, then
    /// print the next steps (deploy the runtime with the new key, retire the old one).
    Rotate {
        /// The new key's id.
        #[arg(long, value_name = "KID")]
        new_kid: String,
        /// The new file for the new secret (mode 0600; never overwritten).
        #[arg(long, value_name = "PATH")]
        out: PathBuf,
        #[command(flatten)]
        args: KeyArgs,
    },
    /// Retire a key: tokens signed with it are refused from now on. The last active key is
    /// kept unless --force (without an active key the database refuses every request).
    Retire {
        /// The key id.
        #[arg(value_name = "KID")]
        kid: String,
        /// Retire it even when it is the last active key.
        #[arg(long)]
        force: bool,
        #[command(flatten)]
        args: KeyArgs,
    },
    /// List the keys: id, active or retired, created_at, retired_at (never secrets).
    List {
        /// `text` or `json`.
        #[arg(long, value_enum, default_value_t = ListFormat::Text)]
        format: ListFormat,
        #[command(flatten)]
        args: KeyArgs,
    },
}

/// Runs a `tenancy key` command.
pub(crate) fn key(command: KeyCommand) -> Result<ExitCode> {
    let message = crate::block_on(async {
        match command {
            KeyCommand::Install {
                kid,
                secret_file,
                generate: _,
                out,
                args,
            } => {
                check_kid(&kid)?;
                let source = match (secret_file, out) {
                    (Some(path), _) => SecretSource::File(path),
                    (None, Some(out)) => SecretSource::Generate(out),
                    (None, None) => bail!("pass --secret-file PATH or --generate --out PATH"),
                };
                install(&args, &kid, source, false).await
            }
            KeyCommand::Rotate { new_kid, out, args } => {
                check_kid(&new_kid)?;
                install(&args, &new_kid, SecretSource::Generate(out), true).await
            }
            KeyCommand::Retire { kid, force, args } => retire(&args, &kid, force).await,
            KeyCommand::List { format, args } => list(&args, format).await,
        }
    })?;
    print!("{message}");
    Ok(ExitCode::SUCCESS)
}

// ---- secrets ------------------------------------------------------------------------------

/// A key secret. Its `Debug` shows the length only, so it cannot end up in a message.
struct Secret(Vec<u8>);

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Secret({} bytes)", self.0.len())
    }
}

impl Drop for Secret {
    fn drop(&mut self) {
        // Best effort: overwrite the bytes before the allocation is freed.
        self.0.iter_mut().for_each(|b| *b = 0);
    }
}

/// Where the secret of a new key comes from.
enum SecretSource {
    /// An existing file holding `KID:HEX` or `HEX`.
    File(PathBuf),
    /// New random bytes, written as `KID:HEX` to this new file.
    Generate(PathBuf),
}

/// Checks a key id against the key table's constraint, `^[A-Za-z0-9_-]{1,64}$`.
fn check_kid(kid: &str) -> Result<()> {
    let valid = !kid.is_empty()
        && kid.len() <= MAX_KID_LEN
        && kid
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    if !valid {
        bail!("key id {kid:?} is not 1 to {MAX_KID_LEN} of A-Z, a-z, 0-9, '_' and '-'");
    }
    Ok(())
}

/// `bytes` as lowercase hex.
fn hex(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len() * 2);
    for byte in bytes {
        let _ = write!(out, "{byte:02x}");
    }
    out
}

/// Decodes hex (either case); `None` for anything else, an odd length included.
fn unhex(text: &str) -> Option<Vec<u8>> {
    let digits = text.as_bytes();
    if !digits.len().is_multiple_of(2) {
        return None;
    }
    digits
        .chunks(2)
        .map(|pair| {
            let high = char::from(pair[0]).to_digit(16)?;
            let low = char::from(pair[1]).to_digit(16)?;
            u8::try_from(high * 16 + low).ok()
        })
        .collect()
}

/// Reads `KID:HEX` or `HEX` from `path`; a kid in the file must be `kid`. No error message
/// quotes the file's content.
fn read_secret_file(path: &Path, kid: &str) -> Result<Secret> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("could not read the secret file `{}`", path.display()))?;
    let text = text.trim();
    let hex_part = match text.split_once(':') {
        Some((file_kid, rest)) => {
            let file_kid = file_kid.trim();
            if file_kid != kid {
                bail!(
                    "the secret file `{}` is for key {file_kid:?}, not for --kid {kid:?}",
                    path.display()
                );
            }
            rest.trim()
        }
        None => text,
    };
    let Some(bytes) = unhex(hex_part) else {
        bail!(
            "the secret file `{}` does not hold KID:HEX or HEX (an even number of hex digits)",
            path.display()
        );
    };
    let secret = Secret(bytes);
    if secret.0.len() < MIN_SECRET_BYTES {
        bail!(
            "the secret in `{}` has {} bytes; a context key needs at least {MIN_SECRET_BYTES}",
            path.display(),
            secret.0.len()
        );
    }
    Ok(secret)
}

/// 32 bytes from the operating system's random source.
fn generate_secret() -> Result<Secret> {
    let mut secret = Secret(vec![0u8; GENERATED_SECRET_BYTES]);
    getrandom::fill(&mut secret.0)
        .map_err(|e| anyhow::anyhow!("{e}"))
        .context("could not read random bytes from the operating system")?;
    Ok(secret)
}

/// Refuses an output path that exists or whose directory does not, before anything happens.
fn check_out_path(path: &Path) -> Result<()> {
    if path.symlink_metadata().is_ok() {
        bail!(
            "`{}` already exists; the key file is never overwritten, choose a new --out path",
            path.display()
        );
    }
    let parent = match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => Path::new("."),
    };
    if !parent.is_dir() {
        bail!(
            "cannot write `{}`: the directory `{}` does not exist",
            path.display(),
            parent.display()
        );
    }
    Ok(())
}

/// Creates `path` (which must not exist) with mode 0600 and writes `KID:HEX\n` to it.
fn write_key_file(path: &Path, kid: &str, secret: &Secret) -> Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options
        .open(path)
        .with_context(|| format!("could not create the key file `{}`", path.display()))?;
    let mut line = format!("{kid}:{}\n", hex(&secret.0));
    let written = file
        .write_all(line.as_bytes())
        .and_then(|()| file.sync_all());
    // Best effort: do not leave the hex copy of the secret behind.
    line.clear();
    line.shrink_to_fit();
    if let Err(error) = written {
        let _ = std::fs::remove_file(path);
        return Err(error)
            .with_context(|| format!("could not write the key file `{}`", path.display()));
    }
    Ok(())
}

// ---- the database -------------------------------------------------------------------------

/// The key table and functions of one helper schema, and the owner role to name in errors.
struct KeyTable {
    /// `"schema".context_keys`.
    table: String,
    /// `"schema".install_context_key`.
    installer: String,
    /// `schema.context_keys`, for messages.
    display: String,
    /// The owner role of the generated objects.
    owner_role: String,
}

impl KeyTable {
    fn new(args: &KeyArgs) -> Result<Self> {
        let model = crate::load(&args.policy)?;
        let schema = &model.settings.helper_schema;
        let quoted = format!("\"{}\"", schema.replace('"', "\"\""));
        Ok(Self {
            table: format!("{quoted}.context_keys"),
            installer: format!("{quoted}.install_context_key"),
            display: format!("{schema}.context_keys"),
            owner_role: model.settings.owner_role.clone(),
        })
    }

    /// Checks that the key table and its installer exist and that this role may use them.
    async fn preflight(&self, conn: &mut PgConnection) -> Result<()> {
        let signature = format!("{}(text, bytea)", self.installer);
        let row = sqlx::query(
            "SELECT current_user::text, \
                    to_regclass($1) IS NOT NULL AND to_regprocedure($2) IS NOT NULL",
        )
        .bind(&self.table)
        .bind(&signature)
        .fetch_one(&mut *conn)
        .await
        .context("could not query the database")?;
        let user: String = row.try_get(0)?;
        let present: bool = row.try_get(1)?;
        if !present {
            bail!(
                "the database has no context key table {}: apply the migrations of context \
                 contract v3 first (`tenancy migrate apply`)",
                self.display
            );
        }
        let allowed: bool = sqlx::query_scalar(
            "SELECT has_table_privilege($1, 'SELECT, UPDATE') \
                AND has_function_privilege($2, 'EXECUTE')",
        )
        .bind(&self.table)
        .bind(&signature)
        .fetch_one(&mut *conn)
        .await
        .context("could not query the database")?;
        if !allowed {
            bail!(
                "role {user} may not manage context keys: connect as a superuser or a member of \
                 the owner role {} (the migration role), never as the app role",
                self.owner_role
            );
        }
        Ok(())
    }

    /// Every key, oldest first, each row locked when `lock` (for the rest of the transaction).
    async fn keys(&self, conn: &mut PgConnection, lock: bool) -> Result<Vec<KeyRow>> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT kid, {}, {} FROM {} ORDER BY created_at, kid{}",
            utc("created_at"),
            utc("retired_at"),
            self.table,
            if lock { " FOR UPDATE" } else { "" }
        )))
        .fetch_all(&mut *conn)
        .await
        .with_context(|| format!("could not read {}", self.display))?;
        rows.iter()
            .map(|row| {
                Ok(KeyRow {
                    kid: row.try_get(0)?,
                    created_at: row.try_get(1)?,
                    retired_at: row.try_get(2)?,
                })
            })
            .collect()
    }
}

/// `column` (timestamptz) as RFC 3339 text in UTC, microseconds included.
fn utc(column: &str) -> String {
    format!("to_char({column} AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"')")
}

/// One row of the key table, without the secret pads.
struct KeyRow {
    kid: String,
    created_at: String,
    retired_at: Option<String>,
}

impl KeyRow {
    fn active(&self) -> bool {
        self.retired_at.is_none()
    }
}

/// The ids of the active keys, comma-separated, or `none`.
fn active_list(keys: &[KeyRow]) -> String {
    let active: Vec<&str> = keys
        .iter()
        .filter(|k| k.active())
        .map(|k| k.kid.as_str())
        .collect();
    if active.is_empty() {
        "none".to_owned()
    } else {
        active.join(", ")
    }
}

/// Connects to the database of `args` (the flag, else DATABASE_URL).
async fn connect(args: &KeyArgs) -> Result<PgConnection> {
    let url = crate::database_url(args.database_url.as_deref())?;
    PgConnection::connect(&url)
        .await
        .context("could not connect to the database")
}

/// The SQLSTATE of a database error.
fn sqlstate(error: &sqlx::Error) -> Option<String> {
    error
        .as_database_error()
        .and_then(|e| e.code())
        .map(|code| code.into_owned())
}

/// Refuses to send a secret when the server would certainly write it into its log: every
/// statement is logged (`log_statement = all` or `log_min_duration_statement = 0`) with its
/// parameters (`log_parameter_max_length` not 0, which only a superuser may change).
async fn refuse_logged_parameters(conn: &mut PgConnection) -> Result<()> {
    let row = sqlx::query(
        "SELECT current_user::text, \
                bool_or(name = 'log_parameter_max_length' AND setting <> '0') \
            AND bool_or((name = 'log_statement' AND setting = 'all') \
                        OR (name = 'log_min_duration_statement' AND setting = '0')) \
           FROM pg_catalog.pg_settings \
          WHERE name IN ('log_parameter_max_length', 'log_statement', \
                         'log_min_duration_statement')",
    )
    .fetch_one(&mut *conn)
    .await
    .context("could not read the server's logging settings")?;
    let user: String = row.try_get(0)?;
    let logged: Option<bool> = row.try_get(1)?;
    if logged == Some(true) {
        bail!(
            "the server logs every statement with its parameters and role {user} may not turn \
             that off, so the secret would end up in the server log; install keys as a \
             superuser, or have one run `ALTER ROLE {user} SET log_parameter_max_length = 0`"
        );
    }
    Ok(())
}

/// `install` and `rotate`: one transaction that checks, installs the key and (for a generated
/// key) writes the key file before it commits.
async fn install(args: &KeyArgs, kid: &str, source: SecretSource, rotate: bool) -> Result<String> {
    let table = KeyTable::new(args)?;
    let (secret, out) = match &source {
        SecretSource::File(path) => (read_secret_file(path, kid)?, None),
        SecretSource::Generate(out) => {
            check_out_path(out)?;
            (generate_secret()?, Some(out.as_path()))
        }
    };
    let mut conn = connect(args).await?;
    // The secret is a bind parameter: keep it out of the server log even where statements are
    // logged with their parameters. Only a superuser may change the setting; for anyone else
    // this fails harmlessly (outside a transaction) and docs/keys.md says what to check.
    let _ = sqlx::query("SET log_parameter_max_length = 0")
        .execute(&mut conn)
        .await;
    refuse_logged_parameters(&mut conn).await?;
    let mut tx = conn
        .begin()
        .await
        .context("could not begin a transaction")?;
    table.preflight(&mut tx).await?;
    let before = table.keys(&mut tx, true).await?;
    if let Some(existing) = before.iter().find(|k| k.kid == kid) {
        bail!(
            "key {kid} already exists (created {}); choose another key id",
            existing.created_at
        );
    }
    let installed = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {}($1, $2)",
        table.installer
    )))
    .bind(kid)
    .bind(secret.0.as_slice())
    .execute(&mut *tx)
    .await;
    if let Err(error) = installed {
        if sqlstate(&error).as_deref() == Some("23505") {
            bail!("key {kid} already exists; choose another key id");
        }
        return Err(error).context(format!("could not install key {kid}"));
    }
    if let Some(out) = out {
        write_key_file(out, kid, &secret)?;
    }
    if let Err(error) = tx.commit().await {
        if let Some(out) = out {
            let _ = std::fs::remove_file(out);
        }
        return Err(error).context(format!("could not commit the installation of key {kid}"));
    }
    let _ = conn.close().await;

    let previous: Vec<&str> = before
        .iter()
        .filter(|k| k.active())
        .map(|k| k.kid.as_str())
        .collect();
    let mut active = previous.clone();
    active.push(kid);
    let mut message = format!(
        "installed key {kid} in {} (active keys: {})\n",
        table.display,
        active.join(", ")
    );
    if let Some(out) = out {
        let _ = writeln!(
            message,
            "wrote the secret to {} (mode 0600); it is not printed",
            out.display()
        );
    }
    if rotate {
        let file = out.map(|p| p.display().to_string()).unwrap_or_default();
        let _ = writeln!(message, "next steps:");
        let _ = writeln!(
            message,
            "  1. deploy every runtime instance with TENANCY_CONTEXT_KEY_FILE={file} (tokens \
             under the old and the new key are both accepted meanwhile)"
        );
        if previous.is_empty() {
            let _ = writeln!(
                message,
                "  2. there was no active key before, so there is nothing to retire"
            );
        } else {
            for (i, old) in previous.iter().enumerate() {
                let _ = writeln!(
                    message,
                    "  {}. when no instance signs with {old} any more: tenancy key retire {old}",
                    i + 2
                );
            }
        }
    } else if let Some(out) = out {
        let _ = writeln!(
            message,
            "give it to the runtime as TENANCY_CONTEXT_KEY_FILE={}",
            out.display()
        );
    }
    Ok(message)
}

/// `tenancy key retire KID [--force]`.
async fn retire(args: &KeyArgs, kid: &str, force: bool) -> Result<String> {
    let table = KeyTable::new(args)?;
    let mut conn = connect(args).await?;
    let mut tx = conn
        .begin()
        .await
        .context("could not begin a transaction")?;
    table.preflight(&mut tx).await?;
    // Every row locked: two concurrent retirements cannot both see the other key active.
    let keys = table.keys(&mut tx, true).await?;
    let Some(key) = keys.iter().find(|k| k.kid == kid) else {
        bail!(
            "there is no key {kid} in {} (see `tenancy key list`)",
            table.display
        );
    };
    if let Some(retired_at) = &key.retired_at {
        return Ok(format!(
            "nothing to do: key {kid} was retired at {retired_at}\n"
        ));
    }
    let others = keys.iter().filter(|k| k.active() && k.kid != kid).count();
    if others == 0 && !force {
        bail!(
            "key {kid} is the last active key and without one the database refuses every \
             request; rotate first (`tenancy key rotate`) or pass --force"
        );
    }
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "UPDATE {} SET retired_at = now() WHERE kid = $1",
        table.table
    )))
    .bind(kid)
    .execute(&mut *tx)
    .await
    .with_context(|| format!("could not retire key {kid}"))?;
    tx.commit()
        .await
        .with_context(|| format!("could not commit the retirement of key {kid}"))?;
    let _ = conn.close().await;
    let remaining: Vec<&str> = keys
        .iter()
        .filter(|k| k.active() && k.kid != kid)
        .map(|k| k.kid.as_str())
        .collect();
    Ok(if remaining.is_empty() {
        format!(
            "retired key {kid}; no active key is left: the database refuses every request until \
             one is installed (`tenancy key install`)\n"
        )
    } else {
        format!(
            "retired key {kid}: tokens signed with it are refused from now on (active keys: {})\n",
            remaining.join(", ")
        )
    })
}

/// `tenancy key list [--format json]`.
async fn list(args: &KeyArgs, format: ListFormat) -> Result<String> {
    let table = KeyTable::new(args)?;
    let mut conn = connect(args).await?;
    let mut tx = conn
        .begin()
        .await
        .context("could not begin a transaction")?;
    table.preflight(&mut tx).await?;
    let keys = table.keys(&mut tx, false).await?;
    tx.rollback()
        .await
        .context("could not end the transaction")?;
    let _ = conn.close().await;
    if !keys.iter().any(KeyRow::active) {
        eprintln!(
            "warning: {} has no active key: the database refuses every request until one is \
             installed (`tenancy key install`)",
            table.display
        );
    }
    Ok(match format {
        ListFormat::Json => {
            let keys: Vec<serde_json::Value> = keys
                .iter()
                .map(|k| {
                    serde_json::json!({
                        "kid": k.kid,
                        "active": k.active(),
                        "created_at": k.created_at,
                        "retired_at": k.retired_at,
                    })
                })
                .collect();
            format!("{}\n", serde_json::json!({ "keys": keys }))
        }
        ListFormat::Text => {
            let width = keys
                .iter()
                .map(|k| k.kid.len())
                .chain([3])
                .max()
                .unwrap_or(3);
            let mut out = format!(
                "{:width$}  {:7}  {:27}  RETIRED_AT\n",
                "KID", "STATUS", "CREATED_AT"
            );
            for k in &keys {
                let _ = writeln!(
                    out,
                    "{:width$}  {:7}  {:27}  {}",
                    k.kid,
                    if k.active() { "active" } else { "retired" },
                    k.created_at,
                    k.retired_at.as_deref().unwrap_or("-")
                );
            }
            let _ = writeln!(out, "active keys: {}", active_list(&keys));
            out
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kids_follow_the_table_constraint() {
        assert!(check_kid("k-2024_01").is_ok());
        assert!(check_kid(&"a".repeat(64)).is_ok());
        for bad in ["", "a b", "a:b", "ä", &"a".repeat(65)] {
            assert!(check_kid(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn hex_round_trips() {
        let bytes: Vec<u8> = (0..=255).collect();
        assert_eq!(unhex(&hex(&bytes)), Some(bytes));
        assert_eq!(unhex("ABcd"), Some(vec![0xab, 0xcd]));
        assert_eq!(unhex("abc"), None);
        assert_eq!(unhex("zz"), None);
        assert_eq!(unhex("+1"), None);
    }

    #[test]
    fn secret_debug_hides_the_bytes() {
        assert_eq!(format!("{:?}", Secret(vec![7; 32])), "Secret(32 bytes)");
    }
}
