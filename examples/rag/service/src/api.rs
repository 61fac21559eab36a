//! The endpoints. Every data access goes through a generated repository or, for similarity
//! search, through [`tenancy_runtime::vector::VectorGateway`], inside a
//! [`tenancy_runtime::ScopedTx`] opened for the scope the caller proved; only the membership
//! audit row uses SQL of its own (still in the scoped transaction, still under row-level
//! security).

use axum::extract::State;
use axum::http::{HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::{Deserialize, Serialize};
use tenancy_generated::roles::{Admin, Editor, Viewer};
use tenancy_generated::{
    Assertion, AssertionFilter, AssertionPage, Assertions, Chunk, ChunkFilter, ChunkPage, Chunks,
    Document, DocumentAdminPatch, DocumentCursor, DocumentFilter, DocumentPage, DocumentPatch,
    Documents, NewAssertion, NewChunk, NewDocument, NewQuery, NewResponse, NewUserProjectRole,
    ProjectRole, Queries, Query, QueryCursor, QueryFilter, QueryPage, Response as AnswerRow,
    ResponseFilter, ResponsePage, Responses, UserProjectRole, UserProjectRoleFilter,
    UserProjectRolePage, UserProjectRolePatch, UserProjectRoles,
};
use tenancy_runtime::http::{ApiError, RefusalReason, TenantRequest};
use tenancy_runtime::vector::{Route, SearchRequest};
use tenancy_runtime::{ProjectId, ReadScope, Scope, ScopedTx};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::input::{
    check_embedding, check_metadata, check_non_negative, check_optional_text, check_text, ApiJson,
    ApiPath, ApiQuery, MAX_BATCH, MAX_LONG_TEXT, MAX_SHORT_TEXT,
};
use crate::AppState;

type ApiResult<T> = Result<T, ApiError>;

/// `?limit=&after=`: keyset pagination inside one project.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PageParams {
    /// Rows per page, 1..=1000 (default 100).
    pub limit: Option<u32>,
    /// The `next_after` of the previous page.
    pub after: Option<Uuid>,
}

impl PageParams {
    /// The page size: 100 by default (at most `max`), 422 outside `1..=max`.
    fn limit(&self, max: u32) -> ApiResult<u32> {
        match self.limit {
            None => Ok(100.min(max)),
            Some(limit) if (1..=max).contains(&limit) => Ok(limit),
            Some(_) => Err(ApiError::invalid_field(
                "limit",
                &format!("must be 1..={max}"),
            )),
        }
    }
}

/// One page of rows; pass `next_after` as `after` for the next page (absent on the last page).
#[derive(Debug, Serialize)]
pub struct Page<T> {
    /// The rows.
    pub items: Vec<T>,
    /// Cursor of the next page.
    pub next_after: Option<Uuid>,
}

fn page<T>(items: Vec<T>, limit: u32, id: impl Fn(&T) -> Uuid) -> Page<T> {
    let next_after = if items.len() == limit as usize {
        items.last().map(id)
    } else {
        None
    };
    Page { items, next_after }
}

fn created<T: Serialize>(value: T) -> Response {
    (StatusCode::CREATED, Json(value)).into_response()
}

/// One project membership of the caller.
#[derive(Debug, Serialize, ToSchema)]
pub struct MyProject {
    /// The project.
    pub project_id: Uuid,
    /// The caller's role there.
    pub role: String,
}

/// `GET /t/{tenant_id}/projects`: the caller's projects in the tenant and their role in each.
pub async fn my_projects(request: TenantRequest) -> ApiResult<Json<Vec<MyProject>>> {
    Ok(Json(
        request
            .context()
            .memberships()
            .map(|(project, role)| MyProject {
                project_id: project.as_uuid(),
                role: role.to_owned(),
            })
            .collect(),
    ))
}

// ---------------------------------------------------------------- documents

/// Body of `POST .../documents`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateDocument {
    /// Title (1..=1000 bytes).
    pub title: String,
    /// Where it came from.
    pub source_uri: Option<String>,
    /// MIME type (default `text/plain`).
    pub mime_type: Option<String>,
    /// Content hash, unique per tenant.
    pub content_hash: String,
    /// Free-form JSON object.
    #[schema(value_type = Object)]
    pub metadata: Option<serde_json::Value>,
}

/// Body of `PATCH .../documents/{document_id}`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateDocument {
    /// New title.
    pub title: Option<String>,
    /// New source URI.
    pub source_uri: Option<String>,
    /// New MIME type.
    pub mime_type: Option<String>,
    /// New metadata object.
    #[schema(value_type = Object)]
    pub metadata: Option<serde_json::Value>,
}

