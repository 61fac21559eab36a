//! No planner statistics on the tables under row-level security.
//!
//! `pg_stats` hides the rows of a table with active row-level security from the app role, but
//! the planner still estimates leakproof operators (`uuid <=`, `text =`, ...) from the most
//! common values and histograms ANALYZE collected over *every* tenant's rows, and `EXPLAIN`
//! prints the estimate. A binary search over `tenant_id <= X` then recovers every tenant's
//! UUID, and the same works for project ids, keys, user ids and the histogram bounds of any
//! other column (docs/security.md, "Planner statistics"). So every column of every table whose
//! rows belong to a tenant gets statistics target 0: ANALYZE skips it, and the planner falls
//! back to its default selectivities, which depend on no value. `SET STATISTICS 0` does not
//! remove rows ANALYZE wrote before; [`clear_statistics`] does, for a database migrated before
//! (the core upgrade `core_statistics`) and for adopted tables.

use super::ident::{ident, literal};
use crate::model::{Model, Table, TableKind};

/// The columns of the audit table (`sql/core.rs`), in table order.
pub(super) const AUDIT_COLUMNS: [&str; 7] = [
    "tenant_id",
    "id",
    "project_id",
    "actor",
    "action",
    "subject",
    "at",
];

/// True for the tables whose rows belong to a tenant (every kind but global).
pub(super) fn tenant_owned(table: &Table) -> bool {
    table.kind != TableKind::Global
}

/// `ALTER TABLE <name> ALTER COLUMN c SET STATISTICS 0, ...;` for every column of `table`
/// (`name` as written in the migration, e.g. `ident(table)` or `schema.table`), with a comment
/// saying why; empty for a global table.
pub(super) fn statistics_section(table: &Table, name: &str) -> String {
    if !tenant_owned(table) {
        return String::new();
    }
    let columns: Vec<String> = table.all_columns().into_iter().map(|c| c.name).collect();
    let columns: Vec<&str> = columns.iter().map(String::as_str).collect();
    let mut out = format!(
        "\n-- No planner statistics: under row-level security the planner still estimates from\n\
         -- every tenant's values, and EXPLAIN would print them (docs/security.md).\n{}",
        set_statistics_zero(name, &columns)
    );
    if has_project_column(table) {
        out.push_str(&project_estimates(&[name.to_owned()]));
    }
    out
}

/// True for the tables with a `project_id` scope column (memberships and scoped tables).
pub(super) fn has_project_column(table: &Table) -> bool {
    matches!(table.kind, TableKind::Scoped | TableKind::Memberships)
}

/// A `DO` block that gives the scope columns of every table of `tables` two fixed,
/// data-independent estimates (PostgreSQL 18 and later, `pg_restore_attribute_stats`; nothing
/// before 18): `tenant_id` `n_distinct = 10` (a tenant holds a tenth of the table) and
/// `project_id` `n_distinct = 1` (a project selects nothing beyond its tenant). Without them
/// the planner takes `tenant_id = $1` as 0.5% of the table and `(tenant_id, project_id)` as
/// 0.0025%: on a table of fewer than about 40,000 rows one row, so a by-key statement or a
/// foreign-key check may use another index than the primary key and read the whole project,
/// and on any table a join may materialise a large tenant's rows as if they were few (the
/// bench's chunks+documents join took 6x as long). The guess errs towards large scopes, whose
/// plans (bitmap and hash) degrade gracefully when the scope is small. The rows hold no value
/// (no most-common values, no histogram), and ANALYZE keeps them because the columns'
/// statistics target is 0.
pub(super) fn project_estimates(tables: &[String]) -> String {
    if tables.is_empty() {
        return String::new();
    }
    let list: Vec<String> = tables
        .iter()
        .map(|t| format!("{}::regclass", literal(t)))
        .collect();
    format!(
        "\n-- Fixed estimates, no value: a tenant is a tenth of the table, a project all of its\n\
         -- tenant (PostgreSQL 18+; see sql/statistics.rs).\n\
         DO $project_estimates$\n\
         BEGIN\n\
         \x20 IF EXISTS (SELECT 1 FROM pg_catalog.pg_proc WHERE proname = 'pg_restore_attribute_stats'\n\
         \x20     AND pronamespace = 'pg_catalog'::regnamespace) THEN\n\
         \x20   PERFORM pg_catalog.pg_restore_attribute_stats('schemaname', n.nspname::text,\n\
         \x20     'relname', c.relname::text, 'attname', e.att, 'inherited', false,\n\
         \x20     'n_distinct', e.n_distinct)\n\
         \x20   FROM pg_catalog.pg_class AS c\n\
         \x20   JOIN pg_catalog.pg_namespace AS n ON n.oid = c.relnamespace\n\
         \x20   CROSS JOIN (VALUES ('tenant_id'::text, 10::real), ('project_id'::text, 1::real))\n\
         \x20     AS e(att, n_distinct)\n\
         \x20   WHERE c.oid = ANY (ARRAY[{}]);\n\
         \x20 END IF;\n\
         END\n\
         $project_estimates$;\n",
        list.join(", ")
    )
}

/// `ALTER TABLE name ALTER COLUMN c1 SET STATISTICS 0, ...;\n`.
pub(super) fn set_statistics_zero(name: &str, columns: &[&str]) -> String {
    let clauses: Vec<String> = columns
        .iter()
        .map(|c| format!("  ALTER COLUMN {} SET STATISTICS 0", ident(c)))
        .collect();
    format!("ALTER TABLE {name}\n{};\n", clauses.join(",\n"))
}

