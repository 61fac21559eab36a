//! Column rights: `allow update (a, b) to role` as a column grant plus a per-row trigger.
//!
//! A column-level GRANT cannot differ by project role (the app role is one database role),
//! so the grant covers every column some rule lets some role change, and a BEFORE UPDATE
//! trigger refuses, per row, a change to a column that no rule covering it allows the caller
//! (role in the row's project, and the rule's condition on the row as it was). Rows
//! themselves are still decided by the policies.
//!
//! The trigger body is written for a hostile session: every function, type and operator is
//! schema-qualified (the session's `search_path` cannot redirect them) and a change is
//! detected on the values' text forms with `pg_catalog` operators only.

use super::context::{context_call, ContextHelper};
use super::ident::{fit_identifier, ident, literal};
use super::Target;
use crate::condition::{CompareOp, Condition, Literal, Operand};
use crate::model::{Column, Command, Model, Rule, SqlType, Table};

/// The columns the app role is granted UPDATE on: every column some `update` rule covers
/// (a rule without a list covers every updatable column), in table column order.
pub(crate) fn granted_update_columns(table: &Table) -> Vec<String> {
    let updatable = super::security::updatable_columns(table);
    let rules = table.rules_for(Command::Update);
    if rules.iter().any(|r| r.columns.is_none()) {
        return updatable;
    }
    updatable
        .into_iter()
        .filter(|c| {
            rules
                .iter()
                .any(|r| r.columns.as_ref().is_some_and(|l| l.contains(c)))
        })
        .collect()
}

/// The granted columns that not every `update` rule covers, each with the rules that do.
pub(crate) fn restricted_columns(table: &Table) -> Vec<(Column, Vec<&Rule>)> {
    if !table.has_column_rights() {
        return Vec::new();
    }
    let rules = table.rules_for(Command::Update);
    let covers = |rule: &Rule, column: &str| {
        rule.columns
            .as_ref()
            .is_none_or(|l| l.iter().any(|c| c == column))
    };
    let columns = table.all_columns();
    granted_update_columns(table)
        .into_iter()
        .filter_map(|name| {
            let column = columns.iter().find(|c| c.name == name)?.clone();
            let allowed: Vec<&Rule> = rules.iter().copied().filter(|r| covers(r, &name)).collect();
            (allowed.len() < rules.len()).then_some((column, allowed))
        })
        .collect()
}

/// Name of the trigger (and its function, in the helper schema) that checks column rights.
pub(crate) fn column_rights_trigger_name(table: &Table) -> String {
    fit_identifier(&format!("{}_column_rights", table.name))
}

/// The BEFORE UPDATE trigger of `table`'s column rights (function and trigger); empty when
/// every rule may change every granted column. `CREATE OR REPLACE` and `DROP TRIGGER IF
/// EXISTS` make it safe to emit again when the rights change.
pub(super) fn column_rights_section(model: &Model, table: &Table, target: Target) -> String {
    let restricted = restricted_columns(table);
    if restricted.is_empty() {
        return String::new();
    }
    let schema = ident(&model.settings.helper_schema);
    let name = column_rights_trigger_name(table);
    let function = format!("{schema}.{}", ident(&name));
    let table_name = ident(&table.name);
    let old = OldRow {
        model,
        target,
        project: table.scope_columns().and_then(|s| s.project),
    };
    let mut checks = String::new();
    for (column, rules) in &restricted {
        let col = ident(&column.name);
        let allowed = if rules.is_empty() {
            "false".to_owned()
        } else {
            rules
                .iter()
                .map(|r| old.rule(r))
                .collect::<Vec<_>>()
                .join("\n      OR ")
        };
        let who = if rules.is_empty() {
            "no role".to_owned()
        } else {
            rules
                .iter()
                .map(|r| match &r.condition {
                    Some(c) => format!("{} where {}", r.min_role, c.to_dsl()),
                    None => r.min_role.clone(),
                })
                .collect::<Vec<_>>()
                .join(", or ")
        };
        let message = literal(&format!(
            "permission denied to change column {} of table {}",
            column.name, table.name
        ));
        let hint = literal(&format!("allowed to: {who}"));
        // Nested IFs: the role tests run only for a column that changed (a NULL `changed`
        // is no change, and an AND with NULL would still evaluate them).
        checks.push_str(&format!(
            "  IF ({}) THEN\n\
             \x20   IF NOT (\n      {allowed}) THEN\n\
             \x20     RAISE EXCEPTION USING ERRCODE = '42501', MESSAGE = {message}, HINT = {hint};\n\
             \x20   END IF;\n\
             \x20 END IF;\n",
            changed(&col, column.ty)
        ));
    }
    format!(
        "\n-- Column rights on {}: {}.\n\
         -- Policies decide which rows an update reaches; this trigger refuses a change to a\n\
         -- column that no rule covering it allows the caller (role in the row's project and\n\
         -- the rule's condition, on the row as it was). Sessions row-level security does not\n\
         -- apply to (maintenance) are not checked. Every name is schema-qualified, operators\n\
         -- included, so no search_path can redirect them.\n\
         CREATE OR REPLACE FUNCTION {function}()\n\
         \x20 RETURNS trigger\n\
         \x20 LANGUAGE plpgsql\n\
         AS $$\n\
         BEGIN\n\
         \x20 IF NOT pg_catalog.row_security_active(TG_RELID) THEN\n\
         \x20   RETURN NEW;\n\
         \x20 END IF;\n\
         {checks}\
         \x20 RETURN NEW;\n\
         END\n\
         $$;\n\
         ALTER FUNCTION {function}() OWNER TO {};\n\
         REVOKE ALL ON FUNCTION {function}() FROM PUBLIC;\n\
         DROP TRIGGER IF EXISTS {} ON {table_name};\n\
         CREATE TRIGGER {}\n\
         \x20 BEFORE UPDATE ON {table_name}\n\
         \x20 FOR EACH ROW\n\
         \x20 EXECUTE FUNCTION {function}();\n",
        table.name,
        restricted
            .iter()
            .map(|(c, _)| c.name.as_str())
            .collect::<Vec<_>>()
            .join(", "),
        ident(&model.settings.owner_role),
        ident(&name),
        ident(&name),
    )
}

