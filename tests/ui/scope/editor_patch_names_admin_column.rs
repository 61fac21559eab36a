// Column rights: an editor's patch has only the columns the editor's rule covers
// (`allow update (title, metadata) to editor ...`); `source_uri` is the admins' to change.
use tenancy_generated::DocumentPatch;

fn main() {
    let _patch = DocumentPatch {
        title: None,
        metadata: None,
        source_uri: Some(None),
    };
}
