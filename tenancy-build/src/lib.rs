//! tenancy-build: compile `policies/*.tenancy` into typed repositories from a build script,
//! the way `prost-build` compiles `.proto` files.
//!
//! ```no_run
//! // build.rs
//! fn main() -> Result<(), tenancy_build::Error> {
//!     tenancy_build::Builder::new().policies("policies").compile()?;
//!     Ok(())
//! }
//! ```
//!
//! ```ignore
//! // src/lib.rs (or any module)
//! include!(concat!(env!("OUT_DIR"), "/tenancy.rs"));
//! ```
//!
//! [`Builder::compile`] reads every `*.tenancy` file of the policy directory, validates them
//! with the same validator as `tenancy check`, and writes the repositories (the `roles`
//! module, `config()`, one module per repository and the re-exports: the items of the crate
//! `tenancy generate` writes) as one file into `OUT_DIR`. It prints
//! `cargo:rerun-if-changed` for the directory and every policy file, so the code is
//! regenerated when a policy changes. A policy error fails the build: the [`Error`] shows
//! every diagnostic rustc-style, as the CLI does, and policy warnings become
//! `cargo:warning` lines.
//!
//! The crate that includes the file needs the crates the repositories name:
//! `tenancy-runtime`, `uuid`, `chrono`, `serde`, `serde_json` and, for `vector` columns,
//! `pgvector`. The migrations are not written here: they are history, committed and applied
//! in order; generate them with `tenancy generate`.

use std::fmt;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use tenancy_core::dsl::{self, Diagnostics, SourceFile};
use tenancy_core::rust::{generate_include_file, RustEmitError};

/// The file [`Builder::compile`] writes into the output directory unless told otherwise.
pub const DEFAULT_FILE_NAME: &str = "tenancy.rs";

/// Why the repositories could not be generated. Its `Debug` form is its `Display` form, so
/// `fn main() -> Result<(), tenancy_build::Error>` and `?` print the diagnostics readably.
#[non_exhaustive]
pub enum Error {
    /// No output directory: `OUT_DIR` is not set (not running in a build script) and none
    /// was given with [`Builder::out_dir`].
    NoOutDir,
    /// The policy directory or a policy file could not be read.
    Read {
        /// The directory being read.
        dir: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// The policy directory holds no `*.tenancy` file.
    NoPolicies {
        /// The directory searched.
        dir: PathBuf,
    },
    /// The policies have errors.
    Invalid {
        /// The directory the policies were read from.
        dir: PathBuf,
        /// Every diagnostic (errors and warnings), rendered rustc-style without colour.
        rendered: String,
        /// How many errors there are.
        errors: usize,
        /// How many warnings there are.
        warnings: usize,
    },
    /// The Rust emitter failed (a bug in tenancy).
    Emit(RustEmitError),
    /// The generated file could not be written.
    Write {
        /// The file being written.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::NoOutDir => write!(
                f,
                "tenancy-build: OUT_DIR is not set; call it from a build script or set \
                 Builder::out_dir"
            ),
            Error::Read { dir, source } => write!(
                f,
                "tenancy-build: could not read policies from `{}`: {source}",
                dir.display()
            ),
            Error::NoPolicies { dir } => write!(
                f,
                "tenancy-build: no `*.tenancy` files in `{}`",
                dir.display()
            ),
            Error::Invalid {
                dir,
                rendered,
                errors,
                warnings,
            } => write!(
                f,
                "{rendered}tenancy-build: could not validate the policies in `{}`: {errors} \
                 error(s), {warnings} warning(s)",
                dir.display()
            ),
            Error::Emit(error) => write!(f, "tenancy-build: {error}"),
            Error::Write { path, source } => write!(
                f,
                "tenancy-build: could not write `{}`: {source}",
                path.display()
            ),
        }
    }
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // `main` returning `Err` prints `Debug`: show the diagnostics, not a struct dump.
        fmt::Display::fmt(self, f)
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Read { source, .. } | Error::Write { source, .. } => Some(source),
            Error::Emit(error) => Some(error),
            Error::NoOutDir | Error::NoPolicies { .. } | Error::Invalid { .. } => None,
        }
    }
}

/// Configures and runs the generation; see the [crate documentation](crate).
#[derive(Debug, Clone)]
pub struct Builder {
    policies: PathBuf,
    out_dir: Option<PathBuf>,
    file_name: String,
    cargo_instructions: bool,
}

