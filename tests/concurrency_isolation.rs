//! Concurrency: 10,000 tokio tasks with random contexts over a small pool, some cancelled
//! mid-query (tiny timeouts around `pg_sleep`, and abort handles), some failing on purpose
//! (division by zero inside the transaction, after a write). Every row any task sees must
//! belong to its own scope, and a task without context must see nothing: zero leaks allowed.
//!
//! Run twice: directly against PostgreSQL (pool of 3 connections), and through PgBouncer in
//! transaction-pooling mode (started by `scripts/pgbouncer-up`, 2 server connections shared by
//! 4 client connections, killed at the end).
//!
//! Debian bookworm ships PgBouncer 1.18, older than `max_prepared_statements` (1.21): through
//! it, named prepared statements of one client would land on another client's server
//! connection. So the PgBouncer run sends the SAME SQL (the generated `*_SQL` constants, the
//! same raw statements) as unnamed statements (`.persistent(false)`) inside `Tenancy::begin`
//! transactions; the direct run calls the generated repository methods themselves.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{ConnectOptions, PgPool};
use tenancy_generated::roles::{Editor, Viewer};
use tenancy_generated::{
    ChunkFilter, Chunks, Document, DocumentFilter, DocumentPage, Documents, NewDocument,
};
use tenancy_runtime::{ProjectScope, ProjectsScope, Scope, Tenancy, TenantId, UserId};
use tenancy_tests::{context_value, TestDb, ROLES};
use uuid::Uuid;

const TASKS: usize = 10_000;
const TENANTS: usize = 4;
const PROJECTS_PER_TENANT: usize = 3;
const USERS: usize = 6;
const DOCS_PER_PROJECT: usize = 6;
const CHUNKS_PER_DOC: usize = 2;

/// Both runs load the 2 cores fully: one at a time.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// SplitMix64: small, deterministic per task.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// A (user, tenant) pair with at least one membership, with what it may see.
struct Caller {
    read: ProjectsScope<Viewer>,
    /// A project where the user is editor or above, for the failing writes.
    write: Option<ProjectScope<Editor>>,
    tenant: Uuid,
    /// `tenancy.context` for the raw-SQL reads: `tenant;user;{..};{..}...` with the user's
    /// actual role in every project of the tenant (built by [`context_value`]).
    context_setting: String,
    projects: BTreeSet<Uuid>,
    documents: BTreeSet<Uuid>,
    chunks: usize,
    /// A document of another tenant, to ask for by id.
    foreign_document: Uuid,
}

struct World {
    callers: Vec<Caller>,
    total_documents: i64,
}

