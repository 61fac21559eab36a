//! Column lists on rules: `allow update (title, metadata) to editor` (the columns a role may
//! change) and `allow select (id, title) to viewer` (the columns a role may read).

use super::*;
use crate::model::{ID_COLUMN, PROJECT_COLUMN, TENANT_COLUMN, USER_COLUMN};

impl<'a> Checker<'_, 'a> {
    /// Checks the column list of `rule` (if any) for `command` and returns it in table column
    /// order. Errors: a list on another command than `update` and `select` (and a `select`
    /// list outside scoped tables), an unknown or repeated column, a column no update may
    /// change (scope, key, stamped), and a list next to a `where sql "..."` condition (the
    /// database checks lists per row and cannot re-target raw SQL).
    pub(super) fn check_rule_columns(
        &mut self,
        info: &TableInfo<'a>,
        rule: &RuleDecl,
        command: Command,
    ) -> Option<Vec<String>> {
        let list = rule.columns.as_ref()?;
        let first = list.first()?;
        let reads = command == Command::Select && info.kind == TableKind::Scoped;
        if command != Command::Update && !reads {
            let d =
                if command == Command::Select {
                    Diagnostic::error(
                    format!("a column list on `select` is not supported on `{}`", info.name()),
                    first.span,
                    "only `select` rules of scoped tables name columns",
                )
                .with_note(
                    "the tenancy core tables are read by the runtime itself, every column of them",
                )
                .with_help("remove the column list")
                } else {
                    Diagnostic::error(
                        format!("a column list on `{command}` is not supported"),
                        first.span,
                        "only `update` and `select` rules name columns",
                    )
                    .with_note(
                        "an insert writes a whole row and a delete removes one: neither works \
                     column by column",
                    )
                    .with_help("remove the column list")
                };
            self.error(d);
            return None;
        }
        if rule
            .condition
            .as_ref()
            .is_some_and(crate::dsl::ast::Expr::contains_sql)
        {
            self.error(
                Diagnostic::error(
                    "a column list cannot be combined with a `sql` condition",
                    first.span,
                    "the database checks this list per row, and cannot re-target raw SQL",
                )
                .with_help("write the condition in the rule language, or drop the column list"),
            );
            return None;
        }
        let names = info.column_names();
        // A reader may be given any column; the scope and key columns are always read.
        let fixed = if reads {
            Vec::new()
        } else {
            fixed_columns(info)
        };
        let mut seen: Vec<&str> = Vec::new();
        let mut ok = true;
        for column in list {
            let name = column.name.as_str();
            if !names.contains(&name) {
                let mut d = Diagnostic::error(
                    format!("unknown column `{name}` in a rule on `{}`", info.name()),
                    column.span,
                    "not a column of this table",
                );
                d = match suggest(name, &names) {
                    Some(s) => d.with_help(format!("did you mean `{s}`?")),
                    None => d.with_help(format!("the columns are {}", names.join(", "))),
                };
                self.error(d);
                ok = false;
            } else if seen.contains(&name) {
                self.error(
                    Diagnostic::error(
                        format!("column `{name}` is listed twice"),
                        column.span,
                        "already in this list",
                    )
                    .with_help("remove the repetition"),
                );
                ok = false;
            } else if let Some(why) = fixed.iter().find(|(c, _)| *c == name).map(|(_, w)| *w) {
                self.error(
                    Diagnostic::error(format!("no update may change `{name}`"), column.span, why)
                        .with_help(format!("remove `{name}` from the list")),
                );
                ok = false;
            }
            seen.push(name);
        }
        if !ok {
            return None;
        }
        // Table column order, so the model (and its snapshot) does not depend on spelling.
        Some(
            names
                .into_iter()
                .filter(|n| seen.contains(n))
                .map(str::to_owned)
                .collect(),
        )
    }
}

/// Columns no update changes, with the reason.
fn fixed_columns<'i>(info: &'i TableInfo<'_>) -> Vec<(&'i str, &'static str)> {
    let mut fixed: Vec<(&str, &'static str)> = Vec::new();
    for column in &info.generated {
        if column.name == TENANT_COLUMN || column.name == PROJECT_COLUMN {
            fixed.push((
                column.name.as_str(),
                "a scope column: an update never moves a row to another tenant or project",
            ));
        }
    }
    let key_reason = "part of the primary key: an update never changes a row's identity";
    for name in &info.primary_key {
        fixed.push((name.as_str(), key_reason));
    }
    match info.kind {
        TableKind::Memberships | TableKind::TenantMemberships => {
            fixed.push((USER_COLUMN, key_reason))
        }
        TableKind::Tenants | TableKind::Projects => fixed.push((ID_COLUMN, key_reason)),
        TableKind::Scoped | TableKind::Global => {}
    }
    for name in info.stamps.keys() {
        fixed.push((name, "a stamped column: the database writes it"));
    }
    fixed
}
