//! `tenancy test`: checks the expectations of `policies/*.tenancy-test` against the model
//! (`tenancy_core::access::expect`), reporting failed ones like DSL errors.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{bail, Context, Result};
use tenancy_core::access::expect::{check_file, TEST_EXTENSION};
use tenancy_core::dsl::{Diagnostic, Diagnostics, SourceFile};
use tenancy_core::model::Model;

use crate::policy_test_live::Live;

/// A single-threaded runtime for the live checks.
fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("could not start the async runtime")
}

/// The arguments of `tenancy test` besides the policies.
#[derive(Debug, clap::Args)]
pub struct TestArgs {
    /// A `*.tenancy-test` file or a directory of them (default: the policies directory).
    #[arg(long, value_name = "PATH")]
    pub tests: Option<PathBuf>,
    /// Also run every expectation that holds on the model on this database, as the app role
    /// under the caller's signed context, each in a rolled-back transaction. Connect as a
    /// superuser (the fixtures are written around row-level security); the context key comes
    /// from TENANCY_CONTEXT_KEY or TENANCY_CONTEXT_KEY_FILE.
    #[arg(long, value_name = "URL")]
    pub database_url: Option<String>,
}

/// Checks every expectation; exit 0 when all hold, 1 when one fails or a file is invalid.
pub fn run(model: &Model, policies: &Path, args: &TestArgs) -> Result<ExitCode> {
    let path = args.tests.as_deref().unwrap_or(policies);
    let files = test_files(path)?;
    if files.is_empty() {
        bail!("no `*.{TEST_EXTENSION}` files in `{}`", path.display());
    }
    let mut sources = Vec::new();
    for file in &files {
        let text = std::fs::read_to_string(file)
            .with_context(|| format!("could not read `{}`", file.display()))?;
        sources.push(SourceFile::new(file.display().to_string(), text));
    }
    let mut diags = Diagnostics::new();
    let mut total = 0;
    let mut failed = 0;
    let mut live = match &args.database_url {
        Some(url) => Some((runtime()?, url)),
        None => None,
    };
    let mut connection = match &mut live {
        Some((rt, url)) => Some(rt.block_on(Live::connect(url))?),
        None => None,
    };
    for (index, source) in sources.iter().enumerate() {
        for outcome in check_file(model, index, &source.text, &mut diags) {
            if let (None, Some((rt, _)), Some(conn)) = (&outcome.failure, &live, &mut connection) {
                let wrong = rt.block_on(conn.violations(model, &outcome.expectation))?;
                if !wrong.is_empty() {
                    failed += 1;
                    let what = if outcome.expectation.can {
                        "refuses"
                    } else {
                        "admits"
                    };
                    diags.push(Diagnostic::error(
                        format!("expectation does not hold on the database: {}", outcome.text),
                        outcome.span,
                        format!("the database {what} `{}`", wrong.join("`, `")),
                    ).with_note("the model says otherwise: the database is not what the policies generate (run `tenancy audit`)"));
                }
            }
            total += 1;
            if let Some(failure) = outcome.failure {
                failed += 1;
                let mut diagnostic = Diagnostic::error(
                    format!("expectation does not hold: {}", outcome.text),
                    outcome.span,
                    failure.reason,
                );
                if let Some(witness) = failure.counterexample {
                    diagnostic = diagnostic.with_note(format!("counterexample: {witness}"));
                }
                diags.push(diagnostic);
            }
        }
    }
    if diags.error_count() > 0 {
        eprint!(
            "{}",
            diags.render(&sources, std::io::stderr().is_terminal())
        );
        bail!(
            "{failed} of {total} expectation(s) do not hold, {} error(s) in the test files",
            diags.error_count() - failed
        );
    }
    let place = if args.database_url.is_some() {
        ", on the model and on the database"
    } else {
        ""
    };
    println!(
        "ok: {total} expectation(s) hold in {} file(s){place}",
        sources.len()
    );
    Ok(ExitCode::SUCCESS)
}

/// `path` itself, or the `*.tenancy-test` files of the directory `path`, sorted.
fn test_files(path: &Path) -> Result<Vec<PathBuf>> {
    if path.is_file() {
        return Ok(vec![path.to_path_buf()]);
    }
    let mut files: Vec<PathBuf> = std::fs::read_dir(path)
        .with_context(|| format!("could not read `{}`", path.display()))?
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|p| p.is_file() && p.extension().is_some_and(|e| e == TEST_EXTENSION))
        .collect();
    files.sort();
    Ok(files)
}
