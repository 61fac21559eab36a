// The correct shapes compile: search in one or several projects with viewer (keys, or the
// generated rows), set vectors with editor.
use tenancy_generated::roles::{Editor, Viewer};
use tenancy_generated::{Chunk, Chunks};
use tenancy_runtime::vector::{SearchRequest, VectorConfig, VectorGateway, VectorUpdate};
use tenancy_runtime::{Error, ProjectScope, ProjectsScope, ScopedTx};

async fn uses(
    one: &mut ScopedTx<ProjectScope<Editor>>,
    several: &mut ScopedTx<ProjectsScope<Viewer>>,
    request: SearchRequest,
    rows: Vec<VectorUpdate<uuid::Uuid>>,
) -> Result<(), Error> {
    let gateway = VectorGateway::new(Chunks::EMBEDDING_VECTORS, VectorConfig::default());
    gateway.set_embeddings(one, &rows).await?;
    let mine = gateway.search(one, &request).await?;
    let merged = gateway.search_rows::<_, Chunk>(several, &request).await?;
    let _: Vec<uuid::Uuid> = mine.hits.into_iter().map(|hit| hit.key).collect();
    let _: Vec<String> = merged.hits.into_iter().map(|hit| hit.row.content).collect();
    Ok(())
}

fn main() {
    let _ = uses;
}
