// A scoped table without a primary key.
use tenancy_macros::TenantScoped;

#[derive(TenantScoped)]
#[tenancy(table = "notes", scoped, select = tenancy_generated::roles::Viewer)]
pub struct Note {
    pub id: uuid::Uuid,
    pub body: String,
}

fn main() {}
