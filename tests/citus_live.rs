//! The Citus target on a real 3-node cluster (one coordinator, two workers), started by
//! `scripts/citus-up` (or `TENANCY_CITUS_URL`): the RAG model, distributed by tenant, applied
//! through the migration runner against the coordinator; every table in `citus_tables`; every
//! generated repository query router-planned to one shard; the isolation oracle, forged and
//! replayed contexts, membership changes, exact vector search and tenant isolation to its own
//! shard, with the rows read by the workers under the signed context (docs/citus.md).
//!
//! These tests never skip: without a cluster they fail with one sentence.

mod citus_common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use citus_common::{compile, rag_text, CitusDb};
use sqlx::{Connection, Row};
use tenancy_core::sql::Target;
use tenancy_generated::roles::{Editor, Viewer};
use tenancy_generated::{Document, Documents};
use tenancy_runtime::{Error, Tenancy, TenantId, UserId};
use tenancy_tests::{context_token, context_value, repo_root, TEST_CONTEXT_KEY_ID};
use uuid::Uuid;

/// A world: tenants, their projects, users with roles, documents.
struct World {
    /// (tenant, project) for every project.
    projects: Vec<(Uuid, Uuid)>,
    /// (tenant, project, user) -> role.
    roles: BTreeMap<(Uuid, Uuid, Uuid), &'static str>,
    /// (tenant, project, title) of every document.
    documents: Vec<(Uuid, Uuid, String)>,
    users: Vec<Uuid>,
    tenants: Vec<Uuid>,
}

/// Deterministic pseudo-random numbers (xorshift), so a failing world can be rebuilt.
struct Rng(u64);
impl Rng {
    fn next(&mut self, n: usize) -> usize {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 % n as u64) as usize
    }
}

async fn seed_world(db: &CitusDb, seed: u64, tenants: usize) -> World {
    let mut rng = Rng(seed);
    let roles = ["none", "viewer", "editor", "admin", "owner"];
    let users: Vec<Uuid> = (0..3).map(|_| Uuid::new_v4()).collect();
    let mut world = World {
        projects: Vec::new(),
        roles: BTreeMap::new(),
        documents: Vec::new(),
        users: users.clone(),
        tenants: Vec::new(),
    };
    for t in 0..tenants {
        let tenant = Uuid::new_v4();
        world.tenants.push(tenant);
        sqlx::query("INSERT INTO tenants (id, name, slug) VALUES ($1, $2, $2)")
            .bind(tenant)
            .bind(format!("t{t}"))
            .execute(&db.admin)
            .await
            .unwrap();
        for p in 0..2 {
            let project = Uuid::new_v4();
            world.projects.push((tenant, project));
            sqlx::query("INSERT INTO projects (tenant_id, id, name, slug) VALUES ($1, $2, $3, $3)")
                .bind(tenant)
                .bind(project)
                .bind(format!("p{p}"))
                .execute(&db.admin)
                .await
                .unwrap();
            for user in &users {
                let role = roles[rng.next(roles.len())];
                if role != "none" {
                    world.roles.insert((tenant, project, *user), role);
                    sqlx::query(
                        "INSERT INTO user_project_roles (tenant_id, project_id, user_id, role) \
                         VALUES ($1, $2, $3, $4::tenancy.project_role)",
                    )
                    .bind(tenant)
                    .bind(project)
                    .bind(user)
                    .bind(role)
                    .execute(&db.admin)
                    .await
                    .unwrap();
                }
            }
            for d in 0..1 + rng.next(3) {
                let title = format!("t{t}-p{p}-d{d}");
                sqlx::query(
                    "INSERT INTO documents (tenant_id, project_id, title, content_hash, created_by) \
                     VALUES ($1, $2, $3, $3, $4)",
                )
                .bind(tenant)
                .bind(project)
                .bind(&title)
                .bind(users[0])
                .execute(&db.admin)
                .await
                .unwrap();
                world.documents.push((tenant, project, title));
            }
        }
    }
    world
}

/// The node port each tenant's shard of `table` lives on.
async fn placement(db: &CitusDb, table: &str, tenant: Uuid) -> i32 {
    sqlx::query_scalar(
        "SELECT nodeport FROM pg_catalog.citus_shards \
         WHERE shardid = pg_catalog.get_shard_id_for_distribution_column($1::regclass, $2)",
    )
    .bind(table)
    .bind(tenant.to_string())
    .fetch_one(&db.admin)
    .await
    .unwrap()
}

#[test]
fn the_rag_model_itself_is_accepted_for_citus() {
    // The global `unique (slug)` of the tenants table and `on delete set null` between two
    // scoped tables are what the validator refused before: the tenants table is a reference
    // table now, and the SET NULL a trigger (docs/citus.md).
    let files = tenancy_core::output::generate_all(&compile(&rag_text()), Target::Citus)
        .unwrap_or_else(|e| panic!("the RAG model on Citus: {e}"));
    let sql: String = files
        .iter()
        .filter(|f| f.path.starts_with("migrations"))
        .map(|f| f.contents.as_str())
        .collect();
    assert!(sql.contains("SELECT pg_catalog.create_reference_table('public.tenants');"));
    assert!(sql.contains("CONSTRAINT tenants_slug_key UNIQUE (slug)"));
    assert!(
        sql.contains("CREATE TRIGGER assertions_chunk_id_set_null BEFORE DELETE ON public.chunks")
    );
    assert!(
        !sql.contains("SET NULL ("),
        "no declarative SET NULL on Citus"
    );
}

#[tokio::test]
async fn migrations_distribute_every_table_by_tenant_in_one_colocation_group() {
    let model = compile(&rag_text());
    let db = CitusDb::create(&model).await;
    let rows = sqlx::query(
        "SELECT table_name::text AS name, citus_table_type, distribution_column, colocation_id \
         FROM public.citus_tables",
    )
    .fetch_all(&db.admin)
    .await
    .unwrap();
    let tables: BTreeMap<String, (String, String, i32)> = rows
        .iter()
        .map(|r| {
            (
                r.get::<String, _>("name"),
                (
                    r.get::<String, _>("citus_table_type"),
                    r.get::<String, _>("distribution_column"),
                    r.get::<i32, _>("colocation_id"),
                ),
            )
        })
        .collect();
    // The tenants table is a reference table (its global `unique (slug)` holds on every
    // node); the projects table starts the colocation group of every other tenant table.
    let tenants = tables.get("tenants").cloned().unwrap_or_default();
    assert_eq!(tenants.0.as_str(), "reference");
    let anchor = tables.get("projects").cloned().unwrap_or_default();
    assert_eq!(
        (anchor.0.as_str(), anchor.1.as_str()),
        ("distributed", "tenant_id")
    );
    for table in [
        "user_project_roles",
        "tenancy.audit_log",
        "documents",
        "chunks",
        "queries",
        "responses",
        "assertions",
    ] {
        let (kind, column, colocation) = tables.get(table).cloned().unwrap_or_default();
        assert_eq!(kind, "distributed", "{table}");
        assert_eq!(column, "tenant_id", "{table}");
        assert_eq!(
            colocation, anchor.2,
            "{table} is not co-located with projects"
        );
    }
    assert_eq!(
        tables.get("embedding_models").map(|t| t.0.as_str()),
        Some("reference")
    );
    // One colocation group holds every distributed table.
    let groups: BTreeSet<i32> = tables
        .values()
        .filter(|t| t.0 == "distributed")
        .map(|t| t.2)
        .collect();
    assert_eq!(groups.len(), 1, "{tables:?}");
    // The foreign keys exist (added after distribution) and the indexes reached the shards.
    let fks: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM pg_catalog.pg_constraint WHERE contype = 'f' \
         AND conrelid = 'public.chunks'::regclass",
    )
    .fetch_one(&db.admin)
    .await
    .unwrap();
    assert_eq!(fks, 2);
    let mut worker = db.worker(0).await;
    // Citus hides the shards from catalog queries on the workers unless told otherwise.
    sqlx::raw_sql("SET citus.override_table_visibility = false")
        .execute(&mut worker)
        .await
        .unwrap();
    let shard_indexes: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM pg_catalog.pg_indexes WHERE indexname LIKE 'documents_created_at_idx_%'",
    )
    .fetch_one(&mut worker)
    .await
    .unwrap();
    assert!(
        shard_indexes >= 1,
        "no shard of documents has its index on worker 1"
    );
    // The workers hold the tenant boundary inside every policy (Citus turns a RESTRICTIVE
    // policy into a permissive one on the shards): no permissive policy without it.
    let unbounded: Vec<String> = sqlx::query_scalar(
        "SELECT tablename || '.' || policyname FROM pg_catalog.pg_policies \
         WHERE tablename LIKE 'documents_%' AND qual IS NOT NULL \
         AND qual NOT LIKE '%tenant_id = tenancy.current_tenant_id()%'",
    )
    .fetch_all(&mut worker)
    .await
    .unwrap();
    assert!(unbounded.is_empty(), "{unbounded:?}");
    worker.close().await.unwrap();
    // The global unique slug holds across the cluster.
    let first = Uuid::new_v4();
    sqlx::query("INSERT INTO tenants (id, name, slug) VALUES ($1, 'a', 'same-slug')")
        .bind(first)
        .execute(&db.admin)
        .await
        .unwrap();
    let duplicate =
        sqlx::query("INSERT INTO tenants (id, name, slug) VALUES ($1, 'b', 'same-slug')")
            .bind(Uuid::new_v4())
            .execute(&db.admin)
            .await;
    match duplicate {
        Err(sqlx::Error::Database(e)) => assert_eq!(e.code().as_deref(), Some("23505"), "{e}"),
        other => panic!("a second tenant with the same slug was accepted: {other:?}"),
    }
    // The runtime's startup check passes on the coordinator.
    db.tenancy().check().await.unwrap();
    assert_eq!(db.migrations.len(), db_migration_count());
    db.drop_db().await;
}

