//! Who may do what, as data: the access matrix of a model ([`matrix`]), rendered for humans as
//! `generated/ACCESS.md` ([`document`]), compared between two models ([`diff`]) with a concrete
//! caller and row for every widening ([`counterexample`]).
//!
//! Everything here reads the same model and the same helpers as the SQL emitter
//! (`granted_commands`, `updatable_columns`) and the same wording as `tenancy explain`, so the
//! matrix says what the generated policies and grants enforce.

pub mod counterexample;
pub mod diff;
pub mod document;
pub mod expect;
pub mod matrix;
pub mod render;

pub use diff::{diff, AccessChange, AccessDiff, ChangeKind, Effect};
pub use document::access_markdown;
pub use matrix::{AccessMatrix, CommandAccess, RoleAccess, TableAccess};

/// File name of the access document, relative to the output directory.
pub const ACCESS_FILE: &str = "ACCESS.md";
