//! `tenancy tenant delete TENANT --confirm TENANT`: refuses unless an export matches the
//! tenant's current rows exactly (or `--no-export-i-am-sure`), records `tenant.delete_started`,
//! deletes children before parents in short batches (one transaction each), then deletes the
//! tenant row and records `tenant.delete` with the counts in the same transaction.
//!
//! A delete that is killed leaves `tenant.delete_started` without the tenant being gone; the
//! next run with the same command resumes it (the export was verified when it started).

use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use sqlx::{Connection, PgConnection};
use tenancy_core::model::TableKind;

use super::export::current_digest;
use super::manifest::Manifest;
use super::plan::{self, ident, TablePlan};
use super::progress::Progress;
use super::{FoundTenant, Session};

/// How to delete.
#[derive(Debug, Clone)]
pub struct DeleteOptions {
    /// The export that must match the tenant's rows; `None` skips the check.
    pub export: Option<PathBuf>,
    /// Rows per delete transaction.
    pub batch: i64,
}

/// What a delete did.
#[derive(Debug, Clone)]
pub struct DeleteReport {
    /// Set when this run resumed an interrupted delete: one sentence saying so.
    pub resumed: Option<String>,
    /// Rows deleted per table by this run, children first.
    pub counts: Vec<(String, u64)>,
}

/// Deletes the tenant with `slug` and all its rows.
pub async fn delete(
    session: &Session,
    slug: &str,
    options: &DeleteOptions,
) -> Result<DeleteReport> {
    let plans = plan::tables(&session.model);
    let mut conn = session.connect().await?;
    super::require_privileged(&mut conn).await?;
    let tenant = session.require_tenant(&mut conn, slug).await?;
    let resumed = interrupted(session, &mut conn, &tenant).await?;
    if resumed.is_none() {
        let verified = match &options.export {
            Some(dir) => {
                verify_export(&mut conn, &plans, &session.model.roles, &tenant, dir).await?;
                true
            }
            None => false,
        };
        let subject = serde_json::json!({
            "tenant_id": tenant.id,
            "slug": tenant.slug,
            "export_verified": verified,
        });
        let mut tx = conn.begin().await.context("could not open a transaction")?;
        session
            .audit(&mut tx, tenant.id, None, "tenant.delete_started", &subject)
            .await?;
        tx.commit()
            .await
            .context("could not record the start of the delete")?;
    }

    let progress = Progress::for_stderr();
    let mut counts = Vec::new();
    // Scoped tables in reverse dependency order, and the tenant-wide roles, each in batches.
    for plan in plans
        .iter()
        .rev()
        .filter(|p| matches!(p.kind, TableKind::Scoped | TableKind::TenantMemberships))
    {
        let rows = delete_batches(&mut conn, plan, tenant.id, options.batch, &progress)
            .await
            .with_context(|| format!("could not delete the rows of table {}", plan.name))?;
        counts.push((plan.name.clone(), rows));
    }
    counts.extend(delete_projects(&mut conn, &plans, tenant.id).await?);
    let mut tx = conn.begin().await.context("could not open a transaction")?;
    for plan in plans.iter().filter(|p| p.kind == TableKind::Tenants) {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "DELETE FROM {} WHERE {} = $1",
            plan.quoted(),
            ident(&plan.tenant_column)
        )))
        .bind(tenant.id)
        .execute(&mut *tx)
        .await
        .context("could not delete the tenant row")?
        .rows_affected();
        counts.push((plan.name.clone(), rows));
    }
    let subject = serde_json::json!({
        "tenant_id": tenant.id,
        "slug": tenant.slug,
        "resumed": resumed.is_some(),
        "rows": counts.iter().map(|(t, n)| (t.clone(), serde_json::Value::from(*n))).collect::<serde_json::Map<_, _>>(),
    });
    session
        .audit(&mut tx, tenant.id, None, "tenant.delete", &subject)
        .await?;
    tx.commit()
        .await
        .context("could not commit the delete of the tenant row")?;
    conn.close().await.ok();
    Ok(DeleteReport { resumed, counts })
}

/// A sentence when an earlier delete of this tenant started and did not finish (a
/// `tenant.delete_started` newer than the tenant's last create, import or delete: a tenant
/// deleted and imported again is verified again).
async fn interrupted(
    session: &Session,
    conn: &mut PgConnection,
    tenant: &FoundTenant,
) -> Result<Option<String>> {
    let row: Option<(String, String)> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT actor, to_char(at AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS') FROM {0} \
         WHERE tenant_id = $1 AND action = 'tenant.delete_started' \
           AND id > COALESCE((SELECT max(id) FROM {0} WHERE tenant_id = $1 \
             AND action IN ('tenant.delete', 'tenant.import', 'tenant.create')), 0) \
         ORDER BY id DESC LIMIT 1",
        session.audit_table()
    )))
    .bind(tenant.id)
    .fetch_optional(conn)
    .await
    .context("could not read the audit table")?;
    Ok(row.map(|(actor, at)| {
        format!(
            "resuming the delete of tenant {} that {actor} started at {at} UTC (its export was checked then)",
            tenant.slug
        )
    }))
}

