//! Tables, scope columns, keys, foreign keys, triggers and views (TA001-TA003, TA030-TA032, TA050, TA060-TA062).

use super::*;

/// TA001-TA003: the model's tables exist; tenant-owned ones have RLS enabled and forced.
/// Returns the names of the model tables that exist.
pub(super) async fn tables(
    conn: &mut PgConnection,
    model: &Model,
    out: &mut Vec<Finding>,
) -> Result<BTreeSet<String>, sqlx::Error> {
    let rows: Vec<(String, bool, bool)> = sqlx::query_as(
        "SELECT c.relname::text, c.relrowsecurity, c.relforcerowsecurity \
         FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace \
         WHERE n.nspname = $1 AND c.relkind IN ('r', 'p')",
    )
    .bind(TABLE_SCHEMA)
    .fetch_all(&mut *conn)
    .await?;
    let live: BTreeMap<String, (bool, bool)> = rows
        .into_iter()
        .map(|(name, enabled, forced)| (name, (enabled, forced)))
        .collect();
    let mut existing = BTreeSet::new();
    for table in &model.tables {
        let object = format!("table {}", table.name);
        let Some(&(enabled, forced)) = live.get(&table.name) else {
            out.push(Finding::new(
                codes::TABLE_MISSING,
                object,
                format!("does not exist in schema {TABLE_SCHEMA}"),
            ));
            continue;
        };
        existing.insert(table.name.clone());
        if !table.kind.is_tenant_owned() {
            continue;
        }
        if !enabled {
            out.push(Finding::new(
                codes::RLS_DISABLED,
                object.clone(),
                "row-level security is not enabled",
            ));
        }
        if !forced {
            out.push(Finding::new(
                codes::RLS_NOT_FORCED,
                object,
                "row-level security is not forced (the table owner bypasses it)",
            ));
        }
    }
    Ok(existing)
}

/// TA060-TA062: `tenant_id` / `project_id` exist, are NOT NULL and have no default.
pub(super) async fn scope_columns(
    conn: &mut PgConnection,
    model: &Model,
    existing: &BTreeSet<String>,
    out: &mut Vec<Finding>,
) -> Result<(), sqlx::Error> {
    let rows: Vec<(String, String, bool, bool)> = sqlx::query_as(
        "SELECT c.relname::text, a.attname::text, a.attnotnull, \
                (a.atthasdef OR a.attidentity <> '' OR a.attgenerated <> '') \
         FROM pg_catalog.pg_attribute a \
         JOIN pg_catalog.pg_class c ON c.oid = a.attrelid \
         JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace \
         WHERE n.nspname = $1 AND c.relkind IN ('r', 'p') AND a.attnum > 0 AND NOT a.attisdropped",
    )
    .bind(TABLE_SCHEMA)
    .fetch_all(&mut *conn)
    .await?;
    let live: BTreeMap<(String, String), (bool, bool)> = rows
        .into_iter()
        .map(|(table, column, not_null, has_default)| ((table, column), (not_null, has_default)))
        .collect();
    for table in model.tables.iter().filter(|t| existing.contains(&t.name)) {
        for column in table
            .generated_columns()
            .into_iter()
            .filter(|c| c.name == TENANT_COLUMN || c.name == PROJECT_COLUMN)
        {
            let object = format!("column {}.{}", table.name, column.name);
            match live.get(&(table.name.clone(), column.name.clone())) {
                None => out.push(Finding::new(
                    codes::SCOPE_COLUMN_MISSING,
                    object,
                    "scope column does not exist",
                )),
                Some(&(not_null, has_default)) => {
                    if !not_null {
                        out.push(Finding::new(
                            codes::SCOPE_COLUMN_NULLABLE,
                            object.clone(),
                            "scope column accepts NULL (must be NOT NULL)",
                        ));
                    }
                    if has_default {
                        out.push(Finding::new(
                            codes::SCOPE_COLUMN_DEFAULT,
                            object,
                            "scope column has a default (rows must name their scope explicitly)",
                        ));
                    }
                }
            }
        }
    }
    Ok(())
}

