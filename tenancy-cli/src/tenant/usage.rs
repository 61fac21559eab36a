//! `tenancy usage [--tenant T] [--since DATE] --format text|json|csv`: per tenant, project and
//! table, the rows, their bytes (the stored size of every value), the vectors (non-NULL values of
//! `vector` columns) and the tokens (sums of integer columns whose name ends in `tokens`).
//! One grouped query per table, read in one REPEATABLE READ snapshot; every table comes from
//! the model.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use anyhow::{Context, Result};
use sqlx::{Connection, PgConnection};
use tenancy_core::condition::{StampValue, StampWhen};
use tenancy_core::model::{Model, SqlType, Table, TableKind};

use super::plan::ident;

/// One usage figure: a table's rows of one project.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct UsageRow {
    /// The tenant's slug.
    pub tenant: String,
    /// The project's slug.
    pub project: String,
    /// The table.
    pub table: String,
    /// Rows.
    pub rows: i64,
    /// Bytes of those rows' values as stored (`pg_column_size` of every column: compressed and
    /// TOASTed values at their stored size; row headers and indexes not counted).
    pub bytes: i64,
    /// Non-NULL values of the table's `vector` columns.
    pub vectors: i64,
    /// Sum of the table's integer columns whose name ends in `tokens`.
    pub tokens: i64,
}

/// What to count.
#[derive(Debug, Clone, Default)]
pub struct UsageQuery {
    /// Only this tenant (slug).
    pub tenant: Option<String>,
    /// Only rows inserted on or after this date (`YYYY-MM-DD`, UTC), by each table's insert
    /// time column; tables without one are left out and named in [`Usage::untimed`].
    pub since: Option<String>,
}

/// The usage report.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Usage {
    /// The figures, by tenant, project, then table in dependency order.
    pub rows: Vec<UsageRow>,
    /// Tables left out of a `--since` report: they have no insert time column.
    pub untimed: Vec<String>,
}

/// One table to count.
struct Counted<'m> {
    table: &'m Table,
    /// Position in dependency order (the report's table order).
    position: usize,
    /// The column that tells when a row was inserted.
    inserted_at: Option<String>,
}

/// The column holding a row's insert time: a `timestamptz` stamped `now() on insert`, else a
/// `timestamptz` column named `created_at`.
fn inserted_at(table: &Table) -> Option<String> {
    let stamped = table.columns.iter().find(|c| {
        c.ty == SqlType::Timestamptz
            && c.stamp
                .is_some_and(|s| s.value == StampValue::Now && s.when == StampWhen::Insert)
    });
    stamped
        .or_else(|| {
            table
                .columns
                .iter()
                .find(|c| c.ty == SqlType::Timestamptz && c.name == "created_at")
        })
        .map(|c| c.name.clone())
}

/// The grouped query of one table.
fn table_query(counted: &Counted<'_>, query: &UsageQuery) -> String {
    let table = counted.table;
    let vectors: Vec<String> = table
        .all_columns()
        .iter()
        .filter(|c| matches!(c.ty, SqlType::Vector(_)))
        .map(|c| format!("count(t.{})", ident(&c.name)))
        .collect();
    let tokens: Vec<String> = table
        .all_columns()
        .iter()
        .filter(|c| {
            matches!(c.ty, SqlType::SmallInt | SqlType::Integer | SqlType::BigInt)
                && c.name.ends_with("tokens")
        })
        .map(|c| format!("COALESCE(sum(t.{}), 0)", ident(&c.name)))
        .collect();
    let sum = |parts: Vec<String>| {
        if parts.is_empty() {
            "0".to_owned()
        } else {
            parts.join(" + ")
        }
    };
    // Only the predicates that apply, so a one-tenant report reads through the key index.
    let mut filter = vec!["true".to_owned()];
    if query.tenant.is_some() {
        filter.push("t.tenant_id = $1".to_owned());
    }
    if let (Some(_), Some(column)) = (&query.since, &counted.inserted_at) {
        filter.push(format!(
            "t.{} >= (CAST($2 AS date)::timestamp AT TIME ZONE 'UTC')",
            ident(column)
        ));
    }
    // Each value's stored size: the size of a whole-row value depends on how the executor
    // formed it, the stored sizes do not.
    let bytes: Vec<String> = table
        .all_columns()
        .iter()
        .map(|c| format!("COALESCE(sum(pg_column_size(t.{})), 0)", ident(&c.name)))
        .collect();
    format!(
        "SELECT t.tenant_id, t.project_id, count(*)::bigint, ({})::bigint, ({})::bigint, \
           ({})::bigint \
         FROM {} t WHERE {} GROUP BY 1, 2",
        bytes.join(" + "),
        sum(vectors),
        sum(tokens),
        ident(&table.name),
        filter.join(" AND ")
    )
}

