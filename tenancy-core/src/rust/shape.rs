//! What the repository of one table looks like: which columns go where, which methods exist.
//!
//! Every decision the emitter makes about a table is taken here, in one place, so the SQL
//! and the Rust signatures agree.

use crate::model::{
    Column, Command, IndexMethod, Model, SqlType, Table, TableKind, ID_COLUMN, PROJECT_COLUMN,
    ROLE_COLUMN, USER_COLUMN,
};

use super::naming::TypeNames;
use super::types::is_filterable;

/// The generated shape of one table's repository.
#[derive(Debug, Clone)]
pub(crate) struct Shape<'m> {
    /// The model the table belongs to.
    pub model: &'m Model,
    /// The table.
    pub table: &'m Table,
    /// Rust type names.
    pub names: TypeNames,
    /// Every column as created (generated columns first).
    pub columns: Vec<Column>,
    /// The column compared with the scope's tenant (`id` on the tenants table).
    pub tenant_column: &'static str,
    /// The column compared with the scope's projects (`id` on projects, none on tenants).
    pub project_column: Option<&'static str>,
    /// Key columns a caller passes to `get` (empty: the scope itself names the row).
    pub read_key: Vec<Column>,
    /// Key columns a caller passes to `update`/`delete` (empty: the write scope names the row).
    pub write_key: Vec<Column>,
    /// Columns of the keyset pagination order; empty when the table has no `list`.
    pub cursor: Vec<Column>,
    /// Columns of the insert input (never the scope columns).
    pub new_columns: Vec<Column>,
    /// Columns with an equality filter in `list`/`count`.
    pub filter_columns: Vec<Column>,
    /// The update methods, least role first: `update` with `<Row>Patch`, then, when column
    /// lists give higher roles more columns, `update_as_<role>` with `<Row><Role>Patch`.
    pub update_tiers: Vec<UpdateTier>,
    /// The masked columns (`allow select (..) to role`): not in the row type, never named by
    /// a statement on the table; read through the masked view by `get_as_<role>`.
    pub masked: Vec<Column>,
    /// The read methods beyond `get`, one per role whose select rules read more columns than
    /// the roles below it: `get_as_<role>` returning `<Row><Role>View`.
    pub read_tiers: Vec<ReadTier>,
    /// Set on the shape of a read tier: the tier's role and the masked view it reads.
    pub tier: Option<TierSource>,
}

/// One raised read method: the role it requires and the columns its row type holds.
#[derive(Debug, Clone)]
pub(crate) struct ReadTier {
    /// The least role of the method.
    pub role: String,
    /// The columns the role reads on every row of its projects, in column order.
    pub columns: Vec<Column>,
}

impl ReadTier {
    /// The row type's name: `<Row><Role>View`.
    pub(crate) fn row(&self, names: &TypeNames) -> String {
        format!("{}{}View", names.row, super::naming::camel_case(&self.role))
    }
}

/// Where the shape of a read tier reads from.
#[derive(Debug, Clone)]
pub(crate) struct TierSource {
    /// The tier's role (`get_as_<role>`).
    pub role: String,
    /// The masked view, schema-qualified and quoted.
    pub view_sql: String,
}

/// One update method: the role it requires and the columns its patch may change.
#[derive(Debug, Clone)]
pub(crate) struct UpdateTier {
    /// The least role of the method.
    pub role: String,
    /// The columns its patch holds (those the role's rules cover), in column order.
    pub columns: Vec<Column>,
    /// False for the first (plain `update`) method.
    pub raised: bool,
}

impl UpdateTier {
    /// The method's name: `update`, or `update_as_<role>`.
    pub(crate) fn method(&self) -> String {
        if self.raised {
            format!("update_as_{}", self.role)
        } else {
            "update".to_owned()
        }
    }

    /// The patch type's name: `<Row>Patch`, or `<Row><Role>Patch`.
    pub(crate) fn patch(&self, names: &TypeNames) -> String {
        if self.raised {
            format!(
                "{}{}Patch",
                names.row,
                super::naming::camel_case(&self.role)
            )
        } else {
            names.patch()
        }
    }

    /// The SQL constant's name: `UPDATE_SQL`, or `UPDATE_AS_<ROLE>_SQL`.
    pub(crate) fn sql_const(&self) -> String {
        if self.raised {
            format!("UPDATE_AS_{}_SQL", self.role.to_uppercase())
        } else {
            "UPDATE_SQL".to_owned()
        }
    }
}

