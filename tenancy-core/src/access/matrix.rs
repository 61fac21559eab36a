//! The access matrix of a model: for every table and command, what each role may do (every
//! row of its projects, the rows where a condition holds, or nothing), which columns the app
//! role may write, and which roles each role may grant.
//!
//! Column rights (`allow update (a, b) to r`) restrict what a role may update:
//! [`RoleEntry::update_columns`]; [`TableAccess::update_columns`] is the app role's grant.

use serde::Serialize;

use crate::condition::{Condition, Stamp};
use crate::model::{Command, Model, Table, TableKind};
use crate::sql::{granted_commands, granted_update_columns};

/// Who may do what in one model.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AccessMatrix {
    /// Roles, least to most privileged.
    pub roles: Vec<String>,
    /// The app role every request runs as.
    pub app_role: String,
    /// Every table, in dependency order (core tables first).
    pub tables: Vec<TableAccess>,
    /// For every role, the roles it may give to members (insert or update of a membership).
    pub grant_ceilings: Vec<GrantCeiling>,
}

/// The access to one table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TableAccess {
    /// Table name.
    pub table: String,
    /// Core, scoped or global.
    pub kind: TableKind,
    /// Every column of the table as created, in order.
    pub all_columns: Vec<String>,
    /// The four commands, in canonical order.
    pub commands: Vec<CommandAccess>,
    /// Columns an INSERT may name (empty when inserts are denied); stamped columns are
    /// replaced by the database whatever the caller writes.
    pub insert_columns: Vec<String>,
    /// Columns the app role's UPDATE grant covers (empty when updates are denied); a role may
    /// be held to fewer ([`RoleEntry::update_columns`]).
    pub update_columns: Vec<String>,
    /// Columns the database fills.
    pub stamped: Vec<StampedColumn>,
    /// Masked columns (`allow select (..)`): the app role cannot select them on the table;
    /// the masked view shows them where a covering select rule admits the caller.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub masked_columns: Vec<String>,
}

/// A column the database writes (`= current_user on insert`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StampedColumn {
    /// Column name.
    pub column: String,
    /// What and when.
    pub stamp: Stamp,
}

/// One command of one table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CommandAccess {
    /// The command.
    pub command: Command,
    /// True when the app role holds the grant (some rule allows the command).
    pub granted: bool,
    /// Global tables: every caller of the app role may run it, on every row.
    pub every_caller: bool,
    /// Memberships `select`: every user also reads their own membership rows.
    pub own_memberships: bool,
    /// What each role may do, least privileged first (empty for global tables).
    pub roles: Vec<RoleEntry>,
    /// Some rule of the command is raw SQL the generator did not check.
    pub unchecked: bool,
}

/// One role's access to one command of one table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RoleEntry {
    /// The role.
    pub role: String,
    /// What it may do.
    pub access: RoleAccess,
    /// For `update`: the columns this role may change when its rules name them
    /// (`allow update (a, b) to r`); `None`: every column the update grant covers.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub update_columns: Option<Vec<String>>,
    /// For `select`: the columns this role reads when select rules mask columns from it
    /// (`allow select (a, b) to r`); `None`: every column.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub read_columns: Option<Vec<String>>,
}

/// What a role may do with a command, on the rows of its own projects.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "kind", content = "conditions")]
pub enum RoleAccess {
    /// Nothing.
    Denied,
    /// Every row of the caller's projects.
    AllRows,
    /// The rows where at least one of these conditions holds.
    Rows(Vec<Condition>),
}

/// The roles a role may give to members of its projects (the role ceiling: never above its
/// own).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct GrantCeiling {
    /// The granting role.
    pub role: String,
    /// Roles it may insert or set on a membership row, least privileged first.
    pub may_grant: Vec<String>,
    /// True when the membership rule it uses has a row condition (some grants are refused).
    pub conditional: bool,
}

impl AccessMatrix {
    /// The matrix of `model`.
    pub fn of(model: &Model) -> AccessMatrix {
        let tables: Vec<TableAccess> = model
            .tables_in_dependency_order()
            .into_iter()
            .map(|t| TableAccess::of(model, t))
            .collect();
        let grant_ceilings = grant_ceilings(model, &tables);
        AccessMatrix {
            roles: model.roles.clone(),
            app_role: model.settings.app_role.clone(),
            tables,
            grant_ceilings,
        }
    }

    /// The access of `table`, when the model has it.
    pub fn table(&self, name: &str) -> Option<&TableAccess> {
        self.tables.iter().find(|t| t.table == name)
    }
}

impl TableAccess {
    /// The access to `table` of `model`.
    pub fn of(model: &Model, table: &Table) -> TableAccess {
        let granted = granted_commands(table);
        let commands = Command::ALL
            .into_iter()
            .map(|command| CommandAccess::of(model, table, command, granted.contains(&command)))
            .collect();
        let stamped: Vec<StampedColumn> = table
            .stamped_columns()
            .into_iter()
            .filter_map(|c| {
                c.stamp.map(|stamp| StampedColumn {
                    column: c.name.clone(),
                    stamp,
                })
            })
            .collect();
        let insert_columns = if granted.contains(&Command::Insert) {
            table
                .all_columns()
                .into_iter()
                .map(|c| c.name)
                .filter(|c| !stamped.iter().any(|s| &s.column == c))
                .collect()
        } else {
            Vec::new()
        };
        let update_columns = if granted.contains(&Command::Update) {
            granted_update_columns(table)
        } else {
            Vec::new()
        };
        TableAccess {
            table: table.name.clone(),
            kind: table.kind,
            all_columns: table.all_columns().into_iter().map(|c| c.name).collect(),
            commands,
            insert_columns,
            update_columns,
            stamped,
            masked_columns: table.masked_columns().into_iter().map(|c| c.name).collect(),
        }
    }

