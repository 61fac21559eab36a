//! `rag-service [serve|seed-demo|token USER_UUID]` — configuration from `RAG_*` environment
//! variables (see `docs/service.md`).

use std::process::ExitCode;

use anyhow::{bail, Context};
use rag_service::config::JwtKeys;
use rag_service::{
    demo, metrics_router, router, serve_with, vector, AppState, Config, Limits, MetricsAccess,
    ServeOptions,
};
use sqlx::postgres::PgPoolOptions;
use tenancy_runtime::http::HttpMetrics;
use tenancy_runtime::pool::Pooler;
use tenancy_runtime::TenancyConfig;
use tracing_subscriber::EnvFilter;

/// Every failure, including a refused startup check, ends as one line on stderr
/// (`rag-service: <sentence>`) and exit status 1.
#[tokio::main]
async fn main() -> ExitCode {
    match command().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("rag-service: {err:#}");
            ExitCode::FAILURE
        }
    }
}

async fn command() -> anyhow::Result<()> {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    let mut config = Config::from_env()?;
    if let Some(at) = args.iter().position(|arg| arg == "--dev") {
        args.remove(at);
        config.dev = true;
    }
    match args.first().map(String::as_str) {
        None | Some("serve") => run(config).await,
        Some("seed-demo") => {
            let url = config
                .maintenance_database_url
                .as_deref()
                .context("seed-demo needs RAG_MAINTENANCE_DATABASE_URL (a privileged role)")?;
            let pool = PgPoolOptions::new().max_connections(1).connect(url).await?;
            demo::seed(&pool).await?;
            // The catalog the search endpoints route by (idempotent).
            vector::prepare_maintenance(pool, config.vector_config()?).await?;
            println!("seeded the demo tenants Acme and Globex");
            Ok(())
        }
        Some("token") => {
            let user = args
                .get(1)
                .context("usage: rag-service token USER_UUID [TTL_SECONDS]")?
                .parse()
                .context("USER_UUID must be a UUID")?;
            let ttl = match args.get(2) {
                Some(ttl) => ttl.parse().context("TTL_SECONDS must be an integer")?,
                None => 3600,
            };
            let JwtKeys::Secret(secret) = &config.jwt_keys else {
                bail!("tokens can be minted only with an HS256 secret (RAG_JWT_SECRET)");
            };
            println!(
                "{}",
                demo::mint_token(
                    secret.as_bytes(),
                    &config.jwt_issuer,
                    &config.jwt_audience,
                    user,
                    ttl
                )?
            );
            Ok(())
        }
        Some(other) => bail!("unknown command {other:?} (serve, seed-demo, token)"),
    }
}