/// `POST /t/{tenant_id}/projects/{project_id}/documents` (editor).
pub async fn create_document(
    State(state): State<AppState>,
    request: TenantRequest,
    ApiPath((_, project)): ApiPath<(Uuid, Uuid)>,
    ApiJson(body): ApiJson<CreateDocument>,
) -> ApiResult<Response> {
    let scope = request.project_scope::<Editor>(ProjectId::new(project))?;
    check_text("title", &body.title, MAX_SHORT_TEXT)?;
    check_text("content_hash", &body.content_hash, MAX_SHORT_TEXT)?;
    if let Some(uri) = &body.source_uri {
        check_optional_text("source_uri", uri, MAX_SHORT_TEXT)?;
    }
    if let Some(mime) = &body.mime_type {
        check_text("mime_type", mime, MAX_SHORT_TEXT)?;
    }
    if let Some(metadata) = &body.metadata {
        check_metadata("metadata", metadata)?;
    }
    let mut tx = state.tenancy().begin(&scope).await?;
    let document = Documents::insert(
        &mut tx,
        NewDocument {
            id: None,
            title: body.title,
            source_uri: body.source_uri,
            mime_type: body.mime_type,
            content_hash: body.content_hash,
            metadata: body.metadata,
        },
    )
    .await?;
    tx.commit().await?;
    Ok(created(document))
}

/// `GET /t/{tenant_id}/projects/{project_id}/documents` (viewer).
pub async fn list_documents(
    State(state): State<AppState>,
    request: TenantRequest,
    ApiPath((_, project)): ApiPath<(Uuid, Uuid)>,
    ApiQuery(params): ApiQuery<PageParams>,
) -> ApiResult<Json<Page<Document>>> {
    let scope = request.project_scope::<Viewer>(ProjectId::new(project))?;
    let limit = params.limit(state.limits().max_page_size)?;
    let mut tx = state.tenancy().begin(&scope).await?;
    let rows = Documents::list(
        &mut tx,
        &DocumentFilter::default(),
        DocumentPage {
            after: params.after.map(|id| DocumentCursor {
                project_id: project,
                id,
            }),
            limit,
        },
    )
    .await?;
    tx.commit().await?;
    Ok(Json(page(rows, limit, |d| d.id)))
}

/// `GET /t/{tenant_id}/projects/{project_id}/documents/{document_id}` (viewer).
pub async fn get_document(
    State(state): State<AppState>,
    request: TenantRequest,
    ApiPath((_, project, id)): ApiPath<(Uuid, Uuid, Uuid)>,
) -> ApiResult<Json<Document>> {
    let scope = request.project_scope::<Viewer>(ProjectId::new(project))?;
    let mut tx = state.tenancy().begin(&scope).await?;
    let document = Documents::get(&mut tx, id).await?;
    tx.commit().await?;
    document.map(Json).ok_or_else(ApiError::not_found)
}

/// `PATCH /t/{tenant_id}/projects/{project_id}/documents/{document_id}` (editor for `title`
/// and `metadata` of the caller's own documents; admin for any document and for `source_uri`
/// and `mime_type`).
pub async fn update_document(
    State(state): State<AppState>,
    request: TenantRequest,
    ApiPath((_, project, id)): ApiPath<(Uuid, Uuid, Uuid)>,
    ApiJson(body): ApiJson<UpdateDocument>,
) -> ApiResult<Json<Document>> {
    if let Some(title) = &body.title {
        check_text("title", title, MAX_SHORT_TEXT)?;
    }
    if let Some(uri) = &body.source_uri {
        check_optional_text("source_uri", uri, MAX_SHORT_TEXT)?;
    }
    if let Some(mime) = &body.mime_type {
        check_text("mime_type", mime, MAX_SHORT_TEXT)?;
    }
    if let Some(metadata) = &body.metadata {
        check_metadata("metadata", metadata)?;
    }
    let project = ProjectId::new(project);
    // The source and the MIME type are the admins' to change (`allow update to admin`);
    // an editor's patch holds only the columns the editor's rule covers.
    let document = if body.source_uri.is_some() || body.mime_type.is_some() {
        let scope = request.project_scope::<Admin>(project)?;
        let mut tx = state.tenancy().begin(&scope).await?;
        let document = Documents::update_as_admin(
            &mut tx,
            id,
            DocumentAdminPatch {
                title: body.title,
                source_uri: body.source_uri.map(Some),
                mime_type: body.mime_type,
                metadata: body.metadata,
                ..DocumentAdminPatch::default()
            },
        )
        .await?;
        tx.commit().await?;
        document
    } else {
        let scope = request.project_scope::<Editor>(project)?;
        let mut tx = state.tenancy().begin(&scope).await?;
        let document = Documents::update(
            &mut tx,
            id,
            DocumentPatch {
                title: body.title,
                metadata: body.metadata,
            },
        )
        .await?;
        tx.commit().await?;
        document
    };
    document.map(Json).ok_or_else(ApiError::not_found)
}

