//! TA090-TA092: planner statistics on tenant-owned tables (docs/security.md, "Planner
//! statistics"). The generated migrations set statistics target 0 on every column of every
//! tenant-owned table and of the audit table, and remove what ANALYZE stored before; the
//! planner would otherwise estimate from every tenant's values, and `EXPLAIN` prints the
//! estimates to the app role.

use sqlx::PgConnection;
use tenancy_core::model::{Model, TableKind, TABLE_SCHEMA};

use super::{guarded, quote_ident};
use crate::finding::{codes, Finding};

/// `schema.table` (quoted like the generator) of every table whose columns must collect no
/// statistics: the model's tenant-owned tables and the audit table.
fn tenant_owned_tables(model: &Model) -> Vec<String> {
    let mut out: Vec<String> = model
        .tables
        .iter()
        .filter(|t| t.kind != TableKind::Global)
        .map(|t| format!("{}.{}", quote_ident(TABLE_SCHEMA), quote_ident(&t.name)))
        .collect();
    out.push(format!(
        "{}.{}",
        quote_ident(&model.settings.helper_schema),
        quote_ident("audit_log")
    ));
    out
}

/// TA090 (a column collects statistics again), TA091 (statistics holding values, i.e. a most
/// common values list, a histogram or any other slot, are stored for a column; checked only
/// when the auditing role can read `pg_statistic`, i.e. a superuser; the generator's own
/// value-free `n_distinct` row on `project_id` is not a finding), TA092
/// (an extended statistics object on one of these tables).
pub(super) async fn statistics(
    conn: &mut PgConnection,
    model: &Model,
    out: &mut Vec<Finding>,
) -> Result<(), sqlx::Error> {
    let tables = tenant_owned_tables(model);
    let collecting: Vec<(String, String)> = sqlx::query_as(
        "SELECT c.oid::regclass::text, a.attname::text \
         FROM unnest($1::text[]) AS t(name) \
         JOIN pg_catalog.pg_class c ON c.oid = pg_catalog.to_regclass(t.name) \
         JOIN pg_catalog.pg_attribute a ON a.attrelid = c.oid \
         WHERE a.attnum > 0 AND NOT a.attisdropped AND a.attstattarget IS DISTINCT FROM 0 \
         ORDER BY 1, 2",
    )
    .bind(&tables)
    .fetch_all(&mut *conn)
    .await?;
    for (table, column) in collecting {
        out.push(Finding::new(
            codes::STATISTICS_COLLECTED,
            format!("column {table}.{}", quote_ident(&column)),
            "collects planner statistics (statistics target not 0): after the next ANALYZE \
             the planner's estimates, which EXPLAIN prints to the app role, reveal other \
             tenants' values (ALTER TABLE .. ALTER COLUMN .. SET STATISTICS 0, then remove \
             the stored statistics; the generated migrations do both)",
        ));
    }

    let stored = guarded(conn, async |conn: &mut PgConnection| {
        sqlx::query_as::<_, (String, String)>(
            "SELECT DISTINCT c.oid::regclass::text, a.attname::text \
             FROM unnest($1::text[]) AS t(name) \
             JOIN pg_catalog.pg_class c ON c.oid = pg_catalog.to_regclass(t.name) \
             JOIN pg_catalog.pg_statistic s ON s.starelid = c.oid \
             JOIN pg_catalog.pg_attribute a ON a.attrelid = c.oid AND a.attnum = s.staattnum \
             WHERE s.stakind1 <> 0 OR s.stakind2 <> 0 OR s.stakind3 <> 0 OR s.stakind4 <> 0 \
                OR s.stakind5 <> 0 \
             ORDER BY 1, 2",
        )
        .bind(&tables)
        .fetch_all(conn)
        .await
    })
    .await?;
    // Not readable (no superuser): unknown, not reported; TA090 still covers the targets.
    for (table, column) in stored.unwrap_or_default() {
        out.push(Finding::new(
            codes::STATISTICS_STORED,
            format!("column {table}.{}", quote_ident(&column)),
            "has planner statistics stored (pg_statistic): the planner's estimates, which \
             EXPLAIN prints to the app role, reveal other tenants' values (PostgreSQL 18: \
             SELECT pg_clear_attribute_stats(schema, table, column, false); before 18 a \
             superuser deletes the rows of pg_statistic)",
        ));
    }

    let extended: Vec<(String, String)> = sqlx::query_as(
        "SELECT n.nspname::text || '.' || s.stxname::text, c.oid::regclass::text \
         FROM unnest($1::text[]) AS t(name) \
         JOIN pg_catalog.pg_class c ON c.oid = pg_catalog.to_regclass(t.name) \
         JOIN pg_catalog.pg_statistic_ext s ON s.stxrelid = c.oid \
         JOIN pg_catalog.pg_namespace n ON n.oid = s.stxnamespace \
         ORDER BY 1",
    )
    .bind(&tables)
    .fetch_all(&mut *conn)
    .await?;
    for (name, table) in extended {
        out.push(Finding::new(
            codes::EXTENDED_STATISTICS,
            format!("statistics {name}"),
            format!(
                "extended statistics on the tenant-owned table {table}: their most-common-value \
                 lists and dependencies are computed over every tenant's rows and feed the \
                 estimates EXPLAIN prints to the app role (DROP STATISTICS {name})"
            ),
        ));
    }
    Ok(())
}
