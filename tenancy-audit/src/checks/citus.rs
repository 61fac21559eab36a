//! TA100-TA107: what a Citus coordinator needs beyond the policies (docs/citus.md), checked
//! when the audit runs for the Citus target. Citus has its own ways to lose tenant isolation:
//! a tenant table left local (or distributed by another column, or outside the tenant tree's
//! colocation group), a policy Citus does not carry to the shards as written (`AS RESTRICTIVE`
//! becomes permissive on the shards, citus#7182), or a shard whose policies were changed on a
//! worker. The shards are read through `run_command_on_shards` (the auditing role connects to
//! the workers, so audit as a superuser).

use std::collections::BTreeMap;

use sqlx::PgConnection;
use tenancy_core::model::{Model, Table, TableKind, TABLE_SCHEMA, TENANT_COLUMN};

use super::{guarded, quote_ident};
use crate::finding::{codes, Finding};

/// How the generator places one table on Citus.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Placement {
    /// Hash-distributed by `tenant_id`, in the projects table's colocation group.
    Distributed,
    /// A reference table (a copy on every node).
    Reference,
}

/// Every table the Citus target creates as a Citus table: (`schema.table` as the generator
/// quotes it, whether it is tenant-owned, placement).
fn expected_tables(model: &Model) -> Vec<(String, bool, Placement)> {
    let qualified =
        |schema: &str, table: &str| format!("{}.{}", quote_ident(schema), quote_ident(table));
    let mut out: Vec<(String, bool, Placement)> = model
        .tables
        .iter()
        .map(|t: &Table| {
            let placement = match t.kind {
                TableKind::Tenants | TableKind::Global => Placement::Reference,
                _ => Placement::Distributed,
            };
            (
                qualified(TABLE_SCHEMA, &t.name),
                t.kind.is_tenant_owned(),
                placement,
            )
        })
        .collect();
    out.push((
        qualified(&model.settings.helper_schema, "audit_log"),
        true,
        Placement::Distributed,
    ));
    out
}

/// One table's policies as text, one line per policy (`name|cmd|permissive|roles|using|check`),
/// then `#<rls enabled><rls forced>`. The same query runs on the coordinator (for the table)
/// and on every shard (`%1$s` is the shard's name).
const POLICIES_SQL: &str = "SELECT coalesce(string_agg(p.polname::text || '|' || p.polcmd::text || '|' \
     || p.polpermissive::text || '|' || coalesce((SELECT string_agg(pg_catalog.pg_get_userbyid(r), ',' \
     ORDER BY 1) FROM unnest(p.polroles) AS r), '') || '|' || coalesce(pg_catalog.pg_get_expr(p.polqual, \
     p.polrelid), '') || '|' || coalesce(pg_catalog.pg_get_expr(p.polwithcheck, p.polrelid), ''), E'\\n' \
     ORDER BY p.polname), '') || E'\\n#' || (SELECT c.relrowsecurity::text || c.relforcerowsecurity::text \
     FROM pg_catalog.pg_class AS c WHERE c.oid = '%1$s'::regclass) \
     FROM pg_catalog.pg_policy AS p WHERE p.polrelid = '%1$s'::regclass";

