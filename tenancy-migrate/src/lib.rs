//! tenancy-migrate: applies the generated migrations (`generated/migrations/NNNN_name.sql`)
//! and records each one, with its SHA-256 checksum, in a history table.
//!
//! - [`status`] lists every migration as applied, pending, modified (the file changed after
//!   it was applied) or missing (applied, but the file is gone).
//! - [`apply`] runs the pending migrations in order, each in its own transaction together
//!   with its history row: a migration is applied completely and recorded, or not at all.
//!   It refuses to start when an applied file was edited or deleted, or when a pending file
//!   is older than the last applied one.
//! - [`dry_run`] runs the pending migrations in one transaction, collects the plan (the
//!   statements of each file) and the row count of every table before and after, then rolls
//!   back: the database is left exactly as it was.
//!
//! The history lives in [`HISTORY_TABLE`], in its own schema [`HISTORY_SCHEMA`] that only
//! the migrating role can reach (PUBLIC, and so the application role, has no privilege on
//! it). [`apply`] and [`dry_run`] hold a session advisory lock ([`LOCK_KEY`]) for their whole
//! run, so two appliers of the same database never interleave: the second waits, then finds
//! nothing left to do.

mod files;

use std::fmt;
use std::path::PathBuf;
use std::time::Instant;

use chrono::{DateTime, Utc};
use sqlx::postgres::PgConnection;
use sqlx::{Connection, Row};
use tenancy_core::sql::{no_transaction_statements, runs_outside_transaction};

pub use files::{read_migrations, sha256_hex, split_statements, statement_summaries, Migration};

/// The schema of the history table (created by the first [`apply`]).
pub const HISTORY_SCHEMA: &str = "tenancy_meta";
/// The history table, qualified.
pub const HISTORY_TABLE: &str = "tenancy_meta.tenancy_migrations";
/// Key of the session advisory lock held while migrations run (`"tenancyM"` in ASCII).
pub const LOCK_KEY: i64 = 0x7465_6e61_6e63_794d;

/// SQLSTATE of "unsafe use of new value of enum type" (a value added in this transaction).
const UNSAFE_NEW_ENUM_VALUE: &str = "55P04";

/// Why migrations could not be read, checked or applied. Every message is one sentence.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum MigrateError {
    /// A file or directory could not be read.
    #[error("could not read {}: {source}", path.display())]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// A `.sql` file is not named `<digits>_<name>.sql` or is not UTF-8.
    #[error(
        "{} is not a migration: names look like 0003_add_documents_summary.sql (UTF-8 text)",
        file.display()
    )]
    BadFileName {
        /// The file.
        file: PathBuf,
    },
    /// Two files share a version.
    #[error("two migration files have version {version}; versions must be unique")]
    DuplicateVersion {
        /// The version.
        version: String,
    },
    /// An applied migration's file changed.
    #[error(
        "{file} was edited after it was applied (applied checksum {applied}, file now \
         {current}); applied migrations must never change, so restore the file and put the \
         change in a new migration"
    )]
    Modified {
        /// The file name.
        file: String,
        /// The checksum recorded when it was applied (first 12 hex digits).
        applied: String,
        /// The file's checksum now (first 12 hex digits).
        current: String,
    },
    /// An applied migration's file is gone.
    #[error(
        "{file} is recorded as applied but is missing from the migrations directory; restore it"
    )]
    Missing {
        /// The file name recorded in the history.
        file: String,
    },
    /// A pending migration sorts before the last applied one.
    #[error(
        "{file} is pending but sorts before the already applied {last_applied}; renumber it \
         after {last_applied}"
    )]
    OutOfOrder {
        /// The pending file.
        file: String,
        /// The last applied file.
        last_applied: String,
    },
    /// A migration failed; its transaction was rolled back.
    #[error("{file} failed and was rolled back, so nothing of it was applied: {message}")]
    Failed {
        /// The file.
        file: String,
        /// The server's error message (and a hint when there is one).
        message: String,
    },
    /// Any other database error (connecting, reading the history, locking).
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
}

