//! The phased adoption migration generated for `examples/legacy/policies`: which files, what
//! each one may and may not contain, and the full text (insta snapshots, one per file).

#![allow(clippy::expect_used, clippy::unwrap_used)] // tests panic on broken fixtures

use std::path::Path;

use tenancy_core::dsl::{compile, compile_dir, SourceFile};
use tenancy_core::model::Model;
use tenancy_core::sql::{
    generate_migrations, no_transaction_statements, runs_outside_transaction, GeneratedFile, Target,
};

const ADOPTED: [&str; 5] = ["documents", "chunks", "queries", "responses", "assertions"];

fn legacy_model() -> Model {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/legacy/policies");
    let (model, diagnostics) = compile_dir(&dir).expect("legacy policies compile");
    assert_eq!(diagnostics.warning_count(), 0);
    model
}

fn file_name(file: &GeneratedFile) -> String {
    file.path
        .file_name()
        .unwrap()
        .to_string_lossy()
        .into_owned()
}

#[test]
fn the_legacy_policies_adopt_five_tables_into_the_default_tenant_and_project() {
    let model = legacy_model();
    let adoption = model.adoption.as_ref().expect("adoption");
    assert_eq!(adoption.tenant, "default");
    assert_eq!(adoption.project, "default");
    let adopted: Vec<(&str, &str)> = adoption
        .tables
        .iter()
        .map(|t| (t.table.as_str(), t.legacy_table.as_str()))
        .collect();
    assert_eq!(adopted, ADOPTED.map(|t| (t, t)).to_vec());
    assert!(model.adopted("chunks").is_some());
    assert!(model.adopted("embedding_models").is_none());
}

#[test]
fn a_model_with_adopted_tables_gets_the_phased_files_instead_of_create_table() {
    let files = generate_migrations(&legacy_model(), Target::Postgres);
    let names: Vec<String> = files.iter().map(file_name).collect();
    assert_eq!(
        names,
        [
            "0001_tenancy_core.sql",
            "0002_adopt_expand.sql",
            "0003_adopt_backfill.sql",
            "0004_adopt_validate.sql",
            "0005_adopt_contract_checks.sql",
            "0006_adopt_contract_validate_checks.sql",
            "0007_adopt_contract_indexes.sql",
            "0008_adopt_contract_keys.sql",
            "0009_adopt_contract_validate_keys.sql",
            "0010_adopt_contract_security.sql",
            "0011_tables.sql",
        ]
    );
    for file in &files {
        for table in ADOPTED {
            assert!(
                !file.contents.contains(&format!("CREATE TABLE {table} ")),
                "{}: creates the adopted table {table}",
                file_name(file)
            );
        }
    }
    // The table that adopts nothing is created after the adoption.
    let last = files.last().unwrap();
    assert!(last.contents.contains("CREATE TABLE embedding_models ("));
}

#[test]
fn only_the_backfill_and_the_concurrent_indexes_run_outside_a_transaction() {
    let files = generate_migrations(&legacy_model(), Target::Postgres);
    let outside: Vec<String> = files
        .iter()
        .filter(|f| runs_outside_transaction(&f.contents))
        .map(file_name)
        .collect();
    assert_eq!(
        outside,
        ["0003_adopt_backfill.sql", "0007_adopt_contract_indexes.sql"]
    );
    for file in files
        .iter()
        .filter(|f| runs_outside_transaction(&f.contents))
    {
        let statements = no_transaction_statements(&file.contents);
        assert!(!statements.is_empty());
        for statement in &statements {
            assert!(
                !statement.contains("$$") && statement.matches(';').count() == 1,
                "{}: not a simple statement: {statement}",
                file_name(file)
            );
            assert!(
                statement.starts_with("CALL ")
                    || statement.starts_with("VACUUM (ANALYZE) ")
                    || statement.starts_with("DROP INDEX CONCURRENTLY IF EXISTS ")
                    || statement.starts_with("CREATE UNIQUE INDEX CONCURRENTLY ")
                    || statement.starts_with("CREATE INDEX CONCURRENTLY "),
                "{statement}"
            );
        }
    }
    let backfill = &files[2];
    assert_eq!(
        no_transaction_statements(&backfill.contents),
        [
            "CALL tenancy.adoption_backfill(5000);",
            "VACUUM (ANALYZE) public.documents;",
            "VACUUM (ANALYZE) public.chunks;",
            "VACUUM (ANALYZE) public.queries;",
            "VACUUM (ANALYZE) public.responses;",
            "VACUUM (ANALYZE) public.assertions;",
        ]
    );
}

