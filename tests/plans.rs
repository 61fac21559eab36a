//! Query plans of the hot generated queries, as the application role inside a scoped
//! transaction: the context helpers run as InitPlans (evaluated once per statement: one loop
//! under EXPLAIN ANALYZE) and the tenant/project predicates are index conditions, not filters.
//!
//! Data: 8 tenants x 2 projects x 250 documents (4,000), 4 chunks per document (16,000),
//! ANALYZE'd, so a sequential scan would be the wrong choice for one project.
//! Assertions walk the JSON plan tree (`EXPLAIN (ANALYZE, VERBOSE, FORMAT JSON)`).

use serde_json::Value;
use sqlx::Postgres;
use tenancy_generated::roles::Viewer;
use tenancy_generated::{Chunks, Documents, Queries, QueryCursor, QueryFilter, QueryPage};
use tenancy_runtime::{ProjectId, ScopedTx, Tenancy, TenantId, UserId};
use tenancy_tests::TestDb;
use uuid::Uuid;

const TENANTS: usize = 8;
const PROJECTS_PER_TENANT: usize = 2;
const DOCS_PER_PROJECT: i32 = 250;
const CHUNKS_PER_DOC: i32 = 4;

struct Seeded {
    db: TestDb,
    tenant: Uuid,
    project: Uuid,
    user: Uuid,
    document: Uuid,
}

async fn seed() -> Seeded {
    let db = TestDb::fresh().await;
    let admin = db.admin_pool();
    let user = Uuid::new_v4();
    let mut first = None;
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
                "INSERT INTO user_project_roles (tenant_id, project_id, user_id, role) \
                 VALUES ($1, $2, $3, 'viewer')",
            )
            .bind(tenant)
            .bind(project)
            .bind(user)
            .execute(admin)
            .await
            .unwrap();
            sqlx::query(
                "INSERT INTO documents (tenant_id, project_id, title, content_hash, created_by) \
                 SELECT $1, $2, 'doc ' || n, md5(n::text), $3 FROM generate_series(1, $4) AS n",
            )
            .bind(tenant)
            .bind(project)
            .bind(user)
            .bind(DOCS_PER_PROJECT)
            .execute(admin)
            .await
            .unwrap();
            sqlx::query(
                "INSERT INTO chunks (tenant_id, project_id, document_id, ordinal, content, token_count) \
                 SELECT d.tenant_id, d.project_id, d.id, n, 'chunk ' || n, n \
                 FROM documents d, generate_series(1, $3) AS n \
                 WHERE d.tenant_id = $1 AND d.project_id = $2",
            )
            .bind(tenant)
            .bind(project)
            .bind(CHUNKS_PER_DOC)
            .execute(admin)
            .await
            .unwrap();
            if first.is_none() {
                first = Some((tenant, project));
            }
        }
    }
    sqlx::raw_sql("ANALYZE").execute(admin).await.unwrap();
    let (tenant, project) = first.unwrap();
    let document: Uuid = sqlx::query_scalar(
        "SELECT id FROM documents WHERE tenant_id = $1 AND project_id = $2 ORDER BY id LIMIT 1 OFFSET 100",
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
        document,
    }
}

/// Every node of the plan tree (depth first), with the node itself first.
fn nodes(plan: &Value) -> Vec<&Value> {
    let mut out = vec![plan];
    if let Some(children) = plan.get("Plans").and_then(Value::as_array) {
        for child in children {
            out.extend(nodes(child));
        }
    }
    out
}

fn text(node: &Value, key: &str) -> String {
    match node.get(key) {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Array(items)) => items
            .iter()
            .filter_map(Value::as_str)
            .collect::<Vec<_>>()
            .join(", "),
        _ => String::new(),
    }
}

/// Runs `EXPLAIN (ANALYZE, VERBOSE, FORMAT JSON)` of `sql` with `bind` in the transaction and
/// returns the root plan node.
async fn explain<'q>(
    conn: &mut sqlx::PgConnection,
    query: sqlx::query::Query<'q, Postgres, sqlx::postgres::PgArguments>,
) -> Value {
    let doc: Value = {
        use sqlx::Row;
        query.fetch_one(conn).await.unwrap().get(0)
    };
    doc[0]["Plan"].clone()
}

/// The checks every hot query must pass; returns a description of each failure.
fn check_plan(label: &str, table: &str, plan: &Value) -> Vec<String> {
    check_plan_runs(label, table, plan, false)
}

