//! `tenancy diff`: every change of access between two models, in plain words, classified as
//! widening, narrowing or neutral, with a counterexample for every widening.
//!
//! What widens: a role gains a command (a minimum role drops, a table becomes granted), a
//! condition is removed or loosened, a table becomes global, a column becomes writable, a
//! grant ceiling rises. The opposite narrows. A condition rewritten to admit the same rows,
//! a role or column added, is neutral. A rewritten raw SQL condition cannot be compared: it is
//! reported as a widening (fail closed) with an unverified counterexample.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::condition::Literal;
use crate::model::{Command, Model, SqlType, TableKind};

use super::counterexample::{self, Counterexample, Value};
use super::matrix::{AccessMatrix, RoleAccess, TableAccess};

/// Whether a change gives or takes access.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Effect {
    /// Someone may do something they could not before.
    Widens,
    /// Someone may no longer do something they could before.
    Narrows,
    /// The same callers reach the same rows (or no existing data is affected).
    Neutral,
}

impl Effect {
    /// `widens`, `narrows`, `neutral`.
    pub fn word(self) -> &'static str {
        match self {
            Effect::Widens => "widens",
            Effect::Narrows => "narrows",
            Effect::Neutral => "neutral",
        }
    }
}

/// What kind of change.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ChangeKind {
    /// A role may now run a command it could not (a minimum role dropped, a rule added).
    RoleGainsCommand,
    /// A role may no longer run a command.
    RoleLosesCommand,
    /// A role reaches more rows: a condition was removed or loosened.
    ConditionLoosened,
    /// A role reaches fewer rows: a condition was added or tightened.
    ConditionTightened,
    /// A role reaches other rows: some gained, some lost.
    ConditionChanged,
    /// A condition was rewritten but admits the same rows.
    ConditionRewritten,
    /// A table of the model was added.
    TableAdded,
    /// A table was removed.
    TableRemoved,
    /// A tenant-owned table became global (or the other way round).
    TableKindChanged,
    /// A column may now be written by a command.
    ColumnBecomesWritable,
    /// A column may no longer be written by a command.
    ColumnNoLongerWritable,
    /// A new column, writable from the start (no existing data changes hands).
    ColumnAdded,
    /// A role may now read a column that was masked from it.
    ColumnBecomesReadable,
    /// A column is now masked from a role.
    ColumnNoLongerReadable,
    /// A role may now grant a role it could not.
    GrantCeilingRises,
    /// A role may no longer grant a role.
    GrantCeilingLowers,
    /// The roles or their order changed.
    RolesChanged,
}

/// One change of access.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AccessChange {
    /// Widens, narrows or neutral.
    pub effect: Effect,
    /// What kind of change.
    pub kind: ChangeKind,
    /// The table, when the change is about one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub table: Option<String>,
    /// The command, when the change is about one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub command: Option<Command>,
    /// The roles concerned, least privileged first.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub roles: Vec<String>,
    /// The change in plain words.
    pub description: String,
    /// For a widening: a caller and row the new model admits and the old one refuses.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub counterexample: Option<Counterexample>,
    /// For a widening of a column: the column a counterexample writes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub column: Option<String>,
    /// For a grant ceiling change: the role given.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub granted_role: Option<String>,
}

/// Every change of access from a base model to a new one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AccessDiff {
    /// The changes: per table in the new model's order, then the removed tables, then the
    /// grant ceilings.
    pub changes: Vec<AccessChange>,
}

impl AccessDiff {
    /// True when some change widens access.
    pub fn widens(&self) -> bool {
        self.changes.iter().any(|c| c.effect == Effect::Widens)
    }

    /// How many changes have `effect`.
    pub fn count(&self, effect: Effect) -> usize {
        self.changes.iter().filter(|c| c.effect == effect).count()
    }
}

fn change(effect: Effect, kind: ChangeKind, description: String) -> AccessChange {
    AccessChange {
        effect,
        kind,
        table: None,
        command: None,
        roles: Vec::new(),
        description,
        counterexample: None,
        column: None,
        granted_role: None,
    }
}