    /// The access of `command`.
    pub fn command(&self, command: Command) -> Option<&CommandAccess> {
        self.commands.iter().find(|c| c.command == command)
    }
}

impl CommandAccess {
    fn of(model: &Model, table: &Table, command: Command, granted: bool) -> CommandAccess {
        let global = table.kind == TableKind::Global;
        let roles = if global {
            Vec::new()
        } else {
            model
                .roles
                .iter()
                .enumerate()
                .map(|(rank, role)| RoleEntry {
                    role: role.clone(),
                    access: role_access(model, table, command, rank),
                    update_columns: role_update_columns(model, table, command, rank),
                    read_columns: role_read_columns(model, table, command, rank),
                })
                .collect()
        };
        CommandAccess {
            command,
            granted,
            every_caller: global && granted,
            own_memberships: matches!(
                table.kind,
                TableKind::Memberships | TableKind::TenantMemberships
            ) && command == Command::Select,
            roles,
            unchecked: table
                .rules_for(command)
                .iter()
                .any(|r| r.condition.as_ref().is_some_and(Condition::is_unchecked)),
        }
    }

    /// The access of `role` (denied for a role the matrix does not know).
    pub fn access_of(&self, role: &str) -> RoleAccess {
        self.roles
            .iter()
            .find(|e| e.role == role)
            .map(|e| e.access.clone())
            .unwrap_or(RoleAccess::Denied)
    }
}

/// The columns the role at `rank` may update when every update rule it reaches names its
/// columns (column rights): their union, in table column order; `None` otherwise.
fn role_update_columns(
    model: &Model,
    table: &Table,
    command: Command,
    rank: usize,
) -> Option<Vec<String>> {
    if command != Command::Update {
        return None;
    }
    let reached: Vec<_> = table
        .rules_for(command)
        .into_iter()
        .filter(|r| model.role_rank(&r.min_role).is_some_and(|min| min <= rank))
        .collect();
    if reached.is_empty() || reached.iter().any(|r| r.columns.is_none()) {
        return None;
    }
    let named: Vec<&String> = reached
        .iter()
        .filter_map(|r| r.columns.as_ref())
        .flatten()
        .collect();
    Some(
        granted_update_columns(table)
            .into_iter()
            .filter(|c| named.contains(&c))
            .collect(),
    )
}

/// The columns the role at `rank` reads (on some row) when select rules mask columns from
/// it: those a reached select rule covers, in table column order; `None` when it reads every
/// column (or no row at all).
fn role_read_columns(
    model: &Model,
    table: &Table,
    command: Command,
    rank: usize,
) -> Option<Vec<String>> {
    if command != Command::Select || table.masked_columns().is_empty() {
        return None;
    }
    let reached: Vec<_> = table
        .rules_for(command)
        .into_iter()
        .filter(|r| model.role_rank(&r.min_role).is_some_and(|min| min <= rank))
        .collect();
    if reached.is_empty() {
        return None;
    }
    let all: Vec<String> = table.all_columns().into_iter().map(|c| c.name).collect();
    let read: Vec<String> = all
        .iter()
        .filter(|c| reached.iter().any(|r| table.rule_reads(r, c)))
        .cloned()
        .collect();
    (read.len() < all.len()).then_some(read)
}

/// What the role at `rank` may do: the union of the rules whose least role it reaches.
fn role_access(model: &Model, table: &Table, command: Command, rank: usize) -> RoleAccess {
    let mut conditions = Vec::new();
    for rule in table.rules_for(command) {
        let reaches = model
            .role_rank(&rule.min_role)
            .is_some_and(|min| min <= rank);
        if !reaches {
            continue;
        }
        match &rule.condition {
            None => return RoleAccess::AllRows,
            Some(condition) => conditions.push(condition.clone()),
        }
    }
    if conditions.is_empty() {
        RoleAccess::Denied
    } else {
        RoleAccess::Rows(conditions)
    }
}

/// The role ceiling (docs/security.md, "Authority inside the database"): a role that may
/// insert or update memberships gives roles up to its own.
fn grant_ceilings(model: &Model, tables: &[TableAccess]) -> Vec<GrantCeiling> {
    let memberships = tables.iter().find(|t| t.kind == TableKind::Memberships);
    model
        .roles
        .iter()
        .enumerate()
        .map(|(rank, role)| {
            let accesses: Vec<RoleAccess> = [Command::Insert, Command::Update]
                .into_iter()
                .filter_map(|c| memberships.and_then(|t| t.command(c)))
                .map(|c| c.access_of(role))
                .collect();
            let may = accesses.iter().any(|a| *a != RoleAccess::Denied);
            GrantCeiling {
                role: role.clone(),
                may_grant: if may {
                    model.roles[..=rank].to_vec()
                } else {
                    Vec::new()
                },
                conditional: may && !accesses.contains(&RoleAccess::AllRows),
            }
        })
        .collect()
}