/// [`check_plan`]; with `unrun_ok`, an InitPlan may also have run zero times (the `WITH CHECK`
/// InitPlans of an update that found no row it may update), as long as each helper has one
/// InitPlan that ran exactly once.
fn check_plan_runs(label: &str, table: &str, plan: &Value, unrun_ok: bool) -> Vec<String> {
    let mut failures = Vec::new();
    let all = nodes(plan);
    let init_plans: Vec<&&Value> = all
        .iter()
        .filter(|n| text(n, "Parent Relationship") == "InitPlan")
        .collect();
    // One InitPlan per helper call, each executed exactly once. The helpers are SQL functions
    // without a SET clause, so PostgreSQL inlines their bodies into the InitPlans: the output
    // shows field 1 (tenant) and field 3 (viewer projects, the CASE folded to a constant) of
    // the verified claims (`tenancy.context_claims()`, the signed context's verifier, called
    // once per InitPlan); a call to the helper itself would mean it is no longer
    // inlined (a SET clause, TA042, costs every statement a call).
    for helper in [
        "split_part(tenancy.context_claims(), ';'::text, 1)",
        "split_part(tenancy.context_claims(), ';'::text, 3)",
    ] {
        let matching: Vec<&&&Value> = init_plans
            .iter()
            .filter(|n| text(n, "Output").contains(helper))
            .collect();
        if matching.is_empty() {
            failures.push(format!("{label}: no InitPlan computes {helper}"));
        }
        let loops = |n: &Value| n.get("Actual Loops").and_then(Value::as_i64);
        if unrun_ok && !matching.iter().any(|n| loops(n) == Some(1)) {
            failures.push(format!("{label}: no InitPlan for {helper} ran once"));
        }
        for n in matching {
            let loops = loops(n);
            if loops != Some(1) && !(unrun_ok && loops == Some(0)) {
                failures.push(format!(
                    "{label}: InitPlan for {helper} ran {loops:?} times"
                ));
            }
        }
    }
    // No helper is called per row: outside the InitPlans' own output, no node's condition
    // names a helper function (they refer to the InitPlans' results instead).
    for n in &all {
        for key in ["Filter", "Index Cond", "Recheck Cond", "Join Filter"] {
            let cond = text(n, key);
            if cond.contains("current_tenant_id()")
                || cond.contains("project_ids(")
                || cond.contains("current_setting(")
                || cond.contains("context_claims(")
            {
                failures.push(format!("{label}: helper called per row in {key}: {cond}"));
            }
        }
    }
    // The scan of the table uses an index whose condition has both tenant_id and project_id.
    let index_scans: Vec<&&Value> = all
        .iter()
        .filter(|n| {
            let kind = text(n, "Node Type");
            let on_table = text(n, "Relation Name") == table
                || text(n, "Index Name").starts_with(&format!("{table}_"));
            on_table && kind.contains("Index")
        })
        .collect();
    if index_scans.is_empty() {
        let kinds: Vec<String> = all.iter().map(|n| text(n, "Node Type")).collect();
        failures.push(format!(
            "{label}: no index scan on {table} (plan nodes: {kinds:?})"
        ));
    }
    for n in index_scans {
        let cond = text(n, "Index Cond");
        if !(cond.contains("tenant_id") && cond.contains("project_id")) {
            failures.push(format!(
                "{label}: index {} has Index Cond {cond:?} without tenant_id and project_id",
                text(n, "Index Name")
            ));
        }
    }
    failures
}

#[tokio::test]
async fn hot_queries_use_initplans_and_index_conditions() {
    let s = seed().await;
    let tenancy = Tenancy::with_config(s.db.app_pool().clone(), tenancy_generated::config());
    let scope = tenancy
        .authorize(UserId::new(s.user), TenantId::new(s.tenant))
        .await
        .unwrap()
        .project(ProjectId::new(s.project))
        .unwrap()
        .require::<Viewer>()
        .unwrap();
    let mut tx: ScopedTx<_> = tenancy.begin(&scope).await.unwrap();
    let explain_prefix = "EXPLAIN (ANALYZE, VERBOSE, FORMAT JSON) ";
    let projects = vec![s.project];
    let none_uuid: Option<Uuid> = None;
    let none_text: Option<String> = None;
    let none_ts: Option<chrono::DateTime<chrono::Utc>> = None;
    let none_int: Option<i32> = None;
    let mut failures = Vec::new();
    let mut plans = Vec::new();

    let sql = format!("{explain_prefix}{}", Documents::GET_SQL);
    let plan = explain(
        tx.connection(),
        sqlx::query(sqlx::AssertSqlSafe(sql.as_str()))
            .bind(s.tenant)
            .bind(&projects)
            .bind(s.document),
    )
    .await;
    failures.extend(check_plan("Documents::GET_SQL", "documents", &plan));
    plans.push(plan);

    let sql = format!("{explain_prefix}{}", Documents::GET_IN_PROJECT_SQL);
    let plan = explain(
        tx.connection(),
        sqlx::query(sqlx::AssertSqlSafe(sql.as_str()))
            .bind(s.tenant)
            .bind(s.project)
            .bind(s.document),
    )
    .await;
    failures.extend(check_plan(
        "Documents::GET_IN_PROJECT_SQL",
        "documents",
        &plan,
    ));
    plans.push(plan);

    let sql = format!("{explain_prefix}{}", Documents::LIST_SQL);
    let plan = explain(
        tx.connection(),
        sqlx::query(sqlx::AssertSqlSafe(sql.as_str()))
            .bind(s.tenant)
            .bind(&projects)
            .bind(none_uuid)
            .bind(&none_text)
            .bind(none_ts)
            .bind(100_i64),
    )
    .await;
    failures.extend(check_plan("Documents::LIST_SQL", "documents", &plan));
    plans.push(plan);

    // Later pages. Any scope: two branches, each an index scan whose condition starts it at
    // its first row: the cursor's project as an equality with the key a range after it, and
    // the scope's later projects (`project_id > ..`). A one-project scope with its cursor in
    // that project needs only the first (LIST_AFTER_IN_PROJECT_SQL). A row comparison would
    // position the scan on its first column only (BENCHMARKS.md, "Keyset pages": 838 buffers
    // and 3.3 ms vs 54 buffers and 0.04 ms at row 75,000).
    let after: Uuid = sqlx::query_scalar(
        "SELECT id FROM documents WHERE project_id = $1 ORDER BY id OFFSET 200 LIMIT 1",
    )
    .bind(s.project)
    .fetch_one(s.db.admin_pool())
    .await
    .unwrap();
    let sql = format!("{explain_prefix}{}", Documents::LIST_AFTER_SQL);
    let plan = explain(
        tx.connection(),
        sqlx::query(sqlx::AssertSqlSafe(sql.as_str()))
            .bind(s.tenant)
            .bind(&projects)
            .bind(none_uuid)
            .bind(&none_text)
            .bind(none_ts)
            .bind(s.project)
            .bind(after)
            .bind(10_i64),
    )
    .await;
    failures.extend(check_plan("Documents::LIST_AFTER_SQL", "documents", &plan));
    let conds: Vec<String> = nodes(&plan)
        .into_iter()
        .map(|n| text(n, "Index Cond"))
        .collect();
    // (This scope has one project: the later-projects branch has nothing to find;
    // a_page_of_several_projects_starts_at_the_cursor checks it.)
    if !conds
        .iter()
        .any(|c| c.contains("(documents.project_id = ") && c.contains("(documents.id > "))
    {
        failures.push(format!(
            "Documents::LIST_AFTER_SQL: the cursor's project does not seek: {conds:?}"
        ));
    }
    let sql = format!("{explain_prefix}{}", Documents::LIST_AFTER_IN_PROJECT_SQL);
    let plan = explain(
        tx.connection(),
        sqlx::query(sqlx::AssertSqlSafe(sql.as_str()))
            .bind(s.tenant)
            .bind(s.project)
            .bind(none_uuid)
            .bind(&none_text)
            .bind(none_ts)
            .bind(after)
            .bind(10_i64),
    )
    .await;
    failures.extend(check_plan(
        "Documents::LIST_AFTER_IN_PROJECT_SQL",
        "documents",
        &plan,
    ));
    let conds: Vec<String> = nodes(&plan)
        .into_iter()
        .map(|n| text(n, "Index Cond"))
        .collect();
    if !conds
        .iter()
        .any(|c| c.contains("(documents.project_id = ") && c.contains("(documents.id > "))
    {
        failures.push(format!(
            "Documents::LIST_AFTER_IN_PROJECT_SQL: not project equality + id range: {conds:?}"
        ));
    }
    // 49 rows follow the cursor in its project (250 - 201): the page holds the next 10.
    if plan.get("Actual Rows").and_then(Value::as_f64) != Some(10.0) {
        failures.push(format!("LIST_AFTER_IN_PROJECT_SQL: not 10 rows: {plan}"));
    }

    let sql = format!("{explain_prefix}{}", Documents::COUNT_SQL);
    let plan = explain(
        tx.connection(),
        sqlx::query(sqlx::AssertSqlSafe(sql.as_str()))
            .bind(s.tenant)
            .bind(&projects)
            .bind(none_uuid)
            .bind(&none_text)
            .bind(none_ts),
    )
    .await;
    failures.extend(check_plan("Documents::COUNT_SQL", "documents", &plan));
    plans.push(plan);

    // The chunks of one document (Chunks::list with a document filter).
    let sql = format!("{explain_prefix}{}", Chunks::LIST_SQL);
    let plan = explain(
        tx.connection(),
        sqlx::query(sqlx::AssertSqlSafe(sql.as_str()))
            .bind(s.tenant)
            .bind(&projects)
            .bind(none_uuid)
            .bind(Some(s.document))
            .bind(none_int)
            .bind(100_i64),
    )
    .await;
    failures.extend(check_plan("Chunks::LIST_SQL by document", "chunks", &plan));
    // The document filter itself is an index condition too (not a filter over the project).
    let by_doc = nodes(&plan)
        .into_iter()
        .any(|n| text(n, "Index Cond").contains("document_id"));
    if !by_doc {
        failures.push("Chunks::LIST_SQL by document: document_id is not an Index Cond".into());
    }
    plans.push(plan);

    // The plans ran for real: GET found its row, LIST and COUNT saw exactly one project.
    let rows = |plan: &Value| plan.get("Actual Rows").and_then(Value::as_f64);
    assert_eq!(rows(&plans[0]), Some(1.0), "GET: {}", plans[0]);
    assert_eq!(rows(&plans[1]), Some(1.0), "GET_IN_PROJECT: {}", plans[1]);
    assert_eq!(rows(&plans[2]), Some(100.0), "LIST: {}", plans[2]);
    assert_eq!(
        rows(&plans[4]),
        Some(f64::from(CHUNKS_PER_DOC)),
        "chunks: {}",
        plans[4]
    );
    let count: i64 = Documents::count(&mut tx, &Default::default())
        .await
        .unwrap();
    assert_eq!(count, i64::from(DOCS_PER_PROJECT));
    tx.rollback().await.unwrap();

    assert!(
        failures.is_empty(),
        "{} plan problems:\n{}\n\nplans:\n{}",
        failures.len(),
        failures.join("\n"),
        plans
            .iter()
            .map(|p| serde_json::to_string_pretty(p).unwrap())
            .collect::<Vec<_>>()
            .join("\n")
    );
    s.db.drop_db().await;
}

