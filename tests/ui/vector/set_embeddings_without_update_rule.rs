// A table whose model has no update rule gets `NoUpdateRule` as its update role: no scope,
// not even an owner's, can set its vectors through the gateway.
use tenancy_generated::roles::{Owner, Viewer};
use tenancy_runtime::vector::{
    Distance, NoUpdateRule, VectorConfig, VectorGateway, VectorSpec, VectorTable, VectorUpdate,
};
use tenancy_runtime::{ProjectScope, ScopedTx};

const NOTES: VectorTable<Viewer, NoUpdateRule, uuid::Uuid> = VectorTable::new(VectorSpec {
    schema: "public",
    table: "notes",
    key_column: "id",
    vector_column: "vec",
    dimensions: 3,
    distance: Distance::L2,
    filter_columns: &[], per_tenant: false,
});

async fn misuse(tx: &mut ScopedTx<ProjectScope<Owner>>, rows: Vec<VectorUpdate<uuid::Uuid>>) {
    let gateway = VectorGateway::new(NOTES, VectorConfig::default());
    let _ = gateway.set_embeddings(tx, &rows).await;
}

fn main() {
    let _ = misuse;
}
