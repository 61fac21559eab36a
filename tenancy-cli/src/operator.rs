//! Operator commands: `tenancy seed`, `tenancy tenant create`, `tenancy project create`,
//! `tenancy member add|set-role|remove|list`.
//!
//! Each runs in one `SystemTx` on a privileged connection and records its changes in the audit
//! table (`tenancy_runtime::admin`); a failure rolls everything back.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use sqlx::postgres::{PgPool, PgPoolOptions};
use tenancy_runtime::admin::{AdminError, AdminTables, Onboarding, Project, Tenant};
use tenancy_runtime::{SystemTx, UserId};
use tenancy_seed::SeedFile;

/// The connection and the operator, shared by every operator command.
#[derive(Debug, clap::Args)]
pub struct OperatorArgs {
    /// PRIVILEGED database URL (default: the DATABASE_URL environment variable): a superuser
    /// or a BYPASSRLS role such as the one that applies the migrations, never the app role.
    #[arg(long, value_name = "URL")]
    database_url: Option<String>,
    /// Who runs the command, recorded as `actor` in the audit table (default: $USER).
    #[arg(long, value_name = "NAME")]
    actor: Option<String>,
    /// The policies whose tenants, projects and memberships tables (and helper schema) the
    /// command writes: their names come from the model, never from defaults.
    #[command(flatten)]
    policy: crate::PolicyArgs,
}

/// `tenancy seed`.
#[derive(Debug, clap::Args)]
pub struct SeedArgs {
    /// The seed file (TOML: [[tenant]], [[tenant.project]], [[tenant.project.member]]; see
    /// seeds/dev.toml).
    #[arg(value_name = "FILE")]
    file: PathBuf,
    /// Do everything, print the plan, then roll back: nothing is written.
    #[arg(long)]
    dry_run: bool,
    #[command(flatten)]
    operator: OperatorArgs,
}

/// `tenancy tenant ...`.
#[derive(Debug, clap::Subcommand)]
pub enum TenantCommand {
    /// Create a tenant (audited as tenant.create).
    Create {
        /// Natural key: a-z, 0-9 and inner '-', at most 63 characters.
        #[arg(long)]
        slug: String,
        /// Display name.
        #[arg(long)]
        name: String,
        #[command(flatten)]
        operator: OperatorArgs,
    },
    /// Export every row of a tenant (one consistent snapshot) as JSON Lines plus a manifest.
    Export(crate::tenant::ExportArgs),
    /// Import an export (verified first; one transaction), optionally as a new tenant.
    Import(crate::tenant::ImportArgs),
    /// Delete a tenant and all its rows in batches (needs a current export; audited).
    Delete(crate::tenant::DeleteArgs),
    /// Move projects of one tenant (usually `default`) with all their rows to another tenant.
    Split(crate::tenant::SplitArgs),
    /// Change the model of a tenant's `per tenant` vector column (clears its vectors of the old
    /// model; audited as vector.set_embedding).
    SetVectorModel(crate::tenant::vector_model::SetVectorModelArgs),
}

/// `tenancy project ...`.
#[derive(Debug, clap::Subcommand)]
pub enum ProjectCommand {
    /// Create a project in a tenant (audited as project.create).
    Create {
        /// The tenant's slug.
        #[arg(long, value_name = "SLUG")]
        tenant: String,
        /// Natural key within the tenant: a-z, 0-9 and inner '-', at most 63 characters.
        #[arg(long)]
        slug: String,
        /// Display name.
        #[arg(long)]
        name: String,
        #[command(flatten)]
        operator: OperatorArgs,
    },
    /// Move one project with all its rows and memberships to another tenant (audited).
    Move(crate::tenant::MoveArgs),
}

/// Which membership.
#[derive(Debug, clap::Args)]
pub struct MemberTarget {
    /// The tenant's slug.
    #[arg(long, value_name = "SLUG")]
    tenant: String,
    /// The project's slug.
    #[arg(long, value_name = "SLUG")]
    project: String,
    /// The user's id at the identity provider (a UUID).
    #[arg(long, value_name = "UUID")]
    user: uuid::Uuid,
}

