//! The catalog checks. Each function reads one part of the catalogs and pushes findings.

use std::collections::{BTreeMap, BTreeSet};

use sqlx::PgConnection;
use tenancy_core::model::{Model, Table, TableKind, PROJECT_COLUMN, TENANT_COLUMN};
use tenancy_core::sql::Target;

use crate::finding::{codes, Finding};
use crate::generated::Expected;

/// Schemas that hold user objects (not the system catalogs, toast or temporary schemas).
const USER_SCHEMA: &str = "(n.nspname !~ '^pg_' AND n.nspname <> 'information_schema')";

/// The schema the generated tables live in.
const TABLE_SCHEMA: &str = "public";

/// Runs every check inside the caller's transaction.
pub(crate) async fn run(
    conn: &mut PgConnection,
    model: &Model,
    expected: &Expected,
    target: Target,
) -> Result<Vec<Finding>, sqlx::Error> {
    let mut out = Vec::new();
    let existing = tables(conn, model, &mut out).await?;
    scope_columns(conn, model, &existing, &mut out).await?;
    unique_keys(conn, model, &mut out).await?;
    foreign_keys(conn, model, &mut out).await?;
    policies(conn, model, expected, &existing, &mut out).await?;
    app_role(conn, model, &mut out).await?;
    helpers(conn, model, expected, &mut out).await?;
    security_definer(conn, expected, &mut out).await?;
    context_contract(conn, model, expected, target, &mut out).await?;
    views(conn, model, &mut out).await?;
    role_posture(conn, model, &mut out).await?;
    undeclared_relations(conn, model, expected, &mut out).await?;
    ungenerated_grants(conn, model, expected, &mut out).await?;
    Ok(out)
}

/// `"name"` when the name needs quoting, the name itself otherwise (the generator's quoting).
fn quote_ident(name: &str) -> String {
    tenancy_core::sql::quote_ident(name).into_owned()
}

/// True for tables whose scope column `tenant_id` must lead every key (everything tenant-owned
/// except the tenants table itself, whose key is the tenant id).
fn keyed_by_tenant_column(table: &Table) -> bool {
    matches!(
        table.kind,
        TableKind::Projects | TableKind::Memberships | TableKind::Scoped
    )
}

