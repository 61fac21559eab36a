//! The Rust repository emitter: snapshots, validity, determinism, freshness of the committed
//! `generated/` crate, and the rules -> methods mapping checked on the parsed output.
#![allow(clippy::expect_used, clippy::unwrap_used)] // test helpers panic on broken fixtures

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use quote::ToTokens;
use tenancy_core::dsl::{compile, SourceFile};
use tenancy_core::model::{
    Column, Command, DefaultValue, ForeignKey, Index, IndexMethod, Model, OnDelete, Rule, Settings,
    SqlType, Table, TableKind,
};
use tenancy_core::rust::{generate_repositories, table_repository_tokens, HEADER};

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace root")
        .to_path_buf()
}

/// The model of policies/rag.tenancy, through the DSL front end.
fn rag_model() -> Model {
    let path = workspace_root().join("examples/rag/policies/rag.tenancy");
    let text = std::fs::read_to_string(&path).expect("read rag.tenancy");
    let (model, diagnostics) = compile(&[SourceFile::new("policies/rag.tenancy", text)]);
    model.unwrap_or_else(|| panic!("rag.tenancy does not compile: {diagnostics:?}"))
}

fn col(name: &str, ty: SqlType) -> Column {
    Column {
        name: name.into(),
        ty,
        nullable: false,
        default: None,
        doc: None,
        distance: None,
        per_tenant: false,
        stamp: None,
    }
}

fn table(name: &str, kind: TableKind, rules: &[(Command, &str)]) -> Table {
    Table {
        name: name.into(),
        kind,
        doc: None,
        columns: vec![],
        primary_key: vec![],
        unique_keys: vec![],
        foreign_keys: vec![],
        indexes: vec![],
        rules: rules
            .iter()
            .map(|(command, role)| Rule {
                command: *command,
                min_role: (*role).into(),
                condition: None,
                columns: None,
            })
            .collect(),
    }
}

/// A small model exercising what the RAG model does not: a composite key (so a `Key`
/// struct), a Rust keyword column, a nullable column with a default, every scalar type, a
/// table without update, and a global table (which gets no repository).
fn small_model() -> Model {
    use Command::*;
    let tenants = table("tenants", TableKind::Tenants, &[]);
    let projects = table("projects", TableKind::Projects, &[(Select, "reader")]);
    let memberships = table(
        "members",
        TableKind::Memberships,
        &[(Select, "reader"), (Insert, "writer")],
    );
    let mut notebooks = table(
        "notebooks",
        TableKind::Scoped,
        &[(Select, "reader"), (Insert, "writer")],
    );
    notebooks.columns = vec![col("id", SqlType::Uuid), col("title", SqlType::Text)];
    notebooks.primary_key = vec!["id".into()];
    let mut cells = table(
        "cells",
        TableKind::Scoped,
        &[(Select, "reader"), (Insert, "writer"), (Delete, "writer")],
    );
    cells.doc = Some("One cell of a notebook.".into());
    cells.columns = vec![
        col("notebook_id", SqlType::Uuid),
        col("position", SqlType::Integer),
        Column {
            doc: Some("What the cell holds (`code` or `markdown`).".into()),
            ..col("type", SqlType::Text)
        },
        Column {
            nullable: true,
            default: Some(DefaultValue::Integer(3)),
            ..col("priority", SqlType::SmallInt)
        },
        col("runs", SqlType::BigInt),
        col("score", SqlType::Double),
        col("weight", SqlType::Real),
        Column {
            default: Some(DefaultValue::Bool(false)),
            ..col("pinned", SqlType::Boolean)
        },
        col("due", SqlType::Date),
        Column {
            nullable: true,
            ..col("output", SqlType::Bytea)
        },
        Column {
            nullable: true,
            ..col("embedding", SqlType::Vector(3))
        },
    ];
    cells.primary_key = vec!["notebook_id".into(), "position".into()];
    cells.foreign_keys = vec![ForeignKey {
        columns: vec!["notebook_id".into()],
        table: "notebooks".into(),
        target_columns: vec!["id".into()],
        on_delete: OnDelete::Cascade,
    }];
    cells.indexes = vec![Index {
        columns: vec!["type".into()],
        method: IndexMethod::BTree,
    }];
    let mut languages = table("languages", TableKind::Global, &[(Select, "reader")]);
    languages.columns = vec![col("name", SqlType::Text)];
    languages.primary_key = vec!["name".into()];
    Model {
        settings: Settings {
            helper_schema: "acl".into(),
            ..Settings::default()
        },
        roles: vec!["reader".into(), "writer".into()],
        tables: vec![tenants, projects, memberships, notebooks, cells, languages],
        adoption: None,
    }
}

