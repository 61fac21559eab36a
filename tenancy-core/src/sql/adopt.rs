//! Adopting existing single-tenant tables: the phased migration that replaces `CREATE TABLE`
//! for every table that `adopts` a pre-tenancy one.
//!
//! [`adoption_migrations`] emits, after `0001_tenancy_core.sql`:
//!
//! | file | phase | runs | locks on the adopted tables |
//! |------|-------|------|-----------------------------|
//! | `0002_adopt_expand.sql` | expand | one transaction | brief `ACCESS EXCLUSIVE` (metadata only) |
//! | `0003_adopt_backfill.sql` | backfill | **outside** a transaction: `CALL` of a procedure that counts the rows to adopt, then commits every batch; `VACUUM (ANALYZE)` | `ACCESS SHARE` for the count, row locks on one batch at a time, `SHARE UPDATE EXCLUSIVE` for the vacuum |
//! | `0004_adopt_validate.sql` | validate | one transaction, reads only (records success) | `ACCESS SHARE` |
//! | `0005_adopt_contract_checks.sql` | contract | one transaction | brief `ACCESS EXCLUSIVE` (`CHECK ... NOT VALID`) |
//! | `0006_adopt_contract_validate_checks.sql` | contract | one transaction | `SHARE UPDATE EXCLUSIVE` (reads and writes go on) |
//! | `0007_adopt_contract_indexes.sql` | contract | **outside** a transaction: `CREATE INDEX CONCURRENTLY` | none that blocks reads or writes |
//! | `0008_adopt_contract_keys.sql` | contract | one transaction | brief `ACCESS EXCLUSIVE` (metadata only: NOT NULL proven by the checks, keys attached to the built indexes, foreign keys `NOT VALID`) |
//! | `0009_adopt_contract_validate_keys.sql` | contract | one transaction | `SHARE UPDATE EXCLUSIVE` / `ROW SHARE` |
//! | `0010_adopt_contract_security.sql` | contract | one transaction | brief `ACCESS EXCLUSIVE` |
//!
//! then `0011_tables.sql` when the model also declares tables that adopt nothing.
//!
//! Every transactional file leaves the database exactly as it was when it fails. The two
//! files marked [`NO_TRANSACTION_MARKER`] cannot be one transaction (a batch must commit to
//! release its locks; `CREATE INDEX CONCURRENTLY` refuses to run in a transaction); they
//! are re-runnable instead: the backfill only touches rows whose scope is still NULL, and
//! the index file drops (concurrently) whatever a failed run left before building again.
//! A runner executes such a file statement by statement (see [`no_transaction_statements`]).

use std::path::PathBuf;

use super::ident::{fit_identifier, ident, ident_list, literal};
use super::tables::{self, all_foreign_keys, all_indexes, EffectiveForeignKey};
use super::{file_header, section_heading, security, GeneratedFile, Target};
use crate::model::{
    Adoption, Column, IndexMethod, Model, SqlType, Table, TableKind, PROJECT_COLUMN, TENANT_COLUMN,
};

/// The first line after the header of a migration that must run outside a transaction
/// block, one statement at a time.
pub const NO_TRANSACTION_MARKER: &str = "-- tenancy: no-transaction";

/// Rows per backfill batch (each batch is its own transaction).
pub const BACKFILL_BATCH_ROWS: u32 = 5000;

/// The bookkeeping table (in the helper schema) of an adoption: one row per adopted table.
const BOOKKEEPING_TABLE: &str = "adoption";

/// The procedure (in the helper schema) that backfills the scope columns in batches.
const BACKFILL_PROCEDURE: &str = "adoption_backfill";

/// Seconds a DDL statement of the adoption waits for a lock before it gives up (and its
/// transaction rolls back): a migration stuck behind a long transaction would otherwise
/// queue every other statement on the table behind itself.
const LOCK_TIMEOUT: &str = "5s";

/// True when `contents` is a migration that must run outside a transaction block.
pub fn runs_outside_transaction(contents: &str) -> bool {
    contents
        .lines()
        .any(|line| line.trim() == NO_TRANSACTION_MARKER)
}

/// The statements of a [`NO_TRANSACTION_MARKER`] file, in order, each to be sent on its own.
/// Such files hold only simple statements (no `$$` bodies, no `;` inside a statement), each
/// ending with `;` at the end of a line; comment lines are dropped.
pub fn no_transaction_statements(contents: &str) -> Vec<String> {
    let mut statements = Vec::new();
    let mut current = String::new();
    for line in contents.lines() {
        let trimmed = line.trim();
        if trimmed.is_empty() || trimmed.starts_with("--") {
            continue;
        }
        if !current.is_empty() {
            current.push('\n');
        }
        current.push_str(line);
        if trimmed.ends_with(';') {
            statements.push(std::mem::take(&mut current));
        }
    }
    if !current.trim().is_empty() {
        statements.push(current);
    }
    statements
}

/// The migration files of a model with adopted tables (see the module documentation).
pub(super) fn adoption_migrations(
    model: &Model,
    adoption: &Adoption,
    target: Target,
) -> Vec<GeneratedFile> {
    let plan = Plan::new(model, adoption);
    let mut files = vec![
        ("0002_adopt_expand.sql", expand(&plan, target)),
        ("0003_adopt_backfill.sql", backfill(&plan, target)),
        ("0004_adopt_validate.sql", validate(&plan, target)),
        (
            "0005_adopt_contract_checks.sql",
            contract_checks(&plan, target),
        ),
        (
            "0006_adopt_contract_validate_checks.sql",
            contract_validate_checks(&plan, target),
        ),
        (
            "0007_adopt_contract_indexes.sql",
            contract_indexes(&plan, target),
        ),
        ("0008_adopt_contract_keys.sql", contract_keys(&plan, target)),
        (
            "0009_adopt_contract_validate_keys.sql",
            contract_validate_keys(&plan, target),
        ),
        (
            "0010_adopt_contract_security.sql",
            contract_security(&plan, target),
        ),
    ];
    let new_tables: Vec<&Table> = model
        .tables_in_dependency_order()
        .into_iter()
        .filter(|t| matches!(t.kind, TableKind::Scoped | TableKind::Global))
        .filter(|t| model.adopted(&t.name).is_none())
        .collect();
    if !new_tables.is_empty() {
        let mut out = file_header(
            "Tables declared in the policies that adopt no existing table, created after the adoption.",
            target,
            &model.settings.helper_schema,
        );
        for table in new_tables {
            out.push_str(&tables::table_section(model, table, target));
            out.push_str(&security::security_section(model, table, target));
        }
        files.push(("0011_tables.sql", out));
    }
    files
        .into_iter()
        .map(|(name, contents)| GeneratedFile {
            path: PathBuf::from("migrations").join(name),
            contents,
        })
        .collect()
}

