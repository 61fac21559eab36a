//! EXPLAIN ANALYZE of the hot statements under row-level security, with the check that the
//! policy helpers run as InitPlans (once per statement), never per row.

use std::fmt::Write as _;

use anyhow::{bail, Result};
use sqlx::PgPool;
use tenancy_generated::Chunks;
use tenancy_runtime::Tenancy;
use uuid::Uuid;

use crate::ops::{Target, JOIN_SQL};

const EXPLAIN: &str =
    "EXPLAIN (ANALYZE, VERBOSE, COSTS OFF, TIMING OFF, SUMMARY OFF, BUFFERS OFF) ";

/// The helper calls that must only ever appear inside an InitPlan (`context_claims(` is what
/// the inlined `current_tenant_id()`/`current_user_id()`/`project_ids()` call under contract
/// 3, `current_setting(` what they read under contract 2).
const HELPERS: [&str; 5] = [
    "context_claims(",
    "current_tenant_id(",
    "project_ids(",
    "current_user_id(",
    "current_setting(",
];

/// Checks one plan: at least one InitPlan, each executed once (`loops=1`), and no helper call
/// in a per-row expression (`Filter`, `Index Cond`, `Recheck Cond`, `Join Filter`).
pub fn check_plan(plan: &str) -> Result<()> {
    let lines: Vec<&str> = plan.lines().collect();
    let mut init_plans = 0;
    for (index, line) in lines.iter().enumerate() {
        if line.trim_start().starts_with("InitPlan") {
            init_plans += 1;
            let node = lines.get(index + 1).copied().unwrap_or_default();
            // A branch of a union that the page never needed (the later projects of
            // `LIST_AFTER_SQL` when the cursor's project fills it) never runs its InitPlans.
            if !node.contains("loops=1)") && !node.contains("(never executed)") {
                bail!("InitPlan not executed exactly once: {node:?}\n{plan}");
            }
        }
        let per_row = ["Filter:", "Index Cond:", "Recheck Cond:"]
            .iter()
            .any(|label| line.contains(label));
        if per_row && HELPERS.iter().any(|helper| line.contains(helper)) {
            bail!("policy helper evaluated per row: {line:?}\n{plan}");
        }
    }
    if init_plans == 0 {
        bail!("no InitPlan: the policy helpers are not sub-selects\n{plan}");
    }
    Ok(())
}

pub(crate) async fn explain_one(
    tenancy: &Tenancy,
    target: &Target,
    sql: &str,
    key: Uuid,
    document: Uuid,
) -> Result<String> {
    let text = format!("{EXPLAIN}{sql}");
    let none_uuid: Option<Uuid> = None;
    let none_int: Option<i32> = None;
    let mut tx = tenancy.begin(&target.scope).await?;
    let query = sqlx::query_scalar::<_, String>(sqlx::AssertSqlSafe(text.as_str()));
    let query = if sql == Chunks::GET_IN_PROJECT_SQL {
        query.bind(target.tenant).bind(target.project).bind(key)
    } else if sql == Chunks::GET_SQL {
        query
            .bind(target.tenant)
            .bind(vec![target.project])
            .bind(key)
    } else if sql == Chunks::LIST_AFTER_SQL {
        query
            .bind(target.tenant)
            .bind(vec![target.project])
            .bind(none_uuid)
            .bind(none_uuid)
            .bind(none_int)
            .bind(Some(target.project))
            .bind(Some(key))
            .bind(100_i64)
    } else if sql == Chunks::COUNT_SQL {
        query
            .bind(target.tenant)
            .bind(vec![target.project])
            .bind(none_uuid)
            .bind(none_uuid)
            .bind(none_int)
    } else if sql == JOIN_SQL {
        query
            .bind(target.tenant)
            .bind(vec![target.project])
            .bind(target.project)
            .bind(key)
    } else if sql == Chunks::INSERT_MANY_SQL {
        let n = crate::ops::BATCH;
        query
            .bind(target.tenant)
            .bind(target.project)
            .bind(vec![none_uuid; n])
            .bind(vec![document; n])
            .bind((0..n as i32).map(|k| 2_000_000_000 + k).collect::<Vec<_>>())
            .bind(vec!["explain".to_owned(); n])
            .bind(vec![1_i32; n])
            .bind(vec![None::<pgvector::Vector>; n])
            .bind(vec![None::<chrono::DateTime<chrono::Utc>>; n])
    } else if sql == Chunks::UPDATE_SQL {
        query
            .bind(target.tenant)
            .bind(target.project)
            .bind(key)
            .bind(false)
            .bind(none_uuid)
            .bind(false)
            .bind(none_int)
            .bind(true)
            .bind(Some("explained".to_owned()))
            .bind(false)
            .bind(none_int)
            .bind(false)
            .bind(None::<pgvector::Vector>)
            .bind(false)
            .bind(None::<chrono::DateTime<chrono::Utc>>)
    } else if sql == Chunks::DELETE_SQL {
        query.bind(target.tenant).bind(target.project).bind(key)
    } else {
        bail!("no binds known for {sql}");
    };
    let lines = query.fetch_all(tx.connection()).await?;
    // EXPLAIN ANALYZE executed the writes: undo them.
    tx.rollback().await?;
    Ok(lines.join("\n"))
}

