//! `tenancy`: validate policies, generate migrations and repositories, explain the rules.
//!
//! Every failure ends with a non-zero exit and one sentence on stderr that says what went wrong.

mod citus;
mod diff;
mod init;
mod keys;
mod login_roles;
mod migrate;
mod operator;
mod policy_test;
mod policy_test_live;
mod sarif;
mod tenant;
mod verify;

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
    /// Rust source file or directory (searched recursively) whose `#[derive(TenantScoped)]`
    /// structs declare more tables; repeatable. The policies then need only the `tenancy`
    /// block and the core tables.
    #[arg(long = "rust", value_name = "PATH")]
    rust: Vec<PathBuf>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Scaffold a new project: a policy file with the core tables, generated/migrations and
    /// a README section (TENANCY.md); refuses to overwrite anything.
    Init(init::InitArgs),
    /// Validate the policies and report every error at once (exit 1 on errors).
    Check {
        #[command(flatten)]
        policy: PolicyArgs,
        /// Also let this PostgreSQL server parse every column default as its column's type,
        /// in a transaction that is rolled back (exit 1 when one is refused, 2 when the
        /// database cannot be reached). Any database works; nothing is created.
        #[arg(long, value_name = "URL")]
        database_url: Option<String>,
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
        /// Let the next migration drop the tables and columns removed from the policies
        /// (their data is deleted); without it such a change is refused.
        #[arg(long)]
        allow_data_loss: bool,
        /// Also write the typed Python package (SQLAlchemy models, scoped session,
        /// repositories; docs/python.md) into DIR; `--check` then checks it too.
        #[arg(long, value_name = "DIR")]
        python: Option<PathBuf>,
        /// The import name of the Python package written by `--python` (default: the model's
        /// `python_package` setting, else `tenancy_models`).
        #[arg(long, value_name = "NAME")]
        python_package: Option<String>,
    },
    /// Explain in plain text which role may do what on which table.
    Explain {
        #[command(flatten)]
        policy: PolicyArgs,
        /// Only this table.
        table: Option<String>,
        /// `text` (for people) or `json` (the same facts as data).
        #[arg(long, value_enum, default_value_t = ExplainFormat::Text)]
        format: ExplainFormat,
    },
    /// Every change of access from a base model (a snapshot file or a git revision) to the
    /// policies, classified widens/narrows/neutral (exit 0 when nothing widens, 3 when
    /// something does, 1 on errors).
    Diff {
        #[command(flatten)]
        policy: PolicyArgs,
        #[command(flatten)]
        args: diff::DiffArgs,
    },
    /// Check the expectations of `policies/*.tenancy-test` against the policies (exit 0 when
    /// all hold, 1 when one fails, reported like DSL errors with a counterexample).
    Test {
        #[command(flatten)]
        policy: PolicyArgs,
        #[command(flatten)]
        args: policy_test::TestArgs,
    },
    /// Prove that the deployed policies (the migration files, or a live database with
    /// `--database-url`) enforce the model: the tenant boundary on every command, no
    /// permissive policy outside the model, rights equal to the access matrix (exit 0 proven,
    /// 4 when the proof fails with a counterexample, 1 on errors).
    Verify {
        #[command(flatten)]
        policy: PolicyArgs,
        /// Which PostgreSQL flavour the migrations were generated for.
        #[arg(long, value_enum, default_value_t = TargetArg::Postgres)]
        target: TargetArg,
        #[command(flatten)]
        args: verify::VerifyArgs,
    },
    /// Compare a live database with what the policies generate (exit 0 clean, 1 with
    /// findings, 2 when the database cannot be reached or queried).
    Audit {
        #[command(flatten)]
        policy: PolicyArgs,
        /// Database to audit (default: the DATABASE_URL environment variable). Connect as a
        /// role that can read the catalogs and create temporary tables (e.g. the owner).
        #[arg(long, value_name = "URL")]
        database_url: Option<String>,
        /// `text` (one line per finding and a summary), `json` (for pipelines) or `sarif`
        /// (SARIF 2.1.0 for code-scanning tools, findings located in the policy files).
        #[arg(long, value_enum, default_value_t = AuditFormat::Text)]
        format: AuditFormat,
        /// Which PostgreSQL flavour the database was generated for (default: `citus` when the
        /// database has the citus extension, `postgres` otherwise).
        #[arg(long, value_enum)]
        target: Option<TargetArg>,
        /// Instead of a database, scan the Rust sources under PATH for raw SQL passed to sqlx
        /// that touches a tenant-owned table outside the generated repositories (TA070).
        #[arg(long = "static", value_name = "PATH", conflicts_with = "database_url")]
        static_path: Option<PathBuf>,
    },
    // ---- operator commands (src/operator.rs): privileged connection, audited -----------
    /// Apply a seed file of tenants, projects and role assignments: idempotent, all-or-nothing.
    Seed(operator::SeedArgs),
    /// Tenants: `create`, `export`, `import`, `delete`, `split` (privileged connection; audited).
    #[command(subcommand)]
    Tenant(operator::TenantCommand),
    /// Projects: `create`, `move` (privileged connection; audited).
    #[command(subcommand)]
    Project(operator::ProjectCommand),
    /// Project members: `add`, `set-role`, `remove`, `list` (privileged connection; audited).
    #[command(subcommand)]
    Member(operator::MemberCommand),
    /// Context signing keys: `install`, `rotate`, `retire`, `list` (privileged connection;
    /// secrets are never printed).
    #[command(subcommand)]
    Key(keys::KeyCommand),
    /// Login roles of the application: `create NAME [--password-file F]` (a member of the
    /// NOLOGIN app role, never bypassing row-level security), `list`.
    #[command(subcommand)]
    LoginRole(login_roles::LoginRoleCommand),
    /// Rows, bytes, vectors and tokens per tenant, project and table (privileged connection).
    Usage(tenant::UsageArgs),
    // ---- migrations on a live database (src/migrate.rs) ----------------------------------
    /// Migrations: `status`, `apply [--dry-run]` (history table with checksums).
    #[command(subcommand)]
    Migrate(migrate::MigrateCommand),
    /// Citus: where each tenant lives, and moving a large tenant to shards of its own.
    #[command(subcommand)]
    Citus(citus::CitusCommand),
}

