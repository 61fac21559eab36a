//! Per-tenant vector models: `vec vector(384)? per tenant`.
//!
//! A `per tenant` vector column is created as an unconstrained `vector`, so tenants whose
//! embedding models have different dimensions share the table. Each tenant's choice (model
//! name and dimension) is one row of `<helper_schema>.vector_settings`, keyed by tenant,
//! table and column; a tenant without a row uses the dimension written in the model. The
//! table has row-level security like every tenant-owned table: the app role reads its own
//! tenant's rows only and writes none (the settings change through the operator path,
//! `tenancy tenant set-vector-model`, which also clears the tenant's vectors of the old model).
//!
//! A BEFORE INSERT OR UPDATE trigger per table holds every vector to its tenant's dimension
//! (also when a row moves to another tenant), so a vector of another model cannot be written
//! by any path, the generated repositories' raw inserts included; the vector gateway checks
//! the same thing before any SQL runs and says so with a typed error.

use super::context::{context_call, ContextHelper};
use super::ident::{fit_identifier, ident, literal};
use super::Target;
use crate::model::{Column, Model, SqlType, Table, TABLE_SCHEMA};

/// The settings table's name, in the helper schema.
pub const SETTINGS_TABLE: &str = "vector_settings";

/// The first key of the transaction advisory lock per tenant (`'tenv'`; the second key is
/// `hashtext(tenant_id::text)`): the dimension trigger takes it shared, a change of the
/// tenant's model exclusive, so a write in flight finishes before the change clears the
/// tenant's vectors, and a write after it sees the new model. The runtime uses the same value.
pub const SETTINGS_LOCK_CLASS: i32 = 0x7465_6e76;

/// The `per tenant` vector columns of `table`, in column order.
pub(crate) fn per_tenant_columns(table: &Table) -> Vec<&Column> {
    table
        .columns
        .iter()
        .filter(|c| c.per_tenant && matches!(c.ty, SqlType::Vector(_)))
        .collect()
}

/// True when some table of `model` has a `per tenant` vector column.
pub fn uses_settings(model: &Model) -> bool {
    model
        .tables
        .iter()
        .any(|t| !per_tenant_columns(t).is_empty())
}

/// The settings table with its row-level security and grants (empty when the model has no
/// `per tenant` column). Emitted once, before the tables.
pub(super) fn settings_section(model: &Model, target: Target) -> String {
    if !uses_settings(model) {
        return String::new();
    }
    let schema = ident(&model.settings.helper_schema);
    let table = format!("{schema}.{}", ident(SETTINGS_TABLE));
    let tenants = model
        .core_table(crate::model::TableKind::Tenants)
        .map(|t| ident(&t.name))
        .unwrap_or_else(|| ident("tenants"));
    let owner = ident(&model.settings.owner_role);
    let app = ident(&model.settings.app_role);
    let tenant = context_call(
        target,
        &model.settings.helper_schema,
        ContextHelper::CurrentTenantId,
    );
    let mut out = super::section_heading(
        &format!("Vector settings {schema}.{SETTINGS_TABLE}"),
        Some(
            "Per tenant, the model (name and dimension) of each `per tenant` vector \
             column;\na tenant without a row uses the dimension the model declares. The app \
             role reads its own\ntenant's rows; the operator path writes them (`tenancy tenant \
             set-vector-model`).",
        ),
    );
    out.push_str(&format!(
        "CREATE TABLE {table} (\n\
         \x20 tenant_id   uuid NOT NULL REFERENCES {tenants} (id) ON DELETE CASCADE,\n\
         \x20 table_name  text NOT NULL,\n\
         \x20 column_name text NOT NULL,\n\
         \x20 model       text NOT NULL CHECK (model <> ''),\n\
         \x20 dimensions  integer NOT NULL CHECK (dimensions BETWEEN 1 AND 16000),\n\
         \x20 version     integer NOT NULL DEFAULT 1,\n\
         \x20 changed_at  timestamptz NOT NULL DEFAULT now(),\n\
         \x20 PRIMARY KEY (tenant_id, table_name, column_name)\n\
         );\n\
         ALTER TABLE {table} OWNER TO {owner};\n\
         ALTER TABLE {table} ENABLE ROW LEVEL SECURITY;\n\
         ALTER TABLE {table} FORCE ROW LEVEL SECURITY;\n\
         CREATE POLICY {policy} ON {table} AS PERMISSIVE FOR SELECT TO {app}\n\
         \x20 USING (tenant_id = {tenant});\n\
         REVOKE ALL ON TABLE {table} FROM PUBLIC;\n\
         GRANT SELECT ON TABLE {table} TO {app};\n",
        policy = ident(&format!("{SETTINGS_TABLE}_tenant")),
    ));
    out.push_str(&super::statistics::set_statistics_zero(
        &table,
        &[
            "tenant_id",
            "table_name",
            "column_name",
            "model",
            "dimensions",
            "version",
            "changed_at",
        ],
    ));
    out
}