/// How many migrations the RAG model's Citus baseline has.
fn db_migration_count() -> usize {
    tenancy_core::output::generate_all(&compile(&rag_text()), Target::Citus)
        .unwrap()
        .iter()
        .filter(|f| f.path.starts_with("migrations"))
        .count()
}

/// Every `*_SQL` constant of the generated repositories (examples/rag/generated/src).
fn repository_queries() -> Vec<(String, String)> {
    let dir: PathBuf = repo_root().join("examples/rag/generated/src");
    let mut out = Vec::new();
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .filter_map(|e| e.ok().map(|e| e.path()))
        .collect();
    files.sort();
    for file in files {
        let text = std::fs::read_to_string(&file).unwrap();
        for line in text.lines() {
            let line = line.trim();
            let Some(rest) = line.strip_prefix("pub const ") else {
                continue;
            };
            let Some((name, value)) = rest.split_once(": &'static str = \"") else {
                continue;
            };
            if !name.ends_with("_SQL") {
                continue;
            }
            let sql = value.trim_end_matches("\";").replace("\\\"", "\"");
            let stem = file.file_stem().and_then(|s| s.to_str()).unwrap_or("");
            out.push((format!("{stem}::{name}"), sql));
        }
    }
    out
}

#[tokio::test]
async fn every_generated_repository_query_is_a_single_task_router_plan() {
    let model = compile(&rag_text());
    let db = CitusDb::create(&model).await;
    let world = seed_world(&db, 7, 1).await;
    let (tenant, project) = world.projects[0];
    let queries = repository_queries();
    assert!(queries.len() >= 40, "found only {} queries", queries.len());
    let mut conn = db.app.acquire().await.unwrap();
    let mut single_task = 0;
    let mut pulled = 0;
    let mut not_router = Vec::new();
    let mut refused = Vec::new();
    let mut explained_as_superuser = Vec::new();
    for (i, (name, sql)) in queries.iter().enumerate() {
        let mut tx = conn.begin().await.unwrap();
        let claims = context_value(
            &tenant.to_string(),
            &world.users[0].to_string(),
            &format!("{project}:owner"),
        );
        install_context(&mut tx, &claims).await;
        let statement = format!("s{i}");
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!("PREPARE {statement} AS {sql}")))
            .execute(&mut *tx)
            .await
            .unwrap_or_else(|e| panic!("{name}: PREPARE failed: {e}\n{sql}"));
        let types: Vec<String> = sqlx::query_scalar(
            "SELECT unnest(parameter_types)::text FROM pg_catalog.pg_prepared_statements WHERE name = $1",
        )
        .bind(&statement)
        .fetch_all(&mut *tx)
        .await
        .unwrap();
        let arguments: Vec<String> = types
            .iter()
            .map(|ty| match ty.as_str() {
                "uuid" => format!("'{tenant}'::uuid"),
                "uuid[]" => format!("ARRAY['{project}']::uuid[]"),
                "boolean" => "false".to_owned(),
                "integer" | "bigint" | "smallint" => "10".to_owned(),
                other => format!("NULL::{other}"),
            })
            .collect();
        let plan: Result<Vec<String>, sqlx::Error> =
            sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
                "EXPLAIN (COSTS OFF) EXECUTE {statement}({})",
                arguments.join(", ")
            )))
            .fetch_all(&mut *tx)
            .await;
        let plan = match plan {
            Ok(plan) => plan.join("\n"),
            Err(err)
                if err
                    .to_string()
                    .contains("assign_distributed_transaction_id") =>
            {
                // A statement on the tenants table (a reference table with a placement on the
                // coordinator): Citus explains it over a connection to the coordinator itself,
                // where the app role may not assign a distributed transaction number (revoked
                // by the generated core, docs/citus.md). The statement itself runs (local
                // execution); it is explained as the superuser.
                tx.rollback().await.unwrap();
                let mut tx = conn.begin().await.unwrap();
                install_context(&mut tx, &claims).await;
                sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
                    "EXECUTE {statement}({})",
                    arguments.join(", ")
                )))
                .execute(&mut *tx)
                .await
                .unwrap_or_else(|e| panic!("{name} does not run as the app role: {e}"));
                tx.rollback().await.unwrap();
                explained_as_superuser.push(name.clone());
                let mut admin = db.admin.begin().await.unwrap();
                sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
                    "PREPARE {statement}_admin AS {sql}"
                )))
                .execute(&mut *admin)
                .await
                .unwrap();
                let plan: Vec<String> = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
                    "EXPLAIN (COSTS OFF) EXECUTE {statement}_admin({})",
                    arguments.join(", ")
                )))
                .fetch_all(&mut *admin)
                .await
                .unwrap();
                admin.rollback().await.unwrap();
                let plan = plan.join("\n");
                if plan.contains("Task Count: 1\n") && plan.contains("Custom Scan (Citus Adaptive)")
                {
                    single_task += 1;
                } else {
                    not_router.push(format!("{name}:\n{plan}"));
                }
                continue;
            }
            Err(err) => {
                refused.push(format!("{name}: {err}"));
                tx.rollback().await.unwrap();
                continue;
            }
        };
        if plan.contains("Task Count: 1\n") && plan.contains("Custom Scan (Citus Adaptive)") {
            single_task += 1;
        } else if name.ends_with("::INSERT_MANY_SQL")
            && plan.contains("INSERT/SELECT method: pull to coordinator")
            && !plan.contains("Task Count")
        {
            // The bulk insert reads no table: the coordinator expands the unnest and sends the
            // rows (all of the scope's tenant) to that tenant's shard.
            pulled += 1;
        } else {
            not_router.push(format!("{name}:\n{plan}"));
        }
        tx.rollback().await.unwrap();
    }
    // Citus plans every statement (the membership writes read the role back through an
    // IMMUTABLE CASE, not the STABLE enum cast Citus refuses in RETURNING).
    assert!(
        refused.is_empty(),
        "Citus refuses repository queries:\n{}",
        refused.join("\n")
    );
    assert!(
        not_router.is_empty(),
        "{} of {} repository queries are not single-task router plans:\n{}",
        not_router.len(),
        queries.len(),
        not_router.join("\n\n")
    );
    // 5 scoped tables, the memberships table and the tenant memberships table.
    assert_eq!(pulled, 7, "one bulk insert per table with insert_many");
    assert_eq!(single_task + pulled, queries.len());
    eprintln!(
        "router plans: {single_task} of {} single-task, {pulled} bulk inserts pulled to the coordinator",
        queries.len()
    );
    assert!(
        explained_as_superuser
            .iter()
            .all(|name| name.starts_with("tenants::")),
        "{explained_as_superuser:?}"
    );
    drop(conn);
    db.drop_db().await;
}

/// What `user` may read in `tenant`: the titles of the documents in projects where the user
/// holds any role.
fn expected_titles(world: &World, tenant: Uuid, user: Uuid) -> BTreeSet<String> {
    world
        .documents
        .iter()
        .filter(|(t, p, _)| *t == tenant && world.roles.contains_key(&(*t, *p, user)))
        .map(|(_, _, title)| title.clone())
        .collect()
}

