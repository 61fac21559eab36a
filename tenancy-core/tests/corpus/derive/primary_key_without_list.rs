// expect: rejected: `primary_key` takes a list of columns in parentheses
// Issue 24: a bare "expected parentheses".
#[tenancy(table = "notes", scoped, primary_key, select = Viewer)]
pub struct Note {
    pub id: uuid::Uuid,
}