/// Name of the trigger (and its function, in the helper schema) that holds `table`'s `per
/// tenant` vectors to their tenant's dimension.
pub(crate) fn dimensions_trigger_name(table: &Table) -> String {
    fit_identifier(&format!("{}_vector_dimensions", table.name))
}

/// The BEFORE INSERT OR UPDATE trigger of `table`'s `per tenant` columns (empty when it has
/// none). A vector whose length is not its tenant's dimension is refused with SQLSTATE 23514
/// (a check violation) and a message naming the column, both lengths and the model.
pub(super) fn dimensions_trigger_section(model: &Model, table: &Table) -> String {
    let columns = per_tenant_columns(table);
    if columns.is_empty() {
        return String::new();
    }
    let schema = ident(&model.settings.helper_schema);
    let settings = format!("{schema}.{}", ident(SETTINGS_TABLE));
    let name = dimensions_trigger_name(table);
    let function = format!("{schema}.{}", ident(&name));
    let catalog_name = literal(&format!("{TABLE_SCHEMA}.{}", table.name));
    let mut checks = String::new();
    for column in &columns {
        let SqlType::Vector(default) = column.ty else {
            continue;
        };
        let col = ident(&column.name);
        let col_lit = literal(&column.name);
        checks.push_str(&format!(
            "  IF NEW.{col} IS NOT NULL THEN\n\
             \x20   PERFORM pg_catalog.pg_advisory_xact_lock_shared({SETTINGS_LOCK_CLASS},\n\
             \x20     pg_catalog.hashtext(NEW.tenant_id::pg_catalog.text));\n\
             \x20   expected := NULL;\n\
             \x20   chosen := NULL;\n\
             \x20   SELECT s.dimensions, s.model INTO expected, chosen FROM {settings} s\n\
             \x20     WHERE s.tenant_id OPERATOR(pg_catalog.=) NEW.tenant_id\n\
             \x20     AND s.table_name OPERATOR(pg_catalog.=) {catalog_name}\n\
             \x20     AND s.column_name OPERATOR(pg_catalog.=) {col_lit};\n\
             \x20   expected := COALESCE(expected, {default});\n\
             \x20   got := pg_catalog.array_length(NEW.{col}::pg_catalog.float4[], 1);\n\
             \x20   IF got OPERATOR(pg_catalog.<>) expected THEN\n\
             \x20     RAISE EXCEPTION USING ERRCODE = '23514',\n\
             \x20       MESSAGE = pg_catalog.format('tenancy: %s.%s holds %s-dimensional vectors \
             in this tenant (model %s), not %s',\n\
             \x20         TG_TABLE_NAME, {col_lit}, expected, COALESCE(chosen, 'default'), got),\n\
             \x20       HINT = 'change the tenant''s model with `tenancy tenant set-vector-model`, \
             or embed with the current one';\n\
             \x20   END IF;\n\
             \x20 END IF;\n"
        ));
    }
    let names: Vec<&str> = columns.iter().map(|c| c.name.as_str()).collect();
    let mut update_of: Vec<String> = columns
        .iter()
        .map(|c| ident(&c.name).into_owned())
        .collect();
    update_of.push(ident("tenant_id").into_owned());
    format!(
        "\n-- Per-tenant vector dimension: {}.\n\
         -- Every vector must have its tenant's dimension ({settings}, else the model's);\n\
         -- checked on insert and when the vector or the row's tenant changes. The shared\n\
         -- advisory lock orders the write against a change of the tenant's model.\n\
         CREATE OR REPLACE FUNCTION {function}()\n\
         \x20 RETURNS trigger\n\
         \x20 LANGUAGE plpgsql\n\
         AS $$\n\
         DECLARE\n\
         \x20 expected pg_catalog.int4;\n\
         \x20 chosen pg_catalog.text;\n\
         \x20 got pg_catalog.int4;\n\
         BEGIN\n\
         {checks}\
         \x20 RETURN NEW;\n\
         END\n\
         $$;\n\
         ALTER FUNCTION {function}() OWNER TO {owner};\n\
         REVOKE ALL ON FUNCTION {function}() FROM PUBLIC;\n\
         DROP TRIGGER IF EXISTS {trigger} ON {table_name};\n\
         CREATE TRIGGER {trigger}\n\
         \x20 BEFORE INSERT OR UPDATE OF {update_of} ON {table_name}\n\
         \x20 FOR EACH ROW\n\
         \x20 EXECUTE FUNCTION {function}();\n",
        names.join(", "),
        owner = ident(&model.settings.owner_role),
        trigger = ident(&name),
        table_name = ident(&table.name),
        update_of = update_of.join(", "),
    )
}