/// `DELETE /t/{tenant_id}/projects/{project_id}/documents/{document_id}` (admin).
pub async fn delete_document(
    State(state): State<AppState>,
    request: TenantRequest,
    ApiPath((_, project, id)): ApiPath<(Uuid, Uuid, Uuid)>,
) -> ApiResult<StatusCode> {
    let scope = request.project_scope::<Admin>(ProjectId::new(project))?;
    let mut tx = state.tenancy().begin(&scope).await?;
    let deleted = Documents::delete(&mut tx, id).await?;
    tx.commit().await?;
    if deleted {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::not_found())
    }
}

// ---------------------------------------------------------------- chunks

/// One chunk of an ingest batch.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ChunkInput {
    /// Position in the document (unique per document, >= 0).
    pub ordinal: i32,
    /// The text.
    pub content: String,
    /// Token count (>= 0).
    pub token_count: i32,
    /// 384 finite numbers.
    pub embedding: Option<Vec<f32>>,
}

/// Body of `POST .../documents/{document_id}/chunks`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct IngestChunks {
    /// 1..=1000 chunks.
    pub chunks: Vec<ChunkInput>,
}

/// A chunk without its embedding.
#[derive(Debug, Serialize, ToSchema)]
pub struct ChunkView {
    /// Chunk id.
    pub id: Uuid,
    /// Project.
    pub project_id: Uuid,
    /// Document.
    pub document_id: Uuid,
    /// Position in the document.
    pub ordinal: i32,
    /// The text.
    pub content: String,
    /// Token count.
    pub token_count: i32,
    /// Whether an embedding is stored.
    pub has_embedding: bool,
}

impl From<Chunk> for ChunkView {
    fn from(chunk: Chunk) -> Self {
        ChunkView {
            id: chunk.id,
            project_id: chunk.project_id,
            document_id: chunk.document_id,
            ordinal: chunk.ordinal,
            content: chunk.content,
            token_count: chunk.token_count,
            has_embedding: chunk.embedding.is_some(),
        }
    }
}

/// `POST /t/{tenant_id}/projects/{project_id}/documents/{document_id}/chunks` (editor): one
/// statement for the whole batch.
pub async fn ingest_chunks(
    State(state): State<AppState>,
    request: TenantRequest,
    ApiPath((_, project, document)): ApiPath<(Uuid, Uuid, Uuid)>,
    ApiJson(body): ApiJson<IngestChunks>,
) -> ApiResult<Response> {
    let scope = request.project_scope::<Editor>(ProjectId::new(project))?;
    if body.chunks.is_empty() || body.chunks.len() > MAX_BATCH {
        return Err(ApiError::invalid_field(
            "chunks",
            &format!("must hold 1..={MAX_BATCH} chunks"),
        ));
    }
    let mut ordinals = std::collections::HashSet::new();
    for (index, chunk) in body.chunks.iter().enumerate() {
        check_non_negative(&format!("chunks[{index}].ordinal"), chunk.ordinal)?;
        check_non_negative(&format!("chunks[{index}].token_count"), chunk.token_count)?;
        check_text(
            &format!("chunks[{index}].content"),
            &chunk.content,
            MAX_LONG_TEXT,
        )?;
        if let Some(embedding) = &chunk.embedding {
            check_embedding(&format!("chunks[{index}].embedding"), embedding)?;
        }
        if !ordinals.insert(chunk.ordinal) {
            return Err(ApiError::invalid_field(
                &format!("chunks[{index}].ordinal"),
                "duplicate ordinal in the batch",
            ));
        }
    }
    let mut tx = state.tenancy().begin(&scope).await?;
    if Documents::get(&mut tx, document).await?.is_none() {
        return Err(ApiError::not_found());
    }
    let rows = body
        .chunks
        .into_iter()
        .map(|chunk| NewChunk {
            id: None,
            document_id: document,
            ordinal: chunk.ordinal,
            content: chunk.content,
            token_count: chunk.token_count,
            embedding: chunk.embedding.map(pgvector::Vector::from),
            created_at: None,
        })
        .collect();
    let inserted = Chunks::insert_many(&mut tx, rows).await?;
    tx.commit().await?;
    Ok(created(
        inserted
            .into_iter()
            .map(ChunkView::from)
            .collect::<Vec<_>>(),
    ))
}

