//! By-key writes keep the primary key under generic plans.
//!
//! sqlx prepares every statement, and after five executions PostgreSQL may switch a prepared
//! statement to a generic plan, planned without the parameter values. The first full run of
//! `bench-isolation` found `Chunks::update`/`Chunks::delete` taking ~200 ms on a project of
//! 150,000 chunks: the generic plan walked `chunks_document_id_ordinal_key` and filtered on
//! `id`. The cause was the policy form `project_id = ANY ((SELECT project_ids(..)))` as an
//! index condition: costed as a guessed 10-element array and multiplied with the query's own
//! `project_id = $2`, it drove the row estimate to 1, so every index led by
//! `(tenant_id, project_id)` looked as good as the primary key. The generated policies then
//! wrapped the membership test in `COALESCE(.., false)` (a per-row filter). Since the statistics
//! migration the schema keeps no statistics on tenant-owned tables and fixes `project_id`'s
//! `n_distinct` at 1, so each element of the guessed array is costed as selectivity 1 and the
//! estimate no longer collapses: core revision 6 (issue 22) tests membership as an index
//! condition again, and the tests here hold with it.
//!
//! Data: 4 tenants x 75 projects (300 distinct project ids, enough for the estimate to
//! collapse with statistics), 60 chunks each (18,000), ANALYZE'd. The control test turns
//! statistics back on and shows the index-condition form then collapses the estimate and the
//! `COALESCE` form does not, so the check is not vacuous.

use serde_json::Value;
use sqlx::{Connection, PgConnection, Row};
use tenancy_generated::Chunks;
use tenancy_tests::{set_context, TestDb};
use uuid::Uuid;

const TENANTS: i32 = 4;
const PROJECTS_PER_TENANT: i32 = 75;
const DOCS_PER_PROJECT: i32 = 2;
const CHUNKS_PER_DOC: i32 = 30;
/// Documents of the measured project (tenant 0, project 0): 6,000 chunks.
const BIG_PROJECT_DOCS: i32 = 200;

struct Seeded {
    db: TestDb,
    tenant: Uuid,
    project: Uuid,
    user: Uuid,
    chunk: Uuid,
}

/// Server-side seed with md5-derived ids (deterministic), then ANALYZE.
async fn seed() -> Seeded {
    let db = TestDb::fresh().await;
    let admin = db.admin_pool();
    let script = format!(
        "SET session_replication_role = replica;
         CREATE TEMP TABLE seed_projects AS
           SELECT md5('t' || t)::uuid AS tenant_id, md5('p' || t || '-' || p)::uuid AS project_id,
                  t, p
           FROM generate_series(0, {last_tenant}) AS t, generate_series(0, {last_project}) AS p;
         INSERT INTO tenants (id, name, slug)
           SELECT DISTINCT tenant_id, 't' || t, 't' || t FROM seed_projects;
         INSERT INTO projects (tenant_id, id, name, slug)
           SELECT tenant_id, project_id, 'p' || p, 'p' || p FROM seed_projects;
         INSERT INTO user_project_roles (tenant_id, project_id, user_id, role)
           SELECT tenant_id, project_id, md5('u' || t)::uuid, 'editor' FROM seed_projects;
         INSERT INTO documents (tenant_id, project_id, id, title, content_hash, created_by)
           SELECT sp.tenant_id, sp.project_id, md5(sp.project_id::text || d)::uuid, 'doc ' || d,
                  md5(d::text), md5('u' || sp.t)::uuid
           FROM seed_projects AS sp,
                generate_series(1, CASE WHEN sp.t = 0 AND sp.p = 0 THEN {big_docs} ELSE {docs} END) AS d;
         INSERT INTO chunks (tenant_id, project_id, id, document_id, ordinal, content, token_count)
           SELECT d.tenant_id, d.project_id, md5(d.id::text || ':' || o)::uuid, d.id, o,
                  'chunk ' || o, 10
           FROM documents AS d, generate_series(1, {chunks}) AS o
           ORDER BY 1, 2, 3;
         RESET session_replication_role;
         ANALYZE;",
        last_tenant = TENANTS - 1,
        last_project = PROJECTS_PER_TENANT - 1,
        docs = DOCS_PER_PROJECT,
        big_docs = BIG_PROJECT_DOCS,
        chunks = CHUNKS_PER_DOC,
    );
    sqlx::raw_sql(sqlx::AssertSqlSafe(script.as_str()))
        .execute(admin)
        .await
        .unwrap();
    let tenant: Uuid = sqlx::query_scalar("SELECT md5('t0')::uuid")
        .fetch_one(admin)
        .await
        .unwrap();
    let project: Uuid = sqlx::query_scalar("SELECT md5('p0-0')::uuid")
        .fetch_one(admin)
        .await
        .unwrap();
    let user: Uuid = sqlx::query_scalar("SELECT md5('u0')::uuid")
        .fetch_one(admin)
        .await
        .unwrap();
    let chunk: Uuid = sqlx::query_scalar(
        "SELECT id FROM chunks WHERE tenant_id = $1 AND project_id = $2 ORDER BY id LIMIT 1 OFFSET 17",
    )
    .bind(tenant)
    .bind(project)
    .fetch_one(admin)
    .await
    .unwrap();
    Seeded {
        db,
        tenant,
        project,
        user,
        chunk,
    }
}

