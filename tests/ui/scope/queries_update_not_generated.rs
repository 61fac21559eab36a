// queries has no update rule, so its repository has no update method at all.
use tenancy_generated::roles::Owner;
use tenancy_generated::Queries;
use tenancy_runtime::{ProjectScope, ScopedTx};
use uuid::Uuid;

async fn misuse(tx: &mut ScopedTx<ProjectScope<Owner>>) {
    let _ = Queries::update(tx, Uuid::nil()).await;
}

fn main() {
    let _ = misuse;
}
