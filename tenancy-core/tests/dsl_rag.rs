//! The RAG policy in `policies/` compiles cleanly into the expected model.

#![allow(clippy::expect_used, clippy::unwrap_used)] // test helpers panic on broken fixtures

use std::path::Path;

use tenancy_core::dsl::{compile, compile_dir, read_dir};
use tenancy_core::model::{Command, DefaultValue, OnDelete, SqlType, TableKind};

fn policies_dir() -> &'static Path {
    Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../examples/rag/policies"
    ))
}

#[test]
fn rag_policy_compiles_without_errors_or_warnings() {
    let sources = read_dir(policies_dir()).expect("read policies");
    assert!(sources.iter().any(|s| s.name.ends_with("rag.tenancy")));
    let (model, diags) = compile(&sources);
    let rendered = diags.render(&sources, false);
    assert_eq!(diags.error_count(), 0, "{rendered}");
    assert_eq!(diags.warning_count(), 0, "{rendered}");
    let model = model.expect("model");

    assert_eq!(model.roles, ["viewer", "editor", "admin", "owner"]);
    assert_eq!(model.settings.owner_role, "tenancy_owner");
    assert_eq!(model.settings.app_role, "tenancy_app");
    assert_eq!(model.settings.helper_schema, "tenancy");

    let names: Vec<&str> = model.tables.iter().map(|t| t.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "tenants",
            "projects",
            "user_project_roles",
            "tenant_user_roles",
            "documents",
            "chunks",
            "queries",
            "responses",
            "assertions",
            "embedding_models",
        ]
    );
    let kinds: Vec<TableKind> = model.tables.iter().map(|t| t.kind).collect();
    assert_eq!(
        &kinds[..4],
        [
            TableKind::Tenants,
            TableKind::Projects,
            TableKind::Memberships,
            TableKind::TenantMemberships
        ]
    );
    assert_eq!(
        model
            .tables
            .iter()
            .filter(|t| t.kind == TableKind::Scoped)
            .count(),
        5
    );
    assert_eq!(
        model.table("embedding_models").expect("global").kind,
        TableKind::Global
    );

    // Core tables declare no primary key: the generator fixes it.
    assert!(model.tables[..3].iter().all(|t| t.primary_key.is_empty()));
    assert_eq!(
        model.table("projects").expect("projects").unique_keys,
        vec![vec!["slug".to_owned()]]
    );

    let chunks = model.table("chunks").expect("chunks");
    assert_eq!(
        chunks.doc.as_deref(),
        Some("A retrievable slice of a document, with its embedding.")
    );
    assert_eq!(chunks.primary_key, ["id"]);
    assert_eq!(
        chunks.unique_keys,
        vec![vec!["document_id".to_owned(), "ordinal".to_owned()]]
    );
    let fk = &chunks.foreign_keys[0];
    assert_eq!(chunks.foreign_keys.len(), 1);
    assert_eq!(
        (fk.table.as_str(), fk.on_delete),
        ("documents", OnDelete::Cascade)
    );
    assert_eq!(fk.columns, ["document_id"]);
    assert_eq!(fk.target_columns, ["id"]);
    let embedding = chunks
        .columns
        .iter()
        .find(|c| c.name == "embedding")
        .expect("embedding");
    assert_eq!(embedding.ty, SqlType::Vector(384));
    assert!(embedding.nullable);
    assert_eq!(
        chunks.effective_primary_key(),
        ["tenant_id", "project_id", "id"]
    );

    let assertions = model.table("assertions").expect("assertions");
    let chunk_id = assertions
        .columns
        .iter()
        .find(|c| c.name == "chunk_id")
        .expect("chunk_id");
    assert!(chunk_id.nullable);
    let to_chunks = assertions
        .foreign_keys
        .iter()
        .find(|f| f.table == "chunks")
        .expect("fk");
    assert_eq!(to_chunks.on_delete, OnDelete::SetNull);
    assert_eq!(to_chunks.target_columns, ["id"]);
    assert_eq!(assertions.columns.iter().filter(|c| c.nullable).count(), 2);

    let documents = model.table("documents").expect("documents");
    let metadata = documents
        .columns
        .iter()
        .find(|c| c.name == "metadata")
        .expect("metadata");
    assert_eq!(metadata.ty, SqlType::Jsonb);
    assert_eq!(
        metadata.default,
        Some(DefaultValue::String("{}".to_owned()))
    );
    let id = &documents.columns[0];
    assert_eq!(
        (id.name.as_str(), id.default.clone()),
        ("id", Some(DefaultValue::GenRandomUuid))
    );
    assert_eq!(documents.indexes.len(), 1);
    // Rules: canonical command order, least role first; the editor's update has a condition.
    let rules: Vec<(Command, &str, Option<String>)> = documents
        .rules
        .iter()
        .map(|r| {
            (
                r.command,
                r.min_role.as_str(),
                r.condition.as_ref().map(|c| c.to_dsl()),
            )
        })
        .collect();
    let owner_only = Some("created_by = current_user".to_owned());
    assert_eq!(
        rules,
        [
            (Command::Select, "viewer", None),
            (Command::Select, "editor", None),
            (Command::Insert, "editor", None),
            (Command::Update, "editor", owner_only),
            (Command::Update, "admin", None),
            (Command::Delete, "admin", None),
        ]
    );
    let queries = model.table("queries").expect("queries");
    assert_eq!(queries.rule(Command::Insert), Some("viewer"));
    assert_eq!(queries.rule(Command::Update), None);
    let memberships = model.table("user_project_roles").expect("memberships");
    assert_eq!(memberships.rule(Command::Delete), Some("admin"));
    assert_eq!(memberships.columns.len(), 2);

    let global = model.table("embedding_models").expect("global");
    assert_eq!(global.rules.len(), 1);
    assert_eq!(global.rules[0].command, Command::Select);
    assert_eq!(global.primary_key, ["name"]);

    let responses = model.table("responses").expect("responses");
    let prompt_tokens = responses
        .columns
        .iter()
        .find(|c| c.name == "prompt_tokens")
        .expect("col");
    assert_eq!(prompt_tokens.default, Some(DefaultValue::Integer(0)));

    // Dependency order is well defined (no cycles): documents before chunks before assertions.
    let order: Vec<&str> = model
        .tables_in_dependency_order()
        .iter()
        .map(|t| t.name.as_str())
        .collect();
    let pos = |n: &str| order.iter().position(|x| *x == n).expect("present");
    assert!(pos("documents") < pos("chunks") && pos("chunks") < pos("assertions"));
}

#[test]
fn compile_dir_agrees_with_compile() {
    let (model, diags) = compile_dir(policies_dir()).expect("valid policy");
    assert_eq!(diags.error_count() + diags.warning_count(), 0);
    let sources = read_dir(policies_dir()).expect("read");
    assert_eq!(Some(model), compile(&sources).0);
}