#[tokio::test]
async fn isolation_oracle_on_the_coordinator_reads_through_the_workers_with_no_leak() {
    let model = compile(&rag_text());
    let db = CitusDb::create(&model).await;
    let world = seed_world(&db, 0x5eed_c175, 6).await;
    let tenancy = db.tenancy();
    tenancy.check().await.unwrap();
    // The tenants sit on both workers, so the fan-out reads below cross both.
    let mut ports = BTreeSet::new();
    for tenant in &world.tenants {
        ports.insert(placement(&db, "documents", *tenant).await);
    }
    assert_eq!(
        ports.len(),
        2,
        "the seeded tenants all landed on one worker"
    );
    let mut checked = 0;
    for tenant in &world.tenants {
        for user in &world.users {
            let expected = expected_titles(&world, *tenant, *user);
            let ctx = match tenancy
                .authorize(UserId::new(*user), TenantId::new(*tenant))
                .await
            {
                Ok(ctx) => ctx,
                // No membership in this tenant: nothing to read.
                Err(Error::NotFound) => {
                    assert!(expected.is_empty(), "tenant {tenant} user {user}");
                    checked += 1;
                    continue;
                }
                Err(other) => panic!("authorize: {other:?}"),
            };
            let scope = ctx.all_projects().with_at_least::<Viewer>();
            let mut tx = tenancy.begin(&scope).await.unwrap();
            // No tenant in the query: Citus sends it to every shard, and each worker's
            // policies decide (project level included, citus#7182).
            let rows: Vec<(Uuid, String)> =
                sqlx::query_as("SELECT tenant_id, title FROM documents")
                    .fetch_all(tx.connection())
                    .await
                    .unwrap();
            assert!(
                rows.iter().all(|(t, _)| t == tenant),
                "another tenant's row"
            );
            let got: BTreeSet<String> = rows.into_iter().map(|(_, t)| t).collect();
            assert_eq!(got, expected, "tenant {tenant} user {user}");
            let count: i64 = sqlx::query_scalar("SELECT count(*) FROM documents")
                .fetch_one(tx.connection())
                .await
                .unwrap();
            assert_eq!(count as usize, expected.len());
            // The generated repository, router-planned with the explicit tenant.
            if !scope.is_empty() {
                let rows = Documents::list(&mut tx, &Default::default(), Default::default())
                    .await
                    .unwrap();
                let titles: BTreeSet<String> =
                    rows.iter().map(|d: &Document| d.title.clone()).collect();
                assert_eq!(titles, expected);
            }
            tx.rollback().await.unwrap();
            checked += 1;
        }
    }
    assert_eq!(checked, world.tenants.len() * world.users.len());
    db.drop_db().await;
}

/// The 42501 error of `result`, with its CONTEXT line (which names the worker that raised it).
fn refusal<T: std::fmt::Debug>(result: Result<T, sqlx::Error>) -> String {
    match result {
        Err(sqlx::Error::Database(db)) => {
            assert_eq!(db.code().as_deref(), Some("42501"), "{db}");
            let pg = db.try_downcast_ref::<sqlx::postgres::PgDatabaseError>();
            format!(
                "{} | {}",
                db.message(),
                pg.and_then(|p| p.r#where()).unwrap_or("")
            )
        }
        other => panic!("expected a 42501 refusal, got {other:?}"),
    }
}

#[tokio::test]
async fn forged_and_replayed_contexts_are_refused_on_the_workers() {
    let model = compile(&rag_text());
    let db = CitusDb::create(&model).await;
    let world = seed_world(&db, 99, 4).await;
    let (tenant, project) = world.projects[0];
    let user = world.users[0];
    let claims = context_value(
        &tenant.to_string(),
        &user.to_string(),
        &format!("{project}:owner"),
    );
    let mut conn = db.app.acquire().await.unwrap();

    // A context the app role sets itself, sent to the workers: refused there.
    let mut tx = conn.begin().await.unwrap();
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
        "SET LOCAL citus.propagate_set_commands = 'local'; SET LOCAL tenancy.context = '{claims}'"
    )))
    .execute(&mut *tx)
    .await
    .unwrap();
    // Router-planned (the tenant is in the query): only the worker evaluates the policies.
    let forged = refusal(
        sqlx::query_scalar::<_, i64>("SELECT count(*) FROM documents WHERE tenant_id = $1")
            .bind(tenant)
            .fetch_one(&mut *tx)
            .await,
    );
    assert!(
        forged.contains("not installed by this transaction"),
        "{forged}"
    );
    assert!(
        forged.contains("while executing command on"),
        "not refused on a worker: {forged}"
    );
    tx.rollback().await.unwrap();

    // A valid seal, copied out of its transaction and replayed in the next: refused.
    let mut tx = conn.begin().await.unwrap();
    install_context(&mut tx, &claims).await;
    let seal: String = sqlx::query_scalar("SELECT current_setting('tenancy.context')")
        .fetch_one(&mut *tx)
        .await
        .unwrap();
    let visible: i64 = sqlx::query_scalar("SELECT count(*) FROM documents")
        .fetch_one(&mut *tx)
        .await
        .unwrap();
    assert!(visible > 0, "the installed context sees its own rows");
    tx.commit().await.unwrap();
    let mut tx = conn.begin().await.unwrap();
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
        "SET LOCAL citus.propagate_set_commands = 'local'; SET LOCAL tenancy.context = '{seal}'"
    )))
    .execute(&mut *tx)
    .await
    .unwrap();
    let replayed = refusal(
        sqlx::query_scalar::<_, i64>("SELECT count(*) FROM documents WHERE tenant_id = $1")
            .bind(tenant)
            .fetch_one(&mut *tx)
            .await,
    );
    assert!(
        replayed.contains("not installed by this transaction"),
        "{replayed}"
    );
    assert!(
        replayed.contains("while executing command on"),
        "{replayed}"
    );
    tx.rollback().await.unwrap();
    // ... nor with the old transaction's number assigned first (Citus lets PUBLIC call
    // assign_distributed_transaction_id; the generated core revokes it on the coordinator).
    let number: i64 = seal[65..]
        .split(';')
        .nth(2)
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no transaction number in the seal {seal}"));
    let mut tx = conn.begin().await.unwrap();
    let assigned =
        sqlx::query("SELECT pg_catalog.assign_distributed_transaction_id(0, $1, pg_catalog.now())")
            .bind(number)
            .execute(&mut *tx)
            .await;
    match assigned {
        Err(sqlx::Error::Database(e)) => assert_eq!(e.code().as_deref(), Some("42501"), "{e}"),
        other => panic!("the app role assigned a distributed transaction number: {other:?}"),
    }
    tx.rollback().await.unwrap();

    // The seal of this transaction with another tenant's claims (edited): refused.
    let mut tx = conn.begin().await.unwrap();
    install_context(&mut tx, &claims).await;
    let seal: String = sqlx::query_scalar("SELECT current_setting('tenancy.context')")
        .fetch_one(&mut *tx)
        .await
        .unwrap();
    let other = world.tenants[1].to_string();
    let edited = seal.replace(&tenant.to_string(), &other);
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
        "SET LOCAL tenancy.context = '{edited}'"
    )))
    .execute(&mut *tx)
    .await
    .unwrap();
    let edited = refusal(
        sqlx::query_scalar::<_, i64>("SELECT count(*) FROM documents WHERE tenant_id = $1")
            .bind(world.tenants[1])
            .fetch_one(&mut *tx)
            .await,
    );
    assert!(edited.contains("while executing command on"), "{edited}");
    tx.rollback().await.unwrap();

    // A token signed with another key: the refusal reaches the workers too.
    let mut tx = conn.begin().await.unwrap();
    let bad = tenancy_tests::token_with(
        b"another key that is 32 bytes long!!",
        TEST_CONTEXT_KEY_ID,
        u64::MAX / 2_000_000,
        "*",
        &claims,
    );
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
        "SELECT tenancy.install_context('{bad}')"
    )))
    .execute(&mut *tx)
    .await
    .unwrap();
    let bad = refusal(
        sqlx::query_scalar::<_, i64>("SELECT count(*) FROM documents WHERE tenant_id = $1")
            .bind(tenant)
            .fetch_one(&mut *tx)
            .await,
    );
    assert!(bad.contains("signature does not verify"), "{bad}");
    assert!(bad.contains("while executing command on"), "{bad}");
    tx.rollback().await.unwrap();

    // Under a valid context, writes into another tenant are refused by the worker.
    let mut tx = conn.begin().await.unwrap();
    install_context(&mut tx, &claims).await;
    let (other_tenant, other_project) = world
        .projects
        .iter()
        .copied()
        .find(|(t, _)| *t != tenant)
        .unwrap();
    let write = refusal(
        sqlx::query(
            "INSERT INTO documents (tenant_id, project_id, title, content_hash) \
             VALUES ($1, $2, 'evil', 'evil')",
        )
        .bind(other_tenant)
        .bind(other_project)
        .execute(&mut *tx)
        .await,
    );
    assert!(write.contains("row-level security"), "{write}");
    tx.rollback().await.unwrap();
    drop(conn);
    db.drop_db().await;
}