/// The changes of access from `old` to `new`.
pub fn diff(old: &Model, new: &Model) -> AccessDiff {
    let old_matrix = AccessMatrix::of(old);
    let new_matrix = AccessMatrix::of(new);
    let mut changes = Vec::new();
    if old.roles != new.roles {
        changes.push(change(
            Effect::Neutral,
            ChangeKind::RolesChanged,
            format!(
                "roles were {}, now {} (what each role may do is compared by name below)",
                old.roles.join(" < "),
                new.roles.join(" < ")
            ),
        ));
    }
    for table in &new_matrix.tables {
        match old_matrix.table(&table.table) {
            Some(before) => table_changes(old, new, before, table, &mut changes),
            None => {
                let mut added = change(
                    Effect::Neutral,
                    ChangeKind::TableAdded,
                    format!("table `{}` is new", table.table),
                );
                added.table = Some(table.table.clone());
                changes.push(added);
                let empty = TableAccess {
                    table: table.table.clone(),
                    kind: table.kind,
                    all_columns: Vec::new(),
                    commands: Vec::new(),
                    insert_columns: Vec::new(),
                    update_columns: Vec::new(),
                    stamped: Vec::new(),
                    masked_columns: Vec::new(),
                };
                command_changes(old, new, &empty, table, &mut changes);
            }
        }
    }
    for table in &old_matrix.tables {
        if new_matrix.table(&table.table).is_none() {
            let mut removed = change(
                Effect::Narrows,
                ChangeKind::TableRemoved,
                format!(
                    "table `{}` is removed: nobody may use it any more",
                    table.table
                ),
            );
            removed.table = Some(table.table.clone());
            changes.push(removed);
        }
    }
    ceiling_changes(&old_matrix, &new_matrix, &mut changes);
    // On the tenant memberships table a caller's role is its tenant-wide role.
    for change in &mut changes {
        let tenant_wide = change
            .table
            .as_deref()
            .and_then(|t| new.table(t).or_else(|| old.table(t)))
            .is_some_and(|t| t.kind == TableKind::TenantMemberships);
        if let (true, Some(example)) = (tenant_wide, change.counterexample.as_mut()) {
            example.tenant_wide = true;
        }
    }
    AccessDiff { changes }
}

fn table_changes(
    old: &Model,
    new: &Model,
    before: &TableAccess,
    after: &TableAccess,
    out: &mut Vec<AccessChange>,
) {
    let was_global = before.kind == TableKind::Global;
    let is_global = after.kind == TableKind::Global;
    if was_global != is_global {
        let (effect, text) = if is_global {
            (
                Effect::Widens,
                format!(
                    "table `{}` becomes global: its rows are no longer bound to a tenant, and every \
                     caller of the app role reaches every row its rules allow",
                    after.table
                ),
            )
        } else {
            (
                Effect::Narrows,
                format!(
                    "table `{}` is no longer global: its rows belong to a tenant",
                    after.table
                ),
            )
        };
        let mut c = change(effect, ChangeKind::TableKindChanged, text);
        c.table = Some(after.table.clone());
        if is_global {
            c.command = after
                .commands
                .iter()
                .find(|a| a.every_caller)
                .map(|a| a.command);
            c.counterexample = Some(Counterexample {
                tenant_wide: false,
                role: None,
                row: Default::default(),
                unverified: false,
            });
        }
        out.push(c);
    }
    command_changes(old, new, before, after, out);
    column_changes(new, before, after, out);
}

/// Roles whose access to one command changed the same way: (kind, effect, roles, the first
/// role's counterexample, the change in words).
type Group = (
    ChangeKind,
    Effect,
    Vec<String>,
    Option<Counterexample>,
    String,
);

