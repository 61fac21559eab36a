// The generator adds tenant_id to scoped tables: declaring it is an error.
use tenancy_macros::TenantScoped;

#[derive(TenantScoped)]
#[tenancy(table = "notes", scoped, primary_key(id), select = tenancy_generated::roles::Viewer)]
pub struct Note {
    pub id: uuid::Uuid,
    pub tenant_id: uuid::Uuid,
    pub body: String,
}

fn main() {}
