//! The one identifier rule: every name that reaches the generated SQL or Rust (tables,
//! columns, roles, the settings' role and schema names) is checked here, once.
//!
//! A name is lower-case ASCII letters, digits and `_`; it does not start with a digit, has a
//! letter after any leading `_` (so `_` and `_1` are refused: Rust has no type name for them),
//! is not a Rust keyword (strict, reserved, 2018+ and `gen`; `self`, `super` and `crate`
//! cannot even be raw identifiers), not a PostgreSQL reserved key word (one list,
//! [`crate::sql::RESERVED_KEYWORDS`], also used to quote), and at most 63 bytes. Names of
//! PostgreSQL roles and of the helper schema do not start with `pg_` (PostgreSQL reserves
//! the prefix) and the PostgreSQL roles are not `public` or `none`. Every name the generator
//! derives from these (constraints, indexes, policies, triggers) is cut to 63 bytes with a
//! hash ([`crate::sql`]'s `fit_identifier`), so the 63-byte limit on the declared name is the
//! whole budget; the generated names are checked for collisions separately
//! (`collisions.rs`).

use super::*;
use crate::rust::naming::RUST_KEYWORDS;
use crate::sql::RESERVED_KEYWORDS;

/// Names PostgreSQL refuses as role names even when quoted.
const RESERVED_ROLE_NAMES: [&str; 5] = [
    "public",
    "none",
    "current_user",
    "session_user",
    "current_role",
];

/// Words that start a table item in the DSL (`allow ...`, `primary key ...`, `table` of a
/// declaration): a column with one of these names cannot be written in a `.tenancy` file, so
/// the derive may not declare it either.
const DSL_ITEM_WORDS: [&str; 5] = ["allow", "primary", "unique", "foreign", "table"];

/// What is wrong with a name, in the order the rule is checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum NameProblem {
    /// Not `[a-z_][a-z0-9_]*`.
    Characters,
    /// No letter after the leading `_`s (`_`, `__`, `_1`).
    NoLetter,
    /// A Rust keyword.
    RustKeyword,
    /// Longer than 63 bytes.
    TooLong,
    /// A PostgreSQL reserved key word.
    SqlReserved,
    /// A column named like a DSL item keyword ([`DSL_ITEM_WORDS`]).
    DslKeyword,
    /// A PostgreSQL role or the helper schema starting with `pg_`.
    PgPrefix,
    /// `public`, `none`, ... as a PostgreSQL role.
    ReservedRole,
}

/// True when `what` names a PostgreSQL role or schema (the settings), where `pg_` is reserved.
fn is_catalog_object(what: &str) -> bool {
    matches!(what, "owner" | "app" | "helper_schema" | "role")
}

/// The first problem of `name` as a `what` name (`table`, `column`, `role`, `owner`, `app`,
/// `helper_schema`), or `None` when the name is usable everywhere.
pub(crate) fn name_problem(name: &str, what: &str) -> Option<NameProblem> {
    let valid_chars = name
        .bytes()
        .next()
        .is_some_and(|b| b.is_ascii_lowercase() || b == b'_')
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
    if !valid_chars {
        return Some(NameProblem::Characters);
    }
    if !name
        .trim_start_matches('_')
        .bytes()
        .next()
        .is_some_and(|b| b.is_ascii_lowercase())
    {
        return Some(NameProblem::NoLetter);
    }
    if RUST_KEYWORDS.contains(&name) {
        return Some(NameProblem::RustKeyword);
    }
    if name.len() > MAX_IDENTIFIER_BYTES {
        return Some(NameProblem::TooLong);
    }
    if RESERVED_KEYWORDS.contains(&name) {
        return Some(NameProblem::SqlReserved);
    }
    if what == "column" && DSL_ITEM_WORDS.contains(&name) {
        return Some(NameProblem::DslKeyword);
    }
    if is_catalog_object(what) && name.starts_with("pg_") {
        return Some(NameProblem::PgPrefix);
    }
    if matches!(what, "owner" | "app") && RESERVED_ROLE_NAMES.contains(&name) {
        return Some(NameProblem::ReservedRole);
    }
    None
}

/// The ASCII letter of a common accented Latin letter (`é` -> `e`), else `c`.
fn ascii_letter(c: char) -> char {
    const FOLDS: [(&str, char); 7] = [
        ("àáâãäåÀÁÂÃÄÅ", 'a'),
        ("çÇ", 'c'),
        ("èéêëÈÉÊË", 'e'),
        ("ìíîïÌÍÎÏ", 'i'),
        ("ñÑ", 'n'),
        ("òóôõöøÒÓÔÕÖØ", 'o'),
        ("ùúûüÙÚÛÜ", 'u'),
    ];
    FOLDS
        .iter()
        .find(|(from, _)| from.contains(c))
        .map_or(c, |(_, to)| *to)
}

