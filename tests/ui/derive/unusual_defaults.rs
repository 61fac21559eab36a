// Issue 24: defaults checked against their type, at the attribute value: a string with a
// newline (no `.tenancy` string can hold one), a date that does not exist, a timestamp that is
// not one, a float beyond `real`. A float with an exponent is accepted (`1e5` is `100000.0`).
use tenancy_macros::TenantScoped;

#[derive(TenantScoped)]
#[tenancy(table = "events", scoped, primary_key(id), select = tenancy_generated::roles::Viewer)]
pub struct Event {
    pub id: uuid::Uuid,
    #[tenancy(default = "'line one\nline two'")]
    pub title: String,
    #[tenancy(default = "'2023-02-31'")]
    pub day: chrono::NaiveDate,
    #[tenancy(default = "'x'")]
    pub at: chrono::DateTime<chrono::Utc>,
    #[tenancy(default = 1e39)]
    pub ratio: f32,
    #[tenancy(default = 1e5)]
    pub weight: f64,
}

fn main() {}
