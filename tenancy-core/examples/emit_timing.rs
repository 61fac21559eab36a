//! Timing of the emitters: parse+validate, SQL emit and Rust emit, separately, for a
//! synthetic model of N tables (`support/synthetic_model.rs`, shared with `bench-isolation`)
//! and for the real model `policies/rag.tenancy`.
//!
//! ```text
//! cargo run --release -p tenancy-core --example emit_timing -- [TABLES] [RUNS]
//! ```
//!
//! Prints the median of RUNS (default 5) runs of each phase and a SHA-256 over every emitted
//! file (path and contents), so a change to the emitters can be checked for byte-identical
//! output on the synthetic model as well. `EMIT_TIMING_ONLY=rust` runs only the Rust emitter
//! RUNS times (for a profiler).

use std::fmt::Write as _;
use std::path::Path;
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};
use tenancy_core::dsl::{self, SourceFile};
use tenancy_core::model::Model;
use tenancy_core::output::GeneratedFile;
use tenancy_core::sql::Target;

#[path = "support/synthetic_model.rs"]
mod synthetic;
use synthetic::synthetic_model;

/// `println!` that ignores a closed stdout (`| head`).
macro_rules! out {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stdout(), $($arg)*);
    }};
}

fn compile(sources: &[SourceFile]) -> Result<Model, String> {
    let (model, diagnostics) = dsl::compile(sources);
    match model.filter(|_| !diagnostics.has_errors()) {
        Some(model) => Ok(model),
        None => Err(diagnostics.render(sources, false)),
    }
}

fn median(mut times: Vec<Duration>) -> Duration {
    times.sort();
    times[times.len() / 2]
}

fn ms(d: Duration) -> String {
    format!("{:8.2} ms", d.as_secs_f64() * 1000.0)
}

fn digest(files: &[GeneratedFile]) -> (String, usize) {
    let mut hasher = Sha256::new();
    let mut lines = 0;
    for file in files {
        hasher.update(file.path.to_string_lossy().as_bytes());
        hasher.update([0]);
        hasher.update(file.contents.as_bytes());
        hasher.update([0]);
        lines += file.contents.lines().count();
    }
    let hex = hasher.finalize().iter().fold(String::new(), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    });
    (hex, lines)
}

fn time_model(label: &str, sources: &[SourceFile], runs: usize) -> Result<(), String> {
    let mut compile_times = Vec::new();
    let mut sql_times = Vec::new();
    let mut rust_times = Vec::new();
    let mut all_times = Vec::new();
    let mut last = None;
    for _ in 0..runs {
        let start = Instant::now();
        let model = compile(sources)?;
        compile_times.push(start.elapsed());

        let start = Instant::now();
        let sql = tenancy_core::sql::generate_migrations(&model, Target::Postgres);
        sql_times.push(start.elapsed());

        let start = Instant::now();
        let rust = tenancy_core::rust::generate_repositories(&model).map_err(|e| e.to_string())?;
        rust_times.push(start.elapsed());
        drop((sql, rust));

        let start = Instant::now();
        let all = tenancy_core::output::generate_all(&model, Target::Postgres)
            .map_err(|e| e.to_string())?;
        all_times.push(start.elapsed());
        last = Some((model.tables.len(), all));
    }
    let Some((tables, files)) = last else {
        return Ok(());
    };
    let rust_files: Vec<GeneratedFile> = files
        .iter()
        .filter(|f| f.path.extension().is_some_and(|e| e == "rs"))
        .cloned()
        .collect();
    let (all_digest, all_lines) = digest(&files);
    let (rust_digest, rust_lines) = digest(&rust_files);
    out!("{label}: {tables} tables, median of {runs}");
    out!("  parse+validate     {}", ms(median(compile_times)));
    out!("  SQL emit           {}", ms(median(sql_times)));
    out!("  Rust emit          {}", ms(median(rust_times)));
    out!("  generate_all       {}", ms(median(all_times)));
    out!("  all files  {all_lines:6} lines  sha256 {all_digest}");
    out!("  Rust files {rust_lines:6} lines  sha256 {rust_digest}");
    Ok(())
}

fn main() -> Result<(), String> {
    let mut args = std::env::args().skip(1);
    let tables: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(200);
    let runs: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(5).max(1);

    let synthetic = vec![SourceFile::new(
        format!("synthetic_{tables}.tenancy"),
        synthetic_model(tables),
    )];
    if std::env::var("EMIT_TIMING_ONLY").as_deref() == Ok("rust") {
        let model = compile(&synthetic)?;
        let start = Instant::now();
        for _ in 0..runs {
            tenancy_core::rust::generate_repositories(&model).map_err(|e| e.to_string())?;
        }
        out!("Rust emit x{runs}: {}", ms(start.elapsed()));
        return Ok(());
    }
    time_model(&format!("synthetic_model({tables})"), &synthetic, runs)?;

    let policies = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/rag/policies");
    let real = dsl::read_dir(&policies).map_err(|e| format!("{}: {e}", policies.display()))?;
    time_model("policies/rag.tenancy", &real, runs)?;
    Ok(())
}
