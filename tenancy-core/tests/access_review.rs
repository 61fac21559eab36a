//! The reviewer's view of a model: `generated/ACCESS.md` and `tenancy diff` between two
//! models, over a series of policy changes that covers every kind of widening and narrowing.
//! Every case edits the RAG example's policies (`examples/rag/policies/rag.tenancy`) and
//! checks the classification and the counterexample; the texts are insta snapshots. The live
//! check that each counterexample really gains access is `tests/access_diff_live.rs`.
#![allow(clippy::expect_used, clippy::unwrap_used)] // tests panic on broken fixtures

use std::path::Path;

use tenancy_core::access::{self, diff, AccessDiff, ChangeKind, Effect};
use tenancy_core::dsl::{self, SourceFile};
use tenancy_core::model::Model;

fn rag_text() -> String {
    std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/rag/policies/rag.tenancy"),
    )
    .expect("read rag.tenancy")
}

fn compile(text: &str) -> Model {
    let (model, diagnostics) = dsl::compile(&[SourceFile::new("rag.tenancy", text)]);
    assert!(
        !diagnostics.has_errors(),
        "the edited policies do not compile: {diagnostics:?}"
    );
    model.expect("model")
}

/// The RAG policies with each `(from, to)` replacement applied (each must match once).
fn edited(edits: &[(&str, &str)]) -> Model {
    let mut text = rag_text();
    for (from, to) in edits {
        assert_eq!(
            text.matches(from).count(),
            1,
            "edit `{from}` must match once"
        );
        text = text.replacen(from, to, 1);
    }
    compile(&text)
}

fn rag() -> Model {
    compile(&rag_text())
}

fn kinds(d: &AccessDiff) -> Vec<(Effect, ChangeKind)> {
    d.changes.iter().map(|c| (c.effect, c.kind)).collect()
}

#[test]
fn access_md_of_the_rag_model() {
    insta::assert_snapshot!("access_md_rag", access::access_markdown(&rag()));
}

#[test]
fn access_md_is_the_committed_file() {
    let committed = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/rag/generated/ACCESS.md"),
    )
    .expect("read ACCESS.md");
    assert_eq!(committed, access::access_markdown(&rag()));
}

#[test]
fn access_md_flags_raw_sql_and_shows_conditions_and_global_writes() {
    let model = edited(&[
        (
            "allow update to admin\n    allow delete to admin\n}",
            "allow update to admin\n    allow delete to editor where sql \"pg_catalog.length(title) < 200\"\n}",
        ),
    ]);
    let text = access::access_markdown(&model);
    assert!(text.contains("## UNCHECKED rules"));
    assert!(text.contains("- `documents` delete\n"));
    assert!(text.contains("UNCHECKED SQL: pg_catalog.length(title) < 200"));
    assert!(text.contains("| every caller | every row | — | — | — |"));
    insta::assert_snapshot!("access_md_unchecked", text);
}

#[test]
fn no_change_is_an_empty_diff() {
    let d = diff(&rag(), &rag());
    assert!(d.changes.is_empty());
    assert!(!d.widens());
}

/// One case: a name, its edits, the expected (effect, kind) of every change.
fn case(name: &str, edits: &[(&str, &str)], expected: &[(Effect, ChangeKind)]) -> AccessDiff {
    let d = diff(&rag(), &edited(edits));
    assert_eq!(
        kinds(&d),
        expected,
        "{name}: {}",
        access::render::to_text(&d)
    );
    for change in &d.changes {
        if change.effect == Effect::Widens {
            assert!(
                change.counterexample.is_some(),
                "{name}: a widening without a counterexample: {}",
                change.description
            );
        }
    }
    insta::assert_snapshot!(format!("diff_{name}"), access::render::to_text(&d));
    d
}

const DOC_DELETE: &str = "allow update to admin\n    allow delete to admin\n}";
const DOC_UPDATE_OWN: &str =
    "allow update (title, metadata) to editor where created_by = current_user";

