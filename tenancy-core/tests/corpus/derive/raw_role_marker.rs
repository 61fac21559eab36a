// expect: accepted
// Issue 24: r#Viewer named the role `r#_viewer`; it is the role viewer.
#[tenancy(table = "notes", scoped, primary_key(id), select = r#Viewer)]
pub struct Note {
    pub id: uuid::Uuid,
    pub r#body: String,
}