/// EXPLAIN ANALYZE of every hot statement as the application role (checked with
/// [`check_plan`]), and the superuser's plan of the count for comparison.
pub async fn explain_all(tenancy: &Tenancy, admin: &PgPool, target: &Target) -> Result<String> {
    let key = target.chunk_ids[target.chunk_ids.len() / 2];
    let document = target.document_ids[0];
    let mut report = String::from(
        "Custom plans for one execution each (`EXPLAIN (ANALYZE, VERBOSE, COSTS OFF, TIMING OFF, \
         SUMMARY OFF, BUFFERS OFF)`), inside a scoped transaction; writes rolled back. \
         Every plan below was checked: at least one InitPlan, each with loops=1, and no helper \
         call in a Filter / Index Cond.\n",
    );
    for (name, sql) in [
        (
            "get by key, one-project scope (Chunks::GET_IN_PROJECT_SQL)",
            Chunks::GET_IN_PROJECT_SQL,
        ),
        (
            "list a page (Chunks::LIST_AFTER_SQL)",
            Chunks::LIST_AFTER_SQL,
        ),
        ("count (Chunks::COUNT_SQL)", Chunks::COUNT_SQL),
        ("join chunks+documents", JOIN_SQL),
        (
            "batch insert (Chunks::INSERT_MANY_SQL)",
            Chunks::INSERT_MANY_SQL,
        ),
        ("update (Chunks::UPDATE_SQL)", Chunks::UPDATE_SQL),
        ("delete (Chunks::DELETE_SQL)", Chunks::DELETE_SQL),
    ] {
        let plan = explain_one(tenancy, target, sql, key, document).await?;
        check_plan(&plan)?;
        let _ = write!(report, "\n{name}:\n\n```\n{plan}\n```\n");
    }
    let plain: Vec<String> = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
        "{EXPLAIN}{}",
        Chunks::COUNT_SQL
    )))
    .bind(target.tenant)
    .bind(vec![target.project])
    .bind(None::<Uuid>)
    .bind(None::<Uuid>)
    .bind(None::<i32>)
    .fetch_all(admin)
    .await?;
    let _ = write!(
        report,
        "\ncount as the superuser (no RLS), for comparison:\n\n```\n{}\n```\n",
        plain.join("\n")
    );
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::check_plan;

    #[test]
    fn accepts_init_plans_and_rejects_per_row_helpers() {
        let good = "Index Scan using chunks_pkey on public.chunks (actual rows=1.00 loops=1)\n  \
                    Index Cond: ((chunks.tenant_id = (InitPlan 1).col1))\n  InitPlan 1\n    \
                    ->  Result (actual rows=1.00 loops=1)\n          Output: tenancy.current_tenant_id()";
        assert!(check_plan(good).is_ok());
        let per_row = "Seq Scan on public.chunks (actual rows=1.00 loops=1)\n  \
                       Filter: (chunks.tenant_id = tenancy.current_tenant_id())";
        assert!(check_plan(per_row).is_err());
        let looping = "Nested Loop\n  InitPlan 1\n    ->  Result (actual rows=1.00 loops=100)";
        assert!(check_plan(looping).is_err());
    }
}
