// expect: rejected: table name `order` is a reserved word in SQL
// Issue 24: SQL reserved words as table names.
#[tenancy(table = "order", scoped, primary_key(id), select = Viewer)]
pub struct Order {
    pub id: uuid::Uuid,
}