fn files_by_path(model: &Model) -> BTreeMap<String, String> {
    generate_repositories(model)
        .expect("generate")
        .into_iter()
        .map(|f| (f.path.display().to_string(), f.contents))
        .collect()
}

/// `(method name, where-clause bound)` of every associated fn of `impl <repo>` in `source`.
fn methods(source: &str, repo: &str) -> Vec<(String, String)> {
    let file = syn::parse_file(source).expect("valid Rust");
    let mut out = Vec::new();
    for item in file.items {
        let syn::Item::Impl(item) = item else {
            continue;
        };
        if item.trait_.is_some() || item.self_ty.to_token_stream().to_string() != repo {
            continue;
        }
        for impl_item in item.items {
            if let syn::ImplItem::Fn(f) = impl_item {
                let bound = f
                    .sig
                    .generics
                    .where_clause
                    .as_ref()
                    .map(|w| {
                        w.to_token_stream()
                            .to_string()
                            .replace(' ', "")
                            .trim_end_matches(',')
                            .to_owned()
                    })
                    .unwrap_or_default();
                out.push((f.sig.ident.to_string(), bound));
            }
        }
    }
    out
}

/// Field names of `struct <name>` in `source`, or `None` when there is no such struct.
fn struct_fields(source: &str, name: &str) -> Option<Vec<String>> {
    let file = syn::parse_file(source).expect("valid Rust");
    file.items.into_iter().find_map(|item| match item {
        syn::Item::Struct(s) if s.ident == name => Some(
            s.fields
                .iter()
                .map(|f| f.ident.as_ref().map(|i| i.to_string()).unwrap_or_default())
                .collect(),
        ),
        _ => None,
    })
}

/// The string value of `pub const <name>` inside `impl <repo>`.
fn sql_const(source: &str, repo: &str, name: &str) -> Option<String> {
    let file = syn::parse_file(source).expect("valid Rust");
    for item in file.items {
        let syn::Item::Impl(item) = item else {
            continue;
        };
        if item.self_ty.to_token_stream().to_string() != repo {
            continue;
        }
        for impl_item in item.items {
            if let syn::ImplItem::Const(c) = impl_item {
                if c.ident == name {
                    if let syn::Expr::Lit(syn::ExprLit {
                        lit: syn::Lit::Str(s),
                        ..
                    }) = c.expr
                    {
                        return Some(s.value());
                    }
                }
            }
        }
    }
    None
}

#[test]
fn rag_files_match_snapshots() {
    let files = files_by_path(&rag_model());
    let paths: Vec<&str> = files.keys().map(String::as_str).collect();
    assert_eq!(
        paths,
        [
            "src/assertions.rs",
            "src/chunks.rs",
            "src/documents.rs",
            "src/lib.rs",
            "src/projects.rs",
            "src/queries.rs",
            "src/responses.rs",
            "src/tenant_user_roles.rs",
            "src/tenants.rs",
            "src/user_project_roles.rs",
        ],
        "one module per tenant-owned table with rules; the global embedding_models gets none"
    );
    for (path, contents) in &files {
        let name = format!(
            "rag_{}",
            path.trim_start_matches("src/").trim_end_matches(".rs")
        );
        insta::assert_snapshot!(name, contents);
    }
}

#[test]
fn small_model_files_match_snapshots() {
    let files = files_by_path(&small_model());
    assert!(
        !files.contains_key("src/languages.rs"),
        "global tables get no repository"
    );
    assert!(
        !files.contains_key("src/tenants.rs"),
        "a table without rules gets no repository"
    );
    for (path, contents) in &files {
        let name = format!(
            "small_{}",
            path.trim_start_matches("src/").trim_end_matches(".rs")
        );
        insta::assert_snapshot!(name, contents);
    }
}

#[test]
fn every_file_is_valid_rust_with_the_header() {
    for model in [rag_model(), small_model()] {
        for (path, contents) in files_by_path(&model) {
            assert!(contents.starts_with(HEADER), "{path} lacks the header");
            syn::parse_file(&contents).unwrap_or_else(|e| panic!("{path}: {e}"));
        }
    }
}

