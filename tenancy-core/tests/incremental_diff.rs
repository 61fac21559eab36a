//! Incremental migrations: the SQL of each kind of change (insta snapshots), the changes the
//! generator refuses, and how `output::generate` treats history and the model snapshot.

#![allow(clippy::expect_used, clippy::unwrap_used)]

#[path = "incremental_cases.rs"]
mod incremental_cases;

use std::path::Path;

use incremental_cases::{base_policy, cases, model_of, replace_once};
use tenancy_core::output::{
    generate, generate_all, ExistingOutput, GenerateError, GenerateOptions, GeneratedFile,
};
use tenancy_core::snapshot::{Snapshot, SNAPSHOT_FILE};
use tenancy_core::sql::diff::{incremental_migrations, DiffError, DiffOptions};
use tenancy_core::sql::{generate_migrations, Target};

const ALLOW_DATA_LOSS: DiffOptions = DiffOptions {
    allow_data_loss: true,
};

fn diff(old: &str, new: &str, options: DiffOptions) -> Result<Vec<String>, DiffError> {
    incremental_migrations(&model_of(old), &model_of(new), Target::Postgres, options).map(|ms| {
        ms.into_iter()
            .map(|m| format!("==> {} <==\n{}", m.slug, m.contents))
            .collect()
    })
}

#[test]
fn each_kind_of_change_produces_the_expected_migration() {
    let base = base_policy();
    for case in cases() {
        let edited = (case.edit)(&base);
        let files = diff(&base, &edited, ALLOW_DATA_LOSS).expect(case.name);
        assert_eq!(files.len(), case.files, "{}: {files:#?}", case.name);
        insta::assert_snapshot!(case.name, files.join("\n"));
    }
}

#[test]
fn an_unchanged_model_needs_no_migration() {
    let base = base_policy();
    assert!(diff(&base, &base, DiffOptions::default())
        .unwrap()
        .is_empty());
    // Documentation is not a database object.
    let documented = replace_once(
        &base,
        "/// A source document ingested into a project.",
        "/// A source document ingested into a project (PDF, HTML, text).",
    );
    assert!(diff(&base, &documented, DiffOptions::default())
        .unwrap()
        .is_empty());
}

#[test]
fn a_changed_rule_replaces_only_its_policy_and_keeps_the_grants() {
    let base = base_policy();
    let case = cases()
        .into_iter()
        .find(|c| c.name == "changed_min_role")
        .unwrap();
    let sql = diff(&base, &(case.edit)(&base), DiffOptions::default())
        .unwrap()
        .join("");
    assert!(
        sql.contains("DROP POLICY documents_delete ON documents;"),
        "{sql}"
    );
    assert!(
        sql.contains("CREATE POLICY documents_delete ON documents"),
        "{sql}"
    );
    assert!(sql.contains("tenancy.project_ids('owner')"), "{sql}");
    assert!(!sql.contains("GRANT"), "grants did not change: {sql}");
    assert_eq!(sql.matches("CREATE POLICY").count(), 1, "{sql}");
}

#[test]
fn a_new_column_is_added_to_the_update_grant() {
    let base = base_policy();
    let case = cases()
        .into_iter()
        .find(|c| c.name == "new_nullable_column")
        .unwrap();
    let sql = diff(&base, &(case.edit)(&base), DiffOptions::default())
        .unwrap()
        .join("");
    assert!(
        sql.contains("ALTER TABLE documents ADD COLUMN summary text;"),
        "{sql}"
    );
    let grant = sql
        .lines()
        .find(|l| l.starts_with("GRANT UPDATE ("))
        .expect("the UPDATE grant is refreshed");
    assert!(grant.contains("summary"), "{grant}");
    // The grant block revokes first, so the table ends exactly as a fresh database has it.
    assert!(sql.contains("REVOKE ALL ON TABLE documents FROM tenancy_app;"));
}

#[test]
fn a_new_table_is_created_exactly_as_in_a_fresh_database() {
    let base = base_policy();
    let case = cases().into_iter().find(|c| c.name == "new_table").unwrap();
    let edited = (case.edit)(&base);
    let sql = diff(&base, &edited, DiffOptions::default())
        .unwrap()
        .join("");
    let fresh = generate_migrations(&model_of(&edited), Target::Postgres)
        .into_iter()
        .map(|f| f.contents)
        .collect::<String>();
    let start = fresh.find("CREATE TABLE feedback (").unwrap();
    let end = start
        + fresh[start..]
            .find("\n-- ----")
            .unwrap_or(fresh.len() - start);
    assert!(sql.contains(&fresh[start..end]), "{sql}");
}

