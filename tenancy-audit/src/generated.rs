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
    /// Its volatility as `pg_proc.provolatile` spells it: `s` (STABLE), `i` (IMMUTABLE) or
    /// `v` (VOLATILE, also when the header names none).
    pub volatility: char,
    /// True when the generator gives it a `SET` clause.
    pub set_clause: bool,
}

/// One table (or the table part of a `CREATE TABLE IF NOT EXISTS`) the generated SQL creates.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct ExpectedTable {
    /// Schema (unquoted; `public` when the statement does not qualify the name).
    pub schema: String,
    /// Table name (unquoted).
    pub name: String,
}

/// One `CREATE [CONSTRAINT] TRIGGER <name> ... ON <table>` of the generated SQL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ExpectedTrigger {
    /// The trigger's name (unquoted).
    pub name: String,
    /// The table it is on.
    pub table: ExpectedTable,
}

/// One privilege of one `GRANT ... ON TABLE ... TO ...` of the generated SQL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ExpectedGrant {
    /// The privilege, upper case (`SELECT`, `UPDATE`, ...).
    pub privilege: String,
    /// The columns of a column grant (`UPDATE (a, b)`), `None` for the whole table.
    pub columns: Option<Vec<String>>,
    /// The table.
    pub table: ExpectedTable,
    /// The grantees (unquoted; `PUBLIC` as written).
    pub grantees: Vec<String>,
}

/// The policies and functions of the generated migrations.
#[derive(Debug, Clone, Default)]
pub(crate) struct Expected {
    /// Every generated policy, in file order.
    pub policies: Vec<ExpectedPolicy>,
    /// Every generated function, in file order.
    pub functions: Vec<ExpectedFunction>,
    /// Every generated table, in file order.
    pub tables: Vec<ExpectedTable>,
    /// Every generated table or column privilege, in file order.
    pub grants: Vec<ExpectedGrant>,
    /// Every generated trigger, in file order.
    pub triggers: Vec<ExpectedTrigger>,
}

impl Expected {
    /// True when the generated SQL creates the table `schema.name`.
    pub fn creates_table(&self, schema: &str, name: &str) -> bool {
        self.tables
            .iter()
            .any(|t| t.schema == schema && t.name == name)
    }

    /// True when the generated SQL creates the function `schema.name` (any signature).
    pub fn creates_function(&self, schema: &str, name: &str) -> bool {
        self.functions
            .iter()
            .any(|f| f.schema == schema && f.name == name)
    }
}

/// Generates the migrations for `model` and extracts the policies and functions.
pub(crate) fn expected(model: &Model, target: Target) -> Expected {
    let mut out = Expected::default();
    for file in generate_migrations(model, target) {
        let sql = strip_comments(&file.contents);
        out.policies.extend(policies(&sql));
        out.functions.extend(functions(&sql));
        out.tables.extend(tables(&sql));
        out.grants.extend(grants(&sql));
        out.triggers.extend(triggers(&sql));
    }
    out
}

/// Every `CREATE [CONSTRAINT] TRIGGER <name> ... ON <table>` statement (the keep-top-role
/// constraint trigger and the stamp triggers).
fn triggers(sql: &str) -> Vec<ExpectedTrigger> {
    let mut out = Vec::new();
    for keyword in ["CREATE CONSTRAINT TRIGGER ", "CREATE TRIGGER "] {
        out.extend(triggers_after(sql, keyword));
    }
    out
}

