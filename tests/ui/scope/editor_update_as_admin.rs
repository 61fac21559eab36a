// Column rights: the admin patch (every column) needs an admin scope; an editor scope does
// not compile.
use tenancy_generated::roles::Editor;
use tenancy_generated::{DocumentAdminPatch, Documents};
use tenancy_runtime::{ProjectScope, ScopedTx};
use uuid::Uuid;

async fn misuse(tx: &mut ScopedTx<ProjectScope<Editor>>) {
    let _ = Documents::update_as_admin(tx, Uuid::nil(), DocumentAdminPatch::default()).await;
}

fn main() {
    let _ = misuse;
}