async fn run(config: Config) -> anyhow::Result<()> {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    if config.log_json {
        tracing_subscriber::fmt()
            .json()
            .with_current_span(true)
            .with_span_list(false)
            .with_env_filter(filter)
            .init();
    } else {
        tracing_subscriber::fmt().with_env_filter(filter).init();
    }
    config.check_serve()?;
    if config.jwt_keys == JwtKeys::Secret(rag_service::config::DEV_JWT_SECRET.to_owned()) {
        tracing::warn!(
            "development mode: using the built-in development JWT secret, anyone can mint \
             tokens; set RAG_JWT_SECRET or RAG_JWT_JWKS_FILE"
        );
    }
    // Lazy: the first use (the startup check below) connects; behind a transaction pooler
    // every statement is unnamed (docs/reliability.md).
    let (pool, pooler) =
        tenancy_runtime::pool::connect_with(&config.database_url, &config.pool_config())
            .context("RAG_DATABASE_URL")?;
    tracing::info!(
        pooler = match pooler {
            Pooler::None => "none",
            Pooler::Transaction => "transaction",
        },
        max_connections = config.max_connections,
        acquire_timeout_ms = u64::try_from(config.acquire_timeout.as_millis()).unwrap_or(u64::MAX),
        "application pool configured"
    );
    // Vector maintenance holds one connection for its lock and opens another for each step;
    // `/metrics` needs a third.
    let maintenance = match &config.maintenance_database_url {
        Some(url) => Some(
            PgPoolOptions::new()
                .max_connections(3)
                .connect(url)
                .await
                .context("connecting with RAG_MAINTENANCE_DATABASE_URL")?,
        ),
        None => None,
    };
    // Before anything else touches the database: the context contract and key
    // (Tenancy::check). A missing or refused key stops the service here, with one sentence.
    let tenancy_config = TenancyConfig {
        statement_timeout: config.statement_timeout,
        named_statements: pooler == Pooler::None,
        ..tenancy_generated::config()
    };
    let state = AppState::with_tenancy_config(
        pool.clone(),
        maintenance.clone(),
        config.verifier()?,
        config.metrics_tenants,
        tenancy_config,
    )
    .await?;
    let mut metrics = HttpMetrics::new(config.metrics_tenants)?;
    if let Some(key) = &config.metrics_label_key {
        metrics = metrics.with_label_key(key.as_bytes());
    }
    let state = state
        .with_metrics(metrics)
        .with_limits(Limits {
            max_page_size: config.max_page_size,
            max_k: config.max_k,
            body_read_timeout: config.body_read_timeout,
            request_timeout: config.request_timeout,
        })
        .with_metrics_access(match &config.metrics_token {
            Some(token) => MetricsAccess::Token(token.clone()),
            None => MetricsAccess::Off,
        });
    tracing::info!("context contract and key checked");
    let vector_config = config.vector_config()?;
    let maintenance_task = match &maintenance {
        Some(pool) => {
            let maintenance = vector::prepare_maintenance(pool.clone(), vector_config.clone())
                .await
                .context("installing the vector catalog with RAG_MAINTENANCE_DATABASE_URL")?;
            match config.vector_maintenance_every {
                Some(every) => {
                    tracing::info!(
                        every_secs = every.as_secs(),
                        "vector maintenance runs in the background"
                    );
                    Some(vector::spawn_maintenance(maintenance, every))
                }
                None => {
                    tracing::info!("vector maintenance is off (RAG_VECTOR_MAINTENANCE_SECS=0)");
                    None
                }
            }
        }
        None => {
            tracing::warn!(
                "no RAG_MAINTENANCE_DATABASE_URL: this process runs no vector maintenance, so \
                 no tenant is promoted to its own HNSW index (see docs/service.md)"
            );
            // In a transaction: safe behind a transaction pooler.
            let mut tx = pool
                .begin()
                .await
                .context("looking for the vector catalog")?;
            let catalog: Option<String> = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
                "SELECT pg_catalog.to_regclass('{}.vector_tiers')::text",
                vector_config.helper_schema
            )))
            .fetch_one(&mut *tx)
            .await
            .context("looking for the vector catalog")?;
            tx.commit().await?;
            if catalog.is_none() {
                tracing::error!(
                    "the vector catalog is missing: every search fails until it is created \
                     (see docs/service.md)"
                );
            }
            None
        }
    };
    let state = state.with_vector_config(vector_config);
    let listener = tokio::net::TcpListener::bind(config.bind)
        .await
        .with_context(|| format!("binding {}", config.bind))?;
    tracing::info!(address = %listener.local_addr()?, "rag-service listening");
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let stopped = |mut rx: tokio::sync::watch::Receiver<bool>| async move {
        let _ = rx.wait_for(|stop| *stop).await;
    };
    let metrics_server = match config.metrics_bind {
        Some(bind) => {
            let metrics_listener = tokio::net::TcpListener::bind(bind)
                .await
                .with_context(|| format!("binding RAG_METRICS_BIND {bind}"))?;
            tracing::info!(address = %metrics_listener.local_addr()?, "metrics listening");
            Some(tokio::spawn(serve_with(
                metrics_listener,
                metrics_router(state.clone()),
                stopped(stop_rx.clone()),
                ServeOptions {
                    max_connections: 16,
                    ..ServeOptions::default()
                },
            )))
        }
        None => None,
    };
    let options = ServeOptions {
        header_read_timeout: config.header_read_timeout,
        max_connections: config.max_http_connections,
        ..ServeOptions::default()
    };
    tokio::spawn(async move {
        shutdown_signal().await;
        let _ = stop_tx.send(true);
    });
    serve_with(
        listener,
        router(state, config.body_limit_bytes),
        stopped(stop_rx),
        options,
    )
    .await?;
    if let Some(server) = metrics_server {
        let _ = server.await;
    }
    if let Some(task) = maintenance_task {
        // An index build cut short is left invalid; the next run drops and rebuilds it.
        task.abort();
    }
    tracing::info!("rag-service stopped");
    Ok(())
}

/// Resolves on Ctrl-C or SIGTERM.
async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
}
