// Inserting a document needs editor; a viewer scope does not compile.
use tenancy_generated::roles::Viewer;
use tenancy_generated::{Documents, NewDocument};
use tenancy_runtime::{ProjectScope, ScopedTx};
// (no `uuid::Uuid`: the stamped columns are written by the database)

async fn misuse(tx: &mut ScopedTx<ProjectScope<Viewer>>) {
    let new = NewDocument {
        id: None,
        title: "t".to_owned(),
        source_uri: None,
        mime_type: None,
        content_hash: "h".to_owned(),
        metadata: None,
    };
    let _ = Documents::insert(tx, new).await;
}

fn main() {
    let _ = misuse;
}
