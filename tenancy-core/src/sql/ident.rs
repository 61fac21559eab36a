//! Identifier and literal quoting, and deterministic object names.

use std::borrow::Cow;

/// PostgreSQL's longest identifier, in bytes (NAMEDATALEN - 1).
const MAX_IDENTIFIER_BYTES: usize = 63;

/// Keywords PostgreSQL reserves (also those that may only be function or type names):
/// an identifier spelled like one of these must be quoted. The one list: the validator
/// refuses these as names too (`dsl::validate::names`).
pub(crate) const RESERVED_KEYWORDS: &[&str] = &[
    "all",
    "analyse",
    "analyze",
    "and",
    "any",
    "array",
    "as",
    "asc",
    "asymmetric",
    "authorization",
    "binary",
    "both",
    "case",
    "cast",
    "check",
    "collate",
    "collation",
    "column",
    "concurrently",
    "constraint",
    "create",
    "cross",
    "current_catalog",
    "current_date",
    "current_role",
    "current_schema",
    "current_time",
    "current_timestamp",
    "current_user",
    "default",
    "deferrable",
    "desc",
    "distinct",
    "do",
    "else",
    "end",
    "except",
    "false",
    "fetch",
    "for",
    "foreign",
    "freeze",
    "from",
    "full",
    "grant",
    "group",
    "having",
    "ilike",
    "in",
    "initially",
    "inner",
    "intersect",
    "into",
    "is",
    "isnull",
    "join",
    "lateral",
    "leading",
    "left",
    "like",
    "limit",
    "localtime",
    "localtimestamp",
    "natural",
    "not",
    "notnull",
    "null",
    "offset",
    "on",
    "only",
    "or",
    "order",
    "outer",
    "overlaps",
    "placing",
    "primary",
    "references",
    "returning",
    "right",
    "select",
    "session_user",
    "similar",
    "some",
    "symmetric",
    "system_user",
    "table",
    "tablesample",
    "then",
    "to",
    "trailing",
    "true",
    "union",
    "unique",
    "user",
    "using",
    "variadic",
    "verbose",
    "when",
    "where",
    "window",
    "with",
];

/// `name` as a SQL identifier: bare when it is a plain lower-case name that is not a reserved
/// keyword, double-quoted otherwise.
pub fn ident(name: &str) -> Cow<'_, str> {
    let plain = name
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_lowercase() || c == '_')
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '$')
        && !RESERVED_KEYWORDS.contains(&name);
    if plain {
        Cow::Borrowed(name)
    } else {
        Cow::Owned(format!("\"{}\"", name.replace('"', "\"\"")))
    }
}

/// A comma-separated list of identifiers.
pub(crate) fn ident_list<S: AsRef<str>>(names: &[S]) -> String {
    names
        .iter()
        .map(|n| ident(n.as_ref()).into_owned())
        .collect::<Vec<_>>()
        .join(", ")
}

/// `value` as a SQL string literal.
pub(crate) fn literal(value: &str) -> String {
    format!("'{}'", value.replace('\'', "''"))
}

/// A deterministic object name `<table>_<parts>_<suffix>` that fits PostgreSQL's 63-byte
/// identifier limit: longer names are cut and end with a short stable hash of the full name,
/// so two long names that share a prefix stay distinct.
pub(crate) fn object_name<S: AsRef<str>>(table: &str, parts: &[S], suffix: &str) -> String {
    let mut full = table.to_owned();
    for part in parts {
        full.push('_');
        full.push_str(part.as_ref());
    }
    full.push('_');
    full.push_str(suffix);
    fit_identifier(&full)
}

/// Cuts `name` to 63 bytes, replacing the tail with `_<8 hex digits of its FNV-1a hash>`.
pub(crate) fn fit_identifier(name: &str) -> String {
    if name.len() <= MAX_IDENTIFIER_BYTES {
        return name.to_owned();
    }
    let hash = format!("_{:08x}", fnv1a_32(name.as_bytes()));
    let mut cut = MAX_IDENTIFIER_BYTES - hash.len();
    while !name.is_char_boundary(cut) {
        cut -= 1;
    }
    format!("{}{hash}", &name[..cut])
}

/// 32-bit FNV-1a: tiny, stable across platforms and releases (unlike `DefaultHasher`).
fn fnv1a_32(bytes: &[u8]) -> u32 {
    let mut hash: u32 = 0x811c_9dc5;
    for &b in bytes {
        hash ^= u32::from(b);
        hash = hash.wrapping_mul(0x0100_0193);
    }
    hash
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_names_stay_bare_and_others_are_quoted() {
        assert_eq!(ident("documents"), "documents");
        assert_eq!(ident("user"), "\"user\"");
        assert_eq!(ident("Mixed"), "\"Mixed\"");
        assert_eq!(ident("a\"b"), "\"a\"\"b\"");
        assert_eq!(literal("it's"), "'it''s'");
    }

    #[test]
    fn long_names_are_cut_to_63_bytes_with_a_stable_distinct_suffix() {
        let long_a = object_name("t".repeat(40).as_str(), &["a".repeat(30)], "idx");
        let long_b = object_name("t".repeat(40).as_str(), &["a".repeat(31)], "idx");
        assert_eq!(long_a.len(), 63);
        assert_eq!(long_b.len(), 63);
        assert_ne!(long_a, long_b);
        assert_eq!(
            long_a,
            object_name("t".repeat(40).as_str(), &["a".repeat(30)], "idx")
        );
        assert_eq!(object_name("docs", &["id"], "key"), "docs_id_key");
        // multi-byte characters are never split
        let wide = fit_identifier(&"é".repeat(40));
        assert!(wide.len() <= 63);
    }
}
