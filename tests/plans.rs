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
use tenancy_generated::{Chunks, Documents};
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
        for n in matching {
            let loops = n.get("Actual Loops").and_then(Value::as_i64);
            if loops != Some(1) {
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
