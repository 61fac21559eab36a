//! Generators of unusual models (issue 24), shared by `hostile_input.rs` (pure, every CI run)
//! and the live `tests/hostile_sql_live.rs` (the accepted models' SQL applied to PostgreSQL):
//! policy files and `#[derive(TenantScoped)]` structs built from pools of ordinary and hostile
//! names, types and defaults, and the end-to-end check every accepted model must pass.

#![allow(dead_code, clippy::expect_used, clippy::unwrap_used)]

use proptest::prelude::*;
use tenancy_core::dsl::{compile, SourceFile};
use tenancy_core::model::Model;
use tenancy_core::output::generate_all;
use tenancy_core::snapshot::Snapshot;
use tenancy_core::sql::diff::{incremental_migrations, DiffOptions};
use tenancy_core::sql::names::{generated_names, name_collisions};
use tenancy_core::sql::Target;

/// Names for tables and columns: ordinary ones, ones whose generated names collide
/// (`a_b` + `c` and `a` + `b_c`), and the classes the identifier rule refuses.
pub const NAMES: &[&str] = &[
    "notes",
    "items",
    "a",
    "a_b",
    "b_c",
    "c",
    "slug",
    "title",
    "body",
    "created_on",
    "x1",
    "_x",
    "a__b",
    "data",
    "status",
    "index",
    "key",
    "name",
    "id2",
    // refused: keyword, reserved, Rust-unusable, characters, DSL keyword, length
    "_",
    "__",
    "_1",
    "self",
    "type",
    "async",
    "gen",
    "order",
    "user",
    "left",
    "Upper",
    "caf\u{e9}",
    "allow",
    "9lives",
    "pg_stat",
    "a_long_name_that_fills_up_the_identifier_budget_to_63_bytes_xxx",
    "a_name_that_is_one_byte_over_the_identifier_budget_of_63_bytes_x",
];

/// Role names.
pub const ROLES: &[&str] = &[
    "viewer",
    "editor",
    "admin",
    "a_b",
    "a__b",
    "ab",
    "_",
    "pg_reader",
    "type",
    "owner",
];

/// Column types.
pub const TYPES: &[&str] = &[
    "text",
    "uuid",
    "integer",
    "smallint",
    "bigint",
    "real",
    "double",
    "boolean",
    "date",
    "timestamptz",
    "jsonb",
    "bytea",
    "vector(3)",
];

/// Defaults, as written in the DSL.
pub const DEFAULTS: &[&str] = &[
    "'x'",
    "''",
    "'it''s'",
    "'2023-02-31'",
    "'2024-02-29'",
    "'2023-02-29'",
    "'now'",
    "'2024-01-01 10:00:00Z'",
    "'2024-01-01 25:00'",
    "now()",
    "gen_random_uuid()",
    "0",
    "-1",
    "70000",
    "3000000000",
    "1.5",
    "-0.25",
    "true",
    "false",
    "'{}'",
    "'{\"a\": [1]}'",
    "'{'",
    "'00000000-0000-0000-0000-000000000000'",
    "'infinity'",
];

/// One generated column.
#[derive(Debug, Clone)]
pub struct ColumnGen {
    pub name: &'static str,
    pub ty: &'static str,
    pub nullable: bool,
    pub default: Option<&'static str>,
    pub unique: bool,
    pub references_earlier: bool,
}

