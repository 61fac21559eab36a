// A RequestContext has no public constructor; only Tenancy::authorize builds one.
use tenancy_runtime::{RequestContext, TenantId, UserId};
use uuid::Uuid;

fn main() {
    let _ctx = RequestContext::from_memberships(
        UserId::new(Uuid::nil()),
        TenantId::new(Uuid::nil()),
        Vec::new(),
    );
}
