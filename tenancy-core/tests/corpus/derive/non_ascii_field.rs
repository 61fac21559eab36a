// expect: rejected: invalid column name `café`
// Issue 24: non-ASCII field names.
#[tenancy(table = "cafes", scoped, primary_key(id), select = Viewer)]
pub struct Cafe {
    pub id: uuid::Uuid,
    pub café: String,
}
