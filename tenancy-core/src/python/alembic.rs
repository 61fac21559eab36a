//! The Alembic revision chain: one revision per generated SQL migration, holding the file's
//! text and SHA-256, applied as it is (docs/python.md, "Alembic").

use std::path::Path;

use super::text::py_str;
use super::HEADER;
use crate::sql::GeneratedFile;

/// `alembic.ini` (beside `pyproject.toml`).
pub(crate) fn alembic_ini(package: &str) -> String {
    format!(
        "{HEADER}\n\
         # The generated SQL migrations as an Alembic revision chain (docs/python.md):\n\
         #   TENANCY_MIGRATION_URL=postgresql+psycopg://owner@host/db alembic upgrade head\n\
         [alembic]\n\
         script_location = {package}:migrations\n\
         \n\
         [loggers]\n\
         keys = root\n\
         \n\
         [handlers]\n\
         keys = console\n\
         \n\
         [formatters]\n\
         keys = generic\n\
         \n\
         [logger_root]\n\
         level = WARNING\n\
         handlers = console\n\
         \n\
         [handler_console]\n\
         class = StreamHandler\n\
         args = (sys.stderr,)\n\
         formatter = generic\n\
         \n\
         [formatter_generic]\n\
         format = %%(levelname)s %%(name)s: %%(message)s\n"
    )
}

/// `<package>/migrations/__init__.py`: the helper every revision calls.
pub(crate) fn migrations_init() -> String {
    format!(
        "{HEADER}\n\
         \"\"\"The generated SQL migrations as an Alembic revision chain (`alembic.ini`, env.py,\n\
         versions/). Each revision holds one migration file of the tenancy generator, byte for\n\
         byte, and applies it as it is: the SQL files are the migrations, Alembic orders and\n\
         records them.\"\"\"\n\
         \n\
         from __future__ import annotations\n\
         \n\
         import hashlib\n\
         \n\
         \n\
         def apply_sql(sql: str, sha256: str) -> None:\n\
         \x20   \"\"\"Runs one generated migration in the current Alembic transaction, after checking\n\
         \x20   that its text is the one the generator wrote.\"\"\"\n\
         \x20   from alembic import op\n\
         \n\
         \x20   if hashlib.sha256(sql.encode()).hexdigest() != sha256:\n\
         \x20       raise RuntimeError(\"a generated migration was edited: regenerate the package\")\n\
         \x20   # One simple query with every statement of the file (no parameters, so psycopg\n\
         \x20   # sends it as it is, `%` and `:` included).\n\
         \x20   driver = op.get_bind().connection.driver_connection\n\
         \x20   if driver is None:\n\
         \x20       raise RuntimeError(\"the migration connection is closed\")\n\
         \x20   driver.cursor().execute(sql)\n"
    )
}

/// `<package>/migrations/env.py`.
pub(crate) fn env_py() -> String {
    format!(
        "{HEADER}\n\
         \"\"\"Alembic environment of the generated migrations: online only, one transaction per\n\
         revision, the URL from TENANCY_MIGRATION_URL (else `sqlalchemy.url` in alembic.ini).\n\
         Connect as the role that applies migrations (a superuser or a member of the owner role),\n\
         never as the app role.\"\"\"\n\
         \n\
         from __future__ import annotations\n\
         \n\
         import os\n\
         \n\
         import sqlalchemy as sa\n\
         from alembic import context\n\
         \n\
         \n\
         def run() -> None:\n\
         \x20   \"\"\"Applies the pending revisions.\"\"\"\n\
         \x20   if context.is_offline_mode():\n\
         \x20       raise RuntimeError(\"the generated migrations run online only (alembic upgrade head)\")\n\
         \x20   url = os.environ.get(\"TENANCY_MIGRATION_URL\") or context.config.get_main_option(\n\
         \x20       \"sqlalchemy.url\"\n\
         \x20   )\n\
         \x20   if not url:\n\
         \x20       raise RuntimeError(\"set TENANCY_MIGRATION_URL to the database to migrate\")\n\
         \x20   engine = sa.create_engine(url, poolclass=sa.pool.NullPool)\n\
         \x20   try:\n\
         \x20       with engine.connect() as connection:\n\
         \x20           context.configure(connection=connection, transaction_per_migration=True)\n\
         \x20           with context.begin_transaction():\n\
         \x20               context.run_migrations()\n\
         \x20   finally:\n\
         \x20       engine.dispose()\n\
         \n\
         \n\
         run()\n"
    )
}

/// The revision id of a migration file: its number (`0002` for `migrations/0002_tables.sql`).
fn revision_of(path: &Path) -> Option<(String, String)> {
    let stem = path.file_stem()?.to_str()?;
    let digits: String = stem.chars().take_while(char::is_ascii_digit).collect();
    if digits.is_empty() {
        return None;
    }
    Some((digits, stem.to_owned()))
}

/// A Python literal of `text`: a raw triple-quoted string when that spells it exactly, else an
/// escaped one.
fn text_literal(text: &str) -> String {
    let raw_ok = !text.contains("\"\"\"")
        && !text.ends_with('"')
        && !text.ends_with('\\')
        && !text.contains('\r');
    if raw_ok {
        format!("r\"\"\"{text}\"\"\"")
    } else {
        py_str(text)
    }
}

/// One revision module per `migrations/*.sql` file of `migrations` (in name order), chained by
/// their numbers: `(file name, contents)` below `<package>/migrations/versions/`.
pub(crate) fn revisions(package: &str, migrations: &[GeneratedFile]) -> Vec<(String, String)> {
    let mut sql: Vec<&GeneratedFile> = migrations
        .iter()
        .filter(|f| f.path.extension().is_some_and(|e| e == "sql"))
        .collect();
    sql.sort_by(|a, b| a.path.cmp(&b.path));
    let mut out = Vec::new();
    let mut previous: Option<String> = None;
    for file in sql {
        let Some((revision, stem)) = revision_of(&file.path) else {
            continue;
        };
        let name = file
            .path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let down = previous
            .as_deref()
            .map(py_str)
            .unwrap_or_else(|| "None".to_owned());
        let contents = format!(
            "{HEADER}\n\
             \"\"\"Alembic revision {revision}: `migrations/{name}` of the tenancy generator, applied as it is.\"\"\"\n\
             \n\
             from __future__ import annotations\n\
             \n\
             from {package}.migrations import apply_sql\n\
             \n\
             revision = {rev}\n\
             down_revision: str | None = {down}\n\
             branch_labels: str | None = None\n\
             depends_on: str | None = None\n\
             \n\
             #: SHA-256 of the migration file (as recorded in model.snapshot.json).\n\
             SHA256 = {sha}\n\
             \n\
             SQL = {sql}\n\
             \n\
             \n\
             def upgrade() -> None:\n\
             \x20   apply_sql(SQL, SHA256)\n\
             \n\
             \n\
             def downgrade() -> None:\n\
             \x20   raise NotImplementedError(\"generated migrations are history: they only go forward\")\n",
            rev = py_str(&revision),
            sha = py_str(&crate::snapshot::sha256_hex(file.contents.as_bytes())),
            sql = text_literal(&file.contents),
        );
        out.push((format!("m{stem}.py"), contents));
        previous = Some(revision);
    }
    out
}
