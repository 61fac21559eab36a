// expect: rejected: duplicate `scoped`
// Issue 24: "`scoped` conflicts with `scoped`".
#[tenancy(table = "notes", scoped, scoped, primary_key(id), select = Viewer)]
pub struct Note {
    pub id: uuid::Uuid,
}
