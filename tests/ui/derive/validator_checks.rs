// Problems the DSL validator finds in a derived table, reported at the Rust tokens: a
// reserved SQL word as a column name, a default that does not fit the column, a GIN index
// on a text column.
use tenancy_macros::TenantScoped;

#[derive(TenantScoped)]
#[tenancy(table = "notes", scoped, primary_key(id), gin_index(body))]
#[tenancy(select = tenancy_generated::roles::Viewer)]
pub struct Note {
    pub id: uuid::Uuid,
    pub user: uuid::Uuid,
    #[tenancy(default = "now()")]
    pub body: String,
}

fn main() {}
