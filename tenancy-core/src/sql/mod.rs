//! PostgreSQL migration and row-level security emitter.
//!
//! [`generate_migrations`] turns a validated [`Model`] into two migration files:
//!
//! - `migrations/0001_tenancy_core.sql`: helper schema, roles, the role enum, the context
//!   helpers of `docs/context.md` and the three core tables with their row-level security;
//! - `migrations/0002_tables.sql`: every scoped and global table, in dependency order, each
//!   followed by its row-level security and grants.
//!
//! The output is deterministic (same model, byte-identical text) and is meant to be read top
//! to bottom by a security reviewer.

mod adopt;
mod authority;
mod citus;
mod column_rights;
mod conditions;
mod context;
mod core;
pub mod diff;
mod ident;
mod masked;
pub mod names;
pub mod probes;
mod security;
mod signed;
mod statistics;
mod surfaces;
mod tables;
pub mod vector_settings;

use std::path::PathBuf;

use crate::model::Model;

pub use adopt::{
    no_transaction_statements, runs_outside_transaction, BACKFILL_BATCH_ROWS, NO_TRANSACTION_MARKER,
};
pub use citus::{citus_problems, CitusProblem};
pub(crate) use column_rights::granted_update_columns;
pub use context::{context_call, ContextHelper};
pub use ident::ident as quote_ident;
pub(crate) use ident::literal as quote_literal;
pub(crate) use ident::RESERVED_KEYWORDS;
pub use masked::{masked_view_name, reader_role};
pub(crate) use security::granted_commands;
pub use signed::{CONTEXT_CONTRACT, UNSIGNED_CONTEXT_CONTRACT};
pub use surfaces::LARGE_OBJECT_FUNCTIONS;
pub(crate) use tables::all_foreign_keys;

/// Which PostgreSQL flavour the policies target. The ONLY place that differs is how a policy
/// calls a context helper: Postgres wraps it as `(SELECT helper(...))` (an InitPlan evaluated
/// once per statement), Citus calls it directly (Citus 13 rejects sub-selects in policies).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Target {
    /// Plain PostgreSQL (15 or later): helpers are called through `(SELECT ...)`.
    #[default]
    Postgres,
    /// Citus: helpers are called directly.
    Citus,
}

/// The context contract the generated core speaks for `target`: the signed context
/// ([`CONTEXT_CONTRACT`]) on both; on Citus the seal is bound to the distributed transaction,
/// so the workers verify it too (docs/citus.md).
pub fn context_contract(_target: Target) -> u32 {
    CONTEXT_CONTRACT
}

/// The migration that upgrades a core generated for context contract `from` to
/// [`context_contract`]`(target)`, or `None` when it already speaks it.
pub fn core_upgrade_migration(model: &Model, target: Target, from: u32) -> Option<String> {
    core::core_upgrade_migration(model, target, from)
}

/// The core revision this generator writes. Each revision that changed the core of an
/// existing database has an upgrade migration ([`core_upgrades`]):
/// 2 = the unsigned context; 3 = the signed context (plain PostgreSQL only, `core_context_v3`);
/// 4 = the authority rules of the memberships table (`core_authority`); 5 = no planner
/// statistics on tenant-owned tables (`core_statistics`); 6 = project membership as an index
/// condition in the policies (`core_policy_index`).
pub const CORE_REVISION: u32 = 6;

/// One migration that upgrades an existing core in place.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CoreUpgrade {
    /// The file name after the migration number and `_`, without `.sql`
    /// (`core_context_v3`, `core_authority`).
    pub name: &'static str,
    /// The core revision after it.
    pub revision: u32,
    /// The migration's text.
    pub contents: String,
}

/// The names of every core upgrade migration this generator writes (see [`CoreUpgrade`]).
pub const CORE_UPGRADE_NAMES: [&str; 4] = [
    "core_context_v3",
    "core_authority",
    "core_statistics",
    "core_policy_index",
];