/// Where a migration stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum State {
    /// Applied, and the file still has the applied checksum.
    Applied {
        /// When it was applied.
        applied_at: DateTime<Utc>,
        /// The role that applied it.
        applied_by: String,
        /// How long it ran.
        execution_ms: i64,
    },
    /// Not applied yet.
    Pending,
    /// Applied, but the file changed since.
    Modified {
        /// The checksum recorded when it was applied.
        applied_checksum: String,
    },
    /// Applied, but the file is gone.
    Missing,
}

/// One line of [`status`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusEntry {
    /// The version (`0003`).
    pub version: String,
    /// The file name (`0003_add_documents_summary.sql`).
    pub file: String,
    /// Where it stands.
    pub state: State,
}

/// The result of [`status`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Status {
    /// Every migration, known from the files or the history, by version.
    pub entries: Vec<StatusEntry>,
}

impl Status {
    /// Number of pending migrations.
    pub fn pending(&self) -> usize {
        self.entries
            .iter()
            .filter(|e| e.state == State::Pending)
            .count()
    }

    /// True when an applied migration was edited or deleted.
    pub fn has_problems(&self) -> bool {
        self.entries
            .iter()
            .any(|e| matches!(e.state, State::Modified { .. } | State::Missing))
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for entry in &self.entries {
            match &entry.state {
                State::Applied {
                    applied_at,
                    applied_by,
                    execution_ms,
                } => writeln!(
                    f,
                    "applied   {}  ({} by {applied_by}, {execution_ms} ms)",
                    entry.file,
                    applied_at.format("%Y-%m-%d %H:%M:%S UTC")
                )?,
                State::Pending => writeln!(f, "pending   {}", entry.file)?,
                State::Modified { .. } => {
                    writeln!(f, "MODIFIED  {}  (edited after it was applied)", entry.file)?
                }
                State::Missing => writeln!(f, "MISSING   {}  (applied, file deleted)", entry.file)?,
            }
        }
        let applied = self
            .entries
            .iter()
            .filter(|e| matches!(e.state, State::Applied { .. }))
            .count();
        write!(f, "{applied} applied, {} pending", self.pending())?;
        let problems = self.entries.len() - applied - self.pending();
        if problems > 0 {
            write!(f, ", {problems} edited or deleted after they were applied")?;
        }
        writeln!(f)
    }
}

/// One applied migration, as reported by [`apply`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Applied {
    /// The file name.
    pub file: String,
    /// How long it ran.
    pub execution_ms: i64,
}

/// Row counts of one table before and after a dry run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableCount {
    /// `schema.table`.
    pub table: String,
    /// Rows before (`None`: the table did not exist).
    pub before: Option<i64>,
    /// Rows after (`None`: the table was dropped).
    pub after: Option<i64>,
}

/// One file of a dry run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlannedFile {
    /// The file name.
    pub file: String,
    /// The first line of each statement.
    pub statements: Vec<String>,
    /// How long it ran inside the dry run.
    pub execution_ms: i64,
}

/// The result of [`dry_run`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DryRun {
    /// The pending files, in order, as they ran.
    pub files: Vec<PlannedFile>,
    /// Every table's rows before and after.
    pub counts: Vec<TableCount>,
}

