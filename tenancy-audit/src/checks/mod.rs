//! The catalog checks. Each function reads one part of the catalogs and pushes findings.

mod citus;
mod functions;
mod policies;
mod posture;
mod schema;
mod statistics;

use functions::{context_contract, helpers, security_definer};
use policies::policies;
use posture::{app_role, role_posture, undeclared_relations, ungenerated_grants};
use schema::{foreign_keys, scope_columns, tables, triggers, unique_keys, views};

use std::collections::{BTreeMap, BTreeSet};

use sqlx::PgConnection;
use tenancy_core::model::{Model, Table, TableKind, PROJECT_COLUMN, TENANT_COLUMN};
use tenancy_core::sql::Target;

use crate::finding::{codes, Finding};
use crate::generated::Expected;

/// Schemas that hold user objects (not the system catalogs, toast or temporary schemas).
const USER_SCHEMA: &str = "(n.nspname !~ '^pg_' AND n.nspname <> 'information_schema')";

use tenancy_core::model::TABLE_SCHEMA;

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
    triggers(conn, expected, &mut out).await?;
    policies(conn, model, expected, &existing, &mut out).await?;
    app_role(conn, model, &mut out).await?;
    helpers(conn, model, expected, &mut out).await?;
    security_definer(conn, expected, &mut out).await?;
    context_contract(conn, model, expected, target, &mut out).await?;
    views(conn, model, &mut out).await?;
    role_posture(conn, model, &mut out).await?;
    undeclared_relations(conn, model, expected, &mut out).await?;
    ungenerated_grants(conn, model, expected, &mut out).await?;
    statistics::statistics(conn, model, &mut out).await?;
    if target == Target::Citus {
        citus::citus(conn, model, &mut out).await?;
    }
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