#[test]
fn output_is_deterministic() {
    let model = rag_model();
    let first = generate_repositories(&model).expect("generate");
    for _ in 0..3 {
        assert_eq!(
            generate_repositories(&model.clone()).expect("generate"),
            first
        );
    }
    let again = generate_repositories(&rag_model()).expect("generate");
    assert_eq!(again, first, "a fresh parse gives byte-identical files");
}

/// The committed crate is what the emitter produces from policies/rag.tenancy. Set
/// `TENANCY_BLESS=1` to rewrite generated/src (what `tenancy generate` also does).
#[test]
fn committed_generated_crate_is_up_to_date() {
    let root = workspace_root().join("examples/rag/generated");
    let files = generate_repositories(&rag_model()).expect("generate");
    let bless = std::env::var_os("TENANCY_BLESS").is_some();
    let mut stale = Vec::new();
    for file in &files {
        let path = root.join(&file.path);
        if bless {
            std::fs::write(&path, &file.contents).expect("write generated file");
        } else if std::fs::read_to_string(&path).ok().as_deref() != Some(file.contents.as_str()) {
            stale.push(file.path.display().to_string());
        }
    }
    let committed: Vec<String> = std::fs::read_dir(root.join("src"))
        .expect("generated/src")
        .map(|e| format!("src/{}", e.expect("entry").file_name().to_string_lossy()))
        .filter(|p| p.ends_with(".rs"))
        .collect();
    for path in committed {
        if !files.iter().any(|f| f.path == Path::new(&path)) {
            stale.push(format!("{path} (not generated)"));
        }
    }
    assert!(
        stale.is_empty(),
        "generated/ is stale: {stale:?}; run `tenancy generate` (or TENANCY_BLESS=1 cargo test)"
    );
}

#[test]
fn repositories_have_exactly_the_methods_the_rules_allow() {
    let files = files_by_path(&rag_model());
    let names = |path: &str, repo: &str| -> Vec<String> {
        methods(&files[path], repo)
            .into_iter()
            .map(|(n, _)| n)
            .collect()
    };
    assert_eq!(
        names("src/documents.rs", "Documents"),
        [
            "get",
            "get_as_editor",
            "list",
            "count",
            "insert",
            "insert_many",
            "update",
            "update_as_admin",
            "delete"
        ]
    );
    // queries: select, insert (viewer), delete (admin); no update rule.
    assert_eq!(
        names("src/queries.rs", "Queries"),
        ["get", "list", "count", "insert", "insert_many", "delete"]
    );
    assert!(struct_fields(&files["src/queries.rs"], "QueryPatch").is_none());
    // responses: no update either.
    assert!(!names("src/responses.rs", "Responses").contains(&"update".to_owned()));
    // tenants: one row per scope, select only.
    assert_eq!(names("src/tenants.rs", "Tenants"), ["get"]);
    // projects: select and update (admin), no insert (onboarding is SystemTx).
    assert_eq!(
        names("src/projects.rs", "Projects"),
        ["get", "list", "count", "update"]
    );
    assert_eq!(
        names("src/user_project_roles.rs", "UserProjectRoles"),
        [
            "get",
            "list",
            "count",
            "insert",
            "insert_many",
            "update",
            "delete"
        ]
    );
}

#[test]
fn method_bounds_carry_the_rule_roles() {
    let files = files_by_path(&rag_model());
    let bounds: BTreeMap<String, String> = methods(&files["src/documents.rs"], "Documents")
        .into_iter()
        .collect();
    let read = "whereS:::tenancy_runtime::ReadScope<crate::roles::Viewer>";
    assert_eq!(bounds["get"], read);
    assert_eq!(bounds["list"], read);
    assert_eq!(bounds["count"], read);
    let editor = "whereS:::tenancy_runtime::WriteScope<crate::roles::Editor>";
    assert_eq!(bounds["insert"], editor);
    assert_eq!(bounds["insert_many"], editor);
    assert_eq!(bounds["update"], editor);
    assert_eq!(
        bounds["delete"],
        "whereS:::tenancy_runtime::WriteScope<crate::roles::Admin>"
    );
    let queries: BTreeMap<String, String> = methods(&files["src/queries.rs"], "Queries")
        .into_iter()
        .collect();
    assert_eq!(
        queries["insert"],
        "whereS:::tenancy_runtime::WriteScope<crate::roles::Viewer>"
    );
}