impl fmt::Display for DryRun {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.files.is_empty() {
            writeln!(f, "dry run: nothing to apply")?;
        }
        for file in &self.files {
            writeln!(
                f,
                "would apply {} ({} statements, {} ms):",
                file.file,
                file.statements.len(),
                file.execution_ms
            )?;
            for statement in &file.statements {
                writeln!(f, "  {statement}")?;
            }
        }
        let show = |n: Option<i64>| n.map_or_else(|| "-".to_owned(), |n| n.to_string());
        let width = self.counts.iter().map(|c| c.table.len()).max().unwrap_or(5);
        writeln!(f, "row counts (before -> after):")?;
        for count in &self.counts {
            let mark = if count.before == count.after {
                ""
            } else {
                "  (changed)"
            };
            let line = format!(
                "  {:width$}  {:>10} -> {:<10}{mark}",
                count.table,
                show(count.before),
                show(count.after),
            );
            writeln!(f, "{}", line.trim_end())?;
        }
        writeln!(f, "rolled back: the database is unchanged")
    }
}

/// Connects to `url`.
pub async fn connect(url: &str) -> Result<PgConnection, MigrateError> {
    Ok(PgConnection::connect(url).await?)
}

/// One row of the history table.
struct HistoryRow {
    version: String,
    name: String,
    checksum: String,
    applied_at: DateTime<Utc>,
    applied_by: String,
    execution_ms: i64,
}

/// The history rows, by version; empty when the history table does not exist yet.
async fn read_history(conn: &mut PgConnection) -> Result<Vec<HistoryRow>, MigrateError> {
    let exists: bool = sqlx::query_scalar("SELECT pg_catalog.to_regclass($1) IS NOT NULL")
        .bind(HISTORY_TABLE)
        .fetch_one(&mut *conn)
        .await?;
    if !exists {
        return Ok(Vec::new());
    }
    let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT version, name, checksum, applied_at, applied_by, execution_ms \
         FROM {HISTORY_TABLE} ORDER BY version"
    )))
    .fetch_all(&mut *conn)
    .await?;
    rows.into_iter()
        .map(|row| {
            Ok(HistoryRow {
                version: row.try_get("version")?,
                name: row.try_get("name")?,
                checksum: row.try_get("checksum")?,
                applied_at: row.try_get("applied_at")?,
                applied_by: row.try_get("applied_by")?,
                execution_ms: row.try_get("execution_ms")?,
            })
        })
        .collect::<Result<_, sqlx::Error>>()
        .map_err(MigrateError::from)
}

/// Compares the files with the history.
fn compare(migrations: &[Migration], history: &[HistoryRow]) -> Status {
    let mut entries = Vec::new();
    for row in history {
        let file = format!("{}_{}.sql", row.version, row.name);
        let state = match migrations.iter().find(|m| m.version == row.version) {
            None => State::Missing,
            Some(m) if m.checksum != row.checksum || m.name != row.name => State::Modified {
                applied_checksum: row.checksum.clone(),
            },
            Some(_) => State::Applied {
                applied_at: row.applied_at,
                applied_by: row.applied_by.clone(),
                execution_ms: row.execution_ms,
            },
        };
        entries.push(StatusEntry {
            version: row.version.clone(),
            file,
            state,
        });
    }
    for migration in migrations {
        if !history.iter().any(|r| r.version == migration.version) {
            entries.push(StatusEntry {
                version: migration.version.clone(),
                file: migration.file_name(),
                state: State::Pending,
            });
        }
    }
    entries.sort_by(|a, b| a.version.cmp(&b.version));
    Status { entries }
}

/// Where each migration of `migrations` stands in the database (read-only: creates nothing).
pub async fn status(
    conn: &mut PgConnection,
    migrations: &[Migration],
) -> Result<Status, MigrateError> {
    let history = read_history(conn).await?;
    Ok(compare(migrations, &history))
}