#[tokio::test]
async fn membership_changes_and_row_conditions_hold_on_the_workers() {
    let model = compile(&rag_text());
    let db = CitusDb::create(&model).await;
    let world = seed_world(&db, 3, 1).await;
    let (tenant, project) = world.projects[0];
    let tenancy = db.tenancy();
    let bob = Uuid::new_v4();
    let titles = |tenancy: Tenancy| async move {
        let ctx = match tenancy
            .authorize(UserId::new(bob), TenantId::new(tenant))
            .await
        {
            Ok(ctx) => ctx,
            Err(Error::NotFound) => return 0,
            Err(other) => panic!("authorize: {other:?}"),
        };
        let scope = ctx.all_projects().with_at_least::<Viewer>();
        let mut tx = tenancy.begin(&scope).await.unwrap();
        let n: i64 = sqlx::query_scalar("SELECT count(*) FROM documents")
            .fetch_one(tx.connection())
            .await
            .unwrap();
        tx.rollback().await.unwrap();
        n
    };
    assert_eq!(titles(db.tenancy()).await, 0, "no membership, no rows");
    sqlx::query(
        "INSERT INTO user_project_roles (tenant_id, project_id, user_id, role) \
         VALUES ($1, $2, $3, 'editor')",
    )
    .bind(tenant)
    .bind(project)
    .bind(bob)
    .execute(&db.admin)
    .await
    .unwrap();
    let in_project = world
        .documents
        .iter()
        .filter(|(t, p, _)| *t == tenant && *p == project)
        .count();
    assert_eq!(titles(db.tenancy()).await as usize, in_project, "granted");

    // Row condition: an editor updates only the documents they created (the seeded ones were
    // created by another user): 0 rows, decided on the worker.
    let ctx = tenancy
        .authorize(UserId::new(bob), TenantId::new(tenant))
        .await
        .unwrap();
    let scope = ctx
        .project(tenancy_runtime::ProjectId::new(project))
        .unwrap()
        .require::<Editor>()
        .unwrap();
    let mut tx = tenancy.begin(&scope).await.unwrap();
    let updated = sqlx::query(
        "UPDATE documents SET title = 'mine now' WHERE tenant_id = $1 AND project_id = $2",
    )
    .bind(tenant)
    .bind(project)
    .execute(tx.connection())
    .await
    .unwrap();
    assert_eq!(updated.rows_affected(), 0);
    // ... and the stamp trigger on the worker writes bob as the creator of a new one, which
    // he may then update.
    let created_by: Uuid = sqlx::query_scalar(
        "INSERT INTO documents (tenant_id, project_id, title, content_hash) \
         VALUES ($1, $2, 'bob', 'bob') RETURNING created_by",
    )
    .bind(tenant)
    .bind(project)
    .fetch_one(tx.connection())
    .await
    .unwrap();
    assert_eq!(created_by, bob);
    let updated = sqlx::query(
        "UPDATE documents SET title = 'bob 2' WHERE tenant_id = $1 AND project_id = $2",
    )
    .bind(tenant)
    .bind(project)
    .execute(tx.connection())
    .await
    .unwrap();
    assert_eq!(updated.rows_affected(), 1);
    tx.rollback().await.unwrap();

    sqlx::query("DELETE FROM user_project_roles WHERE user_id = $1")
        .bind(bob)
        .execute(&db.admin)
        .await
        .unwrap();
    assert_eq!(titles(db.tenancy()).await, 0, "revoked");
    let gone = tenancy
        .authorize(UserId::new(bob), TenantId::new(tenant))
        .await
        .map(|_| ());
    assert!(matches!(gone, Err(Error::NotFound)), "{gone:?}");
    db.drop_db().await;
}

/// Installs `claims`, signed with the test key, in the transaction open on `conn` (what
/// `Tenancy::begin` sends, without the runtime).
async fn install_context(conn: &mut sqlx::PgConnection, claims: &str) {
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
        "SELECT tenancy.install_context('{}')",
        context_token(claims)
    )))
    .execute(conn)
    .await
    .unwrap();
}

/// A deterministic 384-dimension vector for `seed`.
fn vector(seed: u64) -> pgvector::Vector {
    let mut rng = Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1);
    pgvector::Vector::from(
        (0..384)
            .map(|_| rng.next(2001) as f32 / 1000.0 - 1.0)
            .collect::<Vec<f32>>(),
    )
}

#[tokio::test]
async fn exact_vector_search_on_distributed_chunks_has_recall_one() {
    let model = compile(&rag_text());
    let db = CitusDb::create(&model).await;
    let world = seed_world(&db, 11, 2).await;
    let tenancy = db.tenancy();
    // 60 chunks in each project of both tenants; the other tenant's lie near the queries too.
    let mut seed = 1;
    for (tenant, project) in &world.projects {
        let document: Uuid = sqlx::query_scalar(
            "SELECT id FROM documents WHERE tenant_id = $1 AND project_id = $2 LIMIT 1",
        )
        .bind(tenant)
        .bind(project)
        .fetch_one(&db.admin)
        .await
        .unwrap();
        for ordinal in 0..60 {
            seed += 1;
            sqlx::query(
                "INSERT INTO chunks (tenant_id, project_id, document_id, ordinal, content, \
                 token_count, embedding) VALUES ($1, $2, $3, $4, 'c', 1, $5)",
            )
            .bind(tenant)
            .bind(project)
            .bind(document)
            .bind(ordinal)
            .bind(vector(seed))
            .execute(&db.admin)
            .await
            .unwrap();
        }
    }
    // The gateway's tier catalog (a table on the coordinator), refreshed: every tenant is
    // small, so every search takes the exact route.
    let maintenance = tenancy_runtime::vector::VectorMaintenance::new(
        db.admin.clone(),
        "citus tests",
        tenancy_runtime::vector::VectorConfig::default(),
    )
    .unwrap();
    maintenance.install().await.unwrap();
    maintenance
        .refresh(&tenancy_generated::Chunks::EMBEDDING_VECTORS.spec)
        .await
        .unwrap();
    let tenant = world.tenants[0];
    let user = world
        .users
        .iter()
        .copied()
        .find(|u| world.roles.keys().any(|(t, _, w)| *t == tenant && w == u))
        .unwrap();
    let ctx = tenancy
        .authorize(UserId::new(user), TenantId::new(tenant))
        .await
        .unwrap();
    let scope = ctx.all_projects().with_at_least::<Viewer>();
    let projects: Vec<Uuid> = tenancy_runtime::Scope::project_ids(&scope)
        .iter()
        .map(|p| p.as_uuid())
        .collect();
    let mut searched = 0;
    for q in 0..5u64 {
        let query = vector(10_000 + q);
        let mut tx = tenancy.begin(&scope).await.unwrap();
        let request = tenancy_runtime::vector::SearchRequest::new(query.clone(), 10);
        let results = tenancy_generated::Chunks::nearest_by_embedding(
            &mut tx,
            &tenancy_runtime::vector::VectorConfig::default(),
            &request,
        )
        .await
        .unwrap();
        tx.rollback().await.unwrap();
        assert_eq!(results.route, tenancy_runtime::vector::Route::Exact);
        let got: Vec<Uuid> = results.hits.iter().map(|h| h.key).collect();
        assert!(results.hits.iter().all(|h| h.row.tenant_id == tenant));
        // The truth, as the superuser with an explicit WHERE: the same ten, in order.
        let truth: Vec<Uuid> = sqlx::query_scalar(
            "SELECT id FROM chunks WHERE tenant_id = $1 AND project_id = ANY($2) \
             ORDER BY embedding <=> $3, project_id, id LIMIT 10",
        )
        .bind(tenant)
        .bind(&projects)
        .bind(&query)
        .fetch_all(&db.admin)
        .await
        .unwrap();
        assert_eq!(truth.len(), 10);
        assert_eq!(got, truth, "recall below 1.0 for query {q}");
        searched += 1;
    }
    assert_eq!(searched, 5);
    db.drop_db().await;
}