/// Refuses unless the export in `dir` is intact, of this tenant, and equal to its rows now.
async fn verify_export(
    conn: &mut PgConnection,
    plans: &[TablePlan],
    roles: &[String],
    tenant: &FoundTenant,
    dir: &std::path::Path,
) -> Result<()> {
    let manifest = Manifest::read(dir)?;
    if manifest.tenant.id != tenant.id {
        bail!(
            "the export in {} is of tenant `{}` ({}), not of `{}` ({})",
            dir.display(),
            manifest.tenant.slug,
            manifest.tenant.id,
            tenant.slug,
            tenant.id
        );
    }
    manifest.check_compatible(plans, roles)?;
    manifest.verify_files(dir)?;
    for (table, rows, sha256) in current_digest(conn, plans, tenant.id).await? {
        let Some(entry) = manifest.tables.iter().find(|t| t.table == table) else {
            bail!(
                "the export in {} has no file for table {table}",
                dir.display()
            );
        };
        if entry.rows != rows || entry.sha256 != sha256 {
            bail!(
                "the export in {} is older than the tenant's last write (table {table}: {} rows \
                 exported, {rows} now{}): export again, or pass --no-export-i-am-sure",
                dir.display(),
                entry.rows,
                if entry.rows == rows {
                    ", contents differ"
                } else {
                    ""
                }
            );
        }
    }
    Ok(())
}

/// Deletes the tenant's projects one per transaction, each with its memberships: the core
/// refuses at commit to leave an existing project without a member of the top role, so a
/// project's memberships can only go together with the project row.
async fn delete_projects(
    conn: &mut PgConnection,
    plans: &[TablePlan],
    tenant: uuid::Uuid,
) -> Result<Vec<(String, u64)>> {
    let projects = plans.iter().find(|p| p.kind == TableKind::Projects);
    let memberships = plans.iter().find(|p| p.kind == TableKind::Memberships);
    let (Some(projects), Some(memberships)) = (projects, memberships) else {
        bail!("the policies declare no projects or memberships table");
    };
    let project_column = projects.project_column.as_deref().unwrap_or("id");
    let ids: Vec<uuid::Uuid> = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
        "SELECT {} FROM {} WHERE {} = $1",
        ident(project_column),
        projects.quoted(),
        ident(&projects.tenant_column)
    )))
    .bind(tenant)
    .fetch_all(&mut *conn)
    .await
    .context("could not list the tenant's projects")?;
    let mut counts = [(memberships, 0u64), (projects, 0u64)];
    for id in ids {
        let mut tx = conn.begin().await?;
        for (plan, count) in &mut counts {
            let column = plan.project_column.as_deref().unwrap_or("id");
            *count += sqlx::query(sqlx::AssertSqlSafe(format!(
                "DELETE FROM {} WHERE {} = $1 AND {} = $2",
                plan.quoted(),
                ident(&plan.tenant_column),
                ident(column)
            )))
            .bind(tenant)
            .bind(id)
            .execute(&mut *tx)
            .await
            .with_context(|| format!("could not delete project {id} from table {}", plan.name))?
            .rows_affected();
        }
        tx.commit()
            .await
            .with_context(|| format!("could not delete project {id}"))?;
    }
    Ok(counts
        .into_iter()
        .map(|(plan, count)| (plan.name.clone(), count))
        .collect())
}

/// Deletes the tenant's rows of one table, `batch` rows per committed transaction.
async fn delete_batches(
    conn: &mut PgConnection,
    plan: &TablePlan,
    tenant: uuid::Uuid,
    batch: i64,
    progress: &Progress,
) -> Result<u64> {
    let statement = format!(
        "DELETE FROM {t} WHERE ctid = ANY (ARRAY(SELECT ctid FROM {t} WHERE {c} = $1 LIMIT $2))",
        t = plan.quoted(),
        c = ident(&plan.tenant_column)
    );
    let mut total = 0u64;
    loop {
        let mut tx = conn.begin().await?;
        let rows = sqlx::query(sqlx::AssertSqlSafe(statement.as_str()))
            .bind(tenant)
            .bind(batch)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        tx.commit().await?;
        total += rows;
        progress.rows(&plan.name, total);
        if rows == 0 {
            break;
        }
    }
    progress.done(&plan.name, total);
    Ok(total)
}
