// expect: accepted
// Issue 24: a float default with an exponent (1e5 is written 100000.0).
#[tenancy(table = "notes", scoped, primary_key(id), select = Viewer)]
pub struct Note {
    pub id: uuid::Uuid,
    #[tenancy(default = 1e5)]
    pub weight: f64,
    #[tenancy(default = 2.5E-3)]
    pub ratio: f32,
    #[tenancy(default = 1.)]
    pub one: f64,
}
