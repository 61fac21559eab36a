//! Timing of `tenancy generate` (real model and a synthetic 200-table model) and of
//! `cargo build` of the repository crate generated for 200 tables.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use tenancy_core::{dsl, output, sql::Target};

#[path = "../../tenancy-core/examples/support/synthetic_model.rs"]
mod synthetic;
pub use synthetic::synthetic_model;

/// Where the time of one in-process generate goes.
#[derive(Clone, Copy, Debug, Default)]
pub struct GenerateTimes {
    /// Reading, parsing and validating the policies.
    pub compile: Duration,
    /// Emitting every file (SQL and Rust, formatted).
    pub emit: Duration,
    /// Writing the files.
    pub write: Duration,
    /// Number of tables in the model.
    pub tables: usize,
}

impl GenerateTimes {
    /// The whole command.
    pub fn total(&self) -> Duration {
        self.compile + self.emit + self.write
    }
}

/// In-process `tenancy generate`: read the policies, validate, emit, write into `out`.
pub fn generate(policies: &Path, out: &Path) -> Result<GenerateTimes> {
    let start = Instant::now();
    let sources = dsl::read_dir(policies)
        .with_context(|| format!("reading policies from {}", policies.display()))?;
    let (model, diagnostics) = dsl::compile(&sources);
    let Some(model) = model.filter(|_| !diagnostics.has_errors()) else {
        bail!(
            "the policies in {} do not validate:\n{}",
            policies.display(),
            diagnostics.render(&sources, false)
        );
    };
    let compile = start.elapsed();
    let start = Instant::now();
    let files = output::generate_all(&model, Target::Postgres)?;
    let emit = start.elapsed();
    let start = Instant::now();
    output::write(out, &files)?;
    Ok(GenerateTimes {
        compile,
        emit,
        write: start.elapsed(),
        tables: model.tables.len(),
    })
}

/// The run with the median total of `runs` runs of [`generate`].
pub fn time_generate(policies: &Path, out: &Path, runs: usize) -> Result<GenerateTimes> {
    let mut times = Vec::with_capacity(runs);
    for _ in 0..runs.max(1) {
        let _ = std::fs::remove_dir_all(out);
        times.push(generate(policies, out)?);
    }
    times.sort_by_key(GenerateTimes::total);
    Ok(times[times.len() / 2])
}

/// The `tenancy` binary if it was built (release preferred), for timing the real process.
pub fn cli_binary(repo: &Path) -> Option<PathBuf> {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo.join("target"));
    ["release", "debug"]
        .iter()
        .map(|profile| target.join(profile).join("tenancy"))
        .find(|path| path.is_file())
}

/// The median wall time of `runs` runs of `tenancy generate --policies DIR --out OUT`.
pub fn time_cli(binary: &Path, policies: &Path, out: &Path, runs: usize) -> Result<Duration> {
    let mut times = Vec::with_capacity(runs);
    for _ in 0..runs.max(1) {
        let _ = std::fs::remove_dir_all(out);
        let start = Instant::now();
        let status = Command::new(binary)
            .arg("generate")
            .arg("--policies")
            .arg(policies)
            .arg("--out")
            .arg(out)
            .stdout(Stdio::null())
            .status()
            .with_context(|| format!("running {}", binary.display()))?;
        times.push(start.elapsed());
        if !status.success() {
            bail!("{} generate failed ({status})", binary.display());
        }
    }
    times.sort();
    Ok(times[times.len() / 2])
}

/// Build times of the generated repository crate.
pub struct BuildTimes {
    /// First `cargo build` in the bench's own target dir (includes the dependencies unless a
    /// previous run left them there).
    pub first: Duration,
    /// `cargo build` after touching the crate's `lib.rs`: the generated crate alone.
    pub crate_alone: Duration,
    /// Lines of Rust in the generated `src/`.
    pub lines: usize,
}

/// Turns the generated output in `generated_out` into a crate in `work` (depending on this
/// checkout's tenancy-runtime, with the workspace's Cargo.lock) and times `cargo build` (dev
/// profile) with the target dir `work/target`.
pub fn time_cargo_build(repo: &Path, generated_out: &Path, work: &Path) -> Result<BuildTimes> {
    let krate = work.join("crate");
    let _ = std::fs::remove_dir_all(krate.join("src"));
    std::fs::create_dir_all(krate.join("src"))?;
    let mut lines = 0;
    for entry in std::fs::read_dir(generated_out.join("src"))? {
        let path = entry?.path();
        let text = std::fs::read_to_string(&path)?;
        lines += text.lines().count();
        if let Some(name) = path.file_name() {
            std::fs::write(krate.join("src").join(name), text)?;
        }
    }
    let manifest = format!(
        "[package]\nname = \"generated-200\"\nversion = \"0.1.0\"\nedition = \"2021\"\n\n\
         [dependencies]\n\
         chrono = {{ version = \"0.4\", default-features = false, features = [\"clock\", \"serde\", \"std\"] }}\n\
         pgvector = {{ version = \"0.4\", features = [\"sqlx\", \"serde\"] }}\n\
         serde = {{ version = \"1\", features = [\"derive\"] }}\n\
         serde_json = \"1\"\n\
         sqlx = {{ version = \"0.8\", default-features = false, features = [\"postgres\", \"runtime-tokio\", \"uuid\", \"chrono\", \"json\", \"macros\", \"migrate\"] }}\n\
         tenancy-runtime = {{ path = {runtime:?} }}\n\
         uuid = {{ version = \"1\", features = [\"v4\", \"serde\"] }}\n\n[workspace]\n",
        runtime = repo.join("tenancy-runtime").display().to_string(),
    );
    std::fs::write(krate.join("Cargo.toml"), manifest)?;
    std::fs::copy(repo.join("Cargo.lock"), krate.join("Cargo.lock"))?;
    let build = |label: &str| -> Result<Duration> {
        let start = Instant::now();
        let status = Command::new("cargo")
            .arg("build")
            .arg("--quiet")
            .current_dir(&krate)
            .env("CARGO_TARGET_DIR", work.join("target"))
            .status()
            .context("running cargo")?;
        if !status.success() {
            bail!("cargo build ({label}) of the 200-table crate failed ({status})");
        }
        Ok(start.elapsed())
    };
    let first = build("first")?;
    let lib = krate.join("src").join("lib.rs");
    let text = std::fs::read_to_string(&lib)?;
    std::fs::write(&lib, format!("{text}\n"))?;
    let crate_alone = build("crate alone")?;
    Ok(BuildTimes {
        first,
        crate_alone,
        lines,
    })
}