/// `GET /t/{tenant_id}/projects/{project_id}/documents/{document_id}/chunks` (viewer).
pub async fn list_chunks(
    State(state): State<AppState>,
    request: TenantRequest,
    ApiPath((_, project, document)): ApiPath<(Uuid, Uuid, Uuid)>,
    ApiQuery(params): ApiQuery<PageParams>,
) -> ApiResult<Json<Page<ChunkView>>> {
    let scope = request.project_scope::<Viewer>(ProjectId::new(project))?;
    let limit = params.limit(state.limits().max_page_size)?;
    let mut tx = state.tenancy().begin(&scope).await?;
    if Documents::get(&mut tx, document).await?.is_none() {
        return Err(ApiError::not_found());
    }
    let rows = Chunks::list(
        &mut tx,
        &ChunkFilter {
            document_id: Some(document),
            ..ChunkFilter::default()
        },
        ChunkPage {
            after: params.after.map(|id| tenancy_generated::ChunkCursor {
                project_id: project,
                id,
            }),
            limit,
        },
    )
    .await?;
    tx.commit().await?;
    let rows: Vec<ChunkView> = rows.into_iter().map(ChunkView::from).collect();
    Ok(Json(page(rows, limit, |c| c.id)))
}

// ---------------------------------------------------------------- search

/// Body of the search endpoints.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SearchBody {
    /// The query embedding: 384 finite numbers.
    pub embedding: Vec<f32>,
    /// Number of hits, 1..=100 (default 10).
    pub k: Option<u32>,
}

/// One search hit, nearest first (ties by project id, then chunk id).
#[derive(Debug, Serialize, ToSchema)]
pub struct SearchHit {
    /// Chunk id.
    pub chunk_id: Uuid,
    /// Project of the chunk.
    pub project_id: Uuid,
    /// Document of the chunk.
    pub document_id: Uuid,
    /// Position in the document.
    pub ordinal: i32,
    /// The text.
    pub content: String,
    /// Cosine distance to the query.
    pub distance: f64,
}

impl From<tenancy_runtime::vector::SearchHit<Uuid, Chunk>> for SearchHit {
    fn from(hit: tenancy_runtime::vector::SearchHit<Uuid, Chunk>) -> Self {
        SearchHit {
            chunk_id: hit.key,
            project_id: hit.project_id.as_uuid(),
            document_id: hit.row.document_id,
            ordinal: hit.row.ordinal,
            content: hit.row.content,
            distance: hit.distance,
        }
    }
}

/// The response header naming how a search was answered: `exact`, `tenant_hnsw`,
/// `exact_after_short_hnsw` or `empty_scope` (the body stays a bare array of hits).
pub const SEARCH_ROUTE_HEADER: &str = "x-search-route";

/// The `k` nearest chunks of the scope through the vector gateway, which picks exact search or
/// the tenant's own HNSW index from the catalog and returns `k` hits whenever the scope holds
/// `k` embedded chunks.
async fn search_in<S: ReadScope<Viewer>>(
    state: &AppState,
    tx: &mut ScopedTx<S>,
    body: SearchBody,
) -> ApiResult<(Route, Vec<SearchHit>)> {
    let k = body.k.unwrap_or(10).min(state.limits().max_k);
    let request = SearchRequest::new(pgvector::Vector::from(body.embedding), k);
    let results = state.vector().search_rows::<_, Chunk>(tx, &request).await?;
    Ok((
        results.route,
        results.hits.into_iter().map(SearchHit::from).collect(),
    ))
}

fn search_response(route: Route, hits: Vec<SearchHit>) -> Response {
    (
        [(
            HeaderName::from_static(SEARCH_ROUTE_HEADER),
            HeaderValue::from_static(crate::vector::route_name(route)),
        )],
        Json(hits),
    )
        .into_response()
}

fn check_search(body: &SearchBody, max_k: u32) -> ApiResult<()> {
    check_embedding("embedding", &body.embedding)?;
    match body.k {
        None => Ok(()),
        Some(k) if (1..=max_k).contains(&k) => Ok(()),
        Some(_) => Err(ApiError::invalid_field(
            "k",
            &format!("must be 1..={max_k}"),
        )),
    }
}

/// `POST /t/{tenant_id}/projects/{project_id}/search` (viewer): nearest chunks of one project
/// (the route taken is in the [`SEARCH_ROUTE_HEADER`] header).
pub async fn search_project(
    State(state): State<AppState>,
    request: TenantRequest,
    ApiPath((_, project)): ApiPath<(Uuid, Uuid)>,
    ApiJson(body): ApiJson<SearchBody>,
) -> ApiResult<Response> {
    let scope = request.project_scope::<Viewer>(ProjectId::new(project))?;
    check_search(&body, state.limits().max_k)?;
    let mut tx = state.tenancy().begin(&scope).await?;
    let (route, hits) = search_in(&state, &mut tx, body).await?;
    tx.commit().await?;
    Ok(search_response(route, hits))
}

/// `POST /t/{tenant_id}/search` (viewer): nearest chunks of every project of the tenant the
/// caller can read, merged into one global top-k (the route taken is in the
/// [`SEARCH_ROUTE_HEADER`] header).
pub async fn search_tenant(
    State(state): State<AppState>,
    request: TenantRequest,
    ApiJson(body): ApiJson<SearchBody>,
) -> ApiResult<Response> {
    check_search(&body, state.limits().max_k)?;
    let scope = request.readable_projects::<Viewer>();
    if scope.is_empty() {
        return Ok(search_response(Route::EmptyScope, Vec::new()));
    }
    let mut tx = state.tenancy().begin(&scope).await?;
    let (route, hits) = search_in(&state, &mut tx, body).await?;
    tx.commit().await?;
    Ok(search_response(route, hits))
}