/// TA001-TA003: the model's tables exist; tenant-owned ones have RLS enabled and forced.
/// Returns the names of the model tables that exist.
async fn tables(
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
async fn scope_columns(
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
async fn unique_keys(
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
async fn foreign_keys(
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

/// One row of `pg_policy`, deparsed.
#[derive(Debug, Clone, PartialEq, Eq)]
struct PolicyRow {
    table: String,
    name: String,
    permissive: bool,
    command: String,
    roles: Vec<String>,
    using: Option<String>,
    with_check: Option<String>,
}

/// The policies of every table in the schema selected by `namespace_sql` (an expression).
async fn read_policies(
    conn: &mut PgConnection,
    namespace_sql: &str,
) -> Result<Vec<PolicyRow>, sqlx::Error> {
    type Row = (
        String,
        String,
        bool,
        String,
        Vec<String>,
        Option<String>,
        Option<String>,
    );
    let rows: Vec<Row> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT c.relname::text, p.polname::text, p.polpermissive, p.polcmd::text, \
                ARRAY(SELECT CASE WHEN r = 0 THEN 'public' ELSE pg_catalog.pg_get_userbyid(r)::text END \
                      FROM unnest(p.polroles) AS r ORDER BY 1)::text[], \
                pg_catalog.pg_get_expr(p.polqual, p.polrelid), \
                pg_catalog.pg_get_expr(p.polwithcheck, p.polrelid) \
         FROM pg_catalog.pg_policy p JOIN pg_catalog.pg_class c ON c.oid = p.polrelid \
         WHERE c.relnamespace = {namespace_sql}"
    )))
    .fetch_all(&mut *conn)
    .await?;
    Ok(rows
        .into_iter()
        .map(
            |(table, name, permissive, command, roles, using, with_check)| PolicyRow {
                table,
                name,
                permissive,
                command,
                roles,
                using,
                with_check,
            },
        )
        .collect())
}

/// `pg_policy.polcmd` as SQL.
fn command_sql(polcmd: &str) -> &str {
    match polcmd {
        "r" => "SELECT",
        "a" => "INSERT",
        "w" => "UPDATE",
        "d" => "DELETE",
        "*" => "ALL",
        other => other,
    }
}

/// TA010-TA012: the live policies of the model tables are exactly the generated ones.
///
/// The generated statements are applied to temporary copies of the tables (`LIKE`) inside the
/// caller's transaction, so PostgreSQL deparses them exactly as it deparses the live ones.
async fn policies(
    conn: &mut PgConnection,
    model: &Model,
    expected: &Expected,
    existing: &BTreeSet<String>,
    out: &mut Vec<Finding>,
) -> Result<(), sqlx::Error> {
    let live: BTreeMap<(String, String), PolicyRow> = read_policies(
        conn,
        &format!("'{}'::pg_catalog.regnamespace", TABLE_SCHEMA),
    )
    .await?
    .into_iter()
    .filter(|p| model.table(&p.table).is_some())
    .map(|p| ((p.table.clone(), p.name.clone()), p))
    .collect();

    // Scratch copies: tenancy_audit_<n> for the n-th table with generated policies.
    let mut scratch_names: BTreeMap<String, String> = BTreeMap::new();
    let mut deparsed: BTreeMap<(String, String), PolicyRow> = BTreeMap::new();
    for policy in &expected.policies {
        if !existing.contains(&policy.table) {
            continue;
        }
        let scratch = match scratch_names.get(&policy.table) {
            Some(name) => name.clone(),
            None => {
                let name = format!("tenancy_audit_{}", scratch_names.len());
                sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
                    "CREATE TEMP TABLE {name} (LIKE {TABLE_SCHEMA}.{})",
                    quote_ident(&policy.table)
                )))
                .execute(&mut *conn)
                .await?;
                scratch_names.insert(policy.table.clone(), name.clone());
                name
            }
        };
        // A statement that cannot be applied (say, a helper is missing) must not abort the
        // transaction: it runs under a savepoint and is then compared by existence only.
        sqlx::raw_sql("SAVEPOINT tenancy_audit_policy")
            .execute(&mut *conn)
            .await?;
        let statement = policy.on_relation(&format!("pg_temp.{scratch}"));
        let applied = sqlx::raw_sql(sqlx::AssertSqlSafe(statement))
            .execute(&mut *conn)
            .await;
        let finish = if applied.is_ok() {
            "RELEASE SAVEPOINT tenancy_audit_policy"
        } else {
            "ROLLBACK TO SAVEPOINT tenancy_audit_policy"
        };
        sqlx::raw_sql(finish).execute(&mut *conn).await?;
    }
    if !scratch_names.is_empty() {
        let table_of: BTreeMap<&str, &str> = scratch_names
            .iter()
            .map(|(table, scratch)| (scratch.as_str(), table.as_str()))
            .collect();
        for mut row in read_policies(conn, "pg_catalog.pg_my_temp_schema()").await? {
            if let Some(table) = table_of.get(row.table.as_str()) {
                row.table = (*table).to_owned();
                deparsed.insert((row.table.clone(), row.name.clone()), row);
            }
        }
    }

    let mut expected_keys: BTreeSet<(String, String)> = BTreeSet::new();
    for policy in &expected.policies {
        if !existing.contains(&policy.table) {
            continue;
        }
        let key = (policy.table.clone(), policy.name.clone());
        expected_keys.insert(key.clone());
        let object = format!("policy {} on {}", policy.name, policy.table);
        let Some(found) = live.get(&key) else {
            out.push(Finding::new(
                codes::POLICY_MISSING,
                object,
                "the generated policy does not exist",
            ));
            continue;
        };
        let Some(wanted) = deparsed.get(&key) else {
            continue;
        };
        let differences = policy_differences(wanted, found);
        if !differences.is_empty() {
            out.push(Finding::new(
                codes::POLICY_DIFFERS,
                object,
                differences.join("; "),
            ));
        }
    }
    for (key, found) in &live {
        if !expected_keys.contains(key) {
            out.push(Finding::new(
                codes::POLICY_EXTRA,
                format!("policy {} on {}", found.name, found.table),
                format!(
                    "not generated by the policies ({} {} TO {} USING {} WITH CHECK {})",
                    if found.permissive {
                        "PERMISSIVE"
                    } else {
                        "RESTRICTIVE"
                    },
                    command_sql(&found.command),
                    found.roles.join(", "),
                    found.using.as_deref().unwrap_or("-"),
                    found.with_check.as_deref().unwrap_or("-"),
                ),
            ));
        }
    }
    Ok(())
}

/// What differs between the expected (deparsed) and the live policy, one phrase each.
fn policy_differences(wanted: &PolicyRow, found: &PolicyRow) -> Vec<String> {
    let kind = |p: &PolicyRow| {
        if p.permissive {
            "PERMISSIVE"
        } else {
            "RESTRICTIVE"
        }
    };
    let expr = |e: &Option<String>| e.clone().unwrap_or_else(|| "(none)".to_owned());
    let mut out = Vec::new();
    if wanted.permissive != found.permissive {
        out.push(format!(
            "kind differs (expected {}, found {})",
            kind(wanted),
            kind(found)
        ));
    }
    if wanted.command != found.command {
        out.push(format!(
            "command differs (expected {}, found {})",
            command_sql(&wanted.command),
            command_sql(&found.command)
        ));
    }
    if wanted.roles != found.roles {
        out.push(format!(
            "roles differ (expected {}, found {})",
            wanted.roles.join(", "),
            found.roles.join(", ")
        ));
    }
    if wanted.using != found.using {
        out.push(format!(
            "USING differs (expected {}, found {})",
            expr(&wanted.using),
            expr(&found.using)
        ));
    }
    if wanted.with_check != found.with_check {
        out.push(format!(
            "WITH CHECK differs (expected {}, found {})",
            expr(&wanted.with_check),
            expr(&found.with_check)
        ));
    }
    out
}

