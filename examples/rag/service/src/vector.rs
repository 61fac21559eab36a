//! The tiered vector store behind the search endpoints: the catalog the gateway routes by and
//! the periodic maintenance that fills it (see `tenancy_runtime::vector`).
//!
//! Searches go through [`tenancy_runtime::vector::VectorGateway`], which reads the catalog
//! (`tenancy.vector_tiers`, `tenancy.vector_project_sizes`) in the caller's scoped transaction.
//! The catalog is created and refreshed by [`VectorMaintenance`] on a privileged pool for every
//! vector column of the model (`tenancy_generated::VECTOR_TABLES`, here `chunks.embedding`):
//! tenants above `promote_at` chunks get their own partial HNSW index (built online), all
//! others are searched exactly.

use std::time::Duration;

use sqlx::PgPool;
use tenancy_runtime::vector::{MaintenanceReport, Route, VectorConfig, VectorMaintenance};

/// The reason every maintenance transaction logs (see `tenancy_runtime::SystemTx`).
pub const MAINTENANCE_REASON: &str = "rag-service vector maintenance (tenant sizes, HNSW tiers)";

/// Maintenance on `maintenance_pool` (a role that bypasses row-level security and may create
/// indexes on `chunks`; it needs at least 2 connections), after creating the catalog if it is
/// missing (idempotent).
pub async fn prepare_maintenance(
    maintenance_pool: PgPool,
    config: VectorConfig,
) -> anyhow::Result<VectorMaintenance> {
    let maintenance = VectorMaintenance::new(maintenance_pool, MAINTENANCE_REASON, config)?;
    maintenance.install().await?;
    Ok(maintenance)
}

/// Runs [`VectorMaintenance::refresh_all`] over the model's vector tables now and then every
/// `every` after the previous run ends, forever. A failed run is logged at ERROR and retried
/// at the next tick (a tenant whose index build failed stays searched exactly meanwhile).
pub async fn run_maintenance(maintenance: VectorMaintenance, every: Duration) {
    loop {
        match maintenance
            .refresh_all(tenancy_generated::VECTOR_TABLES)
            .await
        {
            Ok(reports) => reports.iter().for_each(log_report),
            Err(error) => tracing::error!(
                %error,
                retry_in_secs = every.as_secs_f64(),
                "vector maintenance failed"
            ),
        }
        tokio::time::sleep(every).await;
    }
}

/// Spawns [`run_maintenance`] on the current runtime; abort the handle to stop it.
pub fn spawn_maintenance(
    maintenance: VectorMaintenance,
    every: Duration,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(run_maintenance(maintenance, every))
}

fn log_report(report: &MaintenanceReport) {
    for (tenant, took) in &report.promoted {
        tracing::info!(
            table = %report.table,
            tenant_id = %tenant,
            build_ms = took.as_millis() as u64,
            "vector maintenance: tenant promoted to its own HNSW index"
        );
    }
    for tenant in &report.demoted {
        tracing::info!(
            table = %report.table,
            tenant_id = %tenant,
            "vector maintenance: tenant demoted to exact search"
        );
    }
    tracing::debug!(
        table = %report.table,
        tenants = report.tenants.len(),
        "vector maintenance: catalog refreshed"
    );
}

/// The value of the `x-search-route` response header for `route`.
pub fn route_name(route: Route) -> &'static str {
    match route {
        Route::Exact => "exact",
        Route::TenantHnsw => "tenant_hnsw",
        Route::ExactAfterShortHnsw => "exact_after_short_hnsw",
        Route::EmptyScope => "empty_scope",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn route_names_are_distinct_header_values() {
        let names = [
            Route::Exact,
            Route::TenantHnsw,
            Route::ExactAfterShortHnsw,
            Route::EmptyScope,
        ]
        .map(route_name);
        for (i, name) in names.iter().enumerate() {
            assert!(axum::http::HeaderValue::from_str(name).is_ok());
            assert!(!names[..i].contains(name));
        }
    }
}
