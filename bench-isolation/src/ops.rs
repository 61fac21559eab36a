//! The hot operations, each in two variants sending the same SQL text with the same binds:
//! `layer` (application role: `Tenancy::begin` + generated repository + row-level security) and
//! `plain` (superuser, no row-level security: `BEGIN` + the statement + `COMMIT`).

use anyhow::{bail, Result};
use sqlx::PgPool;
use tenancy_generated::roles::Editor;
use tenancy_generated::{Chunk, ChunkCursor, ChunkFilter, ChunkPage, ChunkPatch, Chunks, NewChunk};
use tenancy_runtime::{ProjectScope, Tenancy};
use uuid::Uuid;

/// One page of chunks with their document's title: the join of the hot path (not a generated
/// method; the application writes it with the scope's explicit predicates).
pub const JOIN_SQL: &str = "SELECT c.id, c.ordinal, c.token_count, d.title \
     FROM chunks AS c JOIN documents AS d \
       ON d.tenant_id = c.tenant_id AND d.project_id = c.project_id AND d.id = c.document_id \
     WHERE c.tenant_id = $1 AND c.project_id = ANY($2) AND (c.project_id, c.id) > ($3, $4) \
     ORDER BY c.project_id, c.id LIMIT 100";

/// The 10 nearest chunks of one project (L2), exact: the project's rows through the primary
/// key, then a top-N sort (no vector index in the bench database).
pub const TOP_K_SQL: &str = "SELECT id FROM chunks \
     WHERE tenant_id = $1 AND project_id = $2 AND embedding IS NOT NULL \
     ORDER BY embedding <-> $3 LIMIT 10";

/// The plain variant's batch inserts use ordinals this far above the layer variant's.
const PLAIN_ORDINAL_OFFSET: i32 = 500_000_000;

/// Rows per batch insert.
pub const BATCH: usize = 100;

/// The hot operations.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    /// `Chunks::get` by key.
    Get,
    /// `Chunks::list`, one page of 100 after a random cursor.
    List,
    /// `Chunks::count` of the whole project.
    Count,
    /// [`JOIN_SQL`]: a page of 100 chunks with their documents.
    Join,
    /// `Chunks::insert_many` of [`BATCH`] rows.
    InsertBatch,
    /// `Chunks::update` of one row's content.
    Update,
    /// `Chunks::delete` of one row (inserted earlier by the same variant).
    Delete,
    /// [`TOP_K_SQL`]: the 10 nearest chunks of the project to a vector (exact search, as the
    /// vector gateway runs it for scopes below its index threshold). Not in [`Op::ALL`]: only
    /// the peer section fills embeddings.
    TopK,
}

impl Op {
    /// Every operation, in the order the report lists them.
    pub const ALL: [Op; 7] = [
        Op::Get,
        Op::List,
        Op::Count,
        Op::Join,
        Op::InsertBatch,
        Op::Update,
        Op::Delete,
    ];

    /// The report's name.
    pub fn name(self) -> &'static str {
        match self {
            Op::Get => "get by key",
            Op::List => "list a page (100)",
            Op::Count => "count (whole project)",
            Op::Join => "join chunks+documents (100)",
            Op::InsertBatch => "batch insert (100)",
            Op::Update => "update",
            Op::Delete => "delete",
            Op::TopK => "vector top-k (10, exact)",
        }
    }
}

/// One measured project: its scope and a sample of its keys.
pub struct Target {
    /// The report's label.
    pub label: String,
    /// The tenant.
    pub tenant: Uuid,
    /// The project.
    pub project: Uuid,
    /// The user (editor of every project of the tenant).
    pub user: Uuid,
    /// Rows of the project's chunks (at data generation).
    pub chunk_rows: i64,
    /// The scope the layer variant runs with (editor in the project).
    pub scope: ProjectScope<Editor>,
    /// Every chunk id of the project, sorted.
    pub chunk_ids: Vec<Uuid>,
    /// Every document id of the project.
    pub document_ids: Vec<Uuid>,
}

/// What one iteration of an operation works on; both variants get the same input.
pub enum Input {
    /// A key.
    Key(Uuid),
    /// Nothing.
    None,
    /// Rows to insert: document, first ordinal.
    Batch(Uuid, i32),
    /// A key and the new content.
    Update(Uuid, String),
    /// A query vector.
    Vector(pgvector::Vector),
}

/// The two pools and the rows each variant inserted (deleted later by the same variant).
pub struct Runner {
    /// Runtime over the application role's pool.
    pub tenancy: Tenancy,
    /// The superuser's pool.
    pub admin: PgPool,
    /// Ids the layer variant inserted and has not deleted yet.
    pub layer_inserted: Vec<Uuid>,
    /// Ids the plain variant inserted and has not deleted yet.
    pub plain_inserted: Vec<Uuid>,
}