/// Everything the phases share: the adopted tables in dependency order with their names.
struct Plan<'m> {
    model: &'m Model,
    adoption: &'m Adoption,
    /// Adopted tables, parents before children.
    tables: Vec<AdoptedPlan<'m>>,
    /// `<helper_schema>.adoption`, quoted.
    bookkeeping: String,
    /// `<helper_schema>.adoption_backfill`, quoted.
    procedure: String,
}

/// One adopted table.
struct AdoptedPlan<'m> {
    table: &'m Table,
    /// The existing table's name before the expand phase renames it.
    legacy: &'m str,
    /// `public.<table>`, quoted.
    qualified: String,
    /// The single key column the backfill walks.
    key: &'m Column,
    /// Declared columns that are NOT NULL in the model.
    required: Vec<&'m Column>,
    /// The CHECK constraint that proves NOT NULL before `SET NOT NULL`.
    check_name: String,
    /// Primary key and unique keys: (constraint name, columns, name of the index built first).
    keys: Vec<KeyPlan>,
    /// Secondary indexes: (final name, index, name of the index built first).
    indexes: Vec<IndexPlan>,
    /// Foreign keys as created, with their constraint names and definitions.
    foreign_keys: Vec<(String, String, EffectiveForeignKey)>,
}

/// A primary or unique key of an adopted table.
struct KeyPlan {
    constraint: String,
    primary: bool,
    columns: Vec<String>,
    build_name: String,
}

/// A secondary index of an adopted table.
struct IndexPlan {
    name: String,
    columns: Vec<String>,
    method: IndexMethod,
    note: Option<&'static str>,
    build_name: String,
}

/// The name an index is built under before the keys step gives it its final name (the
/// existing table may hold an index or constraint with the final name until then).
fn build_name(final_name: &str) -> String {
    fit_identifier(&format!("{final_name}_adopt"))
}

impl<'m> Plan<'m> {
    fn new(model: &'m Model, adoption: &'m Adoption) -> Plan<'m> {
        let schema = ident(&model.settings.helper_schema).into_owned();
        let tables = model
            .tables_in_dependency_order()
            .into_iter()
            .filter_map(|table| {
                let adopted = model.adopted(&table.name)?;
                let key_name = table.primary_key.first()?;
                let key = table.columns.iter().find(|c| &c.name == key_name)?;
                Some(AdoptedPlan::new(model, table, &adopted.legacy_table, key))
            })
            .collect();
        Plan {
            model,
            adoption,
            tables,
            bookkeeping: format!("{schema}.{}", ident(BOOKKEEPING_TABLE)),
            procedure: format!("{schema}.{}", ident(BACKFILL_PROCEDURE)),
        }
    }

    /// `ARRAY['public.a'::regclass, ...]`: the adopted tables, for catalog queries.
    fn regclass_array(&self) -> String {
        let items: Vec<String> = self
            .tables
            .iter()
            .map(|t| format!("{}::regclass", literal(&t.qualified)))
            .collect();
        format!("ARRAY[{}]", items.join(", "))
    }

    fn header(&self, title: &str, target: Target) -> String {
        file_header(title, target, &self.model.settings.helper_schema)
    }
}

impl<'m> AdoptedPlan<'m> {
    fn new(
        model: &'m Model,
        table: &'m Table,
        legacy: &'m str,
        key: &'m Column,
    ) -> AdoptedPlan<'m> {
        // `constraints` lists the primary key, then the unique keys, then the foreign keys,
        // in the same order as `effective_unique_keys` and `all_foreign_keys`.
        let constraints = tables::constraints(model, table);
        let unique_keys = table.effective_unique_keys();
        let foreign_keys = all_foreign_keys(model, table);
        let mut keys = Vec::new();
        let mut rest = constraints.into_iter();
        if let Some(pk) = rest.next() {
            keys.push(KeyPlan {
                build_name: build_name(&pk.name),
                constraint: pk.name,
                primary: true,
                columns: table.effective_primary_key(),
            });
        }
        for columns in unique_keys {
            if let Some(constraint) = rest.next() {
                keys.push(KeyPlan {
                    build_name: build_name(&constraint.name),
                    constraint: constraint.name,
                    primary: false,
                    columns,
                });
            }
        }
        let foreign_keys = rest
            .zip(foreign_keys)
            .map(|(c, fk)| (c.name, c.definition, fk))
            .collect();
        let indexes = all_indexes(model, table)
            .into_iter()
            .map(|index| IndexPlan {
                build_name: build_name(&index.name),
                name: index.name,
                columns: index.columns,
                method: index.method,
                note: index.note,
            })
            .collect();
        AdoptedPlan {
            table,
            legacy,
            qualified: format!("public.{}", ident(&table.name)),
            key,
            required: table.columns.iter().filter(|c| !c.nullable).collect(),
            check_name: fit_identifier(&format!("{}_adopt_not_null", table.name)),
            keys,
            indexes,
            foreign_keys,
        }
    }

    fn name(&self) -> &str {
        &self.table.name
    }

    /// The columns the NOT NULL check covers: the scope columns and the required ones.
    fn not_null_columns(&self) -> Vec<String> {
        let mut out = vec![TENANT_COLUMN.to_owned(), PROJECT_COLUMN.to_owned()];
        out.extend(self.required.iter().map(|c| c.name.clone()));
        out
    }
}

/// What `format_type()` prints for a DSL type (to compare with the existing columns).
fn catalog_type_name(ty: SqlType, helper_schema: &str) -> String {
    match ty {
        SqlType::Timestamptz => "timestamp with time zone".to_owned(),
        other => other.sql_name(helper_schema),
    }
}

/// `SET LOCAL lock_timeout`, for the transactional files.
fn lock_timeout() -> String {
    format!(
        "\n-- A statement that cannot get its lock within {LOCK_TIMEOUT} fails (and this file rolls back)\n\
         -- instead of queueing every other statement on the table behind it; run it again.\n\
         SET LOCAL lock_timeout = {};\n",
        literal(LOCK_TIMEOUT)
    )
}

/// A `DO` block that stops unless the validate phase succeeded.
fn require_validated(plan: &Plan<'_>) -> String {
    format!(
        "\nDO $$\n\
         BEGIN\n\
         \x20 IF NOT EXISTS (SELECT 1 FROM {bookkeeping})\n\
         \x20    OR EXISTS (SELECT 1 FROM {bookkeeping} WHERE validated_at IS NULL) THEN\n\
         \x20   RAISE EXCEPTION 'adoption stopped: the validate phase (0004_adopt_validate.sql) has not succeeded';\n\
         \x20 END IF;\n\
         END\n\
         $$;\n",
        bookkeeping = plan.bookkeeping
    )
}

