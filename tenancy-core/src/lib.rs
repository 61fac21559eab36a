//! tenancy-core: the policy DSL front end, the validated [`model::Model`] and the
//! emitters that turn it into PostgreSQL migrations, row-level security and Rust
//! repositories.
//!
//! The proc-macro crate (`tenancy-macros`) and the `tenancy` CLI are thin users of this
//! library: parse -> validate -> emit all happen here, so every path produces the same
//! output for the same model.

pub mod access;
pub mod condition;
pub mod derive;
pub mod dsl;
pub mod explain;
pub mod explain_json;
pub mod model;
pub mod output;
pub mod python;
pub mod rust;
pub mod snapshot;
pub mod sql;
