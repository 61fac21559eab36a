//! The cost of row conditions and stamped columns (issue 19; method and results in
//! BENCHMARKS.md, "Row conditions and stamped columns").
//!
//! Two databases from the same generated migrations, same data:
//! - `generated`: as shipped: `documents_update` is `(editor AND created_by = current_user)
//!   OR admin`, the `documents_stamp` trigger writes `created_by`/`created_at`/`updated_at`,
//!   and the `documents_column_rights` trigger checks the admin-only columns; `queries_select`
//!   is `(viewer AND asked_by = current_user) OR editor`, and a page of queries is
//!   `Queries::list` without a filter;
//! - `by hand`: `documents_update` is the plain editor rule, the query says `AND created_by =
//!   $4` itself, and both triggers are disabled (the insert names `created_by`);
//!   `queries_select` is the plain viewer rule and the viewer's page passes its own id as the
//!   list's `asked_by` filter (`AND asked_by = $4` in the same statement).
//!
//! Both run as the app role through `Tenancy::begin` (one signed-context statement) and commit;
//! transactions alternate between the databases. Reported: p50 and p90 per transaction and the ratio.
//! `cargo run --release -p bench-isolation --bin bench-conditions [-- --rounds N]`.

use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use sqlx::PgPool;
use tenancy_generated::roles::{Editor, Viewer};
use tenancy_generated::{Documents, Queries, QueryCursor, QueryFilter, QueryPage};
use tenancy_runtime::{ProjectId, ProjectScope, Tenancy, TenantId, UserId};
use tenancy_tests::TestDb;
use uuid::Uuid;

/// Documents per project (two projects, the editor's and another).
const DOCUMENTS: i32 = 20_000;
/// Queries per project; every `ASKERS`-th one is the viewer's (2,500 of 50,000).
const QUERIES: i32 = 50_000;
const ASKERS: i32 = 20;
/// Rows per page of queries.
const PAGE: u32 = 50;

struct Side {
    name: &'static str,
    db: TestDb,
    tenancy: Tenancy,
    scope: ProjectScope<Editor>,
    /// The viewer's read scope on `project` (reads only the queries it asked).
    viewer_scope: ProjectScope<Viewer>,
    /// The editor's read scope on `project` (reads every query).
    editor_reads: ProjectScope<Viewer>,
    tenant: Uuid,
    project: Uuid,
    author: Uuid,
    viewer: Uuid,
    documents: Vec<Uuid>,
    /// Ids of the viewer's queries in `project`, in key order: the pages' cursors.
    cursors: Vec<Uuid>,
    by_hand: bool,
}

