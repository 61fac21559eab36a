//! `tenancy diff`: what a change of the policies does to access, against the committed model
//! snapshot of a base revision (a snapshot file, or a git revision read with `git show`).
//!
//! Exit codes: 0 when nothing widens, [`WIDENS`] when some change widens access (so CI can
//! require an approval), 1 on any error.

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

use anyhow::{bail, Context, Result};
use clap::ValueEnum;
use tenancy_core::access::{self, render};
use tenancy_core::model::Model;
use tenancy_core::snapshot::{Snapshot, SNAPSHOT_FILE};

/// Exit code of `tenancy diff` when some change widens access.
pub const WIDENS: u8 = 3;

/// `--format` values of `tenancy diff`.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum DiffFormat {
    /// One line per change, its counterexample below it.
    Text,
    /// `{"widens", "summary", "changes": [...]}` for pipelines.
    Json,
    /// A Markdown section for a pull-request comment.
    Markdown,
}

/// The arguments of `tenancy diff` besides the policies.
#[derive(Debug, clap::Args)]
pub struct DiffArgs {
    /// The base: a `model.snapshot.json` file, or a git revision (`main`, `HEAD~1`, a commit)
    /// whose committed snapshot below `--out` is read with `git show REV:PATH`.
    #[arg(long, value_name = "SNAPSHOT|REV")]
    pub base: String,
    /// The output directory holding `model.snapshot.json` (to find it in a git revision).
    #[arg(long, default_value = "generated", value_name = "DIR")]
    pub out: PathBuf,
    /// `text`, `json` or `markdown`.
    #[arg(long, value_enum, default_value_t = DiffFormat::Text)]
    pub format: DiffFormat,
}

/// Compares the base model with `model` (the working tree's policies) and prints the report.
pub fn run(model: &Model, args: &DiffArgs) -> Result<ExitCode> {
    let base = base_model(&args.base, &args.out)?;
    let diff = access::diff(&base, model);
    match args.format {
        DiffFormat::Text => print!("{}", render::to_text(&diff)),
        DiffFormat::Json => println!("{}", render::to_json(&diff)),
        DiffFormat::Markdown => print!("{}", render::to_markdown(&diff)),
    }
    Ok(if diff.widens() {
        ExitCode::from(WIDENS)
    } else {
        ExitCode::SUCCESS
    })
}

/// The model of the base: the snapshot file `base`, or the snapshot below `out` in revision
/// `base`.
fn base_model(base: &str, out: &Path) -> Result<Model> {
    let path = Path::new(base);
    let text = if path.is_file() {
        std::fs::read_to_string(path)
            .with_context(|| format!("could not read the base snapshot `{base}`"))?
    } else {
        git_show(base, &out.join(SNAPSHOT_FILE))?
    };
    let snapshot = Snapshot::from_json(&text)
        .with_context(|| format!("the base `{base}` has no usable model snapshot"))?;
    Ok(snapshot.model)
}

/// `git show REV:./PATH` (PATH relative to the current directory).
fn git_show(rev: &str, path: &Path) -> Result<String> {
    if rev.starts_with('-') {
        bail!("`{rev}` is neither a snapshot file nor a git revision");
    }
    let relative = if path.is_absolute() {
        path.to_path_buf()
    } else {
        Path::new(".").join(path)
    };
    let spec = format!(
        "{rev}:{}",
        relative
            .components()
            .map(|c| c.as_os_str().to_string_lossy())
            .collect::<Vec<_>>()
            .join("/")
    );
    let output = Command::new("git")
        .args(["show", &spec])
        .output()
        .context("could not run git (needed to read the base revision)")?;
    if !output.status.success() {
        let stderr = String::from_utf8_lossy(&output.stderr);
        bail!(
            "`{base}` is neither a snapshot file nor a revision with `{}` ({})",
            path.display(),
            stderr.trim(),
            base = rev
        );
    }
    String::from_utf8(output.stdout).context("the base snapshot is not UTF-8")
}
