// An update cannot move a row to another project: DocumentPatch has no project_id.
use tenancy_generated::DocumentPatch;
use uuid::Uuid;

fn main() {
    let _patch = DocumentPatch {
        project_id: Some(Uuid::nil()),
        ..DocumentPatch::default()
    };
}
