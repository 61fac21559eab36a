//! Shared by the legacy adoption tests (`tests/legacy_adoption.rs`) and the adoption benchmark
//! (`examples/legacy/bench_adopt.rs`): load the pre-tenancy schema with generated data, and
//! apply the generated adoption files the way they say they must run.
//!
//! Included with `#[path = ...] mod runner;`, so not every user calls every function.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use sqlx::{Connection, PgConnection};
use tenancy_core::model::Model;
use tenancy_core::sql::{
    generate_migrations, no_transaction_statements, runs_outside_transaction, GeneratedFile, Target,
};

/// The tables of the pre-tenancy schema, parents first.
pub const LEGACY_TABLES: [&str; 5] = ["documents", "chunks", "queries", "responses", "assertions"];

/// `examples/legacy` in the checkout.
pub fn legacy_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/legacy")
}

/// The model of `examples/legacy/policies` (it adopts the five legacy tables).
pub fn legacy_model() -> Result<Model> {
    let (model, _warnings) = tenancy_core::dsl::compile_dir(&legacy_dir().join("policies"))
        .context("compiling examples/legacy/policies")?;
    Ok(model)
}

/// The migration files the generator emits for `model`, in order.
pub fn migrations(model: &Model) -> Vec<GeneratedFile> {
    generate_migrations(model, Target::Postgres)
}

/// The file's name (`0004_adopt_validate.sql`).
pub fn file_name(file: &GeneratedFile) -> String {
    file.path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// How much data [`load_legacy`] generates (see `examples/legacy/generate.sql`).
#[derive(Debug, Clone, Copy)]
pub struct LegacySize {
    /// Documents.
    pub documents: u32,
    /// Chunks per document.
    pub chunks_per_document: u32,
    /// Queries (one response each).
    pub queries: u32,
    /// Assertions per response.
    pub assertions_per_response: u32,
    /// Whether chunks get a 384-dimension embedding.
    pub embeddings: bool,
}

/// Creates the pre-tenancy schema (`schema.sql`) and fills it (`generate.sql`).
pub async fn load_legacy(conn: &mut PgConnection, size: LegacySize) -> Result<()> {
    let schema = std::fs::read_to_string(legacy_dir().join("schema.sql"))?;
    sqlx::raw_sql(sqlx::AssertSqlSafe(schema.as_str()))
        .execute(&mut *conn)
        .await
        .context("applying examples/legacy/schema.sql")?;
    for (name, value) in [
        ("legacy.documents", size.documents.to_string()),
        (
            "legacy.chunks_per_document",
            size.chunks_per_document.to_string(),
        ),
        ("legacy.queries", size.queries.to_string()),
        (
            "legacy.assertions_per_response",
            size.assertions_per_response.to_string(),
        ),
        ("legacy.embeddings", size.embeddings.to_string()),
    ] {
        sqlx::query("SELECT pg_catalog.set_config($1, $2, false)")
            .bind(name)
            .bind(value)
            .execute(&mut *conn)
            .await?;
    }
    let generate = std::fs::read_to_string(legacy_dir().join("generate.sql"))?;
    sqlx::raw_sql(sqlx::AssertSqlSafe(generate.as_str()))
        .execute(&mut *conn)
        .await
        .context("running examples/legacy/generate.sql")?;
    Ok(())
}

/// Applies one generated file: in one transaction, or, for a file marked
/// `-- tenancy: no-transaction`, statement by statement outside any transaction block.
pub async fn apply_file(conn: &mut PgConnection, file: &GeneratedFile) -> Result<()> {
    let name = file_name(file);
    if runs_outside_transaction(&file.contents) {
        for statement in no_transaction_statements(&file.contents) {
            sqlx::raw_sql(sqlx::AssertSqlSafe(statement.as_str()))
                .execute(&mut *conn)
                .await
                .with_context(|| format!("{name}: {statement}"))?;
        }
        return Ok(());
    }
    let mut tx = conn.begin().await?;
    sqlx::raw_sql(sqlx::AssertSqlSafe(file.contents.as_str()))
        .execute(&mut *tx)
        .await
        .with_context(|| format!("applying {name}"))?;
    tx.commit()
        .await
        .with_context(|| format!("committing {name}"))?;
    Ok(())
}
