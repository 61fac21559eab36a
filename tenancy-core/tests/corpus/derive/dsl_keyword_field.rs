// expect: rejected: column name `allow` is a keyword of the policy language
// Issue 24: DSL keywords as field names.
#[tenancy(table = "grants", scoped, primary_key(id), select = Viewer)]
pub struct Grant {
    pub id: uuid::Uuid,
    pub allow: bool,
}
