// A several-project scope reads only: it cannot insert, even with editor in every project.
use tenancy_generated::roles::Editor;
use tenancy_generated::{Documents, NewDocument};
use tenancy_runtime::{ProjectsScope, ScopedTx};
// (no `uuid::Uuid`: the stamped columns are written by the database)

async fn misuse(tx: &mut ScopedTx<ProjectsScope<Editor>>) {
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
