//! The Python emitter on the RAG example (tenancy_core::python).

#![allow(clippy::expect_used, clippy::unwrap_used)] // tests panic on broken fixtures

use std::path::{Path, PathBuf};

use tenancy_core::model::Model;
use tenancy_core::output::{GeneratedFile, Staleness};
use tenancy_core::python::{generate_package, stale_files, write, PythonOptions, HEADER};

fn rag_model() -> Model {
    let dir = Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../examples/rag/policies"
    ));
    let sources = tenancy_core::dsl::read_dir(dir).expect("read policies");
    let (model, diagnostics) = tenancy_core::dsl::compile(&sources);
    assert_eq!(diagnostics.error_count(), 0);
    model.expect("model")
}

/// The RAG example's generated SQL migrations, as `tenancy generate` produces them.
fn rag_migrations(model: &Model) -> Vec<GeneratedFile> {
    let out = Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../examples/rag/generated"
    ));
    let existing = tenancy_core::output::ExistingOutput::read(out).expect("read generated/");
    tenancy_core::output::generate(
        model,
        tenancy_core::sql::Target::Postgres,
        &existing,
        tenancy_core::output::GenerateOptions::default(),
    )
    .expect("generate")
}

fn rag_package() -> Vec<GeneratedFile> {
    let model = rag_model();
    generate_package(&model, &rag_options(), &rag_migrations(&model)).unwrap()
}

fn rag_options() -> PythonOptions {
    PythonOptions {
        package: "rag_tenancy".to_owned(),
    }
}

fn file<'a>(files: &'a [GeneratedFile], path: &str) -> &'a str {
    files
        .iter()
        .find(|f| f.path == Path::new(path))
        .map(|f| f.contents.as_str())
        .unwrap_or_else(|| panic!("no {path}"))
}

/// The golden files: the committed `examples/rag/python` is what the emitter writes for the RAG
/// policies. It was read and checked by hand against `0001`/`0002` (every column with its type,
/// nullability and default; the composite primary, unique and foreign keys; `ON DELETE SET NULL
/// (chunk_id)`); the live test `models_match_the_migrated_database` (tests/python_live.rs)
/// compares the models with a migrated database. Regenerate with `tenancy generate --python`.
#[test]
fn rag_package_matches_the_committed_golden_files() {
    let files = rag_package();
    let dir = PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../examples/rag/python"
    ));
    let stale = stale_files(&dir, &rag_options(), &files).unwrap();
    assert!(
        stale.is_empty(),
        "examples/rag/python is stale: {stale:?}; run `tenancy generate --python python \
         --python-package rag_tenancy` in examples/rag"
    );
}

#[test]
fn output_is_deterministic_and_sorted() {
    let a = rag_package();
    let b = rag_package();
    assert_eq!(a, b);
    let paths: Vec<&PathBuf> = a.iter().map(|f| &f.path).collect();
    let mut sorted = paths.clone();
    sorted.sort();
    assert_eq!(paths, sorted);
    for f in &a {
        if f.path.extension().is_some_and(|e| e == "py" || e == "toml") {
            assert!(f.contents.starts_with(HEADER), "{}", f.path.display());
        }
    }
}

