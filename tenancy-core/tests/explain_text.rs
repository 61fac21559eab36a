//! `explain`: the plain-text description of the rules for security reviewers.

#[path = "sql_fixtures.rs"]
mod fixtures;

use fixtures::*;
use tenancy_core::explain::explain;

#[test]
fn rag_model_explanation_snapshot() {
    let text = explain(&rag_model(), None).expect("explain");
    insta::assert_snapshot!("explain_rag", text);
}

#[test]
fn one_table_lists_kind_scope_keys_and_roles() {
    let text = explain(&rag_model(), Some("documents")).expect("documents");
    assert!(text.starts_with("documents (scoped to a project)\n"));
    assert!(text.contains("  | A source document ingested into a project.\n"));
    assert!(text.contains("  scope: tenant = tenant_id, project = project_id;"));
    assert!(text.contains("  primary key: (tenant_id, project_id, id)\n"));
    assert!(text.contains("  unique: (tenant_id, project_id, content_hash)\n"));
    assert!(text.contains(
        "  select: viewer and above (viewer, editor, admin, owner), reading only title, \
         mime_type, content_hash, metadata, created_by, created_at, updated_at; or editor and \
         above (editor, admin, owner)\n"
    ));
    assert!(text.contains("    masked columns: source_uri (the app role cannot select them"));
    assert!(text.contains("  insert: editor and above (editor, admin, owner)\n"));
    assert!(text.contains(
        "  update: editor and above (editor, admin, owner), on rows where its `created_by` is \
         the caller's user id, changing only title, metadata; or admin and above (admin, owner)\n"
    ));
    assert!(text.contains(
        "    column rights: the database refuses, per row, a change to a column no rule of the \
         caller covers\n"
    ));
    assert!(text.contains("  stamped: created_by = the caller's user id, written by the database when the row is inserted"));
    assert!(text.contains("  delete: admin and above (admin, owner)\n"));
    assert!(text.contains("  truncate/references/trigger: never\n"));
    // only this table
    assert!(!text.contains("chunks"));
}

#[test]
fn commands_without_a_rule_are_denied() {
    let text = explain(&rag_model(), Some("responses")).expect("responses");
    assert!(text.contains("  update: denied (no rule)\n"));
    let text = explain(&rag_model(), Some("tenants")).expect("tenants");
    for command in ["insert", "update", "delete"] {
        assert!(
            text.contains(&format!("  {command}: denied (no rule)\n")),
            "{text}"
        );
    }
    assert!(
        text.contains("viewer and above (viewer, editor, admin, owner) in at least one project")
    );
}

#[test]
fn memberships_and_global_tables_are_explained() {
    let text = explain(&rag_model(), Some("user_project_roles")).expect("memberships");
    assert!(text.contains("every user may also read their own memberships"));
    assert!(text.contains("    updatable columns: role\n"));
    let text = explain(&rag_model(), Some("embedding_models")).expect("global");
    assert!(text.contains("global, shared by every tenant"));
    assert!(text.contains("no row-level security"));
    assert!(text.contains("  insert: denied (no rule)\n"));
}

#[test]
fn unknown_table_suggests_the_closest_name() {
    let err = explain(&rag_model(), Some("document")).expect_err("unknown");
    assert_eq!(err.suggestion.as_deref(), Some("documents"));
    assert_eq!(
        err.to_string(),
        "unknown table `document`; did you mean `documents`?"
    );
    let err = explain(&rag_model(), Some("zzz")).expect_err("unknown");
    assert_eq!(err.suggestion, None);
    assert!(err.to_string().contains("tables are: tenants, projects"));
}

#[test]
fn the_top_role_alone_is_named_as_such() {
    let mut model = rag_model();
    for t in &mut model.tables {
        for r in &mut t.rules {
            if t.name == "documents" && r.command == tenancy_core::model::Command::Delete {
                r.min_role = "owner".into();
            }
        }
    }
    let text = explain(&model, Some("documents")).expect("documents");
    assert!(text.contains("  delete: owner only (owner)\n"), "{text}");
}

/// Unique keys narrower than the read scope are listed as existence oracles: in the RAG model
/// only the projects' slug (an admin renaming a project collides with a project it cannot
/// see); scoped tables' keys lead with the project and are not listed.
#[test]
fn existence_oracles_are_listed() {
    let model = rag_model();
    let text = explain(&model, None).expect("explain");
    let oracles: Vec<&str> = text
        .lines()
        .filter(|l| l.contains("existence oracle"))
        .collect();
    assert_eq!(oracles.len(), 1, "{oracles:?}");
    assert!(oracles[0].starts_with("  existence oracle: unique (tenant_id, slug) spans rows"));
    let projects = model.table("projects").expect("projects");
    assert_eq!(
        tenancy_core::explain::existence_oracles(projects),
        [vec!["tenant_id".to_owned(), "slug".to_owned()]]
    );
    for table in model.tables.iter().filter(|t| t.name != "projects") {
        assert!(
            tenancy_core::explain::existence_oracles(table).is_empty(),
            "{}",
            table.name
        );
    }
}

#[test]
fn json_form_carries_the_same_facts() {
    let text =
        tenancy_core::explain_json::explain_json(&rag_model(), Some("documents")).expect("json");
    let value: serde_json::Value = serde_json::from_str(&text).expect("valid JSON");
    let table = &value["tables"][0];
    assert_eq!(table["name"], "documents");
    assert_eq!(table["kind"], "scoped");
    assert_eq!(table["scope"]["project"], "project_id");
    let update = &table["commands"][2];
    assert_eq!(update["command"], "update");
    assert_eq!(update["rules"][0]["condition"], "created_by = current_user");
    assert_eq!(update["roles"][1]["role"], "editor");
    assert_eq!(update["roles"][1]["access"], "rows");
    assert_eq!(
        update["roles"][1]["conditions"][0],
        "its `created_by` is the caller's user id"
    );
    assert_eq!(update["roles"][0]["access"], "denied");
    assert_eq!(update["roles"][2]["access"], "all_rows");
    assert_eq!(table["stamped"][0]["column"], "created_by");
    assert!(tenancy_core::explain_json::explain_json(&rag_model(), Some("nope")).is_err());
    insta::assert_snapshot!(
        "explain_rag_json",
        tenancy_core::explain_json::explain_json(&rag_model(), None).expect("json")
    );
}
