// Deleting chunks needs editor: a viewer scope does not compile.
use tenancy_generated::roles::{Editor, Viewer};
use tenancy_runtime::vector::{VectorConfig, VectorGateway};
use tenancy_runtime::{ProjectScope, ScopedTx};

async fn misuse(tx: &mut ScopedTx<ProjectScope<Viewer>>) {
    let gateway = VectorGateway::<Viewer, Editor>::new(VectorConfig::default());
    let _ = gateway.delete(tx, &[uuid::Uuid::nil()]).await;
}

fn main() {
    let _ = misuse;
}