async fn side(name: &'static str, by_hand: bool) -> Result<Side> {
    let db = TestDb::try_fresh().await?;
    let admin = db.admin_pool().clone();
    let (tenant, project, other, author, viewer) = (
        Uuid::new_v4(),
        Uuid::new_v4(),
        Uuid::new_v4(),
        Uuid::new_v4(),
        Uuid::new_v4(),
    );
    sqlx::query("INSERT INTO tenants (id, name, slug) VALUES ($1, 't', 't')")
        .bind(tenant)
        .execute(&admin)
        .await?;
    for (p, slug) in [(project, "p"), (other, "q")] {
        sqlx::query("INSERT INTO projects (tenant_id, id, name, slug) VALUES ($1, $2, $3, $3)")
            .bind(tenant)
            .bind(p)
            .bind(slug)
            .execute(&admin)
            .await?;
        sqlx::query(
            "INSERT INTO user_project_roles (tenant_id, project_id, user_id, role) \
             VALUES ($1, $2, $3, 'editor')",
        )
        .bind(tenant)
        .bind(p)
        .bind(author)
        .execute(&admin)
        .await?;
        // Half the documents are the editor's own.
        sqlx::query(
            "INSERT INTO documents (tenant_id, project_id, title, content_hash, created_by) \
             SELECT $1, $2, 'doc ' || n, md5($2::text || n), \
                    CASE WHEN n % 2 = 0 THEN $3 ELSE gen_random_uuid() END \
             FROM generate_series(1, $4) AS n",
        )
        .bind(tenant)
        .bind(p)
        .bind(author)
        .bind(DOCUMENTS)
        .execute(&admin)
        .await?;
        sqlx::query(
            "INSERT INTO user_project_roles (tenant_id, project_id, user_id, role) \
             VALUES ($1, $2, $3, 'viewer')",
        )
        .bind(tenant)
        .bind(p)
        .bind(viewer)
        .execute(&admin)
        .await?;
        // Every ASKERS-th query is the viewer's, the next one the editor's, the rest by 18
        // other users. The superuser's insert keeps the given `asked_by`.
        sqlx::query(
            "INSERT INTO queries (tenant_id, project_id, asked_by, query_text) \
             SELECT $1, $2, \
                    CASE n % $5 WHEN 0 THEN $3 WHEN 1 THEN $4 ELSE md5('asker ' || (n % $5))::uuid END, \
                    'question ' || n \
             FROM generate_series(1, $6) AS n",
        )
        .bind(tenant)
        .bind(p)
        .bind(viewer)
        .bind(author)
        .bind(ASKERS)
        .bind(QUERIES)
        .execute(&admin)
        .await?;
    }
    if by_hand {
        sqlx::raw_sql(
            "ALTER POLICY documents_update ON documents \
               USING (COALESCE(project_id = ANY ((SELECT tenancy.project_ids('editor'))::uuid[]), false)) \
               WITH CHECK (COALESCE(project_id = ANY ((SELECT tenancy.project_ids('editor'))::uuid[]), false)); \
             ALTER POLICY queries_select ON queries \
               USING (project_id = ANY ((SELECT tenancy.project_ids('viewer'))::uuid[])); \
             ALTER TABLE documents DISABLE TRIGGER documents_stamp; \
             ALTER TABLE documents DISABLE TRIGGER documents_column_rights; \
             GRANT UPDATE (updated_at) ON documents TO tenancy_app",
        )
        .execute(&admin)
        .await?;
    }
    // Per-function call counts and times (pg_stat_user_functions), for the write-up.
    let database: String = sqlx::query_scalar("SELECT current_database()")
        .fetch_one(&admin)
        .await?;
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
        "ALTER DATABASE \"{database}\" SET track_functions = 'all'"
    )))
    .execute(&admin)
    .await?;
    sqlx::raw_sql("ANALYZE").execute(&admin).await?;
    let documents: Vec<Uuid> = sqlx::query_scalar(
        "SELECT id FROM documents WHERE project_id = $1 AND created_by = $2 ORDER BY id LIMIT 500",
    )
    .bind(project)
    .bind(author)
    .fetch_all(&admin)
    .await?;
    let cursors: Vec<Uuid> = sqlx::query_scalar(
        "SELECT id FROM queries WHERE project_id = $1 AND asked_by = $2 ORDER BY id",
    )
    .bind(project)
    .bind(viewer)
    .fetch_all(&admin)
    .await?;
    let pool = PgPool::connect(db.app_url()).await?;
    let tenancy = Tenancy::with_config(pool, tenancy_generated::config());
    let scope = tenancy
        .authorize(UserId::new(author), TenantId::new(tenant))
        .await?
        .project(ProjectId::new(project))
        .context("project")?
        .require::<Editor>()
        .context("editor")?;
    let read_scope = |user: Uuid| {
        let tenancy = &tenancy;
        async move {
            tenancy
                .authorize(UserId::new(user), TenantId::new(tenant))
                .await?
                .project(ProjectId::new(project))
                .context("project")?
                .require::<Viewer>()
                .context("viewer")
        }
    };
    let viewer_scope = read_scope(viewer).await?;
    let editor_reads = read_scope(author).await?;
    Ok(Side {
        name,
        db,
        tenancy,
        scope,
        viewer_scope,
        editor_reads,
        tenant,
        project,
        author,
        viewer,
        documents,
        cursors,
        by_hand,
    })
}

/// One committed update of one of the author's documents.
async fn update(side: &Side, i: usize) -> Result<Duration> {
    let id = side.documents[i % side.documents.len()];
    let started = Instant::now();
    let mut tx = side.tenancy.begin(&side.scope).await?;
    let affected = if side.by_hand {
        sqlx::query(
            "UPDATE public.documents SET title = $4, updated_at = pg_catalog.now() \
             WHERE tenant_id = $1 AND project_id = $2 AND id = $3 AND created_by = $5",
        )
        .bind(side.tenant)
        .bind(side.project)
        .bind(id)
        .bind(format!("t{i}"))
        .bind(side.author)
        .execute(tx.connection())
        .await?
        .rows_affected()
    } else {
        sqlx::query(Documents::UPDATE_SQL)
            .bind(side.tenant)
            .bind(side.project)
            .bind(id)
            .bind(true)
            .bind(format!("t{i}"))
            .bind(false)
            .bind(None::<sqlx::types::JsonValue>)
            .execute(tx.connection())
            .await?
            .rows_affected()
    };
    tx.commit().await?;
    anyhow::ensure!(
        affected == 1,
        "{}: update affected {affected} rows",
        side.name
    );
    Ok(started.elapsed())
}

