//! The `#[derive(TenantScoped)]` front end: a model table declared on a Rust struct.
//!
//! ```text
//! #[derive(TenantScoped)]
//! #[tenancy(table = "notes", scoped, primary_key(id), unique(content_hash),
//!           index(created_at), select = Viewer, insert = Editor, update = Editor,
//!           delete = Admin)]
//! pub struct Note {
//!     #[tenancy(default = "gen_random_uuid()")]
//!     pub id: Uuid,
//!     pub title: String,
//!     ...
//! }
//! ```
//!
//! [`derive_table`] reads the struct into the same syntax tree the DSL parser builds (a
//! table declaration, spanned on the Rust tokens) and runs the one DSL validator on it, so a
//! derived table obeys exactly the rules of a declared one; Rust-level misuse (attribute
//! syntax, field types) is reported by the reader itself. Every problem is reported at once
//! as `syn::Error`s spanned on the offending tokens. The proc-macro crate calls [`expand`],
//! which expands the table's repository with the same emitter as the generated crate
//! ([`crate::rust::table_repository_tokens_with_markers`]) inside a module named after the
//! table. The CLI calls [`compile_with_rust`], which reads Rust source files with `syn` and
//! validates their tables together with the policy files as one model (references, roles,
//! cycles), with diagnostics rendered on the Rust source. [`table_to_dsl`] prints a table as
//! `.tenancy` text (`TENANCY_DSL`, for moving a struct into a policy file); nothing compiles
//! that text. The attributes are described in `docs/derive.md`.

mod attrs;
mod decl;
mod dsl_text;
mod expand;
mod source;
mod spans;
mod types;

use proc_macro2::TokenStream;
use quote::ToTokens;

use crate::model::Table;

pub use dsl_text::table_to_dsl;
pub use expand::expand;
pub use source::{compile_with_rust, tables_in_source, DeriveSourceError};

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

/// Builds the table declared by a `#[derive(TenantScoped)]` struct: reads it into a table
/// declaration and validates that with the DSL validator (every check that needs no other
/// table). All problems are reported at once, combined into one `syn::Error`.
pub fn derive_table(input: &syn::DeriveInput) -> Result<DerivedTable, syn::Error> {
    let mut errors = Errors::default();
    let mut spans = spans::SpanMap::recorded();
    let built = attrs::build(input, &mut errors, &mut spans);
    errors.finish()?;
    // `build` returns `None` only after recording an error, so this is unreachable.
    let built =
        built.ok_or_else(|| syn::Error::new_spanned(&input.ident, "invalid #[tenancy(...)]"))?;
    let (table, diagnostics) = crate::dsl::validate_table_alone(&built.decl);
    let mut errors = Errors::default();
    for diagnostic in diagnostics
        .iter()
        .filter(|d| d.severity() == crate::dsl::Severity::Error)
    {
        errors.push(spans.error(diagnostic, &input.ident));
    }
    errors.finish()?;
    let table = table.ok_or_else(|| syn::Error::new_spanned(&input.ident, "invalid table"))?;
    Ok(DerivedTable {
        table,
        struct_ident: input.ident.clone(),
        role_markers: built.role_markers,
        fields: built.fields,
    })
}