// ---------------------------------------------------------------- queries, responses, assertions

/// Body of `POST .../queries`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateQuery {
    /// The question.
    pub query_text: String,
    /// Hits wanted, 1..=100 (default 10).
    pub top_k: Option<i32>,
}

/// `POST /t/{tenant_id}/projects/{project_id}/queries` (viewer).
pub async fn create_query(
    State(state): State<AppState>,
    request: TenantRequest,
    ApiPath((_, project)): ApiPath<(Uuid, Uuid)>,
    ApiJson(body): ApiJson<CreateQuery>,
) -> ApiResult<Response> {
    let scope = request.project_scope::<Viewer>(ProjectId::new(project))?;
    check_text("query_text", &body.query_text, MAX_LONG_TEXT)?;
    if let Some(top_k) = body.top_k {
        if !(1..=100).contains(&top_k) {
            return Err(ApiError::invalid_field("top_k", "must be 1..=100"));
        }
    }
    let mut tx = state.tenancy().begin(&scope).await?;
    let query = Queries::insert(
        &mut tx,
        NewQuery {
            id: None,
            query_text: body.query_text,
            top_k: body.top_k,
            created_at: None,
        },
    )
    .await?;
    tx.commit().await?;
    Ok(created(query))
}

/// `GET /t/{tenant_id}/projects/{project_id}/queries` (viewer).
pub async fn list_queries(
    State(state): State<AppState>,
    request: TenantRequest,
    ApiPath((_, project)): ApiPath<(Uuid, Uuid)>,
    ApiQuery(params): ApiQuery<PageParams>,
) -> ApiResult<Json<Page<Query>>> {
    let scope = request.project_scope::<Viewer>(ProjectId::new(project))?;
    let limit = params.limit(state.limits().max_page_size)?;
    let mut tx = state.tenancy().begin(&scope).await?;
    let rows = Queries::list(
        &mut tx,
        &QueryFilter::default(),
        QueryPage {
            after: params.after.map(|id| QueryCursor {
                project_id: project,
                id,
            }),
            limit,
        },
    )
    .await?;
    tx.commit().await?;
    Ok(Json(page(rows, limit, |q| q.id)))
}

/// `GET /t/{tenant_id}/projects/{project_id}/queries/{query_id}` (viewer).
pub async fn get_query(
    State(state): State<AppState>,
    request: TenantRequest,
    ApiPath((_, project, id)): ApiPath<(Uuid, Uuid, Uuid)>,
) -> ApiResult<Json<Query>> {
    let scope = request.project_scope::<Viewer>(ProjectId::new(project))?;
    let mut tx = state.tenancy().begin(&scope).await?;
    let query = Queries::get(&mut tx, id).await?;
    tx.commit().await?;
    query.map(Json).ok_or_else(ApiError::not_found)
}

/// Body of `POST .../queries/{query_id}/responses`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateResponse {
    /// The answer.
    pub answer_text: String,
    /// The model that produced it.
    pub model: String,
    /// Prompt tokens (>= 0).
    pub prompt_tokens: Option<i32>,
    /// Completion tokens (>= 0).
    pub completion_tokens: Option<i32>,
    /// Latency in milliseconds (>= 0).
    pub latency_ms: Option<i32>,
}

/// `POST /t/{tenant_id}/projects/{project_id}/queries/{query_id}/responses` (editor).
pub async fn create_response(
    State(state): State<AppState>,
    request: TenantRequest,
    ApiPath((_, project, query)): ApiPath<(Uuid, Uuid, Uuid)>,
    ApiJson(body): ApiJson<CreateResponse>,
) -> ApiResult<Response> {
    let scope = request.project_scope::<Editor>(ProjectId::new(project))?;
    check_text("answer_text", &body.answer_text, MAX_LONG_TEXT)?;
    check_text("model", &body.model, MAX_SHORT_TEXT)?;
    for (field, value) in [
        ("prompt_tokens", body.prompt_tokens),
        ("completion_tokens", body.completion_tokens),
        ("latency_ms", body.latency_ms),
    ] {
        if let Some(value) = value {
            check_non_negative(field, value)?;
        }
    }
    let mut tx = state.tenancy().begin(&scope).await?;
    if Queries::get(&mut tx, query).await?.is_none() {
        return Err(ApiError::not_found());
    }
    let response = Responses::insert(
        &mut tx,
        NewResponse {
            id: None,
            query_id: query,
            answer_text: body.answer_text,
            model: body.model,
            prompt_tokens: body.prompt_tokens,
            completion_tokens: body.completion_tokens,
            latency_ms: body.latency_ms,
            created_at: None,
        },
    )
    .await?;
    tx.commit().await?;
    Ok(created(response))
}