/// TA020-TA025: the app role exists and can never bypass row-level security.
async fn app_role(
    conn: &mut PgConnection,
    model: &Model,
    out: &mut Vec<Finding>,
) -> Result<(), sqlx::Error> {
    let app = &model.settings.app_role;
    let owner = &model.settings.owner_role;
    let object = format!("role {app}");
    let role: Option<(bool, bool)> =
        sqlx::query_as("SELECT rolsuper, rolbypassrls FROM pg_catalog.pg_roles WHERE rolname = $1")
            .bind(app)
            .fetch_optional(&mut *conn)
            .await?;
    let Some((superuser, bypass)) = role else {
        out.push(Finding::new(
            codes::APP_ROLE_MISSING,
            object,
            "the app role does not exist",
        ));
        return Ok(());
    };
    if superuser {
        out.push(Finding::new(
            codes::APP_ROLE_SUPERUSER,
            object.clone(),
            "the app role is a superuser (bypasses row-level security)",
        ));
    }
    if bypass {
        out.push(Finding::new(
            codes::APP_ROLE_BYPASSRLS,
            object.clone(),
            "the app role has BYPASSRLS",
        ));
    }

    let member_of_owner: bool = sqlx::query_scalar(
        "WITH RECURSIVE granted(roleid) AS ( \
             SELECT m.roleid FROM pg_catalog.pg_auth_members m \
             JOIN pg_catalog.pg_roles r ON r.oid = m.member WHERE r.rolname = $1 \
           UNION \
             SELECT m.roleid FROM pg_catalog.pg_auth_members m JOIN granted g ON m.member = g.roleid) \
         SELECT EXISTS (SELECT 1 FROM granted g JOIN pg_catalog.pg_roles r ON r.oid = g.roleid \
                        WHERE r.rolname = $2)",
    )
    .bind(app)
    .bind(owner)
    .fetch_one(&mut *conn)
    .await?;
    if member_of_owner {
        out.push(Finding::new(
            codes::APP_ROLE_MEMBER_OF_OWNER,
            object.clone(),
            format!(
                "the app role is a member of the owner role {owner} (can act as the table owner)"
            ),
        ));
    }

    let owned: Vec<(String, String)> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "WITH app AS (SELECT oid FROM pg_catalog.pg_roles WHERE rolname = $1) \
         SELECT CASE c.relkind WHEN 'v' THEN 'view' WHEN 'm' THEN 'materialized view' \
                     WHEN 'S' THEN 'sequence' WHEN 'f' THEN 'foreign table' ELSE 'table' END, \
                c.oid::pg_catalog.regclass::text \
           FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace \
          WHERE c.relowner = (SELECT oid FROM app) AND c.relkind IN ('r', 'p', 'v', 'm', 'S', 'f') \
            AND {USER_SCHEMA} \
         UNION ALL \
         SELECT 'function', p.oid::pg_catalog.regprocedure::text \
           FROM pg_catalog.pg_proc p JOIN pg_catalog.pg_namespace n ON n.oid = p.pronamespace \
          WHERE p.proowner = (SELECT oid FROM app) AND {USER_SCHEMA} \
         UNION ALL \
         SELECT 'schema', n.nspname::text FROM pg_catalog.pg_namespace n \
          WHERE n.nspowner = (SELECT oid FROM app) AND {USER_SCHEMA} \
         UNION ALL \
         SELECT 'type', t.oid::pg_catalog.regtype::text \
           FROM pg_catalog.pg_type t JOIN pg_catalog.pg_namespace n ON n.oid = t.typnamespace \
          WHERE t.typowner = (SELECT oid FROM app) AND t.typrelid = 0 AND {USER_SCHEMA} \
            AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_type e WHERE e.typarray = t.oid) \
         UNION ALL \
         SELECT 'database', d.datname::text FROM pg_catalog.pg_database d \
          WHERE d.datdba = (SELECT oid FROM app) AND d.datname = pg_catalog.current_database() \
         ORDER BY 1, 2"
    )))
    .bind(app)
    .fetch_all(&mut *conn)
    .await?;
    for (kind, name) in owned {
        out.push(Finding::new(
            codes::APP_ROLE_OWNS,
            object.clone(),
            format!("the app role owns {kind} {name} (owners bypass unforced row-level security and can change it)"),
        ));
    }

    if !superuser {
        let privileges: Vec<(String, String)> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT c.oid::pg_catalog.regclass::text, p.privilege \
             FROM pg_catalog.pg_class c \
             JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace \
             CROSS JOIN (VALUES ('TRUNCATE'), ('REFERENCES'), ('TRIGGER')) AS p(privilege) \
             WHERE c.relkind IN ('r', 'p', 'v', 'm', 'f') AND {USER_SCHEMA} \
               AND pg_catalog.has_table_privilege($1, c.oid, p.privilege) \
             ORDER BY 1, 2"
        )))
        .bind(app)
        .fetch_all(&mut *conn)
        .await?;
        for (table, privilege) in privileges {
            out.push(Finding::new(
                codes::APP_ROLE_PRIVILEGE,
                object.clone(),
                format!(
                    "the app role holds {privilege} on {table} (not subject to row-level security)"
                ),
            ));
        }
    }
    Ok(())
}