#[test]
fn a_role_gains_a_command_when_the_minimum_role_drops() {
    let d = case(
        "min_role_drops",
        &[(
            DOC_DELETE,
            "allow update to admin\n    allow delete to viewer\n}",
        )],
        &[(Effect::Widens, ChangeKind::RoleGainsCommand)],
    );
    assert_eq!(d.changes[0].roles, ["viewer", "editor"]);
    assert_eq!(
        d.changes[0]
            .counterexample
            .as_ref()
            .and_then(|c| c.role.as_deref()),
        Some("viewer")
    );
}

#[test]
fn a_role_loses_a_command_when_the_minimum_role_rises() {
    case(
        "min_role_rises",
        &[(
            DOC_DELETE,
            "allow update to admin\n    allow delete to owner\n}",
        )],
        &[(Effect::Narrows, ChangeKind::RoleLosesCommand)],
    );
}

#[test]
fn a_removed_condition_widens_with_a_row_of_another_author() {
    let d = case(
        "condition_removed",
        &[(DOC_UPDATE_OWN, "allow update (title, metadata) to editor")],
        &[(Effect::Widens, ChangeKind::ConditionLoosened)],
    );
    let witness = d.changes[0]
        .counterexample
        .as_ref()
        .expect("counterexample");
    assert_eq!(witness.role.as_deref(), Some("editor"));
    assert_eq!(
        witness.row.get("created_by"),
        Some(&access::counterexample::Value::OtherUserId)
    );
}

#[test]
fn an_added_condition_narrows() {
    case(
        "condition_added",
        &[(
            DOC_DELETE,
            "allow update to admin\n    allow delete to admin where created_by = current_user\n}",
        )],
        &[(Effect::Narrows, ChangeKind::ConditionTightened)],
    );
}

#[test]
fn a_loosened_condition_widens() {
    let d = case(
        "condition_loosened",
        &[(DOC_UPDATE_OWN, "allow update (title, metadata) to editor where created_by = current_user or mime_type = 'text/plain'",
        )],
        &[(Effect::Widens, ChangeKind::ConditionLoosened)],
    );
    let witness = d.changes[0]
        .counterexample
        .as_ref()
        .expect("counterexample");
    assert_eq!(
        witness.row.get("mime_type"),
        Some(&access::counterexample::Value::Literal(
            tenancy_core::condition::Literal::String("text/plain".into())
        ))
    );
}

#[test]
fn a_tightened_condition_narrows() {
    case(
        "condition_tightened",
        &[(DOC_UPDATE_OWN, "allow update (title, metadata) to editor where created_by = current_user and mime_type = 'text/plain'",
        )],
        &[(Effect::Narrows, ChangeKind::ConditionTightened)],
    );
}

#[test]
fn a_condition_that_admits_other_rows_is_a_mixed_change_and_widens() {
    case(
        "condition_mixed",
        &[(
            DOC_UPDATE_OWN,
            "allow update (title, metadata) to editor where mime_type = 'text/plain'",
        )],
        &[(Effect::Widens, ChangeKind::ConditionChanged)],
    );
}

#[test]
fn a_condition_rewritten_to_the_same_rows_is_neutral() {
    case(
        "condition_rewritten",
        &[(
            DOC_UPDATE_OWN,
            "allow update (title, metadata) to editor where current_user = created_by",
        )],
        &[(Effect::Neutral, ChangeKind::ConditionRewritten)],
    );
}

#[test]
fn a_raw_sql_condition_cannot_be_compared_and_fails_closed() {
    let d = case(
        "condition_raw_sql",
        &[(
            DOC_UPDATE_OWN,
            "allow update to editor where sql \"pg_catalog.length(title) < 200\"",
        )],
        &[
            (Effect::Widens, ChangeKind::ConditionChanged),
            (Effect::Widens, ChangeKind::ColumnBecomesWritable),
            (Effect::Widens, ChangeKind::ColumnBecomesWritable),
            (Effect::Widens, ChangeKind::ColumnBecomesWritable),
        ],
    );
    assert!(d.changes[0]
        .counterexample
        .as_ref()
        .is_some_and(|c| c.unverified));
}

#[test]
fn a_global_table_that_becomes_granted_widens_for_every_caller() {
    let base = edited(&[(
        "primary key (name)\n    allow select\n",
        "primary key (name)\n",
    )]);
    let d = diff(&base, &rag());
    assert_eq!(kinds(&d), [(Effect::Widens, ChangeKind::RoleGainsCommand)]);
    let witness = d.changes[0]
        .counterexample
        .as_ref()
        .expect("counterexample");
    assert_eq!(witness.role, None);
    insta::assert_snapshot!("diff_global_table_granted", access::render::to_text(&d));
}