impl Default for Builder {
    fn default() -> Self {
        Builder::new()
    }
}

impl Builder {
    /// A builder reading `policies/` (relative to the package, a build script's working
    /// directory), writing [`DEFAULT_FILE_NAME`] into `OUT_DIR` and printing the `cargo:`
    /// instructions.
    pub fn new() -> Builder {
        Builder {
            policies: PathBuf::from("policies"),
            out_dir: None,
            file_name: DEFAULT_FILE_NAME.to_owned(),
            cargo_instructions: true,
        }
    }

    /// The directory holding the `*.tenancy` files (all of them form one model).
    pub fn policies(mut self, dir: impl Into<PathBuf>) -> Builder {
        self.policies = dir.into();
        self
    }

    /// Where to write the file instead of `OUT_DIR`.
    pub fn out_dir(mut self, dir: impl Into<PathBuf>) -> Builder {
        self.out_dir = Some(dir.into());
        self
    }

    /// The name of the written file instead of [`DEFAULT_FILE_NAME`].
    pub fn file_name(mut self, name: impl Into<String>) -> Builder {
        self.file_name = name.into();
        self
    }

    /// Whether to print `cargo:rerun-if-changed` and `cargo:warning` lines (on by default;
    /// turn it off outside a build script).
    pub fn cargo_instructions(mut self, enabled: bool) -> Builder {
        self.cargo_instructions = enabled;
        self
    }

    /// Reads and validates the policies and writes the repositories; returns the path of
    /// the written file. The file is only rewritten when its contents change.
    pub fn compile(self) -> Result<PathBuf, Error> {
        let out_dir = match &self.out_dir {
            Some(dir) => dir.clone(),
            None => std::env::var_os("OUT_DIR")
                .map(PathBuf::from)
                .ok_or(Error::NoOutDir)?,
        };
        let dir = self.policies.as_path();
        if self.cargo_instructions {
            // The directory itself: a policy file added or removed regenerates too.
            println!("cargo:rerun-if-changed={}", dir.display());
        }
        let sources = dsl::read_dir(dir).map_err(|source| Error::Read {
            dir: dir.to_path_buf(),
            source,
        })?;
        if self.cargo_instructions {
            for source in &sources {
                println!("cargo:rerun-if-changed={}", source.name);
            }
        }
        if sources.is_empty() {
            return Err(Error::NoPolicies {
                dir: dir.to_path_buf(),
            });
        }
        let (model, diagnostics) = dsl::compile(&sources);
        let model = match model {
            Some(model) if !diagnostics.has_errors() => model,
            _ => return Err(invalid(dir, &diagnostics, &sources)),
        };
        if self.cargo_instructions && diagnostics.warning_count() > 0 {
            for line in diagnostics.render(&sources, false).lines() {
                println!("cargo:warning={line}");
            }
        }
        let contents = generate_include_file(&model).map_err(Error::Emit)?;
        let path = out_dir.join(&self.file_name);
        write_if_changed(&path, &contents)?;
        Ok(path)
    }
}

/// [`Builder::new`]`.policies(dir).compile()`: the repositories of the policies in `dir`,
/// written to `OUT_DIR/tenancy.rs`.
pub fn compile_policies(dir: impl AsRef<Path>) -> Result<PathBuf, Error> {
    Builder::new().policies(dir.as_ref()).compile()
}

/// The [`Error::Invalid`] of `diagnostics`.
fn invalid(dir: &Path, diagnostics: &Diagnostics, sources: &[SourceFile]) -> Error {
    Error::Invalid {
        dir: dir.to_path_buf(),
        rendered: diagnostics.render(sources, false),
        errors: diagnostics.error_count(),
        warnings: diagnostics.warning_count(),
    }
}

/// Writes `contents` to `path` unless it already holds exactly that (an unchanged mtime
/// spares the crate that includes it a rebuild).
fn write_if_changed(path: &Path, contents: &str) -> Result<(), Error> {
    if std::fs::read(path).is_ok_and(|bytes| bytes == contents.as_bytes()) {
        return Ok(());
    }
    let write = || -> std::io::Result<()> {
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)?;
        }
        let mut file = std::fs::File::create(path)?;
        file.write_all(contents.as_bytes())?;
        file.flush()
    };
    write().map_err(|source| Error::Write {
        path: path.to_path_buf(),
        source,
    })
}
