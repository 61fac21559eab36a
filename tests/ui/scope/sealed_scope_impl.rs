// Scope is sealed: an application type cannot pose as a scope.
use tenancy_runtime::{ProjectId, Scope, TenantId, UserId};
use uuid::Uuid;

#[derive(Clone)]
struct ForgedScope;

impl Scope for ForgedScope {
    fn tenant_id(&self) -> TenantId {
        TenantId::new(Uuid::nil())
    }
    fn user_id(&self) -> UserId {
        UserId::new(Uuid::nil())
    }
    fn project_ids(&self) -> Vec<ProjectId> {
        Vec::new()
    }
}

fn main() {
    let _ = ForgedScope;
}