/// `--format` values of `tenancy explain`.
#[derive(Debug, Clone, Copy, ValueEnum)]
enum ExplainFormat {
    /// Plain text for reviewers.
    Text,
    /// The same facts as JSON.
    Json,
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
        Command::Init(args) => {
            for path in init::run(&args)? {
                println!("wrote {}", path.display());
            }
            println!(
                "next: tenancy check --policies {}",
                args.dir.join("policies").display()
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::Check {
            policy,
            database_url,
        } => {
            let model = load(&policy)?;
            if let Some(url) = database_url {
                if let Some(code) = check_defaults(&model, &url)? {
                    return Ok(code);
                }
            }
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
            allow_data_loss,
            python,
            python_package,
        } => {
            let model = load(&policy)?;
            let python_options = tenancy_core::python::PythonOptions {
                package: python_package
                    .or_else(|| model.settings.python_package.clone())
                    .unwrap_or_else(|| tenancy_core::python::DEFAULT_PACKAGE.to_owned()),
            };

            // Migrations are append-only: generation reads the committed snapshot and the
            // existing files. `--check` writes nothing, so it may plan drops to list them.
            let existing = output::ExistingOutput::read(&out)
                .with_context(|| format!("could not read `{}`", out.display()))?;
            let options = output::GenerateOptions {
                allow_data_loss: allow_data_loss || check,
            };
            let files = output::generate(&model, target.into(), &existing, options)?;
            let python_files = match &python {
                Some(_) => tenancy_core::python::generate_package(&model, &python_options, &files)?,
                None => Vec::new(),
            };
            for path in output::baseline_drift(&existing, target.into())? {
                eprintln!(
                    "warning: {} is what an older generator wrote; it is kept as history (to \
                     re-create the baseline before a first release, delete {} and generate again)",
                    out.join(path).display(),
                    out.join(tenancy_core::snapshot::SNAPSHOT_FILE).display()
                );
            }
            if let (true, Some(dir)) = (check, &python) {
                check_python(dir, &python_options, &python_files)?;
            }
            if let (false, Some(dir)) = (check, &python) {
                let written = tenancy_core::python::write(dir, &python_options, &python_files)
                    .with_context(|| format!("could not write into `{}`", dir.display()))?;
                println!(
                    "generated {} Python files into {} ({written} changed)",
                    python_files.len(),
                    dir.display()
                );
            }
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
        Command::Explain {
            policy,
            table,
            format,
        } => {
            let model = load(&policy)?;
            match format {
                ExplainFormat::Text => {
                    print!(
                        "{}",
                        tenancy_core::explain::explain(&model, table.as_deref())?
                    )
                }
                ExplainFormat::Json => println!(
                    "{}",
                    tenancy_core::explain_json::explain_json(&model, table.as_deref())?
                ),
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Diff { policy, args } => diff::run(&load(&policy)?, &args),
        Command::Verify {
            policy,
            target,
            args,
        } => verify::run(&load(&policy)?, target.into(), &args),
        Command::Test { policy, args } => {
            policy_test::run(&load(&policy)?, &policy.policies, &args)
        }
        Command::Audit {
            policy,
            database_url,
            format,
            target,
            static_path,
        } => {
            let model = load(&policy)?;
            match static_path {
                Some(path) => audit_static(&model, &path, format, &policy.policies),
                None => audit(
                    &model,
                    database_url,
                    format,
                    target.map(Target::from),
                    &policy.policies,
                ),
            }
        }
        Command::Seed(args) => operator::seed(args),
        Command::Tenant(command) => operator::tenant(command),
        Command::Project(command) => operator::project(command),
        Command::Member(command) => operator::member(command),
        Command::Key(command) => keys::key(command),
        Command::LoginRole(command) => login_roles::login_role(command),
        Command::Migrate(command) => migrate::migrate(command),
        Command::Usage(args) => tenant::run_usage(args),
        Command::Citus(command) => citus::citus(command),
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
        eprintln!(
            "stale: {} ({})",
            out.join(&entry.path).display(),
            why(entry.staleness)
        );
    }
    bail!(
        "{} is stale ({} file(s)); run `tenancy generate` and commit the result",
        out.display(),
        stale.len()
    )
}

/// Compares the Python output directory with what the policies produce (`--check --python`).
fn check_python(
    dir: &Path,
    options: &tenancy_core::python::PythonOptions,
    files: &[GeneratedFile],
) -> Result<()> {
    let stale = tenancy_core::python::stale_files(dir, options, files)
        .with_context(|| format!("could not read `{}`", dir.display()))?;
    for entry in &stale {
        eprintln!(
            "stale: {} ({})",
            dir.join(&entry.path).display(),
            why(entry.staleness)
        );
    }
    if !stale.is_empty() {
        bail!(
            "{} is stale ({} file(s)); run `tenancy generate --python {} --python-package {}` and \
             commit the result",
            dir.display(),
            stale.len(),
            dir.display(),
            options.package
        );
    }
    println!("{} is up to date ({} files)", dir.display(), files.len());
    Ok(())
}

/// Why a generated file is stale, in words.
fn why(staleness: Staleness) -> &'static str {
    match staleness {
        Staleness::Missing => "missing",
        Staleness::Different => "differs from what the policies generate",
        Staleness::Extra => "not generated by the policies (delete it)",
    }
}

/// Reads and validates the policy directory (and the `--rust` structs), printing every
/// diagnostic.
/// The database URL of a command: its `--database-url`, else the DATABASE_URL environment
/// variable (unset or empty: one sentence saying so).
fn database_url(flag: Option<&str>) -> Result<String> {
    match flag {
        Some(url) => Ok(url.to_owned()),
        None => std::env::var("DATABASE_URL")
            .ok()
            .filter(|url| !url.trim().is_empty())
            .context("no database: pass --database-url or set DATABASE_URL"),
    }
}

/// Runs `future` on a single-threaded runtime (every command that talks to a database).
fn block_on<T>(future: impl std::future::Future<Output = Result<T>>) -> Result<T> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("could not start the async runtime")?
        .block_on(future)
}

fn load(policy: &PolicyArgs) -> Result<Model> {
    let dir = policy.policies.as_path();
    let sources: Vec<SourceFile> = dsl::read_dir(dir)
        .with_context(|| format!("could not read policies from `{}`", dir.display()))?;
    if sources.is_empty() {
        bail!("no `*.tenancy` files in `{}`", dir.display());
    }
    let rust = rust_sources(&policy.rust)?;
    // The derived tables are validated with the policies as one model; their diagnostics
    // point into the Rust files (appended to the sources).
    let (model, diagnostics, sources) =
        match tenancy_core::derive::compile_with_rust(&sources, &rust) {
            Ok(compiled) => compiled,
            Err(error) => {
                for problem in &error.problems {
                    eprintln!("error: {problem}");
                }
                bail!(
                    "could not read the #[derive(TenantScoped)] structs: {} error(s)",
                    error.problems.len()
                )
            }
        };
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

// ---- --rust: tables declared with #[derive(TenantScoped)] --------------------------------

/// Every Rust file in `paths` (directories searched recursively), read.
fn rust_sources(paths: &[PathBuf]) -> Result<Vec<SourceFile>> {
    let mut files: Vec<PathBuf> = Vec::new();
    for path in paths {
        if path.is_dir() {
            rust_files_in(path, &mut files)
                .with_context(|| format!("could not read `{}`", path.display()))?;
        } else {
            files.push(path.clone());
        }
    }
    let mut rust = Vec::new();
    for file in files {
        let text = std::fs::read_to_string(&file)
            .with_context(|| format!("could not read `{}`", file.display()))?;
        rust.push(SourceFile::new(file.display().to_string(), text));
    }
    Ok(rust)
}

/// Every `*.rs` file under `dir`, sorted by path.
fn rust_files_in(dir: &Path, out: &mut Vec<PathBuf>) -> std::io::Result<()> {
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)?
        .map(|entry| entry.map(|e| e.path()))
        .collect::<std::io::Result<_>>()?;
    entries.sort();
    for path in entries {
        if path.is_dir() {
            rust_files_in(&path, out)?;
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
    Ok(())
}

// ---- audit: a live database against the policies (tenancy-audit) ------------------------

/// `--format` values of `tenancy audit`.
#[derive(Debug, Clone, Copy, ValueEnum)]
enum AuditFormat {
    /// One line per finding (`TA002 table tickets: ...`) and a summary.
    Text,
    /// `{"clean": bool, "findings": [{"code", "object", "message"}]}`.
    Json,
    /// A SARIF 2.1.0 log for code-scanning tools (one rule per TA code).
    Sarif,
}

/// `tenancy check --database-url`: PostgreSQL parses every default. `Some(exit code)` when a
/// default was refused (1) or the database could not be used (2); `None` when all parse.
fn check_defaults(model: &Model, url: &str) -> Result<Option<ExitCode>> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("could not start the async runtime")?;
    let result = runtime.block_on(async {
        let pool = tenancy_audit::connect(url).await?;
        let report = tenancy_audit::defaults::probe_defaults(&pool, model).await;
        pool.close().await;
        Ok::<_, anyhow::Error>(report?)
    });
    let report = match result {
        Ok(report) => report,
        Err(err) => {
            eprintln!("error: {}", sentence(&err));
            return Ok(Some(ExitCode::from(AUDIT_UNREACHABLE)));
        }
    };
    for refused in &report.refused {
        let probe = &refused.probe;
        eprintln!(
            "error: PostgreSQL refuses the default of `{}.{}`: {}\n  = default: {} (as `{}`)",
            probe.table, probe.column, refused.message, probe.default_sql, probe.type_sql
        );
    }
    if report.refused.is_empty() {
        println!(
            "ok: PostgreSQL parses all {} column defaults",
            report.probed
        );
        Ok(None)
    } else {
        eprintln!(
            "error: {} of {} column defaults refused by PostgreSQL",
            report.refused.len(),
            report.probed
        );
        Ok(Some(ExitCode::FAILURE))
    }
}

/// Exit code of `tenancy audit` when the audit could not run (no connection, failed query).
const AUDIT_UNREACHABLE: u8 = 2;

/// Runs the audit and prints the report; exit 0 when clean, 1 with findings, 2 when the
/// database cannot be reached or queried.
fn audit(
    model: &Model,
    database_url: Option<String>,
    format: AuditFormat,
    target: Option<Target>,
    policies: &Path,
) -> Result<ExitCode> {
    let url = crate::database_url(database_url.as_deref())?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("could not start the async runtime")?;
    let result = runtime.block_on(async {
        let pool = tenancy_audit::connect(&url).await?;
        let target = match target {
            Some(target) => target,
            None => tenancy_audit::detect_target(&pool).await?,
        };
        let report = tenancy_audit::audit_for_target(&pool, model, target).await;
        pool.close().await;
        report
    });
    let report = match result {
        Ok(report) => report,
        Err(err) => {
            eprintln!("error: {err}");
            return Ok(ExitCode::from(AUDIT_UNREACHABLE));
        }
    };
    match format {
        AuditFormat::Text => print!("{}", report.to_text()),
        AuditFormat::Json => println!("{}", report.to_json()),
        AuditFormat::Sarif => sarif::print(&report, policies),
    }
    Ok(if report.is_clean() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// `tenancy audit --static PATH`: scans Rust sources, no database. Exit 0 clean, 1 with
/// findings, 2 when PATH cannot be read; files that do not parse are named on stderr.
fn audit_static(
    model: &Model,
    path: &Path,
    format: AuditFormat,
    policies: &Path,
) -> Result<ExitCode> {
    let scan = match tenancy_audit::static_scan::scan(path, model) {
        Ok(scan) => scan,
        Err(err) => {
            eprintln!("error: {err}");
            return Ok(ExitCode::from(AUDIT_UNREACHABLE));
        }
    };
    for unparsed in &scan.unparsed {
        eprintln!(
            "warning: not scanned, not valid Rust: {}:{}",
            unparsed.path.display(),
            unparsed.message
        );
    }
    match format {
        AuditFormat::Text => print!("{}", scan.to_text()),
        AuditFormat::Json => println!("{}", scan.report.to_json()),
        AuditFormat::Sarif => sarif::print(&scan.report, policies),
    }
    Ok(if scan.report.is_clean() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
