//! Row conditions as policy expressions, and stamped columns as defaults plus a trigger.

use super::context::{context_call, ContextHelper};
use super::ident::{fit_identifier, ident, literal};
use super::Target;
use crate::condition::{CompareOp, Condition, Operand, StampValue, StampWhen};
use crate::model::{Model, Table, PROJECT_COLUMN};

/// `COALESCE(project_id = ANY (<projects where the caller is at least role>), false)`: the
/// test "the caller's role in the row's project is at least `role`" for `role op x` in
/// conditions, where it may stand under a NOT (so it must be true or false, never NULL).
pub(super) fn role_at_least(model: &Model, target: Target, project: &str, role: &str) -> String {
    let projects = context_call(
        target,
        &model.settings.helper_schema,
        ContextHelper::ProjectIds(role),
    );
    match target {
        Target::Postgres => format!("COALESCE({} = ANY ({projects}), false)", ident(project)),
        Target::Citus => format!("{} = ANY ({projects})", ident(project)),
    }
}

/// `project_id = ANY (<projects where the caller is at least role>)`: the role test of a
/// permissive policy, where it only ever stands positively (ANDed with a rule's condition,
/// ORed with other rules), so NULL and false both refuse the row and the `COALESCE` of
/// [`role_at_least`] adds nothing. Without it the planner uses the test as an index
/// condition (a count reads the project's index entries without a per-row filter) instead of
/// a filter evaluated on every row. With the value-free estimates of the statistics
/// migration (`project_id` `n_distinct` 1) its guessed 10-element array is costed as
/// selectivity 1, so it does not shrink the row estimate of a by-key statement under a
/// generic plan (`tests/generic_plans.rs`, `tests/plans.rs`).
pub(super) fn role_member(model: &Model, target: Target, project: &str, role: &str) -> String {
    let projects = context_call(
        target,
        &model.settings.helper_schema,
        ContextHelper::ProjectIds(role),
    );
    format!("{} = ANY ({projects})", ident(project))
}