/// The pending migrations, after refusing edited, deleted and out-of-order files.
fn pending<'m>(
    migrations: &'m [Migration],
    history: &[HistoryRow],
) -> Result<Vec<&'m Migration>, MigrateError> {
    let status = compare(migrations, history);
    for entry in &status.entries {
        match &entry.state {
            State::Modified { applied_checksum } => {
                let current = migrations
                    .iter()
                    .find(|m| m.version == entry.version)
                    .map(|m| m.checksum.as_str())
                    .unwrap_or_default();
                return Err(MigrateError::Modified {
                    file: entry.file.clone(),
                    applied: applied_checksum.chars().take(12).collect(),
                    current: current.chars().take(12).collect(),
                });
            }
            State::Missing => {
                return Err(MigrateError::Missing {
                    file: entry.file.clone(),
                })
            }
            State::Applied { .. } | State::Pending => {}
        }
    }
    let last_applied = history.iter().map(|r| r.version.as_str()).max();
    let pending: Vec<&Migration> = migrations
        .iter()
        .filter(|m| !history.iter().any(|r| r.version == m.version))
        .collect();
    if let (Some(last), Some(first)) = (last_applied, pending.first()) {
        if first.version.as_str() < last {
            let last_applied = history
                .iter()
                .find(|r| r.version == last)
                .map(|r| format!("{}_{}.sql", r.version, r.name))
                .unwrap_or_default();
            return Err(MigrateError::OutOfOrder {
                file: first.file_name(),
                last_applied,
            });
        }
    }
    Ok(pending)
}

/// Creates the history schema and table when missing (in the caller's transaction).
async fn ensure_history(conn: &mut PgConnection) -> Result<(), MigrateError> {
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
        "CREATE SCHEMA IF NOT EXISTS {HISTORY_SCHEMA};\n\
         REVOKE ALL ON SCHEMA {HISTORY_SCHEMA} FROM PUBLIC;\n\
         CREATE TABLE IF NOT EXISTS {HISTORY_TABLE} (\n\
         \x20 version      text PRIMARY KEY,\n\
         \x20 name         text NOT NULL,\n\
         \x20 checksum     text NOT NULL CHECK (checksum ~ '^[0-9a-f]{{64}}$'),\n\
         \x20 applied_at   timestamptz NOT NULL DEFAULT pg_catalog.now(),\n\
         \x20 applied_by   text NOT NULL DEFAULT session_user,\n\
         \x20 execution_ms bigint NOT NULL\n\
         );\n\
         REVOKE ALL ON TABLE {HISTORY_TABLE} FROM PUBLIC;\n"
    )))
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Runs `f` while holding the migration advisory lock of this database.
async fn locked<T>(
    conn: &mut PgConnection,
    work: impl AsyncFnOnce(&mut PgConnection) -> Result<T, MigrateError>,
) -> Result<T, MigrateError> {
    sqlx::query("SELECT pg_catalog.pg_advisory_lock($1)")
        .bind(LOCK_KEY)
        .execute(&mut *conn)
        .await?;
    let result = work(&mut *conn).await;
    let unlocked = sqlx::query("SELECT pg_catalog.pg_advisory_unlock($1)")
        .bind(LOCK_KEY)
        .execute(&mut *conn)
        .await;
    match (result, unlocked) {
        (Ok(value), Ok(_)) => Ok(value),
        (Err(err), _) => Err(err),
        (Ok(_), Err(err)) => Err(err.into()),
    }
}

/// The server's message of a failed statement, with PostgreSQL's detail and hint.
fn server_message(err: &sqlx::Error) -> String {
    match err {
        sqlx::Error::Database(db) => {
            let mut message = db.message().to_owned();
            if let Some(pg) = db.try_downcast_ref::<sqlx::postgres::PgDatabaseError>() {
                if let Some(detail) = pg.detail() {
                    message.push_str(&format!(" ({detail})"));
                }
            }
            message
        }
        other => other.to_string(),
    }
}

/// Whether the database is a Citus coordinator (the citus extension is installed).
async fn is_citus(conn: &mut PgConnection) -> Result<bool, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_extension WHERE extname = 'citus')",
    )
    .fetch_one(&mut *conn)
    .await
}

