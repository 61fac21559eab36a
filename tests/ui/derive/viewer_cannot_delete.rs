// The derived repository's methods carry the rules' role bounds: deleting a note needs
// `Admin`, a viewer's write scope does not satisfy it.
use tenancy_macros::TenantScoped;
use tenancy_generated::roles::{Admin, Viewer};
use tenancy_runtime::{Error, ScopedTx, WriteScope};

#[derive(TenantScoped)]
#[tenancy(table = "notes", scoped, primary_key(id), select = Viewer, delete = Admin)]
pub struct Note {
    pub id: uuid::Uuid,
    pub body: String,
}

pub async fn delete_as_viewer<S: WriteScope<Viewer>>(tx: &mut ScopedTx<S>) -> Result<bool, Error> {
    notes::Notes::delete(tx, uuid::Uuid::nil()).await
}

fn main() {}
