//! The helper functions, SECURITY DEFINER functions and the context contract and keys (TA040-TA047).

use super::*;

/// TA040-TA042: the generated functions of the helper schema exist, have the volatility the
/// generator declares (STABLE for the context helpers) and no `SET` clause the generator does
/// not write (which would stop PostgreSQL from inlining them).
pub(super) async fn helpers(
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
pub(super) fn volatility_sql(provolatile: &str) -> &str {
    match provolatile {
        "s" => "STABLE",
        "i" => "IMMUTABLE",
        "v" => "VOLATILE",
        other => other,
    }
}

/// TA043-TA044: SECURITY DEFINER functions are on the generated allowlist and are not
/// executable by PUBLIC. Functions of extensions are left to the extension.
pub(super) async fn security_definer(
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

/// TA045-TA047: the database speaks the context contract the generator writes for this target,
/// and (when the generator creates a key table) holds at least one active key.
pub(super) async fn context_contract(
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