/// The SQL of `condition` (fully parenthesised where it combines).
pub(super) fn condition_sql(model: &Model, target: Target, condition: &Condition) -> String {
    let recurse = |c: &Condition| condition_sql(model, target, c);
    match condition {
        Condition::And(a, b) => format!("({} AND {})", recurse(a), recurse(b)),
        Condition::Or(a, b) => format!("({} OR {})", recurse(a), recurse(b)),
        Condition::Not(c) => format!("(NOT {})", recurse(c)),
        Condition::Compare { left, op, right } => format!(
            "{} {} {}",
            operand_sql(model, target, left),
            op.symbol(),
            operand_sql(model, target, right)
        ),
        Condition::IsNull { operand, negated } => format!(
            "{} IS {}NULL",
            operand_sql(model, target, operand),
            if *negated { "NOT " } else { "" }
        ),
        Condition::In { operand, values } => format!(
            "{} IN ({})",
            operand_sql(model, target, operand),
            values
                .iter()
                .map(|v| operand_sql(model, target, v))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        Condition::Flag(column) => ident(column).into_owned(),
        Condition::Role { op, role } => role_sql(model, target, *op, role),
        Condition::Sql(text) => format!("({text})"),
    }
}

/// `role op x` as membership tests: `>= x` is "x or above"; the others combine those.
fn role_sql(model: &Model, target: Target, op: CompareOp, role: &str) -> String {
    role_comparison(model, op, role, |r| {
        role_at_least(model, target, PROJECT_COLUMN, r)
    })
}

/// `role op x` from a test "the caller's role is at least `r`" (`at_least`): `>= x` is that
/// test, the other operators combine it for `x` and the role above.
pub(super) fn role_comparison(
    model: &Model,
    op: CompareOp,
    role: &str,
    at_least_role: impl Fn(&str) -> String,
) -> String {
    let rank = model.role_rank(role).unwrap_or(0);
    let at_least = |rank: usize| -> String {
        match model.roles.get(rank) {
            Some(r) => at_least_role(r),
            None => "false".to_owned(),
        }
    };
    match op {
        CompareOp::Ge => at_least(rank),
        CompareOp::Gt => at_least(rank + 1),
        CompareOp::Lt => format!("(NOT {})", at_least(rank)),
        CompareOp::Le => format!("(NOT {})", at_least(rank + 1)),
        CompareOp::Eq => format!("({} AND NOT {})", at_least(rank), at_least(rank + 1)),
        CompareOp::Ne => format!("(NOT {} OR {})", at_least(rank), at_least(rank + 1)),
    }
}

fn operand_sql(model: &Model, target: Target, operand: &Operand) -> String {
    let schema = &model.settings.helper_schema;
    match operand {
        Operand::Column(c) => ident(c).into_owned(),
        Operand::CurrentUser => context_call(target, schema, ContextHelper::CurrentUserId),
        Operand::CurrentTenant => context_call(target, schema, ContextHelper::CurrentTenantId),
        Operand::Literal(l) => match l {
            crate::condition::Literal::String(s) => literal(s),
            other => other.to_text(),
        },
    }
}

/// The DEFAULT of a column: its declared default, or for a stamped column the stamp's value
/// (so a statement may leave it out on every path; the trigger decides inside a request).
pub(super) fn column_default(model: &Model, column: &crate::model::Column) -> Option<String> {
    match (column.stamp, &column.default) {
        (Some(stamp), _) => Some(stamp_value(model, stamp.value)),
        (None, Some(default)) => Some(default.to_sql()),
        (None, None) => None,
    }
}

fn stamp_value(model: &Model, value: StampValue) -> String {
    match value {
        StampValue::CurrentUser => {
            format!("{}.current_user_id()", ident(&model.settings.helper_schema))
        }
        StampValue::Now => "now()".to_owned(),
    }
}

/// Name of the trigger (and its function, in the helper schema) that stamps `table`.
pub(crate) fn stamp_trigger_name(table: &Table) -> String {
    fit_identifier(&format!("{}_stamp", table.name))
}

/// The BEFORE INSERT OR UPDATE trigger of `table`'s stamped columns (function and trigger);
/// empty when the table has none. `CREATE OR REPLACE` and `DROP TRIGGER IF EXISTS` make it
/// safe to emit again when the stamps change.
///
/// Inside a request context (the app role, a user id in the verified context) the database
/// writes every stamp on INSERT, the `on update` ones on every UPDATE, and keeps the `on
/// insert` ones as they were; whatever the statement said is replaced. Without a request
/// context (maintenance work as the owner role) the row is written as given.
pub(super) fn stamp_trigger_section(model: &Model, table: &Table) -> String {
    let columns = table.stamped_columns();
    if columns.is_empty() {
        return String::new();
    }
    let schema = ident(&model.settings.helper_schema);
    let name = stamp_trigger_name(table);
    let function = format!("{schema}.{}", ident(&name));
    let mut on_insert = String::new();
    let mut on_update = String::new();
    for column in &columns {
        let Some(stamp) = column.stamp else { continue };
        let col = ident(&column.name);
        // The caller's id is read once per row, into `caller` (the helper verifies the sealed
        // context on every call).
        let value = match stamp.value {
            StampValue::CurrentUser => "caller",
            StampValue::Now => "pg_catalog.now()",
        };
        on_insert.push_str(&format!("    NEW.{col} := {value};\n"));
        match stamp.when {
            StampWhen::Update => on_update.push_str(&format!("    NEW.{col} := {value};\n")),
            StampWhen::Insert => on_update.push_str(&format!("    NEW.{col} := OLD.{col};\n")),
        }
    }
    format!(
        "\n-- Stamped columns: {}.\n\
         -- Inside a request context the database writes them, whatever the statement says\n\
         -- (`on insert`: once; `on update`: on every write). Maintenance work without a\n\
         -- context (the owner role) writes what it gives; their defaults fill what it omits.\n\
         -- No SET clause: every name is schema-qualified, operators included. (A SET\n\
         -- search_path here would make the context helper it calls plan again on every call,\n\
         -- as its cached plans depend on the search_path.)\n\
         CREATE OR REPLACE FUNCTION {function}()\n\
         \x20 RETURNS trigger\n\
         \x20 LANGUAGE plpgsql\n\
         AS $$\n\
         DECLARE\n\
         \x20 caller pg_catalog.uuid := {schema}.current_user_id();\n\
         BEGIN\n\
         \x20 IF caller IS NULL THEN\n\
         \x20   RETURN NEW;\n\
         \x20 END IF;\n\
         \x20 IF TG_OP OPERATOR(pg_catalog.=) 'INSERT' THEN\n\
         {on_insert}\
         \x20 ELSE\n\
         {on_update}\
         \x20 END IF;\n\
         \x20 RETURN NEW;\n\
         END\n\
         $$;\n\
         ALTER FUNCTION {function}() OWNER TO {};\n\
         REVOKE ALL ON FUNCTION {function}() FROM PUBLIC;\n\
         DROP TRIGGER IF EXISTS {} ON {};\n\
         CREATE TRIGGER {}\n\
         \x20 BEFORE INSERT OR UPDATE ON {}\n\
         \x20 FOR EACH ROW\n\
         \x20 EXECUTE FUNCTION {function}();\n",
        columns
            .iter()
            .map(|c| c.name.as_str())
            .collect::<Vec<_>>()
            .join(", "),
        ident(&model.settings.owner_role),
        ident(&name),
        ident(&table.name),
        ident(&name),
        ident(&table.name),
    )
}

/// Removes the trigger and function of [`stamp_trigger_section`] (when a table's last stamp
/// goes).
pub(super) fn drop_stamp_trigger(model: &Model, table: &Table) -> String {
    let name = stamp_trigger_name(table);
    format!(
        "\n-- {}: no column is stamped any more.\n\
         DROP TRIGGER IF EXISTS {} ON {};\n\
         DROP FUNCTION IF EXISTS {}.{}();\n",
        table.name,
        ident(&name),
        ident(&table.name),
        ident(&model.settings.helper_schema),
        ident(&name)
    )
}