#[test]
fn a_stamp_on_insert_makes_an_insert_condition_on_it_neutral() {
    // `asked_by` is stamped with the caller's id on insert: the condition always held.
    case(
        "insert_condition_on_a_stamp",
        &[(
            "allow insert to viewer where asked_by = current_user",
            "allow insert to viewer",
        )],
        &[(Effect::Neutral, ChangeKind::ConditionRewritten)],
    );
}

#[test]
fn a_stamped_column_that_becomes_writable_widens() {
    case(
        "column_becomes_writable",
        &[(
            "created_by uuid = current_user on insert",
            "created_by uuid",
        )],
        &[
            (Effect::Widens, ChangeKind::ColumnBecomesWritable),
            (Effect::Widens, ChangeKind::ColumnBecomesWritable),
        ],
    );
}

#[test]
fn a_column_that_is_no_longer_writable_narrows_and_a_new_column_is_neutral() {
    case(
        "columns",
        &[
            (
                "    embedding vector(384)?\n    created_at timestamptz default now()",
                "    embedding vector(384)?\n    created_at timestamptz = now() on insert",
            ),
            (
                "    ordinal integer\n",
                "    ordinal integer\n    lang text?\n",
            ),
        ],
        &[
            (Effect::Neutral, ChangeKind::ColumnAdded),
            (Effect::Narrows, ChangeKind::ColumnNoLongerWritable),
            (Effect::Neutral, ChangeKind::ColumnAdded),
            (Effect::Narrows, ChangeKind::ColumnNoLongerWritable),
        ],
    );
}

#[test]
fn a_grant_ceiling_rises_when_a_lower_role_may_write_memberships() {
    case(
        "grant_ceiling_rises",
        &[(
            "allow insert, update, delete to admin\n}",
            "allow insert, update, delete to editor\n}",
        )],
        &[
            (Effect::Widens, ChangeKind::RoleGainsCommand),
            (Effect::Widens, ChangeKind::RoleGainsCommand),
            (Effect::Widens, ChangeKind::RoleGainsCommand),
            (Effect::Widens, ChangeKind::GrantCeilingRises),
        ],
    );
}

#[test]
fn a_grant_ceiling_lowers_when_admins_lose_membership_writes() {
    case(
        "grant_ceiling_lowers",
        &[(
            "allow insert, update, delete to admin\n}",
            "allow insert, update, delete to owner\n}",
        )],
        &[
            (Effect::Narrows, ChangeKind::RoleLosesCommand),
            (Effect::Narrows, ChangeKind::RoleLosesCommand),
            (Effect::Narrows, ChangeKind::RoleLosesCommand),
            (Effect::Narrows, ChangeKind::GrantCeilingLowers),
        ],
    );
}

#[test]
fn a_table_that_becomes_global_widens() {
    case(
        "table_becomes_global",
        &[("scoped table queries {", "global table queries {"), ("    index (asked_by)\n", ""), (
            "    allow select to viewer where asked_by = current_user\n    allow select to editor\n    allow insert to viewer where asked_by = current_user\n    allow delete to admin\n",
            "    allow select\n",
        ), ("    /// Who asked: the database writes the caller's user id on insert.\n    asked_by uuid = current_user on insert\n", ""), (
            "    // Viewers read the questions they asked; editors and admins read every question of the\n    // project (to review what people ask and how it was answered).\n",
            "",
        )],
        &[
            (Effect::Widens, ChangeKind::TableKindChanged),
            (Effect::Widens, ChangeKind::RoleGainsCommand),
        ],
    );
}

#[test]
fn added_and_removed_tables() {
    case(
        "tables_added_and_removed",
        &[
            (
                "/// Embedding models known to the platform, shared by every tenant.\nglobal table embedding_models {\n    name text\n    dimensions integer\n    created_at timestamptz default now()\n\n    primary key (name)\n    allow select\n}\n",
                "/// Notes.\nscoped table notes {\n    id uuid default gen_random_uuid()\n    body text\n    primary key (id)\n    allow select to editor\n}\n",
            ),
        ],
        &[
            (Effect::Neutral, ChangeKind::TableAdded),
            (Effect::Widens, ChangeKind::RoleGainsCommand),
            (Effect::Narrows, ChangeKind::TableRemoved),
        ],
    );
}