/// `GET /t/{tenant_id}/projects/{project_id}/queries/{query_id}/responses` (viewer).
pub async fn list_responses(
    State(state): State<AppState>,
    request: TenantRequest,
    ApiPath((_, project, query)): ApiPath<(Uuid, Uuid, Uuid)>,
    ApiQuery(params): ApiQuery<PageParams>,
) -> ApiResult<Json<Page<AnswerRow>>> {
    let scope = request.project_scope::<Viewer>(ProjectId::new(project))?;
    let limit = params.limit(state.limits().max_page_size)?;
    let mut tx = state.tenancy().begin(&scope).await?;
    if Queries::get(&mut tx, query).await?.is_none() {
        return Err(ApiError::not_found());
    }
    let rows = Responses::list(
        &mut tx,
        &ResponseFilter {
            query_id: Some(query),
            ..ResponseFilter::default()
        },
        ResponsePage {
            after: params.after.map(|id| tenancy_generated::ResponseCursor {
                project_id: project,
                id,
            }),
            limit,
        },
    )
    .await?;
    tx.commit().await?;
    Ok(Json(page(rows, limit, |r| r.id)))
}

/// Body of `POST .../responses/{response_id}/assertions`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateAssertion {
    /// The claim checked.
    pub claim: String,
    /// The chunk supporting it (of the same project).
    pub chunk_id: Option<Uuid>,
    /// Verdict (default `unverified`).
    pub verdict: Option<String>,
    /// Finite score.
    pub score: Option<f32>,
}

/// `POST /t/{tenant_id}/projects/{project_id}/responses/{response_id}/assertions` (editor).
pub async fn create_assertion(
    State(state): State<AppState>,
    request: TenantRequest,
    ApiPath((_, project, response)): ApiPath<(Uuid, Uuid, Uuid)>,
    ApiJson(body): ApiJson<CreateAssertion>,
) -> ApiResult<Response> {
    let scope = request.project_scope::<Editor>(ProjectId::new(project))?;
    check_text("claim", &body.claim, MAX_LONG_TEXT)?;
    if let Some(verdict) = &body.verdict {
        check_text("verdict", verdict, MAX_SHORT_TEXT)?;
    }
    if body.score.is_some_and(|s| !s.is_finite()) {
        return Err(ApiError::invalid_field("score", "must be finite"));
    }
    let mut tx = state.tenancy().begin(&scope).await?;
    if Responses::get(&mut tx, response).await?.is_none() {
        return Err(ApiError::not_found());
    }
    if let Some(chunk) = body.chunk_id {
        if Chunks::get(&mut tx, chunk).await?.is_none() {
            return Err(ApiError::invalid_field(
                "chunk_id",
                "no such chunk in this project",
            ));
        }
    }
    let assertion = Assertions::insert(
        &mut tx,
        NewAssertion {
            id: None,
            response_id: response,
            chunk_id: body.chunk_id,
            claim: body.claim,
            verdict: body.verdict,
            score: body.score,
            created_at: None,
        },
    )
    .await?;
    tx.commit().await?;
    Ok(created(assertion))
}

/// `GET /t/{tenant_id}/projects/{project_id}/responses/{response_id}/assertions` (viewer).
pub async fn list_assertions(
    State(state): State<AppState>,
    request: TenantRequest,
    ApiPath((_, project, response)): ApiPath<(Uuid, Uuid, Uuid)>,
    ApiQuery(params): ApiQuery<PageParams>,
) -> ApiResult<Json<Page<Assertion>>> {
    let scope = request.project_scope::<Viewer>(ProjectId::new(project))?;
    let limit = params.limit(state.limits().max_page_size)?;
    let mut tx = state.tenancy().begin(&scope).await?;
    if Responses::get(&mut tx, response).await?.is_none() {
        return Err(ApiError::not_found());
    }
    let rows = Assertions::list(
        &mut tx,
        &AssertionFilter {
            response_id: Some(response),
            ..AssertionFilter::default()
        },
        AssertionPage {
            after: params.after.map(|id| tenancy_generated::AssertionCursor {
                project_id: project,
                id,
            }),
            limit,
        },
    )
    .await?;
    tx.commit().await?;
    Ok(Json(page(rows, limit, |a| a.id)))
}

// ---------------------------------------------------------------- membership administration

/// Body of `POST .../members`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AddMember {
    /// The user to add.
    pub user_id: Uuid,
    /// `viewer`, `editor`, `admin` or `owner`.
    pub role: String,
}

/// Body of `PUT .../members/{user_id}`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ChangeRole {
    /// The new role.
    pub role: String,
}

