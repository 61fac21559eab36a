//! `embedding vector(N)? per tenant`: what the validator accepts and refuses (every error at
//! once, rustc-style), the SQL it writes (an unconstrained `vector` column, the settings table
//! with row-level security, the dimension trigger), the repository descriptor and the
//! incremental migrations. The SQL is proven against PostgreSQL in `tests/vector_settings_live.rs`
//! of the workspace.

#![allow(clippy::expect_used, clippy::unwrap_used)] // test helpers panic on broken fixtures

use tenancy_core::dsl::{compile, SourceFile};
use tenancy_core::sql::diff::{incremental_migrations, DiffError, DiffOptions};
use tenancy_core::sql::{generate_migrations, Target};

const CORE: &str = "tenancy {
    roles = viewer < editor < admin
}
tenants table tenants {
    name text
    allow select to viewer
}
projects table projects {
    name text
    allow select to viewer
}
memberships table memberships {
    allow select to viewer
}
";

fn sources(tables: &str) -> Vec<SourceFile> {
    vec![SourceFile::new("test.tenancy", format!("{CORE}{tables}"))]
}

const PASSAGES: &str = "scoped table passages {
    id uuid default gen_random_uuid()
    body text
    embedding vector(384)? per tenant
    primary key (id)
    allow select to viewer
    allow insert, update to editor
}
";

fn sql_of(sources: &[SourceFile]) -> String {
    let (model, diags) = compile(sources);
    assert!(!diags.has_errors(), "{}", diags.render(sources, false));
    generate_migrations(&model.unwrap(), Target::Postgres)
        .iter()
        .map(|m| m.contents.clone())
        .collect()
}

#[test]
fn per_tenant_column_is_an_unconstrained_vector_with_settings_table_and_trigger() {
    let sources = sources(PASSAGES);
    let (model, _) = compile(&sources);
    let model = model.unwrap();
    let column = &model.table("passages").unwrap().columns[2];
    assert!(column.per_tenant);
    let sql = sql_of(&sources);
    assert!(sql.contains("  embedding  vector,\n"), "{sql}");
    assert!(!sql.contains("vector(384)"), "{sql}");
    assert!(
        sql.contains("CREATE TABLE tenancy.vector_settings (\n  tenant_id   uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,"),
        "{sql}"
    );
    assert!(sql.contains("ALTER TABLE tenancy.vector_settings FORCE ROW LEVEL SECURITY;"));
    assert!(sql.contains(
        "CREATE POLICY vector_settings_tenant ON tenancy.vector_settings AS PERMISSIVE FOR SELECT TO tenancy_app\n  USING (tenant_id = (SELECT tenancy.current_tenant_id()));"
    ));
    assert!(sql.contains("GRANT SELECT ON TABLE tenancy.vector_settings TO tenancy_app;"));
    assert!(!sql.contains("GRANT INSERT ON TABLE tenancy.vector_settings"));
    assert!(
        sql.contains("expected := COALESCE(expected, 384);"),
        "{sql}"
    );
    assert!(sql.contains(
        "CREATE TRIGGER passages_vector_dimensions\n  BEFORE INSERT OR UPDATE OF embedding, tenant_id ON passages"
    ));
    // The settings table comes before the tables whose triggers read it, once.
    assert_eq!(
        sql.matches("CREATE TABLE tenancy.vector_settings").count(),
        1
    );
    assert!(sql.find("CREATE TABLE tenancy.vector_settings") < sql.find("CREATE TABLE passages"));
    // Deterministic.
    assert_eq!(sql, sql_of(&sources));
}

#[test]
fn a_model_without_per_tenant_columns_gets_no_settings_table() {
    let sql = sql_of(&sources(&PASSAGES.replace(" per tenant", "")));
    assert!(sql.contains("  embedding  vector(384),\n"), "{sql}");
    assert!(!sql.contains("vector_settings"), "{sql}");
}

