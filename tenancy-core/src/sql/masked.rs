//! Read rights per column: `allow select (id, title) to viewer` as a column grant plus a
//! masked view.
//!
//! Column privileges cannot differ by project role (the app role is one database role), so:
//!
//! - the app role is granted SELECT only on the columns every `select` rule reads; a masked
//!   column (one some rule does not list) is unreadable by any SQL the app role runs on the
//!   table itself: in a select list, a `WHERE`, an `ORDER BY`, a `RETURNING` or a whole-row
//!   reference (42501);
//! - the masked view `<helper>.<table>_masked` shows every column, each masked one as
//!   `CASE WHEN <a rule covering it admits the caller for this row> THEN col END`. It is owned
//!   by the reader role (`<app role>_reader`, NOLOGIN, no member), which holds SELECT on the
//!   whole table; the table's tenant boundary and select policies apply to the reader role
//!   too, with the caller's own context, so the view returns exactly the rows the app role
//!   may select, and a masked value only where the caller's role in that row's project (and
//!   the rule's condition) allows it;
//! - `security_barrier`, so no qualifier of the caller is evaluated before the masks.

use super::ident::{fit_identifier, ident, literal};
use super::{section_heading, Target};
use crate::model::{Command, Model, Rule, Table, ROLE_TYPE, TABLE_SCHEMA};

/// The reader role that owns the masked views: `<app role>_reader`.
pub fn reader_role(model: &Model) -> String {
    fit_identifier(&format!("{}_reader", model.settings.app_role))
}

/// The masked view's name (in the helper schema): `<table>_masked`.
pub fn masked_view_name(table: &Table) -> String {
    fit_identifier(&format!("{}_masked", table.name))
}

/// The roles the table's boundary and select policies apply to: the app role, and the reader
/// role when the table has masked columns.
pub(super) fn select_policy_roles(model: &Model, table: &Table) -> String {
    let app = ident(&model.settings.app_role).into_owned();
    if table.masked_columns().is_empty() {
        app
    } else {
        format!("{app}, {}", ident(&reader_role(model)))
    }
}

/// The columns the app role is granted SELECT on: all but the masked ones, in column order.
pub(crate) fn granted_select_columns(table: &Table) -> Vec<String> {
    let masked: Vec<String> = table.masked_columns().into_iter().map(|c| c.name).collect();
    table
        .all_columns()
        .into_iter()
        .map(|c| c.name)
        .filter(|c| !masked.contains(c))
        .collect()
}

/// The reader role (created if missing) and what it needs to read `table` through the masked
/// view: the helper schema, the role type, the context helpers, SELECT on the table. Emitted
/// before the policies that name it; empty without masked columns.
pub(super) fn reader_section(model: &Model, table: &Table) -> String {
    if table.masked_columns().is_empty() {
        return String::new();
    }
    let settings = &model.settings;
    let schema = ident(&settings.helper_schema);
    let reader_name = reader_role(model);
    let reader = ident(&reader_name);
    let base = format!("{}.{}", ident(TABLE_SCHEMA), ident(&table.name));
    let mut out = section_heading(
        &format!(
            "Reader role {reader_name} (masked columns of {})",
            table.name
        ),
        Some(&format!(
            "Owns the masked view of {}; NOLOGIN and without members, so no session acts as it.\n\
             It reads the whole table, under the same boundary and select policies as the app\n\
             role (they name both).",
            table.name
        )),
    );
    out.push_str(&format!(
        "DO $$\n\
         BEGIN\n\
         \x20 IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = {reader_lit}) THEN\n\
         \x20   CREATE ROLE {reader} NOLOGIN;\n\
         \x20 END IF;\n\
         END\n\
         $$;\n\
         ALTER ROLE {reader} NOLOGIN NOSUPERUSER NOBYPASSRLS NOINHERIT NOCREATEDB NOCREATEROLE NOREPLICATION;\n\
         GRANT USAGE ON SCHEMA {schema} TO {reader};\n\
         GRANT USAGE ON TYPE {schema}.{role_type} TO {reader};\n\
         GRANT EXECUTE ON FUNCTION {schema}.context_claims(), {schema}.current_tenant_id(),\n\
         \x20 {schema}.current_user_id(), {schema}.project_ids({schema}.{role_type}) TO {reader};\n\
         REVOKE ALL ON TABLE {base} FROM {reader};\n\
         GRANT SELECT ON TABLE {base} TO {reader};\n",
        reader_lit = literal(&reader_name),
        role_type = ident(ROLE_TYPE),
    ));
    out
}

/// The masked view of `table`, owned by the reader role; empty without masked columns. Safe
/// to emit again: the view is dropped first (its columns follow the table's).
pub(super) fn masked_view_section(model: &Model, table: &Table, target: Target) -> String {
    let masked = table.masked_columns();
    if masked.is_empty() {
        return String::new();
    }
    let settings = &model.settings;
    let schema = ident(&settings.helper_schema);
    let reader = ident(&reader_role(model)).into_owned();
    let app = ident(&settings.app_role);
    let base = format!("{}.{}", ident(TABLE_SCHEMA), ident(&table.name));
    let view = format!("{schema}.{}", ident(&masked_view_name(table)));
    let test = super::security::role_test(model, table);
    let rules = table.rules_for(Command::Select);
    let mut columns: Vec<String> = Vec::new();
    for column in table.all_columns() {
        let col = ident(&column.name);
        if !masked.iter().any(|m| m.name == column.name) {
            columns.push(col.into_owned());
            continue;
        }
        let covering: Vec<&Rule> = rules
            .iter()
            .copied()
            .filter(|r| table.rule_reads(r, &column.name))
            .collect();
        let admitted = super::security::rules_union(model, target, test, &covering)
            .unwrap_or_else(|| "false".to_owned());
        columns.push(format!(
            "CASE WHEN {admitted}\n         THEN {col} END AS {col}"
        ));
    }
    let who = masked
        .iter()
        .map(|c| c.name.as_str())
        .collect::<Vec<_>>()
        .join(", ");
    let mut out = section_heading(
        &format!("Masked columns of {}: {who}", table.name),
        Some(&format!(
            "The app role cannot select these columns on the table. The view {}.{} shows\n\
             them where a select rule covering the column admits the caller for that row (role\n\
             in the row's project, and the rule's condition), NULL elsewhere. Owned by the\n\
             reader role, to which the boundary and select policies apply as to the app role:\n\
             the view returns the rows the app role may select, never more.",
            settings.helper_schema,
            masked_view_name(table)
        )),
    );
    out.push_str(&format!(
        "DROP VIEW IF EXISTS {view};\n\
         CREATE VIEW {view}\n\
         \x20 WITH (security_barrier = true)\n\
         \x20 AS SELECT {}\n\
         \x20 FROM {base};\n\
         ALTER VIEW {view} OWNER TO {reader};\n\
         REVOKE ALL ON TABLE {view} FROM PUBLIC;\n\
         GRANT SELECT ON TABLE {view} TO {app};\n",
        columns.join(",\n    "),
    ));
    out
}

/// Removes the masked view of `table` (before its columns change, and when the last column
/// list goes).
pub(super) fn drop_masked_view(model: &Model, table: &Table) -> String {
    format!(
        "DROP VIEW IF EXISTS {}.{};\n",
        ident(&model.settings.helper_schema),
        ident(&masked_view_name(table))
    )
}
