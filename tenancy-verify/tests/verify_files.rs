//! `verify` over migration files: the generated schema is proven; hand-broken policies fail
//! with the table, the command and a counterexample.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};

use tenancy_core::dsl::{self, SourceFile};
use tenancy_core::model::{Command, Model};
use tenancy_core::sql::{generate_migrations, Target};
use tenancy_verify::{verify, Deployed, FailureKind, Report};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn rag() -> Model {
    let text = std::fs::read_to_string(root().join("examples/rag/policies/rag.tenancy")).unwrap();
    let (model, diagnostics) = dsl::compile(&[SourceFile::new("rag.tenancy", &text)]);
    assert!(!diagnostics.has_errors(), "{diagnostics:?}");
    model.unwrap()
}

fn rag_files() -> Vec<(String, String)> {
    let dir = root().join("examples/rag/generated/migrations");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "sql"))
        .collect();
    files.sort();
    files
        .into_iter()
        .map(|p| {
            (
                p.file_name().unwrap().to_string_lossy().into_owned(),
                std::fs::read_to_string(&p).unwrap(),
            )
        })
        .collect()
}

fn verify_with(model: &Model, extra: &str) -> Report {
    let mut files = rag_files();
    files.push(("9999_hand_edit.sql".to_owned(), extra.to_owned()));
    let deployed = Deployed::from_sql(&files, model).unwrap();
    verify(model, &deployed, Target::Postgres)
}

#[test]
fn the_committed_rag_migrations_are_proven() {
    let model = rag();
    let deployed =
        Deployed::from_migrations_dir(&root().join("examples/rag/generated/migrations"), &model)
            .unwrap();
    let report = verify(&model, &deployed, Target::Postgres);
    assert!(report.is_proven(), "{}", report.to_text());
    // every tenant-owned table, every command (update twice: existing and new rows)
    assert_eq!(report.proofs.len(), 9 * 5, "{}", report.to_text());
}

#[test]
fn a_dropped_boundary_fails_with_a_row_of_another_tenant() {
    let model = rag();
    let report = verify_with(
        &model,
        "DROP POLICY documents_tenant_boundary ON documents;",
    );
    assert!(!report.is_proven());
    let boundary: Vec<_> = report
        .failures
        .iter()
        .filter(|f| f.kind == FailureKind::Boundary)
        .collect();
    assert!(!boundary.is_empty(), "{}", report.to_text());
    assert!(boundary.iter().all(|f| f.table == "documents"));
    let select = boundary
        .iter()
        .find(|f| f.command == Some(Command::Select))
        .expect("select fails");
    let w = select.counterexample.as_ref().unwrap();
    assert_eq!(w.tenant, "T2");
    assert_eq!(w.project.as_deref(), Some("P"));
    assert_eq!(w.role.as_deref(), Some("viewer"));
    insta::assert_snapshot!("dropped_boundary", report.to_text());
}

#[test]
fn an_extra_permissive_policy_fails_by_name_and_with_a_counterexample() {
    let model = rag();
    let report = verify_with(
        &model,
        "CREATE POLICY documents_debug ON documents AS PERMISSIVE FOR SELECT TO tenancy_app \
         USING (true);",
    );
    let extra: Vec<_> = report
        .failures
        .iter()
        .filter(|f| f.kind == FailureKind::ExtraPolicy)
        .collect();
    assert_eq!(extra.len(), 1, "{}", report.to_text());
    assert_eq!(extra[0].table, "documents");
    assert_eq!(extra[0].command, Some(Command::Select));
    let w = extra[0].counterexample.as_ref().unwrap();
    assert_eq!(w.role, None, "a caller without any role reads");
    assert!(report
        .failures
        .iter()
        .any(|f| f.kind == FailureKind::Widened && f.command == Some(Command::Select)));
    // the boundary still holds
    assert!(!report
        .failures
        .iter()
        .any(|f| f.kind == FailureKind::Boundary));
    insta::assert_snapshot!("extra_permissive", report.to_text());
}

#[test]
fn a_widened_role_fails_with_the_role_that_gains() {
    let model = rag();
    let report = verify_with(
        &model,
        "DROP POLICY documents_delete ON documents;\n\
         CREATE POLICY documents_delete ON documents AS PERMISSIVE FOR DELETE TO tenancy_app \
         USING (COALESCE(project_id = ANY ((SELECT tenancy.project_ids('editor'))::uuid[]), false));",
    );
    assert_eq!(report.failures.len(), 1, "{}", report.to_text());
    let f = &report.failures[0];
    assert_eq!(f.kind, FailureKind::Widened);
    assert_eq!(f.table, "documents");
    assert_eq!(f.command, Some(Command::Delete));
    let w = f.counterexample.as_ref().unwrap();
    assert_eq!(w.role.as_deref(), Some("editor"));
    assert_eq!((w.tenant.as_str(), w.project.as_deref()), ("T", Some("P")));
    insta::assert_snapshot!("widened_role", report.to_text());
}