/// The migrations that bring a core at context contract `contract` and revision `revision`
/// (generated for `model`, the model the database has) to this generator's core, in order.
pub fn core_upgrades(
    model: &Model,
    target: Target,
    contract: u32,
    revision: u32,
) -> Vec<CoreUpgrade> {
    let mut out = Vec::new();
    if let Some(contents) = core::core_upgrade_migration(model, target, contract) {
        out.push(CoreUpgrade {
            name: CORE_UPGRADE_NAMES[0],
            revision: 3,
            contents,
        });
    }
    if revision < 4 {
        out.push(CoreUpgrade {
            name: CORE_UPGRADE_NAMES[1],
            revision: 4,
            contents: core::authority_upgrade_migration(model, target),
        });
    }
    if revision < 5 {
        out.push(CoreUpgrade {
            name: CORE_UPGRADE_NAMES[2],
            revision: 5,
            contents: core::statistics_upgrade_migration(model, target),
        });
    }
    if revision < 6 {
        out.push(CoreUpgrade {
            name: CORE_UPGRADE_NAMES[3],
            revision: 6,
            contents: core::policy_index_upgrade_migration(model, target),
        });
    }
    out
}

/// True when `file` (`migrations/0004_core_authority.sql`) is a core upgrade migration.
pub fn is_core_upgrade_file(file: &str) -> bool {
    let name = file.rsplit('/').next().unwrap_or(file);
    let Some(rest) = name.strip_suffix(".sql") else {
        return false;
    };
    let Some((number, tail)) = rest.split_once('_') else {
        return false;
    };
    number.len() == 4
        && number.bytes().all(|b| b.is_ascii_digit())
        && CORE_UPGRADE_NAMES.contains(&tail)
}

/// One generated file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GeneratedFile {
    /// Path relative to the output directory, e.g. `migrations/0001_tenancy_core.sql`.
    pub path: PathBuf,
    /// The file's full text.
    pub contents: String,
}

/// Generates the migration files for `model`, in the order they must be applied.
pub fn generate_migrations(model: &Model, target: Target) -> Vec<GeneratedFile> {
    if let Some(adoption) = &model.adoption {
        // Adopted tables are not created but taken over by a phased migration (sql/adopt.rs).
        let mut files = vec![GeneratedFile {
            path: PathBuf::from("migrations/0001_tenancy_core.sql"),
            contents: core::core_migration(model, target),
        }];
        files.extend(adopt::adoption_migrations(model, adoption, target));
        return files;
    }
    vec![
        GeneratedFile {
            path: PathBuf::from("migrations/0001_tenancy_core.sql"),
            contents: core::core_migration(model, target),
        },
        GeneratedFile {
            path: PathBuf::from("migrations/0002_tables.sql"),
            contents: tables::tables_migration(model, target),
        },
    ]
}

/// The comment block every generated file starts with.
fn file_header(title: &str, target: Target, helper_schema: &str) -> String {
    let target_line = match target {
        Target::Postgres => format!(
            "-- Target: PostgreSQL 15+ (policies call the context helpers as \
             `(SELECT {helper_schema}.fn(...))`,\n-- so each is an InitPlan evaluated once per statement)."
        ),
        Target::Citus => format!(
            "-- Target: Citus (policies call the context helpers directly, \
             `{helper_schema}.fn(...)`,\n-- because Citus rejects sub-selects in policies; \
             tables distributed by tenant, see docs/citus.md)."
        ),
    };
    format!(
        "-- {title}\n\
         --\n\
         -- GENERATED from policies/*.tenancy by `tenancy generate`. DO NOT EDIT:\n\
         -- change the policies and generate again.\n\
         {target_line}\n"
    )
}

/// A comment heading that separates one section (usually one table) from the next.
fn section_heading(title: &str, doc: Option<&str>) -> String {
    let rule = "-- ".to_owned() + &"-".repeat(76);
    let mut out = format!("\n{rule}\n-- {title}\n");
    if let Some(doc) = doc {
        // The validator refuses control characters in docs; a carriage return must still
        // never end the `--` comment, so every line break PostgreSQL knows starts a new one.
        for line in doc.split(['\n', '\r']) {
            let line: String = line
                .trim_end()
                .chars()
                .map(|c| {
                    if c.is_control() && c != '\t' {
                        '\u{fffd}'
                    } else {
                        c
                    }
                })
                .collect();
            if line.is_empty() {
                out.push_str("--\n");
            } else {
                out.push_str(&format!("--   {line}\n"));
            }
        }
    }
    out.push_str(&rule);
    out.push('\n');
    out
}