/// Runs a migration's text inside the open transaction: in one round trip, or on Citus one
/// statement per round trip, because Citus forwards the text of the whole query message to the
/// shards for some commands (`ALTER TABLE ... ADD CONSTRAINT` on a distributed table), which
/// the workers refuse when it holds several statements.
async fn run_in_transaction(
    conn: &mut PgConnection,
    sql: &str,
    citus: bool,
) -> Result<(), sqlx::Error> {
    if !citus {
        sqlx::raw_sql(sqlx::AssertSqlSafe(sql))
            .execute(conn)
            .await?;
        return Ok(());
    }
    for statement in split_statements(sql) {
        sqlx::raw_sql(sqlx::AssertSqlSafe(statement.as_str()))
            .execute(&mut *conn)
            .await?;
    }
    Ok(())
}

/// Applies every pending migration in order, each in its own transaction with its history
/// row, under the advisory lock. Returns what was applied (empty when up to date).
pub async fn apply(
    conn: &mut PgConnection,
    migrations: &[Migration],
) -> Result<Vec<Applied>, MigrateError> {
    locked(conn, async |conn: &mut PgConnection| {
        let mut tx = conn.begin().await?;
        ensure_history(&mut tx).await?;
        let citus = is_citus(&mut tx).await?;
        tx.commit().await?;
        let history = read_history(conn).await?;
        let mut applied = Vec::new();
        for migration in pending(migrations, &history)? {
            let started = Instant::now();
            if runs_outside_transaction(&migration.sql) {
                // CREATE INDEX CONCURRENTLY, VACUUM and procedures that COMMIT cannot run in a
                // transaction block: such files are written to be re-runnable, statement by
                // statement; the history row is recorded once every statement succeeded.
                for statement in no_transaction_statements(&migration.sql) {
                    if let Err(err) = sqlx::raw_sql(sqlx::AssertSqlSafe(statement.as_str()))
                        .execute(&mut *conn)
                        .await
                    {
                        return Err(MigrateError::Failed {
                            file: migration.file_name(),
                            message: server_message(&err),
                        });
                    }
                }
            }
            let mut tx = conn.begin().await?;
            let in_transaction = if runs_outside_transaction(&migration.sql) {
                ""
            } else {
                migration.sql.as_str()
            };
            if let Err(err) = run_in_transaction(&mut tx, in_transaction, citus).await {
                // Dropping the transaction rolls it back.
                drop(tx);
                return Err(MigrateError::Failed {
                    file: migration.file_name(),
                    message: server_message(&err),
                });
            }
            let execution_ms = i64::try_from(started.elapsed().as_millis()).unwrap_or(i64::MAX);
            sqlx::query(sqlx::AssertSqlSafe(format!(
                "INSERT INTO {HISTORY_TABLE} (version, name, checksum, execution_ms) \
                 VALUES ($1, $2, $3, $4)"
            )))
            .bind(&migration.version)
            .bind(&migration.name)
            .bind(&migration.checksum)
            .bind(execution_ms)
            .execute(&mut *tx)
            .await?;
            tx.commit().await.map_err(|err| MigrateError::Failed {
                file: migration.file_name(),
                message: server_message(&err),
            })?;
            applied.push(Applied {
                file: migration.file_name(),
                execution_ms,
            });
        }
        Ok(applied)
    })
    .await
}

/// Every ordinary and partitioned table outside the system schemas and the history schema.
async fn tables(conn: &mut PgConnection) -> Result<Vec<String>, MigrateError> {
    let names: Vec<String> = sqlx::query_scalar(
        "SELECT pg_catalog.format('%I.%I', n.nspname, c.relname) \
         FROM pg_catalog.pg_class AS c \
         JOIN pg_catalog.pg_namespace AS n ON n.oid = c.relnamespace \
         WHERE c.relkind IN ('r', 'p') AND NOT c.relispartition \
           AND n.nspname NOT IN ('pg_catalog', 'information_schema', $1) \
           AND n.nspname NOT LIKE 'pg\\_toast%' AND n.nspname NOT LIKE 'pg\\_temp%' \
         ORDER BY n.nspname, c.relname",
    )
    .bind(HISTORY_SCHEMA)
    .fetch_all(&mut *conn)
    .await?;
    Ok(names)
}

