// There is no unscoped search: a pool is not a scoped transaction.
use tenancy_generated::Chunks;
use tenancy_runtime::vector::{SearchRequest, VectorConfig, VectorGateway};

async fn misuse(pool: sqlx::PgPool, request: SearchRequest) {
    let gateway = VectorGateway::new(Chunks::EMBEDDING_VECTORS, VectorConfig::default());
    let _ = gateway.search(&pool, &request).await;
}

fn main() {
    let _ = misuse;
}
