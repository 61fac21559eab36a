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

mod backfill;
mod contract;
mod expand;
mod validate;

use backfill::backfill;
use contract::{
    contract_checks, contract_indexes, contract_keys, contract_security, contract_validate_checks,
    contract_validate_keys,
};
use expand::expand;
use validate::validate;

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
            out.push_str(&super::statistics::statistics_section(
                table,
                &super::ident::ident(&table.name),
            ));
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

// ---- 2. backfill -------------------------------------------------------------------------

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

// ---- 4. contract -------------------------------------------------------------------------

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