#[tokio::test]
async fn an_isolated_tenant_gets_its_own_shard_and_stays_readable_only_by_itself() {
    let model = compile(&rag_text());
    let db = CitusDb::create(&model).await;
    let world = seed_world(&db, 21, 4).await;
    let tenant = world.tenants[0];
    let before = placement(&db, "documents", tenant).await;
    // What `tenancy citus isolate-tenant` runs: every co-located table moves with the tenant.
    let shard: i64 = sqlx::query_scalar(
        "SELECT pg_catalog.isolate_tenant_to_new_shard('public.projects', $1, 'CASCADE', \
         shard_transfer_mode => 'block_writes')",
    )
    .bind(tenant.to_string())
    .fetch_one(&db.admin)
    .await
    .unwrap();
    // The tenant's shard of every co-located table holds exactly its hash value.
    for table in [
        "projects",
        "documents",
        "chunks",
        "user_project_roles",
        "tenancy.audit_log",
    ] {
        let (min, max): (String, String) = sqlx::query_as(
            "SELECT shardminvalue, shardmaxvalue FROM pg_catalog.pg_dist_shard \
             WHERE shardid = pg_catalog.get_shard_id_for_distribution_column($1::regclass, $2)",
        )
        .bind(table)
        .bind(tenant.to_string())
        .fetch_one(&db.admin)
        .await
        .unwrap();
        assert_eq!(
            min, max,
            "{table}: the tenant's shard holds a range, not one value"
        );
    }
    let tenants_shard: i64 = sqlx::query_scalar(
        "SELECT pg_catalog.get_shard_id_for_distribution_column('public.projects', $1)",
    )
    .bind(tenant.to_string())
    .fetch_one(&db.admin)
    .await
    .unwrap();
    assert_eq!(tenants_shard, shard);
    assert_eq!(
        placement(&db, "documents", tenant).await,
        before,
        "same worker"
    );
    // Still readable by its own users, and by nobody else.
    let tenancy = db.tenancy();
    for t in &world.tenants {
        for user in &world.users {
            let expected = expected_titles(&world, *t, *user);
            let Ok(ctx) = tenancy
                .authorize(UserId::new(*user), TenantId::new(*t))
                .await
            else {
                assert!(expected.is_empty());
                continue;
            };
            let scope = ctx.all_projects().with_at_least::<Viewer>();
            let mut tx = tenancy.begin(&scope).await.unwrap();
            let rows: Vec<(Uuid, String)> =
                sqlx::query_as("SELECT tenant_id, title FROM documents")
                    .fetch_all(tx.connection())
                    .await
                    .unwrap();
            tx.rollback().await.unwrap();
            assert!(rows.iter().all(|(row_tenant, _)| row_tenant == t));
            let got: BTreeSet<String> = rows.into_iter().map(|(_, title)| title).collect();
            assert_eq!(got, expected, "tenant {t} user {user}");
        }
    }
    db.drop_db().await;
}

/// The scope of `user` on `project` at role `R` (the user must hold it).
async fn scope_of<R: tenancy_runtime::Role>(
    tenancy: &Tenancy,
    tenant: Uuid,
    project: Uuid,
    user: Uuid,
) -> tenancy_runtime::ProjectScope<R> {
    let ctx = tenancy
        .authorize(UserId::new(user), TenantId::new(tenant))
        .await
        .unwrap();
    ctx.project(tenancy_runtime::ProjectId::new(project))
        .unwrap()
        .require::<R>()
        .unwrap()
}

#[tokio::test]
async fn membership_administration_and_the_last_owner_rule_hold_on_the_cluster() {
    use tenancy_generated::roles::{Admin, Owner};
    use tenancy_generated::{
        NewUserProjectRole, ProjectRole, UserProjectRolePatch, UserProjectRoles,
    };
    let db = CitusDb::create(&compile(&rag_text())).await;
    // The operator path (a system transaction on the coordinator): onboarding and members.
    let ops = tenancy_runtime::admin::Onboarding::new("citus-ops").unwrap();
    let (owner, admin, bob) = (Uuid::new_v4(), Uuid::new_v4(), Uuid::new_v4());
    let mut tx = tenancy_runtime::SystemTx::begin(&db.admin, "citus test")
        .await
        .unwrap();
    let tenant = ops.create_tenant(&mut tx, "acme", "Acme").await.unwrap();
    let project = ops
        .create_project(&mut tx, tenant, "docs", "Docs")
        .await
        .unwrap();
    ops.add_member(&mut tx, tenant, project, UserId::new(owner), "owner")
        .await
        .unwrap();
    ops.add_member(&mut tx, tenant, project, UserId::new(admin), "viewer")
        .await
        .unwrap();
    let previous = ops
        .set_role(&mut tx, tenant, project, UserId::new(admin), "admin")
        .await
        .unwrap();
    assert_eq!(previous, "viewer");
    tx.commit().await.unwrap();
    let (tenant, project) = (tenant.as_uuid(), project.as_uuid());
    let tenancy = db.tenancy();

    // The generated repository's membership writes, by an admin (Citus refused their
    // RETURNING before: the enum's text cast is not IMMUTABLE).
    let scope = scope_of::<Admin>(&tenancy, tenant, project, admin).await;
    let mut tx = tenancy.begin(&scope).await.unwrap();
    let added =
        UserProjectRoles::insert(&mut tx, NewUserProjectRole::new(bob, ProjectRole::Editor))
            .await
            .unwrap();
    assert_eq!((added.user_id, added.role.as_str()), (bob, "editor"));
    let changed = UserProjectRoles::update(
        &mut tx,
        bob,
        UserProjectRolePatch {
            role: Some(ProjectRole::Viewer),
        },
    )
    .await
    .unwrap()
    .unwrap();
    assert_eq!(changed.role, "viewer");
    // The role ceiling holds on the worker: an admin cannot grant the top role.
    let above = UserProjectRoles::update(
        &mut tx,
        bob,
        UserProjectRolePatch {
            role: Some(ProjectRole::Owner),
        },
    )
    .await;
    assert!(above.is_err(), "an admin granted owner: {above:?}");
    drop(tx);
    let mut tx = tenancy.begin(&scope).await.unwrap();
    UserProjectRoles::insert(&mut tx, NewUserProjectRole::new(bob, ProjectRole::Editor))
        .await
        .unwrap();
    tx.commit().await.unwrap();
    let role: String = sqlx::query_scalar(
        "SELECT role::text FROM user_project_roles WHERE tenant_id = $1 AND user_id = $2",
    )
    .bind(tenant)
    .bind(bob)
    .fetch_one(&db.admin)
    .await
    .unwrap();
    assert_eq!(role, "editor");

    // The last owner: demoting or removing them is refused by the trigger on the memberships
    // shard (on the worker), at the end of the statement (not deferred on Citus).
    let owner_scope = scope_of::<Owner>(&tenancy, tenant, project, owner).await;
    let mut tx = tenancy.begin(&owner_scope).await.unwrap();
    let demoted = UserProjectRoles::update(
        &mut tx,
        owner,
        UserProjectRolePatch {
            role: Some(ProjectRole::Admin),
        },
    )
    .await;
    assert!(matches!(demoted, Err(Error::Forbidden)), "{demoted:?}");
    drop(tx);
    let mut tx = tenancy.begin(&owner_scope).await.unwrap();
    let removed = UserProjectRoles::delete(&mut tx, owner).await;
    assert!(matches!(removed, Err(Error::Forbidden)), "{removed:?}");
    drop(tx);
    // The worker's own message reaches the caller (the app role, raw SQL under its context).
    let mut conn = db.app.acquire().await.unwrap();
    let mut raw = conn.begin().await.unwrap();
    let claims = context_value(
        &tenant.to_string(),
        &owner.to_string(),
        &format!("{project}:owner"),
    );
    install_context(&mut raw, &claims).await;
    let refused = refusal(
        sqlx::query("DELETE FROM user_project_roles WHERE tenant_id = $1 AND project_id = $2 AND user_id = $3")
            .bind(tenant)
            .bind(project)
            .bind(owner)
            .execute(&mut *raw)
            .await,
    );
    assert!(refused.contains("would be left with no owner"), "{refused}");
    assert!(refused.contains("while executing command on"), "{refused}");
    drop(raw);
    drop(conn);
    // A hand-over in one transaction is accepted: bob becomes owner, then the owner steps down.
    let mut tx = tenancy.begin(&owner_scope).await.unwrap();
    UserProjectRoles::update(
        &mut tx,
        bob,
        UserProjectRolePatch {
            role: Some(ProjectRole::Owner),
        },
    )
    .await
    .unwrap()
    .unwrap();
    UserProjectRoles::update(
        &mut tx,
        owner,
        UserProjectRolePatch {
            role: Some(ProjectRole::Admin),
        },
    )
    .await
    .unwrap()
    .unwrap();
    tx.commit().await.unwrap();
    let owners: Vec<Uuid> = sqlx::query_scalar(
        "SELECT user_id FROM user_project_roles WHERE tenant_id = $1 AND role = 'owner'",
    )
    .bind(tenant)
    .fetch_all(&db.admin)
    .await
    .unwrap();
    assert_eq!(owners, vec![bob]);
    // The operator command refuses the last owner too.
    let mut tx = tenancy_runtime::SystemTx::begin(&db.admin, "citus test")
        .await
        .unwrap();
    let last = ops
        .remove_member(
            &mut tx,
            TenantId::new(tenant),
            tenancy_runtime::ProjectId::new(project),
            UserId::new(bob),
        )
        .await;
    assert!(
        matches!(
            last,
            Err(tenancy_runtime::admin::AdminError::LastOwner { .. })
        ),
        "{last:?}"
    );
    tx.rollback().await.unwrap();
    db.drop_db().await;
}

