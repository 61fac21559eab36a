//! Tenant lifecycle commands: `tenancy tenant export|import|delete|split`,
//! `tenancy project move` and `tenancy usage`. Every table, column and order comes from the model, so the
//! commands work for any policies, not only the RAG example.

pub mod delete;
pub mod export;
pub mod import;
pub mod manifest;
pub mod moves;
pub mod plan;
pub mod progress;
pub mod usage;
pub mod vector_model;

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{bail, Context, Result};
use sqlx::{Connection, PgConnection};
use tenancy_core::model::{Model, TableKind};

use plan::ident;

/// The connection, operator and policies every lifecycle command shares.
#[derive(Debug, clap::Args)]
pub struct LifecycleArgs {
    /// PRIVILEGED database URL (default: the DATABASE_URL environment variable): a superuser
    /// or a BYPASSRLS role, never the app role.
    #[arg(long, value_name = "URL")]
    database_url: Option<String>,
    /// Who runs the command, recorded as `actor` in the audit table (default: $USER).
    #[arg(long, value_name = "NAME")]
    actor: Option<String>,
    /// The policies whose tables hold the tenant's data.
    #[command(flatten)]
    policy: crate::PolicyArgs,
}

/// A loaded model, a database URL and an operator name.
pub struct Session {
    /// The model the tables come from.
    pub model: Model,
    url: String,
    actor: String,
    tenants_table: String,
    projects_table: String,
    audit_table: String,
}

/// A tenant found by slug.
#[derive(Debug, Clone)]
pub struct FoundTenant {
    /// Its id.
    pub id: uuid::Uuid,
    /// Its slug.
    pub slug: String,
}

impl LifecycleArgs {
    /// Resolves the URL, the actor and the model (in that order, so a missing database is
    /// the first thing said).
    pub fn session(&self) -> Result<Session> {
        let url = crate::database_url(self.database_url.as_deref())?;
        let actor = match &self.actor {
            Some(actor) => actor.clone(),
            None => std::env::var("USER")
                .ok()
                .filter(|user| !user.trim().is_empty())
                .context("no operator name: pass --actor or set USER")?,
        };
        let model = crate::load(&self.policy)?;
        let table = |kind: TableKind, what: &str| {
            model
                .core_table(kind)
                .map(|t| t.name.clone())
                .with_context(|| format!("the policies declare no {what} table"))
        };
        let tenants_table = table(TableKind::Tenants, "tenants")?;
        let projects_table = table(TableKind::Projects, "projects")?;
        let audit_table = format!(
            "{}.{}",
            ident(&model.settings.helper_schema),
            ident(tenancy_runtime::admin::AUDIT_TABLE)
        );
        Ok(Session {
            model,
            url,
            actor,
            tenants_table,
            projects_table,
            audit_table,
        })
    }
}

impl Session {
    /// A new connection to the database.
    pub async fn connect(&self) -> Result<PgConnection> {
        PgConnection::connect(&self.url)
            .await
            .context("could not connect to the database")
    }

    /// The tenant with `slug`, if any.
    pub async fn tenant(&self, conn: &mut PgConnection, slug: &str) -> Result<Option<FoundTenant>> {
        let row: Option<(uuid::Uuid, String)> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT id, slug FROM {} WHERE slug = $1",
            ident(&self.tenants_table)
        )))
        .bind(slug)
        .fetch_optional(conn)
        .await
        .context("could not look the tenant up")?;
        Ok(row.map(|(id, slug)| FoundTenant { id, slug }))
    }

    /// The tenant with `slug`, or one sentence saying there is none.
    pub async fn require_tenant(&self, conn: &mut PgConnection, slug: &str) -> Result<FoundTenant> {
        match self.tenant(conn, slug).await? {
            Some(found) => Ok(found),
            None => bail!("no tenant with slug `{slug}`"),
        }
    }

    /// The id of project `slug` of `tenant`, or one sentence saying there is none.
    pub async fn require_project(
        &self,
        conn: &mut PgConnection,
        tenant: &FoundTenant,
        slug: &str,
    ) -> Result<uuid::Uuid> {
        let id: Option<uuid::Uuid> = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
            "SELECT id FROM {} WHERE tenant_id = $1 AND slug = $2",
            ident(&self.projects_table)
        )))
        .bind(tenant.id)
        .bind(slug)
        .fetch_optional(conn)
        .await
        .context("could not look the project up")?;
        id.with_context(|| format!("tenant `{}` has no project with slug `{slug}`", tenant.slug))
    }

    /// Records one audit row (`action`, `subject`) for `tenant` in the current transaction.
    pub async fn audit(
        &self,
        conn: &mut PgConnection,
        tenant: uuid::Uuid,
        project: Option<uuid::Uuid>,
        action: &str,
        subject: &serde_json::Value,
    ) -> Result<()> {
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "INSERT INTO {} (tenant_id, project_id, actor, action, subject) \
             VALUES ($1, $2, $3, $4, CAST($5 AS jsonb))",
            self.audit_table
        )))
        .bind(tenant)
        .bind(project)
        .bind(&self.actor)
        .bind(action)
        .bind(subject.to_string())
        .execute(conn)
        .await
        .with_context(|| format!("could not write the audit entry {action}"))?;
        Ok(())
    }

    /// The quoted audit table.
    pub fn audit_table(&self) -> &str {
        &self.audit_table
    }
}

