//! `tenancy tenant split` and `tenancy project move`: move whole projects (their rows in every
//! scoped table and their memberships) from one tenant to another in one transaction. Rows are
//! copied with only the tenant id changed (every key starts with it, so a project can exist
//! under both tenants for the moment of the copy), the copies are counted against the
//! originals, then the originals are deleted children first. Any difference rolls back.
//!
//! `tenant split --batched` moves each project in its own transaction instead (short locks on
//! a big tenant). It records `tenant.split_started` (the target and the projects) before the
//! first project and `tenant.split` after the last; the same command run again after an
//! interruption finds the unfinished start, says so, skips the projects already in the target
//! and moves the rest.

use std::fmt;

use anyhow::{bail, Context, Result};
use sqlx::{Connection, PgConnection};
use tenancy_core::model::TableKind;

use super::plan::{self, ident, TablePlan};
use super::{FoundTenant, Session};

/// Which projects move where.
#[derive(Debug, Clone)]
pub struct MoveRequest {
    /// The tenant they leave.
    pub from: String,
    /// The tenant they join.
    pub to: String,
    /// Create the target tenant with this display name.
    pub create: Option<String>,
    /// The projects' slugs.
    pub projects: Vec<String>,
    /// One transaction per project, resumable (`tenant split --batched`).
    pub batched: bool,
}

/// What a move did: rows per project and table, verified.
#[derive(Debug, Clone)]
pub struct MoveReport {
    from: String,
    to: String,
    created: bool,
    /// (project slug, [(table, rows moved)]).
    moved: Vec<(String, Vec<(String, u64)>)>,
    /// The sentence saying an interrupted batched split is resumed.
    resumed: Option<String>,
}

impl fmt::Display for MoveReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(note) = &self.resumed {
            writeln!(f, "{note}")?;
        }
        if self.created {
            writeln!(f, "created tenant {}", self.to)?;
        }
        for (project, tables) in &self.moved {
            for (table, rows) in tables {
                writeln!(f, "{project}\t{table}\t{rows}")?;
            }
            writeln!(
                f,
                "moved project {project} from {} to {} ({} rows; counts verified)",
                self.from,
                self.to,
                tables.iter().map(|(_, n)| n).sum::<u64>()
            )?;
        }
        Ok(())
    }
}

/// Moves the requested projects in one transaction (or one per project, `batched`).
pub async fn move_projects(session: &Session, request: &MoveRequest) -> Result<MoveReport> {
    if request.batched {
        return move_batched(session, request).await;
    }
    if let Some(name) = &request.create {
        tenancy_runtime::admin::validate_slug("tenant", &request.to)
            .map_err(anyhow::Error::from)?;
        tenancy_runtime::admin::validate_text("name", name).map_err(anyhow::Error::from)?;
    }
    let plans: Vec<TablePlan> = plan::tables(&session.model)
        .into_iter()
        // Tenant-level rows (the tenant row, tenant-wide roles) stay with their tenant.
        .filter(|p| !matches!(p.kind, TableKind::Tenants | TableKind::TenantMemberships))
        .collect();
    let mut conn = session.connect().await?;
    let mut tx = conn
        .begin()
        .await
        .context("could not open the transaction")?;
    super::require_privileged(&mut tx).await?;
    let from = session.require_tenant(&mut tx, &request.from).await?;
    let (to, created) = match &request.create {
        Some(name) => (
            create_tenant(session, &mut tx, &request.to, name).await?,
            true,
        ),
        None => (session.require_tenant(&mut tx, &request.to).await?, false),
    };
    if from.id == to.id {
        bail!("the projects already belong to tenant `{}`", to.slug);
    }
    let mut moved = Vec::new();
    for slug in &request.projects {
        let project = session.require_project(&mut tx, &from, slug).await?;
        if session.require_project(&mut tx, &to, slug).await.is_ok() {
            bail!(
                "tenant `{}` already has a project `{slug}`: rename one first",
                to.slug
            );
        }
        let tables = move_audited(session, &mut tx, &plans, &from, &to, slug, project).await?;
        moved.push((slug.clone(), tables));
    }
    tx.commit().await.context("could not commit the move")?;
    conn.close().await.ok();
    Ok(MoveReport {
        from: from.slug,
        to: to.slug,
        created,
        moved,
        resumed: None,
    })
}

