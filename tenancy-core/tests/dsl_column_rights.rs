//! Column rights (`allow update (a, b) to role [where ...]`): what the validator accepts,
//! every error it reports at once, the model it builds (column order, one update method per
//! role tier) and the SQL it writes (grant over the union, the per-row trigger). The trigger
//! is proven against PostgreSQL in `tests/row_conditions.rs` of the workspace.

#![allow(clippy::expect_used, clippy::unwrap_used)] // test helpers panic on broken fixtures

use tenancy_core::dsl::{compile, SourceFile};
use tenancy_core::model::Command;
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

fn notes(rules: &str) -> Vec<SourceFile> {
    vec![SourceFile::new(
        "test.tenancy",
        format!(
            "{CORE}scoped table notes {{
    id uuid default gen_random_uuid()
    body text
    title text
    archived boolean default false
    created_by uuid = current_user on insert

    primary key (id)
    allow select to viewer
{rules}
}}
"
        ),
    )]
}

fn sql_of(sources: &[SourceFile]) -> String {
    let (model, diags) = compile(sources);
    assert!(!diags.has_errors(), "{}", diags.render(sources, false));
    generate_migrations(&model.unwrap(), Target::Postgres)
        .iter()
        .map(|m| m.contents.clone())
        .collect()
}

#[test]
fn column_lists_build_the_model_in_column_order_and_allow_several_unconditioned_rules() {
    let sources = notes(
        "    allow update (title, body) to editor where created_by = current_user
    allow update (archived) to editor
    allow update to admin",
    );
    let (model, diags) = compile(&sources);
    assert!(!diags.has_errors(), "{}", diags.render(&sources, false));
    let model = model.unwrap();
    let rules = model.table("notes").unwrap().rules_for(Command::Update);
    let lists: Vec<Option<Vec<String>>> = rules.iter().map(|r| r.columns.clone()).collect();
    // Column order of the table (body before title), whatever the spelling.
    assert!(lists.contains(&Some(vec!["body".to_owned(), "title".to_owned()])));
    assert!(lists.contains(&Some(vec!["archived".to_owned()])));
    assert!(lists.contains(&None));
}

#[test]
fn the_grant_covers_the_union_and_the_trigger_checks_each_restricted_column() {
    let sql = sql_of(&notes(
        "    allow update (title) to editor where created_by = current_user
    allow update (archived) to admin",
    ));
    // `body` is in no list: not granted at all.
    assert!(
        sql.contains("GRANT UPDATE (title, archived) ON TABLE notes TO tenancy_app;"),
        "{sql}"
    );
    assert!(sql.contains("CREATE TRIGGER notes_column_rights\n  BEFORE UPDATE ON notes"));
    // title: the editor rule (role and condition on the old row) only.
    assert!(sql.contains(
        "MESSAGE = 'permission denied to change column title of table notes', HINT = 'allowed to: editor where created_by = current_user'"
    ));
    assert!(
        sql.contains("OLD.created_by OPERATOR(pg_catalog.=) (SELECT tenancy.current_user_id())")
    );
    assert!(sql.contains("HINT = 'allowed to: admin'"));
    // Maintenance sessions (no row-level security) are not checked.
    assert!(sql.contains("IF NOT pg_catalog.row_security_active(TG_RELID) THEN"));
}

#[test]
fn without_lists_there_is_no_trigger_and_the_output_is_unchanged() {
    let sql = sql_of(&notes("    allow update to editor"));
    assert!(!sql.contains("column_rights"));
    assert!(sql.contains("GRANT UPDATE (body, title, archived) ON TABLE notes TO tenancy_app;"));
}

#[test]
fn every_column_list_error_is_reported_at_once() {
    let sources = notes(
        "    allow update (titel, id, created_by, tenant_id, body, body) to editor
    allow delete (body) to admin
    allow update (title) to admin where sql \"length(body) < 10\"",
    );
    let (model, diags) = compile(&sources);
    assert!(model.is_none(), "expected errors");
    let out = diags.render(&sources, false);
    for expected in [
        "error: unknown column `titel` in a rule on `notes`",
        "help: did you mean `title`?",
        "error: no update may change `id`",
        "part of the primary key",
        "error: no update may change `created_by`",
        "a stamped column: the database writes it",
        "error: no update may change `tenant_id`",
        "error: column `body` is listed twice",
        "error: a column list on `delete` is not supported",
        "error: a column list cannot be combined with a `sql` condition",
        "--> test.tenancy:",
    ] {
        assert!(out.contains(expected), "missing {expected:?} in:\n{out}");
    }
}

#[test]
fn the_same_rule_twice_still_clashes() {
    let sources = notes(
        "    allow update (title) to editor
    allow update (title) to editor",
    );
    let (model, diags) = compile(&sources);
    assert!(model.is_none());
    assert!(diags
        .render(&sources, false)
        .contains("error: duplicate rule for `update` on table `notes`"));
}