/// One sentence unless the connection's role bypasses row-level security (every tenant table
/// forces it, so any other role would see, export or delete nothing and call it success).
pub async fn require_privileged(conn: &mut PgConnection) -> Result<()> {
    let (role, bypasses): (String, bool) = sqlx::query_as(
        "SELECT rolname::pg_catalog.text, rolsuper OR rolbypassrls FROM pg_catalog.pg_roles \
         WHERE rolname = current_user",
    )
    .fetch_one(conn)
    .await
    .context("could not read the connection's role")?;
    if !bypasses {
        bail!(
            "role {role} is subject to row-level security: connect as a superuser or a \
             BYPASSRLS role (the migration role), not as the app role"
        );
    }
    Ok(())
}

/// `tenancy tenant export TENANT --out DIR`.
#[derive(Debug, clap::Args)]
pub struct ExportArgs {
    /// The tenant's slug.
    #[arg(value_name = "TENANT")]
    tenant: String,
    /// The directory to write (created; must be empty if it exists).
    #[arg(long, value_name = "DIR")]
    out: PathBuf,
    #[command(flatten)]
    lifecycle: LifecycleArgs,
}

/// `tenancy tenant import DIR`.
#[derive(Debug, clap::Args)]
pub struct ImportArgs {
    /// The export directory (with its manifest.json).
    #[arg(value_name = "DIR")]
    dir: PathBuf,
    /// Import as a new tenant with this slug (a new tenant id; every row's tenant id remapped).
    #[arg(long = "as", value_name = "SLUG")]
    as_tenant: Option<String>,
    /// Load the rows into the tenant of that slug when it already exists (off by default: an
    /// existing tenant is refused).
    #[arg(long)]
    merge: bool,
    #[command(flatten)]
    lifecycle: LifecycleArgs,
}

/// `tenancy tenant delete TENANT --confirm TENANT`.
#[derive(Debug, clap::Args)]
pub struct DeleteArgs {
    /// The tenant's slug.
    #[arg(value_name = "TENANT")]
    tenant: String,
    /// The tenant's slug again: the command refuses to run unless both agree.
    #[arg(long, value_name = "TENANT")]
    confirm: String,
    /// An export of the tenant (`tenancy tenant export`) that must match the tenant's current
    /// rows exactly (nothing written since).
    #[arg(
        long,
        value_name = "DIR",
        required_unless_present = "no_export_i_am_sure"
    )]
    export: Option<PathBuf>,
    /// Delete without a verified export: the data is gone for good.
    #[arg(long)]
    no_export_i_am_sure: bool,
    /// Rows deleted per transaction (short locks on big tenants).
    #[arg(long, value_name = "N", default_value_t = 5000)]
    batch: i64,
    #[command(flatten)]
    lifecycle: LifecycleArgs,
}

/// `tenancy tenant split`.
#[derive(Debug, clap::Args)]
pub struct SplitArgs {
    /// The tenant the projects leave (usually `default`).
    #[arg(long, value_name = "SLUG", default_value = "default")]
    from: String,
    /// The tenant they move into.
    #[arg(long, value_name = "SLUG")]
    to: String,
    /// Create the target tenant with this display name (refused if it exists).
    #[arg(long, value_name = "NAME")]
    create: Option<String>,
    /// The projects to move (slugs, comma-separated or repeated).
    #[arg(
        long = "project",
        value_name = "SLUG",
        value_delimiter = ',',
        required = true
    )]
    projects: Vec<String>,
    /// Move each project in its own transaction (short locks on a big tenant); after an
    /// interruption, the same command again resumes, skipping the projects already moved.
    #[arg(long)]
    batched: bool,
    #[command(flatten)]
    lifecycle: LifecycleArgs,
}

/// `tenancy project move`.
#[derive(Debug, clap::Args)]
pub struct MoveArgs {
    /// The project's slug.
    #[arg(value_name = "PROJECT")]
    project: String,
    /// The tenant it belongs to now.
    #[arg(long, value_name = "SLUG")]
    from: String,
    /// The tenant it moves to (must exist).
    #[arg(long, value_name = "SLUG")]
    to: String,
    #[command(flatten)]
    lifecycle: LifecycleArgs,
}

/// Runs `tenancy tenant export`.
pub fn run_export(args: ExportArgs) -> Result<ExitCode> {
    let session = args.lifecycle.session()?;
    let manifest = crate::block_on(export::export(&session, &args.tenant, &args.out))?;
    let rows: u64 = manifest.tables.iter().map(|t| t.rows).sum();
    for table in &manifest.tables {
        println!("{}\t{}", table.table, table.rows);
    }
    println!(
        "exported tenant {} ({} rows in {} tables) into {}",
        manifest.tenant.slug,
        rows,
        manifest.tables.len(),
        args.out.display()
    );
    Ok(ExitCode::SUCCESS)
}