fn nodes(plan: &Value) -> Vec<&Value> {
    let mut out = vec![plan];
    if let Some(children) = plan.get("Plans").and_then(Value::as_array) {
        for child in children {
            out.extend(nodes(child));
        }
    }
    out
}

/// The scan of `chunks` in a plan: (index name, index condition, rows removed by filter); for
/// a bitmap heap scan, the index and condition of its bitmap index scan.
fn chunks_scan(plan: &Value) -> (String, String, i64) {
    let scan = nodes(plan)
        .into_iter()
        .find(|n| {
            n.get("Relation Name").and_then(Value::as_str) == Some("chunks")
                && n.get("Node Type")
                    .and_then(Value::as_str)
                    .is_some_and(|t| t.ends_with("Scan"))
        })
        .unwrap_or_else(|| panic!("no scan of chunks in {plan:#}"));
    let get = |key: &str| {
        scan.get(key)
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned()
    };
    let removed = scan
        .get("Rows Removed by Filter")
        .and_then(Value::as_f64)
        .unwrap_or(0.0) as i64;
    // A bitmap heap scan reads the index through its Bitmap Index Scan child (the planner
    // may pick one for a one-row key when the table has no statistics, docs/security.md).
    if get("Node Type") == "Bitmap Heap Scan" {
        let index = nodes(scan)
            .into_iter()
            .find(|n| n.get("Node Type").and_then(Value::as_str) == Some("Bitmap Index Scan"))
            .unwrap_or_else(|| panic!("a bitmap heap scan without an index scan: {scan:#}"));
        let text = |key: &str| {
            index
                .get(key)
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned()
        };
        return (text("Index Name"), text("Index Cond"), removed);
    }
    (get("Index Name"), get("Index Cond"), removed)
}

/// `EXPLAIN (ANALYZE, FORMAT JSON)` of `EXECUTE name(args)` under `force_generic_plan`, as the
/// application role with the scope's context, rolled back.
async fn generic_plan(seeded: &Seeded, sql: &str, args: &str) -> Value {
    let mut conn = PgConnection::connect(seeded.db.app_url()).await.unwrap();
    let mut tx = conn.begin().await.unwrap();
    let context = format!(
        "{set_context}; SET LOCAL plan_cache_mode = force_generic_plan; PREPARE by_key AS {sql}",
        set_context = set_context(
            &seeded.tenant.to_string(),
            &seeded.user.to_string(),
            &format!("{}:editor", seeded.project),
        ),
    );
    sqlx::raw_sql(sqlx::AssertSqlSafe(context.as_str()))
        .execute(&mut *tx)
        .await
        .unwrap();
    let row = sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
        "EXPLAIN (ANALYZE, VERBOSE, FORMAT JSON) EXECUTE by_key({args})"
    )))
    .fetch_one(&mut *tx)
    .await
    .unwrap();
    let doc: Value = row.get(0);
    tx.rollback().await.unwrap();
    doc[0]["Plan"].clone()
}

fn key_args(seeded: &Seeded) -> String {
    format!(
        "'{}'::uuid, '{}'::uuid, '{}'::uuid",
        seeded.tenant, seeded.project, seeded.chunk
    )
}

/// The arguments `Chunks::update` sends for a patch that sets only `content`.
fn update_args(seeded: &Seeded) -> String {
    format!(
        "{}, false, NULL, false, NULL, true, 'patched', false, NULL, false, NULL, false, NULL",
        key_args(seeded)
    )
}

fn get_args(seeded: &Seeded) -> String {
    format!(
        "'{}'::uuid, ARRAY['{}'::uuid], '{}'::uuid",
        seeded.tenant, seeded.project, seeded.chunk
    )
}

fn assert_primary_key(label: &str, plan: &Value) {
    let (index, cond, removed) = chunks_scan(plan);
    assert_eq!(
        index, "chunks_pkey",
        "{label}: the generic plan does not use the primary key:\n{plan:#}"
    );
    assert!(
        cond.contains("(chunks.id = $3)") || cond.contains("(id = $3)"),
        "{label}: id is not an index condition ({cond})"
    );
    assert_eq!(removed, 0, "{label}: rows were filtered after the index");
    assert_eq!(
        plan["Actual Rows"].as_f64(),
        Some(1.0),
        "{label}: the statement did not reach its row:\n{plan:#}"
    );
}

