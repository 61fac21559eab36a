// expect: rejected: column name `type` cannot name generated Rust code
// A raw field of a keyword is the keyword.
#[tenancy(table = "tags", scoped, primary_key(id), select = Viewer)]
pub struct Tag {
    pub id: uuid::Uuid,
    pub r#type: String,
}