#[tokio::test]
async fn set_null_and_cascades_clear_references_on_the_workers() {
    let db = CitusDb::create(&compile(&rag_text())).await;
    let world = seed_world(&db, 5, 2).await;
    let (tenant, project) = world.projects[0];
    // An editor of that project (the seeded roles are random: add one).
    let editor = Uuid::new_v4();
    sqlx::query(
        "INSERT INTO user_project_roles (tenant_id, project_id, user_id, role) \
         VALUES ($1, $2, $3, 'admin')",
    )
    .bind(tenant)
    .bind(project)
    .bind(editor)
    .execute(&db.admin)
    .await
    .unwrap();
    let document: Uuid = sqlx::query_scalar(
        "SELECT id FROM documents WHERE tenant_id = $1 AND project_id = $2 LIMIT 1",
    )
    .bind(tenant)
    .bind(project)
    .fetch_one(&db.admin)
    .await
    .unwrap();
    // Two chunks, a query, a response and two assertions citing one chunk each.
    let mut chunks = Vec::new();
    for ordinal in 0..2 {
        let id: Uuid = sqlx::query_scalar(
            "INSERT INTO chunks (tenant_id, project_id, document_id, ordinal, content, token_count) \
             VALUES ($1, $2, $3, $4, 'c', 1) RETURNING id",
        )
        .bind(tenant)
        .bind(project)
        .bind(document)
        .bind(ordinal)
        .fetch_one(&db.admin)
        .await
        .unwrap();
        chunks.push(id);
    }
    let query: Uuid = sqlx::query_scalar(
        "INSERT INTO queries (tenant_id, project_id, query_text, asked_by) \
         VALUES ($1, $2, 'q', $3) RETURNING id",
    )
    .bind(tenant)
    .bind(project)
    .bind(editor)
    .fetch_one(&db.admin)
    .await
    .unwrap();
    let response: Uuid = sqlx::query_scalar(
        "INSERT INTO responses (tenant_id, project_id, query_id, answer_text, model) \
         VALUES ($1, $2, $3, 'a', 'm') RETURNING id",
    )
    .bind(tenant)
    .bind(project)
    .bind(query)
    .fetch_one(&db.admin)
    .await
    .unwrap();
    let mut assertions = Vec::new();
    for chunk in &chunks {
        let id: Uuid = sqlx::query_scalar(
            "INSERT INTO assertions (tenant_id, project_id, response_id, chunk_id, claim) \
             VALUES ($1, $2, $3, $4, 'claim') RETURNING id",
        )
        .bind(tenant)
        .bind(project)
        .bind(response)
        .bind(chunk)
        .fetch_one(&db.admin)
        .await
        .unwrap();
        assertions.push(id);
    }
    let chunk_of = |assertion: Uuid| {
        let admin = db.admin.clone();
        async move {
            sqlx::query_scalar::<_, Option<Uuid>>(
                "SELECT chunk_id FROM assertions WHERE tenant_id = $1 AND id = $2",
            )
            .bind(tenant)
            .bind(assertion)
            .fetch_one(&admin)
            .await
            .unwrap()
        }
    };
    // The app role deletes the first chunk: the assertion stays, its chunk_id is cleared.
    let tenancy = db.tenancy();
    let scope = scope_of::<Editor>(&tenancy, tenant, project, editor).await;
    let mut tx = tenancy.begin(&scope).await.unwrap();
    let deleted = tenancy_generated::Chunks::delete(&mut tx, chunks[0])
        .await
        .unwrap();
    assert!(deleted);
    tx.commit().await.unwrap();
    assert_eq!(chunk_of(assertions[0]).await, None);
    assert_eq!(chunk_of(assertions[1]).await, Some(chunks[1]));
    // Deleting the document cascades to its chunks (PostgreSQL's own action on the shard),
    // whose trigger clears the second assertion's reference.
    let scope =
        scope_of::<tenancy_generated::roles::Admin>(&tenancy, tenant, project, editor).await;
    let mut tx = tenancy.begin(&scope).await.unwrap();
    assert!(tenancy_generated::Documents::delete(&mut tx, document)
        .await
        .unwrap());
    tx.commit().await.unwrap();
    assert_eq!(chunk_of(assertions[1]).await, None);
    let left: i64 = sqlx::query_scalar("SELECT count(*) FROM assertions WHERE tenant_id = $1")
        .bind(tenant)
        .fetch_one(&db.admin)
        .await
        .unwrap();
    assert_eq!(left, 2, "the assertions themselves stay");
    db.drop_db().await;
}

/// Chunk `i`'s embedding in the HNSW test: one of 20 cluster centres plus noise, the shape of
/// `tests/vector_live.rs`'s data (`sin((i % 20) * 12.9898 + j * 78.233)` plus uniform noise).
fn clustered(i: u64) -> Vec<f32> {
    let noise = vector(1_000_000 + i);
    noise
        .as_slice()
        .iter()
        .enumerate()
        .map(|(j, n)| {
            (((i % 20) as f64 * 12.9898 + (j + 1) as f64 * 78.233).sin() as f32) + 0.5 * n
        })
        .collect()
}

/// pgvector's text form of `values`, for bulk inserts through `unnest(text[])`.
fn vector_text(values: &[f32]) -> String {
    let values: Vec<String> = values.iter().map(|v| v.to_string()).collect();
    format!("[{}]", values.join(","))
}