/// TA040-TA042: the generated functions of the helper schema exist, have the volatility the
/// generator declares (STABLE for the context helpers) and no `SET` clause the generator does
/// not write (which would stop PostgreSQL from inlining them).
async fn helpers(
    conn: &mut PgConnection,
    model: &Model,
    expected: &Expected,
    out: &mut Vec<Finding>,
) -> Result<(), sqlx::Error> {
    let schema = &model.settings.helper_schema;
    let rows: Vec<(String, String, String, Vec<String>)> = sqlx::query_as(
        "SELECT p.proname::text, p.oid::pg_catalog.regprocedure::text, p.provolatile::text, \
                COALESCE(p.proconfig, '{}')::text[] \
         FROM pg_catalog.pg_proc p JOIN pg_catalog.pg_namespace n ON n.oid = p.pronamespace \
         WHERE n.nspname = $1",
    )
    .bind(schema)
    .fetch_all(&mut *conn)
    .await?;
    for helper in expected.functions.iter().filter(|f| &f.schema == schema) {
        let object = format!("function {}.{}", helper.schema, helper.name);
        let live: Vec<_> = rows.iter().filter(|r| r.0 == helper.name).collect();
        if live.is_empty() {
            out.push(Finding::new(
                codes::HELPER_MISSING,
                object,
                "the generated context helper does not exist",
            ));
            continue;
        }
        for (_, signature, volatility, config) in live {
            let object = format!("function {signature}");
            let wanted = helper.volatility.to_string();
            if *volatility != wanted {
                let message = if wanted == "s" {
                    format!(
                        "helper is {} (must be STABLE: evaluated once per statement, never cached across calls)",
                        volatility_sql(volatility)
                    )
                } else {
                    format!(
                        "function is {} (the generator declares it {})",
                        volatility_sql(volatility),
                        volatility_sql(&wanted)
                    )
                };
                out.push(Finding::new(
                    codes::HELPER_NOT_STABLE,
                    object.clone(),
                    message,
                ));
            }
            if !config.is_empty() && !helper.set_clause {
                out.push(Finding::new(
                    codes::HELPER_SET_CLAUSE,
                    object,
                    format!(
                        "helper has a SET clause ({}): PostgreSQL cannot inline it and runs every \
                         call through a configuration save and restore (the generated helpers \
                         have none; their bodies are schema-qualified instead)",
                        config.join(", ")
                    ),
                ));
            }
        }
    }
    Ok(())
}

/// `pg_proc.provolatile` as SQL.
fn volatility_sql(provolatile: &str) -> &str {
    match provolatile {
        "s" => "STABLE",
        "i" => "IMMUTABLE",
        "v" => "VOLATILE",
        other => other,
    }
}

/// TA043-TA044: SECURITY DEFINER functions are on the generated allowlist and are not
/// executable by PUBLIC. Functions of extensions are left to the extension.
async fn security_definer(
    conn: &mut PgConnection,
    expected: &Expected,
    out: &mut Vec<Finding>,
) -> Result<(), sqlx::Error> {
    let rows: Vec<(String, String, String, bool)> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT n.nspname::text, p.proname::text, p.oid::pg_catalog.regprocedure::text, \
                EXISTS (SELECT 1 FROM pg_catalog.aclexplode( \
                            COALESCE(p.proacl, pg_catalog.acldefault('f', p.proowner))) AS acl \
                        WHERE acl.grantee = 0 AND acl.privilege_type = 'EXECUTE') \
         FROM pg_catalog.pg_proc p JOIN pg_catalog.pg_namespace n ON n.oid = p.pronamespace \
         WHERE p.prosecdef AND {USER_SCHEMA} \
           AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_depend d \
                           WHERE d.classid = 'pg_catalog.pg_proc'::pg_catalog.regclass \
                             AND d.objid = p.oid AND d.deptype = 'e') \
         ORDER BY 3"
    )))
    .fetch_all(&mut *conn)
    .await?;
    for (schema, name, signature, public_execute) in rows {
        let object = format!("function {signature}");
        let allowed = expected
            .functions
            .iter()
            .any(|f| f.security_definer && f.schema == schema && f.name == name);
        if !allowed {
            out.push(Finding::new(
                codes::SECURITY_DEFINER_NOT_ALLOWED,
                object.clone(),
                "SECURITY DEFINER function is not on the generated allowlist",
            ));
        }
        if public_execute {
            out.push(Finding::new(
                codes::SECURITY_DEFINER_PUBLIC,
                object,
                "SECURITY DEFINER function is executable by PUBLIC",
            ));
        }
    }
    Ok(())
}

