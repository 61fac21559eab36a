//! Seed files: tenants, projects and role assignments, applied idempotently and all-or-nothing.
//!
//! ```toml
//! [[tenant]]
//! slug = "acme"
//! name = "Acme Corp"
//!
//!   [[tenant.project]]
//!   slug = "docs"
//!   name = "Documentation"
//!
//!     [[tenant.project.member]]
//!     user = "6f1c2a4e-8d3b-4c5a-9e7f-0a1b2c3d4e5f"   # the identity provider's user id
//!     role = "owner"
//!     email = "alice@example.com"                      # shown in the plan, never stored
//! ```
//!
//! Slugs are the natural keys: a tenant, project or membership that exists already is left as
//! it is (a membership whose role differs gets the file's role), so applying the same file
//! twice changes nothing the second time and [`Report`] says so. Names are used only when a
//! row is created. Nothing is ever deleted by a seed.
//!
//! [`run`] applies the whole file in ONE [`SystemTx`]: any error rolls everything back and
//! names `file:line`; a dry run does the same work, reports it, and rolls back. Every change is
//! recorded in the audit table by [`Onboarding`].

mod file;

use std::fmt;

use sqlx::PgPool;
use tenancy_runtime::admin::{AdminError, Onboarding};
use tenancy_runtime::{SystemTx, UserId};

pub use crate::file::{SeedFile, SeedMember, SeedProject, SeedTenant};

/// Why a seed was refused. Nothing was written.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SeedError {
    /// A problem at one line of the file (syntax, a key, a value, or a database refusal while
    /// applying that entry).
    #[error("{file}:{line}: {message}")]
    At {
        /// The file's name as given.
        file: String,
        /// 1-based line.
        line: usize,
        /// What is wrong, one sentence.
        message: String,
    },
    /// A problem with the file as a whole (unreadable).
    #[error("{file}: {message}")]
    File {
        /// The file's name as given.
        file: String,
        /// What is wrong, one sentence.
        message: String,
    },
    /// A problem not tied to the file (connection, privileges, schema).
    #[error(transparent)]
    Admin(#[from] AdminError),
}

/// Numbers of tenants, projects and memberships.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counts {
    /// Tenants.
    pub tenants: usize,
    /// Projects.
    pub projects: usize,
    /// Memberships.
    pub memberships: usize,
}

impl fmt::Display for Counts {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} tenant{}, {} project{}, {} membership{}",
            self.tenants,
            plural(self.tenants),
            self.projects,
            plural(self.projects),
            self.memberships,
            plural(self.memberships)
        )
    }
}

fn plural(n: usize) -> &'static str {
    if n == 1 {
        ""
    } else {
        "s"
    }
}

/// One change a seed made (or, in a dry run, would make).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Change {
    /// A tenant was created.
    TenantCreated {
        /// Its slug.
        tenant: String,
    },
    /// A project was created.
    ProjectCreated {
        /// The tenant's slug.
        tenant: String,
        /// The project's slug.
        project: String,
    },
    /// A user was given a role in a project.
    MemberAdded {
        /// The tenant's slug.
        tenant: String,
        /// The project's slug.
        project: String,
        /// The user.
        user: UserId,
        /// For display only.
        email: Option<String>,
        /// The role granted.
        role: String,
    },
    /// A member's role was changed to the file's.
    RoleChanged {
        /// The tenant's slug.
        tenant: String,
        /// The project's slug.
        project: String,
        /// The user.
        user: UserId,
        /// For display only.
        email: Option<String>,
        /// The role held before.
        from: String,
        /// The file's role.
        to: String,
    },
}

fn who(user: &UserId, email: &Option<String>) -> String {
    match email {
        Some(email) => format!("{user} ({email})"),
        None => user.to_string(),
    }
}

impl fmt::Display for Change {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Change::TenantCreated { tenant } => write!(f, "create tenant {tenant}"),
            Change::ProjectCreated { tenant, project } => {
                write!(f, "create project {tenant}/{project}")
            }
            Change::MemberAdded {
                tenant,
                project,
                user,
                email,
                role,
            } => write!(
                f,
                "grant {role} in {tenant}/{project} to {}",
                who(user, email)
            ),
            Change::RoleChanged {
                tenant,
                project,
                user,
                email,
                from,
                to,
            } => write!(
                f,
                "change role of {} in {tenant}/{project}: {from} -> {to}",
                who(user, email)
            ),
        }
    }
}

/// What a seed did (or would do, in a dry run).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Report {
    /// Whether the transaction was rolled back on purpose.
    pub dry_run: bool,
    /// The changes, in file order.
    pub changes: Vec<Change>,
    /// What the file declares that already existed exactly as declared.
    pub present: Counts,
    /// Notes that are not errors (a name that differs from the database's, left unchanged).
    pub notes: Vec<String>,
}

impl Report {
    /// Whether the seed changed nothing.
    pub fn is_noop(&self) -> bool {
        self.changes.is_empty()
    }
}

