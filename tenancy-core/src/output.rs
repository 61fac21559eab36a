//! The generated output directory as a whole: produce every file, write only what
//! changed, and tell which files are stale (`tenancy generate --check`).
//!
//! The generator owns `migrations/*.sql`, `src/**/*.rs`, `ACCESS.md` and `model.snapshot.json` below the
//! output directory; anything else there (the repository crate's `Cargo.toml`, a README) is
//! left alone.
//!
//! Migrations are append-only once a snapshot exists ([`generate`]): the migrations recorded
//! in `model.snapshot.json` are history and are passed through byte for byte; a changed model
//! adds the next numbered migration with only the difference. Without a snapshot (a new
//! project, before its first release) the baseline `0001`/`0002` files are generated from
//! scratch, as [`generate_all`] does, and the snapshot is written next to them.

use std::collections::BTreeSet;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use crate::model::Model;
use crate::snapshot::{RecordedMigration, Snapshot, SnapshotError, SNAPSHOT_FILE};
use crate::sql::diff::{incremental_migrations, DiffError, DiffOptions};
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
    /// The committed snapshot cannot be read.
    #[error(transparent)]
    Snapshot(#[from] SnapshotError),
    /// The snapshot was generated for another target.
    #[error("{SNAPSHOT_FILE} was generated for target {recorded}, not {requested}; generate with `--target {recorded}`")]
    TargetChanged {
        /// The target recorded in the snapshot.
        recorded: String,
        /// The target asked for.
        requested: &'static str,
    },
    /// A migration recorded in the snapshot is missing or was edited.
    #[error(
        "{file} was {how} after it was generated, but generated migrations are history \
         (a database may have applied them); restore it from version control and change the \
         policies instead"
    )]
    HistoryChanged {
        /// The migration file, relative to the output directory.
        file: String,
        /// `edited` or `deleted`.
        how: &'static str,
    },
    /// The policies changed in a way no incremental migration can express.
    #[error("cannot generate the next migration: {0}")]
    Diff(#[from] DiffError),
    /// `--target citus` with a model Citus cannot distribute: every problem, with its fix.
    #[error("{}", .0.iter().map(ToString::to_string).collect::<Vec<_>>().join("\n"))]
    Citus(Vec<crate::sql::CitusProblem>),
}

/// Refuses, for the Citus target, a model Citus cannot distribute (sql/citus.rs).
fn check_target(model: &Model, target: Target) -> Result<(), GenerateError> {
    if target == Target::Citus {
        let problems = crate::sql::citus_problems(model);
        if !problems.is_empty() {
            return Err(GenerateError::Citus(problems));
        }
    }
    Ok(())
}

/// What generation reads from the output directory: the committed snapshot and the
/// migration files already there.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ExistingOutput {
    /// The text of `model.snapshot.json`, when it exists.
    pub snapshot: Option<String>,
    /// Every `migrations/*.sql` file (path relative to the output directory, contents).
    pub migrations: Vec<GeneratedFile>,
}

impl ExistingOutput {
    /// Reads the snapshot and the migration files below `out` (nothing when `out` is new).
    pub fn read(out: &Path) -> io::Result<ExistingOutput> {
        let snapshot = match fs::read_to_string(out.join(SNAPSHOT_FILE)) {
            Ok(text) => Some(text),
            Err(err) if err.kind() == io::ErrorKind::NotFound => None,
            Err(err) => return Err(err),
        };
        let mut migrations = Vec::new();
        let entries = match fs::read_dir(out.join(MIGRATIONS_DIR)) {
            Ok(entries) => entries.collect::<io::Result<Vec<_>>>()?,
            Err(err) if err.kind() == io::ErrorKind::NotFound => Vec::new(),
            Err(err) => return Err(err),
        };
        for entry in entries {
            let path = entry.path();
            if path.is_file() && path.extension().is_some_and(|e| e == "sql") {
                let contents = fs::read_to_string(&path)?;
                if let Ok(relative) = path.strip_prefix(out) {
                    migrations.push(GeneratedFile {
                        path: relative.to_path_buf(),
                        contents,
                    });
                }
            }
        }
        migrations.sort_by(|a, b| a.path.cmp(&b.path));
        Ok(ExistingOutput {
            snapshot,
            migrations,
        })
    }
}