#[tokio::test]
async fn by_key_statements_use_the_primary_key_under_generic_plans() {
    let seeded = seed().await;
    let update = generic_plan(&seeded, Chunks::UPDATE_SQL, &update_args(&seeded)).await;
    assert_primary_key("Chunks::UPDATE_SQL", &update);
    let get = generic_plan(&seeded, Chunks::GET_SQL, &get_args(&seeded)).await;
    assert_primary_key("Chunks::GET_SQL", &get);
    let get_one = generic_plan(&seeded, Chunks::GET_IN_PROJECT_SQL, &key_args(&seeded)).await;
    assert_primary_key("Chunks::GET_IN_PROJECT_SQL", &get_one);
    // DELETE reports no rows at its root; its scan must still find the row.
    let delete = generic_plan(&seeded, Chunks::DELETE_SQL, &key_args(&seeded)).await;
    let (index, cond, removed) = chunks_scan(&delete);
    assert_eq!(
        index, "chunks_pkey",
        "Chunks::DELETE_SQL: generic plan:\n{delete:#}"
    );
    assert!(cond.contains("id = $3"), "Chunks::DELETE_SQL: {cond}");
    assert_eq!(removed, 0);
    seeded.db.drop_db().await;
}

/// The mechanism, and the control: the generic plan's row estimate for one project's chunks
/// (the `tenant_id = $1 AND project_id = $2` prefix that `Chunks::UPDATE_SQL` and
/// `Chunks::DELETE_SQL` put before the key). The generated schema collects no statistics on
/// tenant-owned tables and fixes `project_id`'s `n_distinct` at 1 (docs/security.md), so the
/// membership test, an index condition, leaves the estimate at a default share of the table.
/// The control turns statistics back on (what a database has before the statistics
/// migration): there the index-condition form collapses the estimate to a couple of rows
/// (which index then wins a by-key lookup is a coin toss: the bench lost it) and the
/// `COALESCE(..)` form of core revisions before 6 does not. The index-condition form relies on
/// the fixed estimates of the statistics migration.
#[tokio::test]
async fn the_policy_no_longer_collapses_the_row_estimate() {
    let seeded = seed().await;
    const PREFIX_SQL: &str = "SELECT id FROM chunks WHERE tenant_id = $1 AND project_id = $2";
    let count_args = |s: &Seeded| format!("'{}'::uuid, '{}'::uuid", s.tenant, s.project);
    // An ordinary project (60 chunks), not the big one.
    let ordinary = Seeded {
        project: sqlx::query_scalar("SELECT md5('p0-1')::uuid")
            .fetch_one(seeded.db.admin_pool())
            .await
            .unwrap(),
        ..seeded
    };
    let estimate = |plan: &Value| {
        let scan = nodes(plan)
            .into_iter()
            .find(|n| n.get("Relation Name").and_then(Value::as_str) == Some("chunks"))
            .unwrap_or_else(|| panic!("no scan of chunks in {plan:#}"));
        (
            scan["Plan Rows"].as_f64().unwrap(),
            scan["Actual Rows"].as_f64().unwrap(),
        )
    };
    let plan = generic_plan(&ordinary, PREFIX_SQL, &count_args(&ordinary)).await;
    let (generated, actual) = estimate(&plan);
    assert_eq!(actual, f64::from(DOCS_PER_PROJECT * CHUNKS_PER_DOC));
    // The generated schema has no statistics on chunks (tests/statistics.rs), only the fixed
    // n_distinct of project_id: the estimate is a default share of the table, not one row.
    assert!(
        generated >= actual / 10.0,
        "the generated schema collapses the estimate: {generated} rows for {actual}"
    );

    // The policy form's mechanism needs statistics: turn them back on for chunks (what a
    // database before the statistics upgrade has), then compare the two policy forms.
    sqlx::raw_sql(
        "ALTER TABLE chunks ALTER COLUMN tenant_id SET STATISTICS -1, \
           ALTER COLUMN project_id SET STATISTICS -1; ANALYZE chunks;",
    )
    .execute(ordinary.db.admin_pool())
    .await
    .unwrap();
    let plan = generic_plan(&ordinary, PREFIX_SQL, &count_args(&ordinary)).await;
    let (now, _) = estimate(&plan);

    sqlx::raw_sql(
        "ALTER POLICY chunks_select ON chunks \
           USING (COALESCE(project_id = ANY ((SELECT tenancy.project_ids('viewer'))::uuid[]), false));",
    )
    .execute(ordinary.db.admin_pool())
    .await
    .unwrap();
    let filter_plan = generic_plan(&ordinary, PREFIX_SQL, &count_args(&ordinary)).await;
    let (filtered, filtered_actual) = estimate(&filter_plan);
    assert_eq!(filtered_actual, actual);
    assert!(
        now <= 3.0,
        "control: with statistics the index-condition form was expected to collapse the \
         estimate, got {now} rows"
    );
    assert!(
        filtered >= 5.0 * now && filtered >= actual / 10.0,
        "control: the COALESCE form collapses the estimate too: {filtered} rows for {actual} \
         (index-condition form: {now})"
    );
    ordinary.db.drop_db().await;
}