/// `LOCK TABLE` of every adopted table (under `name_of`), children before parents.
///
/// An application INSERT locks its table, then the referenced one (the foreign key check);
/// a migration that took the parent first and then waited for the child would deadlock
/// with it (PostgreSQL then kills one of the two after `deadlock_timeout`). Taking every
/// lock up front, children first, makes the application wait instead.
fn lock_adopted_tables(plan: &Plan<'_>, name_of: impl Fn(&AdoptedPlan<'_>) -> String) -> String {
    let tables: Vec<String> = plan
        .tables
        .iter()
        .rev()
        .map(|t| format!("public.{}", ident(&name_of(t))))
        .collect();
    format!(
        "\n-- Every lock up front, children before parents (the order of an application INSERT and\n\
         -- its foreign key check), so a concurrent writer waits instead of deadlocking.\n\
         LOCK TABLE {} IN ACCESS EXCLUSIVE MODE;\n",
        tables.join(", ")
    )
}

// ---- 1. expand ---------------------------------------------------------------------------

fn expand(plan: &Plan<'_>, target: Target) -> String {
    let model = plan.model;
    let schema = &model.settings.helper_schema;
    let mut out = plan.header(
        "Adoption, phase 1 of 4 (expand): the default tenant and project, nullable scope columns.",
        target,
    );
    out.push_str(
        "--\n\
         -- Runs in one transaction. Expects the existing tables in schema public and the tenancy\n\
         -- core (0001). Adds tenant_id/project_id without a default to existing rows (metadata only,\n\
         -- no rewrite); new rows get the default tenant and project from a transition DEFAULT\n\
         -- that the contract phase removes. Creates the backfill procedure that 0003 calls.\n\
         -- Run it as a role that bypasses row-level security (the tenancy core tables force it).\n",
    );
    out.push_str(&lock_timeout());

    // Checks first: nothing changes when the existing schema is not what the model says.
    out.push_str(&section_heading(
        "Checks: the existing tables are what the policies declare",
        Some(
            "Every adopted table exists (under its existing name), has the declared columns with\n\
             the declared types and no scope column yet, and no table outside the adoption\n\
             references it (its key is about to change).",
        ),
    ));
    let mut expected_rows = Vec::new();
    for t in &plan.tables {
        for column in &t.table.columns {
            expected_rows.push(format!(
                "({}, {}, {})",
                literal(t.legacy),
                literal(&column.name),
                literal(&catalog_type_name(column.ty, &ident(schema)))
            ));
        }
    }
    let tables_rows: Vec<String> = plan
        .tables
        .iter()
        .map(|t| format!("({}, {})", literal(t.legacy), literal(t.name())))
        .collect();
    out.push_str(&format!(
        "DO $$\n\
         DECLARE\n\
         \x20 problems text[];\n\
         BEGIN\n\
         \x20 SELECT pg_catalog.array_agg(problem ORDER BY problem) INTO problems\n\
         \x20 FROM (\n\
         \x20   SELECT pg_catalog.format('existing table public.%I not found', t.legacy_table) AS problem\n\
         \x20   FROM (VALUES {tables}) AS t(legacy_table, table_name)\n\
         \x20   WHERE pg_catalog.to_regclass(pg_catalog.format('public.%I', t.legacy_table)) IS NULL\n\
         \x20   UNION ALL\n\
         \x20   SELECT pg_catalog.format('public.%I already exists (the adopted table %I is renamed to it)',\n\
         \x20                            t.table_name, t.legacy_table)\n\
         \x20   FROM (VALUES {tables}) AS t(legacy_table, table_name)\n\
         \x20   WHERE t.table_name <> t.legacy_table\n\
         \x20     AND pg_catalog.to_regclass(pg_catalog.format('public.%I', t.table_name)) IS NOT NULL\n\
         \x20   UNION ALL\n\
         \x20   SELECT pg_catalog.format('%I.%I: expected %s, found %s', e.legacy_table, e.column_name,\n\
         \x20                            e.type_name, COALESCE(pg_catalog.format_type(a.atttypid, a.atttypmod), 'no such column'))\n\
         \x20   FROM (VALUES\n\
         \x20     {expected}\n\
         \x20   ) AS e(legacy_table, column_name, type_name)\n\
         \x20   LEFT JOIN pg_catalog.pg_attribute AS a\n\
         \x20     ON a.attrelid = pg_catalog.to_regclass(pg_catalog.format('public.%I', e.legacy_table))\n\
         \x20    AND a.attname = e.column_name AND a.attnum > 0 AND NOT a.attisdropped\n\
         \x20   WHERE pg_catalog.to_regclass(pg_catalog.format('public.%I', e.legacy_table)) IS NOT NULL\n\
         \x20     AND pg_catalog.format_type(a.atttypid, a.atttypmod) IS DISTINCT FROM e.type_name\n\
         \x20   UNION ALL\n\
         \x20   SELECT pg_catalog.format('%I already has a column %I', t.legacy_table, a.attname)\n\
         \x20   FROM (VALUES {tables}) AS t(legacy_table, table_name)\n\
         \x20   JOIN pg_catalog.pg_attribute AS a\n\
         \x20     ON a.attrelid = pg_catalog.to_regclass(pg_catalog.format('public.%I', t.legacy_table))\n\
         \x20    AND a.attname IN ({tenant}, {project}) AND NOT a.attisdropped\n\
         \x20   UNION ALL\n\
         \x20   SELECT pg_catalog.format('%s references the adopted table %s (foreign key %I): adopt it too or drop that key',\n\
         \x20                            c.conrelid::regclass, c.confrelid::regclass, c.conname)\n\
         \x20   FROM pg_catalog.pg_constraint AS c\n\
         \x20   JOIN (VALUES {tables}) AS t(legacy_table, table_name)\n\
         \x20     ON c.confrelid = pg_catalog.to_regclass(pg_catalog.format('public.%I', t.legacy_table))\n\
         \x20   WHERE c.contype = 'f'\n\
         \x20     AND c.conrelid NOT IN (\n\
         \x20       SELECT pg_catalog.to_regclass(pg_catalog.format('public.%I', o.legacy_table))\n\
         \x20       FROM (VALUES {tables}) AS o(legacy_table, table_name)\n\
         \x20       WHERE pg_catalog.to_regclass(pg_catalog.format('public.%I', o.legacy_table)) IS NOT NULL)\n\
         \x20 ) AS found;\n\
         \x20 IF problems IS NOT NULL THEN\n\
         \x20   RAISE EXCEPTION 'adoption stopped at expand: %', pg_catalog.array_to_string(problems, '; ')\n\
         \x20     USING HINT = 'nothing was changed; make the existing tables match the policies and run this migration again';\n\
         \x20 END IF;\n\
         END\n\
         $$;\n",
        tables = tables_rows.join(", "),
        expected = expected_rows.join(",\n      "),
        tenant = literal(TENANT_COLUMN),
        project = literal(PROJECT_COLUMN),
    ));

    out.push_str(&lock_adopted_tables(plan, |t| t.legacy.to_owned()));

    let renames: Vec<&AdoptedPlan<'_>> = plan
        .tables
        .iter()
        .filter(|t| t.legacy != t.name())
        .collect();
    if !renames.is_empty() {
        out.push_str(&section_heading(
            "Renames: existing tables take the names of the tables that adopt them",
            None,
        ));
        for t in renames {
            out.push_str(&format!(
                "ALTER TABLE public.{} RENAME TO {};\n",
                ident(t.legacy),
                ident(t.name())
            ));
        }
    }

    // The default tenant and project, and the bookkeeping table.
    out.push_str(&section_heading(
        &format!(
            "The default tenant {} and its project {}",
            literal(&plan.adoption.tenant),
            literal(&plan.adoption.project)
        ),
        Some(
            "Every existing row goes there (to be split into real tenants later, see\n\
             docs/runbook.md). The bookkeeping table records, per adopted table, where its rows\n\
             go, how many rows the backfill found without a scope and how many it filled.",
        ),
    ));
    let owner = ident(&model.settings.owner_role);
    out.push_str(&format!(
        "CREATE TABLE {bookkeeping} (\n\
         \x20 table_name      text PRIMARY KEY,\n\
         \x20 legacy_table    text NOT NULL,\n\
         \x20 tenant_id       uuid NOT NULL,\n\
         \x20 project_id      uuid NOT NULL,\n\
         \x20 rows_before     bigint,\n\
         \x20 rows_backfilled bigint NOT NULL DEFAULT 0,\n\
         \x20 expanded_at     timestamptz NOT NULL DEFAULT now(),\n\
         \x20 validated_at    timestamptz,\n\
         \x20 adopted_at      timestamptz\n\
         );\n\
         ALTER TABLE {bookkeeping} OWNER TO {owner};\n\
         REVOKE ALL ON TABLE {bookkeeping} FROM PUBLIC;\n",
        bookkeeping = plan.bookkeeping,
    ));
    let (tenants, projects) = (
        model.core_table(TableKind::Tenants),
        model.core_table(TableKind::Projects),
    );
    if let (Some(tenants), Some(projects)) = (tenants, projects) {
        let required_text = |table: &Table| -> Vec<String> {
            table
                .columns
                .iter()
                .filter(|c| !c.nullable && c.default.is_none() && c.ty == SqlType::Text)
                .map(|c| c.name.clone())
                .collect()
        };
        let tenant_columns = required_text(tenants);
        let project_columns = required_text(projects);
        let tenant_insert = if tenant_columns.is_empty() {
            "DEFAULT VALUES".to_owned()
        } else {
            format!(
                "({}) VALUES ({})",
                ident_list(&tenant_columns),
                vec![literal(&plan.adoption.tenant); tenant_columns.len()].join(", ")
            )
        };
        let mut project_cols = vec![TENANT_COLUMN.to_owned()];
        project_cols.extend(project_columns.iter().cloned());
        let mut project_values = vec!["tenant.id".to_owned()];
        project_values.extend(
            project_columns
                .iter()
                .map(|_| literal(&plan.adoption.project)),
        );
        let adopted_rows: Vec<String> = plan
            .tables
            .iter()
            .map(|t| format!("({}, {})", literal(t.name()), literal(t.legacy)))
            .collect();
        out.push_str(&format!(
            "WITH tenant AS (\n\
             \x20 INSERT INTO public.{tenants} {tenant_insert}\n\
             \x20 RETURNING id\n\
             ), project AS (\n\
             \x20 INSERT INTO public.{projects} ({project_cols})\n\
             \x20 SELECT {project_values} FROM tenant\n\
             \x20 RETURNING tenant_id, id\n\
             )\n\
             INSERT INTO {bookkeeping} (table_name, legacy_table, tenant_id, project_id)\n\
             SELECT adopted.table_name, adopted.legacy_table, project.tenant_id, project.id\n\
             FROM project\n\
             CROSS JOIN (VALUES {adopted}) AS adopted(table_name, legacy_table);\n",
            tenants = ident(&tenants.name),
            projects = ident(&projects.name),
            project_cols = ident_list(&project_cols),
            project_values = project_values.join(", "),
            bookkeeping = plan.bookkeeping,
            adopted = adopted_rows.join(", "),
        ));
    }

    for t in &plan.tables {
        out.push_str(&section_heading(
            &format!("{} (adopts the existing table {})", t.name(), t.legacy),
            None,
        ));
        out.push_str(&format!(
            "ALTER TABLE {q}\n\
             \x20 ADD COLUMN {tenant} uuid,\n\
             \x20 ADD COLUMN {project} uuid;\n",
            q = t.qualified,
            tenant = ident(TENANT_COLUMN),
            project = ident(PROJECT_COLUMN),
        ));
    }

    out.push_str(&section_heading(
        "Transition defaults: rows written during the migration go to the default scope",
        Some(
            "A constant default is metadata only (existing rows stay NULL until the backfill).\n\
             The contract phase drops these defaults: afterwards every row names its scope.",
        ),
    ));
    out.push_str(&format!(
        "DO $$\n\
         DECLARE\n\
         \x20 adopted record;\n\
         BEGIN\n\
         \x20 FOR adopted IN SELECT table_name, tenant_id, project_id FROM {bookkeeping} ORDER BY table_name LOOP\n\
         \x20   EXECUTE pg_catalog.format(\n\
         \x20     'ALTER TABLE public.%I ALTER COLUMN {tenant} SET DEFAULT %L, ALTER COLUMN {project} SET DEFAULT %L',\n\
         \x20     adopted.table_name, adopted.tenant_id, adopted.project_id);\n\
         \x20 END LOOP;\n\
         END\n\
         $$;\n",
        bookkeeping = plan.bookkeeping,
        tenant = ident(TENANT_COLUMN),
        project = ident(PROJECT_COLUMN),
    ));

    out.push_str(&backfill_procedure(plan));
    out
}

