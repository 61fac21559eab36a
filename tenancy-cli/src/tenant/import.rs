//! `tenancy tenant import DIR [--as SLUG] [--merge]`: verifies the manifest (format, model
//! compatibility, every file's row count and SHA-256) before touching the database, then loads
//! every file in one transaction with bulk INSERTs (COPY is refused under row-level security),
//! parents first. Any error rolls everything back.

use std::io::{BufRead, BufReader};
use std::path::Path;

use anyhow::{bail, Context, Result};
use sha2::{Digest, Sha256};
use sqlx::{Connection, PgConnection};
use tenancy_core::model::TableKind;

use super::manifest::{self, Manifest};
use super::plan::{self, ident, TablePlan};
use super::progress::Progress;
use super::Session;

/// Lines inserted per statement.
const BATCH_ROWS: usize = 500;

/// How to import.
#[derive(Debug, Clone, Default)]
pub struct ImportOptions {
    /// Import as a new tenant with this slug (new tenant id).
    pub as_tenant: Option<String>,
    /// Load into the tenant of that slug when it exists.
    pub merge: bool,
}

/// What an import did.
#[derive(Debug, Clone)]
pub struct ImportReport {
    /// The tenant the rows went into.
    pub tenant_id: uuid::Uuid,
    /// Its slug.
    pub slug: String,
    /// Rows inserted per table, in load order.
    pub counts: Vec<(String, u64)>,
}

/// Where the rows go.
struct Target {
    id: uuid::Uuid,
    slug: String,
    /// The tenant row exists already (`--merge`): its file is not loaded.
    existing: bool,
}

/// Imports the export in `dir`.
pub async fn import(
    session: &Session,
    dir: &Path,
    options: &ImportOptions,
) -> Result<ImportReport> {
    let plans = plan::tables(&session.model);
    let manifest = Manifest::read(dir)?;
    manifest.check_compatible(&plans, &session.model.roles)?;
    manifest.verify_files(dir)?;
    if let Some(slug) = &options.as_tenant {
        tenancy_runtime::admin::validate_slug("tenant", slug).map_err(anyhow::Error::from)?;
    }

    let mut conn = session.connect().await?;
    let mut tx = conn
        .begin()
        .await
        .context("could not open the import transaction")?;
    super::require_privileged(&mut tx).await?;
    let target = target(session, &mut tx, &manifest, options).await?;
    let progress = Progress::for_stderr();
    let mut counts = Vec::new();
    for plan in &plans {
        let Some(entry) = manifest.tables.iter().find(|t| t.table == plan.name) else {
            continue;
        };
        if plan.kind == TableKind::Tenants && target.existing {
            continue;
        }
        let path = dir.join(&entry.file);
        let (rows, sha256) = load_file(&mut tx, plan, &path, &target, &progress)
            .await
            .with_context(|| {
                format!(
                    "could not import {} into table {}",
                    path.display(),
                    plan.name
                )
            })?;
        if rows != entry.rows || sha256 != entry.sha256 {
            bail!(
                "{} changed while it was being imported: nothing was imported",
                path.display()
            );
        }
        counts.push((plan.name.clone(), rows));
    }
    let subject = serde_json::json!({
        "source_tenant_id": manifest.tenant.id,
        "source_slug": manifest.tenant.slug,
        "merged": target.existing,
        "rows": counts.iter().map(|(t, n)| (t.clone(), serde_json::Value::from(*n))).collect::<serde_json::Map<_, _>>(),
    });
    session
        .audit(&mut tx, target.id, None, "tenant.import", &subject)
        .await?;
    tx.commit().await.context("could not commit the import")?;
    conn.close().await.ok();
    Ok(ImportReport {
        tenant_id: target.id,
        slug: target.slug,
        counts,
    })
}

