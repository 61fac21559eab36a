//! `tenancy test`: checks the expectations of `policies/*.tenancy-test` against the model
//! (`tenancy_core::access::expect`), reporting failed ones like DSL errors.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{bail, Context, Result};
use tenancy_core::access::expect::{check_file, TEST_EXTENSION};
use tenancy_core::dsl::{Diagnostic, Diagnostics, SourceFile};
use tenancy_core::model::Model;

/// The arguments of `tenancy test` besides the policies.
#[derive(Debug, clap::Args)]
pub struct TestArgs {
    /// A `*.tenancy-test` file or a directory of them (default: the policies directory).
    #[arg(long, value_name = "PATH")]
    pub tests: Option<PathBuf>,
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
    for (index, source) in sources.iter().enumerate() {
        for outcome in check_file(model, index, &source.text, &mut diags) {
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
    println!(
        "ok: {total} expectation(s) hold in {} file(s)",
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