/// The conditioned update of the RAG model (`allow update to editor where created_by =
/// current_user` OR `allow update to admin`), as an editor: still one primary-key index scan
/// with tenant and project in its condition, every helper (the caller's user id included) an
/// InitPlan run once, the condition a per-row comparison with the InitPlan's value.
#[tokio::test]
async fn the_conditioned_update_keeps_the_index_plan() {
    let s = seed().await;
    sqlx::query(
        "UPDATE user_project_roles SET role = 'editor' \
         WHERE tenant_id = $1 AND project_id = $2 AND user_id = $3",
    )
    .bind(s.tenant)
    .bind(s.project)
    .bind(s.user)
    .execute(s.db.admin_pool())
    .await
    .unwrap();
    let tenancy = Tenancy::with_config(s.db.app_pool().clone(), tenancy_generated::config());
    let scope = tenancy
        .authorize(UserId::new(s.user), TenantId::new(s.tenant))
        .await
        .unwrap()
        .project(ProjectId::new(s.project))
        .unwrap()
        .require::<tenancy_generated::roles::Editor>()
        .unwrap();
    let mut tx: ScopedTx<_> = tenancy.begin(&scope).await.unwrap();
    let sql = format!(
        "EXPLAIN (ANALYZE, VERBOSE, FORMAT JSON) {}",
        Documents::UPDATE_SQL
    );
    let none_json: Option<serde_json::Value> = None;
    let plan = explain(
        tx.connection(),
        sqlx::query(sqlx::AssertSqlSafe(sql.as_str()))
            .bind(s.tenant)
            .bind(s.project)
            .bind(s.document)
            .bind(true)
            .bind("retitled")
            .bind(false)
            .bind(&none_json),
    )
    .await;
    tx.rollback().await.unwrap();
    let mut failures = check_plan("Documents::UPDATE_SQL (conditioned)", "documents", &plan);
    let user_initplans: Vec<&Value> = nodes(&plan)
        .into_iter()
        .filter(|n| {
            text(n, "Parent Relationship") == "InitPlan"
                && text(n, "Output").contains("split_part(tenancy.context_claims(), ';'::text, 2)")
        })
        .collect();
    if user_initplans.is_empty() {
        failures.push("no InitPlan computes the caller's user id".to_owned());
    }
    for n in user_initplans {
        if n.get("Actual Loops").and_then(Value::as_i64) != Some(1) {
            failures.push(format!("the user id InitPlan ran more than once: {n}"));
        }
    }
    assert_eq!(
        plan.get("Actual Rows").and_then(Value::as_f64),
        Some(1.0),
        "the author's update found its row: {plan}"
    );
    assert!(
        failures.is_empty(),
        "{}\n\nplan:\n{}",
        failures.join("\n"),
        serde_json::to_string_pretty(&plan).unwrap()
    );
    s.db.drop_db().await;
}

