// A RequestContext cannot be built by hand: its fields are private.
use tenancy_runtime::{RequestContext, TenantId, UserId};
use uuid::Uuid;

fn main() {
    let _ctx = RequestContext {
        user: UserId::new(Uuid::nil()),
        tenant: TenantId::new(Uuid::nil()),
        memberships: Vec::new(),
    };
}