/// `CREATE PROCEDURE <schema>.adoption_backfill(batch_size)`: one loop per table, walking
/// the existing key in order and committing every batch.
fn backfill_procedure(plan: &Plan<'_>) -> String {
    let schema = &plan.model.settings.helper_schema;
    let mut out = section_heading(
        &format!("The backfill procedure {}", plan.procedure),
        Some(
            "Called by 0003_adopt_backfill.sql. Per table, the first run counts the rows without a\n\
             scope (rows_before: the rows that existed at expand, since rows written later get the\n\
             transition default; counted without blocking writes). It then walks the table in\n\
             primary key order, BATCH_SIZE rows per transaction (it commits after every batch, so\n\
             no lock outlives a batch), and fills tenant_id/project_id where both are still NULL:\n\
             a run that fails half-way is simply run again. Counts the rows it fills in the\n\
             bookkeeping table, in the same transaction as each batch. No SET clause: a procedure\n\
             with one cannot COMMIT, so every name is schema-qualified instead. Dropped by the\n\
             contract phase.",
        ),
    );
    let mut declarations = String::new();
    let mut body = String::new();
    for (n, t) in plan.tables.iter().enumerate() {
        let key = ident(&t.key.name);
        let key_type = t.key.ty.sql_name(&ident(schema));
        declarations.push_str(&format!(
            "\x20 keys_{n} {key_type}[];\n\x20 last_key_{n} {key_type};\n"
        ));
        body.push_str(&format!(
            "\n\x20 -- {name}\n\
             \x20 UPDATE {bookkeeping}\n\
             \x20 SET rows_before = (SELECT pg_catalog.count(*) FROM {q} WHERE {tenant} IS NULL AND {project} IS NULL)\n\
             \x20 WHERE table_name = {name_lit} AND rows_before IS NULL;\n\
             \x20 COMMIT;\n\
             \x20 SELECT tenant_id, project_id INTO scope_tenant, scope_project\n\
             \x20 FROM {bookkeeping} WHERE table_name = {name_lit};\n\
             \x20 LOOP\n\
             \x20   IF last_key_{n} IS NULL THEN\n\
             \x20     keys_{n} := ARRAY(SELECT {key} FROM {q} ORDER BY {key} LIMIT batch_size);\n\
             \x20   ELSE\n\
             \x20     keys_{n} := ARRAY(SELECT {key} FROM {q} WHERE {key} > last_key_{n} ORDER BY {key} LIMIT batch_size);\n\
             \x20   END IF;\n\
             \x20   EXIT WHEN pg_catalog.cardinality(keys_{n}) = 0;\n\
             \x20   UPDATE {q}\n\
             \x20   SET {tenant} = scope_tenant, {project} = scope_project\n\
             \x20   WHERE {key} = ANY (keys_{n}) AND {tenant} IS NULL AND {project} IS NULL;\n\
             \x20   GET DIAGNOSTICS filled = ROW_COUNT;\n\
             \x20   UPDATE {bookkeeping} SET rows_backfilled = rows_backfilled + filled\n\
             \x20   WHERE table_name = {name_lit};\n\
             \x20   last_key_{n} := keys_{n}[pg_catalog.cardinality(keys_{n})];\n\
             \x20   COMMIT;\n\
             \x20 END LOOP;\n",
            name = t.name(),
            name_lit = literal(t.name()),
            q = t.qualified,
            bookkeeping = plan.bookkeeping,
            tenant = ident(TENANT_COLUMN),
            project = ident(PROJECT_COLUMN),
        ));
    }
    out.push_str(&format!(
        "CREATE PROCEDURE {procedure}(batch_size integer)\n\
         \x20 LANGUAGE plpgsql\n\
         AS $$\n\
         DECLARE\n\
         \x20 scope_tenant uuid;\n\
         \x20 scope_project uuid;\n\
         \x20 filled bigint;\n\
         {declarations}\
         BEGIN\n\
         \x20 IF batch_size IS NULL OR batch_size < 1 THEN\n\
         \x20   RAISE EXCEPTION 'batch_size must be at least 1';\n\
         \x20 END IF;\n\
         {body}\
         END\n\
         $$;\n\
         REVOKE ALL ON PROCEDURE {procedure}(integer) FROM PUBLIC;\n",
        procedure = plan.procedure,
    ));
    out
}