/// The checker is not vacuous: a plan without InitPlans and with the tenant only in a Filter
/// (what an inlined helper or a missing index produces) fails every check.
#[test]
fn the_plan_checks_reject_a_bad_plan() {
    let bad: Value = serde_json::json!({
        "Node Type": "Seq Scan",
        "Relation Name": "documents",
        "Filter": "((tenant_id = tenancy.current_tenant_id()) AND (project_id = ANY (tenancy.project_ids('viewer'::tenancy.project_role))))"
    });
    let failures = check_plan("bad", "documents", &bad);
    assert_eq!(failures.len(), 4, "{failures:?}");
}

/// Issue 22: a later page of a several-project scope seeks. Its two branches start their btree
/// scans at the cursor (the cursor's project, `id >` the cursor) and at the next project of the
/// scope (`project_id >` the cursor's); the page is exactly the next rows in key order.
#[tokio::test]
async fn a_page_of_several_projects_starts_at_the_cursor() {
    let s = seed().await;
    let tenancy = Tenancy::with_config(s.db.app_pool().clone(), tenancy_generated::config());
    let ctx = tenancy
        .authorize(UserId::new(s.user), TenantId::new(s.tenant))
        .await
        .unwrap();
    let scope = ctx.all_projects().require::<Viewer>().unwrap();
    let projects: Vec<Uuid> =
        sqlx::query_scalar("SELECT id FROM projects WHERE tenant_id = $1 ORDER BY id")
            .bind(s.tenant)
            .fetch_all(s.db.admin_pool())
            .await
            .unwrap();
    assert_eq!(projects.len(), PROJECTS_PER_TENANT);
    // 200 rows into the first project: its last 49 rows, then the second project's first 51.
    let after: Uuid = sqlx::query_scalar(
        "SELECT id FROM documents WHERE tenant_id = $1 AND project_id = $2 ORDER BY id OFFSET 200 LIMIT 1",
    )
    .bind(s.tenant)
    .bind(projects[0])
    .fetch_one(s.db.admin_pool())
    .await
    .unwrap();
    let expected: Vec<Uuid> = sqlx::query_scalar(
        "SELECT id FROM documents WHERE tenant_id = $1 AND (project_id, id) > ($2, $3) \
         ORDER BY project_id, id LIMIT 100",
    )
    .bind(s.tenant)
    .bind(projects[0])
    .bind(after)
    .fetch_all(s.db.admin_pool())
    .await
    .unwrap();
    assert_eq!(expected.len(), 100);
    let none_uuid: Option<Uuid> = None;
    let none_text: Option<String> = None;
    let none_ts: Option<chrono::DateTime<chrono::Utc>> = None;
    let mut tx: ScopedTx<_> = tenancy.begin(&scope).await.unwrap();
    let page: Vec<Uuid> = sqlx::query(Documents::LIST_AFTER_SQL)
        .bind(s.tenant)
        .bind(&projects)
        .bind(none_uuid)
        .bind(&none_text)
        .bind(none_ts)
        .bind(projects[0])
        .bind(after)
        .bind(100_i64)
        .fetch_all(tx.connection())
        .await
        .unwrap()
        .iter()
        .map(|row| sqlx::Row::get(row, "id"))
        .collect();
    assert_eq!(
        page, expected,
        "LIST_AFTER_SQL is not the next page in key order"
    );

    // 250 rows per project (4,000 in the table): the planner may read the project by a
    // sequential or bitmap scan and sort 49 rows, which is cheap at this size. The plan a
    // large project gets (BENCHMARKS.md, "Keyset pages", 150,000 rows) is the one checked
    // here, with those two scans off: the statement must let a btree scan start at the cursor.
    sqlx::raw_sql("SET LOCAL enable_bitmapscan = off; SET LOCAL enable_seqscan = off")
        .execute(tx.connection())
        .await
        .unwrap();
    let sql = format!(
        "EXPLAIN (ANALYZE, VERBOSE, FORMAT JSON) {}",
        Documents::LIST_AFTER_SQL
    );
    let plan = explain(
        tx.connection(),
        sqlx::query(sqlx::AssertSqlSafe(sql.as_str()))
            .bind(s.tenant)
            .bind(&projects)
            .bind(none_uuid)
            .bind(&none_text)
            .bind(none_ts)
            .bind(projects[0])
            .bind(after)
            .bind(100_i64),
    )
    .await;
    let failures = check_plan("Documents::LIST_AFTER_SQL", "documents", &plan);
    assert!(failures.is_empty(), "{failures:#?}\n{plan:#}");
    let scans: Vec<(String, f64)> = nodes(&plan)
        .into_iter()
        .filter(|n| text(n, "Index Name").starts_with("documents_"))
        .map(|n| {
            (
                text(n, "Index Cond"),
                n.get("Actual Rows").and_then(Value::as_f64).unwrap_or(-1.0),
            )
        })
        .collect();
    assert_eq!(scans.len(), 2, "two branches, two index scans: {plan:#}");
    // Each branch starts at its first row: the cursor's project returns exactly the 49 rows
    // after the cursor, the later projects at most a page.
    assert!(
        scans
            .iter()
            .any(|(c, rows)| c.contains("(documents.project_id = ")
                && c.contains("(documents.id > ")
                && *rows == 49.0),
        "no scan starts at the cursor in its project: {scans:?}"
    );
    assert!(
        scans
            .iter()
            .any(|(c, rows)| c.contains(".project_id > ") && *rows <= 100.0),
        "no scan starts at the next project: {scans:?}"
    );
}

