// The tenant of a new row comes from the write scope; NewDocument has no tenant_id.
use tenancy_generated::NewDocument;
use uuid::Uuid;

fn main() {
    let _new = NewDocument {
        tenant_id: Uuid::nil(),
        id: None,
        title: "t".to_owned(),
        source_uri: None,
        mime_type: None,
        content_hash: "h".to_owned(),
        metadata: None,
    };
}
