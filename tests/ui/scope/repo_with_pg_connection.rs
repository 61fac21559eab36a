// A repository cannot be called with a plain connection: it carries no context.
use tenancy_generated::Documents;

async fn misuse(conn: &mut sqlx::PgConnection) {
    let _ = Documents::get(conn, uuid::Uuid::nil()).await;
}

fn main() {
    let _ = misuse;
}
