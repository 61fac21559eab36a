//! `tenancy tenant set-vector-model TENANT --column TABLE.COLUMN --model NAME --dimensions N`:
//! switches a tenant's embedding model for a `per tenant` vector column through
//! `tenancy_runtime::vector::VectorMaintenance::set_embedding_model` (the tenant's HNSW index
//! dropped, the setting written, its vectors of the old model cleared and the change audited,
//! in one transaction after the index drop).

use std::process::ExitCode;

use anyhow::{bail, Context, Result};
use sqlx::postgres::PgPoolOptions;
use tenancy_core::model::{Model, SqlType, TABLE_SCHEMA};
use tenancy_runtime::vector::{
    EmbeddingModel, VectorConfig, VectorMaintenance, VectorSpec, DEFAULT_MODEL,
};
use tenancy_runtime::TenantId;

use super::LifecycleArgs;

/// `tenancy tenant set-vector-model`.
#[derive(Debug, clap::Args)]
pub struct SetVectorModelArgs {
    /// The tenant's slug.
    #[arg(value_name = "TENANT")]
    tenant: String,
    /// The `per tenant` vector column, as `table.column` (may be omitted when the policies
    /// declare exactly one).
    #[arg(long, value_name = "TABLE.COLUMN")]
    column: Option<String>,
    /// The embedding model's name, as the application knows it.
    #[arg(long, value_name = "NAME")]
    model: String,
    /// The length of the model's vectors (1..=16000).
    #[arg(long, value_name = "N")]
    dimensions: u32,
    #[command(flatten)]
    lifecycle: LifecycleArgs,
}

/// A `per tenant` vector column of the model: (table, column, declared dimension, key column).
fn per_tenant_columns(model: &Model) -> Vec<(String, String, u32, String)> {
    model
        .tables
        .iter()
        .flat_map(|table| {
            let key = table.primary_key.first().cloned().unwrap_or_default();
            table.columns.iter().filter_map(move |c| match c.ty {
                SqlType::Vector(n) if c.per_tenant => {
                    Some((table.name.clone(), c.name.clone(), n, key.clone()))
                }
                _ => None,
            })
        })
        .collect()
}

/// The column `--column` names (or the only one), as a runtime spec. The names are leaked:
/// the spec wants `'static` names, and the process ends after this one command.
fn spec_for(model: &Model, column: Option<&str>) -> Result<VectorSpec> {
    let columns = per_tenant_columns(model);
    let listed = || {
        columns
            .iter()
            .map(|(t, c, _, _)| format!("{t}.{c}"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let found = match column {
        Some(wanted) => columns
            .iter()
            .find(|(t, c, _, _)| format!("{t}.{c}") == wanted),
        None if columns.len() == 1 => columns.first(),
        None if columns.is_empty() => None,
        None => bail!(
            "the policies declare several `per tenant` vector columns ({}): name one with --column",
            listed()
        ),
    };
    let Some((table, column, dimensions, key)) = found else {
        if columns.is_empty() {
            bail!(
                "the policies declare no `per tenant` vector column (write `vec vector(384)? \
                 per tenant` in a scoped table)"
            );
        }
        bail!(
            "`{}` is not a `per tenant` vector column of the policies (they declare {})",
            column.unwrap_or_default(),
            listed()
        );
    };
    let leak = |s: &str| -> &'static str { Box::leak(s.to_owned().into_boxed_str()) };
    Ok(VectorSpec {
        schema: TABLE_SCHEMA,
        table: leak(table),
        key_column: leak(key),
        vector_column: leak(column),
        dimensions: *dimensions,
        distance: Default::default(),
        filter_columns: &[],
        per_tenant: true,
    })
}

/// Runs `tenancy tenant set-vector-model`.
pub fn run(args: SetVectorModelArgs) -> Result<ExitCode> {
    let session = args.lifecycle.session()?;
    let spec = spec_for(&session.model, args.column.as_deref())?;
    let model = EmbeddingModel::new(args.model.clone(), args.dimensions);
    if let Err(error) = model.validate() {
        bail!(
            "{}",
            error
                .to_string()
                .trim_start_matches("tenancy misconfigured: ")
        );
    }
    let settings = &session.model.settings;
    let config = VectorConfig {
        helper_schema: settings.helper_schema.clone(),
        app_role: settings.app_role.clone(),
        ..VectorConfig::default()
    };
    let change = crate::block_on(async {
        let mut conn = session.connect().await?;
        super::require_privileged(&mut conn).await?;
        let tenant = session.require_tenant(&mut conn, &args.tenant).await?;
        let pool = PgPoolOptions::new()
            .max_connections(2)
            .connect(&session.url)
            .await
            .context("could not connect to the database")?;
        let maintenance =
            VectorMaintenance::new(pool.clone(), "operator: tenant set-vector-model", config)
                .context("invalid vector configuration")?;
        let change = maintenance
            .set_embedding_model(&spec, TenantId::new(tenant.id), &model, &session.actor)
            .await;
        pool.close().await;
        change.map_err(|error| {
            anyhow::anyhow!(
                "could not change the vector model of tenant `{}`: {error}",
                tenant.slug
            )
        })
    })?;
    let column = format!("{}.{}", spec.table, spec.vector_column);
    let previous = &change.previous.model;
    if change.unchanged {
        println!(
            "tenant {} already uses model {} ({} dimensions) for {column}: nothing changed",
            args.tenant, model.name, model.dimensions
        );
        return Ok(ExitCode::SUCCESS);
    }
    if let Some(index) = &change.dropped_index {
        println!("dropped HNSW index {index} (searches are exact until the next refresh)");
    }
    let was = if previous.name == DEFAULT_MODEL {
        format!("the column's default ({} dimensions)", previous.dimensions)
    } else {
        format!(
            "model {} ({} dimensions)",
            previous.name, previous.dimensions
        )
    };
    println!(
        "tenant {}: {column} now uses model {} ({} dimensions, version {}), was {was}; \
         {} stale vectors cleared (embed those rows again)",
        args.tenant, model.name, model.dimensions, change.current.version, change.stale_vectors
    );
    Ok(ExitCode::SUCCESS)
}