/// TA100 (no citus extension), TA101 (a table the generator distributes is not hash-distributed
/// by `tenant_id`), TA102 (the tenants table or a global table is not a reference table), TA103
/// (a distributed table outside the projects table's colocation group), TA106 (a policy of a
/// tenant-owned Citus table that the shards would not enforce as written: restrictive, or
/// without the tenant check), TA104 (a shard whose row-level security or policies differ from
/// its table's on the coordinator), TA105 (the shards could not be read).
pub(super) async fn citus(
    conn: &mut PgConnection,
    model: &Model,
    out: &mut Vec<Finding>,
) -> Result<(), sqlx::Error> {
    let installed: bool = sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_extension WHERE extname = 'citus')",
    )
    .fetch_one(&mut *conn)
    .await?;
    if !installed {
        out.push(Finding::new(
            codes::CITUS_MISSING,
            "extension citus",
            "audited for the Citus target, but the database has no citus extension: audit the \
             Citus coordinator's database, or audit with --target postgres",
        ));
        return Ok(());
    }
    // (schema.table, partition method, replication model, distribution column, colocation).
    let rows: Vec<(String, String, String, Option<String>, i32)> = sqlx::query_as(
        "SELECT pg_catalog.quote_ident(n.nspname) || '.' || pg_catalog.quote_ident(c.relname), \
                d.partmethod::text, d.repmodel::text, \
                CASE WHEN d.partmethod = 'h' \
                     THEN pg_catalog.column_to_column_name(d.logicalrelid, d.partkey) END, \
                d.colocationid \
         FROM pg_catalog.pg_dist_partition AS d \
         JOIN pg_catalog.pg_class AS c ON c.oid = d.logicalrelid \
         JOIN pg_catalog.pg_namespace AS n ON n.oid = c.relnamespace",
    )
    .fetch_all(&mut *conn)
    .await?;
    let live: BTreeMap<String, (String, String, Option<String>, i32)> = rows
        .into_iter()
        .map(|(name, method, model, column, colocation)| {
            (name, (method, model, column, colocation))
        })
        .collect();
    let expected = expected_tables(model);
    let anchor = model
        .core_table(TableKind::Projects)
        .map(|t| format!("{}.{}", quote_ident(TABLE_SCHEMA), quote_ident(&t.name)));
    let group = anchor
        .as_ref()
        .and_then(|a| live.get(a))
        .filter(|(method, ..)| method == "h")
        .map(|(.., colocation)| *colocation);
    let mut checked_shards = Vec::new();
    for (table, tenant_owned, placement) in &expected {
        let exists: bool = sqlx::query_scalar("SELECT pg_catalog.to_regclass($1) IS NOT NULL")
            .bind(table)
            .fetch_one(&mut *conn)
            .await?;
        if !exists {
            // TA001 reports a missing model table.
            continue;
        }
        let object = format!("table {table}");
        let state = live.get(table);
        match placement {
            Placement::Distributed => match state {
                Some((method, _, Some(column), colocation))
                    if method == "h" && column == TENANT_COLUMN =>
                {
                    if group.is_some_and(|g| g != *colocation) {
                        out.push(Finding::new(
                            codes::CITUS_NOT_COLOCATED,
                            object.clone(),
                            format!(
                                "is distributed by {TENANT_COLUMN} but not co-located with {}: a \
                                 tenant's rows of it live on other workers than the rest of the \
                                 tenant, joins and transactions of one tenant span workers, and \
                                 isolating the tenant leaves them behind (update_distributed_table_colocation)",
                                anchor.as_deref().unwrap_or("the projects table")
                            ),
                        ));
                    }
                }
                Some((method, ..)) if method == "h" => out.push(Finding::new(
                    codes::CITUS_NOT_DISTRIBUTED,
                    object.clone(),
                    format!(
                        "is hash-distributed by another column than {TENANT_COLUMN}: a query that \
                         names its tenant is not routed to one shard, and a tenant's rows are \
                         spread over every worker (alter_distributed_table(..., distribution_column => '{TENANT_COLUMN}'))"
                    ),
                )),
                _ => out.push(Finding::new(
                    codes::CITUS_NOT_DISTRIBUTED,
                    object.clone(),
                    format!(
                        "is not distributed by {TENANT_COLUMN} (a local or reference table): its \
                         rows stay on the coordinator or are copied to every node, outside the \
                         tenant's shard group (create_distributed_table('{table}', '{TENANT_COLUMN}', \
                         colocate_with => '{}'), as the generated migrations do)",
                        anchor.as_deref().unwrap_or("public.projects")
                    ),
                )),
            },
            Placement::Reference => {
                let reference = state.is_some_and(|(method, repmodel, ..)| method == "n" && repmodel == "t");
                if !reference {
                    out.push(Finding::new(
                        codes::CITUS_NOT_REFERENCE,
                        object.clone(),
                        format!(
                            "is not a reference table: its unique keys are not enforced across \
                             the cluster and the distributed tables cannot reference it \
                             (create_reference_table('{table}'), as the generated migrations do)"
                        ),
                    ));
                }
            }
        }
        if *tenant_owned && state.is_some() {
            folded_policies(conn, model, table, out).await?;
            checked_shards.push(table.clone());
        }
    }
    for table in checked_shards {
        shard_policies(conn, &table, out).await?;
    }
    let app = &model.settings.app_role;
    let assigns: Option<bool> = sqlx::query_scalar(
        "SELECT pg_catalog.has_function_privilege(r.oid, \
           'pg_catalog.assign_distributed_transaction_id(integer, bigint, timestamp with time zone)', \
           'EXECUTE') FROM pg_catalog.pg_roles AS r WHERE r.rolname = $1",
    )
    .bind(app)
    .fetch_optional(&mut *conn)
    .await?;
    if assigns == Some(true) {
        out.push(Finding::new(
            codes::CITUS_TRANSACTION_NUMBER,
            format!("role {}", quote_ident(app)),
            "can execute assign_distributed_transaction_id on the coordinator: it can choose the \
             distributed transaction number the context seal is bound to and replay a seal of \
             its own earlier transaction (REVOKE EXECUTE ON FUNCTION \
             pg_catalog.assign_distributed_transaction_id(integer, bigint, timestamptz) FROM \
             PUBLIC on the coordinator, as a superuser; the generated core migration does)",
        ));
    }
    Ok(())
}

