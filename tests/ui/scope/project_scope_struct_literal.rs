// A ProjectScope cannot be built by hand: only require::<R>() on a ProjectAccess makes one.
use std::marker::PhantomData;

use tenancy_generated::roles::Editor;
use tenancy_runtime::{ProjectScope, TenantId, UserId};
use uuid::Uuid;

#[allow(unreachable_code)] // `todo!()` stands in for a value of a private type
fn main() {
    let _scope: ProjectScope<Editor> = ProjectScope {
        tenant: TenantId::new(Uuid::nil()),
        user: UserId::new(Uuid::nil()),
        project: todo!(),
        role: PhantomData,
    };
}
