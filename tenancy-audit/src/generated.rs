//! What the generator creates, read from its own output (`tenancy_core::sql::generate_migrations`),
//! so the audit can never disagree with the migrations about a policy or a function.

use tenancy_core::model::Model;
use tenancy_core::sql::{generate_migrations, Target};

/// One `CREATE POLICY` statement of the generated migrations.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ExpectedPolicy {
    /// Policy name (unquoted).
    pub name: String,
    /// Table name (unquoted).
    pub table: String,
    /// The statement text before the table identifier (`CREATE POLICY name ON `).
    pub head: String,
    /// The statement text after the table identifier (`AS ... USING (...)`), without `;`.
    pub tail: String,
}

impl ExpectedPolicy {
    /// The same statement, applied to `relation` (an already quoted, qualified name).
    pub fn on_relation(&self, relation: &str) -> String {
        format!("{}{relation}{}", self.head, self.tail)
    }
}

/// One `CREATE FUNCTION` of the generated migrations.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ExpectedFunction {
    /// Schema (unquoted).
    pub schema: String,
    /// Function name (unquoted).
    pub name: String,
    /// True when the generator declares it SECURITY DEFINER.
    pub security_definer: bool,
}

/// The policies and functions of the generated migrations.
#[derive(Debug, Clone, Default)]
pub(crate) struct Expected {
    /// Every generated policy, in file order.
    pub policies: Vec<ExpectedPolicy>,
    /// Every generated function, in file order.
    pub functions: Vec<ExpectedFunction>,
}

/// Generates the migrations for `model` and extracts the policies and functions.
pub(crate) fn expected(model: &Model, target: Target) -> Expected {
    let mut out = Expected::default();
    for file in generate_migrations(model, target) {
        let sql = strip_comments(&file.contents);
        out.policies.extend(policies(&sql));
        out.functions.extend(functions(&sql));
    }
    out
}

