//! Row conditions (`allow ... where ...`) and stamped columns (`= current_user on insert`):
//! what the validator accepts, every error it reports at once, and the SQL it writes.

#![allow(clippy::expect_used, clippy::unwrap_used)] // test helpers panic on broken fixtures

use tenancy_core::condition::{StampValue, StampWhen};
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

fn sources(table: &str) -> Vec<SourceFile> {
    vec![SourceFile::new("test.tenancy", format!("{CORE}{table}"))]
}

fn rendered_errors(table: &str) -> String {
    let sources = sources(table);
    let (model, diags) = compile(&sources);
    assert!(model.is_none(), "expected errors");
    diags.render(&sources, false)
}

fn notes(rules: &str) -> String {
    format!(
        "scoped table notes {{
    id uuid default gen_random_uuid()
    body text
    archived boolean default false
    score integer default 0
    published date?
    meta jsonb default '{{}}'
    created_by uuid = current_user on insert
    updated_at timestamptz = now() on update

    primary key (id)
{rules}
}}
"
    )
}

#[test]
fn conditions_and_stamps_build_the_model_and_one_policy_per_command() {
    let text = notes(
        "    allow select to viewer where not archived or role >= editor
    allow update to editor where created_by = current_user and score in (1, 2, 3)
    allow update to admin
    allow delete to editor where published is not null and published < '2030-01-31'
    allow insert to editor where sql \"pg_catalog.length(body) < 200\"",
    );
    let sources = sources(&text);
    let (model, diags) = compile(&sources);
    assert!(!diags.has_errors(), "{}", diags.render(&sources, false));
    let model = model.unwrap();
    let notes = model.table("notes").unwrap();
    assert_eq!(notes.rules_for(Command::Update).len(), 2);
    assert_eq!(notes.rule(Command::Update), Some("editor"));
    let stamp = notes.column("created_by").unwrap().stamp.unwrap();
    assert_eq!(
        (stamp.value, stamp.when),
        (StampValue::CurrentUser, StampWhen::Insert)
    );

    let sql: String = generate_migrations(&model, Target::Postgres)
        .iter()
        .map(|f| f.contents.clone())
        .collect();
    // One permissive UPDATE policy holding both rules, the condition next to the role test.
    assert_eq!(sql.matches("CREATE POLICY notes_update").count(), 1);
    assert!(
        sql.contains(
            "USING ((project_id = ANY ((SELECT tenancy.project_ids('editor'))::uuid[]) \
         AND (created_by = (SELECT tenancy.current_user_id()) AND score IN (1, 2, 3))) \
         OR (project_id = ANY ((SELECT tenancy.project_ids('admin'))::uuid[])))"
        ),
        "{sql}"
    );
    assert!(sql.contains(
        "((NOT archived) OR COALESCE(project_id = ANY ((SELECT tenancy.project_ids('editor'))::uuid[]), false))"
    ));
    assert!(sql.contains("published IS NOT NULL AND published < '2030-01-31'"));
    assert!(sql.contains("AND (pg_catalog.length(body) < 200)"));
    // The stamps: a trigger, and no UPDATE grant on them.
    assert!(sql.contains("CREATE TRIGGER notes_stamp\n  BEFORE INSERT OR UPDATE ON notes"));
    assert!(sql.contains("GRANT UPDATE (body, archived, score, published, meta) ON TABLE notes"));

    let explained = tenancy_core::explain::explain(&model, Some("notes")).unwrap();
    assert!(
        explained.contains("UNCHECKED SQL: pg_catalog.length(body) < 200"),
        "{explained}"
    );
    assert!(explained.contains(
        "on rows where not its `archived` is true or the caller's role in the row's project is at least editor"
    ), "{explained}");
}

#[test]
fn every_condition_error_is_reported_at_once() {
    let text = notes(
        "    allow select to viewer where archivd
    allow update to editor where created_by = 'not-a-uuid'
    allow delete to editor where score = null
    allow insert to editor where body is null
    allow update to admin where role < editor
    allow delete to admin where meta > '{}'
    allow insert to admin where score = 'x'",
    );
    let out = rendered_errors(&text);
    for expected in [
        "error: unknown column `archivd` in a condition on `notes`",
        "help: did you mean `archived`?",
        "error: this value does not fit `created_by` (uuid)",
        "error: comparison with `null` is never true",
        "help: write `... is null`",
        "error: `body` is never null",
        "error: this rule can never apply",
        "error: `>` cannot order jsonb values",
        "error: this value does not fit `score` (integer)",
        "--> test.tenancy:",
    ] {
        assert!(out.contains(expected), "missing {expected:?} in:\n{out}");
    }
}

#[test]
fn stamp_mistakes_are_explained() {
    // Syntax: reported by the parser (validation waits for a file that parses).
    let syntax = rendered_errors(
        "scoped table notes {
    id uuid default gen_random_uuid()
    b uuid = current_user
    e text = 3
    primary key (id)
    allow select to viewer
}
",
    );
    for expected in [
        "error: a stamped column needs `on insert` or `on update`",
        "help: for a default value write `default 3`",
    ] {
        assert!(
            syntax.contains(expected),
            "missing {expected:?} in:\n{syntax}"
        );
    }
    let out = rendered_errors(
        "scoped table notes {
    id uuid default gen_random_uuid()
    a text = current_user on insert
    c timestamptz = now() on delete
    d timestamptz = now() on insert default now()
    primary key (id)
    allow select to viewer
}
",
    );
    for expected in [
        "error: `current_user` cannot stamp column `a` of type text",
        "error: unknown stamp time `on delete`",
        "error: column `d` has both a default and a stamp",
    ] {
        assert!(out.contains(expected), "missing {expected:?} in:\n{out}");
    }
}

#[test]
fn conditions_are_for_scoped_tables_and_duplicates_still_clash() {
    let out = rendered_errors(
        "scoped table notes {
    id uuid default gen_random_uuid()
    primary key (id)
    allow select to viewer
    allow select to editor
}
",
    );
    assert!(
        out.contains("error: duplicate rule for `select` on table `notes`"),
        "{out}"
    );
    let sources = vec![SourceFile::new(
        "test.tenancy",
        CORE.replace(
            "projects table projects {\n    name text\n    allow select to viewer",
            "projects table projects {\n    name text\n    allow select to viewer where name = 'x'",
        ),
    )];
    let (model, diags) = compile(&sources);
    assert!(model.is_none());
    assert!(diags
        .render(&sources, false)
        .contains("rules on the projects table `projects` cannot have a condition"));
}
