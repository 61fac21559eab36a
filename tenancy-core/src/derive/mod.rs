//! The `#[derive(TenantScoped)]` front end: a model table declared on a Rust struct.
//!
//! ```text
//! #[derive(TenantScoped)]
//! #[tenancy(table = "documents", scoped, primary_key(id), unique(content_hash),
//!           index(created_at), select = Viewer, insert = Editor, update = Editor,
//!           delete = Admin)]
//! pub struct Document {
//!     #[tenancy(default = "gen_random_uuid()")]
//!     pub id: Uuid,
//!     pub title: String,
//!     ...
//! }
//! ```
//!
//! [`derive_table`] turns the struct into a [`model::Table`](crate::model::Table), reporting
//! every misuse at once as `syn::Error`s spanned on the offending tokens. The proc-macro
//! crate calls [`expand`], which expands the table's repository with the same emitter as the
//! generated crate ([`crate::rust::table_repository_tokens_with_markers`]) inside a module
//! named after the table. The CLI calls [`derived_policy_sources`], which reads Rust source
//! files with `syn`, derives the same tables and renders them as `.tenancy` text
//! ([`table_to_dsl`]) so that the DSL validator runs every cross-table check (references,
//! roles, cycles) on the merged model. The attributes are described in `docs/derive.md`.

mod attrs;
mod dsl_text;
mod expand;
mod source;
mod types;

use proc_macro2::TokenStream;
use quote::ToTokens;

use crate::model::Table;

pub use dsl_text::table_to_dsl;
pub use expand::expand;
pub use source::{derived_policy_sources, tables_in_source, DeriveSourceError};

/// A table declared by one `#[derive(TenantScoped)]` struct.
#[derive(Debug, Clone)]
pub struct DerivedTable {
    /// The table, as the DSL would declare it. A global table's `select` rule names no role
    /// here (`min_role` is empty): the lowest role is only known once the table is merged
    /// into a model.
    pub table: Table,
    /// The struct's identifier.
    pub struct_ident: syn::Ident,
    /// The marker type of every role the rules name, keyed by role name (`Editor` ->
    /// `editor`), as the user wrote it (spans included).
    pub role_markers: Vec<(String, syn::Path)>,
    /// Every field's identifier with the name of its column, in declaration order.
    pub fields: Vec<(syn::Ident, String)>,
}

/// Builds the table declared by a `#[derive(TenantScoped)]` struct. All problems are
/// reported at once, combined into one `syn::Error`.
pub fn derive_table(input: &syn::DeriveInput) -> Result<DerivedTable, syn::Error> {
    let mut errors = Errors::default();
    let table = attrs::build(input, &mut errors);
    errors.finish()?;
    // `build` returns `None` only after recording an error, so this is unreachable.
    table.ok_or_else(|| syn::Error::new_spanned(&input.ident, "invalid #[tenancy(...)]"))
}

/// The role name a marker type stands for: its last path segment in snake case
/// (`Editor` -> `editor`, `ProjectAdmin` -> `project_admin`).
pub fn role_name(marker: &syn::Path) -> String {
    marker
        .segments
        .last()
        .map(|segment| snake_case(&segment.ident.to_string()))
        .unwrap_or_default()
}

/// `ProjectAdmin` -> `project_admin`.
fn snake_case(name: &str) -> String {
    let mut out = String::new();
    for (i, c) in name.chars().enumerate() {
        if c.is_ascii_uppercase() {
            if i > 0 {
                out.push('_');
            }
            out.push(c.to_ascii_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}

/// Collects errors like serde_derive's `Ctxt`: every problem is recorded, and reported
/// together at the end.
#[derive(Default)]
pub(crate) struct Errors {
    errors: Vec<syn::Error>,
}

impl Errors {
    /// Records an error spanned on `tokens`.
    pub(crate) fn spanned(&mut self, tokens: impl ToTokens, message: impl std::fmt::Display) {
        self.errors.push(syn::Error::new_spanned(tokens, message));
    }

    /// Records an error at `span`.
    pub(crate) fn at(&mut self, span: proc_macro2::Span, message: impl std::fmt::Display) {
        self.errors.push(syn::Error::new(span, message));
    }

    /// Records an already built error.
    pub(crate) fn push(&mut self, error: syn::Error) {
        self.errors.push(error);
    }

    /// True when no error was recorded.
    pub(crate) fn is_empty(&self) -> bool {
        self.errors.is_empty()
    }

    /// `Err` with every recorded error combined, or `Ok` when there is none.
    pub(crate) fn finish(self) -> Result<(), syn::Error> {
        let mut iter = self.errors.into_iter();
        match iter.next() {
            None => Ok(()),
            Some(mut first) => {
                for error in iter {
                    first.combine(error);
                }
                Err(first)
            }
        }
    }
}

/// The `compile_error!` invocations of an error (one per combined error).
pub(crate) fn compile_errors(error: &syn::Error) -> TokenStream {
    error.to_compile_error()
}

/// "did you mean `x`?" when `word` is close to one of `candidates`.
pub(crate) fn suggestion(word: &str, candidates: &[&str]) -> Option<String> {
    candidates
        .iter()
        .map(|c| (strsim::jaro_winkler(word, c), *c))
        .filter(|(score, _)| *score > 0.8)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, c)| c.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn role_names_are_snake_cased_last_segments() {
        let path: syn::Path = syn::parse_quote!(crate::roles::ProjectAdmin);
        assert_eq!(role_name(&path), "project_admin");
        let path: syn::Path = syn::parse_quote!(Editor);
        assert_eq!(role_name(&path), "editor");
    }

    #[test]
    fn suggestions_need_a_close_word() {
        assert_eq!(
            suggestion("tabel", &["table", "scoped"]).as_deref(),
            Some("table")
        );
        assert_eq!(suggestion("zzz", &["table", "scoped"]), None);
    }
}