#[test]
fn models_carry_scope_columns_composite_keys_and_foreign_keys() {
    let files = rag_package();
    let models = file(&files, "rag_tenancy/models.py");
    // Scope columns first, composite primary key, the generated FK to projects and the declared
    // FK made composite with the scope columns.
    let chunk = models
        .split("\nclass Chunk(Base):")
        .nth(1)
        .unwrap()
        .split("\nclass ")
        .next()
        .unwrap();
    assert!(chunk.contains("sa.PrimaryKeyConstraint(\"tenant_id\", \"project_id\", \"id\")"));
    assert!(chunk.contains(
        "sa.UniqueConstraint(\"tenant_id\", \"project_id\", \"document_id\", \"ordinal\")"
    ));
    assert!(chunk.contains(
        "[\"tenant_id\", \"project_id\"],\n            [\"public.projects.tenant_id\", \"public.projects.id\"],\n            ondelete=\"CASCADE\""
    ));
    assert!(chunk.contains("[\"tenant_id\", \"project_id\", \"document_id\"],\n            [\"public.documents.tenant_id\", \"public.documents.project_id\", \"public.documents.id\"],\n            ondelete=\"CASCADE\""));
    assert!(chunk.contains(
        "embedding: Mapped[NDArray[np.float32] | None] = mapped_column(Vector(384), nullable=True)"
    ));
    assert!(chunk.find("tenant_id: Mapped").unwrap() < chunk.find("    id: Mapped").unwrap());
    // SET NULL names only the declared column, never a scope column.
    assert!(models.contains("ondelete=\"SET NULL (chunk_id)\""));
    // Server defaults as in SQL; `metadata` is reserved by SQLAlchemy.
    assert!(models.contains("    id: Mapped[uuid.UUID] = mapped_column(\n        sa.Uuid,\n        nullable=False,\n        server_default=sa.text(\"gen_random_uuid()\"),\n    )"));
    assert!(models.contains("    metadata_: Mapped[Any] = mapped_column(\n        \"metadata\",\n        JSONB,\n        nullable=False,\n        server_default=sa.text(\"'{}'\"),\n    )"));
    // The role enum lives in the helper schema and is created by the migrations.
    assert!(models.contains(
        "ENUM(\"viewer\", \"editor\", \"admin\", \"owner\", name=\"project_role\", schema=\"tenancy\", create_type=False)"
    ));
    // The global table has no scope column.
    let global = models
        .split("\nclass EmbeddingModel(Base):")
        .nth(1)
        .unwrap();
    assert!(!global.contains("tenant_id"));
    assert!(global.contains("sa.PrimaryKeyConstraint(\"name\")"));
}

#[test]
fn repositories_type_each_command_with_its_rule() {
    let files = rag_package();
    let repositories = file(&files, "rag_tenancy/repositories.py");
    let documents = repositories
        .split("\nclass Documents:")
        .nth(1)
        .unwrap()
        .split("\nclass ")
        .next()
        .unwrap();
    assert!(documents.contains("def get(tx: ScopedSession[ReadScope[Viewer]], id: uuid.UUID)"));
    assert!(
        documents.contains("def insert(tx: ScopedSession[ProjectScope[Editor]], new: NewDocument)")
    );
    assert!(documents.contains(
        "def update(\n        tx: ScopedSession[ProjectScope[Editor]],\n        id: uuid.UUID,\n        changes: DocumentChanges,\n    ) -> Document | None:"
    ));
    assert!(documents.contains("def delete(tx: ScopedSession[ProjectScope[Admin]], id: uuid.UUID)"));
    // queries: insert to viewer, no update rule -> no update method.
    let queries = repositories.split("\nclass Queries:").nth(1).unwrap();
    let queries = queries.split("\nclass ").next().unwrap();
    assert!(queries.contains("def insert(tx: ScopedSession[ProjectScope[Viewer]]"));
    assert!(!queries.contains("def update("));
    assert!(!repositories.contains("class QueryChanges"));
    // Vector search on chunks.embedding (cosine).
    assert!(repositories.contains("def nearest_by_embedding("));
    assert!(repositories.contains(".op(\"<=>\", return_type=sa.Float())"));
    // Only scoped tables have repositories.
    assert!(!repositories.contains("class Tenants:"));
    assert!(!repositories.contains("class EmbeddingModels:"));
}

#[test]
fn roles_subclass_the_role_below() {
    let files = rag_package();
    let roles = file(&files, "rag_tenancy/roles.py");
    for (class, parent) in [
        ("Viewer", "Role"),
        ("Editor", "Viewer"),
        ("Admin", "Editor"),
        ("Owner", "Admin"),
    ] {
        assert!(
            roles.contains(&format!("class {class}({parent}):")),
            "{class}"
        );
    }
    assert!(roles.contains("NAME = \"owner\"\n    RANK = 3"));
}

#[test]
fn a_bad_package_name_is_refused() {
    let model = rag_model();
    for bad in ["Rag", "rag-tenancy", "1rag", "class", ""] {
        let options = PythonOptions {
            package: bad.to_owned(),
        };
        assert!(generate_package(&model, &options, &[]).is_err(), "{bad}");
    }
}

