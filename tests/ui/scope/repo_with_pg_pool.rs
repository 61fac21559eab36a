// A repository cannot be called with the pool: it has no scope and no context.
use tenancy_generated::Documents;

async fn misuse(mut pool: sqlx::PgPool) {
    let _ = Documents::get(&mut pool, uuid::Uuid::nil()).await;
}

fn main() {
    let _ = misuse;
}
