//! `tenancy migrate status | apply [--dry-run]`: the generated migrations on a live database,
//! through `tenancy-migrate` (history table with checksums, advisory lock, one transaction
//! per file).

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{bail, Context, Result};

/// Where the migrations are and which database they go to.
#[derive(Debug, clap::Args)]
pub(crate) struct MigrateArgs {
    /// Database to migrate (default: the DATABASE_URL environment variable). Connect as the
    /// role that owns the schema changes (a superuser, or a role that may create roles).
    #[arg(long, value_name = "URL")]
    database_url: Option<String>,
    /// Directory holding the `NNNN_name.sql` migrations.
    #[arg(long, default_value = "generated/migrations", value_name = "DIR")]
    dir: PathBuf,
}

/// `tenancy migrate ...`
#[derive(Debug, clap::Subcommand)]
pub(crate) enum MigrateCommand {
    /// List every migration as applied, pending, MODIFIED or MISSING (exit 1 when an
    /// applied file was edited or deleted).
    Status(MigrateArgs),
    /// Apply the pending migrations in order, each in its own transaction with its history
    /// row; refuses to start when an applied file was edited.
    Apply {
        #[command(flatten)]
        args: MigrateArgs,
        /// Run the pending migrations in one transaction, print the plan and every table's
        /// row count before and after, then roll back.
        #[arg(long)]
        dry_run: bool,
    },
}

/// Runs a `tenancy migrate` command.
pub(crate) fn migrate(command: MigrateCommand) -> Result<ExitCode> {
    crate::block_on(async {
        match command {
            MigrateCommand::Status(args) => status(&args).await,
            MigrateCommand::Apply { args, dry_run } => apply(&args, dry_run).await,
        }
    })
}

/// The database URL and the migrations of `args`.
fn inputs(args: &MigrateArgs) -> Result<(String, Vec<tenancy_migrate::Migration>)> {
    let url = crate::database_url(args.database_url.as_deref())?;
    let migrations = tenancy_migrate::read_migrations(&args.dir)?;
    if migrations.is_empty() {
        bail!(
            "no migrations in `{}`; run `tenancy generate` first",
            args.dir.display()
        );
    }
    Ok((url, migrations))
}

async fn status(args: &MigrateArgs) -> Result<ExitCode> {
    let (url, migrations) = inputs(args)?;
    let mut conn = tenancy_migrate::connect(&url)
        .await
        .context("could not connect to the database")?;
    let status = tenancy_migrate::status(&mut conn, &migrations).await?;
    print!("{status}");
    if status.has_problems() {
        bail!("applied migrations were edited or deleted; restore them from version control")
    }
    Ok(ExitCode::SUCCESS)
}

async fn apply(args: &MigrateArgs, dry_run: bool) -> Result<ExitCode> {
    let (url, migrations) = inputs(args)?;
    let mut conn = tenancy_migrate::connect(&url)
        .await
        .context("could not connect to the database")?;
    if dry_run {
        let plan = tenancy_migrate::dry_run(&mut conn, &migrations).await?;
        print!("{plan}");
        return Ok(ExitCode::SUCCESS);
    }
    let applied = tenancy_migrate::apply(&mut conn, &migrations).await?;
    if applied.is_empty() {
        println!("up to date: {} migrations applied", migrations.len());
    }
    for migration in &applied {
        println!("applied {} ({} ms)", migration.file, migration.execution_ms);
    }
    Ok(ExitCode::SUCCESS)
}
