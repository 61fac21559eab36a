// commit() consumes the transaction: a repository call afterwards is a use of a moved value.
use tenancy_generated::roles::Editor;
use tenancy_generated::Documents;
use tenancy_runtime::{ProjectScope, ScopedTx};
use uuid::Uuid;

async fn misuse(mut tx: ScopedTx<ProjectScope<Editor>>) {
    let _ = tx.commit().await;
    let _ = Documents::get(&mut tx, Uuid::nil()).await;
}

fn main() {
    let _ = misuse;
}