#[tokio::test]
async fn the_tenant_hnsw_tier_runs_on_the_shards_with_recall() {
    use std::collections::HashSet;
    use tenancy_runtime::vector::{
        Route, SearchRequest, VectorConfig, VectorGateway, VectorMaintenance,
    };
    let db = CitusDb::create(&compile(&rag_text())).await;
    let world = seed_world(&db, 13, 2).await;
    let (big, project) = world.projects[0];
    let (small, small_project) = world
        .projects
        .iter()
        .copied()
        .find(|(t, _)| *t != big)
        .unwrap();
    // 4,000 chunks in one project of the big tenant, 60 in the small tenant (near the same
    // queries: a leak would show up in the results).
    for (tenant, project, count, base) in [
        (big, project, 4_000u64, 0u64),
        (small, small_project, 60, 50_000),
    ] {
        let document: Uuid = sqlx::query_scalar(
            "SELECT id FROM documents WHERE tenant_id = $1 AND project_id = $2 LIMIT 1",
        )
        .bind(tenant)
        .bind(project)
        .fetch_one(&db.admin)
        .await
        .unwrap();
        let vectors: Vec<String> = (0..count)
            .map(|i| vector_text(&clustered(base + i)))
            .collect();
        sqlx::query(
            "INSERT INTO chunks (tenant_id, project_id, document_id, ordinal, content, token_count, embedding) \
             SELECT $1, $2, $3, v.n::integer, 'c', 1, v.e::vector FROM unnest($4::text[]) WITH ORDINALITY AS v(e, n)",
        )
        .bind(tenant)
        .bind(project)
        .bind(document)
        .bind(&vectors)
        .execute(&db.admin)
        .await
        .unwrap();
    }
    let config = VectorConfig {
        promote_at: 2_000,
        demote_below: Some(1_000),
        exact_scope_max: 1_000,
        ..VectorConfig::default()
    };
    let maintenance =
        VectorMaintenance::new(db.admin.clone(), "citus tests", config.clone()).unwrap();
    maintenance.install().await.unwrap();
    let spec = &tenancy_generated::Chunks::EMBEDDING_VECTORS.spec;
    let report = maintenance.refresh(spec).await.unwrap();
    assert_eq!(
        report
            .promoted
            .iter()
            .map(|p| p.0.as_uuid())
            .collect::<Vec<_>>(),
        vec![big],
        "{report:?}"
    );
    // CREATE INDEX CONCURRENTLY on the distributed table built the partial index on every
    // shard of chunks (only the big tenant's shard has rows under its predicate).
    let index: String =
        sqlx::query_scalar("SELECT index_name FROM tenancy.vector_tiers WHERE tenant_id = $1")
            .bind(big)
            .fetch_one(&db.admin)
            .await
            .unwrap();
    let index = index.strip_prefix("public.").unwrap_or(&index).to_owned();
    let mut shard_indexes = 0i64;
    for w in 0..2 {
        let mut worker = db.worker(w).await;
        sqlx::raw_sql("SET citus.override_table_visibility = false")
            .execute(&mut worker)
            .await
            .unwrap();
        let n: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM pg_catalog.pg_indexes WHERE indexname LIKE $1 || '%' \
             AND indexdef LIKE '%USING hnsw%' AND tablename <> 'chunks'",
        )
        .bind(&index)
        .fetch_one(&mut worker)
        .await
        .unwrap();
        shard_indexes += n;
        worker.close().await.unwrap();
    }
    assert_eq!(
        shard_indexes,
        i64::from(citus_common::SHARD_COUNT),
        "the tenant's HNSW index is not on every shard of chunks"
    );

    // A viewer of the big tenant's project searches through the gateway: the HNSW route, on
    // the tenant's shard (a single-task router plan using the shard's partial index).
    let viewer = Uuid::new_v4();
    sqlx::query(
        "INSERT INTO user_project_roles (tenant_id, project_id, user_id, role) VALUES ($1, $2, $3, 'viewer')",
    )
    .bind(big)
    .bind(project)
    .bind(viewer)
    .execute(&db.admin)
    .await
    .unwrap();
    let tenancy = db.tenancy();
    let scope = scope_of::<Viewer>(&tenancy, big, project, viewer).await;
    let gateway = VectorGateway::new(tenancy_generated::Chunks::EMBEDDING_VECTORS, config.clone());
    let mut found = 0usize;
    let queries: Vec<u64> = (0..20).map(|q| q * 97).collect();
    for q in &queries {
        // Near a stored chunk, as a real question is near its answer (tests/vector_live.rs).
        let query = pgvector::Vector::from(
            clustered(*q)
                .iter()
                .zip(vector(7 + q).as_slice())
                .map(|(x, n)| x + 0.2 * n)
                .collect::<Vec<f32>>(),
        );
        let request = SearchRequest::new(query.clone(), 10);
        let mut tx = tenancy.begin(&scope).await.unwrap();
        let (route, plan) = gateway.explain_search(&mut tx, &request).await.unwrap();
        assert_eq!(route, Route::TenantHnsw);
        assert!(plan.contains("Task Count: 1"), "{plan}");
        assert!(
            plan.contains(&index),
            "the shard's HNSW index is not used:\n{plan}"
        );
        let results = tenancy_generated::Chunks::nearest_by_embedding(&mut tx, &config, &request)
            .await
            .unwrap();
        // The gateway's pgvector settings reached the worker (SET LOCAL, not set_config).
        let on_worker: String = sqlx::query_scalar(
            "SELECT current_setting('hnsw.ef_search') FROM chunks WHERE tenant_id = $1 LIMIT 1",
        )
        .bind(big)
        .fetch_one(tx.connection())
        .await
        .unwrap();
        assert_eq!(on_worker, config.ef_search.to_string());
        tx.rollback().await.unwrap();
        assert_eq!(results.route, Route::TenantHnsw);
        assert_eq!(results.hits.len(), 10);
        assert!(results
            .hits
            .iter()
            .all(|h| h.row.tenant_id == big && h.row.project_id == project));
        let truth: HashSet<Uuid> = sqlx::query_scalar(
            "SELECT id FROM chunks WHERE tenant_id = $1 AND project_id = $2 \
             ORDER BY embedding <=> $3, id LIMIT 10",
        )
        .bind(big)
        .bind(project)
        .bind(&query)
        .fetch_all(&db.admin)
        .await
        .unwrap()
        .into_iter()
        .collect();
        found += results
            .hits
            .iter()
            .filter(|h| truth.contains(&h.key))
            .count();
    }
    let recall = found as f64 / (queries.len() * 10) as f64;
    eprintln!("recall@10 of the tenant HNSW tier on Citus: {recall}");
    assert!(
        recall >= 0.9,
        "recall@10 of the tenant HNSW tier on Citus: {recall}"
    );
    db.drop_db().await;
}

#[tokio::test]
async fn an_incremental_migration_distributes_the_tables_it_creates() {
    use tenancy_core::output::{generate, ExistingOutput, GenerateOptions};
    let base = compile(&rag_text());
    let db = CitusDb::create(&base).await;
    let grown = compile(&format!(
        "{}\n/// A citation of a chunk.\nscoped table citations {{\n    id uuid default gen_random_uuid()\n    \
         chunk_id uuid? references chunks(id) on delete set null\n    note text\n\n    primary key (id)\n\n    \
         allow select to viewer\n    allow insert, update, delete to editor\n}}\n",
        rag_text()
    ));
    let baseline = generate(
        &base,
        Target::Citus,
        &ExistingOutput::default(),
        GenerateOptions::default(),
    )
    .unwrap();
    let existing = ExistingOutput {
        snapshot: baseline
            .iter()
            .find(|f| {
                f.path.as_path() == std::path::Path::new(tenancy_core::snapshot::SNAPSHOT_FILE)
            })
            .map(|f| f.contents.clone()),
        migrations: baseline
            .iter()
            .filter(|f| f.path.starts_with("migrations"))
            .cloned()
            .collect(),
    };
    let files = generate(&grown, Target::Citus, &existing, GenerateOptions::default())
        .unwrap_or_else(|e| panic!("the incremental migration on Citus: {e}"));
    let dir = std::env::temp_dir().join(format!("{}_incremental", db.name));
    std::fs::create_dir_all(&dir).unwrap();
    for file in files.iter().chain(existing.migrations.iter()) {
        if let Ok(name) = file.path.strip_prefix("migrations") {
            std::fs::write(dir.join(name), &file.contents).unwrap();
        }
    }
    let migrations = tenancy_migrate::read_migrations(&dir).unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    assert_eq!(migrations.len(), db.migrations.len() + 1);
    let mut conn = sqlx::PgConnection::connect(&db.url).await.unwrap();
    let applied = tenancy_migrate::apply(&mut conn, &migrations)
        .await
        .unwrap_or_else(|e| panic!("migrate apply of the incremental migration: {e}"));
    assert_eq!(applied.len(), 1);
    let (kind, column, colocated): (String, String, bool) = sqlx::query_as(
        "SELECT c.citus_table_type, c.distribution_column, \
         c.colocation_id = (SELECT colocation_id FROM public.citus_tables WHERE table_name = 'projects'::regclass) \
         FROM public.citus_tables AS c WHERE c.table_name = 'citations'::regclass",
    )
    .fetch_one(&mut conn)
    .await
    .unwrap();
    assert_eq!(
        (kind.as_str(), column.as_str(), colocated),
        ("distributed", "tenant_id", true)
    );
    conn.close().await.unwrap();
    // The new table works through the workers: written by the app role under its context,
    // its SET NULL reference cleared when the chunk goes.
    let world = seed_world(&db, 17, 1).await;
    let (tenant, project) = world.projects[0];
    let editor = Uuid::new_v4();
    sqlx::query(
        "INSERT INTO user_project_roles (tenant_id, project_id, user_id, role) VALUES ($1, $2, $3, 'editor')",
    )
    .bind(tenant)
    .bind(project)
    .bind(editor)
    .execute(&db.admin)
    .await
    .unwrap();
    let chunk: Uuid = sqlx::query_scalar(
        "INSERT INTO chunks (tenant_id, project_id, document_id, ordinal, content, token_count) \
         SELECT tenant_id, project_id, id, 0, 'c', 1 FROM documents WHERE tenant_id = $1 AND project_id = $2 \
         LIMIT 1 RETURNING id",
    )
    .bind(tenant)
    .bind(project)
    .fetch_one(&db.admin)
    .await
    .unwrap();
    let tenancy = db.tenancy();
    let scope = scope_of::<Editor>(&tenancy, tenant, project, editor).await;
    let mut tx = tenancy.begin(&scope).await.unwrap();
    sqlx::query(
        "INSERT INTO citations (tenant_id, project_id, chunk_id, note) VALUES ($1, $2, $3, 'n')",
    )
    .bind(tenant)
    .bind(project)
    .bind(chunk)
    .execute(tx.connection())
    .await
    .unwrap();
    sqlx::query("DELETE FROM chunks WHERE tenant_id = $1 AND id = $2")
        .bind(tenant)
        .bind(chunk)
        .execute(tx.connection())
        .await
        .unwrap();
    let cleared: Option<Uuid> =
        sqlx::query_scalar("SELECT chunk_id FROM citations WHERE tenant_id = $1")
            .bind(tenant)
            .fetch_one(tx.connection())
            .await
            .unwrap();
    assert_eq!(cleared, None);
    tx.commit().await.unwrap();
    db.drop_db().await;
}

