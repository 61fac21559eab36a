//! `tenancy tenant export TENANT --out DIR`: one REPEATABLE READ, READ ONLY snapshot of every
//! table the model scopes to the tenant, one JSON Lines file per table (parents first), then
//! the manifest, written last and renamed into place.

use std::io::Write;
use std::path::Path;

use anyhow::{bail, Context, Result};
use sha2::{Digest, Sha256};
use sqlx::{Connection, PgConnection};

use super::manifest::{self, Manifest, ManifestTable, ManifestTenant, MANIFEST_FILE};
use super::plan::{self, TablePlan};
use super::progress::Progress;
use super::Session;

/// Rows fetched from the server cursor per round trip.
const FETCH_ROWS: usize = 1000;

/// Exports `tenant` (a slug) into `out`, which must not exist or be empty. Returns the manifest.
pub async fn export(session: &Session, tenant: &str, out: &Path) -> Result<Manifest> {
    prepare_dir(out)?;
    let plans = plan::tables(&session.model);
    let mut conn = session.connect().await?;
    let mut tx = conn
        .begin_with("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
        .await
        .context("could not open the export transaction")?;
    snapshot_settings(&mut tx).await?;
    super::require_privileged(&mut tx).await?;
    let found = session.require_tenant(&mut tx, tenant).await?;
    let progress = Progress::for_stderr();
    let mut tables = Vec::new();
    for plan in &plans {
        let path = out.join(plan.file_name());
        let file = std::fs::File::create(&path)
            .with_context(|| format!("could not create {}", path.display()))?;
        let mut writer = std::io::BufWriter::with_capacity(1 << 16, file);
        let mut hasher = Sha256::new();
        let rows = stream_table(
            &mut tx,
            plan,
            found.id,
            |line| {
                hasher.update(line.as_bytes());
                hasher.update(b"\n");
                writer.write_all(line.as_bytes())?;
                writer.write_all(b"\n")?;
                Ok(())
            },
            &progress,
        )
        .await
        .with_context(|| format!("could not export table {}", plan.name))?;
        let file = writer
            .into_inner()
            .map_err(|e| e.into_error())
            .with_context(|| format!("could not write {}", path.display()))?;
        file.sync_all()
            .with_context(|| format!("could not write {}", path.display()))?;
        tables.push(ManifestTable {
            table: plan.name.clone(),
            file: plan.file_name(),
            columns: plan.columns.clone(),
            rows,
            sha256: manifest::hex(&hasher.finalize()),
        });
    }
    tx.commit()
        .await
        .context("could not end the export transaction")?;
    conn.close().await.ok();
    let manifest = Manifest {
        format: manifest::FORMAT,
        generator: manifest::generator(),
        model_sha256: manifest::model_sha256(&session.model)?,
        roles: session.model.roles.clone(),
        tenant: ManifestTenant {
            id: found.id,
            slug: found.slug,
        },
        tables,
    };
    write_manifest(out, &manifest)?;
    Ok(manifest)
}

/// The per-table row counts and SHA-256 the export of `tenant_id` would have now, computed
/// in one REPEATABLE READ snapshot without writing anything (the delete's proof that an
/// export is current).
pub async fn current_digest(
    conn: &mut PgConnection,
    plans: &[TablePlan],
    tenant_id: uuid::Uuid,
) -> Result<Vec<(String, u64, String)>> {
    let mut tx = conn
        .begin_with("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
        .await
        .context("could not open a read-only transaction")?;
    snapshot_settings(&mut tx).await?;
    let quiet = Progress::quiet();
    let mut out = Vec::new();
    for plan in plans {
        let mut hasher = Sha256::new();
        let rows = stream_table(
            &mut tx,
            plan,
            tenant_id,
            |line| {
                hasher.update(line.as_bytes());
                hasher.update(b"\n");
                Ok(())
            },
            &quiet,
        )
        .await
        .with_context(|| format!("could not read table {}", plan.name))?;
        out.push((plan.name.clone(), rows, manifest::hex(&hasher.finalize())));
    }
    tx.commit()
        .await
        .context("could not end the read-only transaction")?;
    Ok(out)
}

/// Settings that make the text of every value the same on every run.
async fn snapshot_settings(conn: &mut PgConnection) -> Result<()> {
    sqlx::raw_sql(
        "SET LOCAL TimeZone = 'UTC'; SET LOCAL extra_float_digits = 1; \
         SET LOCAL bytea_output = 'hex'",
    )
    .execute(conn)
    .await
    .context("could not set the export's session settings")?;
    Ok(())
}

/// Streams the tenant's rows of one table through a server-side cursor (memory stays flat),
/// calling `line` for each JSON line; returns the row count.
async fn stream_table(
    conn: &mut PgConnection,
    plan: &TablePlan,
    tenant_id: uuid::Uuid,
    mut line: impl FnMut(&str) -> std::io::Result<()>,
    progress: &Progress,
) -> Result<u64> {
    // DECLARE takes no bind parameters; the id is a formatted UUID, never text from a user.
    let query = plan
        .export_query()
        .replace("$1", &plan::literal(&tenant_id.hyphenated().to_string()));
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
        "DECLARE tenancy_export NO SCROLL CURSOR FOR {query}"
    )))
    .execute(&mut *conn)
    .await?;
    let fetch = format!("FETCH {FETCH_ROWS} FROM tenancy_export");
    let mut rows = 0u64;
    loop {
        let batch: Vec<String> = sqlx::query_scalar(sqlx::AssertSqlSafe(fetch.as_str()))
            .fetch_all(&mut *conn)
            .await?;
        for text in &batch {
            line(text)?;
        }
        rows += batch.len() as u64;
        progress.rows(&plan.name, rows);
        if batch.len() < FETCH_ROWS {
            break;
        }
    }
    progress.done(&plan.name, rows);
    sqlx::raw_sql("CLOSE tenancy_export")
        .execute(&mut *conn)
        .await?;
    Ok(rows)
}

/// Creates `out`, or accepts it when it is an empty directory.
fn prepare_dir(out: &Path) -> Result<()> {
    if out.exists() {
        let mut entries =
            std::fs::read_dir(out).with_context(|| format!("could not read {}", out.display()))?;
        if entries.next().is_some() {
            bail!(
                "{} already exists and is not empty: export into a new directory",
                out.display()
            );
        }
        return Ok(());
    }
    std::fs::create_dir_all(out).with_context(|| format!("could not create {}", out.display()))
}

/// Writes the manifest to a temporary name, syncs it and renames it into place: a reader sees
/// either no manifest or the whole one.
fn write_manifest(out: &Path, manifest: &Manifest) -> Result<()> {
    let tmp = out.join(format!(".{MANIFEST_FILE}.tmp"));
    let path = out.join(MANIFEST_FILE);
    let mut file = std::fs::File::create(&tmp)
        .with_context(|| format!("could not create {}", tmp.display()))?;
    file.write_all(manifest.to_json()?.as_bytes())
        .and_then(|()| file.sync_all())
        .with_context(|| format!("could not write {}", tmp.display()))?;
    std::fs::rename(&tmp, &path).with_context(|| format!("could not write {}", path.display()))?;
    if let Ok(dir) = std::fs::File::open(out) {
        dir.sync_all().ok();
    }
    Ok(())
}
