// A ProjectAccess (no role proven yet) is not a scope: begin needs require::<R>() first.
use tenancy_runtime::{Error, ProjectId, RequestContext, Tenancy};

async fn misuse(tenancy: &Tenancy, ctx: &RequestContext, project: ProjectId) -> Result<(), Error> {
    let access = ctx.project(project)?;
    let _tx = tenancy.begin(&access).await?;
    Ok(())
}

fn main() {
    let _ = misuse;
}
