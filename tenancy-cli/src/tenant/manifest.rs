//! The manifest of a tenant export (`manifest.json`): what was exported, from which model, and
//! each file's row count and SHA-256. It is written last, so a directory without one is an
//! unfinished export that nothing trusts.

use std::io::{BufRead, BufReader, Read};
use std::path::Path;

use anyhow::{bail, Context, Result};
use sha2::{Digest, Sha256};

use super::plan::{PlanColumn, TablePlan};

/// The manifest's file name inside an export directory.
pub const MANIFEST_FILE: &str = "manifest.json";

/// The manifest format this version writes and reads; a newer one is refused.
pub const FORMAT: u32 = 1;

/// The manifest of one export.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Manifest {
    /// The manifest format ([`FORMAT`]).
    pub format: u32,
    /// The program that wrote it (`tenancy-cli 0.1.0`).
    pub generator: String,
    /// SHA-256 of the model (its JSON form) the export was made with.
    pub model_sha256: String,
    /// The role order of the model, least privileged first (memberships hold these values).
    pub roles: Vec<String>,
    /// The exported tenant.
    pub tenant: ManifestTenant,
    /// One entry per table, parents before children (the order an import loads them in).
    pub tables: Vec<ManifestTable>,
}

/// The exported tenant.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ManifestTenant {
    /// Its id.
    pub id: uuid::Uuid,
    /// Its slug.
    pub slug: String,
}

/// One exported table.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ManifestTable {
    /// The table's name.
    pub table: String,
    /// Its file in the export directory (one JSON object per line).
    pub file: String,
    /// The columns each line holds, with their types.
    pub columns: Vec<PlanColumn>,
    /// How many rows (lines) the file holds.
    pub rows: u64,
    /// SHA-256 of the file, lower-case hex.
    pub sha256: String,
}

/// The SHA-256 of a model: of its JSON form.
pub fn model_sha256(model: &tenancy_core::model::Model) -> Result<String> {
    let json = serde_json::to_string(model).context("could not serialise the model")?;
    Ok(tenancy_core::snapshot::sha256_hex(json.as_bytes()))
}

/// The generator recorded in manifests.
pub fn generator() -> String {
    format!("tenancy-cli {}", env!("CARGO_PKG_VERSION"))
}

impl Manifest {
    /// The manifest as pretty JSON with a final newline.
    pub fn to_json(&self) -> Result<String> {
        let mut text =
            serde_json::to_string_pretty(self).context("could not write the manifest")?;
        text.push('\n');
        Ok(text)
    }

    /// Reads `dir/manifest.json`; a missing one means an unfinished export.
    pub fn read(dir: &Path) -> Result<Manifest> {
        let path = dir.join(MANIFEST_FILE);
        let text = match std::fs::read_to_string(&path) {
            Ok(text) => text,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => bail!(
                "{} has no {MANIFEST_FILE}: it is not an export or the export did not finish",
                dir.display()
            ),
            Err(error) => {
                return Err(error).with_context(|| format!("could not read {}", path.display()))
            }
        };
        // The format first, so a newer manifest is refused for what it is.
        let format = serde_json::from_str::<serde_json::Value>(&text)
            .ok()
            .and_then(|v| v.get("format").and_then(serde_json::Value::as_u64));
        match format {
            Some(f) if f > u64::from(FORMAT) => bail!(
                "{} has manifest format {f}, newer than this tenancy understands ({FORMAT}): use a newer tenancy",
                path.display()
            ),
            _ => {}
        }
        serde_json::from_str(&text)
            .with_context(|| format!("{} is not a valid export manifest", path.display()))
    }

    /// Checks that the roles are the current model's, that every table of the manifest exists
    /// in the current model with the same columns and types, and that the model has no tenant
    /// table the export lacks.
    pub fn check_compatible(&self, plans: &[TablePlan], roles: &[String]) -> Result<()> {
        if self.roles != roles {
            bail!(
                "the export was made with an incompatible model: its roles are {}, the current policies' are {}",
                self.roles.join(" < "),
                roles.join(" < ")
            );
        }
        for entry in &self.tables {
            let Some(plan) = plans.iter().find(|p| p.name == entry.table) else {
                bail!(
                    "the export was made with an incompatible model: table {} is not in the current policies",
                    entry.table
                );
            };
            if plan.columns != entry.columns {
                bail!(
                    "the export was made with an incompatible model: the columns of table {} differ from the current policies ({} in the export, {} now)",
                    entry.table,
                    describe(&entry.columns),
                    describe(&plan.columns)
                );
            }
        }
        if let Some(missing) = plans
            .iter()
            .find(|p| !self.tables.iter().any(|t| t.table == p.name))
        {
            bail!(
                "the export was made with an incompatible model: it has no file for table {}",
                missing.name
            );
        }
        Ok(())
    }

    /// Checks every file's row count and SHA-256 against the manifest (reads each file once).
    pub fn verify_files(&self, dir: &Path) -> Result<()> {
        for entry in &self.tables {
            if entry.file.contains('/') || entry.file.contains('\\') || entry.file.starts_with('.')
            {
                bail!(
                    "the manifest names a file outside the export directory: {}",
                    entry.file
                );
            }
            let path = dir.join(&entry.file);
            let file = std::fs::File::open(&path)
                .with_context(|| format!("could not open {}", path.display()))?;
            let (rows, sha256) = count_and_hash(file)
                .with_context(|| format!("could not read {}", path.display()))?;
            if rows != entry.rows {
                bail!(
                    "{} holds {rows} rows but the manifest says {}: the export is damaged",
                    path.display(),
                    entry.rows
                );
            }
            if sha256 != entry.sha256 {
                bail!(
                    "{} does not match its SHA-256 in the manifest: the export is damaged",
                    path.display()
                );
            }
        }
        Ok(())
    }
}

fn describe(columns: &[PlanColumn]) -> String {
    columns
        .iter()
        .map(|c| format!("{} {}{}", c.name, c.ty, if c.nullable { "?" } else { "" }))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Lines and SHA-256 of a reader, streamed.
pub fn count_and_hash(reader: impl Read) -> std::io::Result<(u64, String)> {
    let mut reader = BufReader::with_capacity(1 << 16, reader);
    let mut hasher = Sha256::new();
    let mut rows = 0u64;
    let mut line = Vec::new();
    loop {
        line.clear();
        let n = reader.read_until(b'\n', &mut line)?;
        if n == 0 {
            break;
        }
        hasher.update(&line);
        rows += 1;
    }
    Ok((rows, hex(&hasher.finalize())))
}

/// Lower-case hex of bytes.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