#[test]
fn a_new_role_goes_into_its_own_migration_before_the_rules_that_use_it() {
    let base = base_policy();
    let case = cases()
        .into_iter()
        .find(|c| c.name == "new_role_used_by_a_rule")
        .unwrap();
    let migrations = incremental_migrations(
        &model_of(&base),
        &model_of(&(case.edit)(&base)),
        Target::Postgres,
        DiffOptions::default(),
    )
    .unwrap();
    assert_eq!(migrations.len(), 2);
    assert_eq!(migrations[0].slug, "add_role_reviewer");
    assert!(migrations[0]
        .contents
        .contains("ALTER TYPE tenancy.project_role ADD VALUE 'reviewer' BEFORE 'admin';"));
    assert!(!migrations[0].contents.contains("POLICY"));
    assert!(migrations[1]
        .contents
        .contains("tenancy.project_ids('reviewer')"));
}

fn refused(edit: impl Fn(&str) -> String, options: DiffOptions) -> DiffError {
    let base = base_policy();
    diff(&base, &edit(&base), options).expect_err("the change must be refused")
}

#[test]
fn unsafe_changes_are_refused_with_a_clear_sentence() {
    let not_null = refused(
        |t| {
            replace_once(
                t,
                "    source_uri text?\n",
                "    source_uri text?\n    owner_email text\n",
            )
        },
        DiffOptions::default(),
    );
    assert!(matches!(not_null, DiffError::NotNullWithoutDefault { .. }));
    let message = not_null.to_string();
    assert!(message.contains("documents.owner_email"), "{message}");
    assert!(
        message.contains("default") && message.contains("owner_email text?"),
        "{message}"
    );

    for case in cases().into_iter().filter(|c| c.data_loss) {
        let error = refused(case.edit, DiffOptions::default());
        assert!(
            matches!(error, DiffError::DataLoss { .. }),
            "{}: {error}",
            case.name
        );
        assert!(error.to_string().contains("--allow-data-loss"));
    }

    let type_change = refused(
        |t| {
            replace_once(
                t,
                "    top_k integer default 10\n",
                "    top_k bigint default 10\n",
            )
        },
        DiffOptions::default(),
    );
    assert_eq!(
        type_change.to_string(),
        "column `queries.top_k` changed type from integer to bigint, which the generator does \
         not convert; add a new column instead"
    );

    let removed_role = refused(
        |t| {
            replace_once(
                t,
                "roles = viewer < editor < admin < owner",
                "roles = viewer < editor < owner",
            )
            .replace("to admin", "to owner")
        },
        DiffOptions::default(),
    );
    assert!(matches!(removed_role, DiffError::RoleRemoved { ref role } if role == "admin"));

    let reordered = refused(
        |t| {
            replace_once(
                t,
                "roles = viewer < editor < admin < owner",
                "roles = editor < viewer < admin < owner",
            )
        },
        DiffOptions::default(),
    );
    assert!(matches!(reordered, DiffError::RolesReordered { .. }));

    let settings = refused(
        |t| replace_once(t, "app_role = \"tenancy_app\"", "app_role = \"rag_app\""),
        DiffOptions::default(),
    );
    assert!(matches!(settings, DiffError::SettingsChanged));

    let kind = refused(
        |t| {
            replace_once(
                t,
                "global table embedding_models {",
                "scoped table embedding_models {",
            )
            .replace(
                "    primary key (name)\n    allow select\n",
                "    primary key (name)\n    allow select to viewer\n",
            )
        },
        DiffOptions::default(),
    );
    assert!(matches!(kind, DiffError::TableKindChanged { .. }), "{kind}");

    let primary_key = refused(
        |t| {
            replace_once(
                t,
                "    primary key (name)\n",
                "    primary key (name, dimensions)\n",
            )
        },
        DiffOptions::default(),
    );
    assert!(matches!(primary_key, DiffError::PrimaryKeyChanged { .. }));
}

// ---- output::generate: history is append-only -------------------------------------------

/// What `ExistingOutput::read` would return for a directory holding `files`.
fn existing_from(files: &[GeneratedFile]) -> ExistingOutput {
    ExistingOutput {
        snapshot: files
            .iter()
            .find(|f| f.path.as_path() == Path::new(SNAPSHOT_FILE))
            .map(|f| f.contents.clone()),
        migrations: files
            .iter()
            .filter(|f| f.path.starts_with("migrations"))
            .cloned()
            .collect(),
    }
}