/// Audits for Citus and asserts a finding with `code` on `object`.
async fn audit_finds(
    pool: &sqlx::PgPool,
    model: &tenancy_core::model::Model,
    code: &str,
    object: &str,
) {
    let report = tenancy_audit::audit_for_target(pool, model, Target::Citus)
        .await
        .unwrap();
    assert!(
        report.with_code(code).any(|f| f.object == object),
        "expected {code} on {object}:\n{}",
        report.to_text()
    );
}

#[tokio::test]
async fn audit_understands_the_citus_form_and_reports_its_failure_modes() {
    use tenancy_audit::codes;
    let model = compile(&rag_text());
    let db = CitusDb::create(&model).await;
    // The generated Citus schema is clean, and the audit detects the target by itself.
    let pool = tenancy_audit::connect(&db.url).await.unwrap();
    assert_eq!(
        tenancy_audit::detect_target(&pool).await.unwrap(),
        Target::Citus
    );
    let report = tenancy_audit::audit_for_target(&pool, &model, Target::Citus)
        .await
        .unwrap();
    assert!(report.is_clean(), "{}", report.to_text());
    // Citus failure modes, each introduced by hand:
    // a restrictive tenant boundary (what the PostgreSQL target writes; lost on the shards),
    // a permissive policy without the tenant check,
    // a shard whose policy was dropped on its worker,
    // a new tenant table left local.
    sqlx::raw_sql(
        "CREATE POLICY documents_boundary ON documents AS RESTRICTIVE TO tenancy_app \
           USING (tenant_id = tenancy.current_tenant_id()); \
         CREATE POLICY chunks_everyone ON chunks FOR SELECT TO tenancy_app USING (true);",
    )
    .execute(&db.admin)
    .await
    .unwrap();
    sqlx::raw_sql(
        "GRANT EXECUTE ON FUNCTION pg_catalog.assign_distributed_transaction_id(integer, bigint, timestamptz) TO PUBLIC",
    )
    .execute(&db.admin)
    .await
    .unwrap();
    let (shard, port): (String, i32) = sqlx::query_as(
        "SELECT shard_name::text, nodeport FROM pg_catalog.citus_shards \
         WHERE table_name = 'queries'::regclass ORDER BY shardid LIMIT 1",
    )
    .fetch_one(&db.admin)
    .await
    .unwrap();
    let index = db
        .cluster
        .nodes
        .iter()
        .position(|(_, p)| i32::from(*p) == port)
        .unwrap();
    let mut worker = db.worker(index - 1).await;
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
        "SET citus.enable_ddl_propagation = off; ALTER TABLE {shard} NO FORCE ROW LEVEL SECURITY; \
         DROP POLICY queries_select ON {shard}"
    )))
    .execute(&mut worker)
    .await
    .unwrap();
    worker.close().await.unwrap();
    let report = tenancy_audit::audit_for_target(&pool, &model, Target::Citus)
        .await
        .unwrap();
    let text = report.to_text();
    assert!(
        report
            .with_code(codes::CITUS_POLICY_NOT_FOLDED)
            .any(
                |f| f.object == "policy documents_boundary on public.documents"
                    && f.message.contains("RESTRICTIVE")
            ),
        "{text}"
    );
    assert!(
        report
            .with_code(codes::CITUS_POLICY_NOT_FOLDED)
            .any(|f| f.object == "policy chunks_everyone on public.chunks"
                && f.message.contains("no tenant check")),
        "{text}"
    );
    assert!(report.has(codes::CITUS_TRANSACTION_NUMBER), "{text}");
    let shard_id = shard.rsplit('_').next().unwrap_or_default().to_owned();
    assert!(
        report
            .with_code(codes::CITUS_SHARD_POLICY)
            .any(|f| f.object == format!("shard {shard_id} of public.queries")),
        "{text}"
    );
    // Only the tampered shard of queries, not its others.
    assert_eq!(
        report
            .with_code(codes::CITUS_SHARD_POLICY)
            .filter(|f| f.object.ends_with("of public.queries"))
            .count(),
        1,
        "{text}"
    );
    // A table out of the tenant tree's colocation group, then left local (its foreign keys
    // dropped first: Citus moves tables with foreign keys only together).
    let keys: Vec<String> = sqlx::query_scalar(
        "SELECT conname::text FROM pg_catalog.pg_constraint \
         WHERE conrelid = 'public.assertions'::regclass AND contype = 'f'",
    )
    .fetch_all(&db.admin)
    .await
    .unwrap();
    for key in keys {
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
            "ALTER TABLE assertions DROP CONSTRAINT {key}"
        )))
        .execute(&db.admin)
        .await
        .unwrap();
    }
    sqlx::raw_sql(
        "SELECT update_distributed_table_colocation('public.assertions', colocate_with => 'none')",
    )
    .execute(&db.admin)
    .await
    .unwrap();
    audit_finds(
        &pool,
        &model,
        codes::CITUS_NOT_COLOCATED,
        "table public.assertions",
    )
    .await;
    sqlx::raw_sql("SELECT undistribute_table('public.assertions')")
        .execute(&db.admin)
        .await
        .unwrap();
    audit_finds(
        &pool,
        &model,
        codes::CITUS_NOT_DISTRIBUTED,
        "table public.assertions",
    )
    .await;
    pool.close().await;
    db.drop_db().await;
}

#[tokio::test]
async fn audit_for_citus_on_a_database_without_citus_reports_it() {
    // The coordinator's `postgres` database of a fresh database without the extension.
    let cluster = citus_common::cluster().await;
    let name = format!("tenancy_citus_plain_{}", std::process::id());
    let mut conn = sqlx::PgConnection::connect(&cluster.url).await.unwrap();
    for statement in [
        format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"),
        format!("CREATE DATABASE {name}"),
    ] {
        sqlx::raw_sql(sqlx::AssertSqlSafe(statement))
            .execute(&mut conn)
            .await
            .unwrap();
    }
    let url = citus_common::node_url(
        &cluster.url,
        &cluster.nodes[0].0,
        cluster.nodes[0].1,
        &name,
        None,
    );
    let pool = tenancy_audit::connect(&url).await.unwrap();
    assert_eq!(
        tenancy_audit::detect_target(&pool).await.unwrap(),
        Target::Postgres
    );
    let report = tenancy_audit::audit_for_target(&pool, &compile(&rag_text()), Target::Citus)
        .await
        .unwrap();
    assert!(
        report.has(tenancy_audit::codes::CITUS_MISSING),
        "{}",
        report.to_text()
    );
    pool.close().await;
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
        "DROP DATABASE {name} WITH (FORCE)"
    )))
    .execute(&mut conn)
    .await
    .unwrap();
}
