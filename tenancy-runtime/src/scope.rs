//! Request contexts, the access values they hand out, and the typed scopes those prove.

use std::fmt;
use std::marker::PhantomData;
use std::sync::Arc;

use crate::error::Error;
use crate::ids::{ProjectId, TenantId, UserId};
use crate::role::{is_valid_role_name, AtLeast, Role};

/// A role name read from the database and checked against `[a-z_][a-z0-9_]*`, so it can be
/// written into a `SET LOCAL` value.
#[derive(Clone, PartialEq, Eq)]
pub struct RoleName(Arc<str>);

impl RoleName {
    pub(crate) fn parse(name: &str) -> Result<Self, Error> {
        if is_valid_role_name(name) {
            Ok(Self(Arc::from(name)))
        } else {
            Err(Error::Misconfigured(format!(
                "role name {name:?} does not match [a-z_][a-z0-9_]*"
            )))
        }
    }

    pub(crate) fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for RoleName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&*self.0, f)
    }
}

/// The user's actual role in one project, with its rank in the database enum (`pub` only so the
/// sealed trait may name it; the module is private).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Membership {
    pub(crate) project: ProjectId,
    pub(crate) role: RoleName,
    pub(crate) rank: u8,
}

mod sealed {
    /// Implemented only by the runtime's scope types; gives the runtime the actual roles it
    /// writes into the transaction context.
    pub trait Sealed {
        /// The scope's projects with the user's actual role, sorted by project id.
        fn memberships(&self) -> &[super::Membership];
    }
}

/// What a transaction is allowed to see: one tenant, one user, a set of projects with the user's
/// actual role in each. Sealed: only [`ProjectScope`] and [`ProjectsScope`] implement it, so a
/// scope can only come from [`RequestContext`], which only [`Tenancy::authorize`] builds.
///
/// [`Tenancy::authorize`]: crate::Tenancy::authorize
///
/// Application types cannot implement it:
///
/// ```compile_fail,E0277
/// use tenancy_runtime::{ProjectId, Scope, TenantId, UserId};
/// #[derive(Clone)]
/// struct Forged;
/// impl Scope for Forged {
///     fn tenant_id(&self) -> TenantId { TenantId::new(uuid::Uuid::nil()) }
///     fn user_id(&self) -> UserId { UserId::new(uuid::Uuid::nil()) }
///     fn project_ids(&self) -> Vec<ProjectId> { Vec::new() }
/// }
/// ```
pub trait Scope: sealed::Sealed + Clone + Send + Sync + 'static {
    /// The tenant every row of the transaction belongs to.
    fn tenant_id(&self) -> TenantId;
    /// The user on whose behalf the transaction runs.
    fn user_id(&self) -> UserId;
    /// The scope's projects, sorted.
    fn project_ids(&self) -> Vec<ProjectId>;
}

/// A scope that may read rows requiring role `R`: both scope shapes, with a proven role >= `R`.
pub trait ReadScope<R: Role>: Scope {}

/// A scope that may write rows requiring role `R`: single-project scopes only, role >= `R`.
///
/// A several-project scope is never a write scope:
///
/// ```compile_fail,E0277
/// use tenancy_runtime::{ProjectsScope, WriteScope};
/// tenancy_runtime::roles! { Viewer = "viewer", Editor = "editor" }
/// fn writes<S: WriteScope<Editor>>() {}
/// writes::<ProjectsScope<Editor>>();
/// ```
pub trait WriteScope<R: Role>: Scope {
    /// The project new rows are written into.
    fn project_id(&self) -> ProjectId;
}