/// Runs `tenancy tenant import`.
pub fn run_import(args: ImportArgs) -> Result<ExitCode> {
    let session = args.lifecycle.session()?;
    let options = import::ImportOptions {
        as_tenant: args.as_tenant,
        merge: args.merge,
    };
    let report = crate::block_on(import::import(&session, &args.dir, &options))?;
    for (table, rows) in &report.counts {
        println!("{table}\t{rows}");
    }
    println!(
        "imported {} rows into tenant {} ({})",
        report.counts.iter().map(|(_, n)| n).sum::<u64>(),
        report.slug,
        report.tenant_id
    );
    Ok(ExitCode::SUCCESS)
}

/// Runs `tenancy tenant delete`.
pub fn run_delete(args: DeleteArgs) -> Result<ExitCode> {
    if args.confirm != args.tenant {
        bail!(
            "--confirm `{}` does not match the tenant `{}`: type the tenant's slug twice",
            args.confirm,
            args.tenant
        );
    }
    if args.batch < 1 {
        bail!("--batch must be at least 1");
    }
    let session = args.lifecycle.session()?;
    let options = delete::DeleteOptions {
        export: if args.no_export_i_am_sure {
            None
        } else {
            args.export
        },
        batch: args.batch,
    };
    let report = crate::block_on(delete::delete(&session, &args.tenant, &options))?;
    if let Some(note) = &report.resumed {
        println!("{note}");
    }
    for (table, rows) in &report.counts {
        println!("{table}\t{rows}");
    }
    println!(
        "deleted tenant {} ({} rows)",
        args.tenant,
        report.counts.iter().map(|(_, n)| n).sum::<u64>()
    );
    Ok(ExitCode::SUCCESS)
}

/// Runs `tenancy tenant split`.
pub fn run_split(args: SplitArgs) -> Result<ExitCode> {
    let session = args.lifecycle.session()?;
    let request = moves::MoveRequest {
        from: args.from,
        to: args.to,
        create: args.create,
        projects: args.projects,
        batched: args.batched,
    };
    let report = crate::block_on(moves::move_projects(&session, &request))?;
    print!("{report}");
    Ok(ExitCode::SUCCESS)
}

/// Runs `tenancy project move`.
pub fn run_move(args: MoveArgs) -> Result<ExitCode> {
    let session = args.lifecycle.session()?;
    let request = moves::MoveRequest {
        from: args.from,
        to: args.to,
        create: None,
        projects: vec![args.project],
        batched: false,
    };
    let report = crate::block_on(moves::move_projects(&session, &request))?;
    print!("{report}");
    Ok(ExitCode::SUCCESS)
}

/// `--format` of `tenancy usage`.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum UsageFormat {
    /// Aligned columns with a header.
    Text,
    /// `{"rows": [{"tenant", "project", "table", "rows", "bytes", "vectors", "tokens"}], "untimed": [...]}`.
    Json,
    /// A header line, then one line per tenant, project and table.
    Csv,
    /// Prometheus text exposition (gauges `tenancy_usage_rows|bytes|vectors|tokens`), for a
    /// textfile collector.
    Prometheus,
}

/// `tenancy usage`.
#[derive(Debug, clap::Args)]
pub struct UsageArgs {
    /// Only this tenant (slug).
    #[arg(long, value_name = "SLUG")]
    tenant: Option<String>,
    /// Only rows inserted on or after this day (YYYY-MM-DD, UTC), by each table's insert time.
    #[arg(long, value_name = "DATE")]
    since: Option<String>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = UsageFormat::Text)]
    format: UsageFormat,
    /// PRIVILEGED database URL (default: the DATABASE_URL environment variable).
    #[arg(long, value_name = "URL")]
    database_url: Option<String>,
    /// The policies whose tables are counted.
    #[command(flatten)]
    policy: crate::PolicyArgs,
}

/// Runs `tenancy usage`.
pub fn run_usage(args: UsageArgs) -> Result<ExitCode> {
    let url = crate::database_url(args.database_url.as_deref())?;
    let model = crate::load(&args.policy)?;
    let query = usage::UsageQuery {
        tenant: args.tenant,
        since: args.since,
    };
    let report = crate::block_on(async {
        let mut conn = PgConnection::connect(&url)
            .await
            .context("could not connect to the database")?;
        let report = usage::usage(&mut conn, &model, &query).await;
        conn.close().await.ok();
        report
    })?;
    match args.format {
        UsageFormat::Text => print!("{}", report.to_text()),
        UsageFormat::Json => println!("{}", report.to_json()?),
        UsageFormat::Csv => print!("{}", report.to_csv()),
        UsageFormat::Prometheus => print!("{}", report.to_prometheus()),
    }
    Ok(ExitCode::SUCCESS)
}