fn paths(files: &[GeneratedFile]) -> Vec<String> {
    files
        .iter()
        .filter(|f| !f.path.starts_with("src") && f.path.as_os_str() != "ACCESS.md")
        .map(|f| f.path.display().to_string())
        .collect()
}

fn contents<'a>(files: &'a [GeneratedFile], path: &str) -> &'a str {
    &files
        .iter()
        .find(|f| f.path.as_path() == Path::new(path))
        .unwrap_or_else(|| panic!("no {path}"))
        .contents
}

#[test]
fn without_a_snapshot_the_baseline_is_generated_and_recorded() {
    let model = model_of(&base_policy());
    let files = generate(
        &model,
        Target::Postgres,
        &ExistingOutput::default(),
        GenerateOptions::default(),
    )
    .unwrap();
    let baseline = generate_all(&model, Target::Postgres).unwrap();
    // Exactly today's output, plus the snapshot.
    for file in &baseline {
        assert_eq!(
            contents(&files, &file.path.display().to_string()),
            file.contents
        );
    }
    // ... and ACCESS.md (tenancy_core::access).
    assert_eq!(files.len(), baseline.len() + 2);
    assert!(contents(&files, "ACCESS.md").starts_with("<!-- Generated by `tenancy generate`"));
    let snapshot = Snapshot::from_json(contents(&files, SNAPSHOT_FILE)).unwrap();
    assert_eq!(snapshot.model, model);
    assert_eq!(snapshot.target, "postgres");
    let recorded: Vec<&str> = snapshot
        .migrations
        .iter()
        .map(|m| m.file.as_str())
        .collect();
    assert_eq!(
        recorded,
        [
            "migrations/0001_tenancy_core.sql",
            "migrations/0002_tables.sql"
        ]
    );
}

#[test]
fn a_changed_model_appends_a_numbered_migration_and_keeps_history() {
    let base = base_policy();
    let first = generate(
        &model_of(&base),
        Target::Postgres,
        &ExistingOutput::default(),
        GenerateOptions::default(),
    )
    .unwrap();

    // Same model: byte-identical output, snapshot included.
    let again = generate(
        &model_of(&base),
        Target::Postgres,
        &existing_from(&first),
        GenerateOptions::default(),
    )
    .unwrap();
    assert_eq!(again, first);

    let case = cases()
        .into_iter()
        .find(|c| c.name == "new_nullable_column")
        .unwrap();
    let edited = (case.edit)(&base);
    let second = generate(
        &model_of(&edited),
        Target::Postgres,
        &existing_from(&first),
        GenerateOptions::default(),
    )
    .unwrap();
    assert_eq!(
        paths(&second),
        [
            "migrations/0001_tenancy_core.sql",
            "migrations/0002_tables.sql",
            "migrations/0003_add_documents_summary_and_2_more.sql",
            SNAPSHOT_FILE,
        ]
    );
    for old in [
        "migrations/0001_tenancy_core.sql",
        "migrations/0002_tables.sql",
    ] {
        assert_eq!(
            contents(&second, old),
            contents(&first, old),
            "{old} is history"
        );
    }
    let snapshot = Snapshot::from_json(contents(&second, SNAPSHOT_FILE)).unwrap();
    assert_eq!(snapshot.model, model_of(&edited));
    assert_eq!(snapshot.migrations.len(), 3);
    // The new migration's header says what access it adds (issue 21): a new column, neutral.
    let header: Vec<&str> = contents(
        &second,
        "migrations/0003_add_documents_summary_and_2_more.sql",
    )
    .split("\n\n")
    .next()
    .unwrap()
    .lines()
    .collect();
    assert!(
        header.contains(&"-- Access (what `tenancy diff` reports against the previous model):"),
        "{header:?}"
    );
    assert!(
        header
            .iter()
            .any(|l| l.starts_with("--   neutral: new column `summary` of `documents`")),
        "{header:?}"
    );

    // A role added on top: two more files, numbered after 0003.
    let roles = cases()
        .into_iter()
        .find(|c| c.name == "new_role_used_by_a_rule")
        .unwrap();
    let third = generate(
        &model_of(&(roles.edit)(&edited)),
        Target::Postgres,
        &existing_from(&second),
        GenerateOptions::default(),
    )
    .unwrap();
    let names = paths(&third);
    assert_eq!(names[3], "migrations/0004_add_role_reviewer.sql");
    assert!(names[4].starts_with("migrations/0005_"), "{names:?}");

    // A documentation-only change writes no migration and keeps the snapshot's bytes.
    let documented = replace_once(
        &edited,
        "/// A source document ingested into a project.",
        "/// A source document ingested into a project, any format.",
    );
    let docs_only = generate(
        &model_of(&documented),
        Target::Postgres,
        &existing_from(&second),
        GenerateOptions::default(),
    )
    .unwrap();
    assert_eq!(paths(&docs_only), paths(&second));
    assert_eq!(
        contents(&docs_only, SNAPSHOT_FILE),
        contents(&second, SNAPSHOT_FILE)
    );
}