/// Who is asking, in which tenant, with which role in which project.
///
/// Built only by [`Tenancy::authorize`](crate::Tenancy::authorize) from the memberships table;
/// there is no public constructor. Narrow it to a scope before touching tenant data:
///
/// ```no_run
/// # use tenancy_runtime::{Error, ProjectId, Tenancy, TenantId, UserId};
/// tenancy_runtime::roles! { Viewer = "viewer", Editor = "editor", Admin = "admin", Owner = "owner" }
/// # async fn example(tenancy: Tenancy, user: UserId, tenant: TenantId, project: ProjectId) -> Result<(), Error> {
/// let ctx = tenancy.authorize(user, tenant).await?;
/// let scope = ctx.project(project)?.require::<Editor>()?; // ProjectScope<Editor>
/// let mut tx = tenancy.begin(&scope).await?;
/// // ... generated repositories take `&mut tx` ...
/// tx.commit().await?;
///
/// // Reads across every project where the user is at least a viewer:
/// let everything = ctx.all_projects().with_at_least::<Viewer>(); // ProjectsScope<Viewer>
/// let tx = tenancy.begin(&everything).await?;
/// # drop(tx);
/// # Ok(())
/// # }
/// ```
#[derive(Clone, Debug)]
pub struct RequestContext {
    user: UserId,
    tenant: TenantId,
    /// Sorted by project id, one entry per project: the effective role (the higher of the
    /// project role and the tenant-wide role).
    memberships: Vec<Membership>,
    /// The user's tenant-wide role, if any (its `project` is the tenant's id).
    tenant_role: Option<Membership>,
}

impl RequestContext {
    /// Builds a context; `memberships` may be in any order and hold duplicates (the highest
    /// rank per project wins).
    pub(crate) fn from_memberships(
        user: UserId,
        tenant: TenantId,
        mut memberships: Vec<Membership>,
    ) -> Self {
        memberships.sort_by(|a, b| a.project.cmp(&b.project).then(b.rank.cmp(&a.rank)));
        memberships.dedup_by(|later, kept| later.project == kept.project);
        Self {
            user,
            tenant,
            memberships,
            tenant_role: None,
        }
    }

    /// Builds the context of a user with a tenant-wide role `(name, rank)`: `projects` are
    /// every project of the tenant, `memberships` the user's own project roles. Each project
    /// gets the higher of the two roles.
    pub(crate) fn with_tenant_role(
        user: UserId,
        tenant: TenantId,
        memberships: Vec<Membership>,
        tenant_role: (RoleName, u8),
        projects: Vec<ProjectId>,
    ) -> Self {
        let (role, rank) = tenant_role;
        let mut all = memberships;
        all.extend(projects.into_iter().map(|project| Membership {
            project,
            role: role.clone(),
            rank,
        }));
        let mut ctx = Self::from_memberships(user, tenant, all);
        ctx.tenant_role = Some(Membership {
            project: ProjectId::new(tenant.as_uuid()),
            role,
            rank,
        });
        ctx
    }

    /// The name of the user's tenant-wide role (a role in every project of the tenant), if
    /// they hold one.
    pub fn tenant_role_name(&self) -> Option<&str> {
        self.tenant_role.as_ref().map(|m| m.role.as_str())
    }

    /// The user's tenant-wide role, for administering the tenant memberships table;
    /// [`Error::NotFound`] when they hold none.
    pub fn tenant(&self) -> Result<TenantAccess<'_>, Error> {
        let membership = self.tenant_role.as_ref().ok_or(Error::NotFound)?;
        Ok(TenantAccess {
            ctx: self,
            membership,
        })
    }

    /// The authenticated user.
    pub fn user_id(&self) -> UserId {
        self.user
    }

    /// The tenant this context was authorized for.
    pub fn tenant_id(&self) -> TenantId {
        self.tenant
    }

    /// Every project of this tenant the user holds a role in, with the role's name, sorted by
    /// project id. With a tenant-wide role: every project of the tenant, each with the higher
    /// of the tenant-wide role and the user's own role there.
    pub fn memberships(&self) -> impl Iterator<Item = (ProjectId, &str)> {
        self.memberships
            .iter()
            .map(|membership| (membership.project, membership.role.as_str()))
    }

    fn membership(&self, id: ProjectId) -> Option<&Membership> {
        self.memberships
            .binary_search_by(|membership| membership.project.cmp(&id))
            .ok()
            .and_then(|index| self.memberships.get(index))
    }

    /// The user's access to one project; [`Error::NotFound`] if they hold no role there (the
    /// same answer as for a project that does not exist or belongs to another tenant).
    pub fn project(&self, id: ProjectId) -> Result<ProjectAccess<'_>, Error> {
        let membership = self.membership(id).ok_or(Error::NotFound)?;
        Ok(ProjectAccess {
            ctx: self,
            membership,
        })
    }

    /// Several projects of this tenant (for read scopes); [`Error::NotFound`] if any of them is
    /// not the user's. Duplicate ids are ignored.
    pub fn projects(&self, ids: &[ProjectId]) -> Result<ProjectsAccess<'_>, Error> {
        let mut memberships = ids
            .iter()
            .map(|id| self.membership(*id).ok_or(Error::NotFound))
            .collect::<Result<Vec<_>, _>>()?;
        memberships.sort_by_key(|membership| membership.project);
        memberships.dedup_by_key(|membership| membership.project);
        Ok(ProjectsAccess {
            ctx: self,
            memberships,
        })
    }

    /// Every project of this tenant the user holds a role in.
    pub fn all_projects(&self) -> ProjectsAccess<'_> {
        ProjectsAccess {
            ctx: self,
            memberships: self.memberships.iter().collect(),
        }
    }
}