/// One generated table.
#[derive(Debug, Clone)]
pub struct TableGen {
    pub name: &'static str,
    pub global: bool,
    pub columns: Vec<ColumnGen>,
    /// `unique (project_id, <column>)` on the first column (scoped tables).
    pub scoped_unique: bool,
    pub index_first: bool,
    pub rules: Vec<(&'static str, usize)>,
}

/// One generated model.
#[derive(Debug, Clone)]
pub struct ModelGen {
    pub roles: Vec<&'static str>,
    pub tables: Vec<TableGen>,
}

fn column() -> impl Strategy<Value = ColumnGen> {
    (
        prop::sample::select(NAMES),
        prop::sample::select(TYPES),
        any::<bool>(),
        prop::option::weighted(0.5, prop::sample::select(DEFAULTS)),
        prop::bool::weighted(0.25),
        prop::bool::weighted(0.15),
    )
        .prop_map(
            |(name, ty, nullable, default, unique, references_earlier)| ColumnGen {
                name,
                ty,
                nullable,
                default,
                unique,
                references_earlier,
            },
        )
}

fn table() -> impl Strategy<Value = TableGen> {
    (
        prop::sample::select(NAMES),
        prop::bool::weighted(0.2),
        prop::collection::vec(column(), 0..5),
        prop::bool::weighted(0.2),
        prop::bool::weighted(0.3),
        prop::collection::vec(
            (
                prop::sample::select(&["select", "insert", "update", "delete", "all"][..]),
                0usize..4,
            ),
            0..3,
        ),
    )
        .prop_map(
            |(name, global, columns, scoped_unique, index_first, rules)| TableGen {
                name,
                global,
                columns,
                scoped_unique,
                index_first,
                rules,
            },
        )
}

/// Random models: 2-4 roles, 0-4 tables besides the core.
pub fn model() -> impl Strategy<Value = ModelGen> {
    (
        prop::collection::vec(prop::sample::select(ROLES), 2..5),
        prop::collection::vec(table(), 0..5),
    )
        .prop_map(|(roles, tables)| ModelGen { roles, tables })
}

/// Mostly-valid models: names and roles from the ordinary part of the pools only.
pub fn plain_model() -> impl Strategy<Value = ModelGen> {
    model().prop_map(|mut m| {
        let plain = |n: &'static str| {
            if NAMES[..19].contains(&n) {
                n
            } else {
                "notes"
            }
        };
        m.roles = vec!["viewer", "editor", "admin"];
        for t in &mut m.tables {
            t.name = plain(t.name);
            for c in &mut t.columns {
                c.name = plain(c.name);
                // Defaults of the column's kind (their value may still be refused).
                c.default = c.default.filter(|d| default_kind_fits(c.ty, d));
            }
        }
        m
    })
}

/// True when `default` is of the kind `ty` takes (a string for text, a number for a number).
fn default_kind_fits(ty: &str, default: &str) -> bool {
    let quoted = default.starts_with('\'');
    let number = default.parse::<f64>().is_ok();
    match ty {
        "text" => quoted,
        "uuid" => default == "gen_random_uuid()" || default.starts_with("'0000"),
        "integer" | "smallint" | "bigint" => number && !default.contains('.'),
        "real" | "double" => number,
        "boolean" => default == "true" || default == "false",
        "date" | "timestamptz" => {
            default == "now()" || (quoted && (default.contains("20") || default.len() < 8))
        }
        "jsonb" => quoted && (default.contains('{') || default.contains('[')),
        _ => false,
    }
}

