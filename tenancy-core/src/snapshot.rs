//! The committed model snapshot: `model.snapshot.json` in the output directory.
//!
//! It holds the model as of the last generated migration, the target it was generated for,
//! and the name and SHA-256 of every migration file the generator wrote so far. `tenancy
//! generate` diffs the current model against it to write the next numbered migration with
//! only the difference (see [`crate::sql::diff`]), and refuses to go on when a recorded
//! migration file was edited or deleted: applied migrations are history.
//!
//! The JSON is written deterministically (fields in declaration order, two-space
//! indentation, a final newline), so the same snapshot always has the same bytes.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::model::Model;
use crate::sql::Target;

/// File name of the snapshot, relative to the output directory.
pub const SNAPSHOT_FILE: &str = "model.snapshot.json";

/// The snapshot format this version of the generator reads and writes.
pub const SNAPSHOT_FORMAT: u32 = 1;

/// The model as of the last generated migration, and the migrations generated so far.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Snapshot {
    /// Format version ([`SNAPSHOT_FORMAT`]).
    pub format: u32,
    /// The target the migrations were generated for: `postgres` or `citus`.
    pub target: String,
    /// The context contract (docs/context.md) the recorded migrations leave the core at. A
    /// snapshot written before the field existed was at the unsigned contract 2; a generator
    /// whose contract is newer appends the core upgrade migration.
    #[serde(default = "unsigned_contract")]
    pub context_contract: u32,
    /// The core revision (`tenancy_core::sql::CORE_REVISION`) the recorded migrations leave
    /// the core at; 0 in a snapshot written before the field existed, which then has the
    /// revision of its context contract (see [`Snapshot::core_revision`]).
    #[serde(default)]
    pub core_revision: u32,
    /// Every migration file the generator wrote, in order, with its checksum.
    pub migrations: Vec<RecordedMigration>,
    /// The model the migrations above create.
    pub model: Model,
}

/// One generated migration file recorded in the snapshot.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordedMigration {
    /// Path relative to the output directory, e.g. `migrations/0003_add_documents_summary.sql`.
    pub file: String,
    /// SHA-256 of the file's bytes, lower-case hex.
    pub sha256: String,
}

/// The snapshot file cannot be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SnapshotError {
    /// The file is not valid snapshot JSON.
    #[error("{file} is not a valid model snapshot ({reason}); restore it from version control")]
    Invalid {
        /// The snapshot file name.
        file: &'static str,
        /// What the JSON parser said.
        reason: String,
    },
    /// The file was written by another snapshot format.
    #[error("{SNAPSHOT_FILE} has format {found}, this generator reads format {SNAPSHOT_FORMAT}")]
    Format {
        /// The format found in the file.
        found: u32,
    },
}

/// The contract of a snapshot that does not record one.
fn unsigned_contract() -> u32 {
    crate::sql::UNSIGNED_CONTEXT_CONTRACT
}

impl Snapshot {
    /// A snapshot of `model` generated for `target`, covering `migrations`.
    pub fn new(model: &Model, target: Target, migrations: Vec<RecordedMigration>) -> Snapshot {
        Snapshot {
            format: SNAPSHOT_FORMAT,
            target: target_name(target).to_owned(),
            context_contract: crate::sql::context_contract(target),
            core_revision: crate::sql::CORE_REVISION,
            migrations,
            model: model.clone(),
        }
    }

    /// The core revision the recorded migrations leave the core at.
    pub fn core_revision(&self) -> u32 {
        // A snapshot written before revisions were recorded has the revision of its contract
        // (revisions 2 and 3 are the unsigned and the signed context).
        self.core_revision.max(self.context_contract)
    }

    /// The snapshot as deterministic, pretty-printed JSON ending with a newline.
    pub fn to_json(&self) -> String {
        // Serialising plain structs, strings and integers cannot fail.
        let mut text = serde_json::to_string_pretty(self).unwrap_or_default();
        text.push('\n');
        text
    }

    /// Parses a snapshot written by [`Snapshot::to_json`].
    pub fn from_json(text: &str) -> Result<Snapshot, SnapshotError> {
        let snapshot: Snapshot =
            serde_json::from_str(text).map_err(|err| SnapshotError::Invalid {
                file: SNAPSHOT_FILE,
                reason: err.to_string(),
            })?;
        if snapshot.format != SNAPSHOT_FORMAT {
            return Err(SnapshotError::Format {
                found: snapshot.format,
            });
        }
        Ok(snapshot)
    }
}

impl RecordedMigration {
    /// Records the file at `path` (relative to the output directory) with `contents`.
    pub fn new(path: &str, contents: &[u8]) -> RecordedMigration {
        RecordedMigration {
            file: path.to_owned(),
            sha256: sha256_hex(contents),
        }
    }
}

/// The name a target is recorded under in the snapshot.
pub fn target_name(target: Target) -> &'static str {
    match target {
        Target::Postgres => "postgres",
        Target::Citus => "citus",
    }
}

/// SHA-256 of `bytes` as lower-case hex (64 characters).
pub fn sha256_hex(bytes: &[u8]) -> String {
    let digest = Sha256::digest(bytes);
    let mut hex = String::with_capacity(64);
    for byte in digest {
        hex.push_str(&format!("{byte:02x}"));
    }
    hex
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sha256_of_empty_input_is_the_known_digest() {
        assert_eq!(
            sha256_hex(b""),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }
}