// ---- 2. backfill -------------------------------------------------------------------------

fn backfill(plan: &Plan<'_>, target: Target) -> String {
    let mut out = plan.header(
        "Adoption, phase 2 of 4 (backfill): existing rows get the default tenant and project.",
        target,
    );
    out.push_str(&format!(
        "{NO_TRANSACTION_MARKER}\n\
         --\n\
         -- Runs OUTSIDE a transaction block, one statement at a time: the procedure commits\n\
         -- after every batch of {BACKFILL_BATCH_ROWS} rows, so no statement holds locks on a big table for\n\
         -- long. Re-runnable: only rows whose scope is still NULL are touched, and each batch\n\
         -- counts what it filled in the same transaction.\n\
         CALL {}({BACKFILL_BATCH_ROWS});\n\
         \n\
         -- The backfill left one dead row version per row. VACUUM (which reads and writes go on\n\
         -- through) reclaims them and ANALYZE gives the planner statistics on the new columns;\n\
         -- otherwise autovacuum starts on the big tables now, and the next DDL's lock request\n\
         -- would queue the application's statements behind it until PostgreSQL cancels it\n\
         -- (deadlock_timeout, 1 s by default).\n",
        plan.procedure
    ));
    for t in &plan.tables {
        out.push_str(&format!("VACUUM (ANALYZE) {};\n", t.qualified));
    }
    out
}

// ---- 3. validate -------------------------------------------------------------------------

/// The SQL expression counting the rows of `t` whose foreign key `fk` matches no parent row
/// (MATCH SIMPLE: a row with a NULL referencing column is not checked).
fn orphan_count_sql(t: &AdoptedPlan<'_>, fk: &EffectiveForeignKey) -> String {
    let not_null: Vec<String> = fk
        .local
        .iter()
        .map(|c| format!("child.{} IS NOT NULL", ident(c)))
        .collect();
    let matches: Vec<String> = fk
        .local
        .iter()
        .zip(&fk.remote)
        .map(|(l, r)| format!("parent.{} = child.{}", ident(r), ident(l)))
        .collect();
    format!(
        "SELECT pg_catalog.count(*) FROM {q} AS child\n\
         \x20   WHERE {not_null}\n\
         \x20     AND NOT EXISTS (SELECT 1 FROM public.{parent} AS parent WHERE {matches})",
        q = t.qualified,
        not_null = not_null.join(" AND "),
        parent = ident(&fk.parent),
        matches = matches.join(" AND "),
    )
}

