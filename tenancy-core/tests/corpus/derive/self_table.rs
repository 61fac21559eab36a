// expect: rejected: table name `self` cannot name generated Rust code
// Issue 24: a derive table named self panicked the macro.
#[tenancy(table = "self", scoped, primary_key(id), select = Viewer)]
pub struct Me {
    pub id: uuid::Uuid,
}
