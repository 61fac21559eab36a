// Changing a role needs admin; an editor scope does not compile.
use tenancy_generated::roles::Editor;
use tenancy_generated::{ProjectRole, UserProjectRolePatch, UserProjectRoles};
use tenancy_runtime::{ProjectScope, ScopedTx};
use uuid::Uuid;

async fn misuse(tx: &mut ScopedTx<ProjectScope<Editor>>, me: Uuid) {
    let patch = UserProjectRolePatch {
        role: Some(ProjectRole::Owner),
        ..UserProjectRolePatch::default()
    };
    let _ = UserProjectRoles::update(tx, me, patch).await;
}

fn main() {
    let _ = misuse;
}