fn triggers_after(sql: &str, keyword: &str) -> Vec<ExpectedTrigger> {
    statements_starting(sql, keyword)
        .into_iter()
        .filter_map(|statement| {
            let (name, rest) = identifier(statement[keyword.len()..].trim_start())?;
            let on = rest.find(" ON ")?;
            let (schema, table, _) = qualified_name(rest[on + 4..].trim_start())?;
            Some(ExpectedTrigger {
                name,
                table: ExpectedTable {
                    schema,
                    name: table,
                },
            })
        })
        .collect()
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

/// Every `CREATE [OR REPLACE] FUNCTION <schema>.<name>(...) ... AS` header.
fn functions(sql: &str) -> Vec<ExpectedFunction> {
    let mut out = Vec::new();
    let mut rest = sql;
    while let Some((start, keyword_len)) = next_create_function(rest) {
        let after_keyword = &rest[start + keyword_len..];
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
        let Some((name, after_name)) = identifier(after_dot) else {
            continue;
        };
        // The options follow the argument list; argument names and types never hold the
        // option keywords in generated SQL, but skip the list anyway.
        let options = after_arguments(after_name).to_ascii_uppercase();
        let words: Vec<&str> = options.split_whitespace().collect();
        let volatility = if words.contains(&"STABLE") {
            's'
        } else if words.contains(&"IMMUTABLE") {
            'i'
        } else {
            'v'
        };
        out.push(ExpectedFunction {
            schema,
            name,
            security_definer: options.contains("SECURITY DEFINER"),
            volatility,
            set_clause: words.contains(&"SET"),
        });
    }
    out
}

/// The next `CREATE FUNCTION ` or `CREATE OR REPLACE FUNCTION ` in `text`: its byte offset and
/// the keyword's length.
fn next_create_function(text: &str) -> Option<(usize, usize)> {
    const PLAIN: &str = "CREATE FUNCTION ";
    const REPLACE: &str = "CREATE OR REPLACE FUNCTION ";
    match (text.find(PLAIN), text.find(REPLACE)) {
        (Some(a), Some(b)) if b < a => Some((b, REPLACE.len())),
        (Some(a), _) => Some((a, PLAIN.len())),
        (None, Some(b)) => Some((b, REPLACE.len())),
        (None, None) => None,
    }
}

/// What follows the parenthesised argument list at the start of `text` (all of `text` when it
/// does not start with one).
fn after_arguments(text: &str) -> &str {
    let Some(open) = text.strip_prefix('(') else {
        return text;
    };
    let mut depth = 1usize;
    for (i, c) in open.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => {
                depth -= 1;
                if depth == 0 {
                    return &open[i + 1..];
                }
            }
            _ => {}
        }
    }
    ""
}

/// A possibly schema-qualified name at the start of `text`: (schema, name, rest); the schema is
/// `public` when the name is not qualified (where the generator's unqualified tables live).
fn qualified_name(text: &str) -> Option<(String, String, &str)> {
    let (first, rest) = identifier(text)?;
    match rest.strip_prefix('.') {
        Some(after_dot) => {
            let (second, rest) = identifier(after_dot)?;
            Some((first, second, rest))
        }
        None => Some(("public".to_owned(), first, rest)),
    }
}

/// The statements of `sql` that start a line with `keyword` (which must end with a space),
/// from the keyword to the `;` that ends them.
fn statements_starting<'s>(sql: &'s str, keyword: &str) -> Vec<&'s str> {
    let mut out = Vec::new();
    let mut offset = 0;
    for line in sql.split_inclusive('\n') {
        if line.trim_start().starts_with(keyword) {
            let start = offset + (line.len() - line.trim_start().len());
            let text = &sql[start..];
            out.push(&text[..statement_end(text)]);
        }
        offset += line.len();
    }
    out
}

/// Every `CREATE TABLE [IF NOT EXISTS] <name> (` statement.
fn tables(sql: &str) -> Vec<ExpectedTable> {
    statements_starting(sql, "CREATE TABLE ")
        .into_iter()
        .filter_map(|statement| {
            let rest = statement["CREATE TABLE ".len()..].trim_start();
            let rest = rest.strip_prefix("IF NOT EXISTS ").unwrap_or(rest);
            let (schema, name, _) = qualified_name(rest)?;
            Some(ExpectedTable { schema, name })
        })
        .collect()
}

/// Every privilege of every `GRANT <privileges> ON TABLE <name> TO <grantees>` statement.
fn grants(sql: &str) -> Vec<ExpectedGrant> {
    let mut out = Vec::new();
    for statement in statements_starting(sql, "GRANT ") {
        let body = &statement["GRANT ".len()..];
        let Some(on) = body.find(" ON TABLE ") else {
            continue;
        };
        let privileges = &body[..on];
        let Some((schema, name, after_name)) = qualified_name(&body[on + " ON TABLE ".len()..])
        else {
            continue;
        };
        let Some(grantee_list) = after_name.trim_start().strip_prefix("TO ") else {
            continue;
        };
        let grantees: Vec<String> = grantee_list
            .split(',')
            .filter_map(|g| identifier(g).map(|(name, _)| name))
            .collect();
        for item in split_top_level(privileges) {
            let item = item.trim();
            let (privilege, columns) = match item.split_once('(') {
                Some((privilege, columns)) => (
                    privilege.trim(),
                    Some(
                        columns
                            .trim_end_matches(')')
                            .split(',')
                            .filter_map(|c| identifier(c).map(|(name, _)| name))
                            .collect(),
                    ),
                ),
                None => (item, None),
            };
            out.push(ExpectedGrant {
                privilege: privilege.to_ascii_uppercase(),
                columns,
                table: ExpectedTable {
                    schema: schema.clone(),
                    name: name.clone(),
                },
                grantees: grantees.clone(),
            });
        }
    }
    out
}