#[test]
fn the_contract_uses_not_valid_then_validate_and_leaves_no_scope_default() {
    let files = generate_migrations(&legacy_model(), Target::Postgres);
    let by_name = |name: &str| {
        &files
            .iter()
            .find(|f| file_name(f) == name)
            .expect(name)
            .contents
    };
    let checks = by_name("0005_adopt_contract_checks.sql");
    let validate_checks = by_name("0006_adopt_contract_validate_checks.sql");
    let keys = by_name("0008_adopt_contract_keys.sql");
    let validate_keys = by_name("0009_adopt_contract_validate_keys.sql");
    let security = by_name("0010_adopt_contract_security.sql");
    for table in ADOPTED {
        let check = format!("{table}_adopt_not_null");
        assert!(checks.contains(&format!(
            "ALTER TABLE public.{table} ADD CONSTRAINT {check}"
        )));
        assert!(validate_checks.contains(&format!(
            "ALTER TABLE public.{table} VALIDATE CONSTRAINT {check};"
        )));
        assert!(keys.contains(&format!(
            "ALTER TABLE public.{table} ADD CONSTRAINT {table}_pkey PRIMARY KEY USING INDEX {table}_pkey_adopt;"
        )));
        assert!(keys.contains(&format!(
            "ALTER TABLE public.{table}\n  ALTER COLUMN tenant_id DROP DEFAULT,\n  ALTER COLUMN project_id DROP DEFAULT,"
        )));
        assert!(keys.contains(&format!(
            "ALTER TABLE public.{table} ADD CONSTRAINT {table}_tenant_id_project_id_fkey FOREIGN KEY (tenant_id, project_id)\n    REFERENCES projects (tenant_id, id) ON DELETE CASCADE NOT VALID;"
        )));
        assert!(validate_keys.contains(&format!(
            "ALTER TABLE public.{table} VALIDATE CONSTRAINT {table}_tenant_id_project_id_fkey;"
        )));
        assert!(security.contains(&format!(
            "ALTER TABLE {table} ENABLE ROW LEVEL SECURITY;\nALTER TABLE {table} FORCE ROW LEVEL SECURITY;"
        )));
    }
    // Every foreign key is added NOT VALID (never validated under the exclusive lock).
    let added = keys.matches(" FOREIGN KEY (").count();
    assert_eq!(added, keys.matches(" NOT VALID;").count());
    let validated = validate_keys
        .lines()
        .filter(|l| l.contains("ALTER TABLE") && l.contains(" VALIDATE CONSTRAINT "))
        .count();
    assert_eq!(added, validated);
    // SET NOT NULL comes in its own statement before the check it relies on is dropped.
    let set_not_null = keys.find("ALTER COLUMN tenant_id SET NOT NULL").unwrap();
    let drop_check = keys
        .find("DROP CONSTRAINT documents_adopt_not_null")
        .unwrap();
    assert!(set_not_null < drop_check);
    // The transition defaults are set once (expand) and dropped (contract keys).
    let expand = by_name("0002_adopt_expand.sql");
    assert!(expand.contains("SET DEFAULT %L, ALTER COLUMN project_id SET DEFAULT %L"));
    assert!(!expand.contains("ADD COLUMN tenant_id uuid DEFAULT"));
}

#[test]
fn generated_adoption_files_match_the_snapshots() {
    for target in [Target::Postgres, Target::Citus] {
        for file in generate_migrations(&legacy_model(), target) {
            let name = file_name(&file);
            if name == "0001_tenancy_core.sql" {
                continue; // covered by the sql_migrations snapshots
            }
            let suffix = match target {
                Target::Postgres => "",
                Target::Citus => "_citus",
            };
            if target == Target::Citus && !name.contains("security") {
                continue; // only the policies differ between targets
            }
            insta::assert_snapshot!(
                format!("legacy_{}{suffix}", name.trim_end_matches(".sql")),
                file.contents
            );
        }
    }
}

#[test]
fn a_renamed_table_is_checked_under_its_existing_name_and_renamed_in_expand() {
    let source = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/legacy/policies/rag.tenancy"),
    )
    .unwrap()
    .replace(
        "scoped table queries adopts queries {",
        "scoped table queries adopts legacy_questions {",
    );
    let (model, diagnostics) = compile(&[SourceFile::new("rag.tenancy", source)]);
    assert!(!diagnostics.has_errors());
    let files = generate_migrations(&model.unwrap(), Target::Postgres);
    let expand = &files[1].contents;
    assert!(expand.contains("('legacy_questions', 'queries')"));
    assert!(expand.contains("ALTER TABLE public.legacy_questions RENAME TO queries;"));
    assert!(expand.contains("('queries', 'legacy_questions')"));
}
