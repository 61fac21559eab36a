//! `tenancy`: validate policies, generate migrations and repositories, explain the rules.
//!
//! Every failure ends with a non-zero exit and one sentence on stderr that says what went wrong.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{bail, Context, Result};
use clap::{Parser, Subcommand, ValueEnum};
use tenancy_core::dsl::{self, SourceFile};
use tenancy_core::model::Model;
use tenancy_core::output::{self, GeneratedFile, Staleness};
use tenancy_core::sql::Target;

/// Tenant isolation as a compile-time and database-enforced guarantee.
#[derive(Debug, Parser)]
#[command(name = "tenancy", version, about, propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

/// Options every command that reads policies shares.
#[derive(Debug, clap::Args)]
struct PolicyArgs {
    /// Directory holding the `*.tenancy` policy files (all of them form one model).
    #[arg(long, default_value = "policies", value_name = "DIR")]
    policies: PathBuf,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Validate the policies and report every error at once (exit 1 on errors).
    Check {
        #[command(flatten)]
        policy: PolicyArgs,
    },
    /// Write the migrations and repositories into the output directory.
    Generate {
        #[command(flatten)]
        policy: PolicyArgs,
        /// Output directory (migrations/ and the repository crate's src/ go below it).
        #[arg(long, default_value = "generated", value_name = "DIR")]
        out: PathBuf,
        /// Write nothing; exit 1 and name the stale files when the output directory is not
        /// exactly what the policies produce.
        #[arg(long)]
        check: bool,
        /// Which PostgreSQL flavour the policies target.
        #[arg(long, value_enum, default_value_t = TargetArg::Postgres)]
        target: TargetArg,
    },
    /// Explain in plain text which role may do what on which table.
    Explain {
        #[command(flatten)]
        policy: PolicyArgs,
        /// Only this table.
        table: Option<String>,
    },
}

/// `--target` values.
#[derive(Debug, Clone, Copy, ValueEnum)]
enum TargetArg {
    /// Plain PostgreSQL 15+: policies call helpers as `(SELECT helper())` (InitPlans).
    Postgres,
    /// Citus: policies call helpers directly (Citus rejects sub-selects in policies).
    Citus,
}

impl From<TargetArg> for Target {
    fn from(arg: TargetArg) -> Self {
        match arg {
            TargetArg::Postgres => Target::Postgres,
            TargetArg::Citus => Target::Citus,
        }
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(code) => code,
        Err(err) => {
            eprintln!("error: {}", sentence(&err));
            ExitCode::FAILURE
        }
    }
}

/// Joins an error chain into one sentence: "could not read policies: No such file or directory".
fn sentence(err: &anyhow::Error) -> String {
    err.chain()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(": ")
}

fn run(cli: Cli) -> Result<ExitCode> {
    match cli.command {
        Command::Check { policy } => {
            let model = load(&policy.policies)?;
            println!(
                "ok: {} tables, {} roles ({})",
                model.tables.len(),
                model.roles.len(),
                model.roles.join(" < ")
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::Generate {
            policy,
            out,
            check,
            target,
        } => {
            let model = load(&policy.policies)?;
            let files = output::generate_all(&model, target.into())?;
            if check {
                check_outputs(&out, &files)
            } else {
                let written = output::write(&out, &files)
                    .with_context(|| format!("could not write into `{}`", out.display()))?;
                println!(
                    "generated {} files into {} ({} changed)",
                    files.len(),
                    out.display(),
                    written
                );
                Ok(ExitCode::SUCCESS)
            }
        }
        Command::Explain { policy, table } => {
            let model = load(&policy.policies)?;
            let text = tenancy_core::explain::explain(&model, table.as_deref())?;
            print!("{text}");
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// Compares the output directory with what the policies produce.
fn check_outputs(out: &Path, files: &[GeneratedFile]) -> Result<ExitCode> {
    let stale = output::stale_files(out, files)
        .with_context(|| format!("could not read `{}`", out.display()))?;
    if stale.is_empty() {
        println!("{} is up to date ({} files)", out.display(), files.len());
        return Ok(ExitCode::SUCCESS);
    }
    for entry in &stale {
        let why = match entry.staleness {
            Staleness::Missing => "missing",
            Staleness::Different => "differs from what the policies generate",
            Staleness::Extra => "not generated by the policies (delete it)",
        };
        eprintln!("stale: {} ({why})", out.join(&entry.path).display());
    }
    bail!(
        "{} is stale ({} file(s)); run `tenancy generate` and commit the result",
        out.display(),
        stale.len()
    )
}

/// Reads and validates the policy directory, printing every diagnostic.
fn load(dir: &Path) -> Result<Model> {
    let sources: Vec<SourceFile> = dsl::read_dir(dir)
        .with_context(|| format!("could not read policies from `{}`", dir.display()))?;
    if sources.is_empty() {
        bail!("no `*.tenancy` files in `{}`", dir.display());
    }
    let (model, diagnostics) = dsl::compile(&sources);
    if diagnostics.error_count() + diagnostics.warning_count() > 0 {
        eprint!(
            "{}",
            diagnostics.render(&sources, std::io::stderr().is_terminal())
        );
    }
    match model {
        Some(model) if !diagnostics.has_errors() => Ok(model),
        _ => bail!(
            "could not validate the policies in `{}`: {} error(s), {} warning(s)",
            dir.display(),
            diagnostics.error_count(),
            diagnostics.warning_count()
        ),
    }
}
