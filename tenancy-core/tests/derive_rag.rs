//! The RAG model declared as Rust structs (examples/derive/rag_models.rs) plus the core part
//! of the policies (examples/derive/policies/core.tenancy) is the same model, and generates
//! the same SQL and repositories, as policies/rag.tenancy.

#![allow(clippy::expect_used, clippy::unwrap_used)] // test helpers panic on broken fixtures

use std::path::{Path, PathBuf};

use tenancy_core::derive;
use tenancy_core::dsl::{self, SourceFile};
use tenancy_core::model::Model;
use tenancy_core::rust;
use tenancy_core::sql::{self, Target};

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn compile(sources: &[SourceFile]) -> Model {
    let (model, diagnostics) = dsl::compile(sources);
    assert_eq!(
        diagnostics.error_count() + diagnostics.warning_count(),
        0,
        "{}",
        diagnostics.render(sources, false)
    );
    model.expect("no errors, so a model")
}

fn dsl_model() -> Model {
    let dir = workspace().join("examples/rag/policies");
    compile(&dsl::read_dir(&dir).expect("policies/ is readable"))
}

fn rag_models_source() -> SourceFile {
    let path = workspace().join("examples/derive/rag_models.rs");
    let text = std::fs::read_to_string(&path).expect("rag_models.rs is readable");
    SourceFile::new("examples/derive/rag_models.rs", text)
}

fn derived_model() -> Model {
    let policies = dsl::read_dir(&workspace().join("examples/derive/policies"))
        .expect("examples/derive/policies is readable");
    assert_eq!(policies.len(), 1, "only core.tenancy");
    let (model, diagnostics, sources) =
        derive::compile_with_rust(&policies, &[rag_models_source()]).expect("valid structs");
    assert_eq!(
        diagnostics.error_count() + diagnostics.warning_count(),
        0,
        "{}",
        diagnostics.render(&sources, false)
    );
    model.expect("no errors, so a model")
}

#[test]
fn structs_declare_the_same_model_as_the_dsl() {
    let from_structs = derived_model();
    let from_dsl = dsl_model();
    let names = |m: &Model| m.tables.iter().map(|t| t.name.clone()).collect::<Vec<_>>();
    assert_eq!(names(&from_structs), names(&from_dsl));
    for (a, b) in from_structs.tables.iter().zip(&from_dsl.tables) {
        assert_eq!(a, b, "table `{}` differs", b.name);
    }
    assert_eq!(from_structs, from_dsl);
}

#[test]
fn structs_generate_byte_identical_sql_for_both_targets() {
    let from_structs = derived_model();
    let from_dsl = dsl_model();
    for target in [Target::Postgres, Target::Citus] {
        let a = sql::generate_migrations(&from_structs, target);
        let b = sql::generate_migrations(&from_dsl, target);
        assert_eq!(a.len(), b.len());
        for (a, b) in a.iter().zip(&b) {
            assert_eq!(a.path, b.path);
            assert!(
                a.contents == b.contents,
                "{} differs for {target:?}",
                a.path.display()
            );
        }
    }
}

#[test]
fn structs_generate_the_same_repository_crate() {
    let a = rust::generate_repositories(&derived_model()).expect("valid Rust");
    let b = rust::generate_repositories(&dsl_model()).expect("valid Rust");
    assert_eq!(a, b);
}

#[test]
fn every_derived_table_equals_its_dsl_table_before_merging() {
    // derive_table alone (what the macro sees) already builds the DSL's table; only a global
    // table's role-less select rule is completed (with the lowest role) by the merge.
    let from_dsl = dsl_model();
    let tables = derive::tables_in_source(&rag_models_source()).expect("valid structs");
    assert_eq!(tables.len(), 6);
    for derived in tables {
        let expected = from_dsl
            .table(&derived.table.name)
            .expect("table in the DSL");
        let mut table = derived.table.clone();
        for rule in &mut table.rules {
            if rule.min_role.is_empty() {
                rule.min_role = from_dsl.roles[0].clone();
            }
        }
        assert_eq!(&table, expected);
    }
}

/// The structs as `.tenancy` text (`table_to_dsl`, the `TENANCY_DSL` export), one
/// declaration per struct.
fn exported_texts() -> Vec<String> {
    derive::tables_in_source(&rag_models_source())
        .expect("valid structs")
        .iter()
        .map(|derived| derive::table_to_dsl(&derived.table))
        .collect()
}

