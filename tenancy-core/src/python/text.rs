//! Python spelling: literals, docstrings, identifiers and the names of generated classes.

/// Python's keywords (none of the soft ones: they are valid attribute names).
const KEYWORDS: [&str; 35] = [
    "False", "None", "True", "and", "as", "assert", "async", "await", "break", "class", "continue",
    "def", "del", "elif", "else", "except", "finally", "for", "from", "global", "if", "import",
    "in", "is", "lambda", "nonlocal", "not", "or", "pass", "raise", "return", "try", "while",
    "with", "yield",
];

/// Names a model attribute may not take: SQLAlchemy's declarative attributes and the names the
/// generated modules import (a class body would shadow them for the lines below it).
const RESERVED: [&str; 15] = [
    "metadata",
    "registry",
    "sa",
    "uuid",
    "datetime",
    "np",
    "NDArray",
    "Any",
    "Mapped",
    "mapped_column",
    "Vector",
    "JSONB",
    "ENUM",
    "Base",
    "builtins",
];

/// True for a Python keyword.
pub(crate) fn is_keyword(name: &str) -> bool {
    KEYWORDS.contains(&name)
}

/// `[a-z_][a-z0-9_]*`.
pub(crate) fn is_plain_identifier(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c == '_' || c.is_ascii_lowercase())
        && chars.all(|c| c == '_' || c.is_ascii_lowercase() || c.is_ascii_digit())
}

/// The attribute (and keyword argument) name of a column: the column name, with `_` appended
/// when it is a keyword, reserved, or not a plain identifier (non-identifier characters become
/// `_`).
pub(crate) fn attr_name(column: &str) -> String {
    let mut name: String = column
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    if name.is_empty() || name.starts_with(|c: char| c.is_ascii_digit()) {
        name.insert(0, '_');
    }
    if is_keyword(&name) || RESERVED.contains(&name.as_str()) || name != column {
        name.push('_');
    }
    name
}

/// A double-quoted Python string literal.
pub(crate) fn py_str(value: &str) -> String {
    let mut out = String::with_capacity(value.len() + 2);
    out.push('"');
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 || c == '\u{7f}' => {
                out.push_str(&format!("\\x{:02x}", c as u32))
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// A docstring at `indent` spaces: `"""text"""`, one line per line of `text`; backslashes and
/// quotes that would end it are escaped.
pub(crate) fn docstring(text: &str, indent: usize) -> String {
    let pad = " ".repeat(indent);
    let escaped = text.replace('\\', "\\\\").replace("\"\"\"", "\\\"\\\"\\\"");
    let escaped = if escaped.ends_with('"') {
        format!("{}\\\"", &escaped[..escaped.len() - 1])
    } else {
        escaped
    };
    let lines: Vec<&str> = escaped.lines().collect();
    match lines.as_slice() {
        [] => format!("{pad}\"\"\"\"\"\"\n"),
        [one] => format!("{pad}\"\"\"{one}\"\"\"\n"),
        [first, rest @ ..] => {
            let mut out = format!("{pad}\"\"\"{first}\n");
            for line in rest {
                if line.is_empty() {
                    out.push('\n');
                } else {
                    out.push_str(&format!("{pad}{line}\n"));
                }
            }
            out.push_str(&format!("{pad}\"\"\"\n"));
            out
        }
    }
}

// Type names follow the Rust emitter's rules, so a row has the same name in both languages.
pub(crate) use crate::rust::naming::{camel_case, singular};

/// The row class of a table (`categories` -> `Category`) and its repository class (`Categories`); when
/// both would be the same (a singular table name), the row class gets a `Row` suffix.
pub(crate) fn class_names(table: &str) -> (String, String) {
    let repository = camel_case(table);
    let mut row = camel_case(&singular(table));
    if row == repository {
        row.push_str("Row");
    }
    (row, repository)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_literals_are_python_safe() {
        assert_eq!(attr_name("metadata"), "metadata_");
        assert_eq!(attr_name("from"), "from_");
        assert_eq!(attr_name("title"), "title");
        assert_eq!(py_str("a\"b\\c\nd"), "\"a\\\"b\\\\c\\nd\"");
        assert_eq!(docstring("ends with \"", 0), "\"\"\"ends with \\\"\"\"\"\n");
        assert_eq!(docstring("x \"\"\" y", 0), "\"\"\"x \\\"\\\"\\\" y\"\"\"\n");
        assert_eq!(
            class_names("categories"),
            ("Category".to_owned(), "Categories".to_owned())
        );
        assert_eq!(class_names("news"), ("New".to_owned(), "News".to_owned()));
        assert_eq!(
            class_names("staff"),
            ("StaffRow".to_owned(), "Staff".to_owned())
        );
    }
}