/// `tenancy member ...`.
#[derive(Debug, clap::Subcommand)]
pub enum MemberCommand {
    /// Give a user a role in a project (audited as member.add).
    Add {
        #[command(flatten)]
        target: MemberTarget,
        /// A value of the role enum (e.g. viewer, editor, admin, owner).
        #[arg(long)]
        role: String,
        #[command(flatten)]
        operator: OperatorArgs,
    },
    /// Change a member's role (audited as member.set_role); the last owner cannot be demoted.
    SetRole {
        #[command(flatten)]
        target: MemberTarget,
        /// The new role.
        #[arg(long)]
        role: String,
        #[command(flatten)]
        operator: OperatorArgs,
    },
    /// Remove a member (audited as member.remove); the last owner cannot be removed.
    Remove {
        #[command(flatten)]
        target: MemberTarget,
        #[command(flatten)]
        operator: OperatorArgs,
    },
    /// Give a user a role in every project of a tenant, or change it (the tenant memberships
    /// table; audited as tenant_member.set_role).
    SetTenantRole {
        /// The tenant's slug.
        #[arg(long, value_name = "SLUG")]
        tenant: String,
        /// The user's id at the identity provider (a UUID).
        #[arg(long, value_name = "UUID")]
        user: uuid::Uuid,
        /// A value of the role enum.
        #[arg(long)]
        role: String,
        #[command(flatten)]
        operator: OperatorArgs,
    },
    /// Remove a user's tenant-wide role; their project roles stay (audited as
    /// tenant_member.remove).
    RemoveTenantRole {
        /// The tenant's slug.
        #[arg(long, value_name = "SLUG")]
        tenant: String,
        /// The user's id at the identity provider (a UUID).
        #[arg(long, value_name = "UUID")]
        user: uuid::Uuid,
        #[command(flatten)]
        operator: OperatorArgs,
    },
    /// List a project's members, highest role first.
    List {
        /// The tenant's slug.
        #[arg(long, value_name = "SLUG")]
        tenant: String,
        /// The project's slug.
        #[arg(long, value_name = "SLUG")]
        project: String,
        #[command(flatten)]
        operator: OperatorArgs,
    },
}

/// The tables operator commands write, named as the model names them.
fn admin_tables(model: &tenancy_core::model::Model) -> Result<AdminTables> {
    use tenancy_core::model::TableKind;
    let name = |kind: TableKind, what: &str| {
        model
            .core_table(kind)
            .map(|table| table.name.clone())
            .with_context(|| format!("the policies declare no {what} table"))
    };
    Ok(AdminTables {
        helper_schema: model.settings.helper_schema.clone(),
        tenants_table: name(TableKind::Tenants, "tenants")?,
        projects_table: name(TableKind::Projects, "projects")?,
        memberships_table: name(TableKind::Memberships, "memberships")?,
        tenant_memberships_table: model
            .core_table(TableKind::TenantMemberships)
            .map(|table| table.name.clone()),
    })
}

impl OperatorArgs {
    fn url(&self) -> Result<String> {
        crate::database_url(self.database_url.as_deref())
    }

    fn onboarding(&self) -> Result<Onboarding> {
        // The database comes first: without one nothing else matters.
        self.url()?;
        let actor = match &self.actor {
            Some(actor) => actor.clone(),
            None => std::env::var("USER")
                .ok()
                .filter(|user| !user.trim().is_empty())
                .context("no operator name: pass --actor or set USER")?,
        };
        let model = crate::load(&self.policy)?;
        Ok(Onboarding::with_tables(admin_tables(&model)?, &actor)?)
    }

    async fn pool(&self) -> Result<PgPool> {
        let url = self.url()?;
        PgPoolOptions::new()
            .max_connections(1)
            .acquire_timeout(std::time::Duration::from_secs(10))
            .connect(&url)
            .await
            .context("could not connect to the database")
    }
}

