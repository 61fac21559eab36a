// Updating a document needs editor; a viewer scope does not compile.
use tenancy_generated::roles::Viewer;
use tenancy_generated::{DocumentPatch, Documents};
use tenancy_runtime::{ProjectScope, ScopedTx};
use uuid::Uuid;

async fn misuse(tx: &mut ScopedTx<ProjectScope<Viewer>>) {
    let _ = Documents::update(tx, Uuid::nil(), DocumentPatch::default()).await;
}

fn main() {
    let _ = misuse;
}