fn validate(plan: &Plan<'_>, target: Target) -> String {
    let mut out = plan.header(
        "Adoption, phase 3 of 4 (validate): nothing is lost, nothing is left without a scope.",
        target,
    );
    out.push_str(
        "--\n\
         -- Runs in one transaction and changes nothing unless every check passes (it then records\n\
         -- the time in the bookkeeping table; the contract phase requires it). Per table: the rows\n\
         -- the backfill found without a scope were all filled, no row lacks tenant_id/project_id, no\n\
         -- required column holds NULL, no foreign key of the policies points nowhere (in the same\n\
         -- tenant and project) and no key of the policies is duplicated. Otherwise it stops with\n\
         -- one message naming each table and count.\n",
    );
    let mut body = String::new();
    for t in &plan.tables {
        let name_lit = literal(t.name());
        let mut null_filters = vec![format!(
            "pg_catalog.count(*) FILTER (WHERE {} IS NULL OR {} IS NULL)",
            ident(TENANT_COLUMN),
            ident(PROJECT_COLUMN)
        )];
        let mut null_labels = vec![format!("NULL {TENANT_COLUMN} or {PROJECT_COLUMN}")];
        for c in &t.required {
            null_filters.push(format!(
                "pg_catalog.count(*) FILTER (WHERE {} IS NULL)",
                ident(&c.name)
            ));
            null_labels.push(format!(
                "NULL {}, which the policies declare NOT NULL",
                c.name
            ));
        }
        body.push_str(&format!(
            "\n\x20 -- {name}\n\
             \x20 SELECT rows_before, rows_backfilled INTO before, backfilled\n\
             \x20 FROM {bookkeeping} WHERE table_name = {name_lit};\n\
             \x20 SELECT pg_catalog.count(*), ARRAY[\n\
             \x20     {filters}\n\
             \x20   ]\n\
             \x20 INTO total, nulls\n\
             \x20 FROM {q};\n\
             \x20 RAISE NOTICE '%: % row(s) before the backfill, % backfilled, % now', {name_lit}, before, backfilled, total;\n\
             \x20 IF before IS NULL THEN\n\
             \x20   problems := problems || pg_catalog.format('%s: the backfill (0003_adopt_backfill.sql) has not run', {name_lit});\n\
             \x20 ELSIF backfilled <> before THEN\n\
             \x20   problems := problems || pg_catalog.format('%s: %s row(s) before the backfill but %s backfilled', {name_lit}, before, backfilled);\n\
             \x20 END IF;\n\
             \x20 labels := ARRAY[{labels}];\n\
             \x20 FOR i IN 1 .. pg_catalog.cardinality(nulls) LOOP\n\
             \x20   IF nulls[i] > 0 THEN\n\
             \x20     problems := problems || pg_catalog.format('%s: %s row(s) with %s', {name_lit}, nulls[i], labels[i]);\n\
             \x20   END IF;\n\
             \x20 END LOOP;\n",
            name = t.name(),
            bookkeeping = plan.bookkeeping,
            filters = null_filters.join(",\n      "),
            q = t.qualified,
            labels = null_labels
                .iter()
                .map(|l| literal(l))
                .collect::<Vec<_>>()
                .join(", "),
        ));
        for (_, _, fk) in &t.foreign_keys {
            body.push_str(&format!(
                "\x20 n := ({});\n\
                 \x20 IF n > 0 THEN\n\
                 \x20   problems := problems || pg_catalog.format('%s: %s row(s) whose %s match no row of %s in the same tenant and project (orphans)', {name_lit}, n, {cols}, {parent});\n\
                 \x20 END IF;\n",
                orphan_count_sql(t, fk),
                cols = literal(&fk.declared_columns.join(", ")),
                parent = literal(&fk.parent),
            ));
        }
        for key in &t.keys {
            let not_null: Vec<String> = key
                .columns
                .iter()
                .map(|c| format!("{} IS NOT NULL", ident(c)))
                .collect();
            body.push_str(&format!(
                "\x20 n := (SELECT pg_catalog.count(*) FROM (\n\
                 \x20   SELECT 1 FROM {q} WHERE {not_null}\n\
                 \x20   GROUP BY {cols} HAVING pg_catalog.count(*) > 1) AS duplicated);\n\
                 \x20 IF n > 0 THEN\n\
                 \x20   problems := problems || pg_catalog.format('%s: %s duplicated value(s) of the key (%s)', {name_lit}, n, {cols_lit});\n\
                 \x20 END IF;\n",
                q = t.qualified,
                not_null = not_null.join(" AND "),
                cols = ident_list(&key.columns),
                cols_lit = literal(&key.columns.join(", ")),
            ));
        }
    }
    out.push_str(&format!(
        "\nDO $$\n\
         DECLARE\n\
         \x20 problems text[] := '{{}}';\n\
         \x20 before bigint;\n\
         \x20 backfilled bigint;\n\
         \x20 total bigint;\n\
         \x20 nulls bigint[];\n\
         \x20 labels text[];\n\
         \x20 n bigint;\n\
         BEGIN\n\
         \x20 IF NOT EXISTS (SELECT 1 FROM {bookkeeping}) THEN\n\
         \x20   RAISE EXCEPTION 'adoption stopped at validate: the expand phase (0002_adopt_expand.sql) has not run';\n\
         \x20 END IF;\n\
         {body}\n\
         \x20 IF pg_catalog.cardinality(problems) > 0 THEN\n\
         \x20   RAISE EXCEPTION 'adoption stopped at validate: %', pg_catalog.array_to_string(problems, '; ')\n\
         \x20     USING HINT = 'nothing was changed; fix these rows, run the backfill again if scope columns are NULL, then this migration';\n\
         \x20 END IF;\n\
         \x20 UPDATE {bookkeeping} SET validated_at = pg_catalog.now();\n\
         END\n\
         $$;\n",
        bookkeeping = plan.bookkeeping,
    ));
    out
}

// ---- 4. contract -------------------------------------------------------------------------

fn contract_checks(plan: &Plan<'_>, target: Target) -> String {
    let mut out = plan.header(
        "Adoption, phase 4 of 4 (contract), step 1: NOT NULL as CHECK constraints, not yet validated.",
        target,
    );
    out.push_str(
        "--\n\
         -- Runs in one transaction. Adding a CHECK ... NOT VALID is metadata only: it applies to\n\
         -- new rows at once, and the next file validates it without blocking reads or writes.\n\
         -- SET NOT NULL then uses the validated check instead of scanning under an exclusive lock.\n",
    );
    out.push_str(&lock_timeout());
    out.push_str(&require_validated(plan));
    out.push_str(&lock_adopted_tables(plan, |t| t.name().to_owned()));
    for t in &plan.tables {
        let conditions: Vec<String> = t
            .not_null_columns()
            .iter()
            .map(|c| format!("{} IS NOT NULL", ident(c)))
            .collect();
        out.push_str(&format!(
            "\nALTER TABLE {q} ADD CONSTRAINT {check}\n\
             \x20 CHECK ({conditions}) NOT VALID;\n",
            q = t.qualified,
            check = ident(&t.check_name),
            conditions = conditions.join(" AND "),
        ));
    }
    out
}

