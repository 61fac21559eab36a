// The correct chain compiles: authorize -> project(id)?.require::<Role>()? -> begin -> repository.
// Each function below proves the role its repository call needs; removing any one
// `.require::<...>()?` must make this file fail to compile (see tests/compile_fail.rs and the
// `pass_without_require_*.rs` cases).
use tenancy_generated::roles::{Admin, Editor, Viewer};
use tenancy_generated::{
    DocumentFilter, Documents, NewDocument, NewUserProjectRole, ProjectRole, UserProjectRoles,
};
use tenancy_runtime::{Error, ProjectId, Tenancy, TenantId, UserId};
use uuid::Uuid;

async fn editor_inserts_document(
    tenancy: &Tenancy,
    user: UserId,
    tenant: TenantId,
    project: ProjectId,
) -> Result<Uuid, Error> {
    let ctx = tenancy.authorize(user, tenant).await?;
    let scope = ctx.project(project)?.require::<Editor>()?;
    let mut tx = tenancy.begin(&scope).await?;
    let new = NewDocument {
        id: None,
        title: "Handbook".to_owned(),
        source_uri: None,
        mime_type: None,
        content_hash: "sha256:handbook".to_owned(),
        metadata: None,
    };
    let document = Documents::insert(&mut tx, new).await?;
    tx.commit().await?;
    Ok(document.id)
}

async fn admin_grants_viewer(
    tenancy: &Tenancy,
    admin: UserId,
    tenant: TenantId,
    project: ProjectId,
    newcomer: UserId,
) -> Result<(), Error> {
    let ctx = tenancy.authorize(admin, tenant).await?;
    let scope = ctx.project(project)?.require::<Admin>()?;
    let mut tx = tenancy.begin(&scope).await?;
    let grant = NewUserProjectRole {
        user_id: newcomer.as_uuid(),
        role: ProjectRole::Viewer,
    };
    UserProjectRoles::insert(&mut tx, grant).await?;
    tx.commit().await
}

async fn viewer_counts_documents(
    tenancy: &Tenancy,
    user: UserId,
    tenant: TenantId,
    projects: &[ProjectId],
) -> Result<i64, Error> {
    let ctx = tenancy.authorize(user, tenant).await?;
    let scope = ctx.projects(projects)?.require::<Viewer>()?;
    let mut tx = tenancy.begin(&scope).await?;
    let count = Documents::count(&mut tx, &DocumentFilter::default()).await?;
    tx.commit().await?;
    Ok(count)
}

fn main() {
    let _ = editor_inserts_document;
    let _ = admin_grants_viewer;
    let _ = viewer_counts_documents;
}