#[test]
fn a_loosened_condition_and_a_narrowed_role_fail() {
    let model = rag();
    // the editor's own-documents condition dropped from update; insert raised to admin
    let report = verify_with(
        &model,
        "DROP POLICY documents_update ON documents;\n\
         CREATE POLICY documents_update ON documents AS PERMISSIVE FOR UPDATE TO tenancy_app \
         USING (COALESCE(project_id = ANY ((SELECT tenancy.project_ids('editor'))::uuid[]), false));\n\
         DROP POLICY documents_insert ON documents;\n\
         CREATE POLICY documents_insert ON documents AS PERMISSIVE FOR INSERT TO tenancy_app \
         WITH CHECK (COALESCE(project_id = ANY ((SELECT tenancy.project_ids('admin'))::uuid[]), false));",
    );
    let update = report
        .failures
        .iter()
        .find(|f| f.command == Some(Command::Update) && f.kind == FailureKind::Widened)
        .expect("update widened");
    let w = update.counterexample.as_ref().unwrap();
    assert_eq!(w.role.as_deref(), Some("editor"));
    assert_eq!(
        w.row.get("created_by").map(String::as_str),
        Some("another user's id")
    );
    let insert = report
        .failures
        .iter()
        .find(|f| f.command == Some(Command::Insert))
        .expect("insert narrowed");
    assert_eq!(insert.kind, FailureKind::Narrowed);
    assert_eq!(
        insert.counterexample.as_ref().unwrap().role.as_deref(),
        Some("editor")
    );
}

#[test]
fn disabled_row_level_security_breaks_the_boundary() {
    let model = rag();
    let report = verify_with(&model, "ALTER TABLE chunks DISABLE ROW LEVEL SECURITY;");
    let f = report
        .failures
        .iter()
        .find(|f| f.kind == FailureKind::Boundary && f.table == "chunks")
        .expect("boundary");
    assert!(
        f.message.contains("row-level security is not enabled"),
        "{}",
        f.message
    );
}

#[test]
fn an_expression_outside_the_evaluated_forms_is_not_proven() {
    let model = rag();
    let report = verify_with(
        &model,
        "DROP POLICY chunks_select ON chunks;\n\
         CREATE POLICY chunks_select ON chunks AS PERMISSIVE FOR SELECT TO tenancy_app \
         USING (EXISTS (SELECT 1 FROM documents d WHERE d.id = document_id));",
    );
    let f = report
        .failures
        .iter()
        .find(|f| f.table == "chunks" && f.command == Some(Command::Select))
        .expect("chunks select");
    assert_eq!(f.kind, FailureKind::Unprovable, "{}", report.to_text());
}

/// A second model (not the RAG one), on both targets: its generated migrations are proven.
#[test]
fn another_model_is_proven_on_both_targets() {
    let text = r#"
tenancy {
    owner_role = "desk_owner"
    app_role = "desk_app"
    helper_schema = "desk"
    roles = reader < agent < lead
}
tenants table organizations {
    name text
    allow select to reader
}
projects table workspaces {
    name text
    allow select to reader
    allow update to lead
}
memberships table seats {
    allow select to reader
    allow insert, update, delete to lead
}
scoped table tickets {
    id uuid default gen_random_uuid()
    subject text
    status text default 'open'
    priority integer default 3
    opened_by uuid = current_user on insert
    primary key (id)
    allow select to reader
    allow insert to agent
    allow update to agent where opened_by = current_user or status = 'open'
    allow update to lead
    allow delete to lead where priority > 3
}
global table holidays {
    id uuid default gen_random_uuid()
    day date
    primary key (id)
    allow select
}
"#;
    let (model, diagnostics) = dsl::compile(&[SourceFile::new("desk.tenancy", text)]);
    assert!(!diagnostics.has_errors(), "{diagnostics:?}");
    let model = model.unwrap();
    for target in [Target::Postgres, Target::Citus] {
        let files: Vec<(String, String)> = generate_migrations(&model, target)
            .into_iter()
            .map(|f| (f.path.display().to_string(), f.contents))
            .collect();
        let deployed = Deployed::from_sql(&files, &model).unwrap();
        let report = verify(&model, &deployed, target);
        assert!(report.is_proven(), "{target:?}: {}", report.to_text());
        assert_eq!(report.proofs.len(), 4 * 5);
        // and a broken delete condition is caught with the row that shows it
        let mut broken = files.clone();
        broken.push((
            "9999.sql".to_owned(),
            match target {
                Target::Postgres => "DROP POLICY tickets_delete ON tickets; CREATE POLICY tickets_delete ON tickets FOR DELETE TO desk_app USING (COALESCE(project_id = ANY ((SELECT desk.project_ids('lead'))::uuid[]), false) AND priority >= 3);",
                Target::Citus => "DROP POLICY tickets_delete ON tickets; CREATE POLICY tickets_delete ON tickets FOR DELETE TO desk_app USING (tenant_id = desk.current_tenant_id() AND project_id = ANY (desk.project_ids('lead')) AND priority >= 3);",
            }
            .to_owned(),
        ));
        let report = verify(
            &model,
            &Deployed::from_sql(&broken, &model).unwrap(),
            target,
        );
        assert_eq!(report.failures.len(), 1, "{target:?}: {}", report.to_text());
        let w = report.failures[0].counterexample.as_ref().unwrap();
        assert_eq!(w.row.get("priority").map(String::as_str), Some("3"));
        // On Citus the boundary lives in every permissive policy: drop it from one.
        if target == Target::Citus {
            let mut unbounded = files.clone();
            unbounded.push((
                "9999.sql".to_owned(),
                "DROP POLICY tickets_select ON tickets; CREATE POLICY tickets_select ON tickets FOR SELECT TO desk_app USING (project_id = ANY (desk.project_ids('reader')));".to_owned(),
            ));
            let report = verify(
                &model,
                &Deployed::from_sql(&unbounded, &model).unwrap(),
                target,
            );
            assert!(
                report
                    .failures
                    .iter()
                    .any(|f| f.kind == FailureKind::Boundary && f.table == "tickets"),
                "{}",
                report.to_text()
            );
        }
    }
}