#[test]
fn derived_policy_text_snapshot() {
    let texts = exported_texts();
    assert_eq!(texts.len(), 6);
    let text: String = texts
        .iter()
        .map(|t| format!("// ---- examples/derive/rag_models.rs\n{t}"))
        .collect::<String>()
        .lines()
        .collect::<Vec<_>>()
        .join("\n");
    insta::assert_snapshot!(text);
}

#[test]
fn the_exported_text_compiles_back_to_the_same_model() {
    // Exported only (nothing compiles it on the way to a model), but it must stay faithful.
    let mut sources = dsl::read_dir(&workspace().join("examples/derive/policies")).unwrap();
    for (i, text) in exported_texts().into_iter().enumerate() {
        sources.push(SourceFile::new(format!("exported{i}.tenancy"), text));
    }
    assert_eq!(compile(&sources), derived_model());
}

#[test]
fn cross_table_problems_are_reported_by_the_dsl_validator() {
    let text = r#"
        #[derive(TenantScoped)]
        #[tenancy(table = "notes", scoped, primary_key(id), select = Viewr)]
        pub struct Note {
            pub id: Uuid,
            #[tenancy(references = "documnets(id)")]
            pub document_id: Uuid,
        }
    "#;
    let rust = SourceFile::new("src/notes.rs", text);
    let policies = dsl::read_dir(&workspace().join("examples/derive/policies")).unwrap();
    let (model, diagnostics, sources) = derive::compile_with_rust(&policies, &[rust]).unwrap();
    assert!(model.is_none());
    let rendered = diagnostics.render(&sources, false);
    assert!(rendered.contains("unknown role `viewr`"), "{rendered}");
    assert!(rendered.contains("documnets"), "{rendered}");
    // The diagnostics point at the Rust tokens: the role path and the reference literal.
    assert!(rendered.contains("--> src/notes.rs:3:70"), "{rendered}");
    assert!(
        rendered.contains("select = Viewr)]") && rendered.contains("^^^^^"),
        "{rendered}"
    );
    assert!(rendered.contains("--> src/notes.rs:6:36"), "{rendered}");
}

#[test]
fn attribute_misuse_in_source_files_names_file_line_and_struct() {
    let text = "use x::TenantScoped;\n\nmod inner {\n    #[derive(Debug, TenantScoped)]\n    #[tenancy(tabel = \"notes\", scoped, primary_key(id))]\n    pub struct Note {\n        pub id: Uuid,\n    }\n}\n\n#[derive(Debug)]\npub struct Ignored { pub x: Vec<String> }\n";
    let error = derive::tables_in_source(&SourceFile::new("src/notes.rs", text)).unwrap_err();
    assert_eq!(error.problems.len(), 1, "{error}");
    assert!(
        error.problems[0]
            .starts_with("src/notes.rs:6: struct `Note`: unknown struct attribute `tabel`"),
        "{error}"
    );
    assert!(
        error.problems[0].contains("did you mean `table`?"),
        "{error}"
    );
}

#[test]
fn the_expansion_is_valid_rust_holding_the_generated_repository() {
    let input: syn::DeriveInput = syn::parse_str(
        r#"
        /// A source document ingested into a project.
        #[tenancy(table = "documents", scoped, primary_key(id), unique(content_hash))]
        #[tenancy(select = Viewer, insert = Editor, update = Editor, delete = Admin)]
        pub struct Document {
            #[tenancy(default = "gen_random_uuid()")]
            pub id: Uuid,
            pub title: String,
            pub content_hash: String,
        }
        "#,
    )
    .unwrap();
    let tokens = derive::expand(quote::ToTokens::into_token_stream(input));
    let file: syn::File = syn::parse2(tokens).expect("the expansion parses as items");
    let text = prettyplease::unparse(&file);
    assert!(text.contains("pub mod documents {"), "{text}");
    assert!(text.contains("pub struct Documents;"), "{text}");
    assert!(text.contains("pub struct NewDocument {"), "{text}");
    assert!(
        text.contains("impl ::std::convert::From<documents::Document> for Document"),
        "{text}"
    );
    // The role bounds are the user's own tokens.
    assert!(text.contains("ReadScope<Viewer>"), "{text}");
    assert!(text.contains("WriteScope<Admin>"), "{text}");
    assert!(!text.contains("compile_error"), "{text}");
}