#[test]
fn mixed_changes_are_each_classified() {
    let d = case(
        "mixed",
        &[
            (
                DOC_DELETE,
                "allow update to admin\n    allow delete to viewer\n}",
            ),
            (
                "allow insert, update, delete to editor",
                "allow insert, update to editor\n    allow delete to admin",
            ),
            (
                DOC_UPDATE_OWN,
                "allow update (title, metadata) to editor where current_user = created_by",
            ),
        ],
        &[
            (Effect::Neutral, ChangeKind::ConditionRewritten),
            (Effect::Widens, ChangeKind::RoleGainsCommand),
            (Effect::Narrows, ChangeKind::RoleLosesCommand),
        ],
    );
    assert!(d.widens());
}

#[test]
fn json_and_markdown_forms() {
    let d = diff(
        &rag(),
        &edited(&[
            (
                DOC_DELETE,
                "allow update to admin\n    allow delete to viewer\n}",
            ),
            (
                "allow insert, update, delete to editor",
                "allow insert, update to editor\n    allow delete to admin",
            ),
        ]),
    );
    let json: serde_json::Value = serde_json::from_str(&access::render::to_json(&d)).expect("json");
    assert_eq!(json["widens"], true);
    assert_eq!(json["summary"]["widens"], 1);
    assert_eq!(json["summary"]["narrows"], 1);
    assert!(json["changes"][0]["counterexample_text"].is_string());
    insta::assert_snapshot!("diff_json", access::render::to_json(&d));
    insta::assert_snapshot!("diff_markdown", access::render::to_markdown(&d));
}

#[test]
fn a_new_migration_says_what_access_it_adds_and_removes() {
    let out = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/rag/generated");
    let existing = tenancy_core::output::ExistingOutput::read(&out).expect("read generated/");
    let model = edited(&[
        (
            DOC_DELETE,
            "allow update to admin\n    allow delete to viewer\n}",
        ),
        (
            "allow insert, update, delete to editor",
            "allow insert, update to editor\n    allow delete to admin",
        ),
    ]);
    let files = tenancy_core::output::generate(
        &model,
        tenancy_core::sql::Target::Postgres,
        &existing,
        tenancy_core::output::GenerateOptions::default(),
    )
    .expect("generate");
    // The committed migrations pass through byte for byte.
    for old in &existing.migrations {
        let now = files.iter().find(|f| f.path == old.path).expect("kept");
        assert_eq!(now.contents, old.contents);
    }
    let new = files
        .iter()
        .find(|f| {
            f.path.to_string_lossy().starts_with("migrations/")
                && !existing.migrations.iter().any(|old| old.path == f.path)
        })
        .expect("a new migration");
    let header = new.contents.split("\n\n").next().expect("header");
    assert!(header.contains("\n--   widens: viewer, editor may now delete `documents`"));
    assert!(header.contains("\n--     counterexample: a caller holding `viewer`"));
    assert!(header.contains("\n--   narrows: editor may no longer delete `chunks`"));
    insta::assert_snapshot!("migration_access_header", header);
}

#[test]
fn a_column_added_to_a_role_s_column_rights_widens_for_that_role() {
    let d = case(
        "column_rights_widen",
        &[(
            DOC_UPDATE_OWN,
            "allow update (title, metadata, source_uri) to editor where created_by = current_user",
        )],
        &[(Effect::Widens, ChangeKind::ColumnBecomesWritable)],
    );
    assert_eq!(d.changes[0].roles, ["editor"]);
    assert_eq!(d.changes[0].column.as_deref(), Some("source_uri"));
    let narrowed = diff(
        &rag(),
        &edited(&[(
            DOC_UPDATE_OWN,
            "allow update (title) to editor where created_by = current_user",
        )]),
    );
    assert_eq!(
        kinds(&narrowed),
        [(Effect::Narrows, ChangeKind::ColumnNoLongerWritable)]
    );
}
