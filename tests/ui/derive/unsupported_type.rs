// A field type with no SQL mapping and no `sql_type`.
use tenancy_macros::TenantScoped;

#[derive(TenantScoped)]
#[tenancy(table = "notes", scoped, primary_key(id), select = tenancy_generated::roles::Viewer)]
pub struct Note {
    pub id: uuid::Uuid,
    pub tags: Vec<String>,
}

fn main() {}