/// Role-by-role changes of each command, grouped by kind (the least privileged role's
/// counterexample stands for the group).
fn command_changes(
    old: &Model,
    new: &Model,
    before: &TableAccess,
    after: &TableAccess,
    out: &mut Vec<AccessChange>,
) {
    let Some(new_table) = new.table(&after.table) else {
        return;
    };
    let old_table = old.table(&before.table);
    for command in Command::ALL {
        let was = before.command(command);
        let is = after.command(command);
        let was_every = was.is_some_and(|c| c.every_caller);
        let is_every = is.is_some_and(|c| c.every_caller);
        if was_every != is_every {
            let (effect, kind, text) = if is_every {
                (
                    Effect::Widens,
                    ChangeKind::RoleGainsCommand,
                    format!("every caller may now {command} `{}`", after.table),
                )
            } else {
                (
                    Effect::Narrows,
                    ChangeKind::RoleLosesCommand,
                    format!("callers may no longer {command} `{}`", after.table),
                )
            };
            let mut c = change(effect, kind, text);
            c.table = Some(after.table.clone());
            c.command = Some(command);
            if is_every {
                c.counterexample = Some(Counterexample {
                    tenant_wide: false,
                    role: None,
                    row: Default::default(),
                    unverified: false,
                });
            }
            out.push(c);
        }
        if after.kind == TableKind::Global || before.kind == TableKind::Global {
            // Global tables have no roles: the every-caller change above says it all.
            continue;
        }
        // Groups in order of kind: (kind, roles, first counterexample, descriptions).
        let mut groups: Vec<Group> = Vec::new();
        let mut roles: Vec<&String> = new.roles.iter().collect();
        roles.extend(old.roles.iter().filter(|r| !new.roles.contains(r)));
        for role in roles {
            let old_access = was.map(|c| c.access_of(role)).unwrap_or(RoleAccess::Denied);
            let new_access = is.map(|c| c.access_of(role)).unwrap_or(RoleAccess::Denied);
            if old_access == new_access {
                continue;
            }
            let table_for_search = new_table;
            let gain = counterexample::find(
                (new, &new_access),
                (old, &old_access),
                table_for_search,
                command,
                role,
            );
            let loss = match old_table {
                Some(t) => {
                    counterexample::find((old, &old_access), (new, &new_access), t, command, role)
                }
                None => None,
            };
            let has_unchecked = |a: &RoleAccess| match a {
                RoleAccess::Rows(cs) => cs.iter().any(|c| c.is_unchecked()),
                _ => false,
            };
            let (kind, effect) = match (&old_access, &new_access) {
                (RoleAccess::Denied, _) => (ChangeKind::RoleGainsCommand, Effect::Widens),
                (_, RoleAccess::Denied) => (ChangeKind::RoleLosesCommand, Effect::Narrows),
                _ => match (gain.is_some(), loss.is_some()) {
                    (true, true) => (ChangeKind::ConditionChanged, Effect::Widens),
                    (true, false) => (ChangeKind::ConditionLoosened, Effect::Widens),
                    (false, true) => (ChangeKind::ConditionTightened, Effect::Narrows),
                    (false, false) if has_unchecked(&new_access) => {
                        // Raw SQL could not be compared: fail closed.
                        (ChangeKind::ConditionChanged, Effect::Widens)
                    }
                    (false, false) => (ChangeKind::ConditionRewritten, Effect::Neutral),
                },
            };
            let text = format!(
                "was {}, now {}",
                access_words(&old_access),
                access_words(&new_access)
            );
            let witness = if effect == Effect::Widens { gain } else { None };
            match groups.iter_mut().find(|g| g.0 == kind && g.4 == text) {
                Some(group) => group.2.push(role.clone()),
                None => groups.push((kind, effect, vec![role.clone()], witness, text)),
            }
        }
        for (kind, effect, roles, witness, text) in groups {
            let who = roles.join(", ");
            let t = &after.table;
            let head = match kind {
                ChangeKind::RoleGainsCommand => format!("{who} may now {command} `{t}`"),
                ChangeKind::RoleLosesCommand => format!("{who} may no longer {command} `{t}`"),
                ChangeKind::ConditionLoosened => format!("{who} may {command} more rows of `{t}`"),
                ChangeKind::ConditionTightened => {
                    format!("{who} may {command} fewer rows of `{t}`")
                }
                ChangeKind::ConditionChanged => format!(
                    "{who} may {command} other rows of `{t}` (some gained, some lost, or raw SQL \
                     that cannot be compared)"
                ),
                _ => format!(
                    "{who}: the condition of {command} on `{t}` was rewritten and admits the same rows"
                ),
            };
            let mut c = change(effect, kind, format!("{head}: {text}"));
            c.table = Some(after.table.clone());
            c.command = Some(command);
            c.roles = roles;
            c.counterexample = witness;
            out.push(c);
        }
    }
}

/// In words: `refused`, `every row of the caller's projects`, `rows where ...`.
pub(crate) fn access_words(access: &RoleAccess) -> String {
    match access {
        RoleAccess::Denied => "refused".to_owned(),
        RoleAccess::AllRows => "every row of the caller's projects".to_owned(),
        RoleAccess::Rows(conditions) => format!(
            "rows where {}",
            conditions
                .iter()
                .map(|c| c.describe())
                .collect::<Vec<_>>()
                .join("; or where ")
        ),
    }
}

