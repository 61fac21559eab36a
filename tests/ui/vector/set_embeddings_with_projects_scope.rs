// A several-project scope reads only: even an owner's cannot set vectors (no single target
// project).
use tenancy_generated::roles::Owner;
use tenancy_generated::Chunks;
use tenancy_runtime::vector::{VectorConfig, VectorGateway, VectorUpdate};
use tenancy_runtime::{ProjectsScope, ScopedTx};

async fn misuse(tx: &mut ScopedTx<ProjectsScope<Owner>>, rows: Vec<VectorUpdate<uuid::Uuid>>) {
    let gateway = VectorGateway::new(Chunks::EMBEDDING_VECTORS, VectorConfig::default());
    let _ = gateway.set_embeddings(tx, &rows).await;
}

fn main() {
    let _ = misuse;
}