/// The user's tenant-wide role, not yet narrowed to a role. Get it from
/// [`RequestContext::tenant`].
#[derive(Clone, Copy, Debug)]
pub struct TenantAccess<'ctx> {
    ctx: &'ctx RequestContext,
    membership: &'ctx Membership,
}

impl TenantAccess<'_> {
    /// The name of the user's tenant-wide role.
    pub fn role_name(&self) -> &str {
        self.membership.role.as_str()
    }

    /// Proves the user's tenant-wide role ranks at least `R`; [`Error::Forbidden`] when it
    /// ranks below.
    pub fn require<R: Role>(self) -> Result<TenantScope<R>, Error> {
        if self.membership.rank < R::RANK {
            return Err(Error::Forbidden);
        }
        Ok(TenantScope {
            tenant: self.ctx.tenant,
            user: self.ctx.user,
            role_entry: self.membership.clone(),
            role: PhantomData,
        })
    }
}

/// The whole tenant with a proven tenant-wide role `R`: the scope of the tenant memberships
/// table's repository (who holds which tenant-wide role). It carries no project, so it reads
/// and writes no project's rows; for those, take a [`ProjectScope`] (a tenant-wide role
/// counts in every project of the tenant).
///
/// A project scope is not a tenant scope:
///
/// ```compile_fail,E0277
/// use tenancy_runtime::{ProjectScope, TenantWriteScope};
/// tenancy_runtime::roles! { Viewer = "viewer", Admin = "admin" }
/// fn administers<S: TenantWriteScope<Admin>>() {}
/// administers::<ProjectScope<Admin>>();
/// ```
pub struct TenantScope<R: Role> {
    tenant: TenantId,
    user: UserId,
    /// The tenant-wide role; its `project` is the tenant's id, as the context lists it.
    role_entry: Membership,
    role: PhantomData<fn() -> R>,
}

impl<R: Role> TenantScope<R> {
    /// The name of the user's tenant-wide role (at least `R`).
    pub fn role_name(&self) -> &str {
        self.role_entry.role.as_str()
    }
}

impl<R: Role> Clone for TenantScope<R> {
    fn clone(&self) -> Self {
        Self {
            tenant: self.tenant,
            user: self.user,
            role_entry: self.role_entry.clone(),
            role: PhantomData,
        }
    }
}

impl<R: Role> fmt::Debug for TenantScope<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TenantScope")
            .field("proven_role", &R::NAME)
            .field("tenant", &self.tenant)
            .field("user", &self.user)
            .field("tenant_role", &self.role_entry.role)
            .finish()
    }
}

impl<R: Role> sealed::Sealed for TenantScope<R> {
    fn memberships(&self) -> &[Membership] {
        std::slice::from_ref(&self.role_entry)
    }
}

impl<R: Role> Scope for TenantScope<R> {
    fn tenant_id(&self) -> TenantId {
        self.tenant
    }
    fn user_id(&self) -> UserId {
        self.user
    }
    fn project_ids(&self) -> Vec<ProjectId> {
        Vec::new()
    }
}

/// A scope that may read tenant-level rows requiring tenant-wide role `R` (the tenant
/// memberships table): [`TenantScope`] with a proven role >= `R`.
pub trait TenantReadScope<R: Role>: Scope {}