/// Options of [`generate`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct GenerateOptions {
    /// Allow the next migration to drop tables and columns removed from the policies.
    pub allow_data_loss: bool,
}

/// The directory (relative to the output directory) holding the migrations.
const MIGRATIONS_DIR: &str = "migrations";

/// Every file `tenancy generate` writes for `model`, given what the output directory
/// already holds: the migrations (history passed through, plus the next incremental one
/// when the model changed), the snapshot and the repositories, in a stable order.
pub fn generate(
    model: &Model,
    target: Target,
    existing: &ExistingOutput,
    options: GenerateOptions,
) -> Result<Vec<GeneratedFile>, GenerateError> {
    // A snapshot of another target is reported first (it says which target to use).
    if existing.snapshot.is_none() {
        check_target(model, target)?;
    }
    let mut files = match &existing.snapshot {
        None => {
            let baseline = crate::sql::generate_migrations(model, target);
            let recorded = baseline
                .iter()
                .map(|f| RecordedMigration::new(&slash_path(&f.path), f.contents.as_bytes()))
                .collect();
            let snapshot = Snapshot::new(model, target, recorded);
            let mut files = baseline;
            files.push(snapshot_file(snapshot.to_json()));
            files
        }
        Some(text) => {
            let files = migrations_after_snapshot(model, target, existing, text, options)?;
            check_target(model, target)?;
            files
        }
    };
    let rust = crate::rust::generate_repositories(model)
        .map_err(|err| GenerateError::Rust(err.to_string()))?;
    files.extend(rust);
    files.push(GeneratedFile {
        path: PathBuf::from(crate::access::ACCESS_FILE),
        contents: crate::access::access_markdown(model),
    });
    files.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(files)
}

/// The recorded migrations, byte for byte, plus the next ones when `model` differs from the
/// snapshot, and the snapshot file.
fn migrations_after_snapshot(
    model: &Model,
    target: Target,
    existing: &ExistingOutput,
    snapshot_text: &str,
    options: GenerateOptions,
) -> Result<Vec<GeneratedFile>, GenerateError> {
    let mut snapshot = Snapshot::from_json(snapshot_text)?;
    let requested = crate::snapshot::target_name(target);
    if snapshot.target != requested {
        return Err(GenerateError::TargetChanged {
            recorded: snapshot.target.clone(),
            requested,
        });
    }
    let mut files = Vec::new();
    let mut last_number = 0u32;
    for recorded in &snapshot.migrations {
        let file = existing
            .migrations
            .iter()
            .find(|f| slash_path(&f.path) == recorded.file)
            .ok_or_else(|| GenerateError::HistoryChanged {
                file: recorded.file.clone(),
                how: "deleted",
            })?;
        if crate::snapshot::sha256_hex(file.contents.as_bytes()) != recorded.sha256 {
            return Err(GenerateError::HistoryChanged {
                file: recorded.file.clone(),
                how: "edited",
            });
        }
        last_number = last_number.max(migration_number(&recorded.file).unwrap_or(0));
        files.push(file.clone());
    }

    // An older core is upgraded first, one revision at a time, for the model the database has.
    let upgrades = crate::sql::core_upgrades(
        &snapshot.model,
        target,
        snapshot.context_contract,
        snapshot.core_revision(),
    );
    let core_upgraded = !upgrades.is_empty();
    for upgrade in upgrades {
        last_number += 1;
        let path = format!("{MIGRATIONS_DIR}/{last_number:04}_{}.sql", upgrade.name);
        snapshot
            .migrations
            .push(RecordedMigration::new(&path, upgrade.contents.as_bytes()));
        files.push(GeneratedFile {
            path: PathBuf::from(path),
            contents: upgrade.contents,
        });
        snapshot.core_revision = upgrade.revision;
    }
    if core_upgraded {
        snapshot.context_contract = crate::sql::context_contract(target);
        snapshot.core_revision = crate::sql::CORE_REVISION;
    }

    let next = incremental_migrations(
        &snapshot.model,
        model,
        target,
        DiffOptions {
            allow_data_loss: options.allow_data_loss,
        },
    )?;
    if next.is_empty() && core_upgraded {
        files.push(snapshot_file(snapshot.to_json()));
        return Ok(files);
    }
    if next.is_empty() {
        // Nothing for the database to do: the snapshot stays as committed.
        files.push(snapshot_file(snapshot_text.to_owned()));
        return Ok(files);
    }
    // The first new migration says, in its header, what access it adds and removes.
    let access = crate::access::diff(&snapshot.model, model);
    for (i, migration) in next.into_iter().enumerate() {
        let contents = if i == 0 {
            crate::access::render::with_access_header(&migration.contents, &access)
        } else {
            migration.contents
        };
        last_number += 1;
        let path = format!("{MIGRATIONS_DIR}/{last_number:04}_{}.sql", migration.slug);
        snapshot
            .migrations
            .push(RecordedMigration::new(&path, contents.as_bytes()));
        files.push(GeneratedFile {
            path: PathBuf::from(path),
            contents,
        });
    }
    snapshot.model = model.clone();
    files.push(snapshot_file(snapshot.to_json()));
    Ok(files)
}