/// Moves one project and records `project.move` on both tenants, in the caller's transaction.
async fn move_audited(
    session: &Session,
    conn: &mut PgConnection,
    plans: &[TablePlan],
    from: &FoundTenant,
    to: &FoundTenant,
    slug: &str,
    project: uuid::Uuid,
) -> Result<Vec<(String, u64)>> {
    let tables = move_one(conn, plans, from, to, project)
        .await
        .with_context(|| format!("could not move project {slug}"))?;
    let subject = serde_json::json!({
        "from_tenant_id": from.id,
        "to_tenant_id": to.id,
        "project_id": project,
        "rows": tables.iter().map(|(t, n)| (t.clone(), serde_json::Value::from(*n))).collect::<serde_json::Map<_, _>>(),
    });
    session
        .audit(conn, to.id, Some(project), "project.move", &subject)
        .await?;
    session
        .audit(conn, from.id, Some(project), "project.move", &subject)
        .await?;
    Ok(tables)
}

/// `tenant split --batched`: the start recorded (and the target created) in one transaction,
/// each project moved in its own, the end recorded; resumes an unfinished split to the same
/// target.
async fn move_batched(session: &Session, request: &MoveRequest) -> Result<MoveReport> {
    if let Some(name) = &request.create {
        tenancy_runtime::admin::validate_slug("tenant", &request.to)
            .map_err(anyhow::Error::from)?;
        tenancy_runtime::admin::validate_text("name", name).map_err(anyhow::Error::from)?;
    }
    let plans: Vec<TablePlan> = plan::tables(&session.model)
        .into_iter()
        // Tenant-level rows (the tenant row, tenant-wide roles) stay with their tenant.
        .filter(|p| !matches!(p.kind, TableKind::Tenants | TableKind::TenantMemberships))
        .collect();
    let mut conn = session.connect().await?;
    super::require_privileged(&mut conn).await?;
    let from = session.require_tenant(&mut conn, &request.from).await?;
    let started = unfinished_split(session, &mut conn, &from, &request.to).await?;
    let mut tx = conn
        .begin()
        .await
        .context("could not open the transaction")?;
    let (to, created) = match (&request.create, session.tenant(&mut tx, &request.to).await?) {
        (_, Some(existing)) if started.is_some() => (existing, false),
        (Some(name), _) => (
            create_tenant(session, &mut tx, &request.to, name).await?,
            true,
        ),
        (None, _) => (session.require_tenant(&mut tx, &request.to).await?, false),
    };
    if from.id == to.id {
        bail!("the projects already belong to tenant `{}`", to.slug);
    }
    // Every project is checked before the first moves: in the source (to move), or, when
    // resuming, already in the target.
    let mut pending = Vec::new();
    let mut done = Vec::new();
    for slug in &request.projects {
        let in_source = session.require_project(&mut tx, &from, slug).await.ok();
        let in_target = session.require_project(&mut tx, &to, slug).await.is_ok();
        match (in_source, in_target) {
            (Some(project), false) => pending.push((slug.clone(), project)),
            (None, true) if started.is_some() => done.push(slug.clone()),
            (Some(_), true) => bail!(
                "tenant `{}` already has a project `{slug}`: rename one first",
                to.slug
            ),
            (None, true) => bail!(
                "project `{slug}` is already in tenant `{}`, and no split into it is unfinished",
                to.slug
            ),
            _ => {
                session.require_project(&mut tx, &from, slug).await?;
            }
        }
    }
    if started.is_none() {
        let subject = serde_json::json!({
            "to_tenant_id": to.id,
            "to": to.slug,
            "projects": request.projects,
        });
        session
            .audit(&mut tx, from.id, None, "tenant.split_started", &subject)
            .await?;
    }
    tx.commit()
        .await
        .context("could not record the start of the split")?;
    let resumed = started.map(|(actor, at)| {
        let moved = if done.is_empty() {
            "none of the projects had moved yet".to_owned()
        } else {
            format!("already moved: {}", done.join(", "))
        };
        format!(
            "resuming the split of tenant {} into {} that {actor} started at {at} UTC ({moved})",
            from.slug, to.slug
        )
    });
    let mut moved = Vec::new();
    for (slug, project) in pending {
        let mut tx = conn.begin().await.context("could not open a transaction")?;
        let tables = move_audited(session, &mut tx, &plans, &from, &to, &slug, project).await?;
        tx.commit()
            .await
            .with_context(|| format!("could not commit the move of project {slug}"))?;
        moved.push((slug, tables));
    }
    let subject = serde_json::json!({
        "to_tenant_id": to.id,
        "to": to.slug,
        "projects": request.projects,
        "resumed": resumed.is_some(),
    });
    let mut tx = conn.begin().await.context("could not open a transaction")?;
    session
        .audit(&mut tx, from.id, None, "tenant.split", &subject)
        .await?;
    tx.commit()
        .await
        .context("could not record the end of the split")?;
    conn.close().await.ok();
    Ok(MoveReport {
        from: from.slug,
        to: to.slug,
        created,
        moved,
        resumed,
    })
}

