//! `tenancy verify`: a proof over what is deployed, not over the model alone.
//!
//! The row-level security of a database is read from its migration files with PostgreSQL's
//! own parser (libpg_query, through the `pg_query` crate) or from the catalogs of a live
//! database (`pg_policies`, whose expressions are parsed the same way). For every
//! tenant-owned table of the model and every command, the proof evaluates the deployed
//! policies (permissive ones ORed, restrictive ones ANDed, the app role's privileges, whether
//! row-level security is on) over an exhaustive set of callers and rows ([`proof`]) and shows
//! that:
//!
//! - the tenant boundary is a conjunct of what any policy admits: no row of another tenant is
//!   ever admitted, even one carrying the caller's project id;
//! - no permissive policy exists outside the model (by name, with a counterexample when it
//!   admits more);
//! - the effective rights equal the model's access matrix (the matrix of `ACCESS.md` and
//!   `tenancy diff`): no caller and row the model refuses is admitted, none it grants is
//!   refused.
//!
//! A failure names the table, the command and a counterexample (a caller's role in its
//! project and a row).

pub mod deployed;
pub mod expr;
pub mod proof;
pub mod report;

pub use deployed::{Deployed, DeployedPolicy, PolicyCommand, PolicyExpr, TableState};
pub use proof::verify;
pub use report::{CommandProof, Failure, FailureKind, Phase, Report, Witness};

/// Exit code of `tenancy verify` when the proof fails (0: proven; 1: usage, I/O or database
/// errors).
pub const EXIT_NOT_PROVEN: u8 = 4;

/// Why the deployed policies could not be read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum VerifyError {
    /// A file or directory could not be read.
    #[error("could not read `{path}`: {message}")]
    Io {
        /// The path.
        path: String,
        /// What went wrong.
        message: String,
    },
    /// PostgreSQL's parser refused a migration file.
    #[error("PostgreSQL's parser refuses `{file}`: {message}")]
    Parse {
        /// The file.
        file: String,
        /// The parser's message.
        message: String,
    },
    /// The catalogs could not be read.
    #[error("could not read the database's policies: {0}")]
    Database(String),
}