impl ModelGen {
    /// The policy text.
    pub fn render(&self) -> String {
        let mut roles: Vec<&str> = Vec::new();
        for r in &self.roles {
            if !roles.contains(r) {
                roles.push(r);
            }
        }
        if roles.len() < 2 {
            roles.push("zz_top");
        }
        let lowest = roles[0];
        let mut out = format!(
            "tenancy {{\n    roles = {}\n}}\n\n\
             tenants table tenants {{\n    name text\n    allow select to {lowest}\n}}\n\n\
             projects table projects {{\n    name text\n    allow select to {lowest}\n}}\n\n\
             memberships table memberships {{\n    allow select to {lowest}\n}}\n",
            roles.join(" < ")
        );
        let mut earlier: Vec<&str> = Vec::new();
        for t in &self.tables {
            let kind = if t.global { "global" } else { "scoped" };
            out.push_str(&format!("\n{kind} table {} {{\n", t.name));
            out.push_str("    id uuid default gen_random_uuid()\n");
            for c in &t.columns {
                out.push_str(&format!(
                    "    {} {}{}",
                    c.name,
                    c.ty,
                    if c.nullable { "?" } else { "" }
                ));
                // Stamped columns (`= current_user on insert`, `= now() on update`).
                if c.references_earlier && c.unique {
                    match c.ty {
                        "uuid" => out.push_str(" = current_user on insert"),
                        "timestamptz" => out.push_str(" = now() on update"),
                        _ => {}
                    }
                }
                if let Some(d) = c.default {
                    out.push_str(&format!(" default {d}"));
                }
                if c.unique {
                    out.push_str(" unique");
                }
                if c.references_earlier && c.ty == "uuid" {
                    if let Some(target) = earlier.last() {
                        out.push_str(&format!(" references {target}"));
                    }
                }
                out.push('\n');
            }
            out.push_str("    primary key (id)\n");
            if let Some(first) = t.columns.first() {
                if t.scoped_unique && !t.global {
                    out.push_str(&format!("    unique (project_id, {})\n", first.name));
                }
                if t.index_first {
                    out.push_str(&format!("    index ({})\n", first.name));
                }
            }
            let mut seen: Vec<&str> = Vec::new();
            for (command, role) in &t.rules {
                if seen.contains(command) || (!seen.is_empty() && *command == "all") {
                    continue;
                }
                seen.push(command);
                if t.global {
                    out.push_str(&format!("    allow {command}\n"));
                } else {
                    let role = roles[role % roles.len()];
                    out.push_str(&format!("    allow {command} to {role}\n"));
                }
            }
            out.push_str("}\n");
            if !t.global {
                earlier.push(t.name);
            }
        }
        out
    }
}

/// Compiles `text` (never panics) and returns the model when it was accepted.
pub fn compile_text(text: &str) -> (Option<Model>, String) {
    let sources = [SourceFile::new("fuzz.tenancy", text)];
    let (model, diags) = compile(&sources);
    let rendered = diags.render(&sources, false);
    assert_eq!(model.is_some(), !diags.has_errors(), "{rendered}");
    (model, rendered)
}

/// What every accepted model must satisfy: the SQL and the Rust are generated without a panic
/// or an error, every Rust file parses with `syn`, every generated SQL name fits in 63 bytes
/// and none collides, and the model diffed against itself (through its snapshot JSON, as
/// `generate` reads it back) needs no migration.
pub fn check_accepted(model: &Model, text: &str) {
    let mut files = generate_all(model, Target::Postgres)
        .unwrap_or_else(|e| panic!("generate failed: {e}\n--- input ---\n{text}"));
    files.extend(tenancy_core::sql::generate_migrations(model, Target::Citus));
    {
        for file in &files {
            if file.path.extension().is_some_and(|e| e == "rs") {
                if let Err(e) = syn::parse_file(&file.contents) {
                    panic!(
                        "{} does not parse: {e}\n--- input ---\n{text}",
                        file.path.display()
                    );
                }
            }
            assert!(
                !file.contents.contains('\r'),
                "{}: carriage return\n--- input ---\n{text}",
                file.path.display()
            );
        }
    }
    for name in generated_names(model) {
        assert!(
            name.name.len() <= 63,
            "{name:?} is longer than 63 bytes\n--- input ---\n{text}"
        );
    }
    let collisions = name_collisions(model);
    assert!(
        collisions.is_empty(),
        "{collisions:#?}\n--- input ---\n{text}"
    );
    let snapshot = Snapshot::new(model, Target::Postgres, Vec::new());
    let read_back = Snapshot::from_json(&snapshot.to_json()).expect("snapshot JSON");
    let diff = incremental_migrations(
        &read_back.model,
        model,
        Target::Postgres,
        DiffOptions::default(),
    )
    .unwrap_or_else(|e| panic!("self-diff failed: {e}\n--- input ---\n{text}"));
    assert!(
        diff.is_empty(),
        "the model diffed against itself is not empty: {diff:#?}\n--- input ---\n{text}"
    );
}