#[test]
fn inputs_never_carry_scope_columns_and_rows_carry_all() {
    let files = files_by_path(&rag_model());
    let row = struct_fields(&files["src/documents.rs"], "Document").expect("row");
    assert_eq!(&row[..3], ["tenant_id", "project_id", "id"]);
    // `source_uri` is masked from viewers: only the editor's view carries it.
    assert_eq!(row.len(), 10);
    assert!(!row.contains(&"source_uri".to_owned()));
    let full = struct_fields(&files["src/documents.rs"], "DocumentEditorView").expect("view");
    assert_eq!(full.len(), 11);
    assert!(full.contains(&"source_uri".to_owned()));
    for (path, new) in [
        ("src/documents.rs", "NewDocument"),
        ("src/chunks.rs", "NewChunk"),
        ("src/user_project_roles.rs", "NewUserProjectRole"),
    ] {
        let fields = struct_fields(&files[path], new).expect("new struct");
        assert!(!fields.contains(&"tenant_id".to_owned()), "{new}");
        assert!(!fields.contains(&"project_id".to_owned()), "{new}");
    }
    let patch = struct_fields(&files["src/documents.rs"], "DocumentPatch").expect("patch");
    for key in ["tenant_id", "project_id", "id"] {
        assert!(!patch.contains(&key.to_owned()), "patch has {key}");
    }
    // Column rights: the editor's patch holds the columns of `allow update (title, metadata)
    // to editor ...`; the admin's every updatable column.
    assert_eq!(patch, ["title", "metadata"]);
    let admin_patch =
        struct_fields(&files["src/documents.rs"], "DocumentAdminPatch").expect("admin patch");
    assert_eq!(
        admin_patch,
        [
            "title",
            "source_uri",
            "mime_type",
            "content_hash",
            "metadata"
        ]
    );
    let member_patch =
        struct_fields(&files["src/user_project_roles.rs"], "UserProjectRolePatch").expect("patch");
    // granted_by and granted_at are stamped by the database.
    assert_eq!(member_patch, ["role"]);
}

#[test]
fn every_query_names_the_scope_explicitly() {
    let files = files_by_path(&rag_model());
    let consts = [
        "GET_SQL",
        "LIST_SQL",
        "LIST_AFTER_SQL",
        "COUNT_SQL",
        "INSERT_SQL",
        "INSERT_MANY_SQL",
        "UPDATE_SQL",
        "DELETE_SQL",
    ];
    let mut checked = 0;
    for (path, repo, read, write) in [
        (
            "src/documents.rs",
            "Documents",
            "tenant_id = $1 AND project_id = ANY($2)",
            "tenant_id = $1 AND project_id = $2",
        ),
        (
            "src/projects.rs",
            "Projects",
            "tenant_id = $1 AND id = ANY($2)",
            "tenant_id = $1 AND id = $2",
        ),
        (
            "src/tenants.rs",
            "Tenants",
            "WHERE id = $1",
            "WHERE id = $1",
        ),
    ] {
        for name in consts {
            let Some(sql) = sql_const(&files[path], repo, name) else {
                continue;
            };
            checked += 1;
            if name.starts_with("INSERT") {
                assert!(
                    sql.contains("(tenant_id, project_id,"),
                    "{repo}::{name}: {sql}"
                );
            } else if ["GET_SQL", "LIST_SQL", "LIST_AFTER_SQL", "COUNT_SQL"].contains(&name) {
                assert!(sql.contains(read), "{repo}::{name}: {sql}");
            } else {
                assert!(sql.contains(write), "{repo}::{name}: {sql}");
            }
        }
    }
    assert_eq!(checked, 8 + 5 + 1);
}

#[test]
fn bulk_insert_is_one_unnest_statement_that_applies_defaults() {
    let files = files_by_path(&rag_model());
    let sql = sql_const(&files["src/documents.rs"], "Documents", "INSERT_MANY_SQL").expect("sql");
    assert!(sql.starts_with("INSERT INTO public.documents ("), "{sql}");
    assert!(
        sql.contains("FROM unnest($3::pg_catalog.uuid[], $4::pg_catalog.text[]"),
        "{sql}"
    );
    assert!(sql.contains("COALESCE(u.mime_type, 'text/plain')"), "{sql}");
    assert!(
        sql.contains("COALESCE(u.id, pg_catalog.gen_random_uuid())"),
        "{sql}"
    );
    let chunks = sql_const(&files["src/chunks.rs"], "Chunks", "INSERT_MANY_SQL").expect("sql");
    assert!(chunks.contains("::vector[]"), "{chunks}");
}

