// The RAG platform's tables declared as Rust structs with #[derive(TenantScoped)]: the same
// model as the scoped and global tables of policies/rag.tenancy. Together with
// examples/derive/policies/core.tenancy (the tenancy block and the core tables) it generates
// byte-identical SQL:
//
//     tenancy generate --policies examples/derive/policies --rust examples/derive/rag_models.rs
//
// tests/derive_model.rs also compiles this file as a module (role markers from `crate::roles`).

use chrono::{DateTime, Utc};
use tenancy_macros::TenantScoped;
use uuid::Uuid;

#[allow(unused_imports)]
use crate::roles::{Admin, Editor, Viewer};

/// A source document ingested into a project.
#[derive(Debug, Clone, PartialEq, TenantScoped)]
#[tenancy(
    table = "documents",
    scoped,
    primary_key(id),
    unique(content_hash),
    index(created_at)
)]
#[tenancy(insert = Editor, delete = Admin)]
#[tenancy(
    allow(
        select,
        to = Viewer,
        columns = "title, mime_type, content_hash, metadata, created_by, created_at, updated_at"
    ),
    select = Editor
)]
#[tenancy(
    allow(update, to = Editor, where = "created_by = current_user", columns = "title, metadata"),
    update = Admin
)]
pub struct Document {
    #[tenancy(default = "gen_random_uuid()")]
    pub id: Uuid,
    pub title: String,
    pub source_uri: Option<String>,
    #[tenancy(default = "'text/plain'")]
    pub mime_type: String,
    pub content_hash: String,
    #[tenancy(default = "'{}'")]
    pub metadata: serde_json::Value,
    /// Who ingested it: the database writes the caller's user id on insert.
    #[tenancy(stamp = "current_user on insert")]
    pub created_by: Uuid,
    #[tenancy(stamp = "now() on insert")]
    pub created_at: DateTime<Utc>,
    #[tenancy(stamp = "now() on update")]
    pub updated_at: DateTime<Utc>,
}

/// A retrievable slice of a document, with its embedding.
#[derive(Debug, Clone, PartialEq, TenantScoped)]
#[tenancy(
    table = "chunks",
    scoped,
    primary_key(id),
    unique(document_id, ordinal)
)]
#[tenancy(select = Viewer, insert = Editor, update = Editor, delete = Editor)]
pub struct Chunk {
    #[tenancy(default = "gen_random_uuid()")]
    pub id: Uuid,
    #[tenancy(references = "documents(id)", on_delete = "cascade")]
    pub document_id: Uuid,
    pub ordinal: i32,
    pub content: String,
    pub token_count: i32,
    #[tenancy(sql_type = "vector(384)")]
    pub embedding: Option<pgvector::Vector>,
    #[tenancy(default = "now()")]
    pub created_at: DateTime<Utc>,
}

/// A question asked against a project's corpus.
#[derive(Debug, Clone, PartialEq, TenantScoped)]
#[tenancy(table = "queries", scoped, primary_key(id), index(asked_by))]
#[tenancy(delete = Admin)]
#[tenancy(
    allow(select, to = Viewer, where = "asked_by = current_user"),
    select = Editor
)]
#[tenancy(allow(insert, to = Viewer, where = "asked_by = current_user"))]
pub struct Query {
    #[tenancy(default = "gen_random_uuid()")]
    pub id: Uuid,
    /// Who asked: the database writes the caller's user id on insert.
    #[tenancy(stamp = "current_user on insert")]
    pub asked_by: Uuid,
    pub query_text: String,
    #[tenancy(default = 10)]
    pub top_k: i32,
    #[tenancy(default = "now()")]
    pub created_at: DateTime<Utc>,
}

/// A generated answer to a query.
#[derive(Debug, Clone, PartialEq, TenantScoped)]
#[tenancy(table = "responses", scoped, primary_key(id))]
#[tenancy(select = Viewer, insert = Editor, delete = Admin)]
pub struct Response {
    #[tenancy(default = "gen_random_uuid()")]
    pub id: Uuid,
    #[tenancy(references = "queries(id)", on_delete = "cascade")]
    pub query_id: Uuid,
    pub answer_text: String,
    pub model: String,
    #[tenancy(default = 0)]
    pub prompt_tokens: i32,
    #[tenancy(default = 0)]
    pub completion_tokens: i32,
    pub latency_ms: Option<i32>,
    #[tenancy(default = "now()")]
    pub created_at: DateTime<Utc>,
}

/// A checked claim in a response: which chunk supports it and the verdict.
#[derive(Debug, Clone, PartialEq, TenantScoped)]
#[tenancy(table = "assertions", scoped, primary_key(id), index(response_id))]
#[tenancy(select = Viewer, insert = Editor, update = Editor, delete = Admin)]
pub struct Assertion {
    #[tenancy(default = "gen_random_uuid()")]
    pub id: Uuid,
    #[tenancy(references = "responses(id)", on_delete = "cascade")]
    pub response_id: Uuid,
    #[tenancy(references = "chunks(id)", on_delete = "set null")]
    pub chunk_id: Option<Uuid>,
    pub claim: String,
    #[tenancy(default = "'unverified'")]
    pub verdict: String,
    pub score: Option<f32>,
    #[tenancy(default = "now()")]
    pub created_at: DateTime<Utc>,
}

/// Embedding models known to the platform, shared by every tenant.
#[derive(Debug, Clone, PartialEq, TenantScoped)]
#[tenancy(table = "embedding_models", global, primary_key(name), select)]
pub struct EmbeddingModel {
    pub name: String,
    pub dimensions: i32,
    #[tenancy(default = "now()")]
    pub created_at: DateTime<Utc>,
}