fn batch_rows(document: Uuid, first_ordinal: i32) -> Vec<NewChunk> {
    (0..BATCH as i32)
        .map(|k| NewChunk {
            id: None,
            document_id: document,
            ordinal: first_ordinal + k,
            content: format!("bench chunk {}", first_ordinal + k),
            token_count: 100,
            embedding: None,
            created_at: None,
        })
        .collect()
}

fn key(input: &Input) -> Result<Uuid> {
    match input {
        Input::Key(id) | Input::Update(id, _) => Ok(*id),
        _ => bail!("this operation needs a key"),
    }
}

impl Runner {
    /// Deletes (untimed, as the superuser) the rows both variants inserted and did not delete,
    /// so every iteration sees the dataset it was generated with instead of a project that
    /// grows by 200 rows per iteration.
    pub async fn discard_inserted(&mut self, target: &Target) -> Result<()> {
        let ids: Vec<Uuid> = self
            .layer_inserted
            .drain(..)
            .chain(self.plain_inserted.drain(..))
            .collect();
        if !ids.is_empty() {
            sqlx::query(
                "DELETE FROM chunks WHERE tenant_id = $1 AND project_id = $2 AND id = ANY($3)",
            )
            .bind(target.tenant)
            .bind(target.project)
            .bind(ids)
            .execute(&self.admin)
            .await?;
        }
        Ok(())
    }

    /// Runs `op` through the full layer; returns the number of rows it saw or changed.
    pub async fn layer(&mut self, target: &Target, op: Op, input: &Input) -> Result<u64> {
        let mut tx = self.tenancy.begin(&target.scope).await?;
        let rows = match op {
            Op::Get => u64::from(Chunks::get(&mut tx, key(input)?).await?.is_some()),
            Op::List => {
                let page = ChunkPage {
                    after: Some(ChunkCursor {
                        project_id: target.project,
                        id: key(input)?,
                    }),
                    limit: 100,
                };
                Chunks::list(&mut tx, &ChunkFilter::default(), page)
                    .await?
                    .len() as u64
            }
            Op::Count => Chunks::count(&mut tx, &ChunkFilter::default()).await? as u64,
            Op::Join => {
                let rows: Vec<(Uuid, i32, i32, String)> = sqlx::query_as(JOIN_SQL)
                    .bind(target.tenant)
                    .bind(vec![target.project])
                    .bind(target.project)
                    .bind(key(input)?)
                    .fetch_all(tx.connection())
                    .await?;
                rows.len() as u64
            }
            Op::InsertBatch => {
                let Input::Batch(document, ordinal) = input else {
                    bail!("batch insert needs a batch")
                };
                let inserted =
                    Chunks::insert_many(&mut tx, batch_rows(*document, *ordinal)).await?;
                self.layer_inserted.extend(inserted.iter().map(|c| c.id));
                inserted.len() as u64
            }
            Op::Update => {
                let Input::Update(id, content) = input else {
                    bail!("update needs a key and content")
                };
                let patch = ChunkPatch {
                    content: Some(content.clone()),
                    ..ChunkPatch::default()
                };
                u64::from(Chunks::update(&mut tx, *id, patch).await?.is_some())
            }
            Op::Delete => {
                let Some(id) = self.layer_inserted.pop() else {
                    bail!("nothing left to delete")
                };
                u64::from(Chunks::delete(&mut tx, id).await?)
            }
            Op::TopK => {
                let Input::Vector(vector) = input else {
                    bail!("top-k needs a vector")
                };
                let ids: Vec<Uuid> = sqlx::query_scalar(TOP_K_SQL)
                    .bind(target.tenant)
                    .bind(target.project)
                    .bind(vector)
                    .fetch_all(tx.connection())
                    .await?;
                ids.len() as u64
            }
        };
        tx.commit().await?;
        Ok(rows)
    }

    /// Runs the same SQL with the same binds as the superuser in a plain transaction.
    pub async fn plain(&mut self, target: &Target, op: Op, input: &Input) -> Result<u64> {
        let mut tx = self.admin.begin().await?;
        let rows = run_sql(
            &mut tx,
            target,
            op,
            input,
            &mut self.plain_inserted,
            PLAIN_ORDINAL_OFFSET,
        )
        .await?;
        tx.commit().await?;
        Ok(rows)
    }
}