#[test]
fn edited_or_deleted_history_and_another_target_are_refused() {
    let model = model_of(&base_policy());
    let first = generate(
        &model,
        Target::Postgres,
        &ExistingOutput::default(),
        GenerateOptions::default(),
    )
    .unwrap();

    let mut edited = existing_from(&first);
    edited.migrations[1].contents.push_str("\n-- hand fix\n");
    let error = generate(
        &model,
        Target::Postgres,
        &edited,
        GenerateOptions::default(),
    )
    .unwrap_err();
    assert!(
        matches!(error, GenerateError::HistoryChanged { how: "edited", .. }),
        "{error}"
    );
    assert!(
        error
            .to_string()
            .starts_with("migrations/0002_tables.sql was edited"),
        "{error}"
    );

    let mut deleted = existing_from(&first);
    deleted.migrations.remove(0);
    let error = generate(
        &model,
        Target::Postgres,
        &deleted,
        GenerateOptions::default(),
    )
    .unwrap_err();
    assert!(
        matches!(error, GenerateError::HistoryChanged { how: "deleted", .. }),
        "{error}"
    );

    let error = generate(
        &model,
        Target::Citus,
        &existing_from(&first),
        GenerateOptions::default(),
    )
    .unwrap_err();
    assert!(
        matches!(error, GenerateError::TargetChanged { .. }),
        "{error}"
    );

    let mut garbage = existing_from(&first);
    garbage.snapshot = Some("{ not json".to_owned());
    let error = generate(
        &model,
        Target::Postgres,
        &garbage,
        GenerateOptions::default(),
    )
    .unwrap_err();
    assert!(
        error
            .to_string()
            .contains("model.snapshot.json is not a valid model snapshot"),
        "{error}"
    );
}

#[test]
fn data_loss_needs_the_option_at_the_output_level_too() {
    let base = base_policy();
    let first = generate(
        &model_of(&base),
        Target::Postgres,
        &ExistingOutput::default(),
        GenerateOptions::default(),
    )
    .unwrap();
    let case = cases()
        .into_iter()
        .find(|c| c.name == "dropped_table")
        .unwrap();
    let dropped = model_of(&(case.edit)(&base));
    let error = generate(
        &dropped,
        Target::Postgres,
        &existing_from(&first),
        GenerateOptions::default(),
    )
    .unwrap_err();
    assert!(
        matches!(error, GenerateError::Diff(DiffError::DataLoss { .. })),
        "{error}"
    );
    let files = generate(
        &dropped,
        Target::Postgres,
        &existing_from(&first),
        GenerateOptions {
            allow_data_loss: true,
        },
    )
    .unwrap();
    assert!(
        contents(&files, "migrations/0003_drop_embedding_models.sql")
            .contains("DROP TABLE embedding_models;")
    );
}

#[test]
fn a_changed_emitter_is_reported_as_baseline_drift_and_history_is_kept() {
    let model = model_of(&base_policy());
    let first = generate(
        &model,
        Target::Postgres,
        &ExistingOutput::default(),
        GenerateOptions::default(),
    )
    .unwrap();
    let existing = existing_from(&first);
    assert!(
        tenancy_core::output::baseline_drift(&existing, Target::Postgres)
            .unwrap()
            .is_empty()
    );

    // Simulate files written by an older generator: same model, other SQL, checksums
    // recorded for that SQL.
    let mut older = existing.clone();
    older.migrations[0].contents = "-- older 0001\n".to_owned();
    let mut snapshot = Snapshot::from_json(older.snapshot.as_deref().unwrap()).unwrap();
    snapshot.migrations[0].sha256 =
        tenancy_core::snapshot::sha256_hex(older.migrations[0].contents.as_bytes());
    older.snapshot = Some(snapshot.to_json());
    assert_eq!(
        tenancy_core::output::baseline_drift(&older, Target::Postgres).unwrap(),
        [Path::new("migrations/0001_tenancy_core.sql")]
    );
    let files = generate(&model, Target::Postgres, &older, GenerateOptions::default()).unwrap();
    assert_eq!(
        contents(&files, "migrations/0001_tenancy_core.sql"),
        "-- older 0001\n"
    );
}