fn parse_role(name: &str) -> ApiResult<ProjectRole> {
    ProjectRole::parse(name)
        .ok_or_else(|| ApiError::invalid_field("role", "must be viewer, editor, admin or owner"))
}

fn rank(role: ProjectRole) -> usize {
    ProjectRole::ALL
        .iter()
        .position(|r| *r == role)
        .unwrap_or(0)
}

/// The caller may only grant, change or remove roles up to their own: an admin cannot make or
/// unmake owners.
fn check_within_own_role(
    request: &TenantRequest,
    project: Uuid,
    role: ProjectRole,
) -> ApiResult<()> {
    let own = request
        .context()
        .memberships()
        .find(|(p, _)| p.as_uuid() == project)
        .and_then(|(_, r)| ProjectRole::parse(r))
        .ok_or_else(ApiError::not_found)?;
    if rank(role) > rank(own) {
        request.record_refusal(RefusalReason::RoleTooLow);
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            "you cannot grant or change a role above your own",
        ));
    }
    Ok(())
}

/// Serialises membership changes of one project (transaction-scoped advisory lock), so two
/// admins cannot each demote one of the last two owners.
async fn lock_project_memberships<S: Scope>(tx: &mut ScopedTx<S>, project: Uuid) -> ApiResult<()> {
    sqlx::query("SELECT pg_advisory_xact_lock(hashtextextended($1::text, 0))")
        .bind(format!("memberships:{project}"))
        .execute(tx.connection())
        .await
        .map_err(tenancy_runtime::Error::from)?;
    Ok(())
}

async fn owner_count<S: Scope + tenancy_runtime::ReadScope<Viewer>>(
    tx: &mut ScopedTx<S>,
    project: Uuid,
) -> ApiResult<i64> {
    Ok(UserProjectRoles::count(
        tx,
        &UserProjectRoleFilter {
            project_id: Some(project),
            role: Some(ProjectRole::Owner),
            ..UserProjectRoleFilter::default()
        },
    )
    .await?)
}