/// TA031: every primary key, unique constraint and unique index of a scoped table contains
/// `tenant_id` (otherwise uniqueness leaks across tenants).
pub(super) async fn unique_keys(
    conn: &mut PgConnection,
    model: &Model,
    out: &mut Vec<Finding>,
) -> Result<(), sqlx::Error> {
    let rows: Vec<(String, String, bool, Vec<String>)> = sqlx::query_as(
        "SELECT c.relname::text, ic.relname::text, i.indisprimary, \
                ARRAY(SELECT a.attname::text \
                      FROM unnest(i.indkey::int2[]) WITH ORDINALITY AS k(attnum, position) \
                      JOIN pg_catalog.pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum \
                      ORDER BY k.position) \
         FROM pg_catalog.pg_index i \
         JOIN pg_catalog.pg_class c ON c.oid = i.indrelid \
         JOIN pg_catalog.pg_class ic ON ic.oid = i.indexrelid \
         JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace \
         WHERE n.nspname = $1 AND i.indisunique",
    )
    .bind(TABLE_SCHEMA)
    .fetch_all(&mut *conn)
    .await?;
    for (table_name, index_name, primary, columns) in rows {
        let Some(table) = model.table(&table_name) else {
            continue;
        };
        if !keyed_by_tenant_column(table) || columns.iter().any(|c| c == TENANT_COLUMN) {
            continue;
        }
        let kind = if primary { "primary key" } else { "unique key" };
        out.push(Finding::new(
            codes::UNIQUE_WITHOUT_TENANT,
            format!("index {index_name}"),
            format!(
                "{kind} on {table_name} ({}) does not contain {TENANT_COLUMN}: uniqueness is checked across tenants",
                columns.join(", ")
            ),
        ));
    }
    Ok(())
}

/// TA030: every foreign key between tenant-owned tables pairs the referencing table's tenant
/// column with the referenced table's tenant column.
pub(super) async fn foreign_keys(
    conn: &mut PgConnection,
    model: &Model,
    out: &mut Vec<Finding>,
) -> Result<(), sqlx::Error> {
    // (constraint, referencing table, referenced table, their columns, pairwise)
    type Row = (String, String, String, Vec<String>, Vec<String>);
    let rows: Vec<Row> = sqlx::query_as(
        "SELECT con.conname::text, c.relname::text, f.relname::text, \
                ARRAY(SELECT a.attname::text \
                      FROM unnest(con.conkey) WITH ORDINALITY AS k(attnum, position) \
                      JOIN pg_catalog.pg_attribute a ON a.attrelid = con.conrelid AND a.attnum = k.attnum \
                      ORDER BY k.position), \
                ARRAY(SELECT a.attname::text \
                      FROM unnest(con.confkey) WITH ORDINALITY AS k(attnum, position) \
                      JOIN pg_catalog.pg_attribute a ON a.attrelid = con.confrelid AND a.attnum = k.attnum \
                      ORDER BY k.position) \
         FROM pg_catalog.pg_constraint con \
         JOIN pg_catalog.pg_class c ON c.oid = con.conrelid \
         JOIN pg_catalog.pg_class f ON f.oid = con.confrelid \
         JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace \
         JOIN pg_catalog.pg_namespace fn ON fn.oid = f.relnamespace \
         WHERE con.contype = 'f' AND n.nspname = $1 AND fn.nspname = $1",
    )
    .bind(TABLE_SCHEMA)
    .fetch_all(&mut *conn)
    .await?;
    for (name, from, to, from_columns, to_columns) in rows {
        let (Some(from_scope), Some(to_scope)) = (
            model.table(&from).and_then(Table::scope_columns),
            model.table(&to).and_then(Table::scope_columns),
        ) else {
            continue;
        };
        let pairs_tenant = from_columns
            .iter()
            .zip(&to_columns)
            .any(|(f, t)| f == from_scope.tenant && t == to_scope.tenant);
        if !pairs_tenant {
            out.push(Finding::new(
                codes::FOREIGN_KEY_WITHOUT_TENANT,
                format!("foreign key {name}"),
                format!(
                    "{from} ({}) references {to} ({}) without {from}.{} = {to}.{}: a row can point at another tenant's row",
                    from_columns.join(", "),
                    to_columns.join(", "),
                    from_scope.tenant,
                    to_scope.tenant
                ),
            ));
        }
    }
    Ok(())
}