/// (actor, time) of a batched split of `from` into `to` that started and did not finish: a
/// `tenant.split_started` naming `to` with no `tenant.split` after it.
async fn unfinished_split(
    session: &Session,
    conn: &mut PgConnection,
    from: &FoundTenant,
    to: &str,
) -> Result<Option<(String, String)>> {
    let row: Option<(String, String)> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT actor, to_char(at AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS') FROM {0} s \
         WHERE tenant_id = $1 AND action = 'tenant.split_started' AND subject ->> 'to' = $2 \
           AND NOT EXISTS (SELECT 1 FROM {0} e WHERE e.tenant_id = $1 \
             AND e.action = 'tenant.split' AND e.id > s.id) \
         ORDER BY id DESC LIMIT 1",
        session.audit_table()
    )))
    .bind(from.id)
    .bind(to)
    .fetch_optional(conn)
    .await
    .context("could not read the audit table")?;
    Ok(row)
}

async fn create_tenant(
    session: &Session,
    conn: &mut PgConnection,
    slug: &str,
    name: &str,
) -> Result<FoundTenant> {
    if session.tenant(conn, slug).await?.is_some() {
        bail!("tenant `{slug}` already exists: drop --create to move into it");
    }
    let id: uuid::Uuid = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
        "INSERT INTO {} (slug, name) VALUES ($1, $2) RETURNING id",
        ident(&session.tenants_table)
    )))
    .bind(slug)
    .bind(name)
    .fetch_one(&mut *conn)
    .await
    .context("could not create the tenant")?;
    session
        .audit(
            conn,
            id,
            None,
            "tenant.create",
            &serde_json::json!({ "tenant_id": id }),
        )
        .await?;
    Ok(FoundTenant {
        id,
        slug: slug.to_owned(),
    })
}

/// Copies one project's rows (parents first), checks the counts, deletes the originals
/// (children first) and checks again.
async fn move_one(
    conn: &mut PgConnection,
    plans: &[TablePlan],
    from: &FoundTenant,
    to: &FoundTenant,
    project: uuid::Uuid,
) -> Result<Vec<(String, u64)>> {
    let mut copied = Vec::new();
    for plan in plans {
        let Some(project_column) = &plan.project_column else {
            continue;
        };
        let where_old = format!(
            "{} = $1 AND {} = $3",
            ident(&plan.tenant_column),
            ident(project_column)
        );
        let before: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
            "SELECT count(*) FROM {} WHERE {where_old}",
            plan.quoted()
        )))
        .bind(from.id)
        .bind(to.id)
        .bind(project)
        .fetch_one(&mut *conn)
        .await?;
        let values: Vec<String> = plan
            .columns
            .iter()
            .map(|c| {
                if c.name == plan.tenant_column {
                    "CAST($2 AS uuid)".to_owned()
                } else {
                    ident(&c.name)
                }
            })
            .collect();
        let inserted = sqlx::query(sqlx::AssertSqlSafe(format!(
            "INSERT INTO {t} ({cols}) SELECT {values} FROM {t} WHERE {where_old}",
            t = plan.quoted(),
            cols = plan.column_list(),
            values = values.join(", ")
        )))
        .bind(from.id)
        .bind(to.id)
        .bind(project)
        .execute(&mut *conn)
        .await?
        .rows_affected();
        if inserted != before as u64 {
            bail!("table {}: copied {inserted} of {before} rows", plan.name);
        }
        copied.push((plan, inserted));
    }
    for (plan, inserted) in copied.iter().rev() {
        let Some(project_column) = &plan.project_column else {
            continue;
        };
        let deleted = sqlx::query(sqlx::AssertSqlSafe(format!(
            "DELETE FROM {} WHERE {} = $1 AND {} = $2",
            plan.quoted(),
            ident(&plan.tenant_column),
            ident(project_column)
        )))
        .bind(from.id)
        .bind(project)
        .execute(&mut *conn)
        .await?
        .rows_affected();
        let after: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
            "SELECT count(*) FROM {} WHERE {} = $1 AND {} = $2",
            plan.quoted(),
            ident(&plan.tenant_column),
            ident(project_column)
        )))
        .bind(to.id)
        .bind(project)
        .fetch_one(&mut *conn)
        .await?;
        if deleted != *inserted || after as u64 != *inserted {
            bail!(
                "table {}: {inserted} rows copied but {deleted} deleted and {after} found under the new tenant",
                plan.name
            );
        }
    }
    Ok(copied
        .into_iter()
        .map(|(plan, rows)| (plan.name.clone(), rows))
        .collect())
}
