//! `tenancy citus placement|isolate-tenant`: where each tenant's rows live on a Citus cluster,
//! and moving a large tenant to shards of its own (docs/citus.md, "Operating it"). Both run
//! on the coordinator with a privileged URL; the isolation is Citus's
//! `isolate_tenant_to_new_shard(..., 'CASCADE')` on the tenant tree's anchor, which moves the
//! tenant's rows of every co-located table together. The anchor is the table distributed by
//! tenant that references the tenants table (the projects table of a generated schema, whose
//! tenants table is a reference table), or the tenants table itself when it is distributed.

use std::process::ExitCode;

use anyhow::{bail, Context, Result};
use sqlx::postgres::PgConnection;
use sqlx::Connection;
use uuid::Uuid;

/// `tenancy citus ...`.
#[derive(Debug, clap::Subcommand)]
pub(crate) enum CitusCommand {
    /// Print every tenant with the shard and the worker (host:port) holding its rows, and the
    /// number of tenants that shard holds (1 once the tenant is isolated).
    Placement {
        #[command(flatten)]
        args: CitusArgs,
    },
    /// Move a tenant to shards of its own (every co-located table), then print its placement.
    /// Blocks writes to the tenant's shard group while it copies (`block_writes`), or uses
    /// logical replication with `--online` (needs wal_level = logical and a primary key or
    /// replica identity on every table, which the generated tables have).
    IsolateTenant {
        /// The tenant's id.
        tenant: Uuid,
        /// Copy online with logical replication instead of blocking writes.
        #[arg(long)]
        online: bool,
        #[command(flatten)]
        args: CitusArgs,
    },
}

/// The coordinator connection.
#[derive(Debug, clap::Args)]
pub(crate) struct CitusArgs {
    /// PRIVILEGED URL of the Citus coordinator (default: DATABASE_URL): a superuser.
    #[arg(long, value_name = "URL")]
    database_url: Option<String>,
    /// The tenants table (a reference table, or distributed by `id`).
    #[arg(long, default_value = "public.tenants", value_name = "TABLE")]
    tenants_table: String,
}

/// Runs a `tenancy citus` command.
pub(crate) fn citus(command: CitusCommand) -> Result<ExitCode> {
    crate::block_on(async move {
        match command {
            CitusCommand::Placement { args } => {
                let mut conn = connect(&args).await?;
                print_placement(&mut conn, &args, None).await?;
                Ok(ExitCode::SUCCESS)
            }
            CitusCommand::IsolateTenant {
                tenant,
                online,
                args,
            } => {
                let mut conn = connect(&args).await?;
                let exists: bool = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
                    "SELECT EXISTS (SELECT 1 FROM {} WHERE id = $1)",
                    table_name(&args)?
                )))
                .bind(tenant)
                .fetch_one(&mut conn)
                .await
                .context("could not read the tenants table")?;
                if !exists {
                    bail!("tenant {tenant} does not exist in {}", args.tenants_table);
                }
                let mode = if online {
                    "force_logical"
                } else {
                    "block_writes"
                };
                let anchor = anchor_table(&mut conn, &args).await?;
                let shard: i64 = sqlx::query_scalar(
                    "SELECT pg_catalog.isolate_tenant_to_new_shard($1::regclass, $2, 'CASCADE', \
                     shard_transfer_mode => $3::citus.shard_transfer_mode)",
                )
                .bind(&anchor)
                .bind(tenant.to_string())
                .bind(mode)
                .fetch_one(&mut conn)
                .await
                .with_context(|| format!("Citus could not isolate tenant {tenant}"))?;
                println!("tenant {tenant} now has shard {shard} of its own");
                print_placement(&mut conn, &args, Some(tenant)).await?;
                Ok(ExitCode::SUCCESS)
            }
        }
    })
}

/// The tenants table as `schema.table`, each part `[a-z_][a-z0-9_]*`.
fn table_name(args: &CitusArgs) -> Result<String> {
    let valid = |part: &str| {
        !part.is_empty()
            && part
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
            && !part.as_bytes()[0].is_ascii_digit()
    };
    let parts: Vec<&str> = args.tenants_table.split('.').collect();
    if parts.len() > 2 || !parts.iter().all(|p| valid(p)) {
        bail!(
            "--tenants-table {:?} is not [schema.]table with parts matching [a-z_][a-z0-9_]*",
            args.tenants_table
        );
    }
    Ok(parts
        .iter()
        .map(|p| format!("\"{p}\""))
        .collect::<Vec<_>>()
        .join("."))
}

/// The distributed table the tenant tree is co-located with: the tenants table when it is
/// distributed, else the hash-distributed table with a foreign key to it created first.
async fn anchor_table(conn: &mut PgConnection, args: &CitusArgs) -> Result<String> {
    let tenants = table_name(args)?;
    let anchor: Option<String> = sqlx::query_scalar(
        "SELECT p.logicalrelid::regclass::text FROM pg_catalog.pg_dist_partition AS p \
         WHERE p.partmethod = 'h' AND (p.logicalrelid = $1::regclass OR EXISTS ( \
           SELECT 1 FROM pg_catalog.pg_constraint AS c WHERE c.contype = 'f' \
           AND c.conrelid = p.logicalrelid AND c.confrelid = $1::regclass)) \
         ORDER BY p.logicalrelid = $1::regclass DESC, p.logicalrelid::oid LIMIT 1",
    )
    .bind(&tenants)
    .fetch_optional(&mut *conn)
    .await
    .context("could not read the distributed tables")?;
    anchor.with_context(|| {
        format!(
            "no table is distributed by tenant next to {}: is this a `--target citus` schema?",
            args.tenants_table
        )
    })
}

async fn connect(args: &CitusArgs) -> Result<PgConnection> {
    let url = crate::database_url(args.database_url.as_deref())?;
    let mut conn = PgConnection::connect(&url)
        .await
        .context("could not connect to the Citus coordinator")?;
    let citus: bool = sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_extension WHERE extname = 'citus')",
    )
    .fetch_one(&mut conn)
    .await?;
    if !citus {
        bail!("the database has no citus extension: pass the URL of the Citus coordinator");
    }
    Ok(conn)
}

/// One line per tenant (or only `only`): tenant, shard, node, tenants in that shard.
async fn print_placement(
    conn: &mut PgConnection,
    args: &CitusArgs,
    only: Option<Uuid>,
) -> Result<()> {
    let anchor = anchor_table(conn, args).await?;
    let rows: Vec<(Uuid, i64, String, i32, i64)> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "WITH placed AS ( \
           SELECT t.id, pg_catalog.get_shard_id_for_distribution_column($1::regclass, t.id) AS shard \
           FROM {} AS t WHERE $2::uuid IS NULL OR t.id = $2) \
         SELECT p.id, p.shard, s.nodename, s.nodeport, \
                pg_catalog.count(*) OVER (PARTITION BY p.shard) \
         FROM placed AS p JOIN pg_catalog.citus_shards AS s ON s.shardid = p.shard \
         ORDER BY s.nodename, s.nodeport, p.shard, p.id",
        table_name(args)?
    )))
    .bind(&anchor)
    .bind(only)
    .fetch_all(&mut *conn)
    .await
    .context("could not read the placement of the tenants")?;
    println!(
        "tenant                               shard     node                 tenants in shard"
    );
    for (tenant, shard, host, port, count) in rows {
        println!(
            "{tenant} {shard:<9} {:<20} {count}",
            format!("{host}:{port}")
        );
    }
    Ok(())
}