/// Reads the usage of every tenant (or one) in one snapshot.
pub async fn usage(conn: &mut PgConnection, model: &Model, query: &UsageQuery) -> Result<Usage> {
    let tenants_table = model
        .core_table(TableKind::Tenants)
        .context("the policies declare no tenants table")?;
    let projects_table = model
        .core_table(TableKind::Projects)
        .context("the policies declare no projects table")?;
    let mut tx = conn
        .begin_with("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
        .await
        .context("could not open a read-only transaction")?;
    super::require_privileged(&mut tx).await?;
    if let Some(since) = &query.since {
        sqlx::query("SELECT CAST($1 AS date)")
            .bind(since)
            .execute(&mut *tx)
            .await
            .map_err(|_| anyhow::anyhow!("--since `{since}` is not a date (YYYY-MM-DD)"))?;
    }
    let tenant_id: Option<uuid::Uuid> = match &query.tenant {
        Some(slug) => Some(
            sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
                "SELECT id FROM {} WHERE slug = $1",
                ident(&tenants_table.name)
            )))
            .bind(slug)
            .fetch_optional(&mut *tx)
            .await
            .context("could not look the tenant up")?
            .with_context(|| format!("no tenant with slug `{slug}`"))?,
        ),
        None => None,
    };
    let tenants: BTreeMap<uuid::Uuid, String> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT id, slug FROM {}",
        ident(&tenants_table.name)
    )))
    .fetch_all(&mut *tx)
    .await
    .context("could not read the tenants")?
    .into_iter()
    .collect();
    let projects: BTreeMap<(uuid::Uuid, uuid::Uuid), String> =
        sqlx::query_as::<_, (uuid::Uuid, uuid::Uuid, String)>(sqlx::AssertSqlSafe(format!(
            "SELECT tenant_id, id, slug FROM {}",
            ident(&projects_table.name)
        )))
        .fetch_all(&mut *tx)
        .await
        .context("could not read the projects")?
        .into_iter()
        .map(|(t, p, slug)| ((t, p), slug))
        .collect();

    let counted: Vec<Counted<'_>> = model
        .tables_in_dependency_order()
        .into_iter()
        .filter(|t| matches!(t.kind, TableKind::Memberships | TableKind::Scoped))
        .enumerate()
        .map(|(position, table)| Counted {
            table,
            position,
            inserted_at: inserted_at(table),
        })
        .collect();
    let mut untimed = Vec::new();
    let mut figures: Vec<(String, String, usize, UsageRow)> = Vec::new();
    for item in &counted {
        if query.since.is_some() && item.inserted_at.is_none() {
            untimed.push(item.table.name.clone());
            continue;
        }
        let rows: Vec<(uuid::Uuid, uuid::Uuid, i64, i64, i64, i64)> =
            sqlx::query_as(sqlx::AssertSqlSafe(table_query(item, query)))
                .bind(tenant_id)
                .bind(query.since.as_deref())
                .fetch_all(&mut *tx)
                .await
                .with_context(|| format!("could not count table {}", item.table.name))?;
        for (tenant, project, count, bytes, vectors, tokens) in rows {
            let tenant_slug = tenants
                .get(&tenant)
                .cloned()
                .unwrap_or_else(|| tenant.to_string());
            let project_slug = projects
                .get(&(tenant, project))
                .cloned()
                .unwrap_or_else(|| project.to_string());
            figures.push((
                tenant_slug.clone(),
                project_slug.clone(),
                item.position,
                UsageRow {
                    tenant: tenant_slug,
                    project: project_slug,
                    table: item.table.name.clone(),
                    rows: count,
                    bytes,
                    vectors,
                    tokens,
                },
            ));
        }
    }
    tx.commit()
        .await
        .context("could not end the read-only transaction")?;
    figures.sort_by(|a, b| (&a.0, &a.1, a.2).cmp(&(&b.0, &b.1, b.2)));
    Ok(Usage {
        rows: figures.into_iter().map(|(_, _, _, row)| row).collect(),
        untimed,
    })
}

