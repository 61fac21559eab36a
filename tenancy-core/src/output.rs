//! The generated output directory as a whole: produce every file, write only what
//! changed, and tell which files are stale (`tenancy generate --check`).
//!
//! The generator owns `migrations/*.sql` and `src/**/*.rs` below the output directory;
//! anything else there (the repository crate's `Cargo.toml`, a README) is left alone.

use std::collections::BTreeSet;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use crate::model::Model;
pub use crate::sql::GeneratedFile;
use crate::sql::Target;

/// Why a generated file is stale.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Staleness {
    /// The generator would write it, but it does not exist.
    Missing,
    /// It exists with other contents.
    Different,
    /// It exists in a generator-owned directory but the generator would not write it.
    Extra,
}

/// One stale file, relative to the output directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StaleFile {
    /// Path relative to the output directory.
    pub path: PathBuf,
    /// What is wrong with it.
    pub staleness: Staleness,
}

/// Failure to produce the output files.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum GenerateError {
    /// The Rust emitter produced tokens that do not parse (a bug in the emitter).
    #[error("the Rust emitter produced invalid code: {0}")]
    Rust(String),
}

/// Every file `tenancy generate` writes for `model`, in a stable order.
pub fn generate_all(model: &Model, target: Target) -> Result<Vec<GeneratedFile>, GenerateError> {
    let mut files = crate::sql::generate_migrations(model, target);
    let rust = crate::rust::generate_repositories(model)
        .map_err(|err| GenerateError::Rust(err.to_string()))?;
    files.extend(rust);
    files.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(files)
}

/// Directories (relative to the output directory) whose contents the generator owns,
/// with the file extension it writes there.
const OWNED_DIRS: [(&str, &str); 2] = [("migrations", "sql"), ("src", "rs")];

/// Files in generator-owned directories below `out`, relative to `out`, sorted.
fn owned_files(out: &Path) -> io::Result<BTreeSet<PathBuf>> {
    let mut found = BTreeSet::new();
    for (dir, ext) in OWNED_DIRS {
        let mut pending = vec![out.join(dir)];
        while let Some(current) = pending.pop() {
            let entries = match fs::read_dir(&current) {
                Ok(entries) => entries,
                Err(err) if err.kind() == io::ErrorKind::NotFound => continue,
                Err(err) => return Err(err),
            };
            for entry in entries {
                let path = entry?.path();
                if path.is_dir() {
                    pending.push(path);
                } else if path.extension().is_some_and(|e| e == ext) {
                    if let Ok(relative) = path.strip_prefix(out) {
                        found.insert(relative.to_path_buf());
                    }
                }
            }
        }
    }
    Ok(found)
}

/// Compares `out` with `files`: missing, different and extra files, sorted by path.
pub fn stale_files(out: &Path, files: &[GeneratedFile]) -> io::Result<Vec<StaleFile>> {
    let mut stale = Vec::new();
    for file in files {
        match fs::read(out.join(&file.path)) {
            Ok(bytes) if bytes == file.contents.as_bytes() => {}
            Ok(_) => stale.push(StaleFile {
                path: file.path.clone(),
                staleness: Staleness::Different,
            }),
            Err(err) if err.kind() == io::ErrorKind::NotFound => stale.push(StaleFile {
                path: file.path.clone(),
                staleness: Staleness::Missing,
            }),
            Err(err) => return Err(err),
        }
    }
    let expected: BTreeSet<&Path> = files.iter().map(|f| f.path.as_path()).collect();
    for path in owned_files(out)? {
        if !expected.contains(path.as_path()) {
            stale.push(StaleFile {
                path,
                staleness: Staleness::Extra,
            });
        }
    }
    stale.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(stale)
}

/// Writes `files` below `out`, touching only files whose contents change, and deletes
/// files in generator-owned directories that the generator no longer produces.
/// Returns how many files were written or deleted.
pub fn write(out: &Path, files: &[GeneratedFile]) -> io::Result<usize> {
    let mut changed = 0;
    for entry in stale_files(out, files)? {
        let target = out.join(&entry.path);
        match entry.staleness {
            Staleness::Extra => fs::remove_file(&target)?,
            Staleness::Missing | Staleness::Different => {
                if let Some(parent) = target.parent() {
                    fs::create_dir_all(parent)?;
                }
                let contents = files
                    .iter()
                    .find(|f| f.path == entry.path)
                    .map(|f| f.contents.as_str())
                    .unwrap_or_default();
                fs::write(&target, contents)?;
            }
        }
        changed += 1;
    }
    Ok(changed)
}
