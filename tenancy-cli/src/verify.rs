//! `tenancy verify`: proves that what is deployed (the migration files, or the policies of a
//! live database) enforces the model (`tenancy_verify`).
//!
//! Exit codes: 0 proven, [`tenancy_verify::EXIT_NOT_PROVEN`] when the proof fails, 1 on usage,
//! I/O or database errors.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::ValueEnum;
use tenancy_core::model::Model;
use tenancy_core::sql::Target;
use tenancy_verify::{verify, Deployed, EXIT_NOT_PROVEN};

/// `--format` values of `tenancy verify`.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum VerifyFormat {
    /// One line per table, one per failure, a summary.
    Text,
    /// `{"proven", "source", "proofs": [...], "failures": [...]}` for pipelines.
    Json,
}

/// The arguments of `tenancy verify` besides the policies and the target.
#[derive(Debug, clap::Args)]
pub struct VerifyArgs {
    /// The migration files to verify (every `*.sql` of DIR, applied in name order).
    #[arg(long, default_value = "generated/migrations", value_name = "DIR")]
    pub migrations: PathBuf,
    /// Verify the policies of this live database instead of the files (`pg_policies`,
    /// read only; connect as a role that can read the catalogs).
    #[arg(long, value_name = "URL")]
    pub database_url: Option<String>,
    /// `text` or `json`.
    #[arg(long, value_enum, default_value_t = VerifyFormat::Text)]
    pub format: VerifyFormat,
}

/// Reads what is deployed, proves it against `model` and prints the report.
pub fn run(model: &Model, target: Target, args: &VerifyArgs) -> Result<ExitCode> {
    let deployed = match &args.database_url {
        Some(url) => crate::block_on(async {
            let pool = tenancy_audit::connect(url)
                .await
                .context("could not connect to the database")?;
            let deployed = Deployed::from_database(&pool, model).await;
            pool.close().await;
            Ok(deployed?)
        })?,
        None => Deployed::from_migrations_dir(&args.migrations, model)?,
    };
    let report = verify(model, &deployed, target);
    match args.format {
        VerifyFormat::Text => print!("{}", report.to_text()),
        VerifyFormat::Json => println!("{}", report.to_json()),
    }
    Ok(if report.is_proven() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(EXIT_NOT_PROVEN)
    })
}