/// Appends one row to `tenancy.audit_log` in the same transaction (actor = the caller, as
/// the table's insert policy demands; subject = ids and role names only).
async fn audit<S: Scope>(
    tx: &mut ScopedTx<S>,
    action: &str,
    subject: serde_json::Value,
) -> ApiResult<()> {
    let tenant = tx.scope().tenant_id().as_uuid();
    let actor = tx.scope().user_id().to_string();
    let project = tx.scope().project_ids().first().map(|p| p.as_uuid());
    sqlx::query(
        "INSERT INTO tenancy.audit_log (tenant_id, project_id, actor, action, subject) \
         VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(tenant)
    .bind(project)
    .bind(actor)
    .bind(action)
    .bind(subject)
    .execute(tx.connection())
    .await
    .map_err(tenancy_runtime::Error::from)?;
    Ok(())
}

/// `GET /t/{tenant_id}/projects/{project_id}/members` (admin).
pub async fn list_members(
    State(state): State<AppState>,
    request: TenantRequest,
    ApiPath((_, project)): ApiPath<(Uuid, Uuid)>,
    ApiQuery(params): ApiQuery<PageParams>,
) -> ApiResult<Json<Page<UserProjectRole>>> {
    let scope = request.project_scope::<Admin>(ProjectId::new(project))?;
    let limit = params.limit(state.limits().max_page_size)?;
    let mut tx = state.tenancy().begin(&scope).await?;
    let rows = UserProjectRoles::list(
        &mut tx,
        &UserProjectRoleFilter::default(),
        UserProjectRolePage {
            after: params
                .after
                .map(|user_id| tenancy_generated::UserProjectRoleCursor {
                    project_id: project,
                    user_id,
                }),
            limit,
        },
    )
    .await?;
    tx.commit().await?;
    Ok(Json(page(rows, limit, |m| m.user_id)))
}

/// `POST /t/{tenant_id}/projects/{project_id}/members` (admin; owners only for `owner`).
pub async fn add_member(
    State(state): State<AppState>,
    request: TenantRequest,
    ApiPath((_, project)): ApiPath<(Uuid, Uuid)>,
    ApiJson(body): ApiJson<AddMember>,
) -> ApiResult<Response> {
    let scope = request.project_scope::<Admin>(ProjectId::new(project))?;
    let role = parse_role(&body.role)?;
    check_within_own_role(&request, project, role)?;
    let mut tx = state.tenancy().begin(&scope).await?;
    lock_project_memberships(&mut tx, project).await?;
    let member = UserProjectRoles::insert(
        &mut tx,
        NewUserProjectRole {
            user_id: body.user_id,
            role,
        },
    )
    .await?;
    audit(
        &mut tx,
        "member.add",
        serde_json::json!({ "user_id": body.user_id, "role": role.as_str() }),
    )
    .await?;
    tx.commit().await?;
    Ok(created(member))
}

/// `PUT /t/{tenant_id}/projects/{project_id}/members/{user_id}` (admin): never demotes the
/// last owner.
pub async fn change_role(
    State(state): State<AppState>,
    request: TenantRequest,
    ApiPath((_, project, user)): ApiPath<(Uuid, Uuid, Uuid)>,
    ApiJson(body): ApiJson<ChangeRole>,
) -> ApiResult<Json<UserProjectRole>> {
    let scope = request.project_scope::<Admin>(ProjectId::new(project))?;
    let role = parse_role(&body.role)?;
    check_within_own_role(&request, project, role)?;
    let mut tx = state.tenancy().begin(&scope).await?;
    lock_project_memberships(&mut tx, project).await?;
    let current = UserProjectRoles::get(&mut tx, user)
        .await?
        .ok_or_else(ApiError::not_found)?;
    let previous = parse_role(&current.role)?;
    check_within_own_role(&request, project, previous)?;
    if previous == ProjectRole::Owner
        && role != ProjectRole::Owner
        && owner_count(&mut tx, project).await? <= 1
    {
        return Err(last_owner());
    }
    let member = UserProjectRoles::update(&mut tx, user, UserProjectRolePatch { role: Some(role) })
        .await?
        .ok_or_else(ApiError::not_found)?;
    audit(
        &mut tx,
        "member.set_role",
        serde_json::json!({
            "user_id": user, "role": role.as_str(), "previous_role": previous.as_str()
        }),
    )
    .await?;
    tx.commit().await?;
    Ok(Json(member))
}

/// `DELETE /t/{tenant_id}/projects/{project_id}/members/{user_id}` (admin): never removes the
/// last owner.
pub async fn remove_member(
    State(state): State<AppState>,
    request: TenantRequest,
    ApiPath((_, project, user)): ApiPath<(Uuid, Uuid, Uuid)>,
) -> ApiResult<StatusCode> {
    let scope = request.project_scope::<Admin>(ProjectId::new(project))?;
    let mut tx = state.tenancy().begin(&scope).await?;
    lock_project_memberships(&mut tx, project).await?;
    let current = UserProjectRoles::get(&mut tx, user)
        .await?
        .ok_or_else(ApiError::not_found)?;
    let previous = parse_role(&current.role)?;
    check_within_own_role(&request, project, previous)?;
    if previous == ProjectRole::Owner && owner_count(&mut tx, project).await? <= 1 {
        return Err(last_owner());
    }
    if !UserProjectRoles::delete(&mut tx, user).await? {
        return Err(ApiError::not_found());
    }
    audit(
        &mut tx,
        "member.remove",
        serde_json::json!({ "user_id": user, "previous_role": previous.as_str() }),
    )
    .await?;
    tx.commit().await?;
    Ok(StatusCode::NO_CONTENT)
}

fn last_owner() -> ApiError {
    ApiError::new(
        StatusCode::CONFLICT,
        "last_owner",
        "the project's last owner cannot be removed or demoted; grant owner to someone else first",
    )
}

// ---------------------------------------------------------------- usage

/// `GET .../usage`: the project's rows per table.
#[derive(Debug, Serialize, ToSchema)]
pub struct ProjectUsage {
    /// Documents.
    pub documents: i64,
    /// Chunks.
    pub chunks: i64,
    /// Queries asked.
    pub queries: i64,
    /// Responses generated.
    pub responses: i64,
    /// Assertions checked.
    pub assertions: i64,
    /// Members (any role).
    pub members: i64,
}

/// `GET /t/{tenant_id}/projects/{project_id}/usage` (admin): the project's rows per table,
/// counted by the generated repositories in one scoped transaction (one snapshot per
/// statement; operators get bytes, vectors and tokens of every tenant from `tenancy usage`).
pub async fn project_usage(
    State(state): State<AppState>,
    request: TenantRequest,
    ApiPath((_, project)): ApiPath<(Uuid, Uuid)>,
) -> ApiResult<Json<ProjectUsage>> {
    let scope = request.project_scope::<Admin>(ProjectId::new(project))?;
    let mut tx = state.tenancy().begin(&scope).await?;
    let usage = ProjectUsage {
        documents: Documents::count(&mut tx, &DocumentFilter::default()).await?,
        chunks: Chunks::count(&mut tx, &ChunkFilter::default()).await?,
        queries: Queries::count(&mut tx, &QueryFilter::default()).await?,
        responses: Responses::count(&mut tx, &ResponseFilter::default()).await?,
        assertions: Assertions::count(&mut tx, &AssertionFilter::default()).await?,
        members: UserProjectRoles::count(&mut tx, &UserProjectRoleFilter::default()).await?,
    };
    tx.commit().await?;
    Ok(Json(usage))
}
