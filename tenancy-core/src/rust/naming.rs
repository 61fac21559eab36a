//! Rust and SQL spellings of model names: type names, field identifiers, quoted SQL names.

use proc_macro2::{Ident, Span};

/// Rust keywords (strict and reserved, 2021 edition) that need a raw identifier (the validator
/// refuses them as names: `dsl::validate::names`).
pub(crate) const RUST_KEYWORDS: &[&str] = &[
    "abstract", "as", "async", "await", "become", "box", "break", "const", "continue", "crate",
    "do", "dyn", "else", "enum", "extern", "false", "final", "fn", "for", "gen", "if", "impl",
    "in", "let", "loop", "macro", "match", "mod", "move", "mut", "override", "priv", "pub", "ref",
    "return", "self", "static", "struct", "super", "trait", "true", "try", "type", "typeof",
    "unsafe", "unsized", "use", "virtual", "where", "while", "yield",
];

/// Keywords that cannot be raw identifiers either; fields with these names get a `_` suffix.
const NON_RAW_KEYWORDS: &[&str] = &["crate", "self", "super", "Self"];

/// `name` as a SQL identifier (the SQL emitter's quoting, so both emitters agree).
pub(crate) fn sql_ident(name: &str) -> String {
    crate::sql::quote_ident(name).into_owned()
}

/// `value` as a SQL string literal.
pub(crate) fn sql_literal(value: &str) -> String {
    crate::sql::quote_literal(value)
}

/// A snake_case name (column, table, module) as a Rust identifier (`r#type` for keywords).
pub(crate) fn snake_ident(name: &str) -> Ident {
    if NON_RAW_KEYWORDS.contains(&name) {
        Ident::new(&format!("{name}_"), Span::call_site())
    } else if RUST_KEYWORDS.contains(&name) {
        Ident::new_raw(name, Span::call_site())
    } else {
        Ident::new(name, Span::call_site())
    }
}

/// `user_project_roles` -> `UserProjectRoles`.
pub(crate) fn camel_case(name: &str) -> String {
    name.split('_')
        .filter(|part| !part.is_empty())
        .map(|part| {
            let mut chars = part.chars();
            match chars.next() {
                Some(first) => first.to_ascii_uppercase().to_string() + chars.as_str(),
                None => String::new(),
            }
        })
        .collect()
}

/// English singular of a plural table name (`categories` -> `category`, `notes` -> `note`); names
/// that do not look plural are returned unchanged.
pub(crate) fn singular(name: &str) -> String {
    if let Some(stem) = name.strip_suffix("ies") {
        if !stem.is_empty() {
            return format!("{stem}y");
        }
    }
    for suffix in ["sses", "ches", "shes", "xes", "zzes"] {
        if let Some(stem) = name.strip_suffix(suffix) {
            return format!("{stem}{}", &suffix[..suffix.len() - 2]);
        }
    }
    if name.ends_with("ss") || name.ends_with("us") || name.ends_with("is") {
        return name.to_owned();
    }
    match name.strip_suffix('s') {
        Some(stem) if !stem.is_empty() => stem.to_owned(),
        _ => name.to_owned(),
    }
}

/// The Rust type names generated for one table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct TypeNames {
    /// The repository unit struct (`Documents`).
    pub repository: String,
    /// The row struct (`Document`).
    pub row: String,
}

impl TypeNames {
    /// Names for the table `table`: the repository is the camel-cased table name, the row its
    /// singular (suffixed with `Row` when singular and plural are spelled the same).
    pub(crate) fn for_table(table: &str) -> TypeNames {
        let repository = camel_case(table);
        let mut row = camel_case(&singular(table));
        if row == repository {
            row.push_str("Row");
        }
        TypeNames { repository, row }
    }

    /// `New<Row>`: the insert input.
    pub(crate) fn new_row(&self) -> String {
        format!("New{}", self.row)
    }

    /// `<Row>Patch`: the update input.
    pub(crate) fn patch(&self) -> String {
        format!("{}Patch", self.row)
    }

    /// `<Row>Filter`: equality filters for list and count.
    pub(crate) fn filter(&self) -> String {
        format!("{}Filter", self.row)
    }

    /// `<Row>Key`: the lookup key when it has several columns.
    pub(crate) fn key(&self) -> String {
        format!("{}Key", self.row)
    }

    /// `<Row>Cursor`: the keyset pagination position.
    pub(crate) fn cursor(&self) -> String {
        format!("{}Cursor", self.row)
    }

    /// `<Row>Page`: one page request for list.
    pub(crate) fn page(&self) -> String {
        format!("{}Page", self.row)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn singular_handles_the_rag_tables() {
        let cases = [
            ("documents", "document"),
            ("chunks", "chunk"),
            ("queries", "query"),
            ("responses", "response"),
            ("assertions", "assertion"),
            ("tenants", "tenant"),
            ("user_project_roles", "user_project_role"),
            ("addresses", "address"),
            ("batches", "batch"),
            ("status", "status"),
            ("data", "data"),
        ];
        for (plural, expected) in cases {
            assert_eq!(singular(plural), expected, "{plural}");
        }
    }

    #[test]
    fn row_name_differs_from_repository_name() {
        assert_eq!(
            TypeNames::for_table("documents"),
            TypeNames {
                repository: "Documents".into(),
                row: "Document".into()
            }
        );
        assert_eq!(TypeNames::for_table("data").row, "DataRow");
    }

    #[test]
    fn keywords_become_raw_identifiers() {
        assert_eq!(snake_ident("type").to_string(), "r#type");
        assert_eq!(snake_ident("self").to_string(), "self_");
        assert_eq!(snake_ident("title").to_string(), "title");
    }

    #[test]
    fn sql_identifiers_are_quoted_only_when_needed() {
        assert_eq!(sql_ident("documents"), "documents");
        assert_eq!(sql_ident("user"), "\"user\"");
        assert_eq!(sql_ident("Odd\"Name"), "\"Odd\"\"Name\"");
        assert_eq!(sql_literal("it's"), "'it''s'");
    }
}