/// TA106: Citus creates every policy on the shards as PERMISSIVE, so on a tenant-owned Citus
/// table each policy must carry the tenant check itself and none may be restrictive.
async fn folded_policies(
    conn: &mut PgConnection,
    model: &Model,
    table: &str,
    out: &mut Vec<Finding>,
) -> Result<(), sqlx::Error> {
    let check = format!(
        "{}.current_tenant_id()",
        quote_ident(&model.settings.helper_schema)
    );
    let policies: Vec<(String, bool, Option<String>, Option<String>)> = sqlx::query_as(
        "SELECT p.polname::text, p.polpermissive, pg_catalog.pg_get_expr(p.polqual, p.polrelid), \
                pg_catalog.pg_get_expr(p.polwithcheck, p.polrelid) \
         FROM pg_catalog.pg_policy AS p WHERE p.polrelid = $1::regclass ORDER BY 1",
    )
    .bind(table)
    .fetch_all(&mut *conn)
    .await?;
    for (name, permissive, using, with_check) in policies {
        let object = format!("policy {name} on {table}");
        if !permissive {
            out.push(Finding::new(
                codes::CITUS_POLICY_NOT_FOLDED,
                object,
                "is RESTRICTIVE: Citus creates it on the shards as PERMISSIVE, where it is OR-ed \
                 with the other policies and lets every row it matches through (citus#7182); on \
                 Citus the tenant check belongs inside every permissive policy (generate with \
                 --target citus)",
            ));
            continue;
        }
        let unchecked = [using, with_check]
            .into_iter()
            .flatten()
            .any(|expr| !expr.contains(&check));
        if unchecked {
            out.push(Finding::new(
                codes::CITUS_POLICY_NOT_FOLDED,
                object,
                format!(
                    "has no tenant check ({check}): on Citus no restrictive policy bounds it on \
                     the shards, so it admits rows of every tenant it matches (generate with \
                     --target citus, which ANDs the tenant check into every policy)"
                ),
            ));
        }
    }
    Ok(())
}

/// TA104 / TA105: every shard of `table` has row-level security enabled and forced and the
/// same policies as the table on the coordinator (name, command, kind, roles, expressions).
async fn shard_policies(
    conn: &mut PgConnection,
    table: &str,
    out: &mut Vec<Finding>,
) -> Result<(), sqlx::Error> {
    let local: String = sqlx::query_scalar(sqlx::AssertSqlSafe(
        POLICIES_SQL.replace("%1$s", &table.replace('\'', "''")),
    ))
    .fetch_one(&mut *conn)
    .await?;
    let shards = guarded(conn, async |c: &mut PgConnection| {
        sqlx::query_as::<_, (i64, bool, String)>(
            "SELECT r.shardid, r.success, r.result \
             FROM pg_catalog.run_command_on_shards($1::regclass, $2) AS r ORDER BY 1",
        )
        .bind(table)
        .bind(POLICIES_SQL)
        .fetch_all(c)
        .await
    })
    .await?;
    let shards = match shards {
        Ok(shards) => shards,
        Err(err) => {
            out.push(Finding::new(
                codes::CITUS_UNCHECKED,
                format!("table {table}"),
                format!(
                    "could not read the policies of its shards on the workers ({err}): audit the \
                     Citus coordinator as a superuser"
                ),
            ));
            return Ok(());
        }
    };
    for (shard, success, result) in shards {
        let object = format!("shard {shard} of {table}");
        if !success {
            out.push(Finding::new(
                codes::CITUS_UNCHECKED,
                object,
                format!("could not read its policies on its worker: {result}"),
            ));
            continue;
        }
        if result != local {
            let (policies, rls) = result.rsplit_once("\n#").unwrap_or((result.as_str(), ""));
            let detail = if !rls.starts_with("truetrue") && !rls.is_empty() {
                "row-level security is not enabled and forced on it".to_owned()
            } else {
                format!(
                    "its policies differ from the table's on the coordinator (expected {:?}, \
                     found {:?})",
                    local.rsplit_once("\n#").map_or(local.as_str(), |(p, _)| p),
                    policies
                )
            };
            out.push(Finding::new(
                codes::CITUS_SHARD_POLICY,
                object,
                format!(
                    "{detail}: the workers evaluate the shard's policies, not the coordinator's \
                     (re-create the policies on the coordinator, which Citus propagates to the \
                     shards, or fix the shard on its worker)"
                ),
            ));
        }
    }
    Ok(())
}
