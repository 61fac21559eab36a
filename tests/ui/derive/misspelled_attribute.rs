// `tabel` instead of `table`.
use tenancy_macros::TenantScoped;

#[derive(TenantScoped)]
#[tenancy(tabel = "notes", scoped, primary_key(id), select = tenancy_generated::roles::Viewer)]
pub struct Note {
    pub id: uuid::Uuid,
    pub body: String,
}

fn main() {}
