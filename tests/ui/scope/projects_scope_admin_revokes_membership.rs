// Admin in several projects is still the wrong shape for membership administration:
// revoking needs a single-project admin scope.
use tenancy_generated::roles::Admin;
use tenancy_generated::UserProjectRoles;
use tenancy_runtime::{ProjectsScope, ScopedTx};
use uuid::Uuid;

async fn misuse(tx: &mut ScopedTx<ProjectsScope<Admin>>, someone: Uuid) {
    let _ = UserProjectRoles::delete(tx, someone).await;
}

fn main() {
    let _ = misuse;
}
