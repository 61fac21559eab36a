//! The catalog checks. Each function reads one part of the catalogs and pushes findings.

use std::collections::{BTreeMap, BTreeSet};

use sqlx::PgConnection;
use tenancy_core::model::{Model, Table, TableKind, PROJECT_COLUMN, TENANT_COLUMN};

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
    views(conn, model, &mut out).await?;
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
    let rows: Vec<Row> = sqlx::query_as(&format!(
        "SELECT c.relname::text, p.polname::text, p.polpermissive, p.polcmd::text, \
                ARRAY(SELECT CASE WHEN r = 0 THEN 'public' ELSE pg_catalog.pg_get_userbyid(r)::text END \
                      FROM unnest(p.polroles) AS r ORDER BY 1)::text[], \
                pg_catalog.pg_get_expr(p.polqual, p.polrelid), \
                pg_catalog.pg_get_expr(p.polwithcheck, p.polrelid) \
         FROM pg_catalog.pg_policy p JOIN pg_catalog.pg_class c ON c.oid = p.polrelid \
         WHERE c.relnamespace = {namespace_sql}"
    ))
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
                sqlx::raw_sql(&format!(
                    "CREATE TEMP TABLE {name} (LIKE {TABLE_SCHEMA}.{})",
                    quote_ident(&policy.table)
                ))
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
        let applied = sqlx::raw_sql(&statement).execute(&mut *conn).await;
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

    let owned: Vec<(String, String)> = sqlx::query_as(&format!(
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
    ))
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
        let privileges: Vec<(String, String)> = sqlx::query_as(&format!(
            "SELECT c.oid::pg_catalog.regclass::text, p.privilege \
             FROM pg_catalog.pg_class c \
             JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace \
             CROSS JOIN (VALUES ('TRUNCATE'), ('REFERENCES'), ('TRIGGER')) AS p(privilege) \
             WHERE c.relkind IN ('r', 'p', 'v', 'm', 'f') AND {USER_SCHEMA} \
               AND pg_catalog.has_table_privilege($1, c.oid, p.privilege) \
             ORDER BY 1, 2"
        ))
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

/// TA040-TA042: the generated helpers exist, are STABLE and have no `SET` clause (which would
/// stop PostgreSQL from inlining them).
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
            if volatility != "s" {
                let actual = match volatility.as_str() {
                    "v" => "VOLATILE",
                    "i" => "IMMUTABLE",
                    _ => "not STABLE",
                };
                out.push(Finding::new(
                    codes::HELPER_NOT_STABLE,
                    object.clone(),
                    format!("helper is {actual} (must be STABLE: evaluated once per statement, never cached across calls)"),
                ));
            }
            if !config.is_empty() {
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

/// TA043-TA044: SECURITY DEFINER functions are on the generated allowlist and are not
/// executable by PUBLIC. Functions of extensions are left to the extension.
async fn security_definer(
    conn: &mut PgConnection,
    expected: &Expected,
    out: &mut Vec<Finding>,
) -> Result<(), sqlx::Error> {
    let rows: Vec<(String, String, String, bool)> = sqlx::query_as(&format!(
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
    ))
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
        sqlx::query_as(&format!(
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
        ))
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