/// Issue 22, the count form: the policies test membership as `project_id = ANY ((SELECT
/// project_ids(..))::uuid[])`, an index condition (no per-row filter), under custom plans and
/// under generic ones (`plan_cache_mode = force_generic_plan`, what a prepared statement gets
/// after five executions); by-key update and delete keep the primary key under generic plans
/// (the index-condition form once collapsed their row estimate; tests/generic_plans.rs).
#[tokio::test]
async fn membership_is_an_index_condition_under_custom_and_generic_plans() {
    let s = seed().await;
    let tenancy = Tenancy::with_config(s.db.app_pool().clone(), tenancy_generated::config());
    let scope = tenancy
        .authorize(UserId::new(s.user), TenantId::new(s.tenant))
        .await
        .unwrap()
        .project(ProjectId::new(s.project))
        .unwrap()
        .require::<Viewer>()
        .unwrap();
    let chunk: Uuid = sqlx::query_scalar(
        "SELECT id FROM chunks WHERE tenant_id = $1 AND project_id = $2 ORDER BY id OFFSET 10 LIMIT 1",
    )
    .bind(s.tenant)
    .bind(s.project)
    .fetch_one(s.db.admin_pool())
    .await
    .unwrap();
    let none_uuid: Option<Uuid> = None;
    let none_int: Option<i32> = None;
    let projects = vec![s.project];
    for generic in [false, true] {
        let mode = if generic { "generic" } else { "custom" };
        let mut tx: ScopedTx<_> = tenancy.begin(&scope).await.unwrap();
        if generic {
            sqlx::raw_sql("SET LOCAL plan_cache_mode = force_generic_plan")
                .execute(tx.connection())
                .await
                .unwrap();
        }
        let sql = format!(
            "EXPLAIN (ANALYZE, VERBOSE, FORMAT JSON) {}",
            Chunks::COUNT_SQL
        );
        let plan = explain(
            tx.connection(),
            sqlx::query(sqlx::AssertSqlSafe(sql.as_str()))
                .bind(s.tenant)
                .bind(&projects)
                .bind(none_uuid)
                .bind(none_uuid)
                .bind(none_int),
        )
        .await;
        let failures = check_plan("Chunks::COUNT_SQL", "chunks", &plan);
        assert!(failures.is_empty(), "{mode}: {failures:#?}\n{plan:#}");
        let all = nodes(&plan);
        assert!(
            all.iter()
                .any(|n| text(n, "Index Cond").contains("(chunks.project_id = ANY ((InitPlan")),
            "{mode}: the membership test is not an index condition: {plan:#}"
        );
        for n in &all {
            let filter = text(n, "Filter");
            assert!(
                !filter.contains("ANY ((InitPlan"),
                "{mode}: the membership test is a per-row filter: {filter}"
            );
        }
        let count = plan["Plans"][0]["Actual Rows"].as_f64();
        assert!(count.is_some(), "{mode}: {plan:#}");

        // By key, under this plan mode: the primary key, with the key in its condition.
        let delete = format!(
            "EXPLAIN (ANALYZE, VERBOSE, FORMAT JSON) {}",
            Chunks::DELETE_SQL
        );
        let update = format!(
            "EXPLAIN (ANALYZE, VERBOSE, FORMAT JSON) {}",
            Chunks::UPDATE_SQL
        );
        let plans = [
            (
                "Chunks::DELETE_SQL",
                explain(
                    tx.connection(),
                    sqlx::query(sqlx::AssertSqlSafe(delete.as_str()))
                        .bind(s.tenant)
                        .bind(s.project)
                        .bind(chunk),
                )
                .await,
            ),
            (
                "Chunks::UPDATE_SQL",
                explain(
                    tx.connection(),
                    sqlx::query(sqlx::AssertSqlSafe(update.as_str()))
                        .bind(s.tenant)
                        .bind(s.project)
                        .bind(chunk)
                        .bind(false)
                        .bind(none_uuid)
                        .bind(false)
                        .bind(none_int)
                        .bind(true)
                        .bind(Some("updated".to_owned()))
                        .bind(false)
                        .bind(none_int)
                        .bind(false)
                        .bind(None::<pgvector::Vector>)
                        .bind(false)
                        .bind(None::<chrono::DateTime<chrono::Utc>>),
                )
                .await,
            ),
        ];
        for (label, plan) in plans {
            let keyed = nodes(&plan).into_iter().any(|n| {
                text(n, "Index Name") == "chunks_pkey"
                    && text(n, "Index Cond").contains("(chunks.id = ")
            });
            assert!(keyed, "{mode}: {label} leaves the primary key: {plan:#}");
        }
        drop(tx);
    }
}

// ---------------------------------------------------------------------------------------------
// Row conditions on a large project (issue 19, item 2).

/// Queries in the large project; every `ASKERS`-th one is the viewer's (5,000 of 100,000).
const LARGE_QUERIES: i32 = 100_000;
const ASKERS: i32 = 20;
/// Documents in the large project; every second one is the editor's.
const LARGE_DOCUMENTS: i32 = 40_000;

struct Large {
    db: TestDb,
    tenant: Uuid,
    project: Uuid,
    /// Viewer of both projects: reads only the queries it asked.
    viewer: Uuid,
    /// Editor of both projects: reads every query, updates the documents it ingested.
    editor: Uuid,
}