/// `tenancy seed FILE [--dry-run]`.
pub fn seed(args: SeedArgs) -> Result<ExitCode> {
    // A bad file fails before any connection.
    let seed = SeedFile::read(&args.file)?;
    let onboarding = args.operator.onboarding()?;
    let report = crate::block_on(async {
        let pool = args.operator.pool().await?;
        let report = tenancy_seed::run(&pool, &onboarding, &seed, args.dry_run).await;
        pool.close().await;
        Ok(report?)
    })?;
    print!("{report}");
    Ok(ExitCode::SUCCESS)
}

/// Opens a system transaction, checks the role, runs `work`, commits, prints its message.
async fn in_system_tx<F>(operator: &OperatorArgs, reason: &'static str, work: F) -> Result<ExitCode>
where
    F: for<'a> AsyncFnOnce(&'a Onboarding, &'a mut SystemTx) -> Result<String, AdminError>,
{
    let onboarding = operator.onboarding()?;
    let pool = operator.pool().await?;
    let mut tx = SystemTx::begin(&pool, reason)
        .await
        .map_err(AdminError::from)?;
    onboarding.require_privileged(&mut tx).await?;
    let message = match work(&onboarding, &mut tx).await {
        Ok(message) => message,
        Err(error) => {
            let _ = tx.rollback().await;
            pool.close().await;
            return Err(error.into());
        }
    };
    tx.commit().await.map_err(AdminError::from)?;
    pool.close().await;
    println!("{message}");
    Ok(ExitCode::SUCCESS)
}

async fn tenant_and_project(
    onboarding: &Onboarding,
    tx: &mut SystemTx,
    tenant: &str,
    project: &str,
) -> Result<(Tenant, Project), AdminError> {
    let tenant = onboarding.require_tenant(tx, tenant).await?;
    let project = onboarding
        .require_project(tx, tenant.id, project)
        .await
        .map_err(|error| match error {
            AdminError::ProjectNotFound { project, .. } => AdminError::ProjectNotFound {
                tenant: format!("`{}`", tenant.slug),
                project,
            },
            other => other,
        })?;
    Ok((tenant, project))
}

/// `tenancy tenant create|export|import|delete|split`.
pub fn tenant(command: TenantCommand) -> Result<ExitCode> {
    match command {
        TenantCommand::Create {
            slug,
            name,
            operator,
        } => crate::block_on(in_system_tx(
            &operator,
            "operator: tenant create",
            async |onboarding, tx| {
                let id = onboarding.create_tenant(tx, &slug, &name).await?;
                Ok(format!("created tenant {slug} ({id})"))
            },
        )),
        TenantCommand::Export(args) => crate::tenant::run_export(args),
        TenantCommand::Import(args) => crate::tenant::run_import(args),
        TenantCommand::Delete(args) => crate::tenant::run_delete(args),
        TenantCommand::Split(args) => crate::tenant::run_split(args),
        TenantCommand::SetVectorModel(args) => crate::tenant::vector_model::run(args),
    }
}

/// `tenancy project create|move`.
pub fn project(command: ProjectCommand) -> Result<ExitCode> {
    match command {
        ProjectCommand::Create {
            tenant,
            slug,
            name,
            operator,
        } => crate::block_on(in_system_tx(
            &operator,
            "operator: project create",
            async |onboarding, tx| {
                let found = onboarding.require_tenant(tx, &tenant).await?;
                let id = onboarding
                    .create_project(tx, found.id, &slug, &name)
                    .await?;
                Ok(format!("created project {tenant}/{slug} ({id})"))
            },
        )),
        ProjectCommand::Move(args) => crate::tenant::run_move(args),
    }
}

/// `tenancy member add|set-role|remove|list`.
pub fn member(command: MemberCommand) -> Result<ExitCode> {
    match command {
        MemberCommand::Add {
            target,
            role,
            operator,
        } => crate::block_on(in_system_tx(
            &operator,
            "operator: member add",
            async |onboarding, tx| {
                let (tenant, project) =
                    tenant_and_project(onboarding, tx, &target.tenant, &target.project).await?;
                let user = UserId::new(target.user);
                onboarding
                    .add_member(tx, tenant.id, project.id, user, &role)
                    .await?;
                Ok(format!(
                    "granted {role} in {}/{} to {user}",
                    tenant.slug, project.slug
                ))
            },
        )),
        MemberCommand::SetRole {
            target,
            role,
            operator,
        } => crate::block_on(in_system_tx(
            &operator,
            "operator: member set-role",
            async |onboarding, tx| {
                let (tenant, project) =
                    tenant_and_project(onboarding, tx, &target.tenant, &target.project).await?;
                let user = UserId::new(target.user);
                let previous = onboarding
                    .set_role(tx, tenant.id, project.id, user, &role)
                    .await?;
                Ok(if previous == role {
                    format!(
                        "nothing to do: {user} is already {role} in {}/{}",
                        tenant.slug, project.slug
                    )
                } else {
                    format!(
                        "changed role of {user} in {}/{}: {previous} -> {role}",
                        tenant.slug, project.slug
                    )
                })
            },
        )),
        MemberCommand::Remove { target, operator } => crate::block_on(in_system_tx(
            &operator,
            "operator: member remove",
            async |onboarding, tx| {
                let (tenant, project) =
                    tenant_and_project(onboarding, tx, &target.tenant, &target.project).await?;
                let user = UserId::new(target.user);
                let previous = onboarding
                    .remove_member(tx, tenant.id, project.id, user)
                    .await?;
                Ok(format!(
                    "removed {user} from {}/{} (was {previous})",
                    tenant.slug, project.slug
                ))
            },
        )),
        MemberCommand::SetTenantRole {
            tenant,
            user,
            role,
            operator,
        } => crate::block_on(in_system_tx(
            &operator,
            "operator: member set-tenant-role",
            async |onboarding, tx| {
                let tenant = onboarding.require_tenant(tx, &tenant).await?;
                let user = UserId::new(user);
                let previous = onboarding
                    .set_tenant_role(tx, tenant.id, user, &role)
                    .await?;
                Ok(match previous {
                    Some(previous) if previous == role => {
                        format!(
                            "{user} already holds {role} in every project of {}",
                            tenant.slug
                        )
                    }
                    Some(previous) => format!(
                        "{user} now holds {role} in every project of {} (was {previous})",
                        tenant.slug
                    ),
                    None => format!(
                        "granted {role} in every project of {} to {user}",
                        tenant.slug
                    ),
                })
            },
        )),
        MemberCommand::RemoveTenantRole {
            tenant,
            user,
            operator,
        } => crate::block_on(in_system_tx(
            &operator,
            "operator: member remove-tenant-role",
            async |onboarding, tx| {
                let tenant = onboarding.require_tenant(tx, &tenant).await?;
                let user = UserId::new(user);
                let previous = onboarding.remove_tenant_role(tx, tenant.id, user).await?;
                Ok(format!(
                    "removed the tenant-wide role of {user} in {} (was {previous})",
                    tenant.slug
                ))
            },
        )),
        MemberCommand::List {
            tenant,
            project,
            operator,
        } => crate::block_on(in_system_tx(
            &operator,
            "operator: member list",
            async |onboarding, tx| {
                let (tenant, project) =
                    tenant_and_project(onboarding, tx, &tenant, &project).await?;
                let members = onboarding.list_members(tx, tenant.id, project.id).await?;
                if members.is_empty() {
                    return Ok(format!("{}/{} has no members", tenant.slug, project.slug));
                }
                Ok(members
                    .iter()
                    .map(|m| format!("{}\t{}", m.user, m.role))
                    .collect::<Vec<_>>()
                    .join("\n"))
            },
        )),
    }
}