async fn build_world(db: &TestDb) -> World {
    let admin = db.admin_pool();
    let mut projects = Vec::new();
    for t in 0..TENANTS {
        let tenant = Uuid::new_v4();
        sqlx::query("INSERT INTO tenants (id, name, slug) VALUES ($1, $2, $2)")
            .bind(tenant)
            .bind(format!("t{t}"))
            .execute(admin)
            .await
            .unwrap();
        for p in 0..PROJECTS_PER_TENANT {
            let project = Uuid::new_v4();
            sqlx::query("INSERT INTO projects (tenant_id, id, name, slug) VALUES ($1, $2, $3, $3)")
                .bind(tenant)
                .bind(project)
                .bind(format!("p{p}"))
                .execute(admin)
                .await
                .unwrap();
            sqlx::query(
                "INSERT INTO documents (tenant_id, project_id, title, content_hash, created_by) \
                 SELECT $1, $2, 'doc', md5(n::text), $1 FROM generate_series(1, $3) AS n",
            )
            .bind(tenant)
            .bind(project)
            .bind(DOCS_PER_PROJECT as i32)
            .execute(admin)
            .await
            .unwrap();
            sqlx::query(
                "INSERT INTO chunks (tenant_id, project_id, document_id, ordinal, content, token_count) \
                 SELECT tenant_id, project_id, id, n, 'c', n FROM documents, generate_series(1, $3) AS n \
                 WHERE tenant_id = $1 AND project_id = $2",
            )
            .bind(tenant)
            .bind(project)
            .bind(CHUNKS_PER_DOC as i32)
            .execute(admin)
            .await
            .unwrap();
            projects.push((tenant, project));
        }
    }
    let users: Vec<Uuid> = (0..USERS).map(|_| Uuid::new_v4()).collect();
    for (u, user) in users.iter().enumerate() {
        for (p, (tenant, project)) in projects.iter().enumerate() {
            if (u + p) % 3 == 0 {
                continue;
            }
            sqlx::query(
                "INSERT INTO user_project_roles (tenant_id, project_id, user_id, role) \
                 VALUES ($1, $2, $3, $4::tenancy.project_role)",
            )
            .bind(tenant)
            .bind(project)
            .bind(user)
            .bind(ROLES[(u * 7 + p) % 4])
            .execute(admin)
            .await
            .unwrap();
        }
    }
    let docs: Vec<(Uuid, Uuid, Uuid)> =
        sqlx::query_as("SELECT tenant_id, project_id, id FROM documents")
            .fetch_all(admin)
            .await
            .unwrap();
    let tenancy = Tenancy::with_config(db.app_pool().clone(), tenancy_generated::config());
    let mut callers = Vec::new();
    for user in &users {
        for tenant in projects.iter().map(|(t, _)| *t).collect::<BTreeSet<_>>() {
            let Ok(ctx) = tenancy
                .authorize(UserId::new(*user), TenantId::new(tenant))
                .await
            else {
                continue;
            };
            let read = ctx.all_projects().with_at_least::<Viewer>();
            let write = ctx
                .memberships()
                .find_map(|(p, _)| ctx.project(p).ok()?.require::<Editor>().ok());
            let scope_projects: BTreeSet<Uuid> =
                read.project_ids().iter().map(|p| p.as_uuid()).collect();
            let documents: BTreeSet<Uuid> = docs
                .iter()
                .filter(|(t, p, _)| *t == tenant && scope_projects.contains(p))
                .map(|(_, _, d)| *d)
                .collect();
            let foreign_document = docs.iter().find(|(t, _, _)| *t != tenant).unwrap().2;
            let roles = ctx
                .memberships()
                .map(|(p, role)| format!("{p}:{role}"))
                .collect::<Vec<_>>()
                .join(",");
            let context_setting = context_value(&tenant.to_string(), &user.to_string(), &roles);
            callers.push(Caller {
                context_setting,
                read,
                write,
                tenant,
                chunks: documents.len() * CHUNKS_PER_DOC,
                projects: scope_projects,
                documents,
                foreign_document,
            });
        }
    }
    assert!(callers.len() >= 10, "{} callers", callers.len());
    assert!(callers.iter().filter(|c| c.write.is_some()).count() >= 3);
    World {
        callers,
        total_documents: docs.len() as i64,
    }
}

#[derive(Debug, Default)]
struct Tally {
    verified: usize,
    rows_checked: usize,
    cancelled: usize,
    aborted: usize,
    failed_on_purpose: usize,
    no_context_checks: usize,
    leaks: Vec<String>,
}

enum Outcome {
    Verified(usize),
    NoContext,
    FailedOnPurpose,
    Cancelled,
    Leak(String),
}

/// How the run talks to the database.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Mode {
    Direct,
    PgBouncer,
}

fn check_rows(
    label: &str,
    caller: &Caller,
    rows: &[(Uuid, Uuid, Uuid)],
    want_all: bool,
) -> Result<usize, String> {
    for (tenant, project, id) in rows {
        if *tenant != caller.tenant || !caller.projects.contains(project) {
            return Err(format!(
                "{label}: row {id} of ({tenant}, {project}) outside the scope ({}, {:?})",
                caller.tenant, caller.projects
            ));
        }
    }
    if want_all {
        let seen: BTreeSet<Uuid> = rows.iter().map(|r| r.2).collect();
        if seen != caller.documents {
            return Err(format!(
                "{label}: saw {} documents, scope has {}",
                seen.len(),
                caller.documents.len()
            ));
        }
    }
    Ok(rows.len())
}