impl Usage {
    /// Aligned columns with a header, and a note naming the tables a `--since` left out.
    pub fn to_text(&self) -> String {
        let header = [
            "tenant", "project", "table", "rows", "bytes", "vectors", "tokens",
        ];
        let cells: Vec<[String; 7]> = self.rows.iter().map(cells).collect();
        let mut widths = header.map(str::len);
        for row in &cells {
            for (width, cell) in widths.iter_mut().zip(row) {
                *width = (*width).max(cell.len());
            }
        }
        let mut out = String::new();
        let mut line = |row: &[&str]| {
            let parts: Vec<String> = row
                .iter()
                .zip(widths)
                .enumerate()
                .map(|(i, (cell, width))| {
                    if i < 3 {
                        format!("{cell:<width$}")
                    } else {
                        format!("{cell:>width$}")
                    }
                })
                .collect();
            let _ = writeln!(out, "{}", parts.join("  ").trim_end());
        };
        line(&header);
        for row in &cells {
            line(&row.iter().map(String::as_str).collect::<Vec<_>>());
        }
        if !self.untimed.is_empty() {
            let _ = writeln!(
                out,
                "not counted (no insert time to compare with --since): {}",
                self.untimed.join(", ")
            );
        }
        out
    }

    /// `{"rows": [...], "untimed": [...]}`.
    pub fn to_json(&self) -> Result<String> {
        serde_json::to_string_pretty(self).context("could not write the usage as JSON")
    }

    /// The Prometheus text exposition format (for a node_exporter textfile collector or any
    /// scraper that reads a file): one gauge per figure, labelled by tenant, project and table.
    pub fn to_prometheus(&self) -> String {
        let gauges: [Gauge; 4] = [
            (
                "tenancy_usage_rows",
                "Rows per tenant, project and table.",
                |r| r.rows,
            ),
            (
                "tenancy_usage_bytes",
                "Stored bytes of the rows' values per tenant, project and table.",
                |r| r.bytes,
            ),
            (
                "tenancy_usage_vectors",
                "Non-NULL vector values per tenant, project and table.",
                |r| r.vectors,
            ),
            (
                "tenancy_usage_tokens",
                "Sum of the integer columns named *tokens per tenant, project and table.",
                |r| r.tokens,
            ),
        ];
        let mut out = String::new();
        for (name, help, value) in gauges {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} gauge");
            for row in &self.rows {
                let _ = writeln!(
                    out,
                    "{name}{{tenant=\"{}\",project=\"{}\",table=\"{}\"}} {}",
                    label(&row.tenant),
                    label(&row.project),
                    label(&row.table),
                    value(row)
                );
            }
        }
        out
    }

    /// A header line and one line per figure.
    pub fn to_csv(&self) -> String {
        let mut out = String::from("tenant,project,table,rows,bytes,vectors,tokens\n");
        for row in &self.rows {
            let quoted: Vec<String> = cells(row).iter().map(|c| csv_cell(c)).collect();
            let _ = writeln!(out, "{}", quoted.join(","));
        }
        out
    }
}

fn cells(row: &UsageRow) -> [String; 7] {
    [
        row.tenant.clone(),
        row.project.clone(),
        row.table.clone(),
        row.rows.to_string(),
        row.bytes.to_string(),
        row.vectors.to_string(),
        row.tokens.to_string(),
    ]
}

/// A CSV cell, quoted when it holds a comma, a quote or a line break.
fn csv_cell(cell: &str) -> String {
    if cell.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", cell.replace('"', "\"\""))
    } else {
        cell.to_owned()
    }
}

/// A gauge of the Prometheus output: name, help text, the figure it reads.
type Gauge = (&'static str, &'static str, fn(&UsageRow) -> i64);

/// A Prometheus label value, escaped.
fn label(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}