fn contract_validate_checks(plan: &Plan<'_>, target: Target) -> String {
    let mut out = plan.header(
        "Adoption, phase 4 of 4 (contract), step 2: validate the NOT NULL checks.",
        target,
    );
    out.push_str(
        "--\n\
         -- Runs in one transaction. VALIDATE CONSTRAINT scans the table under SHARE UPDATE\n\
         -- EXCLUSIVE: reads and writes go on. A violation (a row written since the validate phase)\n\
         -- stops the migration with the table and the count.\n",
    );
    out.push_str(&lock_timeout());
    for t in &plan.tables {
        let conditions: Vec<String> = t
            .not_null_columns()
            .iter()
            .map(|c| format!("{} IS NULL", ident(c)))
            .collect();
        out.push_str(&format!(
            "\nDO $$\n\
             BEGIN\n\
             \x20 ALTER TABLE {q} VALIDATE CONSTRAINT {check};\n\
             EXCEPTION WHEN check_violation THEN\n\
             \x20 RAISE EXCEPTION 'adoption stopped at contract: %: % row(s) with NULL in a column that must be NOT NULL ({columns})',\n\
             \x20   {name}, (SELECT pg_catalog.count(*) FROM {q} WHERE {conditions});\n\
             END\n\
             $$;\n",
            q = t.qualified,
            check = ident(&t.check_name),
            name = literal(t.name()),
            columns = t.not_null_columns().join(", ").replace('\'', "''"),
            conditions = conditions.join(" OR "),
        ));
    }
    out
}

fn contract_indexes(plan: &Plan<'_>, target: Target) -> String {
    let mut out = plan.header(
        "Adoption, phase 4 of 4 (contract), step 3: build the composite keys and the indexes.",
        target,
    );
    out.push_str(&format!(
        "{NO_TRANSACTION_MARKER}\n\
         --\n\
         -- Runs OUTSIDE a transaction block, one statement at a time: CREATE INDEX CONCURRENTLY\n\
         -- builds without blocking reads or writes but cannot run in a transaction. Each index is\n\
         -- built under a temporary name (the existing keys may hold the final name); the next\n\
         -- file turns them into the keys and gives them their names. Re-runnable: an index that a\n\
         -- failed run left behind (possibly INVALID) is dropped, concurrently, and built again.\n"
    ));
    for t in &plan.tables {
        out.push_str(&format!("\n-- {}\n", t.name()));
        for key in &t.keys {
            out.push_str(&format!(
                "DROP INDEX CONCURRENTLY IF EXISTS public.{build};\n\
                 CREATE UNIQUE INDEX CONCURRENTLY {build} ON {q} ({cols});\n",
                build = ident(&key.build_name),
                q = t.qualified,
                cols = ident_list(&key.columns),
            ));
        }
        for index in &t.indexes {
            let using = match index.method {
                IndexMethod::BTree => "",
                IndexMethod::Gin => " USING gin",
            };
            if let Some(note) = index.note {
                out.push_str(&format!("-- {note}\n"));
            }
            out.push_str(&format!(
                "DROP INDEX CONCURRENTLY IF EXISTS public.{build};\n\
                 CREATE INDEX CONCURRENTLY {build} ON {q}{using} ({cols});\n",
                build = ident(&index.build_name),
                q = t.qualified,
                cols = ident_list(&index.columns),
            ));
        }
    }
    out
}

fn contract_keys(plan: &Plan<'_>, target: Target) -> String {
    let mut out = plan.header(
        "Adoption, phase 4 of 4 (contract), step 4: NOT NULL, composite keys, foreign keys NOT VALID.",
        target,
    );
    out.push_str(
        "--\n\
         -- Runs in one transaction, metadata only: SET NOT NULL is proven by the validated checks\n\
         -- (no scan), the keys take the indexes built by the previous file, the foreign keys are\n\
         -- added NOT VALID (the next file validates them). The existing keys, foreign keys and\n\
         -- indexes are dropped first (foreign keys before the keys they use); the adopted tables\n\
         -- end with exactly the keys and indexes of the policies. The transition defaults go.\n",
    );
    out.push_str(&lock_timeout());
    out.push_str(&require_validated(plan));
    let build_names: Vec<String> = plan
        .tables
        .iter()
        .flat_map(|t| {
            t.keys
                .iter()
                .map(|k| k.build_name.clone())
                .chain(t.indexes.iter().map(|i| i.build_name.clone()))
        })
        .collect();
    let build_literals: Vec<String> = build_names.iter().map(|n| literal(n)).collect();
    out.push_str(&format!(
        "\nDO $$\n\
         DECLARE\n\
         \x20 missing text;\n\
         BEGIN\n\
         \x20 SELECT pg_catalog.string_agg(wanted.name, ', ' ORDER BY wanted.name) INTO missing\n\
         \x20 FROM pg_catalog.unnest(ARRAY[{names}]) AS wanted(name)\n\
         \x20 LEFT JOIN pg_catalog.pg_class AS c\n\
         \x20   ON c.relname = wanted.name AND c.relnamespace = 'public'::regnamespace\n\
         \x20 LEFT JOIN pg_catalog.pg_index AS i ON i.indexrelid = c.oid\n\
         \x20 WHERE i.indisvalid IS NOT TRUE;\n\
         \x20 IF missing IS NOT NULL THEN\n\
         \x20   RAISE EXCEPTION 'adoption stopped at contract: indexes missing or invalid: % (run 0007_adopt_contract_indexes.sql again)', missing;\n\
         \x20 END IF;\n\
         END\n\
         $$;\n",
        names = build_literals.join(", "),
    ));

    out.push_str(&lock_adopted_tables(plan, |t| t.name().to_owned()));
    out.push_str(&section_heading(
        "NOT NULL (proven by the validated checks), the policies' defaults, no transition default",
        None,
    ));
    for t in &plan.tables {
        let mut actions: Vec<String> = t
            .not_null_columns()
            .iter()
            .map(|c| format!("ALTER COLUMN {} SET NOT NULL", ident(c)))
            .collect();
        for c in &t.table.columns {
            if c.nullable {
                actions.push(format!("ALTER COLUMN {} DROP NOT NULL", ident(&c.name)));
            }
        }
        out.push_str(&format!(
            "ALTER TABLE {}\n  {};\n",
            t.qualified,
            actions.join(",\n  ")
        ));
        let mut defaults = vec![
            format!("ALTER COLUMN {} DROP DEFAULT", ident(TENANT_COLUMN)),
            format!("ALTER COLUMN {} DROP DEFAULT", ident(PROJECT_COLUMN)),
        ];
        for c in &t.table.columns {
            defaults.push(match &c.default {
                Some(d) => format!("ALTER COLUMN {} SET DEFAULT {}", ident(&c.name), d.to_sql()),
                None => format!("ALTER COLUMN {} DROP DEFAULT", ident(&c.name)),
            });
        }
        defaults.push(format!("DROP CONSTRAINT {}", ident(&t.check_name)));
        out.push_str(&format!(
            "ALTER TABLE {}\n  {};\n",
            t.qualified,
            defaults.join(",\n  ")
        ));
    }

    out.push_str(&section_heading(
        "The existing foreign keys, keys and indexes go",
        Some(
            "Every foreign key of the adopted tables first (the expand phase checked that no other\n\
             table references them), then their primary and unique keys, then every other index\n\
             except the ones the previous file built.",
        ),
    ));
    out.push_str(&format!(
        "DO $$\n\
         DECLARE\n\
         \x20 adopted regclass[] := {tables};\n\
         \x20 item record;\n\
         BEGIN\n\
         \x20 FOR item IN\n\
         \x20   SELECT conrelid::regclass AS rel, conname FROM pg_catalog.pg_constraint\n\
         \x20   WHERE contype = 'f' AND conrelid = ANY (adopted)\n\
         \x20   ORDER BY conrelid::regclass::text, conname\n\
         \x20 LOOP\n\
         \x20   EXECUTE pg_catalog.format('ALTER TABLE %s DROP CONSTRAINT %I', item.rel, item.conname);\n\
         \x20 END LOOP;\n\
         \x20 FOR item IN\n\
         \x20   SELECT conrelid::regclass AS rel, conname FROM pg_catalog.pg_constraint\n\
         \x20   WHERE contype IN ('p', 'u') AND conrelid = ANY (adopted)\n\
         \x20   ORDER BY conrelid::regclass::text, conname\n\
         \x20 LOOP\n\
         \x20   EXECUTE pg_catalog.format('ALTER TABLE %s DROP CONSTRAINT %I', item.rel, item.conname);\n\
         \x20 END LOOP;\n\
         \x20 FOR item IN\n\
         \x20   SELECT i.indexrelid::regclass AS idx FROM pg_catalog.pg_index AS i\n\
         \x20   JOIN pg_catalog.pg_class AS c ON c.oid = i.indexrelid\n\
         \x20   WHERE i.indrelid = ANY (adopted) AND c.relname <> ALL (ARRAY[{names}])\n\
         \x20   ORDER BY 1\n\
         \x20 LOOP\n\
         \x20   EXECUTE pg_catalog.format('DROP INDEX %s', item.idx);\n\
         \x20 END LOOP;\n\
         END\n\
         $$;\n",
        tables = plan.regclass_array(),
        names = build_literals.join(", "),
    ));

    out.push_str(&section_heading(
        "The policies' keys and indexes, from the indexes built concurrently",
        None,
    ));
    for t in &plan.tables {
        for key in &t.keys {
            out.push_str(&format!(
                "ALTER TABLE {q} ADD CONSTRAINT {name} {kind} USING INDEX {build};\n",
                q = t.qualified,
                name = ident(&key.constraint),
                kind = if key.primary { "PRIMARY KEY" } else { "UNIQUE" },
                build = ident(&key.build_name),
            ));
        }
        for index in &t.indexes {
            out.push_str(&format!(
                "ALTER INDEX public.{} RENAME TO {};\n",
                ident(&index.build_name),
                ident(&index.name)
            ));
        }
    }

    out.push_str(&section_heading(
        "Foreign keys, composite with the scope columns, NOT VALID",
        Some("Checked for new rows at once; the next file validates the existing ones."),
    ));
    for t in &plan.tables {
        for (name, definition, _) in &t.foreign_keys {
            out.push_str(&format!(
                "ALTER TABLE {q} ADD CONSTRAINT {name} {definition} NOT VALID;\n",
                q = t.qualified,
                name = ident(name),
            ));
        }
    }
    out
}