/// A read through `Tenancy::begin` and the generated repositories (or, through PgBouncer, the
/// same generated SQL as unnamed statements). `sleep` adds a `pg_sleep` first.
async fn repository_read(
    tenancy: &Tenancy,
    caller: &Caller,
    mode: Mode,
    sleep: Option<f64>,
) -> Result<usize, String> {
    let mut tx = tenancy
        .begin(&caller.read)
        .await
        .map_err(|e| format!("begin: {e}"))?;
    if let Some(seconds) = sleep {
        sqlx::query("SELECT pg_sleep($1)")
            .bind(seconds)
            .persistent(mode == Mode::Direct)
            .execute(tx.connection())
            .await
            .map_err(|e| format!("sleep: {e}"))?;
    }
    let (docs, count, foreign): (Vec<Document>, i64, Option<Document>) = match mode {
        Mode::Direct => {
            let page = DocumentPage {
                after: None,
                limit: 1000,
            };
            let docs = Documents::list(&mut tx, &DocumentFilter::default(), page)
                .await
                .map_err(|e| format!("list: {e}"))?;
            let count = Chunks::count(&mut tx, &ChunkFilter::default())
                .await
                .map_err(|e| format!("count: {e}"))?;
            let foreign = Documents::get(&mut tx, caller.foreign_document)
                .await
                .map_err(|e| format!("get: {e}"))?;
            (docs, count, foreign)
        }
        Mode::PgBouncer => {
            let tenant = caller.tenant;
            let projects: Vec<Uuid> = caller
                .read
                .project_ids()
                .iter()
                .map(|p| p.as_uuid())
                .collect();
            let none: Option<Uuid> = None;
            let docs = sqlx::query_as::<_, Document>(Documents::LIST_SQL)
                .bind(tenant)
                .bind(&projects)
                .bind(none)
                .bind(None::<String>)
                .bind(None::<chrono::DateTime<chrono::Utc>>)
                .bind(1000_i64)
                .persistent(false)
                .fetch_all(tx.connection())
                .await
                .map_err(|e| format!("list: {e}"))?;
            let count: i64 = sqlx::query_scalar(Chunks::COUNT_SQL)
                .bind(tenant)
                .bind(&projects)
                .bind(none)
                .bind(none)
                .bind(None::<i32>)
                .persistent(false)
                .fetch_one(tx.connection())
                .await
                .map_err(|e| format!("count: {e}"))?;
            let foreign = sqlx::query_as::<_, Document>(Documents::GET_SQL)
                .bind(tenant)
                .bind(&projects)
                .bind(caller.foreign_document)
                .persistent(false)
                .fetch_optional(tx.connection())
                .await
                .map_err(|e| format!("get: {e}"))?;
            (docs, count, foreign)
        }
    };
    tx.commit().await.map_err(|e| format!("commit: {e}"))?;
    let rows: Vec<(Uuid, Uuid, Uuid)> = docs
        .iter()
        .map(|d| (d.tenant_id, d.project_id, d.id))
        .collect();
    if let Some(doc) = foreign {
        return Err(format!("LEAK get: another tenant's document {}", doc.id));
    }
    if count != caller.chunks as i64 {
        return Err(format!(
            "LEAK count: {count} chunks, scope has {}",
            caller.chunks
        ));
    }
    check_rows("repository list", caller, &rows, true).map(|n| n + 1)
}