/// Runs `op` on `conn` (inside a transaction the caller opened) with the SQL text and binds
/// the generated repository sends for a one-project scope (`Chunks::list` after a cursor in
/// the project sends `LIST_AFTER_IN_PROJECT_SQL`); inserted ids go to `inserted`, a delete
/// takes its row from there. Batch inserts use ordinals `ordinal_offset` above the input's,
/// so every variant inserts rows of its own. Returns the rows seen or changed.
pub async fn run_sql(
    conn: &mut sqlx::PgConnection,
    target: &Target,
    op: Op,
    input: &Input,
    inserted: &mut Vec<Uuid>,
    ordinal_offset: i32,
) -> Result<u64> {
    let projects = vec![target.project];
    let none_uuid: Option<Uuid> = None;
    let none_int: Option<i32> = None;
    let rows = match op {
        Op::Get => {
            let row: Option<Chunk> = sqlx::query_as(Chunks::GET_IN_PROJECT_SQL)
                .bind(target.tenant)
                .bind(target.project)
                .bind(key(input)?)
                .fetch_optional(&mut *conn)
                .await?;
            u64::from(row.is_some())
        }
        Op::List => {
            let rows: Vec<Chunk> = sqlx::query_as(Chunks::LIST_AFTER_IN_PROJECT_SQL)
                .bind(target.tenant)
                .bind(target.project)
                .bind(none_uuid)
                .bind(none_uuid)
                .bind(none_int)
                .bind(key(input)?)
                .bind(100_i64)
                .fetch_all(&mut *conn)
                .await?;
            rows.len() as u64
        }
        Op::Count => {
            let count: i64 = sqlx::query_scalar(Chunks::COUNT_SQL)
                .bind(target.tenant)
                .bind(projects)
                .bind(none_uuid)
                .bind(none_uuid)
                .bind(none_int)
                .fetch_one(&mut *conn)
                .await?;
            count as u64
        }
        Op::Join => {
            let rows: Vec<(Uuid, i32, i32, String)> = sqlx::query_as(JOIN_SQL)
                .bind(target.tenant)
                .bind(projects)
                .bind(target.project)
                .bind(key(input)?)
                .fetch_all(&mut *conn)
                .await?;
            rows.len() as u64
        }
        Op::InsertBatch => {
            let Input::Batch(document, ordinal) = input else {
                bail!("batch insert needs a batch")
            };
            let rows = batch_rows(*document, *ordinal + ordinal_offset);
            let new: Vec<Chunk> = sqlx::query_as(Chunks::INSERT_MANY_SQL)
                .bind(target.tenant)
                .bind(target.project)
                .bind(rows.iter().map(|r| r.id).collect::<Vec<_>>())
                .bind(rows.iter().map(|r| r.document_id).collect::<Vec<_>>())
                .bind(rows.iter().map(|r| r.ordinal).collect::<Vec<_>>())
                .bind(rows.iter().map(|r| r.content.clone()).collect::<Vec<_>>())
                .bind(rows.iter().map(|r| r.token_count).collect::<Vec<_>>())
                .bind(rows.iter().map(|r| r.embedding.clone()).collect::<Vec<_>>())
                .bind(rows.iter().map(|r| r.created_at).collect::<Vec<_>>())
                .fetch_all(&mut *conn)
                .await?;
            inserted.extend(new.iter().map(|c| c.id));
            new.len() as u64
        }
        Op::Update => {
            let Input::Update(id, content) = input else {
                bail!("update needs a key and content")
            };
            // The binds Chunks::update sends for a patch that sets only `content`.
            let none_vector: Option<pgvector::Vector> = None;
            let none_time: Option<chrono::DateTime<chrono::Utc>> = None;
            let row: Option<Chunk> = sqlx::query_as(Chunks::UPDATE_SQL)
                .bind(target.tenant)
                .bind(target.project)
                .bind(*id)
                .bind(false)
                .bind(none_uuid)
                .bind(false)
                .bind(none_int)
                .bind(true)
                .bind(Some(content.clone()))
                .bind(false)
                .bind(none_int)
                .bind(false)
                .bind(none_vector)
                .bind(false)
                .bind(none_time)
                .fetch_optional(&mut *conn)
                .await?;
            u64::from(row.is_some())
        }
        Op::Delete => {
            let Some(id) = inserted.pop() else {
                bail!("nothing left to delete")
            };
            let result = sqlx::query(Chunks::DELETE_SQL)
                .bind(target.tenant)
                .bind(target.project)
                .bind(id)
                .execute(&mut *conn)
                .await?;
            result.rows_affected()
        }
        Op::TopK => {
            let Input::Vector(vector) = input else {
                bail!("top-k needs a vector")
            };
            let ids: Vec<Uuid> = sqlx::query_scalar(TOP_K_SQL)
                .bind(target.tenant)
                .bind(target.project)
                .bind(vector)
                .fetch_all(&mut *conn)
                .await?;
            ids.len() as u64
        }
    };
    Ok(rows)
}

/// Get or update by key (the same SQL and binds as [`Runner::plain`]) on `pool`, in a
/// transaction opened by sending `begin` itself (`BEGIN; ...` as one simple query, with sqlx's
/// `begin_with`): the context statement of a given contract, sent by hand. Returns the rows
/// it saw or changed.
pub async fn by_hand(
    pool: &PgPool,
    begin: &str,
    target: &Target,
    op: Op,
    input: &Input,
) -> Result<u64> {
    if !matches!(op, Op::Get | Op::Update) {
        bail!("by_hand runs get and update, not {}", op.name());
    }
    let mut tx = pool
        .begin_with(sqlx::AssertSqlSafe(begin.to_owned()))
        .await?;
    let rows = run_sql(&mut tx, target, op, input, &mut Vec::new(), 0).await?;
    tx.commit().await?;
    Ok(rows)
}
