// expect: rejected: control character
// Issue 24: a string default with a newline (no .tenancy string can hold one).
#[tenancy(table = "notes", scoped, primary_key(id), select = Viewer)]
pub struct Note {
    pub id: uuid::Uuid,
    #[tenancy(default = "'a\nb'")]
    pub body: String,
}