/// TA050: views over tenant-owned tables (directly or through other views) have
/// `security_invoker`; materialized views over them are always reported.
pub(super) async fn views(
    conn: &mut PgConnection,
    model: &Model,
    out: &mut Vec<Finding>,
) -> Result<(), sqlx::Error> {
    type Relation = (String, String);
    /// (schema, view, relkind, reloptions, schema read, relation read, owner)
    type ViewRow = (String, String, String, Vec<String>, String, String, String);
    let rows: Vec<ViewRow> =
        sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT DISTINCT n.nspname::text, v.relname::text, v.relkind::text, \
                    COALESCE(v.reloptions, '{{}}')::text[], dn.nspname::text, d.relname::text, \
                    pg_catalog.pg_get_userbyid(v.relowner)::text \
             FROM pg_catalog.pg_class v \
             JOIN pg_catalog.pg_namespace n ON n.oid = v.relnamespace \
             JOIN pg_catalog.pg_rewrite r ON r.ev_class = v.oid \
             JOIN pg_catalog.pg_depend dep ON dep.classid = 'pg_catalog.pg_rewrite'::pg_catalog.regclass \
                  AND dep.objid = r.oid AND dep.refclassid = 'pg_catalog.pg_class'::pg_catalog.regclass \
             JOIN pg_catalog.pg_class d ON d.oid = dep.refobjid \
             JOIN pg_catalog.pg_namespace dn ON dn.oid = d.relnamespace \
             WHERE v.relkind IN ('v', 'm') AND d.oid <> v.oid AND {USER_SCHEMA}"
        )))
        .fetch_all(&mut *conn)
        .await?;
    // view -> (relkind, security_invoker, relations it reads)
    let mut graph: BTreeMap<Relation, (String, bool, BTreeSet<Relation>)> = BTreeMap::new();
    let option = |options: &[String], key: &str| {
        options.iter().any(|o| {
            o.split_once('=').is_some_and(|(k, v)| {
                k == key && matches!(v.to_ascii_lowercase().as_str(), "true" | "on" | "yes" | "1")
            })
        })
    };
    // The masked views the model declares (`allow select (..)`): owned by the reader role,
    // by design not security_invoker (the app role cannot select the masked columns).
    let reader = tenancy_core::sql::reader_role(model);
    let masked_views: BTreeSet<Relation> = model
        .tables
        .iter()
        .filter(|t| !t.masked_columns().is_empty())
        .map(|t| {
            (
                model.settings.helper_schema.clone(),
                tenancy_core::sql::masked_view_name(t),
            )
        })
        .collect();
    for (schema, name, kind, options, dep_schema, dep_name, owner) in rows {
        let mut invoker = option(&options, "security_invoker");
        let relation = (schema.clone(), name.clone());
        if masked_views.contains(&relation) {
            if kind == "v" && owner == reader && option(&options, "security_barrier") {
                invoker = true;
            } else {
                out.push(Finding::new(
                    codes::VIEW_NOT_INVOKER,
                    format!("view {}.{}", quote_ident(&schema), quote_ident(&name)),
                    format!(
                        "the masked view must be a security_barrier view owned by {reader} \
                         (found owner {owner}); generate and apply the migrations again"
                    ),
                ));
                continue;
            }
        }
        graph
            .entry((schema, name))
            .or_insert_with(|| (kind, invoker, BTreeSet::new()))
            .2
            .insert((dep_schema, dep_name));
    }
    let mut over_scoped: BTreeSet<Relation> = model
        .tables
        .iter()
        .filter(|t| t.kind.is_tenant_owned())
        .map(|t| (TABLE_SCHEMA.to_owned(), t.name.clone()))
        .collect();
    let scoped_tables = over_scoped.clone();
    loop {
        let before = over_scoped.len();
        for (view, (_, _, deps)) in &graph {
            if deps.iter().any(|d| over_scoped.contains(d)) {
                over_scoped.insert(view.clone());
            }
        }
        if over_scoped.len() == before {
            break;
        }
    }
    for (view, (kind, invoker, _)) in &graph {
        if !over_scoped.contains(view) || scoped_tables.contains(view) {
            continue;
        }
        let name = format!("{}.{}", quote_ident(&view.0), quote_ident(&view.1));
        if kind == "m" {
            out.push(Finding::new(
                codes::VIEW_NOT_INVOKER,
                format!("materialized view {name}"),
                "materialized view copies rows of tenant-owned tables outside row-level security",
            ));
        } else if !invoker {
            out.push(Finding::new(
                codes::VIEW_NOT_INVOKER,
                format!("view {name}"),
                "view over tenant-owned tables without security_invoker = true (runs with its owner's rights)",
            ));
        }
    }
    Ok(())
}

/// TA032: every trigger the generated SQL creates exists on its table and is enabled
/// (`ALTER TABLE .. DISABLE TRIGGER` by a table owner would switch off the keep-top-role rule).
pub(super) async fn triggers(
    conn: &mut PgConnection,
    expected: &Expected,
    out: &mut Vec<Finding>,
) -> Result<(), sqlx::Error> {
    for trigger in &expected.triggers {
        let enabled: Option<String> = sqlx::query_scalar(
            "SELECT t.tgenabled::text FROM pg_catalog.pg_trigger t \
             JOIN pg_catalog.pg_class c ON c.oid = t.tgrelid \
             JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace \
             WHERE n.nspname = $1 AND c.relname = $2 AND t.tgname = $3",
        )
        .bind(&trigger.table.schema)
        .bind(&trigger.table.name)
        .bind(&trigger.name)
        .fetch_optional(&mut *conn)
        .await?;
        let problem = match enabled.as_deref() {
            None => "is missing: apply the generated migrations",
            Some("D") => "is disabled: ALTER TABLE .. ENABLE TRIGGER it",
            Some(_) => continue,
        };
        out.push(Finding::new(
            codes::TRIGGER_MISSING,
            format!("trigger {} on {}", trigger.name, trigger.table.name),
            format!("the generated trigger {problem}"),
        ));
    }
    Ok(())
}
