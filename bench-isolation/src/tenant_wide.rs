//! What a tenant-wide role costs as the tenant's projects grow (`--tenant-wide-only`).
//!
//! `Tenancy::authorize` of a user with a tenant-wide role lists every project of the tenant
//! (a second transaction), the request context holds them all, and a scope of all the user's
//! projects carries them all in its signed token. For tenants of 3 to 10,000 projects, one
//! user who is editor in one project ("project member") and one user who is editor tenant-wide
//! ("tenant-wide member") run, interleaved: `authorize`; a get by key in the first project
//! through a one-project scope; a count of the chunks of every project they hold
//! (`all_projects()`: the member's one project, every project for the tenant-wide member; all
//! chunks are in the first project, so both count the same rows and the difference is the
//! context: its token, its verification, the project list as an index condition).

use std::fmt::Write as _;
use std::time::{Duration, Instant};

use anyhow::{bail, Result};
use sqlx::{Connection as _, PgConnection};
use tenancy_generated::roles::{Editor, Viewer};
use tenancy_generated::{ChunkFilter, Chunks};
use tenancy_runtime::{ProjectId, Tenancy, TenantId, UserId};
use uuid::Uuid;

use crate::data::{seeded_id, BenchDb, Contract};
use crate::{bench_config, percentiles, Rng};

/// Chunks in the first project (the get's keys).
const CHUNKS: u32 = 100;

/// The tenant: `n` projects, the two users, one document and [`CHUNKS`] chunks in project 0.
async fn fill(admin_url: &str, projects: u32) -> Result<()> {
    let mut conn = PgConnection::connect(admin_url).await?;
    let script = format!(
        "
        SET session_replication_role = replica;
        INSERT INTO tenants (id, name, slug) VALUES (md5('tenant-0')::uuid, 'tenant 0', 'tenant-0');
        INSERT INTO projects (tenant_id, id, name, slug)
          SELECT md5('tenant-0')::uuid, md5('project-0-' || p)::uuid, 'project ' || p, 'p-' || p
          FROM generate_series(0, {last}) AS p;
        INSERT INTO user_project_roles (tenant_id, project_id, user_id, role)
          VALUES (md5('tenant-0')::uuid, md5('project-0-0')::uuid, md5('member')::uuid, 'editor');
        INSERT INTO tenant_user_roles (tenant_id, user_id, role)
          VALUES (md5('tenant-0')::uuid, md5('tenant-wide')::uuid, 'editor');
        INSERT INTO documents (tenant_id, project_id, id, title, content_hash, created_by)
          VALUES (md5('tenant-0')::uuid, md5('project-0-0')::uuid, md5('doc')::uuid, 'doc', 'h',
                  md5('member')::uuid);
        INSERT INTO chunks (tenant_id, project_id, id, document_id, ordinal, content, token_count)
          SELECT md5('tenant-0')::uuid, md5('project-0-0')::uuid, md5('chunk-' || o)::uuid,
                 md5('doc')::uuid, o, 'chunk ' || o, 10
          FROM generate_series(1, {CHUNKS}) AS o;
        RESET session_replication_role;
        ",
        last = projects.saturating_sub(1),
    );
    sqlx::raw_sql(sqlx::AssertSqlSafe(script.as_str()))
        .execute(&mut conn)
        .await?;
    sqlx::raw_sql(
        "VACUUM (ANALYZE) tenants, projects, user_project_roles, tenant_user_roles, documents, chunks",
    )
    .execute(&mut conn)
    .await?;
    conn.close().await?;
    Ok(())
}

/// The timings of one user, per measured step.
#[derive(Default)]
struct Samples {
    authorize: Vec<Duration>,
    count_all_projects: Vec<Duration>,
    get: Vec<Duration>,
}

/// One iteration for `user`: authorize, a get in project 0, a count over every project held.
async fn once(
    tenancy: &Tenancy,
    user: Uuid,
    tenant: Uuid,
    project: Uuid,
    key: Uuid,
    samples: Option<&mut Samples>,
) -> Result<()> {
    let start = Instant::now();
    let ctx = tenancy
        .authorize(UserId::new(user), TenantId::new(tenant))
        .await?;
    let authorized = start.elapsed();
    let all = ctx.all_projects().with_at_least::<Viewer>();
    let scope = ctx.project(ProjectId::new(project))?.require::<Editor>()?;
    let start = Instant::now();
    let mut tx = tenancy.begin(&scope).await?;
    if Chunks::get(&mut tx, key).await?.is_none() {
        bail!("tenant-wide bench: the get found nothing");
    }
    tx.commit().await?;
    let got = start.elapsed();
    let start = Instant::now();
    let mut tx = tenancy.begin(&all).await?;
    let count = Chunks::count(&mut tx, &ChunkFilter::default()).await?;
    tx.commit().await?;
    let counted = start.elapsed();
    if count != i64::from(CHUNKS) {
        bail!("tenant-wide bench: the count over every project saw {count} chunks, not {CHUNKS}");
    }
    if let Some(samples) = samples {
        samples.authorize.push(authorized);
        samples.count_all_projects.push(counted);
        samples.get.push(got);
    }
    Ok(())
}