/// The recorded baseline migrations that this generator would now write differently for
/// the snapshot's own model: the SQL emitter changed since they were generated. They stay
/// as they are (history); before a first release, deleting the snapshot and generating again
/// re-creates the baseline. Empty without a snapshot.
pub fn baseline_drift(
    existing: &ExistingOutput,
    target: Target,
) -> Result<Vec<PathBuf>, GenerateError> {
    let Some(text) = &existing.snapshot else {
        return Ok(Vec::new());
    };
    let snapshot = Snapshot::from_json(text)?;
    let core_upgraded = snapshot
        .migrations
        .iter()
        .any(|m| crate::sql::is_core_upgrade_file(&m.file));
    if snapshot.context_contract < crate::sql::context_contract(target)
        || snapshot.core_revision() < crate::sql::CORE_REVISION
        || core_upgraded
    {
        // The baseline was written for an older core on purpose; a core upgrade migration
        // (see `generate`) carries the difference, so this is not drift.
        return Ok(Vec::new());
    }
    let mut drifted = Vec::new();
    for fresh in crate::sql::generate_migrations(&snapshot.model, target) {
        let recorded = slash_path(&fresh.path);
        if !snapshot.migrations.iter().any(|m| m.file == recorded) {
            continue;
        }
        let current = existing.migrations.iter().find(|f| f.path == fresh.path);
        if current.is_some_and(|f| f.contents != fresh.contents) {
            drifted.push(fresh.path);
        }
    }
    Ok(drifted)
}

/// The snapshot as a generated file.
fn snapshot_file(contents: String) -> GeneratedFile {
    GeneratedFile {
        path: PathBuf::from(SNAPSHOT_FILE),
        contents,
    }
}

/// A relative path with `/` separators, as recorded in the snapshot.
fn slash_path(path: &Path) -> String {
    path.components()
        .map(|c| c.as_os_str().to_string_lossy())
        .collect::<Vec<_>>()
        .join("/")
}

/// `3` for `migrations/0003_add_x.sql`.
fn migration_number(file: &str) -> Option<u32> {
    let name = file.rsplit('/').next()?;
    let digits: String = name.chars().take_while(char::is_ascii_digit).collect();
    digits.parse().ok()
}

/// The baseline files for `model` ignoring any history (the `0001`/`0002` migrations and
/// the repositories), in a stable order; [`generate`] is what `tenancy generate` writes.
pub fn generate_all(model: &Model, target: Target) -> Result<Vec<GeneratedFile>, GenerateError> {
    check_target(model, target)?;
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