/// One committed page of queries after a cursor in the middle of the project (one of the
/// viewer's queries), as the viewer (`as_viewer`) or as the editor. The generated side lists
/// without a filter and lets the policy narrow; by hand the viewer's page filters on its own
/// id in the statement (the editor's is the same call on both sides, under the two policies).
async fn list(side: &Side, i: usize, as_viewer: bool) -> Result<Duration> {
    // A cursor with at least a page of the viewer's queries after it: every page is full.
    let at = (i * 37) % (side.cursors.len() - PAGE as usize - 1);
    let after = side.cursors[at];
    let scope = if as_viewer {
        &side.viewer_scope
    } else {
        &side.editor_reads
    };
    let filter = QueryFilter {
        asked_by: (as_viewer && side.by_hand).then_some(side.viewer),
        ..QueryFilter::default()
    };
    let page = QueryPage {
        after: Some(QueryCursor {
            project_id: side.project,
            id: after,
        }),
        limit: PAGE,
    };
    let started = Instant::now();
    let mut tx = side.tenancy.begin(scope).await?;
    let rows = Queries::list(&mut tx, &filter, page).await?;
    tx.commit().await?;
    let elapsed = started.elapsed();
    // Both sides return the same page: the viewer's next queries after the cursor (as the
    // superuser lists them), or for the editor a full page of every asker's.
    let ids: Vec<Uuid> = rows.iter().map(|q| q.id).collect();
    if as_viewer {
        let want: Vec<Uuid> = side.cursors[at + 1..]
            .iter()
            .take(PAGE as usize)
            .copied()
            .collect();
        anyhow::ensure!(ids == want, "{}: not the viewer's next page", side.name);
    } else {
        anyhow::ensure!(
            ids.len() == PAGE as usize && rows.iter().any(|q| q.asked_by != side.viewer),
            "{}: not a full page of every asker's queries",
            side.name
        );
    }
    Ok(elapsed)
}

/// The plans of one viewer page and one editor page (the cursor of transaction 0), custom
/// (`EXPLAIN ANALYZE` with the values bound) and generic (`PREPARE` under
/// `force_generic_plan`, then `EXPLAIN ANALYZE EXECUTE`): what each side's page did.
async fn page_plans(side: &Side) -> Result<String> {
    let after = side.cursors[0];
    let mut out = String::new();
    for (who, scope, as_viewer) in [
        ("viewer", &side.viewer_scope, true),
        ("editor", &side.editor_reads, false),
    ] {
        let asked_by = (as_viewer && side.by_hand).then_some(side.viewer);
        let mut tx = side.tenancy.begin(scope).await?;
        let custom: Vec<String> = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
            "EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF, SUMMARY OFF) {}",
            Queries::LIST_AFTER_IN_PROJECT_SQL
        )))
        .bind(side.tenant)
        .bind(side.project)
        .bind(None::<Uuid>)
        .bind(asked_by)
        .bind(after)
        .bind(i64::from(PAGE))
        .fetch_all(tx.connection())
        .await?;
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
            "SET LOCAL plan_cache_mode = force_generic_plan; PREPARE bench_page AS {}",
            Queries::LIST_AFTER_IN_PROJECT_SQL
        )))
        .execute(tx.connection())
        .await?;
        let asked_by = asked_by.map_or("NULL".to_owned(), |id| format!("'{id}'::uuid"));
        let generic: Vec<String> = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
            "EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF, SUMMARY OFF) EXECUTE bench_page('{}'::uuid, '{}'::uuid, NULL, {asked_by}, '{after}'::uuid, {PAGE})",
            side.tenant, side.project
        )))
        .fetch_all(tx.connection())
        .await?;
        sqlx::raw_sql("DEALLOCATE bench_page")
            .execute(tx.connection())
            .await?;
        tx.rollback().await?;
        out.push_str(&format!(
            "\n{} side, {who} page, custom plan:\n{}\n\n{} side, {who} page, generic plan:\n{}\n",
            side.name,
            custom.join("\n"),
            side.name,
            generic.join("\n")
        ));
    }
    Ok(out)
}

