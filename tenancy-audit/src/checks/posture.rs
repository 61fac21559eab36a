//! The application role and what an attacker running SQL as it could use (TA020-TA029, TA080, TA081).

use super::*;

/// TA020-TA025: the app role exists and can never bypass row-level security.
pub(super) async fn app_role(
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

/// The roles whose privileges or settings reach the app role: itself and every role it is a
/// member of, directly or through other roles (whatever the INHERIT option: it can `SET ROLE`).
pub(super) const APP_ROLES_SQL: &str = "WITH RECURSIVE app_roles(oid) AS ( \
       SELECT oid FROM pg_catalog.pg_roles WHERE rolname = $1 \
     UNION \
       SELECT m.roleid FROM pg_catalog.pg_auth_members m JOIN app_roles a ON m.member = a.oid) ";

/// TA026-TA029: what an attacker running SQL as the app role could plant or use beyond
/// row-level security: role-level settings, a password expiry, temporary tables, schemas it
/// can create objects in.
pub(super) async fn role_posture(
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

    let large_objects: Option<String> = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
        "SELECT pg_catalog.string_agg(DISTINCT p.proname::text, ', ') \
         FROM pg_catalog.pg_proc p \
         WHERE {} \
           AND pg_catalog.has_function_privilege($1, p.oid, 'EXECUTE')",
        tenancy_core::sql::LARGE_OBJECT_FUNCTIONS
    )))
    .bind(app)
    .fetch_one(&mut *conn)
    .await?;
    if let Some(functions) = large_objects {
        out.push(Finding::new(
            codes::APP_ROLE_LARGE_OBJECTS,
            object.clone(),
            format!(
                "the app role can execute the large-object functions ({functions}): every \
                 tenant's requests run as one login role, which owns every large object, so one \
                 tenant lists, reads and overwrites another's (apply the generated migrations as \
                 a superuser: they revoke these functions from PUBLIC)"
            ),
        ));
    }
    Ok(())
}

/// TA080: tables, views and foreign tables the policies do not declare, in schemas the app
/// role can use, that the app role can read or write. Members of extensions are the
/// extension's business and are not reported.
pub(super) async fn undeclared_relations(
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
    // The runtime's vector catalog (`tenancy_runtime::vector::VECTOR_CATALOG_SQL`, installed by
    // `VectorMaintenance::install` in the helper schema, row-level secured by tenant, SELECT
    // for the app role) belongs to a model with a vector column.
    let uses_vectors = model
        .tables
        .iter()
        .flat_map(|t| &t.columns)
        .any(|c| matches!(c.ty, tenancy_core::model::SqlType::Vector(_)));
    let vector_catalog = |schema: &str, name: &str| {
        uses_vectors
            && schema == model.settings.helper_schema
            && ["vector_tiers", "vector_project_sizes"].contains(&name)
    };
    let masked_view = |schema: &str, name: &str| {
        schema == model.settings.helper_schema
            && model.tables.iter().any(|t| {
                !t.masked_columns().is_empty() && tenancy_core::sql::masked_view_name(t) == name
            })
    };
    for (schema, name, kind, privileges) in rows {
        let declared = (schema == TABLE_SCHEMA && model.table(&name).is_some())
            || masked_view(&schema, &name)
            || expected.creates_table(&schema, &name)
            || vector_catalog(&schema, &name);
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
pub(super) async fn ungenerated_grants(
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