/// TA050: views over tenant-owned tables (directly or through other views) have
/// `security_invoker`; materialized views over them are always reported.
async fn views(
    conn: &mut PgConnection,
    model: &Model,
    out: &mut Vec<Finding>,
) -> Result<(), sqlx::Error> {
    type Relation = (String, String);
    let rows: Vec<(String, String, String, Vec<String>, String, String)> =
        sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT DISTINCT n.nspname::text, v.relname::text, v.relkind::text, \
                    COALESCE(v.reloptions, '{{}}')::text[], dn.nspname::text, d.relname::text \
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
    for (schema, name, kind, options, dep_schema, dep_name) in rows {
        let invoker = options.iter().any(|o| {
            o.split_once('=').is_some_and(|(k, v)| {
                k == "security_invoker"
                    && matches!(v.to_ascii_lowercase().as_str(), "true" | "on" | "yes" | "1")
            })
        });
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

/// A savepoint around one statement that may fail (missing object, no privilege) without
/// aborting the audit's transaction: `Ok(Err(e))` when the statement failed.
async fn guarded<T>(
    conn: &mut PgConnection,
    query: impl AsyncFnOnce(&mut PgConnection) -> Result<T, sqlx::Error>,
) -> Result<Result<T, sqlx::Error>, sqlx::Error> {
    sqlx::raw_sql("SAVEPOINT tenancy_audit_guard")
        .execute(&mut *conn)
        .await?;
    let result = query(&mut *conn).await;
    let finish = if result.is_ok() {
        "RELEASE SAVEPOINT tenancy_audit_guard"
    } else {
        "ROLLBACK TO SAVEPOINT tenancy_audit_guard"
    };
    sqlx::raw_sql(finish).execute(&mut *conn).await?;
    Ok(result)
}

/// TA045-TA047: the database speaks the context contract the generator writes for this target,
/// and (when the generator creates a key table) holds at least one active key.
async fn context_contract(
    conn: &mut PgConnection,
    model: &Model,
    expected: &Expected,
    target: Target,
    out: &mut Vec<Finding>,
) -> Result<(), sqlx::Error> {
    let schema = &model.settings.helper_schema;
    let quoted_schema = quote_ident(schema);
    let upgrade =
        "the database has not been upgraded to the signed context: apply the generated migrations";
    if expected.creates_function(schema, "context_contract") {
        let wanted = i64::from(tenancy_core::sql::context_contract(target));
        let object = format!("function {schema}.context_contract()");
        // NULL: no such function; false: the auditing role cannot call it.
        let callable: Option<bool> = sqlx::query_scalar(
            "SELECT pg_catalog.has_function_privilege(f.oid, 'EXECUTE') \
             FROM (SELECT pg_catalog.to_regprocedure( \
                       pg_catalog.format('%I.context_contract()', $1::text))::pg_catalog.oid AS oid) f \
             WHERE f.oid IS NOT NULL",
        )
        .bind(schema)
        .fetch_optional(&mut *conn)
        .await?;
        if callable == Some(false) {
            out.push(Finding::new(
                codes::CONTEXT_UNCHECKED,
                object,
                "could not check the context contract: the auditing role cannot execute this \
                 function (audit as the owner role or a superuser)",
            ));
        } else if callable == Some(true) {
            let sql = format!("SELECT ({quoted_schema}.context_contract())::int8");
            let found = guarded(conn, async |c| {
                sqlx::query_scalar::<_, Option<i64>>(sqlx::AssertSqlSafe(sql.as_str()))
                    .fetch_one(c)
                    .await
            })
            .await?;
            match found {
                Ok(Some(found)) if found == wanted => {}
                Ok(found) => out.push(Finding::new(
                    codes::CONTEXT_CONTRACT_OUTDATED,
                    object,
                    format!(
                        "returns {} but the generator writes context contract {wanted}: {upgrade}",
                        found.map_or_else(|| "NULL".to_owned(), |f| f.to_string())
                    ),
                )),
                Err(err) => out.push(Finding::new(
                    codes::CONTEXT_CONTRACT_OUTDATED,
                    object,
                    format!("cannot be called ({err}): {upgrade}"),
                )),
            }
        } else {
            out.push(Finding::new(
                codes::CONTEXT_CONTRACT_OUTDATED,
                object,
                format!("does not exist: {upgrade}"),
            ));
        }
    }
    if expected.creates_table(schema, "context_keys") {
        let object = format!("table {schema}.context_keys");
        let readable: Option<bool> = sqlx::query_scalar(
            "SELECT pg_catalog.has_table_privilege(c.oid, 'SELECT') \
             FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace \
             WHERE n.nspname = $1 AND c.relname = 'context_keys'",
        )
        .bind(schema)
        .fetch_optional(&mut *conn)
        .await?;
        match readable {
            None => out.push(Finding::new(
                codes::CONTEXT_CONTRACT_OUTDATED,
                object,
                format!("does not exist: {upgrade}"),
            )),
            Some(false) => out.push(Finding::new(
                codes::CONTEXT_UNCHECKED,
                object,
                "could not check for an active context key: the auditing role cannot read the key \
                 table (audit as the owner role or a superuser)",
            )),
            Some(true) => {
                let sql = format!(
                    "SELECT count(*) FROM {quoted_schema}.context_keys WHERE retired_at IS NULL"
                );
                match guarded(conn, async |c| {
                    sqlx::query_scalar::<_, i64>(sqlx::AssertSqlSafe(sql.as_str()))
                        .fetch_one(c)
                        .await
                })
                .await?
                {
                    Ok(0) => out.push(Finding::new(
                        codes::CONTEXT_KEY_MISSING,
                        object,
                        "no active context key: run `tenancy key install` (the runtime cannot \
                         open a scoped transaction without one)",
                    )),
                    Ok(_) => {}
                    Err(err) => out.push(Finding::new(
                        codes::CONTEXT_UNCHECKED,
                        object,
                        format!("could not check for an active context key: {err}"),
                    )),
                }
            }
        }
    }
    Ok(())
}

/// The roles whose privileges or settings reach the app role: itself and every role it is a
/// member of, directly or through other roles (whatever the INHERIT option: it can `SET ROLE`).
const APP_ROLES_SQL: &str = "WITH RECURSIVE app_roles(oid) AS ( \
       SELECT oid FROM pg_catalog.pg_roles WHERE rolname = $1 \
     UNION \
       SELECT m.roleid FROM pg_catalog.pg_auth_members m JOIN app_roles a ON m.member = a.oid) ";

/// TA026-TA029: what an attacker running SQL as the app role could plant or use beyond
/// row-level security: role-level settings, a password expiry, temporary tables, schemas it
/// can create objects in.
async fn role_posture(
    conn: &mut PgConnection,
    model: &Model,
    out: &mut Vec<Finding>,
) -> Result<(), sqlx::Error> {
    let app = &model.settings.app_role;
    let object = format!("role {app}");
    let role: Option<(bool, Option<String>)> = sqlx::query_as(
        "SELECT rolsuper, \
                CASE WHEN rolvaliduntil IS NULL OR rolvaliduntil = 'infinity' THEN NULL \
                     ELSE rolvaliduntil::text END \
         FROM pg_catalog.pg_roles WHERE rolname = $1",
    )
    .bind(app)
    .fetch_optional(&mut *conn)
    .await?;
    // A missing app role is TA020.
    let Some((superuser, valid_until)) = role else {
        return Ok(());
    };

    let settings: Vec<(String, bool, String)> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "{APP_ROLES_SQL}\
         SELECT r.rolname::text, s.setdatabase = 0, c.setting \
         FROM pg_catalog.pg_db_role_setting s \
         JOIN pg_catalog.pg_roles r ON r.oid = s.setrole \
         CROSS JOIN LATERAL unnest(s.setconfig) AS c(setting) \
         WHERE s.setrole IN (SELECT oid FROM app_roles) \
           AND (s.setdatabase = 0 OR s.setdatabase = (SELECT oid FROM pg_catalog.pg_database \
                                                       WHERE datname = pg_catalog.current_database())) \
         ORDER BY 1, 2, 3"
    )))
    .bind(app)
    .fetch_all(&mut *conn)
    .await?;
    for (role, every_database, setting) in settings {
        let on = if &role == app {
            "the app role".to_owned()
        } else {
            format!("role {role}, which the app role is a member of,")
        };
        let scope = if every_database {
            "in every database"
        } else {
            "in this database"
        };
        out.push(Finding::new(
            codes::APP_ROLE_SETTING,
            object.clone(),
            format!(
                "{on} has the role-level setting {setting} {scope} (the generator sets none; \
                 remove it with ALTER ROLE {role} [IN DATABASE ...] RESET ...)"
            ),
        ));
    }

    if let Some(valid_until) = valid_until {
        out.push(Finding::new(
            codes::APP_ROLE_VALID_UNTIL,
            object.clone(),
            format!(
                "the app role's password expires at {valid_until} (VALID UNTIL was set or changed; \
                 logins fail after it)"
            ),
        ));
    }

    if superuser {
        // TA021: a superuser holds every privilege; the privilege checks would only repeat it.
        return Ok(());
    }

    let temporary: Option<(String, bool)> = sqlx::query_as(
        "SELECT d.datname::text, \
                EXISTS (SELECT 1 FROM pg_catalog.aclexplode( \
                            COALESCE(d.datacl, pg_catalog.acldefault('d', d.datdba))) AS acl \
                        WHERE acl.grantee = 0 AND acl.privilege_type = 'TEMPORARY') \
         FROM pg_catalog.pg_database d \
         WHERE d.datname = pg_catalog.current_database() \
           AND pg_catalog.has_database_privilege($1, d.oid, 'TEMPORARY')",
    )
    .bind(app)
    .fetch_optional(&mut *conn)
    .await?;
    if let Some((database, public)) = temporary {
        let through = if public { " (granted to PUBLIC)" } else { "" };
        out.push(Finding::new(
            codes::APP_ROLE_TEMPORARY,
            object.clone(),
            format!(
                "the app role can create temporary tables in database {database}{through}: a \
                 temporary table named like a tenant table shadows it for the rest of a pooled \
                 session (REVOKE TEMPORARY ON DATABASE {database} FROM PUBLIC and from the app role)"
            ),
        ));
    }

    let schemas: Vec<String> = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
        "SELECT n.nspname::text FROM pg_catalog.pg_namespace n \
         WHERE {USER_SCHEMA} AND pg_catalog.has_schema_privilege($1, n.oid, 'CREATE') \
         ORDER BY 1"
    )))
    .bind(app)
    .fetch_all(&mut *conn)
    .await?;
    for schema in schemas {
        out.push(Finding::new(
            codes::APP_ROLE_CREATE_IN_SCHEMA,
            format!("schema {schema}"),
            format!(
                "the app role {app} can create objects in schema {schema} (functions, operators \
                 and tables that shadow names; REVOKE CREATE ON SCHEMA {schema} FROM PUBLIC and \
                 from the app role)"
            ),
        ));
    }
    Ok(())
}