#[test]
fn the_descriptor_says_per_tenant() {
    let (model, _) = compile(&sources(PASSAGES));
    let files = tenancy_core::rust::generate_repositories(&model.unwrap()).unwrap();
    let passages = files
        .iter()
        .find(|f| f.path.ends_with("passages.rs"))
        .unwrap();
    assert!(
        passages.contents.contains("per_tenant: true"),
        "{}",
        passages.contents
    );
    assert!(passages.contents.contains("dimensions: 384"));
}

#[test]
fn misplaced_per_tenant_is_refused_with_every_error_at_once() {
    let sources = sources(
        "scoped table passages {
    id uuid default gen_random_uuid()
    body text per tenant
    embedding vector(3)? per tenant
    primary key (id)
    allow select to viewer
}
global table models {
    name text
    vec vector(3)? per tenant
    primary key (name)
    allow select
}
",
    );
    let (_, diags) = compile(&sources);
    let text = diags.render(&sources, false);
    assert!(
        text.contains("error: `per tenant` is only for vector columns, and `body` is not one"),
        "{text}"
    );
    assert!(
        text.contains("error: `per tenant` needs a scoped table, and `vec` is a global table"),
        "{text}"
    );
    // rustc-style: the line and a caret under the clause.
    assert!(text.contains("--> test.tenancy:"), "{text}");
    assert!(text.contains("^^^^^^^^^^"), "{text}");
}

#[test]
fn per_tenant_given_twice_is_a_parse_error() {
    let sources = sources(&PASSAGES.replace("per tenant", "per tenant per tenant"));
    let (model, diags) = compile(&sources);
    assert!(model.is_none());
    let text = diags.render(&sources, false);
    assert!(
        text.contains("error: `per tenant` given twice for column `embedding`"),
        "{text}"
    );
    let sources = sources_with("    embedding vector(3)? per project\n");
    let text = compile(&sources).1.render(&sources, false);
    assert!(text.contains("expected `tenant`"), "{text}");
}

fn sources_with(column: &str) -> Vec<SourceFile> {
    sources(&format!(
        "scoped table passages {{\n    id uuid\n{column}    primary key (id)\n    allow select to viewer\n}}\n"
    ))
}

#[test]
fn incremental_migrations_create_the_settings_table_once_and_refuse_flipping_a_column() {
    let model = |tables: &str| {
        let (model, diags) = compile(&sources(tables));
        assert!(!diags.has_errors());
        model.unwrap()
    };
    let base = model(
        "scoped table folders {
    id uuid default gen_random_uuid()
    primary key (id)
    allow select to viewer
}
",
    );
    let with = model(&format!(
        "scoped table folders {{
    id uuid default gen_random_uuid()
    primary key (id)
    allow select to viewer
}}
{PASSAGES}"
    ));
    let migrations =
        incremental_migrations(&base, &with, Target::Postgres, DiffOptions::default()).unwrap();
    let sql: String = migrations.iter().map(|m| m.contents.clone()).collect();
    assert_eq!(
        sql.matches("CREATE TABLE tenancy.vector_settings").count(),
        1
    );
    assert!(
        sql.contains("CREATE TRIGGER passages_vector_dimensions"),
        "{sql}"
    );
    assert!(
        sql.find("CREATE TABLE tenancy.vector_settings") < sql.find("CREATE TABLE passages"),
        "{sql}"
    );

    // Declaring an existing column `per tenant` (or no longer) is a type change: refused.
    let fixed = model(&PASSAGES.replace(" per tenant", ""));
    let per_tenant = model(PASSAGES);
    let refused = incremental_migrations(
        &fixed,
        &per_tenant,
        Target::Postgres,
        DiffOptions::default(),
    );
    match refused {
        Err(error @ DiffError::ColumnTypeChanged { .. }) => {
            let text = error.to_string();
            assert!(text.contains("vector(384) per tenant"), "{text}");
        }
        other => panic!("expected a refused type change, got {other:?}"),
    }
}

#[test]
fn the_citus_target_refuses_a_per_tenant_column_with_a_fix() {
    let (model, _) = compile(&sources(PASSAGES));
    let problems = tenancy_core::sql::citus_problems(&model.unwrap());
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert_eq!(problems[0].table, "passages");
    assert!(problems[0].message.contains("per tenant"));
    assert!(problems[0].help.contains("drop `per tenant`"));
}
