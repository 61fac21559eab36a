//! Plain-text explanation of a model for reviewers (`tenancy explain`).
//!
//! For each table: its kind, scope columns, keys, and which role may do what. The text says
//! the same thing the generated policies and grants enforce (it reads the same model and the
//! same helpers as the SQL emitter), in words a security reviewer can check.

use crate::model::{Command, Model, Table, TableKind};
use crate::sql::{all_foreign_keys, granted_commands};

/// The requested table does not exist in the model.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown table `{name}`{}", suggestion_text(.suggestion.as_deref(), .known.as_slice()))]
pub struct UnknownTable {
    /// The name that was asked for.
    pub name: String,
    /// The closest table name, when one is close enough to be a likely typo.
    pub suggestion: Option<String>,
    /// Every table name of the model, in model order.
    pub known: Vec<String>,
}

fn suggestion_text(suggestion: Option<&str>, known: &[String]) -> String {
    match suggestion {
        Some(s) => format!("; did you mean `{s}`?"),
        None if known.is_empty() => String::new(),
        None => format!("; tables are: {}", known.join(", ")),
    }
}

/// Explains every table of `model` (or only `table`) in plain text.
pub fn explain(model: &Model, table: Option<&str>) -> Result<String, UnknownTable> {
    match table {
        Some(name) => match model.table(name) {
            Some(t) => Ok(explain_table(model, t)),
            None => Err(unknown_table(model, name)),
        },
        None => {
            let mut out = format!(
                "roles (least to most privileged): {}\n\
                 app role: {} (always subject to row-level security)\n\
                 owner role: {} (owns every object, cannot log in)\n\
                 context helpers: schema {}\n",
                model.roles.join(" < "),
                model.settings.app_role,
                model.settings.owner_role,
                model.settings.helper_schema,
            );
            for t in model.tables_in_dependency_order() {
                out.push('\n');
                out.push_str(&explain_table(model, t));
            }
            Ok(out)
        }
    }
}

pub(crate) fn unknown_table(model: &Model, name: &str) -> UnknownTable {
    let suggestion = model
        .tables
        .iter()
        .map(|t| (strsim::jaro_winkler(name, &t.name), t.name.as_str()))
        .filter(|(score, _)| *score >= 0.8)
        .fold(None::<(f64, &str)>, |best, candidate| match best {
            Some(b) if b.0 >= candidate.0 => Some(b),
            _ => Some(candidate),
        })
        .map(|(_, n)| n.to_owned());
    UnknownTable {
        name: name.to_owned(),
        suggestion,
        known: model.tables.iter().map(|t| t.name.clone()).collect(),
    }
}

fn kind_phrase(kind: TableKind) -> &'static str {
    match kind {
        TableKind::Tenants => "the tenants table, one row per tenant",
        TableKind::Projects => "the projects table, scoped to a tenant",
        TableKind::Memberships => "the memberships table, scoped to a project",
        TableKind::TenantMemberships => {
            "the tenant memberships table, scoped to a tenant; its rules name the caller's tenant-wide role"
        }
        TableKind::Scoped => "scoped to a project",
        TableKind::Global => "global, shared by every tenant",
    }
}

fn list(columns: &[String]) -> String {
    format!("({})", columns.join(", "))
}