/// A `DO` block that gives every column of `tables` (names as written in the migration)
/// statistics target 0, also columns the model does not declare (an adopted table's legacy
/// columns), and removes the planner statistics ANALYZE already stored for them (`SET
/// STATISTICS 0` keeps those). PostgreSQL 18 and later: `pg_clear_attribute_stats` (needs
/// the MAINTAIN privilege, which the table owner and a superuser have). Before 18 only a
/// superuser can delete rows of `pg_statistic`; any other role gets a WARNING naming the
/// column, and `tenancy audit` reports the statistics that remain (TA034).
pub(super) fn clear_statistics(tables: &[String]) -> String {
    if tables.is_empty() {
        return String::new();
    }
    let list: Vec<String> = tables
        .iter()
        .map(|t| format!("{}::regclass", literal(t)))
        .collect();
    format!(
        "\n-- Remove the statistics ANALYZE stored before (SET STATISTICS 0 keeps them).\n\
         DO $clear_statistics$\n\
         DECLARE\n\
         \x20 col record;\n\
         \x20 can_clear boolean := pg_catalog.to_regprocedure(\n\
         \x20   'pg_catalog.pg_clear_attribute_stats(text,text,text,boolean)') IS NOT NULL;\n\
         \x20 is_super boolean := (SELECT rolsuper FROM pg_catalog.pg_roles WHERE rolname = current_user);\n\
         BEGIN\n\
         \x20 FOR col IN\n\
         \x20   SELECT c.oid AS rel, n.nspname::text AS nsp, c.relname::text AS rel_name,\n\
         \x20          a.attnum, a.attname::text AS att, a.attstattarget IS DISTINCT FROM 0 AS collects\n\
         \x20   FROM pg_catalog.pg_class AS c\n\
         \x20   JOIN pg_catalog.pg_namespace AS n ON n.oid = c.relnamespace\n\
         \x20   JOIN pg_catalog.pg_attribute AS a ON a.attrelid = c.oid\n\
         \x20   WHERE c.oid = ANY (ARRAY[{list}])\n\
         \x20     AND a.attnum > 0 AND NOT a.attisdropped\n\
         \x20   ORDER BY c.oid, a.attnum\n\
         \x20 LOOP\n\
         \x20   IF col.collects THEN\n\
         \x20     EXECUTE pg_catalog.format('ALTER TABLE %I.%I ALTER COLUMN %I SET STATISTICS 0',\n\
         \x20       col.nsp, col.rel_name, col.att);\n\
         \x20   END IF;\n\
         \x20   IF can_clear THEN\n\
         \x20     PERFORM pg_catalog.pg_clear_attribute_stats(col.nsp, col.rel_name, col.att, false);\n\
         \x20     PERFORM pg_catalog.pg_clear_attribute_stats(col.nsp, col.rel_name, col.att, true);\n\
         \x20   ELSIF is_super THEN\n\
         \x20     DELETE FROM pg_catalog.pg_statistic\n\
         \x20     WHERE starelid = col.rel AND staattnum = col.attnum;\n\
         \x20   ELSE\n\
         \x20     RAISE WARNING 'tenancy: planner statistics of %.%.% may remain: before PostgreSQL 18 only a superuser can remove them (DELETE FROM pg_catalog.pg_statistic WHERE starelid = %)',\n\
         \x20       col.nsp, col.rel_name, col.att, col.rel;\n\
         \x20   END IF;\n\
         \x20 END LOOP;\n\
         END\n\
         $clear_statistics$;\n",
        list = list.join(", ")
    )
}

/// The audit table's name as written in the migrations (`helper.audit_log`).
fn audit_table(model: &Model) -> String {
    format!(
        "{}.{}",
        ident(&model.settings.helper_schema),
        ident(super::core::AUDIT_TABLE)
    )
}

/// [`statistics_section`] for the audit table of the core migration.
pub(super) fn audit_statistics(model: &Model) -> String {
    format!(
        "\n-- No planner statistics on the audit table either (docs/security.md).\n{}",
        set_statistics_zero(&audit_table(model), &AUDIT_COLUMNS)
    )
}

/// The core upgrade to revision 5: statistics target 0 on every column of every tenant-owned
/// table of `model` and of the audit table, and the statistics ANALYZE stored before removed.
pub(super) fn statistics_upgrade(model: &Model) -> String {
    let audit = audit_table(model);
    let mut out = String::new();
    let mut names = Vec::new();
    let mut tables: Vec<&Table> = Vec::new();
    for kind in [
        TableKind::Tenants,
        TableKind::Projects,
        TableKind::Memberships,
    ] {
        if let Some(table) = model.core_table(kind) {
            tables.push(table);
        }
    }
    tables.extend(
        model
            .tables_in_dependency_order()
            .into_iter()
            .filter(|t| t.kind == TableKind::Scoped),
    );
    let mut project_tables = Vec::new();
    for table in tables {
        let name = ident(&table.name).into_owned();
        if has_project_column(table) {
            project_tables.push(name.clone());
        }
        out.push_str(&format!("\n-- {}\n", table.name));
        out.push_str(&set_statistics_zero(
            &name,
            &table
                .all_columns()
                .iter()
                .map(|c| c.name.as_str())
                .collect::<Vec<_>>(),
        ));
        names.push(name);
    }
    out.push_str(&format!("\n-- {audit}\n"));
    out.push_str(&set_statistics_zero(&audit, &AUDIT_COLUMNS));
    names.push(audit);
    out.push_str(&clear_statistics(&names));
    out.push_str(&project_estimates(&project_tables));
    out
}
