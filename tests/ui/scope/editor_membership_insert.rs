// Granting a role needs admin; an editor scope does not compile.
use tenancy_generated::roles::Editor;
use tenancy_generated::{NewUserProjectRole, ProjectRole, UserProjectRoles};
use tenancy_runtime::{ProjectScope, ScopedTx};
use uuid::Uuid;

async fn misuse(tx: &mut ScopedTx<ProjectScope<Editor>>) {
    let grant = NewUserProjectRole {
        user_id: Uuid::nil(),
        role: ProjectRole::Owner,
    };
    let _ = UserProjectRoles::insert(tx, grant).await;
}

fn main() {
    let _ = misuse;
}
