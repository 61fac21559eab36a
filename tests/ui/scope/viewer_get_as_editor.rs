// Read rights per column: the editor's view of a document (with the masked `source_uri`) needs
// an editor scope; a viewer scope does not compile.
use tenancy_generated::roles::Viewer;
use tenancy_generated::Documents;
use tenancy_runtime::{ProjectScope, ScopedTx};
use uuid::Uuid;

async fn misuse(tx: &mut ScopedTx<ProjectScope<Viewer>>) {
    let _ = Documents::get_as_editor(tx, Uuid::nil()).await;
}

fn main() {
    let _ = misuse;
}