fn explain_table(model: &Model, table: &Table) -> String {
    let mut out = format!("{} ({})\n", table.name, kind_phrase(table.kind));
    if let Some(doc) = &table.doc {
        for line in doc.lines() {
            let line = line.trim_end();
            if line.is_empty() {
                out.push_str("  |\n");
            } else {
                out.push_str(&format!("  | {line}\n"));
            }
        }
    }
    match table.scope_columns() {
        Some(scope) => {
            let mut cols = vec![format!("tenant = {}", scope.tenant)];
            if let Some(project) = scope.project {
                cols.push(format!("project = {project}"));
            }
            out.push_str(&format!(
                "  scope: {}; rows of other tenants are never visible or writable\n",
                cols.join(", ")
            ));
        }
        None => out.push_str("  scope: none (no row-level security: every row is shared)\n"),
    }
    let pk = table.effective_primary_key();
    if !pk.is_empty() && (!table.primary_key.is_empty() || table.kind.is_core()) {
        out.push_str(&format!("  primary key: {}\n", list(&pk)));
    }
    for key in table.effective_unique_keys() {
        out.push_str(&format!("  unique: {}\n", list(&key)));
    }
    for key in existence_oracles(table) {
        out.push_str(&format!(
            "  existence oracle: unique {} spans rows of projects the caller may hold no role in; \
             a write that collides fails with 23505 and so reveals that such a row exists\n",
            list(&key)
        ));
    }
    for fk in all_foreign_keys(model, table) {
        out.push_str(&format!(
            "  references: {} -> {} {}\n",
            list(&fk.local),
            fk.parent,
            list(&fk.remote)
        ));
    }

    let granted = granted_commands(table);
    for command in Command::ALL {
        let who = if !granted.contains(&command) {
            "denied (no rule)".to_owned()
        } else if table.kind == TableKind::Global {
            "any caller using the app role (every row)".to_owned()
        } else {
            let rules = table.rules_for(command);
            let mut who = if rules.is_empty() {
                "nobody by role".to_owned()
            } else {
                rules
                    .iter()
                    .map(|rule| {
                        let mut who = match &rule.condition {
                            Some(condition) => format!(
                                "{}, on rows where {}",
                                role_phrase(model, &rule.min_role),
                                condition.describe()
                            ),
                            None => role_phrase(model, &rule.min_role),
                        };
                        if let Some(columns) = &rule.columns {
                            let verb = if command == Command::Select {
                                "reading only"
                            } else {
                                "changing only"
                            };
                            who.push_str(&format!(", {verb} {}", columns.join(", ")));
                        }
                        who
                    })
                    .collect::<Vec<_>>()
                    .join("; or ")
            };
            if table.kind == TableKind::Tenants {
                who.push_str(" in at least one project of the tenant");
            }
            if table.kind == TableKind::Memberships && command == Command::Select {
                who.push_str("; every user may also read their own memberships");
            }
            who
        };
        out.push_str(&format!("  {command}: {who}\n"));
        if table
            .rules_for(command)
            .iter()
            .any(|r| r.condition.as_ref().is_some_and(|c| c.is_unchecked()))
        {
            out.push_str(
                "    UNCHECKED: a condition of this command is raw SQL the generator did not check\n",
            );
        }
        let masked = table.masked_columns();
        if command == Command::Select && !masked.is_empty() {
            out.push_str(&format!(
                "    masked columns: {} (the app role cannot select them on the table; the view \
                 {}.{} shows each where a rule reading it admits the caller, NULL elsewhere)\n",
                masked
                    .iter()
                    .map(|c| c.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", "),
                model.settings.helper_schema,
                crate::sql::masked_view_name(table)
            ));
        }
        if command == Command::Update && granted.contains(&command) {
            out.push_str(&format!(
                "    updatable columns: {}\n",
                crate::sql::granted_update_columns(table).join(", ")
            ));
            if table.has_column_rights() {
                out.push_str(
                    "    column rights: the database refuses, per row, a change to a column no \
                     rule of the caller covers\n",
                );
            }
        }
    }
    for column in table.stamped_columns() {
        if let Some(stamp) = column.stamp {
            let when = match stamp.when {
                crate::condition::StampWhen::Insert => {
                    "when the row is inserted (never changed after)"
                }
                crate::condition::StampWhen::Update => "on insert and on every update",
            };
            let value = match stamp.value {
                crate::condition::StampValue::CurrentUser => "the caller's user id",
                crate::condition::StampValue::Now => "the transaction time",
            };
            out.push_str(&format!(
                "  stamped: {} = {value}, written by the database {when}; the app role cannot set it\n",
                column.name
            ));
        }
    }
    out.push_str("  truncate/references/trigger: never\n");
    out
}

/// The unique keys of a project-scoped table that do not contain its project column, when the
/// app role can write a value into them (an insert rule, or an update rule on one of the key's
/// columns): a hidden row of another project can collide with the caller's write, and the
/// unique violation tells the caller it exists (issue 18, "existence oracles").
pub fn existence_oracles(table: &Table) -> Vec<Vec<String>> {
    let Some(project) = table.scope_columns().and_then(|scope| scope.project) else {
        return Vec::new();
    };
    let granted = granted_commands(table);
    let inserts = granted.contains(&Command::Insert);
    let updatable = if granted.contains(&Command::Update) {
        crate::sql::granted_update_columns(table)
    } else {
        Vec::new()
    };
    table
        .effective_unique_keys()
        .into_iter()
        .filter(|key| !key.iter().any(|c| c == project))
        .filter(|key| inserts || key.iter().any(|c| updatable.contains(c)))
        .collect()
}

/// "editor and above (editor, admin, owner)", or "owner only (owner)" for the top role.
fn role_phrase(model: &Model, min_role: &str) -> String {
    let Some(rank) = model.role_rank(min_role) else {
        return format!("{min_role} (unknown role)");
    };
    let allowed = &model.roles[rank..];
    if allowed.len() == 1 {
        format!("{min_role} only ({min_role})")
    } else {
        format!("{min_role} and above ({})", allowed.join(", "))
    }
}
