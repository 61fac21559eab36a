// The correct shapes compile: search in one or several projects with viewer, write with editor.
use tenancy_generated::roles::{Editor, Viewer};
use tenancy_runtime::vector::{ChunkEmbedding, SearchRequest, VectorConfig, VectorGateway};
use tenancy_runtime::{Error, ProjectScope, ProjectsScope, ScopedTx};

async fn uses(
    one: &mut ScopedTx<ProjectScope<Editor>>,
    several: &mut ScopedTx<ProjectsScope<Viewer>>,
    request: SearchRequest,
    rows: Vec<ChunkEmbedding>,
) -> Result<(), Error> {
    let gateway = VectorGateway::<Viewer, Editor>::new(VectorConfig::default());
    gateway.upsert(one, &rows).await?;
    gateway.delete(one, &[uuid::Uuid::nil()]).await?;
    let mine = gateway.search(one, &request).await?;
    let merged = gateway.search(several, &request).await?;
    let _ = (mine.hits, merged.scope);
    Ok(())
}

fn main() {
    let _ = uses;
}