/// A scope that may write tenant-level rows requiring tenant-wide role `R`: [`TenantScope`]
/// with a proven role >= `R`.
pub trait TenantWriteScope<R: Role>: Scope {}

impl<R: Role, Proven: AtLeast<R>> TenantReadScope<R> for TenantScope<Proven> {}

impl<R: Role, Proven: AtLeast<R>> TenantWriteScope<R> for TenantScope<Proven> {}

/// The user's access to one project, not yet narrowed to a role. Get it from
/// [`RequestContext::project`].
#[derive(Clone, Copy, Debug)]
pub struct ProjectAccess<'ctx> {
    ctx: &'ctx RequestContext,
    membership: &'ctx Membership,
}

impl ProjectAccess<'_> {
    /// The project.
    pub fn project_id(&self) -> ProjectId {
        self.membership.project
    }

    /// The name of the user's actual role in the project.
    pub fn role_name(&self) -> &str {
        self.membership.role.as_str()
    }

    /// Proves the user's role ranks at least `R`; [`Error::Forbidden`] when it ranks below.
    ///
    /// The comparison uses the rank read from the database, and the transaction context carries
    /// the actual role, so a role type with an invented rank cannot widen access.
    pub fn require<R: Role>(self) -> Result<ProjectScope<R>, Error> {
        if self.membership.rank < R::RANK {
            return Err(Error::Forbidden);
        }
        Ok(ProjectScope {
            tenant: self.ctx.tenant,
            user: self.ctx.user,
            project: self.membership.clone(),
            role: PhantomData,
        })
    }
}

/// The user's access to several projects of one tenant, not yet narrowed to a role. Get it from
/// [`RequestContext::projects`] or [`RequestContext::all_projects`].
#[derive(Clone, Debug)]
pub struct ProjectsAccess<'ctx> {
    ctx: &'ctx RequestContext,
    /// Sorted by project id, no duplicates.
    memberships: Vec<&'ctx Membership>,
}

impl ProjectsAccess<'_> {
    /// The projects, sorted.
    pub fn project_ids(&self) -> Vec<ProjectId> {
        self.memberships.iter().map(|m| m.project).collect()
    }

    /// Proves the role in every project ranks at least `R`; [`Error::Forbidden`] when any ranks
    /// below.
    pub fn require<R: Role>(self) -> Result<ProjectsScope<R>, Error> {
        if self.memberships.iter().any(|m| m.rank < R::RANK) {
            return Err(Error::Forbidden);
        }
        Ok(self.into_scope())
    }

    /// Keeps only the projects where the role ranks at least `R`. The result may be empty; reads
    /// in an empty scope return nothing.
    pub fn with_at_least<R: Role>(mut self) -> ProjectsScope<R> {
        self.memberships.retain(|m| m.rank >= R::RANK);
        self.into_scope()
    }

    fn into_scope<R: Role>(self) -> ProjectsScope<R> {
        ProjectsScope {
            tenant: self.ctx.tenant,
            user: self.ctx.user,
            projects: self.memberships.into_iter().cloned().collect(),
            role: PhantomData,
        }
    }
}

/// One project with a proven role `R`. Usable for reads and writes.
///
/// ```no_run
/// # use tenancy_runtime::{Error, ProjectId, RequestContext, ProjectScope, WriteScope};
/// tenancy_runtime::roles! { Viewer = "viewer", Editor = "editor" }
/// # fn example(ctx: &RequestContext, project: ProjectId) -> Result<(), Error> {
/// let scope: ProjectScope<Editor> = ctx.project(project)?.require::<Editor>()?;
/// fn writes<S: WriteScope<Viewer>>(_: &S) {}
/// writes(&scope); // an editor scope may write rows that require viewer
/// # Ok(())
/// # }
/// ```
pub struct ProjectScope<R: Role> {
    tenant: TenantId,
    user: UserId,
    project: Membership,
    role: PhantomData<fn() -> R>,
}

impl<R: Role> ProjectScope<R> {
    /// The scope's project.
    pub fn project_id(&self) -> ProjectId {
        self.project.project
    }