/// A name close to `name` that obeys the rule (for the `help:` line).
pub(crate) fn suggest_name(name: &str, what: &str) -> String {
    let mut out = String::new();
    for c in name.chars() {
        let c = ascii_letter(c.to_ascii_lowercase());
        if c.is_ascii_lowercase() || c.is_ascii_digit() {
            out.push(c);
        } else if !out.ends_with('_') && !out.is_empty() {
            out.push('_');
        }
    }
    let mut out = out
        .trim_start_matches(|c: char| c.is_ascii_digit() || c == '_')
        .trim_end_matches('_')
        .to_owned();
    if out.is_empty() {
        out = format!("{what}_name").replace("helper_schema_name", "helper");
    }
    if let Some(rest) = out.strip_prefix("pg_") {
        out = format!("app_{rest}");
    }
    if out.len() > MAX_IDENTIFIER_BYTES {
        let mut cut = MAX_IDENTIFIER_BYTES;
        while !out.is_char_boundary(cut) {
            cut -= 1;
        }
        out.truncate(cut);
        out = out.trim_end_matches('_').to_owned();
    }
    if name_problem(&out, what).is_some() {
        out = if what == "table" && !out.ends_with('s') {
            format!("{out}s")
        } else {
            format!("{out}_{what}")
        };
        out = out.replace("_helper_schema", "_schema");
    }
    if name_problem(&out, what).is_some() || out.len() > MAX_IDENTIFIER_BYTES {
        out = format!("my_{what}");
    }
    out
}

impl Checker<'_, '_> {
    /// Rule: the identifier rule of this module. Reports the first problem of `name` (a
    /// `what` name) at `span` with a suggested name; returns false when there was one.
    pub(super) fn check_identifier(&mut self, name: &str, span: Span, what: &str) -> bool {
        let Some(problem) = name_problem(name, what) else {
            return true;
        };
        let suggestion = suggest_name(name, what);
        let (message, label, help) = match problem {
            NameProblem::Characters => (
                format!("invalid {what} name `{name}`"),
                "names are lower case: letters, digits and `_`".to_owned(),
                format!("write `{suggestion}`"),
            ),
            NameProblem::NoLetter => (
                format!("{what} name `{name}` cannot name generated Rust code"),
                "the repositories use this name for a module, field or type".to_owned(),
                format!(
                    "start the name with a letter (after any leading `_`), e.g. `{suggestion}`"
                ),
            ),
            NameProblem::RustKeyword => (
                format!("{what} name `{name}` cannot name generated Rust code"),
                format!(
                    "`{name}` is a Rust keyword; the repositories use this name for a module, \
                     field or type"
                ),
                format!("rename it, e.g. `{suggestion}`"),
            ),
            NameProblem::TooLong => (
                format!("{what} name `{name}` is too long"),
                format!(
                    "{} bytes; PostgreSQL keeps at most {MAX_IDENTIFIER_BYTES}",
                    name.len()
                ),
                format!("choose a shorter name, e.g. `{suggestion}`"),
            ),
            NameProblem::SqlReserved => (
                format!("{what} name `{name}` is a reserved word in SQL"),
                "reserved in PostgreSQL".to_owned(),
                format!(
                    "rename it, e.g. `{suggestion}`; a reserved word would need quoting in \
                     every query"
                ),
            ),
            NameProblem::DslKeyword => (
                format!("{what} name `{name}` is a keyword of the policy language"),
                format!("a `.tenancy` line starting with `{name}` declares no column"),
                format!("rename it, e.g. `{suggestion}`"),
            ),
            NameProblem::PgPrefix => (
                format!("{what} name `{name}` starts with `pg_`"),
                "PostgreSQL reserves the `pg_` prefix for its own roles and schemas".to_owned(),
                format!("rename it, e.g. `{suggestion}`"),
            ),
            NameProblem::ReservedRole => (
                format!("{what} role name `{name}` is reserved by PostgreSQL"),
                "PostgreSQL refuses this as a role name".to_owned(),
                format!("rename it, e.g. `{suggestion}`"),
            ),
        };
        self.error(Diagnostic::error(message, span, label).with_help(help));
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_rule_refuses_each_class_and_suggests_a_valid_name() {
        let cases = [
            ("documents", "table", None),
            ("Documents", "table", Some(NameProblem::Characters)),
            ("1docs", "table", Some(NameProblem::Characters)),
            ("caf\u{e9}", "column", Some(NameProblem::Characters)),
            ("_", "role", Some(NameProblem::NoLetter)),
            ("__", "table", Some(NameProblem::NoLetter)),
            ("_1", "column", Some(NameProblem::NoLetter)),
            ("_x", "column", None),
            ("self", "table", Some(NameProblem::RustKeyword)),
            ("type", "column", Some(NameProblem::RustKeyword)),
            ("async", "column", Some(NameProblem::RustKeyword)),
            ("gen", "column", Some(NameProblem::RustKeyword)),
            ("order", "column", Some(NameProblem::SqlReserved)),
            ("left", "column", Some(NameProblem::SqlReserved)),
            ("pg_reader", "app", Some(NameProblem::PgPrefix)),
            ("pg_helpers", "helper_schema", Some(NameProblem::PgPrefix)),
            ("pg_thing", "table", None),
            ("allow", "column", Some(NameProblem::DslKeyword)),
            ("allow", "table", None),
            ("public", "owner", Some(NameProblem::ReservedRole)),
            ("public", "table", None),
            (&"a".repeat(64), "table", Some(NameProblem::TooLong)),
        ];
        for (name, what, expected) in cases {
            assert_eq!(name_problem(name, what), expected, "{name} as {what}");
            if expected.is_some() {
                let suggestion = suggest_name(name, what);
                assert_eq!(
                    name_problem(&suggestion, what),
                    None,
                    "{name} -> {suggestion}"
                );
            }
        }
        assert_eq!(suggest_name("user", "table"), "users");
        assert_eq!(suggest_name("order", "column"), "order_column");
        assert_eq!(suggest_name("Documents", "table"), "documents");
        assert_eq!(suggest_name("caf\u{e9}", "column"), "cafe");
    }
}
