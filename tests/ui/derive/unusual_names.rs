// Issue 24: names the derive used to expand cleanly and `generate --rust` then rejected (or
// that panicked the macro) are refused at the field or attribute value, with the DSL's rule.
use tenancy_macros::TenantScoped;

// A raw identifier is its plain name: `r#type` is the column `type`, a Rust keyword.
#[derive(TenantScoped)]
#[tenancy(table = "tags", scoped, primary_key(id), select = tenancy_generated::roles::Viewer)]
pub struct Tag {
    pub id: uuid::Uuid,
    pub r#type: String,
}

// Non-ASCII field names.
#[derive(TenantScoped)]
#[tenancy(table = "cafes", scoped, primary_key(id), select = tenancy_generated::roles::Viewer)]
pub struct Cafe {
    pub id: uuid::Uuid,
    pub café: String,
}

// A keyword of the policy language as a field name.
#[derive(TenantScoped)]
#[tenancy(table = "grants", scoped, primary_key(id), select = tenancy_generated::roles::Viewer)]
pub struct Grant {
    pub id: uuid::Uuid,
    pub allow: bool,
}

// SQL reserved words and Rust path keywords as table names.
#[derive(TenantScoped)]
#[tenancy(table = "order", scoped, primary_key(id), select = tenancy_generated::roles::Viewer)]
pub struct Order {
    pub id: uuid::Uuid,
}

#[derive(TenantScoped)]
#[tenancy(table = "self", scoped, primary_key(id), select = tenancy_generated::roles::Viewer)]
pub struct Myself {
    pub id: uuid::Uuid,
}

fn main() {}
