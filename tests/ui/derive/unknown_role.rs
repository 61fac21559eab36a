// A rule names a role marker that does not exist: rustc's own "cannot find type" error,
// pointing at the misspelled role.
use tenancy_macros::TenantScoped;

mod roles {
    tenancy_runtime::roles! { Viewer = "viewer", Editor = "editor" }
}

#[derive(TenantScoped)]
#[tenancy(table = "notes", scoped, primary_key(id), roles = crate::roles)]
#[tenancy(select = Viewer, insert = Editr)]
pub struct Note {
    #[tenancy(default = "gen_random_uuid()")]
    pub id: uuid::Uuid,
    pub body: String,
}

fn main() {}
