// A repository cannot be called with a plain sqlx transaction: BEGIN without the context.
use tenancy_generated::Documents;

async fn misuse(pool: sqlx::PgPool) -> Result<(), sqlx::Error> {
    let mut tx = pool.begin().await?;
    let _ = Documents::get(&mut tx, uuid::Uuid::nil()).await;
    Ok(())
}

fn main() {
    let _ = misuse;
}