/// Removes the trigger and function of [`column_rights_section`] (when the last column list
/// goes).
pub(super) fn drop_column_rights_trigger(model: &Model, table: &Table) -> String {
    let name = column_rights_trigger_name(table);
    format!(
        "\n-- {}: every role that may update may change every column again.\n\
         DROP TRIGGER IF EXISTS {} ON {};\n\
         DROP FUNCTION IF EXISTS {}.{}();\n",
        table.name,
        ident(&name),
        ident(&table.name),
        ident(&model.settings.helper_schema),
        ident(&name)
    )
}

/// True when the update changes `col`: NULL-ness differs, or the text forms differ (text
/// comparison needs no operator of the column's type, so it cannot be redirected).
fn changed(col: &str, ty: SqlType) -> String {
    let (new, old) = if ty == SqlType::Text {
        (format!("NEW.{col}"), format!("OLD.{col}"))
    } else {
        (
            format!("NEW.{col}::pg_catalog.text"),
            format!("OLD.{col}::pg_catalog.text"),
        )
    };
    format!(
        "(NEW.{col} IS NULL) OPERATOR(pg_catalog.<>) (OLD.{col} IS NULL)\n      \
         OR {new} OPERATOR(pg_catalog.<>) {old}"
    )
}

/// Rule tests on the row as it was (`OLD`), in a trigger body.
struct OldRow<'m> {
    model: &'m Model,
    target: Target,
    /// The column holding the row's project (`None` on the tenants table).
    project: Option<&'static str>,
}

impl OldRow<'_> {
    /// `role test AND condition` of one rule.
    fn rule(&self, rule: &Rule) -> String {
        let role = self.role(&rule.min_role);
        match &rule.condition {
            Some(condition) => format!("({role} AND {})", self.condition(condition)),
            None => role,
        }
    }

    fn role(&self, role: &str) -> String {
        let projects = context_call(
            self.target,
            &self.model.settings.helper_schema,
            ContextHelper::ProjectIds(role),
        );
        // context_call casts to `uuid[]`; qualify the type for the trigger body.
        let projects = projects.replace(")::uuid[]", ")::pg_catalog.uuid[]");
        match self.project {
            Some(project) => format!(
                "COALESCE(OLD.{} OPERATOR(pg_catalog.=) ANY ({projects}), false)",
                ident(project)
            ),
            None => format!("pg_catalog.cardinality({projects}) OPERATOR(pg_catalog.>) 0"),
        }
    }

    fn condition(&self, condition: &Condition) -> String {
        match condition {
            Condition::And(a, b) => format!("({} AND {})", self.condition(a), self.condition(b)),
            Condition::Or(a, b) => format!("({} OR {})", self.condition(a), self.condition(b)),
            Condition::Not(c) => format!("(NOT {})", self.condition(c)),
            Condition::Compare { left, op, right } => self.compare(left, *op, right),
            Condition::IsNull { operand, negated } => format!(
                "{} IS {}NULL",
                self.operand(operand),
                if *negated { "NOT " } else { "" }
            ),
            Condition::In { operand, values } => format!(
                "({})",
                values
                    .iter()
                    .map(|v| self.compare(operand, CompareOp::Eq, v))
                    .collect::<Vec<_>>()
                    .join(" OR ")
            ),
            Condition::Flag(column) => format!("OLD.{}", ident(column)),
            Condition::Role { op, role } => self.role_condition(*op, role),
            // Refused by the validator next to a column list; fail closed all the same.
            Condition::Sql(_) => "false".to_owned(),
        }
    }

    fn compare(&self, left: &Operand, op: CompareOp, right: &Operand) -> String {
        format!(
            "{} OPERATOR(pg_catalog.{}) {}",
            self.operand(left),
            op.symbol(),
            self.operand(right)
        )
    }

    fn role_condition(&self, op: CompareOp, role: &str) -> String {
        super::conditions::role_comparison(self.model, op, role, |r| self.role(r))
    }

    fn operand(&self, operand: &Operand) -> String {
        let schema = &self.model.settings.helper_schema;
        match operand {
            Operand::Column(c) => format!("OLD.{}", ident(c)),
            Operand::CurrentUser => context_call(self.target, schema, ContextHelper::CurrentUserId),
            Operand::CurrentTenant => {
                context_call(self.target, schema, ContextHelper::CurrentTenantId)
            }
            Operand::Literal(l) => match l {
                Literal::String(s) => literal(s),
                other => other.to_text(),
            },
        }
    }
}
