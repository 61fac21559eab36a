// Setting vectors of chunks needs its update rule's role (editor): a viewer scope does not
// compile.
use tenancy_generated::roles::Viewer;
use tenancy_generated::Chunks;
use tenancy_runtime::vector::{VectorConfig, VectorGateway, VectorUpdate};
use tenancy_runtime::{ProjectScope, ScopedTx};

async fn misuse(tx: &mut ScopedTx<ProjectScope<Viewer>>, rows: Vec<VectorUpdate<uuid::Uuid>>) {
    let gateway = VectorGateway::new(Chunks::EMBEDDING_VECTORS, VectorConfig::default());
    let _ = gateway.set_embeddings(tx, &rows).await;
}

fn main() {
    let _ = misuse;
}