/// Raw SQL without any predicate: the context is installed by hand with a signed token
/// (`tenancy.install_context`) inside a plain transaction, so only row-level security filters.
async fn raw_read(pool: &PgPool, caller: &Caller, mode: Mode) -> Result<usize, String> {
    let persistent = mode == Mode::Direct;
    let mut tx = pool.begin().await.map_err(|e| format!("begin: {e}"))?;
    sqlx::query("SELECT tenancy.install_context($1)")
        .bind(tenancy_tests::context_token(&caller.context_setting))
        .persistent(persistent)
        .execute(&mut *tx)
        .await
        .map_err(|e| format!("install_context: {e}"))?;
    let rows: Vec<(Uuid, Uuid, Uuid)> =
        sqlx::query_as("SELECT tenant_id, project_id, id FROM documents")
            .persistent(persistent)
            .fetch_all(&mut *tx)
            .await
            .map_err(|e| format!("select: {e}"))?;
    let chunks: Vec<(Uuid, Uuid, Uuid)> = sqlx::query_as(
        "SELECT c.tenant_id, c.project_id, c.document_id FROM chunks c \
         JOIN documents d ON (d.tenant_id, d.project_id, d.id) = (c.tenant_id, c.project_id, c.document_id)",
    )
    .persistent(persistent)
    .fetch_all(&mut *tx)
    .await
    .map_err(|e| format!("join: {e}"))?;
    tx.commit().await.map_err(|e| format!("commit: {e}"))?;
    if chunks.len() != caller.chunks {
        return Err(format!(
            "LEAK join: {} chunks, scope has {}",
            chunks.len(),
            caller.chunks
        ));
    }
    check_rows("raw chunks", caller, &chunks, false)?;
    check_rows("raw documents", caller, &rows, true).map(|n| n + chunks.len())
}

/// No context at all, in a transaction and in autocommit: must see nothing.
async fn no_context_read(pool: &PgPool, mode: Mode) -> Result<(), String> {
    let persistent = mode == Mode::Direct;
    let mut tx = pool.begin().await.map_err(|e| format!("begin: {e}"))?;
    let in_tx: (i64, i64) =
        sqlx::query_as("SELECT (SELECT count(*) FROM documents), (SELECT count(*) FROM chunks)")
            .persistent(persistent)
            .fetch_one(&mut *tx)
            .await
            .map_err(|e| format!("count: {e}"))?;
    tx.commit().await.map_err(|e| format!("commit: {e}"))?;
    // Outside a transaction PgBouncer may route the Parse and the Execute of even an unnamed
    // statement to different server connections: use the simple query protocol there.
    let autocommit: i64 = match mode {
        Mode::Direct => sqlx::query_scalar("SELECT count(*) FROM projects")
            .fetch_one(pool)
            .await
            .map_err(|e| format!("autocommit: {e}"))?,
        Mode::PgBouncer => {
            let row = sqlx::raw_sql("SELECT count(*) FROM projects")
                .fetch_one(pool)
                .await
                .map_err(|e| format!("autocommit: {e}"))?;
            sqlx::Row::try_get(&row, 0).map_err(|e| format!("autocommit: {e}"))?
        }
    };
    if in_tx != (0, 0) || autocommit != 0 {
        return Err(format!(
            "LEAK without context: documents/chunks {in_tx:?}, projects {autocommit}"
        ));
    }
    Ok(())
}

/// A write in the caller's project, then a division by zero: the error must be 22012 and the
/// write must vanish with the transaction.
async fn failing_write(
    tenancy: &Tenancy,
    scope: &ProjectScope<Editor>,
    mode: Mode,
) -> Result<(), String> {
    let mut tx = tenancy
        .begin(scope)
        .await
        .map_err(|e| format!("begin: {e}"))?;
    let new = NewDocument {
        id: None,
        title: "doomed".into(),
        source_uri: None,
        mime_type: None,
        content_hash: Uuid::new_v4().to_string(),
        metadata: None,
    };
    match mode {
        Mode::Direct => {
            Documents::insert(&mut tx, new)
                .await
                .map_err(|e| format!("insert: {e}"))?;
        }
        Mode::PgBouncer => {
            sqlx::query(
                "INSERT INTO documents (tenant_id, project_id, title, content_hash, created_by) \
                 VALUES ($1, $2, $3, $4, $5)",
            )
            .bind(scope.tenant_id().as_uuid())
            .bind(scope.project_id().as_uuid())
            .bind(new.title)
            .bind(new.content_hash)
            .bind(scope.user_id().as_uuid())
            .persistent(false)
            .execute(tx.connection())
            .await
            .map_err(|e| format!("insert: {e}"))?;
        }
    }
    let err = sqlx::query("SELECT 1 / (count(*) - count(*)) FROM documents")
        .persistent(mode == Mode::Direct)
        .fetch_one(tx.connection())
        .await
        .err()
        .ok_or("division by zero did not fail")?;
    let code = err
        .as_database_error()
        .and_then(|e| e.code())
        .map(|c| c.into_owned());
    if code.as_deref() != Some("22012") {
        return Err(format!("expected 22012, got {err}"));
    }
    drop(tx); // rolled back
    Ok(())
}