/// Columns that became writable (or not) by insert and update.
fn column_changes(
    new: &Model,
    before: &TableAccess,
    after: &TableAccess,
    out: &mut Vec<AccessChange>,
) {
    for (command, was, is) in [
        (
            Command::Insert,
            &before.insert_columns,
            &after.insert_columns,
        ),
        (
            Command::Update,
            &before.update_columns,
            &after.update_columns,
        ),
    ] {
        let before_granted = before.command(command).is_some_and(|c| c.granted);
        let after_granted = after.command(command).is_some_and(|c| c.granted);
        if !before_granted || !after_granted {
            // A command gained or lost as a whole is reported by the role changes.
            continue;
        }
        for column in is.iter().filter(|c| !was.contains(c)) {
            let new_column = !before.all_columns.contains(column);
            let mut c = if new_column {
                change(
                    Effect::Neutral,
                    ChangeKind::ColumnAdded,
                    format!(
                        "new column `{column}` of `{}` may be written by {command}",
                        after.table
                    ),
                )
            } else {
                change(
                    Effect::Widens,
                    ChangeKind::ColumnBecomesWritable,
                    format!(
                        "{command} may now write `{column}` of `{}` (before: the database wrote it or no caller could change it)",
                        after.table
                    ),
                )
            };
            c.table = Some(after.table.clone());
            c.command = Some(command);
            c.column = Some(column.clone());
            if !new_column {
                // The least role that reaches every row: a role limited by a condition may be
                // kept by its WITH CHECK from writing another value (`created_by =
                // current_user`); without such a role the counterexample is unverified.
                let entries = after
                    .command(command)
                    .map(|a| a.roles.as_slice())
                    .unwrap_or_default();
                let every_row = entries.iter().find(|e| e.access == RoleAccess::AllRows);
                let some_rows = entries.iter().find(|e| e.access != RoleAccess::Denied);
                let unverified = every_row.is_none();
                let role = every_row.or(some_rows).map(|e| e.role.clone());
                c.roles = role.iter().cloned().collect();
                let value = new
                    .table(&after.table)
                    .and_then(|t| t.column(column))
                    .map(|c| written_value(c.ty));
                c.counterexample = Some(Counterexample {
                    tenant_wide: false,
                    role,
                    row: value
                        .map(|v| BTreeMap::from([(column.clone(), v)]))
                        .unwrap_or_default(),
                    unverified,
                });
            }
            out.push(c);
        }
        if command == Command::Update {
            role_column_changes(new, before, after, out);
            role_read_changes(before, after, out);
        }
        for column in was.iter().filter(|c| !is.contains(c)) {
            let mut c = change(
                Effect::Narrows,
                ChangeKind::ColumnNoLongerWritable,
                format!(
                    "{command} may no longer write `{column}` of `{}`",
                    after.table
                ),
            );
            c.table = Some(after.table.clone());
            c.command = Some(command);
            c.column = Some(column.clone());
            out.push(c);
        }
    }
}