/// From files the members of a role are unknown: a policy for any role counts (fail closed).
#[test]
fn from_files_a_policy_for_another_role_counts() {
    let model = rag();
    let report = verify_with(
        &model,
        "CREATE POLICY queries_reporting ON queries AS PERMISSIVE FOR SELECT TO reporting \
         USING (true);",
    );
    assert!(
        report
            .failures
            .iter()
            .any(|f| f.kind == FailureKind::ExtraPolicy && f.table == "queries"),
        "{}",
        report.to_text()
    );
}

/// A raw SQL condition of the model cannot be evaluated: the rights it decides are reported
/// unchecked (the boundary is still proven), never silently proven.
#[test]
fn rights_under_a_raw_sql_condition_are_reported_unchecked() {
    let text = std::fs::read_to_string(root().join("examples/rag/policies/rag.tenancy"))
        .unwrap()
        .replacen(
            "allow delete to admin\n}",
            "allow delete to editor where sql \"content_hash is not null\"\n    allow delete to admin\n}",
            1,
        );
    assert!(text.contains("sql \"content_hash"));
    let (model, diagnostics) = dsl::compile(&[SourceFile::new("rag.tenancy", &text)]);
    assert!(!diagnostics.has_errors(), "{diagnostics:?}");
    let model = model.unwrap();
    let files: Vec<(String, String)> = generate_migrations(&model, Target::Postgres)
        .into_iter()
        .map(|f| (f.path.display().to_string(), f.contents))
        .collect();
    let report = verify(
        &model,
        &Deployed::from_sql(&files, &model).unwrap(),
        Target::Postgres,
    );
    assert!(report.is_proven(), "{}", report.to_text());
    let raw: Vec<_> = report
        .proofs
        .iter()
        .filter(|p| p.raw_sql_unchecked)
        .collect();
    assert_eq!(raw.len(), 1, "{}", report.to_text());
    assert_eq!(raw[0].command, Command::Delete);
    assert!(report
        .to_text()
        .contains("[rights under raw SQL unchecked]"));
}

/// An adopted model (examples/legacy: existing tables renamed and taken over by phased
/// migrations): its generated migrations are proven.
#[test]
fn the_adoption_migrations_of_a_legacy_schema_are_proven() {
    let text =
        std::fs::read_to_string(root().join("examples/legacy/policies/rag.tenancy")).unwrap();
    let (model, diagnostics) = dsl::compile(&[SourceFile::new("rag.tenancy", &text)]);
    assert!(!diagnostics.has_errors(), "{diagnostics:?}");
    let model = model.unwrap();
    assert!(model.adoption.is_some());
    let files: Vec<(String, String)> = generate_migrations(&model, Target::Postgres)
        .into_iter()
        .map(|f| (f.path.display().to_string(), f.contents))
        .collect();
    let report = verify(
        &model,
        &Deployed::from_sql(&files, &model).unwrap(),
        Target::Postgres,
    );
    assert!(report.is_proven(), "{}", report.to_text());
}
