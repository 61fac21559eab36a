// A proven role cannot be widened: a viewer scope is not an editor scope.
use tenancy_generated::roles::{Editor, Viewer};
use tenancy_runtime::{Error, ProjectId, ProjectScope, RequestContext};

fn misuse(ctx: &RequestContext, project: ProjectId) -> Result<(), Error> {
    let _scope: ProjectScope<Editor> = ctx.project(project)?.require::<Viewer>()?;
    Ok(())
}

fn main() {
    let _ = misuse;
}