impl<'m> Shape<'m> {
    /// Works out the shape of `table`, or `None` for a table without a repository (global
    /// tables, and tables without any rule).
    pub(crate) fn of(model: &'m Model, table: &'m Table) -> Option<Shape<'m>> {
        let scope = table.scope_columns()?;
        if table.rules.is_empty() {
            return None;
        }
        let columns = table.all_columns();
        let pick = |names: &[String]| -> Vec<Column> {
            names
                .iter()
                .filter_map(|n| columns.iter().find(|c| &c.name == n).cloned())
                .collect()
        };
        let lookup = pick(&table.lookup_key());
        let (read_key, write_key, cursor) = match table.kind {
            TableKind::Tenants => (vec![], vec![], vec![]),
            TableKind::Projects => {
                let id = pick(&[ID_COLUMN.to_owned()]);
                (id.clone(), vec![], id)
            }
            _ => {
                let mut cursor = pick(&[PROJECT_COLUMN.to_owned()]);
                cursor.extend(lookup.iter().cloned());
                (lookup.clone(), lookup, cursor)
            }
        };
        let scope_names = [Some(scope.tenant), scope.project];
        let is_scope = |c: &Column| scope_names.contains(&Some(c.name.as_str()));
        // Stamped columns are the database's to fill: never in an insert or a patch.
        let new_columns = columns
            .iter()
            .filter(|c| !is_scope(c) && c.stamp.is_none())
            .cloned()
            .collect();
        let primary_key = table.effective_primary_key();
        let patch_columns: Vec<Column> = columns
            .iter()
            .filter(|c| !is_scope(c) && !primary_key.contains(&c.name) && c.stamp.is_none())
            .cloned()
            .collect();
        let masked = table.masked_columns();
        let is_masked = |c: &Column| masked.iter().any(|m| m.name == c.name);
        // A masked column is never a filter: the app role cannot name it in a WHERE.
        let filter_columns = filter_columns(table, &columns)
            .into_iter()
            .filter(|c| !is_masked(c))
            .collect();
        let update_tiers = update_tiers(model, table, &patch_columns);
        let read_tiers = read_tiers(model, table, &columns, &masked);
        let columns: Vec<Column> = columns.iter().filter(|c| !is_masked(c)).cloned().collect();
        Some(Shape {
            model,
            table,
            names: TypeNames::for_table(&table.name),
            columns,
            tenant_column: scope.tenant,
            project_column: scope.project,
            read_key,
            write_key,
            cursor,
            new_columns,
            filter_columns,
            update_tiers,
            masked,
            read_tiers,
            tier: None,
        })
    }

    /// The shape `get_as_<role>` of `tier` is emitted from: the tier's columns and row type,
    /// reading the masked view.
    pub(crate) fn for_read_tier(&self, tier: &ReadTier) -> Shape<'m> {
        let mut shape = self.clone();
        shape.names.row = tier.row(&self.names);
        shape.columns = tier.columns.clone();
        shape.tier = Some(TierSource {
            role: tier.role.clone(),
            view_sql: format!(
                "{}.{}",
                super::naming::sql_ident(&self.model.settings.helper_schema),
                super::naming::sql_ident(&crate::sql::masked_view_name(self.table))
            ),
        });
        shape
    }

    /// True when `column` is masked (read only through the masked view).
    pub(crate) fn is_masked(&self, column: &Column) -> bool {
        self.masked.iter().any(|m| m.name == column.name)
    }

    /// The minimum role of `command`'s rule, when the repository has a method for it.
    ///
    /// Tenants and projects are created by onboarding code (a `SystemTx`), never through a
    /// scope, so they get no `insert` even when a rule allows it; an update without
    /// updatable columns is omitted too.
    pub(crate) fn method_role(&self, command: Command) -> Option<&'m str> {
        let role = self.table.rule(command)?;
        let available = match command {
            Command::Select | Command::Delete => true,
            Command::Insert => matches!(
                self.table.kind,
                TableKind::Scoped | TableKind::Memberships | TableKind::TenantMemberships
            ),
            Command::Update => !self.update_tiers.is_empty(),
        };
        available.then_some(role)
    }

    /// True when the table has `list`/`count` (every repository but the tenants table's,
    /// which holds exactly one row per scope).
    pub(crate) fn has_list(&self) -> bool {
        !self.cursor.is_empty()
    }

    /// True when the key type is a generated `<Row>Key` struct.
    pub(crate) fn has_key_struct(&self) -> bool {
        self.read_key.len() > 1 || self.write_key.len() > 1
    }

    /// The key columns of the struct `<Row>Key` (the longer of the read and write keys).
    pub(crate) fn key_struct_columns(&self) -> &[Column] {
        if self.read_key.len() >= self.write_key.len() {
            &self.read_key
        } else {
            &self.write_key
        }
    }

    /// True for the memberships table (its role column uses the generated `ProjectRole`).
    pub(crate) fn is_memberships(&self) -> bool {
        self.table.kind == TableKind::Memberships
    }
}