#[test]
fn membership_role_is_read_as_text_and_written_as_the_enum() {
    let files = files_by_path(&rag_model());
    let source = &files["src/user_project_roles.rs"];
    let get = sql_const(source, "UserProjectRoles", "GET_SQL").expect("sql");
    assert!(get.contains("role::pg_catalog.text AS role"), "{get}");
    let insert = sql_const(source, "UserProjectRoles", "INSERT_SQL").expect("sql");
    assert!(insert.contains("::tenancy.project_role"), "{insert}");
    assert!(source.contains("pub enum ProjectRole"));
    for variant in ["Viewer", "Editor", "Admin", "Owner"] {
        assert!(
            source.contains(&format!("ProjectRole::{variant} => \"")),
            "{variant}"
        );
    }
}

/// Every statement names its table as `public.<table>` and its built-in functions in
/// `pg_catalog`: a `search_path` changed inside the transaction redirects none of them.
#[test]
fn every_statement_is_schema_qualified() {
    let model = rag_model();
    let files = files_by_path(&model);
    let mut checked = 0;
    for table in &model.tables {
        let Some(source) = files.get(&format!("src/{}.rs", table.name)) else {
            continue; // global tables get no repository
        };
        let repo = source
            .lines()
            .find_map(|l| {
                l.strip_prefix("pub struct ")
                    .and_then(|r| r.strip_suffix(';'))
            })
            .expect("repository struct");
        for name in [
            "GET_SQL",
            "LIST_SQL",
            "COUNT_SQL",
            "INSERT_SQL",
            "UPDATE_SQL",
            "DELETE_SQL",
        ] {
            let Some(sql) = sql_const(source, repo, name) else {
                continue;
            };
            checked += 1;
            let qualified = format!("public.{}", table.name);
            let names_it = [" FROM ", "INSERT INTO ", "UPDATE "]
                .iter()
                .any(|verb| sql.contains(&format!("{verb}{qualified} ")));
            assert!(names_it, "{repo}::{name} does not name {qualified}: {sql}");
            for builtin in ["now()", "gen_random_uuid()", "count(*)", "::uuid", "::text"] {
                let bare = sql.replace(
                    &format!("pg_catalog.{}", builtin.trim_start_matches("::")),
                    "",
                );
                assert!(
                    !bare.contains(builtin),
                    "{repo}::{name} has a bare {builtin}: {sql}"
                );
            }
        }
    }
    assert!(checked >= 30, "only {checked} statements checked");
}

#[test]
fn update_is_static_sql_with_flags() {
    let files = files_by_path(&rag_model());
    let sql = sql_const(&files["src/documents.rs"], "Documents", "UPDATE_SQL").expect("sql");
    assert!(
        sql.contains("title = CASE WHEN $4 THEN $5 ELSE title END"),
        "{sql}"
    );
    assert!(sql.ends_with(
        "WHERE tenant_id = $1 AND project_id = $2 AND id = $3 RETURNING tenant_id, project_id, id, title, mime_type, content_hash, metadata, created_by, created_at, updated_at"
    ), "{sql}");
}

#[test]
fn composite_keys_keywords_and_helper_schema_in_the_small_model() {
    let files = files_by_path(&small_model());
    let source = &files["src/cells.rs"];
    assert_eq!(
        struct_fields(source, "CellKey").expect("key struct"),
        ["notebook_id", "position"]
    );
    let row = struct_fields(source, "Cell").expect("row");
    assert!(row.contains(&"r#type".to_owned()), "{row:?}");
    let list = sql_const(source, "Cells", "LIST_AFTER_SQL").expect("sql");
    assert!(
        list.contains("project_id = $6::pg_catalog.uuid AND (notebook_id, position) > ($")
            && list.contains(" UNION ALL ")
            && list.contains("project_id > $6::pg_catalog.uuid"),
        "keyset over the full key, the cursor's project then the later ones: {list}"
    );
    let first = sql_const(source, "Cells", "LIST_SQL").expect("sql");
    assert!(
        !first.contains(") > ("),
        "the first page has no cursor: {first}"
    );
    let members = &files["src/members.rs"];
    let insert = sql_const(members, "Members", "INSERT_SQL").expect("sql");
    assert!(insert.contains("::acl.project_role"), "{insert}");
    assert!(files["src/lib.rs"].contains("helper_schema: \"acl\".to_owned()"));
    assert!(files["src/lib.rs"].contains("memberships_table: \"members\".to_owned()"));
    // cells has no update rule: no patch type, no update method.
    assert!(struct_fields(source, "CellPatch").is_none());
}

