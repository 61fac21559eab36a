// Deleting a document needs admin; an editor scope does not compile.
use tenancy_generated::roles::Editor;
use tenancy_generated::Documents;
use tenancy_runtime::{ProjectScope, ScopedTx};
use uuid::Uuid;

async fn misuse(tx: &mut ScopedTx<ProjectScope<Editor>>) {
    let _ = Documents::delete(tx, Uuid::nil()).await;
}

fn main() {
    let _ = misuse;
}