/// TA080: tables, views and foreign tables the policies do not declare, in schemas the app
/// role can use, that the app role can read or write. Members of extensions are the
/// extension's business and are not reported.
async fn undeclared_relations(
    conn: &mut PgConnection,
    model: &Model,
    expected: &Expected,
    out: &mut Vec<Finding>,
) -> Result<(), sqlx::Error> {
    let app = &model.settings.app_role;
    let rows: Vec<(String, String, String, Vec<String>)> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT n.nspname::text, c.relname::text, \
                CASE c.relkind WHEN 'v' THEN 'view' WHEN 'm' THEN 'materialized view' \
                               WHEN 'f' THEN 'foreign table' ELSE 'table' END, \
                ARRAY(SELECT p.privilege FROM (VALUES ('SELECT'), ('INSERT'), ('UPDATE'), ('DELETE')) AS p(privilege) \
                      WHERE pg_catalog.has_table_privilege($1, c.oid, p.privilege) \
                         OR (p.privilege <> 'DELETE' \
                             AND pg_catalog.has_any_column_privilege($1, c.oid, p.privilege))) \
         FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace \
         WHERE c.relkind IN ('r', 'p', 'v', 'm', 'f') AND {USER_SCHEMA} \
           AND pg_catalog.has_schema_privilege($1, n.oid, 'USAGE') \
           AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_depend d \
                           WHERE d.classid = 'pg_catalog.pg_class'::pg_catalog.regclass \
                             AND d.objid = c.oid AND d.deptype = 'e') \
         ORDER BY 1, 2"
    )))
    .bind(app)
    .fetch_all(&mut *conn)
    .await?;
    for (schema, name, kind, privileges) in rows {
        let declared = (schema == TABLE_SCHEMA && model.table(&name).is_some())
            || expected.creates_table(&schema, &name);
        if declared || privileges.is_empty() {
            continue;
        }
        out.push(Finding::new(
            codes::UNDECLARED_RELATION,
            format!("{kind} {}.{}", quote_ident(&schema), quote_ident(&name)),
            format!(
                "not declared by the policies, and the app role {app} holds {} on it (rows \
                 outside the model are outside row-level security; drop it or revoke the grants)",
                privileges.join(", ")
            ),
        ));
    }
    Ok(())
}