/// `(table, rows)` for every table, counted exactly.
async fn count_rows(conn: &mut PgConnection) -> Result<Vec<(String, i64)>, MigrateError> {
    let mut counts = Vec::new();
    for table in tables(conn).await? {
        let rows: i64 =
            sqlx::query_scalar(sqlx::AssertSqlSafe(format!("SELECT count(*) FROM {table}")))
                .fetch_one(&mut *conn)
                .await?;
        counts.push((table, rows));
    }
    Ok(counts)
}

/// Runs every pending migration in one transaction, records the plan and the row counts of
/// every table before and after, then rolls back. Refuses edited, deleted and out-of-order
/// files like [`apply`].
pub async fn dry_run(
    conn: &mut PgConnection,
    migrations: &[Migration],
) -> Result<DryRun, MigrateError> {
    locked(conn, async |conn: &mut PgConnection| {
        let history = read_history(conn).await?;
        let pending = pending(migrations, &history)?;
        let mut tx = conn.begin().await?;
        // Counts must see every row: with row_security off, a table whose policies would
        // filter rows for this role raises an error instead of returning a smaller count.
        sqlx::raw_sql("SET LOCAL row_security = off")
            .execute(&mut *tx)
            .await?;
        let before = count_rows(&mut tx).await?;
        let mut files = Vec::new();
        let mut added_enum_values_in: Option<String> = None;
        for migration in pending {
            if runs_outside_transaction(&migration.sql) {
                // Such a file cannot run inside the dry run's transaction; everything after
                // it may depend on it, so the dry run stops here and says so.
                files.push(PlannedFile {
                    file: migration.file_name(),
                    statements: vec![
                        "(not run: this file runs outside a transaction; the dry run stops here)"
                            .to_owned(),
                    ],
                    execution_ms: 0,
                });
                break;
            }
            let started = Instant::now();
            if let Err(err) = sqlx::raw_sql(sqlx::AssertSqlSafe(migration.sql.as_str()))
                .execute(&mut *tx)
                .await
            {
                let mut message = server_message(&err);
                let code = err.as_database_error().and_then(|e| e.code());
                if let (Some(UNSAFE_NEW_ENUM_VALUE), Some(earlier)) =
                    (code.as_deref(), &added_enum_values_in)
                {
                    message.push_str(&format!(
                        "; PostgreSQL cannot use an enum value in the transaction that added it, \
                         so a dry run cannot go past {earlier}: apply up to {earlier} first, \
                         then dry-run again"
                    ));
                }
                drop(tx);
                return Err(MigrateError::Failed {
                    file: migration.file_name(),
                    message,
                });
            }
            if migration.sql.contains("ADD VALUE") {
                added_enum_values_in = Some(migration.file_name());
            }
            files.push(PlannedFile {
                file: migration.file_name(),
                statements: statement_summaries(&migration.sql, 110),
                execution_ms: i64::try_from(started.elapsed().as_millis()).unwrap_or(i64::MAX),
            });
        }
        let after = count_rows(&mut tx).await?;
        tx.rollback().await?;

        let mut counts: Vec<TableCount> = before
            .iter()
            .map(|(table, rows)| TableCount {
                table: table.clone(),
                before: Some(*rows),
                after: after.iter().find(|(t, _)| t == table).map(|(_, n)| *n),
            })
            .collect();
        for (table, rows) in &after {
            if !before.iter().any(|(t, _)| t == table) {
                counts.push(TableCount {
                    table: table.clone(),
                    before: None,
                    after: Some(*rows),
                });
            }
        }
        counts.sort_by(|a, b| a.table.cmp(&b.table));
        Ok(DryRun { files, counts })
    })
    .await
}
