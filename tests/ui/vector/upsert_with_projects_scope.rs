// A several-project scope reads only: even an owner's cannot upsert (no single target project).
use tenancy_generated::roles::{Editor, Owner, Viewer};
use tenancy_runtime::vector::{ChunkEmbedding, VectorConfig, VectorGateway};
use tenancy_runtime::{ProjectsScope, ScopedTx};

async fn misuse(tx: &mut ScopedTx<ProjectsScope<Owner>>, rows: Vec<ChunkEmbedding>) {
    let gateway = VectorGateway::<Viewer, Editor>::new(VectorConfig::default());
    let _ = gateway.upsert(tx, &rows).await;
}

fn main() {
    let _ = misuse;
}