#[test]
fn table_tokens_use_the_given_roles_path_and_absolute_paths_only() {
    let model = rag_model();
    let table = model.table("documents").expect("documents");
    let path: syn::Path = syn::parse_quote!(::my_app::auth::roles);
    let tokens = table_repository_tokens(&model, table, &path);
    let file: syn::File = syn::parse2(tokens.clone()).expect("tokens parse as items");
    assert!(!file.items.is_empty());
    let text = tokens.to_string();
    assert!(
        text.contains(":: my_app :: auth :: roles :: Editor"),
        "{text}"
    );
    assert!(
        !text.contains("crate ::"),
        "no crate-relative paths: {text}"
    );
    let global = model.table("embedding_models").expect("global table");
    assert!(table_repository_tokens(&model, global, &path).is_empty());
}

/// Parameters PostgreSQL cannot type on its own (`$n IS NULL`, `COALESCE($n, '{}')`) carry a
/// cast, so the statements also prepare without bind types (psql, EXPLAIN, poolers).
#[test]
fn untypable_parameters_are_cast() {
    let files = files_by_path(&rag_model());
    let source = &files["src/documents.rs"];
    let list = sql_const(source, "Documents", "LIST_SQL").expect("sql");
    assert!(
        list.contains("($3::pg_catalog.uuid IS NULL OR project_id = $3)"),
        "{list}"
    );
    let after = sql_const(source, "Documents", "LIST_AFTER_SQL").expect("sql");
    assert!(
        after.contains(
            " AND project_id = $6::pg_catalog.uuid AND id > $7::pg_catalog.uuid ORDER BY project_id, id LIMIT $8) UNION ALL ("
        ) && after.contains(
            " AND project_id > $6::pg_catalog.uuid ORDER BY project_id, id LIMIT $8)) AS page ORDER BY project_id, id LIMIT $8"
        ),
        "{after}"
    );
    let insert = sql_const(source, "Documents", "INSERT_SQL").expect("sql");
    assert!(
        insert.contains("COALESCE($8::pg_catalog.jsonb, '{}')"),
        "{insert}"
    );
    let members = sql_const(
        &files["src/user_project_roles.rs"],
        "UserProjectRoles",
        "LIST_SQL",
    )
    .expect("sql");
    assert!(
        members.contains("::pg_catalog.text IS NULL OR role = $"),
        "role filters compare as the enum: {members}"
    );
}

/// `NewDocument::new` takes the required columns only, so code that builds rows with it keeps
/// compiling when a nullable or defaulted column is added; a new required column changes it.
#[test]
fn new_row_constructors_survive_an_added_optional_column() {
    fn new_signature(model: &Model) -> String {
        let files = generate_repositories(model).unwrap();
        let documents = files
            .iter()
            .find(|f| f.path.ends_with("documents.rs"))
            .unwrap();
        let at = documents.contents.find("pub fn new(").unwrap();
        let end = documents.contents[at..].find(") -> Self").unwrap();
        documents.contents[at..at + end].to_owned()
    }
    let before = rag_model();
    let base = new_signature(&before);
    assert!(
        base.contains("title:") && base.contains("content_hash:") && !base.contains("created_by"),
        "{base}"
    );
    assert!(
        !base.contains("source_uri") && !base.contains("mime_type"),
        "{base}"
    );

    let mut optional = before.clone();
    let documents = optional
        .tables
        .iter_mut()
        .find(|t| t.name == "documents")
        .unwrap();
    documents.columns.push(Column {
        nullable: true,
        ..col("summary", SqlType::Text)
    });
    let mut defaulted = col("language", SqlType::Text);
    defaulted.default = Some(tenancy_core::model::DefaultValue::String("en".into()));
    documents.columns.push(defaulted);
    assert_eq!(new_signature(&optional), base);

    let mut required = before.clone();
    let documents = required
        .tables
        .iter_mut()
        .find(|t| t.name == "documents")
        .unwrap();
    documents.columns.push(col("owner_team", SqlType::Text));
    assert!(new_signature(&required).contains("owner_team:"));
}