/// Removes `--` comment lines (the generator only writes whole-line comments).
fn strip_comments(sql: &str) -> String {
    sql.lines()
        .filter(|line| !line.trim_start().starts_with("--"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Every `CREATE POLICY <name> ON <table> ...;` statement.
fn policies(sql: &str) -> Vec<ExpectedPolicy> {
    const KEYWORD: &str = "CREATE POLICY ";
    let mut out = Vec::new();
    let mut rest = sql;
    while let Some(start) = rest.find(KEYWORD) {
        let statement_and_after = &rest[start..];
        let end = statement_end(statement_and_after);
        let statement = &statement_and_after[..end];
        rest = &statement_and_after[end..];
        let after_keyword = &statement[KEYWORD.len()..];
        let Some((name, after_name)) = identifier(after_keyword) else {
            continue;
        };
        let Some(after_on) = after_name.trim_start().strip_prefix("ON ") else {
            continue;
        };
        let table_start = statement.len() - after_on.len();
        let Some((table, after_table)) = identifier(after_on) else {
            continue;
        };
        let table_end = statement.len() - after_table.len();
        out.push(ExpectedPolicy {
            name,
            table,
            head: statement[..table_start].to_owned(),
            tail: statement[table_end..].to_owned(),
        });
    }
    out
}

/// Every `CREATE FUNCTION <schema>.<name>(...) ... AS` header.
fn functions(sql: &str) -> Vec<ExpectedFunction> {
    const KEYWORD: &str = "CREATE FUNCTION ";
    let mut out = Vec::new();
    let mut rest = sql;
    while let Some(start) = rest.find(KEYWORD) {
        let after_keyword = &rest[start + KEYWORD.len()..];
        // The header ends at the body (`AS $$`); the body may contain anything.
        let header_end = after_keyword.find("AS $").unwrap_or(after_keyword.len());
        let header = &after_keyword[..header_end];
        rest = skip_dollar_body(&after_keyword[header_end..]);
        let Some((schema, after_schema)) = identifier(header) else {
            continue;
        };
        let Some(after_dot) = after_schema.strip_prefix('.') else {
            continue;
        };
        let Some((name, _)) = identifier(after_dot) else {
            continue;
        };
        out.push(ExpectedFunction {
            schema,
            name,
            security_definer: header.to_ascii_uppercase().contains("SECURITY DEFINER"),
        });
    }
    out
}

/// Skips `AS $tag$ ... $tag$` at the start of `text`; returns what follows the body.
fn skip_dollar_body(text: &str) -> &str {
    let Some(dollar) = text.find('$') else {
        return text;
    };
    let after_open = &text[dollar + 1..];
    let Some(tag_len) = after_open.find('$') else {
        return text;
    };
    let tag = &text[dollar..dollar + tag_len + 2];
    let body = &text[dollar + tag.len()..];
    match body.find(tag) {
        Some(close) => &body[close + tag.len()..],
        None => "",
    }
}

/// Byte length of the statement at the start of `text`, up to (not including) the `;` that
/// ends it; semicolons inside string literals and quoted identifiers do not count.
fn statement_end(text: &str) -> usize {
    let mut in_literal = false;
    let mut in_ident = false;
    for (i, c) in text.char_indices() {
        match c {
            '\'' if !in_ident => in_literal = !in_literal,
            '"' if !in_literal => in_ident = !in_ident,
            ';' if !in_literal && !in_ident => return i,
            _ => {}
        }
    }
    text.len()
}

/// Reads one SQL identifier (plain or double-quoted) at the start of `text` (after optional
/// whitespace); returns it unquoted and the rest of the text.
fn identifier(text: &str) -> Option<(String, &str)> {
    let text = text.trim_start();
    if let Some(quoted) = text.strip_prefix('"') {
        let mut name = String::new();
        let mut chars = quoted.char_indices().peekable();
        while let Some((i, c)) = chars.next() {
            if c == '"' {
                if matches!(chars.peek(), Some((_, '"'))) {
                    name.push('"');
                    chars.next();
                } else {
                    return Some((name, &quoted[i + 1..]));
                }
            } else {
                name.push(c);
            }
        }
        None
    } else {
        let end = text
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == '$'))
            .unwrap_or(text.len());
        (end > 0).then(|| (text[..end].to_owned(), &text[end..]))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_policies_with_plain_and_quoted_names() {
        let sql = "CREATE POLICY documents_select ON documents\n  AS PERMISSIVE\n  FOR SELECT\n  TO app\n  USING (x = ';');\n\
                   CREATE POLICY \"Odd\"\"name\" ON \"My Table\"\n  USING (true);\n";
        let found = policies(sql);
        assert_eq!(found.len(), 2);
        assert_eq!(found[0].name, "documents_select");
        assert_eq!(found[0].table, "documents");
        assert_eq!(
            found[0].on_relation("pg_temp.t0"),
            "CREATE POLICY documents_select ON pg_temp.t0\n  AS PERMISSIVE\n  FOR SELECT\n  TO app\n  USING (x = ';')"
        );
        assert_eq!(found[1].name, "Odd\"name");
        assert_eq!(found[1].table, "My Table");
    }

    #[test]
    fn reads_functions_and_security_definer() {
        let sql = "CREATE FUNCTION tenancy.current_tenant_id()\n  RETURNS uuid\n  STABLE\nAS $$ SELECT 1 $$;\n\
                   CREATE FUNCTION tenancy.lookup(x uuid)\n  SECURITY DEFINER\nAS $$ SELECT 'CREATE FUNCTION a.b()' $$;\n";
        let found = functions(sql);
        assert_eq!(found.len(), 2, "{found:?}");
        assert_eq!(found[0].name, "current_tenant_id");
        assert!(!found[0].security_definer);
        assert_eq!(found[1].name, "lookup");
        assert!(found[1].security_definer);
    }

    #[test]
    fn the_rag_policies_generate_expected_policies_and_helpers() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../policies");
        let sources = tenancy_core::dsl::read_dir(&dir).expect("policies");
        let (model, _) = tenancy_core::dsl::compile(&sources);
        let model = model.expect("valid model");
        let expected = expected(&model, Target::Postgres);
        assert!(expected
            .policies
            .iter()
            .any(|p| p.name == "documents_tenant_boundary" && p.table == "documents"));
        let helpers: Vec<&str> = expected.functions.iter().map(|f| f.name.as_str()).collect();
        assert_eq!(
            helpers,
            ["current_tenant_id", "current_user_id", "project_ids"]
        );
    }
}