/// Field names for derive structs (all valid Rust identifiers).
pub const FIELDS: &[&str] = &[
    "title",
    "body",
    "slug",
    "weight",
    "a_b",
    "_x",
    "r#body",
    "summary",
    "score",
    "tag",
    "r#type",
    "r#match",
    "caf\u{e9}",
    "allow",
    "user",
    "order",
    "Upper",
];

/// Field types with a default that fits and one that does not (Rust expressions).
pub const FIELD_TYPES: &[(&str, &[&str])] = &[
    (
        "String",
        &[
            "\"'x'\"",
            "\"'a\\nb'\"",
            "\"'it''s'\"",
            "\"now()\"",
            "\"x\"",
        ],
    ),
    ("i32", &["10", "-1", "3000000000", "1.5"]),
    ("i16", &["70000", "7"]),
    ("f32", &["1e39", "1e5", "0.5", "-2.5E-3", "1."]),
    ("f64", &["1e5", "1e300", "-0.25", "7"]),
    ("bool", &["true", "\"true\""]),
    (
        "uuid::Uuid",
        &[
            "\"gen_random_uuid()\"",
            "\"'00000000-0000-0000-0000-000000000000'\"",
        ],
    ),
    (
        "chrono::NaiveDate",
        &["\"'2023-02-31'\"", "\"'2024-02-29'\"", "\"now()\""],
    ),
    (
        "chrono::DateTime<chrono::Utc>",
        &["\"'x'\"", "\"now()\"", "\"'2024-01-01 10:00:00Z'\""],
    ),
    ("serde_json::Value", &["\"'{}'\"", "\"'{'\""]),
    ("Option<String>", &["\"'x'\""]),
];

/// One generated derive field.
#[derive(Debug, Clone)]
pub struct FieldGen {
    pub name: &'static str,
    pub ty: usize,
    pub default: Option<usize>,
    pub unique: bool,
    pub bare_default: bool,
}

/// One generated derive struct.
#[derive(Debug, Clone)]
pub struct StructGen {
    pub table: &'static str,
    pub kind: &'static str,
    pub primary_key: &'static str,
    pub extra: &'static str,
    pub rule: &'static str,
    pub fields: Vec<FieldGen>,
}

/// Random derive structs.
pub fn derive_struct() -> impl Strategy<Value = StructGen> {
    let field = (
        prop::sample::select(FIELDS),
        0..FIELD_TYPES.len(),
        prop::option::weighted(0.3, 0usize..8),
        prop::bool::weighted(0.2),
        prop::bool::weighted(0.05),
    )
        .prop_map(|(name, ty, default, unique, bare_default)| FieldGen {
            name,
            ty,
            default,
            unique,
            bare_default,
        });
    (
        prop::sample::select(
            &[
                "notes",
                "notes",
                "notes",
                "notes",
                "notes",
                "a_b",
                "order",
                "self",
                "Notes",
                "caf\u{e9}",
                "allow",
                "_1",
                "pg_x",
            ][..],
        ),
        prop::sample::select(
            &[
                "scoped",
                "scoped",
                "scoped",
                "scoped",
                "scoped",
                "scoped",
                "global",
                "global",
                "scoped, scoped",
                "scoped, global",
            ][..],
        ),
        prop::sample::select(
            &[
                "primary_key(id)",
                "primary_key(id)",
                "primary_key(id)",
                "primary_key(id)",
                "primary_key(id)",
                "primary_key",
                "primary_key(nope)",
            ][..],
        ),
        prop::sample::select(
            &[
                "",
                "",
                "unique(title)",
                "index(title)",
                "gin_index(body)",
                "unique(a_b, title)",
            ][..],
        ),
        prop::sample::select(
            &[
                "select = Viewer",
                "select = Viewer",
                "select = Viewer",
                "select = r#Viewer",
                "select = Vi\u{e9}wer",
                "select = crate::roles::Editor, delete = Admin",
                "select",
                "select = r#Editor, update = Viewer",
            ][..],
        ),
        prop::collection::vec(field, 0..5),
    )
        .prop_map(
            |(table, kind, primary_key, extra, rule, fields)| StructGen {
                table,
                kind,
                primary_key,
                extra,
                rule,
                fields,
            },
        )
}