/// The role name a marker type stands for: its last path segment in snake case
/// (`Editor` -> `editor`, `ProjectAdmin` -> `project_admin`).
pub fn role_name(marker: &syn::Path) -> String {
    marker
        .segments
        .last()
        .map(|segment| snake_case(&syn::ext::IdentExt::unraw(&segment.ident).to_string()))
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

    /// The errors of deriving `source`, each with the text of the line and column it
    /// points at (the source is parsed from a string, so its tokens have locations).
    fn located_errors(source: &str) -> Vec<(String, String)> {
        let input: syn::DeriveInput = match syn::parse_str(source) {
            Ok(input) => input,
            Err(error) => panic!("not a struct: {error}"),
        };
        let Err(error) = derive_table(&input) else {
            return Vec::new();
        };
        error
            .into_iter()
            .map(|e| {
                let at = e.span().start();
                let line = source.lines().nth(at.line - 1).unwrap_or_default();
                let from: String = line.chars().skip(at.column).collect();
                (e.to_string(), from)
            })
            .collect()
    }

    #[test]
    fn the_dsl_validator_checks_derived_tables_at_the_rust_tokens() {
        let errors = located_errors(
            "#[tenancy(table = \"notes\", scoped, primary_key(id), gin_index(body), select = Viewer)]\n\
             struct Note {\n\
                 id: Uuid,\n\
                 user: Uuid,\n\
                 #[tenancy(default = \"now()\")]\n\
                 body: String,\n\
             }",
        );
        assert_eq!(errors.len(), 3, "{errors:#?}");
        // Checks the derive never had: the DSL's reserved words apply to derived columns.
        let reserved = errors
            .iter()
            .find(|(m, _)| m.contains("column name `user` is a reserved word in SQL"))
            .unwrap_or_else(|| panic!("{errors:#?}"));
        assert!(reserved.1.starts_with("user: Uuid"), "{reserved:?}");
        assert!(
            reserved.0.contains("= help: rename it, e.g. `user_column`"),
            "{reserved:?}"
        );
        let default = errors
            .iter()
            .find(|(m, _)| m.contains("now()"))
            .unwrap_or_else(|| panic!("{errors:#?}"));
        assert!(default.1.starts_with("\"now()\""), "{default:?}");
        let gin = errors
            .iter()
            .find(|(m, _)| m.contains("GIN index on `text` column `body`"))
            .unwrap_or_else(|| panic!("{errors:#?}"));
        assert!(gin.1.starts_with("body), select"), "{gin:?}");
    }

    #[test]
    fn a_reserved_table_name_is_reported_on_the_literal() {
        let errors = located_errors(
            "#[tenancy(table = \"order\", scoped, primary_key(id), select = Viewer)]\n\
             struct Order { id: Uuid }",
        );
        assert_eq!(errors.len(), 1, "{errors:#?}");
        assert!(
            errors[0]
                .0
                .contains("table name `order` is a reserved word"),
            "{errors:#?}"
        );
        assert!(errors[0].1.starts_with("\"order\""), "{errors:#?}");
    }

    #[test]
    fn conditions_and_stamps_are_checked_at_their_strings() {
        let errors = located_errors(
            "#[tenancy(table = \"notes\", scoped, primary_key(id), select = Viewer)]\n\
             #[tenancy(allow(update, to = Editor, where = \"author = current_user\"))]\n\
             struct Note {\n\
                 id: Uuid,\n\
                 #[tenancy(stamp = \"current_user on insert\")]\n\
                 created_by: Uuid,\n\
                 #[tenancy(stamp = \"now() on delete\")]\n\
                 seen_at: DateTime<Utc>,\n\
             }",
        );
        let at = |needle: &str| {
            errors
                .iter()
                .find(|(m, _)| m.contains(needle))
                .unwrap_or_else(|| panic!("no {needle:?} in {errors:#?}"))
                .1
                .clone()
        };
        // The DSL validator's checks, at the string they come from.
        assert!(at("unknown column `author`").starts_with("\"author = current_user\""));
        assert!(at("unknown stamp time `on delete`").starts_with("\"now() on delete\""));
    }

    #[test]
    fn a_condition_that_does_not_parse_is_reported_at_its_string() {
        let errors = located_errors(
            "#[tenancy(table = \"notes\", scoped, primary_key(id), select = Viewer)]\n\
             #[tenancy(allow(delete, to = Editor, where = \"created_by = = 1\"))]\n\
             struct Note { id: Uuid, created_by: Uuid }",
        );
        assert_eq!(errors.len(), 1, "{errors:#?}");
        assert!(
            errors[0]
                .0
                .starts_with("invalid condition: expected a column"),
            "{errors:#?}"
        );
        assert!(
            errors[0].1.starts_with("\"created_by = = 1\""),
            "{errors:#?}"
        );
    }

    #[test]
    fn column_lists_are_checked_at_their_string_and_written_back_as_dsl() {
        let errors = located_errors(
            "#[tenancy(table = \"notes\", scoped, primary_key(id), select = Viewer)]\n\
             #[tenancy(allow(update, to = Editor, columns = \"body, titel\"))]\n\
             struct Note { id: Uuid, body: String, title: String }",
        );
        assert_eq!(errors.len(), 1, "{errors:#?}");
        assert!(
            errors[0]
                .0
                .contains("unknown column `titel` in a rule on `notes`"),
            "{errors:#?}"
        );
        assert!(errors[0].1.starts_with("\"body, titel\""), "{errors:#?}");
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