/// TA081: on the tables the generated SQL creates, the app role holds exactly the table and
/// column privileges (SELECT, INSERT, UPDATE, DELETE, column REFERENCES) the generated `GRANT`s
/// give it (directly, through a role or through PUBLIC), no more.
async fn ungenerated_grants(
    conn: &mut PgConnection,
    model: &Model,
    expected: &Expected,
    out: &mut Vec<Finding>,
) -> Result<(), sqlx::Error> {
    let app = &model.settings.app_role;
    let superuser: Option<bool> =
        sqlx::query_scalar("SELECT rolsuper FROM pg_catalog.pg_roles WHERE rolname = $1")
            .bind(app)
            .fetch_optional(&mut *conn)
            .await?;
    if superuser != Some(false) {
        // TA020 / TA021.
        return Ok(());
    }
    // (schema, table) -> privileges on the whole table / per column.
    let mut whole: BTreeMap<(String, String), BTreeSet<String>> = BTreeMap::new();
    let mut columns: BTreeMap<(String, String), BTreeSet<(String, String)>> = BTreeMap::new();
    for grant in &expected.grants {
        let to_app = grant
            .grantees
            .iter()
            .any(|g| g == app || g.eq_ignore_ascii_case("public"));
        if !to_app {
            continue;
        }
        let key = (grant.table.schema.clone(), grant.table.name.clone());
        match &grant.columns {
            None => {
                whole
                    .entry(key)
                    .or_default()
                    .insert(grant.privilege.clone());
            }
            Some(cols) => {
                let entry = columns.entry(key).or_default();
                for col in cols {
                    entry.insert((col.clone(), grant.privilege.clone()));
                }
            }
        }
    }
    // Table-level privileges held, and column privileges held that a table-level one does
    // not explain.
    type Row = (String, String, Option<String>, String);
    let rows: Vec<Row> = sqlx::query_as(
        "WITH generated(schema_name, table_name) AS ( \
             SELECT * FROM unnest($2::text[], $3::text[])), \
         rel AS ( \
             SELECT c.oid, g.schema_name, g.table_name FROM generated g \
             JOIN pg_catalog.pg_namespace n ON n.nspname = g.schema_name \
             JOIN pg_catalog.pg_class c ON c.relnamespace = n.oid AND c.relname = g.table_name \
             WHERE c.relkind IN ('r', 'p')) \
         SELECT r.schema_name, r.table_name, NULL::text, p.privilege \
           FROM rel r CROSS JOIN (VALUES ('SELECT'), ('INSERT'), ('UPDATE'), ('DELETE')) AS p(privilege) \
          WHERE pg_catalog.has_table_privilege($1, r.oid, p.privilege) \
         UNION ALL \
         SELECT r.schema_name, r.table_name, a.attname::text, p.privilege \
           FROM rel r \
           JOIN pg_catalog.pg_attribute a ON a.attrelid = r.oid AND a.attnum > 0 AND NOT a.attisdropped \
           CROSS JOIN (VALUES ('SELECT'), ('INSERT'), ('UPDATE'), ('REFERENCES')) AS p(privilege) \
          WHERE pg_catalog.has_column_privilege($1, r.oid, a.attnum, p.privilege) \
            AND NOT pg_catalog.has_table_privilege($1, r.oid, p.privilege) \
         ORDER BY 1, 2, 3 NULLS FIRST, 4",
    )
    .bind(app)
    .bind(
        expected
            .tables
            .iter()
            .map(|t| t.schema.clone())
            .collect::<Vec<_>>(),
    )
    .bind(
        expected
            .tables
            .iter()
            .map(|t| t.name.clone())
            .collect::<Vec<_>>(),
    )
    .fetch_all(&mut *conn)
    .await?;
    for (schema, table, column, privilege) in rows {
        let key = (schema.clone(), table.clone());
        let table_ok = whole.get(&key).is_some_and(|p| p.contains(&privilege));
        let name = if schema == TABLE_SCHEMA {
            quote_ident(&table)
        } else {
            format!("{}.{}", quote_ident(&schema), quote_ident(&table))
        };
        match column {
            None if !table_ok => {
                let narrower: Vec<&str> = columns
                    .get(&key)
                    .map(|cols| {
                        cols.iter()
                            .filter(|(_, p)| p == &privilege)
                            .map(|(c, _)| c.as_str())
                            .collect()
                    })
                    .unwrap_or_default();
                let generated = if narrower.is_empty() {
                    "the generated SQL does not grant it".to_owned()
                } else {
                    format!(
                        "the generated SQL grants it on ({}) only",
                        narrower.join(", ")
                    )
                };
                out.push(Finding::new(
                    codes::UNGENERATED_GRANT,
                    format!("table {name}"),
                    format!(
                        "the app role {app} holds {privilege} on the whole table; {generated} \
                         (REVOKE {privilege} ON {name} FROM the grantee)"
                    ),
                ));
            }
            Some(column)
                if !table_ok
                    && !columns
                        .get(&key)
                        .is_some_and(|c| c.contains(&(column.clone(), privilege.clone()))) =>
            {
                out.push(Finding::new(
                    codes::UNGENERATED_GRANT,
                    format!("column {name}.{}", quote_ident(&column)),
                    format!(
                        "the app role {app} holds {privilege} on column {column}, which the \
                         generated SQL does not grant (REVOKE {privilege} ({}) ON {name} FROM \
                         the grantee)",
                        quote_ident(&column)
                    ),
                ));
            }
            _ => {}
        }
    }
    Ok(())
}