    /// The name of the user's actual role in the project (at least `R`).
    pub fn role_name(&self) -> &str {
        self.project.role.as_str()
    }
}

impl<R: Role> Clone for ProjectScope<R> {
    fn clone(&self) -> Self {
        Self {
            tenant: self.tenant,
            user: self.user,
            project: self.project.clone(),
            role: PhantomData,
        }
    }
}

impl<R: Role> fmt::Debug for ProjectScope<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ProjectScope")
            .field("proven_role", &R::NAME)
            .field("tenant", &self.tenant)
            .field("user", &self.user)
            .field("project", &self.project)
            .finish()
    }
}

impl<R: Role> sealed::Sealed for ProjectScope<R> {
    fn memberships(&self) -> &[Membership] {
        std::slice::from_ref(&self.project)
    }
}

impl<R: Role> Scope for ProjectScope<R> {
    fn tenant_id(&self) -> TenantId {
        self.tenant
    }
    fn user_id(&self) -> UserId {
        self.user
    }
    fn project_ids(&self) -> Vec<ProjectId> {
        vec![self.project.project]
    }
}

impl<R: Role, Proven: AtLeast<R>> ReadScope<R> for ProjectScope<Proven> {}

impl<R: Role, Proven: AtLeast<R>> WriteScope<R> for ProjectScope<Proven> {
    fn project_id(&self) -> ProjectId {
        self.project.project
    }
}

/// Several projects of one tenant with a proven role `R` in each. Reads only: it never
/// implements [`WriteScope`].
///
/// ```no_run
/// # use tenancy_runtime::{Error, ProjectId, RequestContext, ProjectsScope};
/// tenancy_runtime::roles! { Viewer = "viewer", Editor = "editor" }
/// # fn example(ctx: &RequestContext, a: ProjectId, b: ProjectId) -> Result<(), Error> {
/// let two: ProjectsScope<Viewer> = ctx.projects(&[a, b])?.require::<Viewer>()?;
/// let editable: ProjectsScope<Editor> = ctx.all_projects().with_at_least::<Editor>();
/// # Ok(())
/// # }
/// ```
pub struct ProjectsScope<R: Role> {
    tenant: TenantId,
    user: UserId,
    /// Sorted by project id, no duplicates.
    projects: Vec<Membership>,
    role: PhantomData<fn() -> R>,
}

impl<R: Role> ProjectsScope<R> {
    /// Whether the scope holds no project (reads in it return nothing).
    pub fn is_empty(&self) -> bool {
        self.projects.is_empty()
    }
}

impl<R: Role> Clone for ProjectsScope<R> {
    fn clone(&self) -> Self {
        Self {
            tenant: self.tenant,
            user: self.user,
            projects: self.projects.clone(),
            role: PhantomData,
        }
    }
}

impl<R: Role> fmt::Debug for ProjectsScope<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ProjectsScope")
            .field("proven_role", &R::NAME)
            .field("tenant", &self.tenant)
            .field("user", &self.user)
            .field("projects", &self.projects)
            .finish()
    }
}

impl<R: Role> sealed::Sealed for ProjectsScope<R> {
    fn memberships(&self) -> &[Membership] {
        &self.projects
    }
}

impl<R: Role> Scope for ProjectsScope<R> {
    fn tenant_id(&self) -> TenantId {
        self.tenant
    }
    fn user_id(&self) -> UserId {
        self.user
    }
    fn project_ids(&self) -> Vec<ProjectId> {
        self.projects.iter().map(|m| m.project).collect()
    }
}

impl<R: Role, Proven: AtLeast<R>> ReadScope<R> for ProjectsScope<Proven> {}

/// The actual memberships a scope carries into the transaction context.
pub(crate) fn scope_memberships<S: Scope>(scope: &S) -> &[Membership] {
    sealed::Sealed::memberships(scope)
}

#[cfg(test)]
pub(crate) mod tests {
    use uuid::Uuid;

    use super::*;

    crate::roles! { Viewer = "viewer", Editor = "editor", Admin = "admin", Owner = "owner" }

    pub(crate) fn project(n: u128) -> ProjectId {
        ProjectId::new(Uuid::from_u128(n))
    }

