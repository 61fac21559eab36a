// Issue 24: attribute errors name the attribute key, at the key.
use tenancy_macros::TenantScoped;

#[derive(TenantScoped)]
#[tenancy(table = "notes", scoped, scoped, primary_key(id))]
#[tenancy(select = tenancy_generated::roles::Viewer)]
pub struct Twice {
    pub id: uuid::Uuid,
}

#[derive(TenantScoped)]
#[tenancy(table = "notes", scoped, primary_key, select = tenancy_generated::roles::Viewer)]
pub struct NoColumns {
    pub id: uuid::Uuid,
}

#[derive(TenantScoped)]
#[tenancy(table, scoped, primary_key(id), select = tenancy_generated::roles::Viewer)]
pub struct NoTable {
    pub id: uuid::Uuid,
}

#[derive(TenantScoped)]
#[tenancy(table = "notes", scoped, primary_key(id), select = tenancy_generated::roles::Viewer)]
pub struct NoDefault {
    pub id: uuid::Uuid,
    #[tenancy(default)]
    pub body: String,
}

fn main() {}
