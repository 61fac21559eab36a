// A ProjectScope cannot be built by hand: only require::<R>() on a ProjectAccess makes one.
use std::marker::PhantomData;

use tenancy_generated::roles::Editor;
use tenancy_runtime::{ProjectScope, TenantId, UserId};
use uuid::Uuid;

fn main() {
    let _scope: ProjectScope<Editor> = ProjectScope {
        tenant: TenantId::new(Uuid::nil()),
        user: UserId::new(Uuid::nil()),
        project: todo!(),
        role: PhantomData,
    };
}