/// One committed insert of a document (stamped by the trigger, or naming its stamps).
async fn insert(side: &Side, i: usize) -> Result<Duration> {
    let started = Instant::now();
    let mut tx = side.tenancy.begin(&side.scope).await?;
    let hash = Uuid::new_v4().to_string();
    if side.by_hand {
        sqlx::query(
            "INSERT INTO public.documents (tenant_id, project_id, title, content_hash, created_by, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, pg_catalog.now(), pg_catalog.now())",
        )
        .bind(side.tenant)
        .bind(side.project)
        .bind(format!("n{i}"))
        .bind(hash)
        .bind(side.author)
        .execute(tx.connection())
        .await?;
    } else {
        sqlx::query(
            "INSERT INTO public.documents (tenant_id, project_id, title, content_hash) \
             VALUES ($1, $2, $3, $4)",
        )
        .bind(side.tenant)
        .bind(side.project)
        .bind(format!("n{i}"))
        .bind(hash)
        .execute(tx.connection())
        .await?;
    }
    tx.commit().await?;
    Ok(started.elapsed())
}

fn percentile(samples: &mut [Duration], p: f64) -> Duration {
    samples.sort_unstable();
    let at = ((samples.len() as f64 - 1.0) * p).round() as usize;
    samples.get(at).copied().unwrap_or_default()
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<()> {
    let mut rounds = 6usize;
    let mut per_round = 500usize;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--rounds" => rounds = args.next().context("--rounds N")?.parse()?,
            "--per-round" => per_round = args.next().context("--per-round N")?.parse()?,
            other => anyhow::bail!("unknown argument {other}"),
        }
    }
    let sides = [
        side("generated", false).await?,
        side("by hand", true).await?,
    ];
    // Warm both.
    for s in &sides {
        for i in 0..50 {
            update(s, i).await?;
            insert(s, i).await?;
            list(s, i, true).await?;
            list(s, i, false).await?;
        }
    }
    let mut updates: [Vec<Duration>; 2] = [Vec::new(), Vec::new()];
    let mut inserts: [Vec<Duration>; 2] = [Vec::new(), Vec::new()];
    let mut viewer_pages: [Vec<Duration>; 2] = [Vec::new(), Vec::new()];
    let mut editor_pages: [Vec<Duration>; 2] = [Vec::new(), Vec::new()];
    // Alternate the sides transaction by transaction (and which goes first, by round), so
    // load on the machine falls on both alike.
    for round in 0..rounds {
        for i in 0..per_round {
            let n = round * per_round + i;
            let order: [usize; 2] = if (round + i) % 2 == 0 { [0, 1] } else { [1, 0] };
            for k in order {
                updates[k].push(update(&sides[k], n).await?);
                inserts[k].push(insert(&sides[k], n).await?);
                viewer_pages[k].push(list(&sides[k], n, true).await?);
                editor_pages[k].push(list(&sides[k], n, false).await?);
            }
        }
    }
    println!(
        "{} rounds x {per_round} transactions per side, {DOCUMENTS} documents and {QUERIES} queries \
         per project x 2 projects, pages of {PAGE}",
        rounds
    );
    println!("| transaction | generated p50 | by hand p50 | ratio p50 | generated p90 | by hand p90 | ratio p90 |");
    println!("|---|---|---|---|---|---|---|");
    for (label, samples) in [
        ("update (conditioned)", &mut updates),
        ("insert (stamped)", &mut inserts),
        ("list page as the viewer (conditioned)", &mut viewer_pages),
        ("list page as an editor", &mut editor_pages),
    ] {
        let [a, b] = samples;
        let (a50, b50) = (percentile(a, 0.5), percentile(b, 0.5));
        let (a90, b90) = (percentile(a, 0.9), percentile(b, 0.9));
        println!(
            "| {label} | {:.1} us | {:.1} us | {:.2} | {:.1} us | {:.1} us | {:.2} |",
            a50.as_secs_f64() * 1e6,
            b50.as_secs_f64() * 1e6,
            a50.as_secs_f64() / b50.as_secs_f64(),
            a90.as_secs_f64() * 1e6,
            b90.as_secs_f64() * 1e6,
            a90.as_secs_f64() / b90.as_secs_f64(),
        );
    }
    for side in &sides {
        println!("{}", page_plans(side).await?);
    }
    for side in &sides {
        let rows: Vec<(String, i64, f64, f64)> = sqlx::query_as(
            "SELECT schemaname || '.' || funcname, calls, total_time, self_time \
             FROM pg_stat_user_functions ORDER BY total_time DESC",
        )
        .fetch_all(side.db.admin_pool())
        .await?;
        println!(
            "\nfunctions, {} (pg_stat_user_functions, whole run):",
            side.name
        );
        println!("| function | calls | total ms | self ms | us per call |");
        println!("|---|---|---|---|---|");
        for (function, calls, total, own) in rows {
            let per_call = if calls > 0 {
                total * 1000.0 / calls as f64
            } else {
                0.0
            };
            println!("| {function} | {calls} | {total:.1} | {own:.1} | {per_call:.1} |");
        }
    }
    Ok(())
}