#[test]
fn stale_files_names_missing_different_and_extra_files() {
    let files = rag_package();
    let dir = std::env::temp_dir().join(format!("tenancy-python-stale-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    assert_eq!(write(&dir, &rag_options(), &files).unwrap(), files.len());
    assert!(stale_files(&dir, &rag_options(), &files)
        .unwrap()
        .is_empty());
    std::fs::write(dir.join("rag_tenancy/models.py"), "# edited\n").unwrap();
    std::fs::write(dir.join("rag_tenancy/extra.py"), "").unwrap();
    std::fs::write(dir.join("rag_tenancy/migrations/versions/m9999_x.py"), "").unwrap();
    std::fs::remove_file(dir.join("rag_tenancy/roles.py")).unwrap();
    let stale: Vec<(String, Staleness)> = stale_files(&dir, &rag_options(), &files)
        .unwrap()
        .into_iter()
        .map(|s| (s.path.display().to_string(), s.staleness))
        .collect();
    assert_eq!(
        stale,
        [
            ("rag_tenancy/extra.py".to_owned(), Staleness::Extra),
            (
                "rag_tenancy/migrations/versions/m9999_x.py".to_owned(),
                Staleness::Extra
            ),
            ("rag_tenancy/models.py".to_owned(), Staleness::Different),
            ("rag_tenancy/roles.py".to_owned(), Staleness::Missing),
        ]
    );
    assert_eq!(write(&dir, &rag_options(), &files).unwrap(), 4);
    assert!(stale_files(&dir, &rag_options(), &files)
        .unwrap()
        .is_empty());
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn every_migration_is_an_alembic_revision_holding_it_byte_for_byte() {
    let model = rag_model();
    let migrations = rag_migrations(&model);
    let files = rag_package();
    let sql: Vec<&GeneratedFile> = migrations
        .iter()
        .filter(|f| f.path.extension().is_some_and(|e| e == "sql"))
        .collect();
    assert!(sql.len() >= 4);
    let mut down = "None".to_owned();
    for migration in sql {
        let stem = migration.path.file_stem().unwrap().to_string_lossy();
        let revision = file(
            &files,
            &format!("rag_tenancy/migrations/versions/m{stem}.py"),
        );
        let number = &stem[..4];
        assert!(revision.contains(&format!("revision = \"{number}\"\n")));
        assert!(revision.contains(&format!("down_revision: str | None = {down}\n")));
        assert!(revision.contains(&format!("SQL = r\"\"\"{}\"\"\"", migration.contents)));
        assert!(revision.contains(&tenancy_core::snapshot::sha256_hex(
            migration.contents.as_bytes()
        )));
        down = format!("\"{number}\"");
    }
    assert!(file(&files, "alembic.ini").contains("script_location = rag_tenancy:migrations"));
}

/// The RAG policies with `python_package = <value>` added to the `tenancy` block.
fn rag_with_package(value: &str) -> (Option<Model>, tenancy_core::dsl::Diagnostics) {
    let dir = Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../examples/rag/policies"
    ));
    let mut sources = tenancy_core::dsl::read_dir(dir).expect("read policies");
    let rag = sources
        .iter_mut()
        .find(|s| s.text.contains("tenancy {"))
        .expect("the tenancy block");
    rag.text = rag.text.replacen(
        "tenancy {",
        &format!("tenancy {{\n    python_package = \"{value}\""),
        1,
    );
    tenancy_core::dsl::compile(&sources)
}

#[test]
fn the_python_package_setting_names_the_package_and_is_not_a_database_setting() {
    let (model, diagnostics) = rag_with_package("rag_db");
    assert_eq!(diagnostics.error_count(), 0);
    let model = model.expect("model");
    assert_eq!(model.settings.python_package.as_deref(), Some("rag_db"));
    // Not in the snapshot, and no migration: the database is the same.
    let snapshot = tenancy_core::snapshot::Snapshot::new(
        &model,
        tenancy_core::sql::Target::Postgres,
        Vec::new(),
    )
    .to_json();
    assert!(!snapshot.contains("python_package"), "{snapshot}");
    assert!(!snapshot.contains("rag_db"), "{snapshot}");
    let plain = rag_model();
    let migrations = tenancy_core::sql::diff::incremental_migrations(
        &plain,
        &model,
        tenancy_core::sql::Target::Postgres,
        tenancy_core::sql::diff::DiffOptions::default(),
    )
    .expect("no settings change");
    assert!(migrations.is_empty());
}

#[test]
fn a_bad_python_package_setting_is_a_diagnostic() {
    for bad in ["Rag-DB", "class", "9lives", ""] {
        let (model, diagnostics) = rag_with_package(bad);
        assert!(model.is_none(), "{bad:?} accepted");
        let messages: Vec<&str> = diagnostics.iter().map(|d| d.message()).collect();
        assert_eq!(
            messages,
            [format!("invalid Python package name `{bad}`")],
            "{bad:?}"
        );
        let help = diagnostics.iter().next().expect("one").help().join("");
        assert!(help.starts_with("write `\""), "{help}");
    }
}

/// `list` sends the Rust repositories' three statements (rust/statements.rs): the first page; a
/// one-project scope with its cursor there, the project an equality and the key a range; else
/// the union of the cursor's project and the later projects. Never the row comparison that a
/// btree scan positions by the project only (the live proof: tests/python/test_keyset.py).
#[test]
fn list_seeks_like_the_rust_list() {
    let files = rag_package();
    let repositories = file(&files, "rag_tenancy/repositories.py");
    assert!(repositories.contains("from sqlalchemy.orm import aliased\n"));
    assert!(repositories.contains("def _read_columns(entity: type[Any]) -> list[Any]:"));
    for class in ["\nclass Documents:", "\nclass AsyncDocuments:"] {
        let documents = repositories
            .split(class)
            .nth(1)
            .unwrap()
            .split("\nclass ")
            .next()
            .unwrap();
        let list = documents.split("def list(").nth(1).unwrap();
        let list = list.split("def cursor(").next().unwrap();
        assert!(!list.contains("sa.tuple_("), "{list}");
        assert!(list.contains(
            "        if after is None:\n            _statement = _statement.order_by(Document.project_id, Document.id)\n        elif _scope.project_ids == [after.project_id]:\n"
        ), "{list}");
        assert_eq!(
            list.matches("                Document.project_id == after.project_id,\n                Document.id > after.id,\n").count(),
            1,
            "{list}"
        );
        assert!(list.contains("_branch = _statement.with_only_columns(*_read_columns(Document))"));
        assert!(list.contains("_branch.where(Document.project_id > after.project_id)"));
        assert!(list.contains("                    Document.project_id == after.project_id,\n                    Document.id > after.id,\n"));
        assert!(list.contains("_page = aliased(Document, _union)"));
        assert!(list.contains("_statement = sa.select(_page).order_by(_page.project_id, _page.id)"));
    }
}

/// A key of several columns: within the cursor's project the key is one row comparison after
/// the project equality (`(document_id, ordinal) > (..)`, the Rust in-project form).
#[test]
fn a_composite_key_seeks_with_a_row_comparison_after_the_project() {
    let dir = Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../examples/rag/policies"
    ));
    let mut sources = tenancy_core::dsl::read_dir(dir).expect("read policies");
    let rag = sources
        .iter_mut()
        .find(|s| s.text.contains("scoped table assertions {"))
        .expect("the assertions table");
    rag.text.push_str(
        "\nscoped table sections {\n    document_id uuid\n    ordinal integer\n    body text\n\n    \
         primary key (document_id, ordinal)\n\n    allow select to viewer\n}\n",
    );
    let (model, diagnostics) = tenancy_core::dsl::compile(&sources);
    assert_eq!(diagnostics.error_count(), 0, "{diagnostics:?}");
    let model = model.expect("model");
    let files = generate_package(&model, &rag_options(), &rag_migrations(&model)).unwrap();
    let repositories = file(&files, "rag_tenancy/repositories.py");
    let sections = repositories
        .split("\nclass Sections:")
        .nth(1)
        .unwrap()
        .split("\nclass ")
        .next()
        .unwrap();
    let range =
        "sa.tuple_(Section.document_id, Section.ordinal) > (after.document_id, after.ordinal)";
    assert_eq!(sections.matches(range).count(), 2, "{sections}");
    assert!(sections.contains("elif _scope.project_ids == [after.project_id]:"));
    assert!(sections.contains("_branch.where(Section.project_id > after.project_id)"));
    assert!(
        sections.contains(".order_by(Section.project_id, Section.document_id, Section.ordinal)")
    );
}