    pub(crate) fn membership(n: u128, role: &str, rank: u8) -> Membership {
        Membership {
            project: project(n),
            role: RoleName::parse(role).unwrap(),
            rank,
        }
    }

    /// A user who is editor in project 2 and viewer in project 1 of tenant 0xa.
    pub(crate) fn context() -> RequestContext {
        RequestContext::from_memberships(
            UserId::new(Uuid::from_u128(0xb)),
            TenantId::new(Uuid::from_u128(0xa)),
            vec![membership(2, "editor", 1), membership(1, "viewer", 0)],
        )
    }

    #[test]
    fn require_accepts_equal_and_lower_roles() {
        let ctx = context();
        let scope = ctx
            .project(project(2))
            .unwrap()
            .require::<Editor>()
            .unwrap();
        assert_eq!(scope.role_name(), "editor");
        assert_eq!(scope.project_ids(), vec![project(2)]);
        assert!(ctx.project(project(2)).unwrap().require::<Viewer>().is_ok());
    }

    #[test]
    fn require_refuses_higher_roles_with_forbidden() {
        let ctx = context();
        let denied = ctx.project(project(2)).unwrap().require::<Admin>();
        assert!(matches!(denied, Err(Error::Forbidden)));
        let denied = ctx.project(project(1)).unwrap().require::<Editor>();
        assert!(matches!(denied, Err(Error::Forbidden)));
    }

    #[test]
    fn unknown_project_is_not_found() {
        let ctx = context();
        assert!(matches!(ctx.project(project(3)), Err(Error::NotFound)));
        assert!(matches!(
            ctx.projects(&[project(1), project(3)]),
            Err(Error::NotFound)
        ));
    }

    /// A role type with an invented low rank passes `require`, but the scope still carries the
    /// user's actual role, which is what the database sees.
    #[test]
    fn fake_role_gains_nothing_but_the_actual_role() {
        struct Fake;
        impl Role for Fake {
            const NAME: &'static str = "owner";
            const RANK: u8 = 0;
        }
        let ctx = context();
        let scope = ctx.project(project(1)).unwrap().require::<Fake>().unwrap();
        assert_eq!(scope_memberships(&scope), &[membership(1, "viewer", 0)]);

        struct Inflated;
        impl Role for Inflated {
            const NAME: &'static str = "viewer";
            const RANK: u8 = 200;
        }
        let denied = ctx.project(project(2)).unwrap().require::<Inflated>();
        assert!(matches!(denied, Err(Error::Forbidden)));
    }

    #[test]
    fn projects_require_checks_every_project() {
        let ctx = context();
        let both = ctx.projects(&[project(2), project(1), project(2)]).unwrap();
        assert_eq!(both.project_ids(), vec![project(1), project(2)]);
        assert!(both.clone().require::<Viewer>().is_ok());
        assert!(matches!(both.require::<Editor>(), Err(Error::Forbidden)));
    }

    #[test]
    fn with_at_least_filters_projects() {
        let ctx = context();
        let editable = ctx.all_projects().with_at_least::<Editor>();
        assert_eq!(editable.project_ids(), vec![project(2)]);
        let owned = ctx.all_projects().with_at_least::<Owner>();
        assert!(owned.is_empty());
        let all = ctx.all_projects().with_at_least::<Viewer>();
        assert_eq!(all.project_ids(), vec![project(1), project(2)]);
    }

    #[test]
    fn duplicate_memberships_keep_the_highest_rank() {
        let ctx = RequestContext::from_memberships(
            UserId::new(Uuid::from_u128(0xb)),
            TenantId::new(Uuid::from_u128(0xa)),
            vec![membership(1, "viewer", 0), membership(1, "admin", 2)],
        );
        let names: Vec<_> = ctx.memberships().collect();
        assert_eq!(names, vec![(project(1), "admin")]);
    }

    #[test]
    fn role_names_are_validated() {
        assert!(RoleName::parse("editor").is_ok());
        assert!(matches!(
            RoleName::parse("editor'; reset all; --"),
            Err(Error::Misconfigured(_))
        ));
        assert!(RoleName::parse("Editor").is_err());
    }
}
