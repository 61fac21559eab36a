// Deleting a chunk needs editor; a viewer scope does not compile.
use tenancy_generated::roles::Viewer;
use tenancy_generated::Chunks;
use tenancy_runtime::{ProjectScope, ScopedTx};
use uuid::Uuid;

async fn misuse(tx: &mut ScopedTx<ProjectScope<Viewer>>) {
    let _ = Chunks::delete(tx, Uuid::nil()).await;
}

fn main() {
    let _ = misuse;
}