async fn run_task(
    index: usize,
    seed: u64,
    tenancy: Tenancy,
    pool: PgPool,
    world: Arc<World>,
    mode: Mode,
) -> Outcome {
    let mut rng = Rng(seed ^ (index as u64).wrapping_mul(0x2545_F491_4F6C_DD1D));
    let caller = &world.callers[rng.below(world.callers.len() as u64) as usize];
    let kind = rng.below(100);
    let result = match kind {
        0..=44 => repository_read(&tenancy, caller, mode, None)
            .await
            .map(Outcome::Verified),
        45..=59 => raw_read(&pool, caller, mode).await.map(Outcome::Verified),
        60..=71 => {
            // Cancelled mid-query (or not, when the timeout is long enough: then verified).
            let budget = Duration::from_micros(100 + rng.below(4_000));
            let sleep = 0.001 + (rng.below(4) as f64) / 1000.0;
            match tokio::time::timeout(budget, repository_read(&tenancy, caller, mode, Some(sleep)))
                .await
            {
                Err(_) => Ok(Outcome::Cancelled),
                Ok(result) => result.map(Outcome::Verified),
            }
        }
        72..=81 => match &caller.write {
            Some(scope) => failing_write(&tenancy, scope, mode)
                .await
                .map(|()| Outcome::FailedOnPurpose),
            None => repository_read(&tenancy, caller, mode, None)
                .await
                .map(Outcome::Verified),
        },
        _ => no_context_read(&pool, mode)
            .await
            .map(|()| Outcome::NoContext),
    };
    result.unwrap_or_else(Outcome::Leak)
}

async fn storm(mode: Mode, app_pool: PgPool, world: Arc<World>) -> Tally {
    let tenancy = Tenancy::with_config(app_pool.clone(), tenancy_generated::config());
    let seed = std::env::var("TENANCY_STORM_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos() as u64
        });
    eprintln!("{mode:?}: TENANCY_STORM_SEED={seed}");
    let mut handles = Vec::with_capacity(TASKS);
    let mut to_abort = Vec::new();
    let mut rng = Rng(seed);
    for index in 0..TASKS {
        let handle = tokio::spawn(run_task(
            index,
            seed,
            tenancy.clone(),
            app_pool.clone(),
            world.clone(),
            mode,
        ));
        // About 5%: aborted from outside after a random delay, wherever they are.
        if rng.below(20) == 0 {
            let abort = handle.abort_handle();
            let delay = Duration::from_micros(rng.below(3_000));
            to_abort.push(tokio::spawn(async move {
                tokio::time::sleep(delay).await;
                abort.abort();
            }));
        }
        handles.push(handle);
    }
    let mut tally = Tally::default();
    for handle in handles {
        match handle.await {
            Err(err) if err.is_cancelled() => tally.aborted += 1,
            Err(err) => tally.leaks.push(format!("task panicked: {err}")),
            Ok(Outcome::Verified(rows)) => {
                tally.verified += 1;
                tally.rows_checked += rows;
            }
            Ok(Outcome::NoContext) => tally.no_context_checks += 1,
            Ok(Outcome::FailedOnPurpose) => tally.failed_on_purpose += 1,
            Ok(Outcome::Cancelled) => tally.cancelled += 1,
            Ok(Outcome::Leak(message)) => tally.leaks.push(message),
        }
    }
    for a in to_abort {
        a.await.unwrap();
    }
    tally
}