/// What `user`'s context holds: (projects, bytes of the statement that opens a transaction
/// over all of them, token included).
async fn context_size(tenancy: &Tenancy, user: Uuid, tenant: Uuid) -> Result<(usize, usize)> {
    let ctx = tenancy
        .authorize(UserId::new(user), TenantId::new(tenant))
        .await?;
    let all = ctx.all_projects().with_at_least::<Viewer>();
    Ok((
        ctx.memberships().count(),
        tenancy.begin_statement(&all)?.len(),
    ))
}

/// The section: one fresh database per tenant size.
pub async fn run(server: &str, smoke: bool) -> Result<String> {
    let (sizes, iterations): (&[u32], usize) = if smoke {
        (&[3, 20], 4)
    } else {
        (&[3, 100, 1_000, 10_000], 200)
    };
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    let mut report = String::from(
        "| projects in the tenant | step | project member p50 ms | tenant-wide member p50 ms | ratio |\n\
         |---:|---|---:|---:|---:|\n",
    );
    let mut sizes_table = String::from(
        "| projects in the tenant | projects in the context: member / tenant-wide | all-projects statement bytes: member / tenant-wide |\n|---:|---|---|\n",
    );
    let mut rng = Rng(0x510e_527f_ade6_82d1);
    for &projects in sizes {
        let name = format!("tenancy_bench_tenant_wide_{}", std::process::id());
        eprintln!("bench: tenant-wide roles, {projects} projects");
        let db = BenchDb::create(server, &name, Contract::V3).await?;
        fill(&db.admin_url, projects).await?;
        let admin = db.admin_pool(1).await?;
        let tenancy = Tenancy::with_config(db.app_pool(1).await?, bench_config()?);
        tenancy.check().await?;
        let tenant = seeded_id(&admin, "tenant-0").await?;
        let project = seeded_id(&admin, "project-0-0").await?;
        let users = [
            seeded_id(&admin, "member").await?,
            seeded_id(&admin, "tenant-wide").await?,
        ];
        let keys: Vec<Uuid> = sqlx::query_scalar("SELECT id FROM chunks ORDER BY id")
            .fetch_all(&admin)
            .await?;
        let mut samples = [Samples::default(), Samples::default()];
        // One warm-up iteration, then measured ones, the two users' order alternating.
        for iteration in 0..=iterations {
            let key = rng.pick(&keys)?;
            for turn in 0..2 {
                let who = (turn + iteration) % 2;
                let measured = (iteration > 0).then_some(&mut samples[who]);
                once(&tenancy, users[who], tenant, project, key, measured).await?;
            }
        }
        let shapes = [
            context_size(&tenancy, users[0], tenant).await?,
            context_size(&tenancy, users[1], tenant).await?,
        ];
        if shapes[1].0 != projects as usize {
            bail!(
                "the tenant-wide member's context holds {} projects, the tenant {projects}",
                shapes[1].0
            );
        }
        let [member, wide] = &mut samples;
        for (step, a, b) in [
            ("authorize", &mut member.authorize, &mut wide.authorize),
            (
                "get by key, one-project scope",
                &mut member.get,
                &mut wide.get,
            ),
            (
                "count over every project held (`Chunks::count`)",
                &mut member.count_all_projects,
                &mut wide.count_all_projects,
            ),
        ] {
            let (a50, _) = percentiles(a);
            let (b50, _) = percentiles(b);
            let _ = writeln!(
                report,
                "| {projects} | {step} | {:.3} | {:.3} | **{:.2}x** |",
                ms(a50),
                ms(b50),
                ms(b50) / ms(a50)
            );
        }
        let _ = writeln!(
            sizes_table,
            "| {projects} | {} / {} | {} / {} |",
            shapes[0].0, shapes[1].0, shapes[0].1, shapes[1].1
        );
        drop(tenancy);
        admin.close().await;
        db.drop_db().await?;
    }
    Ok(format!(
        "{iterations} iterations per size, the two users interleaved; a fresh database per \
         size.\n\n{report}\n{sizes_table}"
    ))
}
