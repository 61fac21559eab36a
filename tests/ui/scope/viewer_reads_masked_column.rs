// Read rights per column: `source_uri` is masked from viewers, so the row `get` returns has no
// such field; a viewer's scope cannot name it.
use tenancy_generated::roles::Viewer;
use tenancy_generated::Documents;
use tenancy_runtime::{ProjectScope, ScopedTx};
use uuid::Uuid;

async fn misuse(tx: &mut ScopedTx<ProjectScope<Viewer>>) {
    if let Ok(Some(doc)) = Documents::get(tx, Uuid::nil()).await {
        let _source: Option<String> = doc.source_uri;
    }
}

fn main() {
    let _ = misuse;
}