fn contract_validate_keys(plan: &Plan<'_>, target: Target) -> String {
    let mut out = plan.header(
        "Adoption, phase 4 of 4 (contract), step 5: validate the foreign keys.",
        target,
    );
    out.push_str(
        "--\n\
         -- Runs in one transaction. VALIDATE CONSTRAINT takes SHARE UPDATE EXCLUSIVE on the table\n\
         -- and ROW SHARE on the referenced one: reads and writes go on. An orphan (written since\n\
         -- the validate phase) stops the migration with the table and the count.\n",
    );
    out.push_str(&lock_timeout());
    for t in &plan.tables {
        for (name, _, fk) in &t.foreign_keys {
            out.push_str(&format!(
                "\nDO $$\n\
                 BEGIN\n\
                 \x20 ALTER TABLE {q} VALIDATE CONSTRAINT {name};\n\
                 EXCEPTION WHEN foreign_key_violation THEN\n\
                 \x20 RAISE EXCEPTION 'adoption stopped at contract: %: % row(s) whose % match no row of % (orphans)',\n\
                 \x20   {table}, ({count}), {cols}, {parent};\n\
                 END\n\
                 $$;\n",
                q = t.qualified,
                name = ident(name),
                table = literal(t.name()),
                count = orphan_count_sql(t, fk),
                cols = literal(&fk.declared_columns.join(", ")),
                parent = literal(&fk.parent),
            ));
        }
    }
    out
}

fn contract_security(plan: &Plan<'_>, target: Target) -> String {
    let model = plan.model;
    let mut out = plan.header(
        "Adoption, phase 4 of 4 (contract), step 6: owner, row-level security enabled and forced, grants.",
        target,
    );
    out.push_str(
        "--\n\
         -- Runs in one transaction. From here on the adopted tables are exactly what\n\
         -- 0002_tables.sql would have created: owned by the owner role, row-level security\n\
         -- enabled and forced, the app role granted what the rules allow. The backfill\n\
         -- procedure is dropped; the bookkeeping table stays as the record of the adoption.\n",
    );
    out.push_str(&lock_timeout());
    out.push_str(&require_validated(plan));
    out.push_str(&lock_adopted_tables(plan, |t| t.name().to_owned()));
    for t in &plan.tables {
        out.push_str(&section_heading(
            &format!(
                "{} ({}, adopted from {})",
                t.name(),
                tables::kind_description(t.table.kind),
                t.legacy
            ),
            t.table.doc.as_deref(),
        ));
        out.push_str(&format!(
            "ALTER TABLE {} OWNER TO {};\n",
            t.qualified,
            ident(&model.settings.owner_role)
        ));
        out.push_str(&security::security_section(model, t.table, target));
    }
    out.push_str(&format!(
        "\nDROP PROCEDURE {procedure}(integer);\n\
         UPDATE {bookkeeping} SET adopted_at = pg_catalog.now();\n",
        procedure = plan.procedure,
        bookkeeping = plan.bookkeeping,
    ));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_transaction_files_split_into_their_statements() {
        let text = format!(
            "-- header\n{NO_TRANSACTION_MARKER}\n-- a comment\nDROP INDEX CONCURRENTLY IF EXISTS a;\n\
             CREATE INDEX CONCURRENTLY a\n  ON t (x);\n\nCALL p(1);\n"
        );
        assert!(runs_outside_transaction(&text));
        assert!(!runs_outside_transaction("-- tenancy\nSELECT 1;\n"));
        assert_eq!(
            no_transaction_statements(&text),
            vec![
                "DROP INDEX CONCURRENTLY IF EXISTS a;".to_owned(),
                "CREATE INDEX CONCURRENTLY a\n  ON t (x);".to_owned(),
                "CALL p(1);".to_owned(),
            ]
        );
    }
}
