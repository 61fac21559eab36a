//! The derive front end under unusual input (issue 24): it never panics, agrees with the DSL
//! (one identifier rule, one default check) and reports each problem at the attribute key or
//! value (or field) it comes from.

#![allow(clippy::expect_used, clippy::unwrap_used)]

use tenancy_core::derive::{derive_table, table_to_dsl};
use tenancy_core::dsl::{compile, SourceFile};

/// The errors of deriving `source`, each with the text from the place it points at to the
/// end of that line (`Ok` holds the table's DSL text when there is no error).
fn derive(source: &str) -> Result<String, Vec<(String, String)>> {
    let input: syn::DeriveInput = syn::parse_str(source).expect("a struct");
    match derive_table(&input) {
        Ok(derived) => Ok(table_to_dsl(&derived.table)),
        Err(error) => Err(error
            .into_iter()
            .map(|e| {
                let at = e.span().start();
                let line = source.lines().nth(at.line - 1).unwrap_or_default();
                let from: String = line.chars().skip(at.column).collect();
                (e.to_string(), from)
            })
            .collect()),
    }
}

/// One error, containing `message`, at a place whose text starts with `at`.
fn assert_one_error(source: &str, message: &str, at: &str) {
    let errors = derive(source).expect_err(source);
    assert!(
        errors
            .iter()
            .any(|(m, from)| m.contains(message) && from.starts_with(at)),
        "expected `{message}` at `{at}`:\n{errors:#?}"
    );
}

fn with_field(attrs: &str, field: &str) -> String {
    format!(
        "#[tenancy(table = \"notes\", scoped, primary_key(id), select = Viewer)]\n\
         struct Note {{\n\
         id: Uuid,\n\
         {attrs}\n\
         {field}\n\
         }}"
    )
}

#[test]
fn raw_identifiers_are_their_plain_names() {
    // A raw role marker names the role `viewer`, as `Viewer` does.
    let dsl = derive(
        "#[tenancy(table = \"notes\", scoped, primary_key(id), select = r#Viewer)]\n\
         struct Note { id: Uuid, r#body: String }",
    )
    .expect("valid");
    assert!(dsl.contains("allow select to viewer"), "{dsl}");
    assert!(dsl.contains("    body text\n"), "{dsl}");
    // A raw field of a Rust keyword is the keyword: refused at the field by the DSL's rule.
    assert_one_error(
        &with_field("", "r#type: String,"),
        "column name `type` cannot name generated Rust code",
        "r#type",
    );
}

#[test]
fn string_defaults_with_a_newline_are_refused_at_the_value() {
    assert_one_error(
        &with_field("#[tenancy(default = \"'a\\nb'\")]", "body: String,"),
        "control character",
        "\"'a\\nb'\"",
    );
}

#[test]
fn float_defaults_with_an_exponent_become_dsl_decimals() {
    let dsl = derive(&with_field("#[tenancy(default = 1e5)]", "weight: f64,")).expect("valid");
    assert!(dsl.contains("weight double default 100000.0"), "{dsl}");
    let dsl = derive(&with_field("#[tenancy(default = 2.5E-3)]", "weight: f64,")).expect("valid");
    assert!(dsl.contains("weight double default 0.0025"), "{dsl}");
    let dsl = derive(&with_field("#[tenancy(default = -1.5)]", "weight: f64,")).expect("valid");
    assert!(dsl.contains("weight double default -1.5"), "{dsl}");
    // ... and the text compiles back to the same table.
    let core = "tenancy { roles = viewer < editor }\n\
                tenants table tenants { name text\n allow select to viewer }\n\
                projects table projects { name text\n allow select to viewer }\n\
                memberships table memberships { allow select to viewer }\n";
    let sources = [SourceFile::new("t.tenancy", format!("{core}{dsl}"))];
    let (model, diags) = compile(&sources);
    assert!(model.is_some(), "{}", diags.render(&sources, false));
    assert_one_error(
        &with_field("#[tenancy(default = 1e39)]", "weight: f32,"),
        "out of range for a real",
        "1e39",
    );
}

#[test]
fn non_ascii_field_names_are_refused_at_the_field() {
    assert_one_error(
        &with_field("", "caf\u{e9}: String,"),
        "invalid column name `caf\u{e9}`",
        "caf\u{e9}",
    );
}

#[test]
fn dsl_keywords_as_field_names_are_refused_at_the_field() {
    assert_one_error(
        &with_field("", "allow: bool,"),
        "column name `allow` is a keyword of the policy language",
        "allow",
    );
}

#[test]
fn sql_reserved_words_as_table_names_are_refused_at_the_value() {
    assert_one_error(
        "#[tenancy(table = \"order\", scoped, primary_key(id), select = Viewer)]\n\
         struct Order { id: Uuid }",
        "table name `order` is a reserved word in SQL",
        "\"order\"",
    );
    assert_one_error(
        "#[tenancy(table = \"self\", scoped, primary_key(id), select = Viewer)]\n\
         struct Me { id: Uuid }",
        "table name `self` cannot name generated Rust code",
        "\"self\"",
    );
}

#[test]
fn attribute_errors_name_their_key() {
    assert_one_error(
        "#[tenancy(table = \"notes\", scoped, scoped, primary_key(id), select = Viewer)]\n\
         struct Note { id: Uuid }",
        "duplicate `scoped`",
        "scoped, primary_key",
    );
    assert_one_error(
        "#[tenancy(table = \"notes\", scoped, primary_key, select = Viewer)]\n\
         struct Note { id: Uuid }",
        "`primary_key` takes a list of columns in parentheses, e.g. `primary_key(id)`",
        "primary_key, select",
    );
    assert_one_error(
        "#[tenancy(table, scoped, primary_key(id), select = Viewer)]\n\
         struct Note { id: Uuid }",
        "`table` takes a value: `table = \"notes\"`",
        "table, scoped",
    );
    assert_one_error(
        &with_field("#[tenancy(default)]", "body: String,"),
        "`default` takes a value",
        "default)]",
    );
}

#[test]
fn generated_name_collisions_are_refused_in_a_derived_table() {
    // `unique(a, b)` and a unique field `a_b`: both are created as `notes_a_b_key`.
    assert_one_error(
        "#[tenancy(table = \"notes\", scoped, primary_key(id), unique(a, b), select = Viewer)]\n\
         struct Note { id: Uuid, a: String, b: String,\n #[tenancy(unique)]\n a_b: String }",
        "two objects would be named `notes_a_b_key`",
        "unique(a, b)",
    );
}
