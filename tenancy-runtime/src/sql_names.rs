//! Schema-qualified names for the SQL text the runtime writes.
//!
//! Every table the runtime names is written `"schema"."table"`, so neither a `search_path`
//! changed inside a transaction nor a same-named relation in another schema the application role
//! can read redirects it (docs/security.md, "Clean pooled connections").

/// The schema the generated migrations create the model's tables in.
pub const TABLE_SCHEMA: &str = "public";

/// `name` (`table` or `schema.table`, already validated as identifiers) as quoted SQL, in
/// [`TABLE_SCHEMA`] when it names no schema.
pub(crate) fn qualified_table(name: &str) -> String {
    match name.split_once('.') {
        Some((schema, table)) => format!("\"{schema}\".\"{table}\""),
        None => format!("\"{TABLE_SCHEMA}\".\"{name}\""),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unqualified_names_land_in_the_table_schema() {
        assert_eq!(qualified_table("tickets"), "\"public\".\"tickets\"");
        assert_eq!(qualified_table("app.tickets"), "\"app\".\"tickets\"");
    }
}