/// One tenant: a large project (100,000 queries, 40,000 documents) and a small one (500
/// queries), written server-side as the superuser (stamp triggers and foreign-key triggers
/// off: the rows name their authors themselves), then ANALYZE'd.
async fn seed_large() -> Large {
    let db = TestDb::fresh().await;
    let admin = db.admin_pool();
    let (tenant, project, small, viewer, editor) = (
        Uuid::new_v4(),
        Uuid::new_v4(),
        Uuid::new_v4(),
        Uuid::new_v4(),
        Uuid::new_v4(),
    );
    let mut tx = admin.begin().await.unwrap();
    sqlx::query("SET LOCAL session_replication_role = replica")
        .execute(&mut *tx)
        .await
        .unwrap();
    sqlx::query("INSERT INTO tenants (id, name, slug) VALUES ($1, 't', 't')")
        .bind(tenant)
        .execute(&mut *tx)
        .await
        .unwrap();
    for (p, slug, queries) in [(project, "large", LARGE_QUERIES), (small, "small", 500)] {
        sqlx::query("INSERT INTO projects (tenant_id, id, name, slug) VALUES ($1, $2, $3, $3)")
            .bind(tenant)
            .bind(p)
            .bind(slug)
            .execute(&mut *tx)
            .await
            .unwrap();
        for (user, role) in [(viewer, "viewer"), (editor, "editor")] {
            sqlx::query(
                "INSERT INTO user_project_roles (tenant_id, project_id, user_id, role) \
                 VALUES ($1, $2, $3, $4::tenancy.project_role)",
            )
            .bind(tenant)
            .bind(p)
            .bind(user)
            .bind(role)
            .execute(&mut *tx)
            .await
            .unwrap();
        }
        sqlx::query(
            "INSERT INTO queries (tenant_id, project_id, id, asked_by, query_text) \
             SELECT $1, $2, gen_random_uuid(), \
                    CASE n % $5 WHEN 0 THEN $3 WHEN 1 THEN $4 ELSE md5('asker ' || (n % $5))::uuid END, \
                    'question ' || n \
             FROM generate_series(1, $6) AS n",
        )
        .bind(tenant)
        .bind(p)
        .bind(viewer)
        .bind(editor)
        .bind(ASKERS)
        .bind(queries)
        .execute(&mut *tx)
        .await
        .unwrap();
    }
    sqlx::query(
        "INSERT INTO documents (tenant_id, project_id, title, content_hash, created_by) \
         SELECT $1, $2, 'doc ' || n, md5($2::text || n), \
                CASE WHEN n % 2 = 0 THEN $3 ELSE gen_random_uuid() END \
         FROM generate_series(1, $4) AS n",
    )
    .bind(tenant)
    .bind(project)
    .bind(editor)
    .bind(LARGE_DOCUMENTS)
    .execute(&mut *tx)
    .await
    .unwrap();
    tx.commit().await.unwrap();
    sqlx::raw_sql("ANALYZE").execute(admin).await.unwrap();
    Large {
        db,
        tenant,
        project,
        viewer,
        editor,
    }
}

/// `EXPLAIN (ANALYZE, VERBOSE, FORMAT JSON)` of `sql` under a generic plan: `PREPARE`d with
/// `plan_cache_mode = force_generic_plan` and run with `args` (SQL literals) by `EXECUTE`, in the
/// caller's scoped transaction (an EXPLAIN of a statement with bound parameters is planned with
/// their values, a custom plan). The prepared statement is deallocated again.
async fn explain_generic(conn: &mut sqlx::PgConnection, sql: &str, args: &str) -> Value {
    use sqlx::Row;
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
        "SET LOCAL plan_cache_mode = force_generic_plan; PREPARE conditioned AS {sql}"
    )))
    .execute(&mut *conn)
    .await
    .unwrap();
    let row = sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
        "EXPLAIN (ANALYZE, VERBOSE, FORMAT JSON) EXECUTE conditioned({args})"
    )))
    .fetch_one(&mut *conn)
    .await
    .unwrap();
    sqlx::raw_sql("DEALLOCATE conditioned")
        .execute(&mut *conn)
        .await
        .unwrap();
    let doc: Value = row.get(0);
    doc[0]["Plan"].clone()
}

