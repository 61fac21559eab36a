//! `#[derive(TenantScoped)]` on the RAG structs (examples/derive/rag_models.rs) expands to
//! the same repositories as the generated crate (tenancy-generated): the same SQL, the same
//! row and input types, and methods bounded by the roles the attributes name.

use tenancy_runtime::{Error, ReadScope, ScopedTx, WriteScope};

/// The role markers the structs' rules name (`crate::roles::{Viewer, Editor, Admin}`).
pub use tenancy_generated::roles;

// The fixture declares more structs than these tests construct.
#[allow(dead_code)]
#[path = "../examples/derive/rag_models.rs"]
mod rag_models;

use rag_models::{assertions, chunks, documents, queries, responses};
use rag_models::{Document, EmbeddingModel};
use roles::{Admin, Editor, Viewer};

/// Type-checked, never run: each method exists with the role bound of its rule.
#[allow(dead_code)]
async fn methods_exist_with_their_role_bounds<R, W, A>(
    viewer: &mut ScopedTx<R>,
    editor: &mut ScopedTx<W>,
    admin: &mut ScopedTx<A>,
) -> Result<(), Error>
where
    R: ReadScope<Viewer> + WriteScope<Viewer>,
    W: WriteScope<Editor> + ReadScope<Editor>,
    A: WriteScope<Admin>,
{
    use documents::{DocumentFilter, DocumentPage, DocumentPatch, Documents, NewDocument};
    let id = uuid::Uuid::nil();
    let _: Option<documents::Document> = Documents::get(viewer, id).await?;
    let page: Vec<documents::Document> =
        Documents::list(viewer, &DocumentFilter::default(), DocumentPage::default()).await?;
    let _next = page.last().map(documents::Document::cursor);
    let _: i64 = Documents::count(viewer, &DocumentFilter::default()).await?;
    let new = NewDocument {
        id: None,
        title: "t".into(),
        source_uri: None,
        mime_type: None,
        content_hash: "h".into(),
        metadata: None,
    };
    let row: documents::Document = Documents::insert(editor, new.clone()).await?;
    let _: Vec<documents::Document> = Documents::insert_many(editor, vec![new]).await?;
    let _ = row;
    let full: Option<documents::DocumentEditorView> = Documents::get_as_editor(editor, id).await?;
    let _plain: Option<Document> = full.map(Document::from);
    let patch = DocumentPatch {
        title: Some("new title".into()),
        ..DocumentPatch::default()
    };
    let _: Option<documents::Document> = Documents::update(editor, id, patch).await?;
    let _: bool = Documents::delete(admin, id).await?;
    // queries: any viewer may ask.
    let _: queries::Query = queries::Queries::insert(
        viewer,
        queries::NewQuery {
            id: None,
            query_text: "q".into(),
            top_k: Some(5),
            created_at: None,
        },
    )
    .await?;
    let _: bool = chunks::Chunks::delete(editor, id).await?;
    let _: bool = assertions::Assertions::delete(admin, id).await?;
    let _: bool = responses::Responses::delete(admin, id).await?;
    Ok(())
}

#[test]
fn derived_repositories_run_the_same_sql_as_the_generated_crate() {
    use tenancy_generated as generated;
    macro_rules! same_sql {
        ($module:ident :: $repo:ident : $($sql:ident),+) => {
            $(assert_eq!(
                $module::$repo::$sql,
                generated::$module::$repo::$sql,
                concat!(stringify!($repo), "::", stringify!($sql))
            );)+
        };
    }
    same_sql!(documents::Documents: GET_SQL, GET_IN_PROJECT_SQL, GET_AS_EDITOR_SQL, GET_AS_EDITOR_IN_PROJECT_SQL, UPDATE_AS_ADMIN_SET_SOURCE_URI_SQL, LIST_SQL, COUNT_SQL, INSERT_SQL, INSERT_MANY_SQL, UPDATE_SQL, DELETE_SQL);
    same_sql!(chunks::Chunks: GET_SQL, GET_IN_PROJECT_SQL, LIST_SQL, COUNT_SQL, INSERT_SQL, INSERT_MANY_SQL, UPDATE_SQL, DELETE_SQL);
    same_sql!(queries::Queries: GET_SQL, GET_IN_PROJECT_SQL, LIST_SQL, COUNT_SQL, INSERT_SQL, INSERT_MANY_SQL, DELETE_SQL);
    same_sql!(responses::Responses: GET_SQL, GET_IN_PROJECT_SQL, LIST_SQL, COUNT_SQL, INSERT_SQL, INSERT_MANY_SQL, DELETE_SQL);
    same_sql!(assertions::Assertions: GET_SQL, GET_IN_PROJECT_SQL, LIST_SQL, COUNT_SQL, INSERT_SQL, INSERT_MANY_SQL, UPDATE_SQL, DELETE_SQL);
}

#[test]
fn derived_rows_have_the_generated_rows_fields_and_drop_the_scope_into_the_struct() {
    let id = uuid::Uuid::from_u128(7);
    // Documents mask `source_uri` from viewers: the row type holding every column is the
    // editor's view, and the struct converts from that one.
    let generated_row = tenancy_generated::documents::DocumentEditorView {
        tenant_id: uuid::Uuid::from_u128(1),
        project_id: uuid::Uuid::from_u128(2),
        id,
        title: "Title".into(),
        source_uri: Some("s3://bucket/doc".into()),
        mime_type: "text/plain".into(),
        content_hash: "abc".into(),
        metadata: serde_json::json!({"k": 1}),
        created_by: id,
        created_at: chrono::DateTime::UNIX_EPOCH,
        updated_at: chrono::DateTime::UNIX_EPOCH,
    };
    // Same fields, same types: the generated row deserialises into the derived one and back.
    let json = serde_json::to_value(&generated_row).unwrap();
    let derived_row: documents::DocumentEditorView = serde_json::from_value(json.clone()).unwrap();
    assert_eq!(serde_json::to_value(&derived_row).unwrap(), json);

    let plain = Document::from(derived_row);
    assert_eq!(plain.id, id);
    assert_eq!(plain.title, "Title");
    assert_eq!(plain.source_uri.as_deref(), Some("s3://bucket/doc"));
    assert_eq!(plain.metadata, serde_json::json!({"k": 1}));
}

#[test]
fn structs_know_their_table_and_declaration() {
    assert_eq!(Document::TABLE_NAME, "documents");
    assert!(Document::TENANCY_DSL
        .starts_with("/// A source document ingested into a project.\nscoped table documents {\n"));
    // Global tables get no repository, only the declaration.
    assert_eq!(EmbeddingModel::TABLE_NAME, "embedding_models");
    assert!(EmbeddingModel::TENANCY_DSL.contains("    allow select\n"));
}

/// The derive as re-exported by tenancy-runtime (feature "derive", on by default).
mod via_runtime {
    use tenancy_generated::roles::Viewer;

    /// A note (only its expansion is used).
    #[allow(dead_code)]
    #[derive(tenancy_runtime::TenantScoped)]
    #[tenancy(table = "notes", scoped, primary_key(id), select = Viewer)]
    pub struct Note {
        pub id: uuid::Uuid,
        pub body: String,
    }
}

#[test]
fn tenancy_runtime_reexports_the_derive() {
    assert_eq!(via_runtime::Note::TABLE_NAME, "notes");
    let sql = via_runtime::notes::Notes::GET_SQL;
    assert!(sql.contains("FROM public.notes"), "{sql}");
    assert!(sql.contains("tenant_id = $1"), "{sql}");
}