impl fmt::Display for Report {
    /// `nothing to do: 2 tenants, 3 projects, 5 memberships already present`, or one line
    /// per change and a summary.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for note in &self.notes {
            writeln!(f, "note: {note}")?;
        }
        if self.is_noop() {
            return writeln!(f, "nothing to do: {} already present", self.present);
        }
        let verb = if self.dry_run { "would " } else { "" };
        for change in &self.changes {
            writeln!(f, "{verb}{change}")?;
        }
        let summary = format!(
            "{} change{}, {} already present",
            self.changes.len(),
            plural(self.changes.len()),
            self.present
        );
        if self.dry_run {
            writeln!(f, "dry run: {summary}; rolled back, nothing was written")
        } else {
            writeln!(f, "applied: {summary}")
        }
    }
}

/// Applies `seed` inside `tx` (the caller commits or rolls back). On error the transaction must
/// be rolled back: some statements may have run.
pub async fn apply(
    onboarding: &Onboarding,
    tx: &mut SystemTx,
    seed: &SeedFile,
) -> Result<Report, SeedError> {
    let at = |line: usize, error: AdminError| SeedError::At {
        file: seed.path.clone(),
        line,
        message: error.to_string(),
    };
    let roles = onboarding.roles(tx).await?;
    // Every role first, so a bad role fails before anything is written.
    for member in seed
        .tenants
        .iter()
        .flat_map(|t| &t.projects)
        .flat_map(|p| &p.members)
    {
        if !roles.contains(&member.role) {
            return Err(at(
                member.role_line,
                AdminError::UnknownRole {
                    role: member.role.clone(),
                    known: roles.join(", "),
                },
            ));
        }
    }

    let mut report = Report::default();
    for tenant in &seed.tenants {
        let tenant_id = match onboarding
            .tenant_by_slug(tx, &tenant.slug)
            .await
            .map_err(|e| at(tenant.line, e))?
        {
            Some(existing) => {
                report.present.tenants += 1;
                if existing.name != tenant.name {
                    report.notes.push(format!(
                        "{}:{}: tenant `{}` exists with name {:?}; seeds do not rename",
                        seed.path, tenant.line, tenant.slug, existing.name
                    ));
                }
                existing.id
            }
            None => {
                let id = onboarding
                    .create_tenant(tx, &tenant.slug, &tenant.name)
                    .await
                    .map_err(|e| at(tenant.line, e))?;
                report.changes.push(Change::TenantCreated {
                    tenant: tenant.slug.clone(),
                });
                id
            }
        };
        for project in &tenant.projects {
            let project_id = match onboarding
                .project_by_slug(tx, tenant_id, &project.slug)
                .await
                .map_err(|e| at(project.line, e))?
            {
                Some(existing) => {
                    report.present.projects += 1;
                    if existing.name != project.name {
                        report.notes.push(format!(
                            "{}:{}: project `{}/{}` exists with name {:?}; seeds do not rename",
                            seed.path, project.line, tenant.slug, project.slug, existing.name
                        ));
                    }
                    existing.id
                }
                None => {
                    let id = onboarding
                        .create_project(tx, tenant_id, &project.slug, &project.name)
                        .await
                        .map_err(|e| at(project.line, e))?;
                    report.changes.push(Change::ProjectCreated {
                        tenant: tenant.slug.clone(),
                        project: project.slug.clone(),
                    });
                    id
                }
            };
            for member in &project.members {
                let current = onboarding
                    .member_role(tx, tenant_id, project_id, member.user)
                    .await
                    .map_err(|e| at(member.line, e))?;
                match current {
                    Some(role) if role == member.role => report.present.memberships += 1,
                    Some(role) => {
                        onboarding
                            .set_role(tx, tenant_id, project_id, member.user, &member.role)
                            .await
                            .map_err(|e| at(member.line, e))?;
                        report.changes.push(Change::RoleChanged {
                            tenant: tenant.slug.clone(),
                            project: project.slug.clone(),
                            user: member.user,
                            email: member.email.clone(),
                            from: role,
                            to: member.role.clone(),
                        });
                    }
                    None => {
                        onboarding
                            .add_member(tx, tenant_id, project_id, member.user, &member.role)
                            .await
                            .map_err(|e| at(member.line, e))?;
                        report.changes.push(Change::MemberAdded {
                            tenant: tenant.slug.clone(),
                            project: project.slug.clone(),
                            user: member.user,
                            email: member.email.clone(),
                            role: member.role.clone(),
                        });
                    }
                }
            }
        }
    }
    Ok(report)
}

/// Applies `seed` in one [`SystemTx`] on `maintenance_pool` (a superuser or `BYPASSRLS`
/// connection): commits when everything succeeded, rolls back on any error or when `dry_run`.
pub async fn run(
    maintenance_pool: &PgPool,
    onboarding: &Onboarding,
    seed: &SeedFile,
    dry_run: bool,
) -> Result<Report, SeedError> {
    let mut tx = SystemTx::begin(maintenance_pool, "seed: tenants, projects and memberships")
        .await
        .map_err(AdminError::from)?;
    onboarding.require_privileged(&mut tx).await?;
    let result = apply(onboarding, &mut tx, seed).await;
    match result {
        Ok(mut report) if dry_run => {
            tx.rollback().await.map_err(AdminError::from)?;
            report.dry_run = true;
            Ok(report)
        }
        Ok(report) => {
            tx.commit().await.map_err(AdminError::from)?;
            Ok(report)
        }
        Err(error) => {
            // Dropping the transaction would roll back too; waiting makes "nothing was
            // written" true when this returns.
            let _ = tx.rollback().await;
            Err(error)
        }
    }
}