/// The update methods of `table` (see [`Shape::update_tiers`]): without column lists one
/// method of the least update role over every patch column; with them, one per role whose
/// rules cover more columns than the roles below it.
fn update_tiers(model: &Model, table: &Table, patch_columns: &[Column]) -> Vec<UpdateTier> {
    let rules = table.rules_for(Command::Update);
    let Some(lowest) = rules.first() else {
        return Vec::new();
    };
    if patch_columns.is_empty() {
        return Vec::new();
    }
    if !table.has_column_rights() {
        return vec![UpdateTier {
            role: lowest.min_role.clone(),
            columns: patch_columns.to_vec(),
            raised: false,
        }];
    }
    let rank = |role: &str| model.role_rank(role).unwrap_or(0);
    let mut roles: Vec<&str> = rules.iter().map(|r| r.min_role.as_str()).collect();
    roles.sort_by_key(|r| rank(r));
    roles.dedup();
    let mut tiers: Vec<UpdateTier> = Vec::new();
    for role in roles {
        let columns: Vec<Column> = patch_columns
            .iter()
            .filter(|c| {
                rules.iter().any(|r| {
                    rank(&r.min_role) <= rank(role)
                        && r.columns.as_ref().is_none_or(|l| l.contains(&c.name))
                })
            })
            .cloned()
            .collect();
        let grows = match tiers.last() {
            Some(previous) => columns.len() > previous.columns.len(),
            None => !columns.is_empty(),
        };
        if grows {
            tiers.push(UpdateTier {
                role: role.to_owned(),
                raised: !tiers.is_empty(),
                columns,
            });
        }
    }
    tiers
}

/// The raised read methods of `table` (see [`Shape::read_tiers`]): for each role of the
/// unconditioned `select` rules, least first, the columns those rules up to it read, when
/// they include masked columns the roles below do not read.
fn read_tiers(
    model: &Model,
    table: &Table,
    columns: &[Column],
    masked: &[Column],
) -> Vec<ReadTier> {
    if masked.is_empty() {
        return Vec::new();
    }
    let rank = |role: &str| model.role_rank(role).unwrap_or(0);
    let rules: Vec<&crate::model::Rule> = table
        .rules_for(Command::Select)
        .into_iter()
        .filter(|r| r.condition.is_none())
        .collect();
    let mut roles: Vec<&str> = rules.iter().map(|r| r.min_role.as_str()).collect();
    roles.sort_by_key(|r| rank(r));
    roles.dedup();
    let base = columns.len() - masked.len();
    let mut tiers: Vec<ReadTier> = Vec::new();
    for role in roles {
        let readable: Vec<Column> = columns
            .iter()
            .filter(|c| {
                rules
                    .iter()
                    .any(|r| rank(&r.min_role) <= rank(role) && table.rule_reads(r, &c.name))
            })
            .cloned()
            .collect();
        let previous = tiers.last().map_or(base, |t| t.columns.len());
        if readable.len() > previous {
            tiers.push(ReadTier {
                role: role.to_owned(),
                columns: readable,
            });
        }
    }
    tiers
}

/// Equality filters: the project column of project-owned tables, then every column that
/// leads or belongs to a declared btree index, unique key or foreign key, and on the
/// memberships table the user and the role. Kept in column order.
fn filter_columns(table: &Table, columns: &[Column]) -> Vec<Column> {
    let mut wanted: Vec<&str> = Vec::new();
    if matches!(table.kind, TableKind::Scoped | TableKind::Memberships) {
        wanted.push(PROJECT_COLUMN);
    }
    if table.kind == TableKind::Memberships {
        wanted.extend([USER_COLUMN, ROLE_COLUMN]);
    }
    if table.kind == TableKind::TenantMemberships {
        wanted.push(ROLE_COLUMN);
    }
    for index in &table.indexes {
        if index.method == IndexMethod::BTree {
            wanted.extend(index.columns.iter().map(String::as_str));
        }
    }
    for key in &table.unique_keys {
        wanted.extend(key.iter().map(String::as_str));
    }
    for fk in &table.foreign_keys {
        wanted.extend(fk.columns.iter().map(String::as_str));
    }
    columns
        .iter()
        .filter(|c| wanted.contains(&c.name.as_str()) && is_filterable(c.ty))
        .filter(|c| {
            c.ty != SqlType::Role
                || matches!(
                    table.kind,
                    TableKind::Memberships | TableKind::TenantMemberships
                )
        })
        .cloned()
        .collect()
}
