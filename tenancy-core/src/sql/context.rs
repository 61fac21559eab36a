//! How a policy reaches the request context: the one place that knows the call form.

use super::ident::{ident, literal};
use super::Target;

/// A context helper of `docs/context.md`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ContextHelper<'a> {
    /// `current_tenant_id() -> uuid`
    CurrentTenantId,
    /// `current_user_id() -> uuid`
    CurrentUserId,
    /// `project_ids(min_role) -> uuid[]`: the projects where the user's role is at least
    /// `min_role`.
    ProjectIds(&'a str),
}

/// The SQL expression a policy uses to call `helper` in `helper_schema`:
/// `(SELECT tenancy.fn(...))` on PostgreSQL (an InitPlan, evaluated once per statement; the
/// uuid[] of `project_ids` is cast so it can stand inside `ANY (...)`),
/// `tenancy.fn(...)` on Citus (which rejects sub-selects in policies).
pub fn context_call(target: Target, helper_schema: &str, helper: ContextHelper<'_>) -> String {
    let schema = ident(helper_schema);
    let call = match helper {
        ContextHelper::CurrentTenantId => format!("{schema}.current_tenant_id()"),
        ContextHelper::CurrentUserId => format!("{schema}.current_user_id()"),
        ContextHelper::ProjectIds(min_role) => {
            format!("{schema}.project_ids({})", literal(min_role))
        }
    };
    match (target, helper) {
        // `x = ANY ((SELECT ...))` would parse as `ANY (subquery)` and compare x with the whole
        // array; the cast makes the sub-select a scalar expression (still an InitPlan).
        (Target::Postgres, ContextHelper::ProjectIds(_)) => format!("(SELECT {call})::uuid[]"),
        (Target::Postgres, _) => format!("(SELECT {call})"),
        (Target::Citus, _) => call,
    }
}