/// Decides the tenant id and slug the rows go into, refusing an existing tenant unless
/// `--merge`.
async fn target(
    session: &Session,
    conn: &mut PgConnection,
    manifest: &Manifest,
    options: &ImportOptions,
) -> Result<Target> {
    let slug = options
        .as_tenant
        .clone()
        .unwrap_or_else(|| manifest.tenant.slug.clone());
    if let Some(found) = session.tenant(conn, &slug).await? {
        if !options.merge {
            bail!(
                "tenant `{slug}` already exists: import refuses to merge into it (pass --merge to \
                 add the rows to it, or --as NEW_SLUG to import as a new tenant)"
            );
        }
        return Ok(Target {
            id: found.id,
            slug,
            existing: true,
        });
    }
    let id = if options.as_tenant.is_some() {
        uuid::Uuid::new_v4()
    } else {
        manifest.tenant.id
    };
    let taken: Option<String> = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
        "SELECT slug FROM {} WHERE id = $1",
        ident(&session.tenants_table)
    )))
    .bind(id)
    .fetch_optional(&mut *conn)
    .await
    .context("could not look the tenant id up")?;
    if let Some(other) = taken {
        bail!(
            "the exported tenant's id {id} belongs to tenant `{other}` here: import with --as NEW_SLUG"
        );
    }
    Ok(Target {
        id,
        slug,
        existing: false,
    })
}

/// Inserts every line of `path` into the plan's table in batches; returns the rows and the
/// file's SHA-256 as read.
async fn load_file(
    conn: &mut PgConnection,
    plan: &TablePlan,
    path: &Path,
    target: &Target,
    progress: &Progress,
) -> Result<(u64, String)> {
    let file =
        std::fs::File::open(path).with_context(|| format!("could not open {}", path.display()))?;
    let mut reader = BufReader::with_capacity(1 << 16, file);
    let insert = insert_statement(plan);
    let mut hasher = Sha256::new();
    let mut rows = 0u64;
    let mut batch = String::from("[");
    let mut in_batch = 0usize;
    let mut line = String::new();
    loop {
        line.clear();
        let n = reader
            .read_line(&mut line)
            .with_context(|| format!("could not read {}", path.display()))?;
        if n > 0 {
            hasher.update(line.as_bytes());
            let text = line.trim_end_matches('\n');
            if in_batch > 0 {
                batch.push(',');
            }
            batch.push_str(text);
            in_batch += 1;
        }
        if in_batch > 0 && (in_batch == BATCH_ROWS || n == 0) {
            batch.push(']');
            let done = sqlx::query(sqlx::AssertSqlSafe(insert.as_str()))
                .bind(&batch)
                .bind(target.id)
                .bind(&target.slug)
                .execute(&mut *conn)
                .await?
                .rows_affected();
            if done != in_batch as u64 {
                bail!("inserted {done} of {in_batch} rows");
            }
            rows += done;
            progress.rows(&plan.name, rows);
            batch.clear();
            batch.push('[');
            in_batch = 0;
        }
        if n == 0 {
            break;
        }
    }
    progress.done(&plan.name, rows);
    Ok((rows, manifest::hex(&hasher.finalize())))
}

/// `INSERT INTO t (cols) SELECT ... FROM jsonb_populate_recordset(NULL::t, $1)`: the tenant
/// column takes `$2` (the target tenant's id), the tenants row's slug `$3`.
fn insert_statement(plan: &TablePlan) -> String {
    let values: Vec<String> = plan
        .columns
        .iter()
        .map(|c| {
            if c.name == plan.tenant_column {
                "CAST($2 AS uuid)".to_owned()
            } else if plan.kind == TableKind::Tenants && c.name == "slug" {
                "CAST($3 AS text)".to_owned()
            } else {
                format!("r.{}", ident(&c.name))
            }
        })
        .collect();
    format!(
        "INSERT INTO {table} ({cols}) SELECT {values} FROM jsonb_populate_recordset(NULL::{table}, CAST($1 AS jsonb)) r",
        table = plan.quoted(),
        cols = plan.column_list(),
        values = values.join(", ")
    )
}