fn assert_tally(mode: Mode, tally: &Tally, elapsed: Duration) {
    eprintln!("{mode:?}: {tally:?} in {elapsed:?}");
    let mut sample = tally.leaks.clone();
    sample.truncate(20);
    assert!(
        tally.leaks.is_empty(),
        "{mode:?}: {} tasks saw something outside their scope or failed unexpectedly:\n{}",
        tally.leaks.len(),
        sample.join("\n")
    );
    let accounted = tally.verified
        + tally.cancelled
        + tally.aborted
        + tally.failed_on_purpose
        + tally.no_context_checks;
    assert_eq!(accounted, TASKS);
    // The mix really happened.
    assert!(tally.verified >= TASKS / 2, "{tally:?}");
    assert!(tally.cancelled > 0 && tally.aborted > 0, "{tally:?}");
    assert!(tally.failed_on_purpose > 100, "{tally:?}");
    assert!(tally.no_context_checks > 100, "{tally:?}");
}

/// After the storm: the failed writes left nothing, and a fresh connection still sees nothing
/// without a context.
async fn assert_after(db: &TestDb, world: &World, pool: &PgPool, mode: Mode) {
    let total: i64 = sqlx::query_scalar("SELECT count(*) FROM documents")
        .fetch_one(db.admin_pool())
        .await
        .unwrap();
    assert_eq!(
        total, world.total_documents,
        "{mode:?}: a failed write was kept"
    );
    for _ in 0..8 {
        no_context_read(pool, mode).await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_thousand_tasks_directly() {
    let _serial = SERIAL.lock().await;
    let db = TestDb::fresh().await;
    let world = Arc::new(build_world(&db).await);
    let pool = PgPoolOptions::new()
        .max_connections(3)
        .acquire_timeout(Duration::from_secs(120))
        .connect(db.app_url())
        .await
        .unwrap();
    let started = Instant::now();
    let tally = storm(Mode::Direct, pool.clone(), world.clone()).await;
    assert_tally(Mode::Direct, &tally, started.elapsed());
    assert_after(&db, &world, &pool, Mode::Direct).await;
    pool.close().await;
    db.drop_db().await;
}

use tenancy_tests::PgBouncer as Bouncer;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_thousand_tasks_through_pgbouncer_transaction_pooling() {
    let _serial = SERIAL.lock().await;
    let db = TestDb::fresh().await;
    let world = Arc::new(build_world(&db).await);
    // Only the bouncer's server connections may remain as the app role (checked at the end).
    db.app_pool().close().await;
    let bouncer = Bouncer::start(db.url());
    let direct: PgConnectOptions = db.app_url().parse().unwrap();
    let options = direct
        .port(bouncer.port)
        .host("127.0.0.1")
        .statement_cache_capacity(0)
        .disable_statement_logging();
    let pool = PgPoolOptions::new()
        .max_connections(4)
        .acquire_timeout(Duration::from_secs(120))
        .connect_with(options)
        .await
        .unwrap();
    // Really through PgBouncer: at most 2 server backends serve the 4 client connections.
    let mut pids = BTreeMap::new();
    for _ in 0..20 {
        let row = sqlx::raw_sql("SELECT pg_backend_pid()")
            .fetch_one(&pool)
            .await
            .unwrap();
        let pid: i32 = sqlx::Row::get(&row, 0);
        *pids.entry(pid).or_insert(0) += 1;
    }
    assert!(
        pids.len() <= 2,
        "more server connections than the bouncer pool: {pids:?}"
    );
    let started = Instant::now();
    let tally = storm(Mode::PgBouncer, pool.clone(), world.clone()).await;
    assert_tally(Mode::PgBouncer, &tally, started.elapsed());
    assert_after(&db, &world, &pool, Mode::PgBouncer).await;
    let backends: Vec<(i32, Option<String>, Option<String>)> = sqlx::query_as(
        "SELECT pid, state, query FROM pg_stat_activity \
         WHERE datname = current_database() AND usename = 'tenancy_app'",
    )
    .fetch_all(db.admin_pool())
    .await
    .unwrap();
    // PgBouncer may briefly keep a replacement server connection (a client that vanished
    // mid-transaction takes its server connection with it), so do not pin the exact number:
    // fewer server backends than open client connections proves the multiplexing.
    assert_eq!(
        pool.size(),
        4,
        "the client pool did not open all its connections"
    );
    assert!(
        backends.len() < 4,
        "{} app-role backends for 4 client connections: {backends:?}",
        backends.len()
    );
    pool.close().await;
    drop(bouncer);
    db.drop_db().await;
}
