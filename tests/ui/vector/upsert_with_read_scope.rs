// Writing chunks needs editor: a viewer scope does not compile.
use tenancy_generated::roles::{Editor, Viewer};
use tenancy_runtime::vector::{ChunkEmbedding, VectorConfig, VectorGateway};
use tenancy_runtime::{ProjectScope, ScopedTx};

async fn misuse(tx: &mut ScopedTx<ProjectScope<Viewer>>, rows: Vec<ChunkEmbedding>) {
    let gateway = VectorGateway::<Viewer, Editor>::new(VectorConfig::default());
    let _ = gateway.upsert(tx, &rows).await;
}

fn main() {
    let _ = misuse;
}