/// One line per scan node of `table`: kind, index, conditions, rows returned and removed (printed
/// by the large-project tests; `--nocapture` shows them).
fn scan_summary(table: &str, plan: &Value) -> String {
    nodes(plan)
        .into_iter()
        .filter(|n| {
            text(n, "Node Type").contains("Scan")
                && (text(n, "Relation Name") == table
                    || text(n, "Index Name").starts_with(&format!("{table}_")))
        })
        .map(|n| {
            let number = |key| n.get(key).and_then(Value::as_f64).unwrap_or(0.0);
            format!(
                "  {} {} | Index Cond: {} | Filter: {} | rows {} | removed by filter {}",
                text(n, "Node Type"),
                text(n, "Index Name"),
                text(n, "Index Cond"),
                text(n, "Filter"),
                number("Actual Rows"),
                number("Rows Removed by Filter")
            )
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// The checks of a conditioned statement on top of [`check_plan`]: the caller's user id is an
/// InitPlan run once (never a per-row call), and `condition` (the row condition with the
/// InitPlan's value, e.g. `asked_by = (InitPlan`) is evaluated on the table's scan node, as a
/// filter or an index condition.
fn check_condition(label: &str, table: &str, condition: &str, plan: &Value) -> Vec<String> {
    check_condition_runs(label, table, condition, plan, false)
}

/// [`check_condition`]; `unrun_ok` as in [`check_plan_runs`].
fn check_condition_runs(
    label: &str,
    table: &str,
    condition: &str,
    plan: &Value,
    unrun_ok: bool,
) -> Vec<String> {
    let mut failures = check_plan_runs(label, table, plan, unrun_ok);
    let all = nodes(plan);
    let user_initplans: Vec<&&Value> = all
        .iter()
        .filter(|n| {
            text(n, "Parent Relationship") == "InitPlan"
                && text(n, "Output").contains("split_part(tenancy.context_claims(), ';'::text, 2)")
        })
        .collect();
    if user_initplans.is_empty() {
        failures.push(format!(
            "{label}: no InitPlan computes the caller's user id"
        ));
    }
    let loops = |n: &Value| n.get("Actual Loops").and_then(Value::as_i64);
    if !user_initplans.iter().any(|n| loops(n) == Some(1)) {
        failures.push(format!("{label}: no user id InitPlan ran once"));
    }
    for n in user_initplans {
        let ran = loops(n);
        if ran != Some(1) && !(unrun_ok && ran == Some(0)) {
            failures.push(format!(
                "{label}: the user id InitPlan ran {ran:?} times: {n}"
            ));
        }
    }
    let on_table = all.iter().any(|n| {
        let scans_table = text(n, "Relation Name") == table
            || text(n, "Index Name").starts_with(&format!("{table}_"));
        scans_table
            && ["Filter", "Index Cond", "Recheck Cond"]
                .iter()
                .any(|key| text(n, key).contains(condition))
    });
    if !on_table {
        failures.push(format!(
            "{label}: the condition `{condition}` is not a filter or index condition of the scan of {table}"
        ));
    }
    failures
}

/// Issue 19, item 2: `allow select to viewer where asked_by = current_user` + `allow select to
/// editor` on `queries` is one permissive policy. A keyset page of the large project (the cursor
/// halfway) and the first page, as the viewer (its 5,000 queries of 100,000) and as an editor
/// (every query), under custom and generic plans: the scan of `queries` is an index scan with
/// tenant and project in its condition, every helper (the user id included) an InitPlan run
/// once, the condition `asked_by = (InitPlan ..)` evaluated on that scan, and the page is exactly
/// the next rows the caller may read, in key order.
#[tokio::test]
async fn a_conditioned_list_on_a_large_project_keeps_the_index_plan() {
    let s = seed_large().await;
    let admin = s.db.admin_pool();
    let tenancy = Tenancy::with_config(s.db.app_pool().clone(), tenancy_generated::config());
    let after: Uuid = sqlx::query_scalar(
        "SELECT id FROM queries WHERE tenant_id = $1 AND project_id = $2 ORDER BY id OFFSET $3 LIMIT 1",
    )
    .bind(s.tenant)
    .bind(s.project)
    .bind(i64::from(LARGE_QUERIES / 2))
    .fetch_one(admin)
    .await
    .unwrap();
    let none_uuid: Option<Uuid> = None;
    let mut failures = Vec::new();
    let mut plans = Vec::new();
    for (who, user, narrowed) in [("viewer", s.viewer, true), ("editor", s.editor, false)] {
        // What the caller may read, as the superuser computes it.
        let asked_by = narrowed.then_some(user);
        let expected: Vec<Uuid> = sqlx::query_scalar(
            "SELECT id FROM queries WHERE tenant_id = $1 AND project_id = $2 \
             AND ($3::uuid IS NULL OR asked_by = $3) AND id > $4 ORDER BY id LIMIT 100",
        )
        .bind(s.tenant)
        .bind(s.project)
        .bind(asked_by)
        .bind(after)
        .fetch_all(admin)
        .await
        .unwrap();
        assert_eq!(expected.len(), 100);
        let scope = tenancy
            .authorize(UserId::new(user), TenantId::new(s.tenant))
            .await
            .unwrap()
            .project(ProjectId::new(s.project))
            .unwrap()
            .require::<Viewer>()
            .unwrap();
        for generic in [false, true] {
            let mode = if generic { "generic" } else { "custom" };
            let mut tx: ScopedTx<_> = tenancy.begin(&scope).await.unwrap();
            if generic {
                sqlx::raw_sql("SET LOCAL plan_cache_mode = force_generic_plan")
                    .execute(tx.connection())
                    .await
                    .unwrap();
            }
            // The repository's page is the next 100 rows the caller may read.
            let page = Queries::list(
                &mut tx,
                &QueryFilter::default(),
                QueryPage {
                    after: Some(QueryCursor {
                        project_id: s.project,
                        id: after,
                    }),
                    limit: 100,
                },
            )
            .await
            .unwrap();
            assert_eq!(
                page.iter().map(|q| q.id).collect::<Vec<_>>(),
                expected,
                "{who} ({mode}): not the next page of the rows it may read"
            );
            assert!(page.iter().all(|q| !narrowed || q.asked_by == user));

            let plan = if generic {
                let args = format!(
                    "'{}'::uuid, '{}'::uuid, NULL, NULL, '{after}'::uuid, 100",
                    s.tenant, s.project
                );
                explain_generic(tx.connection(), Queries::LIST_AFTER_IN_PROJECT_SQL, &args).await
            } else {
                let sql = format!(
                    "EXPLAIN (ANALYZE, VERBOSE, FORMAT JSON) {}",
                    Queries::LIST_AFTER_IN_PROJECT_SQL
                );
                explain(
                    tx.connection(),
                    sqlx::query(sqlx::AssertSqlSafe(sql.as_str()))
                        .bind(s.tenant)
                        .bind(s.project)
                        .bind(none_uuid)
                        .bind(none_uuid)
                        .bind(after)
                        .bind(100_i64),
                )
                .await
            };
            let label = format!("Queries::LIST_AFTER_IN_PROJECT_SQL as {who} ({mode})");
            failures.extend(check_condition(
                &label,
                "queries",
                "asked_by = (InitPlan",
                &plan,
            ));
            if plan.get("Actual Rows").and_then(Value::as_f64) != Some(100.0) {
                failures.push(format!("{label}: not 100 rows"));
            }
            println!("{label}:\n{}", scan_summary("queries", &plan));
            plans.push((label, plan));

            let plan = if generic {
                let args = format!(
                    "'{}'::uuid, ARRAY['{}'::uuid], NULL, NULL, 100",
                    s.tenant, s.project
                );
                explain_generic(tx.connection(), Queries::LIST_SQL, &args).await
            } else {
                let sql = format!(
                    "EXPLAIN (ANALYZE, VERBOSE, FORMAT JSON) {}",
                    Queries::LIST_SQL
                );
                explain(
                    tx.connection(),
                    sqlx::query(sqlx::AssertSqlSafe(sql.as_str()))
                        .bind(s.tenant)
                        .bind(vec![s.project])
                        .bind(none_uuid)
                        .bind(none_uuid)
                        .bind(100_i64),
                )
                .await
            };
            let label = format!("Queries::LIST_SQL as {who} ({mode})");
            failures.extend(check_condition(
                &label,
                "queries",
                "asked_by = (InitPlan",
                &plan,
            ));
            if plan.get("Actual Rows").and_then(Value::as_f64) != Some(100.0) {
                failures.push(format!("{label}: not 100 rows"));
            }
            println!("{label}:\n{}", scan_summary("queries", &plan));
            plans.push((label, plan));
            tx.rollback().await.unwrap();
        }
    }
    assert!(
        failures.is_empty(),
        "{} plan problems:\n{}\n\nplans:\n{}",
        failures.len(),
        failures.join("\n"),
        plans
            .iter()
            .map(|(label, p)| format!("{label}:\n{}", serde_json::to_string_pretty(p).unwrap()))
            .collect::<Vec<_>>()
            .join("\n")
    );
    s.db.drop_db().await;
}

/// The conditioned update (`allow update (title, metadata) to editor where created_by =
/// current_user` + `allow update to admin`) on the large project (40,000 documents, half the
/// editor's), under custom and generic plans: the primary key with tenant, project and id in
/// its condition, every helper an InitPlan run once, `created_by = (InitPlan ..)` evaluated on
/// that scan; the editor's own document is updated, someone else's is not.
#[tokio::test]
async fn the_conditioned_update_on_a_large_project_keeps_the_index_plan() {
    let s = seed_large().await;
    let admin = s.db.admin_pool();
    let tenancy = Tenancy::with_config(s.db.app_pool().clone(), tenancy_generated::config());
    let pick = |own: bool| {
        sqlx::query_scalar::<_, Uuid>(
            "SELECT id FROM documents WHERE tenant_id = $1 AND project_id = $2 \
             AND (created_by = $3) = $4 ORDER BY id OFFSET 1000 LIMIT 1",
        )
        .bind(s.tenant)
        .bind(s.project)
        .bind(s.editor)
        .bind(own)
        .fetch_one(admin)
    };
    let (own, others) = (pick(true).await.unwrap(), pick(false).await.unwrap());
    let scope = tenancy
        .authorize(UserId::new(s.editor), TenantId::new(s.tenant))
        .await
        .unwrap()
        .project(ProjectId::new(s.project))
        .unwrap()
        .require::<tenancy_generated::roles::Editor>()
        .unwrap();
    let none_json: Option<serde_json::Value> = None;
    let sql = format!(
        "EXPLAIN (ANALYZE, VERBOSE, FORMAT JSON) {}",
        Documents::UPDATE_SQL
    );
    let mut failures = Vec::new();
    let mut plans = Vec::new();
    for generic in [false, true] {
        let mode = if generic { "generic" } else { "custom" };
        // Someone else's document: the scan finds it and the condition refuses it, so the
        // `WITH CHECK` InitPlans (on the new row) never run.
        for (whose, id, rows) in [("own", own, 1.0), ("someone else's", others, 0.0)] {
            let mut tx: ScopedTx<_> = tenancy.begin(&scope).await.unwrap();
            let plan = if generic {
                let args = format!(
                    "'{}'::uuid, '{}'::uuid, '{id}'::uuid, true, 'retitled', false, NULL",
                    s.tenant, s.project
                );
                explain_generic(tx.connection(), Documents::UPDATE_SQL, &args).await
            } else {
                explain(
                    tx.connection(),
                    sqlx::query(sqlx::AssertSqlSafe(sql.as_str()))
                        .bind(s.tenant)
                        .bind(s.project)
                        .bind(id)
                        .bind(true)
                        .bind("retitled")
                        .bind(false)
                        .bind(&none_json),
                )
                .await
            };
            tx.rollback().await.unwrap();
            let label = format!("Documents::UPDATE_SQL of the editor's {whose} document ({mode})");
            failures.extend(check_condition_runs(
                &label,
                "documents",
                "created_by = (InitPlan",
                &plan,
                rows == 0.0,
            ));
            // The scan reached the row (and, for someone else's, the condition refused it): a
            // scan node of documents returned it or removed it by its filter.
            let read = nodes(&plan).into_iter().any(|n| {
                let scan = text(n, "Node Type").contains("Scan")
                    && (text(n, "Relation Name") == "documents"
                        || text(n, "Index Name") == "documents_pkey");
                let count = |key| n.get(key).and_then(Value::as_f64).unwrap_or(0.0);
                scan && count("Actual Rows") + count("Rows Removed by Filter") >= 1.0
            });
            if !read {
                failures.push(format!("{label}: the scan did not reach the row"));
            }
            let keyed = nodes(&plan).into_iter().any(|n| {
                text(n, "Index Name") == "documents_pkey"
                    && text(n, "Index Cond").contains("(documents.id = ")
            });
            if !keyed {
                failures.push(format!("{label}: not a primary-key scan by id"));
            }
            if plan.get("Actual Rows").and_then(Value::as_f64) != Some(rows) {
                failures.push(format!("{label}: expected {rows} rows updated"));
            }
            println!("{label}:\n{}", scan_summary("documents", &plan));
            plans.push((label, plan));
        }
    }
    assert!(
        failures.is_empty(),
        "{} plan problems:\n{}\n\nplans:\n{}",
        failures.len(),
        failures.join("\n"),
        plans
            .iter()
            .map(|(label, p)| format!("{label}:\n{}", serde_json::to_string_pretty(p).unwrap()))
            .collect::<Vec<_>>()
            .join("\n")
    );
    s.db.drop_db().await;
}

/// [`check_condition`] is not vacuous: a plan whose condition calls the helper per row (what an
/// inlined, non-InitPlan `current_user_id()` would give), or lacks the condition on the scan,
/// fails.
#[test]
fn the_condition_check_rejects_a_per_row_helper_and_a_missing_condition() {
    let per_row: Value = serde_json::json!({
        "Node Type": "Index Scan",
        "Relation Name": "queries",
        "Index Name": "queries_pkey",
        "Index Cond": "((queries.tenant_id = (InitPlan 1).col1) AND (queries.project_id = $2))",
        "Filter": "(queries.asked_by = (NULLIF(split_part(tenancy.context_claims(), ';'::text, 2), ''::text))::uuid)"
    });
    let failures = check_condition("per row", "queries", "asked_by = (InitPlan", &per_row);
    assert!(
        failures.iter().any(|f| f.contains("helper called per row")),
        "{failures:?}"
    );
    assert!(
        failures
            .iter()
            .any(|f| f.contains("no InitPlan computes the caller's user id")),
        "{failures:?}"
    );
    assert!(
        failures
            .iter()
            .any(|f| f.contains("is not a filter or index condition")),
        "{failures:?}"
    );
}
