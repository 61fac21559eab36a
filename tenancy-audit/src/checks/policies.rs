//! Row-level-security policies exactly as generated (TA010-TA012).

use super::*;

/// One row of `pg_policy`, deparsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct PolicyRow {
    table: String,
    name: String,
    permissive: bool,
    command: String,
    roles: Vec<String>,
    using: Option<String>,
    with_check: Option<String>,
}

/// The policies of every table in the schema selected by `namespace_sql` (an expression).
pub(super) async fn read_policies(
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
pub(super) fn command_sql(polcmd: &str) -> &str {
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
pub(super) async fn policies(
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
pub(super) fn policy_differences(wanted: &PolicyRow, found: &PolicyRow) -> Vec<String> {
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
