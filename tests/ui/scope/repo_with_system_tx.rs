// The maintenance escape hatch is not a scoped transaction: repositories refuse it.
use tenancy_generated::Documents;
use tenancy_runtime::SystemTx;

async fn misuse(mut tx: SystemTx) {
    let _ = Documents::get(&mut tx, uuid::Uuid::nil()).await;
}

fn main() {
    let _ = misuse;
}