impl StructGen {
    /// The struct's source text.
    pub fn render(&self) -> String {
        let extra = if self.extra.is_empty() {
            String::new()
        } else {
            format!(", {}", self.extra)
        };
        let mut out = format!(
            "#[tenancy(table = \"{}\", {}, {}{extra}, {})]\npub struct Generated {{\n    pub id: uuid::Uuid,\n    pub title: String,\n    pub body: serde_json::Value,\n",
            self.table, self.kind, self.primary_key, self.rule
        );
        let mut seen: Vec<&str> = vec!["id", "title", "body"];
        for f in &self.fields {
            if seen.contains(&f.name) {
                continue;
            }
            seen.push(f.name);
            let (ty, defaults) = FIELD_TYPES[f.ty];
            let mut attrs: Vec<String> = Vec::new();
            if let Some(d) = f.default {
                attrs.push(format!("default = {}", defaults[d % defaults.len()]));
            }
            if f.bare_default {
                attrs.push("default".to_owned());
            }
            if f.unique {
                attrs.push("unique".to_owned());
            }
            if !attrs.is_empty() {
                out.push_str(&format!("    #[tenancy({})]\n", attrs.join(", ")));
            }
            out.push_str(&format!("    pub {}: {ty},\n", f.name));
        }
        out.push_str("}\n");
        out
    }
}

/// The core policy a derived table is compiled with to compare front ends.
pub const DERIVE_CORE: &str = "tenancy {\n    roles = viewer < editor < admin\n}\n\n\
    tenants table tenants {\n    name text\n    allow select to viewer\n}\n\n\
    projects table projects {\n    name text\n    allow select to viewer\n}\n\n\
    memberships table memberships {\n    allow select to viewer\n}\n";

/// What every derive input must satisfy: the derive never panics (nor does the proc-macro
/// expansion); an accepted struct's table, written as DSL text, compiles to the same table
/// (the two front ends agree), and its expansion parses as Rust.
pub fn check_derive(source: &str) -> Result<(), String> {
    let input: syn::DeriveInput = match syn::parse_str(source) {
        Ok(input) => input,
        Err(_) => return Ok(()), // not Rust: nothing for the derive to do
    };
    let expansion = tenancy_core::derive::expand(quote::ToTokens::to_token_stream(&input));
    syn::parse2::<syn::File>(expansion)
        .map_err(|e| format!("the expansion does not parse: {e}\n--- input ---\n{source}"))?;
    let derived = match tenancy_core::derive::derive_table(&input) {
        Ok(derived) => derived,
        Err(_) => return Ok(()),
    };
    let known_roles = ["viewer", "editor", "admin", ""];
    if derived
        .table
        .rules
        .iter()
        .any(|r| !known_roles.contains(&r.min_role.as_str()))
    {
        return Ok(());
    }
    let text = format!(
        "{DERIVE_CORE}\n{}",
        tenancy_core::derive::table_to_dsl(&derived.table)
    );
    let (model, rendered) = compile_text(&text);
    let model = model.ok_or_else(|| {
        format!("the derive accepted a table the DSL rejects:\n{rendered}\n--- input ---\n{source}\n--- as DSL ---\n{text}")
    })?;
    let mut table = model
        .table(&derived.table.name)
        .cloned()
        .ok_or("table missing")?;
    if table.kind == tenancy_core::model::TableKind::Global {
        for rule in &mut table.rules {
            rule.min_role.clear();
        }
    }
    if table != derived.table {
        return Err(format!(
            "the DSL reads the derived table differently:\n{table:#?}\nvs\n{:#?}\n--- input ---\n{source}",
            derived.table
        ));
    }
    check_accepted(&model, &text);
    Ok(())
}