/// Splits `text` at the commas outside parentheses.
fn split_top_level(text: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut depth = 0usize;
    let mut start = 0;
    for (i, c) in text.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => depth = depth.saturating_sub(1),
            ',' if depth == 0 => {
                out.push(&text[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    out.push(&text[start..]);
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
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/rag/policies");
        let sources = tenancy_core::dsl::read_dir(&dir).expect("policies");
        let (model, _) = tenancy_core::dsl::compile(&sources);
        let model = model.expect("valid model");
        let expected = expected(&model, Target::Postgres);
        assert!(expected
            .policies
            .iter()
            .any(|p| p.name == "documents_tenant_boundary" && p.table == "documents"));
        let functions: Vec<(&str, char, bool, bool)> = expected
            .functions
            .iter()
            .map(|f| {
                (
                    f.name.as_str(),
                    f.volatility,
                    f.security_definer,
                    f.set_clause,
                )
            })
            .collect();
        assert_eq!(
            functions,
            [
                ("install_context_key", 'v', false, true),
                ("context_claims", 's', true, false),
                ("install_context", 'v', true, false),
                ("context_contract", 'i', false, false),
                ("current_tenant_id", 's', false, false),
                ("current_user_id", 's', false, false),
                ("project_ids", 's', false, false),
                ("user_project_roles_stamp", 'v', false, false),
                ("tenant_user_roles_stamp", 'v', false, false),
                ("keep_top_role", 'v', false, true),
                ("documents_stamp", 'v', false, false),
                ("documents_column_rights", 'v', false, false),
                ("queries_stamp", 'v', false, false),
            ]
        );
        assert_eq!(
            expected.triggers,
            [
                "user_project_roles_keep_top_role",
                "user_project_roles_stamp",
                "tenant_user_roles_stamp",
                "documents_stamp",
                "documents_column_rights",
                "queries_stamp"
            ]
            .map(|name| ExpectedTrigger {
                name: name.to_owned(),
                table: ExpectedTable {
                    schema: "public".to_owned(),
                    name: name
                        .strip_suffix("_keep_top_role")
                        .or_else(|| name.strip_suffix("_stamp"))
                        .or_else(|| name.strip_suffix("_column_rights"))
                        .unwrap_or(name)
                        .to_owned(),
                },
            })
        );
        assert!(expected.creates_table("tenancy", "context_keys"));
        assert!(expected.creates_table("tenancy", "audit_log"));
        assert!(expected.creates_table("public", "documents"));
        let documents = |grantee: &str| -> Vec<(&str, Option<usize>)> {
            expected
                .grants
                .iter()
                .filter(|g| g.table.schema == "public" && g.table.name == "documents")
                .filter(|g| g.grantees.iter().any(|to| to == grantee))
                .map(|g| (g.privilege.as_str(), g.columns.as_ref().map(Vec::len)))
                .collect()
        };
        // `source_uri` is masked: the app role selects the other 10 columns, the reader role
        // (owner of the masked view) the whole table.
        assert_eq!(
            documents("tenancy_app"),
            [
                ("INSERT", None),
                ("DELETE", None),
                ("SELECT", Some(10)),
                ("UPDATE", Some(5))
            ]
        );
        assert_eq!(documents("tenancy_app_reader"), [("SELECT", None)]);
        assert!(!expected
            .grants
            .iter()
            .any(|g| g.table.name == "context_keys"));
    }

    #[test]
    fn reads_tables_grants_and_function_options() {
        let sql = "CREATE TABLE IF NOT EXISTS tenancy.keys (\n  a int\n);\nCREATE TABLE \"Odd\" (a int);\n\
                   GRANT SELECT, UPDATE (a, \"B\") ON TABLE tenancy.keys TO app, PUBLIC;\n\
                   GRANT USAGE ON SCHEMA tenancy TO app;\n\
                   CREATE OR REPLACE FUNCTION s.f(x int)\n  RETURNS int\n  LANGUAGE sql\n  IMMUTABLE\n  SET search_path = pg_catalog\nAS $$ SELECT 1 $$;\n";
        assert_eq!(
            tables(sql),
            [
                ExpectedTable {
                    schema: "tenancy".to_owned(),
                    name: "keys".to_owned()
                },
                ExpectedTable {
                    schema: "public".to_owned(),
                    name: "Odd".to_owned()
                }
            ]
        );
        let found = grants(sql);
        assert_eq!(found.len(), 2, "{found:?}");
        assert_eq!(found[0].privilege, "SELECT");
        assert_eq!(found[0].columns, None);
        assert_eq!(found[0].grantees, ["app", "PUBLIC"]);
        assert_eq!(found[1].privilege, "UPDATE");
        assert_eq!(found[1].columns, Some(vec!["a".to_owned(), "B".to_owned()]));
        let functions = functions(sql);
        assert_eq!(functions.len(), 1);
        assert_eq!(functions[0].volatility, 'i');
        assert!(functions[0].set_clause);
        assert!(!functions[0].security_definer);
    }
}
