// Revoking a role needs admin; an editor scope does not compile.
use tenancy_generated::roles::Editor;
use tenancy_generated::UserProjectRoles;
use tenancy_runtime::{ProjectScope, ScopedTx};
use uuid::Uuid;

async fn misuse(tx: &mut ScopedTx<ProjectScope<Editor>>, someone: Uuid) {
    let _ = UserProjectRoles::delete(tx, someone).await;
}

fn main() {
    let _ = misuse;
}