fn ceiling_changes(old: &AccessMatrix, new: &AccessMatrix, out: &mut Vec<AccessChange>) {
    for ceiling in &new.grant_ceilings {
        let before: Vec<String> = old
            .grant_ceilings
            .iter()
            .find(|c| c.role == ceiling.role)
            .map(|c| c.may_grant.clone())
            .unwrap_or_default();
        let gained: Vec<&String> = ceiling
            .may_grant
            .iter()
            .filter(|r| !before.contains(r))
            .collect();
        let lost: Vec<&String> = before
            .iter()
            .filter(|r| !ceiling.may_grant.contains(r))
            .collect();
        if !gained.is_empty() {
            let mut c = change(
                Effect::Widens,
                ChangeKind::GrantCeilingRises,
                format!(
                    "{} may now grant {}",
                    ceiling.role,
                    gained
                        .iter()
                        .map(|r| r.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            );
            c.roles = vec![ceiling.role.clone()];
            c.granted_role = gained.last().map(|r| (*r).clone());
            c.counterexample = Some(Counterexample {
                tenant_wide: false,
                role: Some(ceiling.role.clone()),
                row: Default::default(),
                unverified: false,
            });
            out.push(c);
        }
        if !lost.is_empty() {
            let mut c = change(
                Effect::Narrows,
                ChangeKind::GrantCeilingLowers,
                format!(
                    "{} may no longer grant {}",
                    ceiling.role,
                    lost.iter()
                        .map(|r| r.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            );
            c.roles = vec![ceiling.role.clone()];
            out.push(c);
        }
    }
}

/// A value a caller writes into a column that became writable, unlike what the database would
/// have written there (another user's id, a time long past).
fn written_value(ty: SqlType) -> Value {
    match ty {
        SqlType::Uuid => Value::OtherUserId,
        SqlType::Timestamptz => Value::Literal(Literal::String("2000-01-01 00:00:00+00".into())),
        SqlType::Date => Value::Literal(Literal::String("2000-01-01".into())),
        SqlType::SmallInt | SqlType::Integer | SqlType::BigInt => {
            Value::Literal(Literal::Integer(7))
        }
        SqlType::Boolean => Value::Literal(Literal::Bool(true)),
        _ => Value::Literal(Literal::String("written by the caller".into())),
    }
}

/// Column rights: the columns each role may update, where both models let it update.
fn role_column_changes(
    new: &Model,
    before: &TableAccess,
    after: &TableAccess,
    out: &mut Vec<AccessChange>,
) {
    let (Some(was), Some(is)) = (
        before.command(Command::Update),
        after.command(Command::Update),
    ) else {
        return;
    };
    for entry in &is.roles {
        let Some(old) = was.roles.iter().find(|e| e.role == entry.role) else {
            continue;
        };
        if old.access == RoleAccess::Denied || entry.access == RoleAccess::Denied {
            continue;
        }
        if old.update_columns.is_none() && entry.update_columns.is_none() {
            continue; // no column list on either side: the grant's changes say it all
        }
        let old_cols = old
            .update_columns
            .clone()
            .unwrap_or_else(|| before.update_columns.clone());
        let new_cols = entry
            .update_columns
            .clone()
            .unwrap_or_else(|| after.update_columns.clone());
        for column in new_cols.iter().filter(|c| !old_cols.contains(c)) {
            if !before.all_columns.contains(column) {
                continue; // a new column: reported once as neutral
            }
            let mut c = change(
                Effect::Widens,
                ChangeKind::ColumnBecomesWritable,
                format!(
                    "{} may now update `{column}` of `{}`",
                    entry.role, after.table
                ),
            );
            about(&mut c, &after.table, Command::Update, column, &entry.role);
            let value = new
                .table(&after.table)
                .and_then(|t| t.column(column))
                .map(|col| written_value(col.ty));
            c.counterexample = Some(Counterexample {
                tenant_wide: false,
                role: Some(entry.role.clone()),
                row: value
                    .map(|v| BTreeMap::from([(column.clone(), v)]))
                    .unwrap_or_default(),
                unverified: entry.access != RoleAccess::AllRows,
            });
            out.push(c);
        }
        for column in old_cols.iter().filter(|c| !new_cols.contains(c)) {
            if !after.all_columns.contains(column) {
                continue;
            }
            let mut c = change(
                Effect::Narrows,
                ChangeKind::ColumnNoLongerWritable,
                format!(
                    "{} may no longer update `{column}` of `{}`",
                    entry.role, after.table
                ),
            );
            about(&mut c, &after.table, Command::Update, column, &entry.role);
            out.push(c);
        }
    }
}

/// Read rights per column: the columns each role reads, where both models let it select.
fn role_read_changes(before: &TableAccess, after: &TableAccess, out: &mut Vec<AccessChange>) {
    let (Some(was), Some(is)) = (
        before.command(Command::Select),
        after.command(Command::Select),
    ) else {
        return;
    };
    for entry in &is.roles {
        let Some(old) = was.roles.iter().find(|e| e.role == entry.role) else {
            continue;
        };
        if old.access == RoleAccess::Denied || entry.access == RoleAccess::Denied {
            continue;
        }
        let old_cols = old
            .read_columns
            .clone()
            .unwrap_or_else(|| before.all_columns.clone());
        let new_cols = entry
            .read_columns
            .clone()
            .unwrap_or_else(|| after.all_columns.clone());
        let gained = new_cols
            .iter()
            .filter(|c| !old_cols.contains(c) && before.all_columns.contains(c));
        for column in gained {
            let text = format!(
                "{} may now read `{column}` of `{}`",
                entry.role, after.table
            );
            let mut c = change(Effect::Widens, ChangeKind::ColumnBecomesReadable, text);
            about(&mut c, &after.table, Command::Select, column, &entry.role);
            c.counterexample = Some(Counterexample {
                tenant_wide: false,
                role: Some(entry.role.clone()),
                row: BTreeMap::new(),
                unverified: entry.access != RoleAccess::AllRows,
            });
            out.push(c);
        }
        let lost = old_cols
            .iter()
            .filter(|c| !new_cols.contains(c) && after.all_columns.contains(c));
        for column in lost {
            let text = format!(
                "{} may no longer read `{column}` of `{}`",
                entry.role, after.table
            );
            let mut c = change(Effect::Narrows, ChangeKind::ColumnNoLongerReadable, text);
            about(&mut c, &after.table, Command::Select, column, &entry.role);
            out.push(c);
        }
    }
}

/// Marks `c` as about `column` of `table` under `command`, for `role`.
fn about(c: &mut AccessChange, table: &str, command: Command, column: &str, role: &str) {
    c.table = Some(table.to_owned());
    c.command = Some(command);
    c.column = Some(column.to_owned());
    c.roles = vec![role.to_owned()];
}
