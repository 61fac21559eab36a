//! Incremental migrations: the SQL that takes a database created for one model (the
//! committed snapshot) to another (the current policies), and nothing else.
//!
//! [`incremental_migrations`] compares two validated models and returns zero, one or two
//! migrations:
//!
//! - none when the difference changes no database object (documentation, column order);
//! - a roles migration first when roles were added: `ALTER TYPE ... ADD VALUE` may run in a
//!   transaction, but the new value cannot be used until that transaction commits, so the
//!   policies that name the new role go into the next file (every file is its own
//!   transaction);
//! - one migration with every other change, in an order where each statement's dependencies
//!   exist: drops first (policies, foreign keys, unique keys, indexes, tables, columns), then
//!   column changes, new columns, new unique keys, new tables (their full section, as in
//!   `0002_tables.sql`), new foreign keys and indexes, new policies and the refreshed grants.
//!
//! Changes the generator cannot make safely are refused with a [`DiffError`] that says what to
//! do instead: changed settings, a removed or reordered role, a changed table kind or primary
//! key, a changed column type, a new `NOT NULL` column without a default, and anything that
//! destroys data (a dropped table or column) unless [`DiffOptions::allow_data_loss`] is set.
//!
//! Indexes are created with a plain `CREATE INDEX` inside the migration's transaction, so a
//! failed migration leaves nothing behind. `CREATE INDEX CONCURRENTLY` cannot run in a
//! transaction and leaves an invalid index when it fails; see `docs/migrations.md` for
//! building a big index ahead of the migration.

use std::collections::BTreeMap;

use super::citus::CitusConstraint;
use super::ident::{ident, literal};
use super::tables::{column_definition, constraints, create_index_statement, table_section};
use super::{file_header, security, tables, Target};
use crate::model::{Column, Command, Model, SqlType, Table, TableKind, ROLE_TYPE};

/// What the caller allows an incremental migration to do.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DiffOptions {
    /// Generate `DROP TABLE` / `DROP COLUMN` for tables and columns removed from the
    /// policies (their data is lost). Without it such a change is refused.
    pub allow_data_loss: bool,
}

/// One incremental migration, before it is numbered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IncrementalMigration {
    /// Short file-name slug (`add_documents_summary`), `[a-z0-9_]`.
    pub slug: String,
    /// The one-line description of each change, in order.
    pub changes: Vec<String>,
    /// The file's full text.
    pub contents: String,
}

/// A change between two models that the generator refuses to turn into a migration.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DiffError {
    /// The `tenancy { ... }` settings (role names, helper schema) changed.
    #[error(
        "the tenancy settings (owner_role, app_role, helper_schema) changed since the last \
         migration, which an incremental migration cannot do; restore them"
    )]
    SettingsChanged,
    /// A role was removed or renamed.
    #[error(
        "role `{role}` was removed, but PostgreSQL cannot drop a value of the role enum and \
         memberships may still hold it; keep the role (it may stay unused)"
    )]
    RoleRemoved {
        /// The removed role.
        role: String,
    },
    /// The order of existing roles changed.
    #[error(
        "the order of the existing roles changed ({old} became {new}), which would silently \
         change every member's privileges; keep the order and only insert new roles"
    )]
    RolesReordered {
        /// The previous order.
        old: String,
        /// The new order.
        new: String,
    },
    /// A core table (tenants, projects, memberships) was added, removed or renamed.
    #[error("core table `{table}` was added, removed or renamed, which an incremental migration cannot do")]
    CoreTableChanged {
        /// The table.
        table: String,
    },
    /// A table changed kind (scoped/global).
    #[error("table `{table}` changed from {from} to {to}; create a new table instead")]
    TableKindChanged {
        /// The table.
        table: String,
        /// The previous kind keyword.
        from: &'static str,
        /// The new kind keyword.
        to: &'static str,
    },
    /// A table's primary key changed.
    #[error("the primary key of table `{table}` changed, which an incremental migration cannot do; create a new table instead")]
    PrimaryKeyChanged {
        /// The table.
        table: String,
    },
    /// A column changed type.
    #[error(
        "column `{table}.{column}` changed type from {from} to {to}, which the generator \
         does not convert; add a new column instead"
    )]
    ColumnTypeChanged {
        /// The table.
        table: String,
        /// The column.
        column: String,
        /// The previous type.
        from: String,
        /// The new type.
        to: String,
    },
    /// A new NOT NULL column has no default.
    #[error(
        "new column `{table}.{column}` is NOT NULL without a default, which fails on a table \
         that has rows; give it a default (`{column} {ty} default ...`) or make it nullable \
         (`{column} {ty}?`)"
    )]
    NotNullWithoutDefault {
        /// The table.
        table: String,
        /// The column.
        column: String,
        /// The column's DSL type.
        ty: String,
    },
    /// A table adopts an existing one after the baseline was generated.
    #[error(
        "table `{table}` adopts an existing table, but adoption is part of the first \
         migrations only (those are already generated); adopt it in a new project or \
         write the migration by hand"
    )]
    AdoptionAdded {
        /// The adopting table.
        table: String,
    },
    /// A table or column was removed and data loss was not allowed.
    #[error(
        "{what} was removed from the policies, which deletes its data; generate with \
         `--allow-data-loss` to drop it, or restore it"
    )]
    DataLoss {
        /// `table `x`` or `column `x.y``.
        what: String,
    },
}

/// The statements of one migration, gathered by phase so dependencies come first.
#[derive(Default)]
struct Plan {
    /// (slug, description, counts for the file name).
    changes: Vec<(String, String, bool)>,
    extension: String,
    reader_roles: String,
    drop_policies: String,
    drop_foreign_keys: String,
    drop_unique_keys: String,
    drop_indexes: String,
    drop_tables: String,
    drop_columns: String,
    alter_columns: String,
    add_columns: String,
    add_unique_keys: String,
    create_tables: String,
    add_foreign_keys: String,
    create_indexes: String,
    create_policies: String,
    grants: String,
}

impl Plan {
    /// Records a change: its slug (for the file name) and its description (for the header).
    fn change(&mut self, slug: String, description: String) {
        self.changes.push((slug, description, true));
    }

    /// Records a change that follows from others (refreshed grants): described in the
    /// header, named in the file name only when it is the only change.
    fn consequence(&mut self, slug: String, description: String) {
        self.changes.push((slug, description, false));
    }

    fn body(&self) -> String {
        [
            &self.extension,
            &self.reader_roles,
            &self.drop_policies,
            &self.drop_foreign_keys,
            &self.drop_unique_keys,
            &self.drop_indexes,
            &self.drop_tables,
            &self.drop_columns,
            &self.alter_columns,
            &self.add_columns,
            &self.add_unique_keys,
            &self.create_tables,
            &self.add_foreign_keys,
            &self.create_indexes,
            &self.create_policies,
            &self.grants,
        ]
        .into_iter()
        .map(String::as_str)
        .collect()
    }
}

/// The migrations that take a database created for `old` to `new` (see the module docs).
pub fn incremental_migrations(
    old: &Model,
    new: &Model,
    target: Target,
    options: DiffOptions,
) -> Result<Vec<IncrementalMigration>, DiffError> {
    if !old.settings.same_database(&new.settings) {
        return Err(DiffError::SettingsChanged);
    }
    let mut out = Vec::new();
    if let Some(roles) = roles_migration(old, new, target)? {
        out.push(roles);
    }

    check_adoption(old, new)?;
    let mut plan = Plan::default();
    check_core_tables(old, new)?;
    diff_extension(old, new, &mut plan);
    if !super::vector_settings::uses_settings(old) && super::vector_settings::uses_settings(new) {
        plan.change(
            "vector_settings".to_owned(),
            "vector settings table created (first `per tenant` vector column)".to_owned(),
        );
        plan.extension
            .push_str(&super::vector_settings::settings_section(new, target));
    }

    // Tables removed, in reverse dependency order of the old model.
    let removed: Vec<&Table> = old
        .tables_in_dependency_order()
        .into_iter()
        .rev()
        .filter(|t| new.table(&t.name).is_none())
        .collect();
    for table in removed {
        if !options.allow_data_loss {
            return Err(DiffError::DataLoss {
                what: format!("table `{}`", table.name),
            });
        }
        plan.change(
            format!("drop_{}", table.name),
            format!("{}: table dropped (its rows are deleted)", table.name),
        );
        plan.drop_tables.push_str(&format!(
            "\n-- DATA LOSS: {} was removed from the policies; its rows are deleted.\n\
             {}DROP TABLE {};\n",
            table.name,
            if table.masked_columns().is_empty() {
                String::new()
            } else {
                super::masked::drop_masked_view(old, table)
            },
            ident(&table.name)
        ));
    }

    let mut created = Vec::new();
    for table in new.tables_in_dependency_order() {
        match old.table(&table.name) {
            None => {
                created.push(table);
                plan.change(
                    format!("create_{}", table.name),
                    format!("{}: new {} table", table.name, table.kind.keyword()),
                );
                plan.create_tables
                    .push_str(&table_section(new, table, target));
                plan.create_tables
                    .push_str(&security::security_section(new, table, target));
                plan.create_tables
                    .push_str(&super::statistics::statistics_section(
                        table,
                        &ident(&table.name),
                    ));
            }
            Some(previous) => diff_table(old, previous, new, table, target, options, &mut plan)?,
        }
    }
    if target == Target::Citus && !created.is_empty() {
        plan.create_tables
            .push_str(&super::citus::new_tables_distribution(new, &created));
    }

    if !plan.changes.is_empty() {
        out.push(render(new, target, &plan, &plan.body()));
    }
    Ok(out)
}

/// Builds the migration text and slug of `plan`.
fn render(model: &Model, target: Target, plan: &Plan, body: &str) -> IncrementalMigration {
    let descriptions: Vec<String> = plan.changes.iter().map(|(_, d, _)| d.clone()).collect();
    let mut slugs: Vec<&str> = plan
        .changes
        .iter()
        .filter(|(_, _, named)| *named)
        .map(|(s, _, _)| s.as_str())
        .collect();
    if slugs.is_empty() {
        slugs = plan.changes.iter().map(|(s, _, _)| s.as_str()).collect();
    }
    let mut contents = file_header(
        "Incremental migration: only what changed in the policies since the previous one.",
        target,
        &model.settings.helper_schema,
    );
    contents.push_str("--\n-- Changes:\n");
    for description in &descriptions {
        contents.push_str(&format!("--   * {description}\n"));
    }
    if target == Target::Citus {
        contents.push_str(&super::citus::migration_settings());
    }
    contents.push_str(body);
    IncrementalMigration {
        slug: slug_of(&slugs),
        changes: descriptions,
        contents,
    }
}

/// `first_slug`, or `first_slug_and_N_more`, fitted for a file name.
fn slug_of(slugs: &[&str]) -> String {
    let first: String = slugs
        .first()
        .copied()
        .unwrap_or("changes")
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '_'
            }
        })
        .take(48)
        .collect();
    match slugs.len() {
        0 | 1 => first,
        n => format!("{first}_and_{}_more", n - 1),
    }
}

/// The migration that inserts new roles into the role enum, when there are any.
fn roles_migration(
    old: &Model,
    new: &Model,
    target: Target,
) -> Result<Option<IncrementalMigration>, DiffError> {
    if let Some(role) = old.roles.iter().find(|r| !new.roles.contains(r)) {
        return Err(DiffError::RoleRemoved { role: role.clone() });
    }
    let kept: Vec<&String> = new.roles.iter().filter(|r| old.roles.contains(r)).collect();
    if kept.iter().copied().ne(old.roles.iter()) {
        return Err(DiffError::RolesReordered {
            old: old.roles.join(" < "),
            new: new.roles.join(" < "),
        });
    }
    let added: Vec<(usize, &String)> = new
        .roles
        .iter()
        .enumerate()
        .filter(|(_, r)| !old.roles.contains(r))
        .collect();
    if added.is_empty() {
        return Ok(None);
    }
    let role_type = format!(
        "{}.{}",
        ident(&new.settings.helper_schema),
        ident(ROLE_TYPE)
    );
    let mut plan = Plan::default();
    let mut body = String::from(
        "\n-- New roles, inserted in their place in the order. A new enum value cannot be used\n\
         -- until the transaction that adds it commits, so the policies that name a new role\n\
         -- come in the next migration.\n",
    );
    for (position, role) in added {
        // Insert before the next existing role so the order matches the policies; a role
        // after every existing one is appended.
        let next_existing = new.roles[position + 1..]
            .iter()
            .find(|r| old.roles.contains(r));
        let place = match next_existing {
            Some(next) => format!(" BEFORE {}", literal(next)),
            None => String::new(),
        };
        body.push_str(&format!(
            "ALTER TYPE {role_type} ADD VALUE {}{place};\n",
            literal(role)
        ));
        plan.change(
            format!("add_role_{role}"),
            format!("role `{role}` added ({})", new.roles.join(" < ")),
        );
    }
    Ok(Some(render(new, target, &plan, &body)))
}

/// Adoption happens in the baseline migrations only: no table may start adopting later.
fn check_adoption(old: &Model, new: &Model) -> Result<(), DiffError> {
    let adopted = |model: &Model, table: &str| {
        model
            .adoption
            .as_ref()
            .is_some_and(|a| a.tables.iter().any(|t| t.table == table))
    };
    for table in &new.tables {
        if adopted(new, &table.name) && !adopted(old, &table.name) {
            return Err(DiffError::AdoptionAdded {
                table: table.name.clone(),
            });
        }
    }
    Ok(())
}

/// Core tables are fixed once created: same names, same kinds.
fn check_core_tables(old: &Model, new: &Model) -> Result<(), DiffError> {
    for kind in [
        TableKind::Tenants,
        TableKind::Projects,
        TableKind::Memberships,
    ] {
        match (old.core_table(kind), new.core_table(kind)) {
            (Some(a), Some(b)) if a.name == b.name => {}
            (Some(t), _) | (None, Some(t)) => {
                return Err(DiffError::CoreTableChanged {
                    table: t.name.clone(),
                })
            }
            (None, None) => {}
        }
    }
    Ok(())
}

/// True when a table of `model` has a pgvector column.
fn uses_vector(model: &Model) -> bool {
    model
        .tables
        .iter()
        .flat_map(|t| t.columns.iter())
        .any(|c| matches!(c.ty, SqlType::Vector(_)))
}

/// The pgvector extension, the first time a vector column appears.
fn diff_extension(old: &Model, new: &Model, plan: &mut Plan) {
    if uses_vector(new) && !uses_vector(old) {
        plan.change(
            "vector_extension".to_owned(),
            "pgvector extension, for the first vector column".to_owned(),
        );
        plan.extension.push_str(
            "\n-- pgvector, for the vector columns.\nCREATE EXTENSION IF NOT EXISTS vector;\n",
        );
    }
}

/// Everything that changed in one table present in both models.
fn diff_table(
    old_model: &Model,
    old: &Table,
    new_model: &Model,
    new: &Table,
    target: Target,
    options: DiffOptions,
    plan: &mut Plan,
) -> Result<(), DiffError> {
    let name = ident(&new.name);
    if old.kind != new.kind {
        return Err(DiffError::TableKindChanged {
            table: new.name.clone(),
            from: old.kind.keyword(),
            to: new.kind.keyword(),
        });
    }
    if old.effective_primary_key() != new.effective_primary_key() {
        return Err(DiffError::PrimaryKeyChanged {
            table: new.name.clone(),
        });
    }

    diff_columns(old, new_model, new, options, plan)?;

    // Constraints (unique and foreign keys; the primary key is fixed), by name. On Citus as
    // that target creates them: `on delete set null` between distributed tables is a key
    // without the action plus a trigger (sql/citus.rs), created and dropped with the key.
    let constraint_list = |model: &Model, table: &Table| match target {
        Target::Postgres => constraints(model, table)
            .into_iter()
            .map(|c| CitusConstraint {
                name: c.name,
                definition: c.definition,
                set_null: None,
            })
            .collect::<Vec<_>>(),
        Target::Citus => super::citus::citus_constraints(model, table),
    };
    let old_list = constraint_list(old_model, old);
    let new_list = constraint_list(new_model, new);
    let triggers = |list: &[CitusConstraint]| -> BTreeMap<String, (String, String)> {
        list.iter()
            .filter_map(|c| c.set_null.clone().map(|t| (c.name.clone(), t)))
            .collect()
    };
    let old_triggers = triggers(&old_list);
    let new_triggers = triggers(&new_list);
    let old_constraints: BTreeMap<String, String> = old_list
        .into_iter()
        .map(|c| (c.name, c.definition))
        .collect();
    let new_constraints: Vec<(String, String)> = new_list
        .into_iter()
        .map(|c| (c.name, c.definition))
        .collect();
    for (constraint, (create, drop)) in &old_triggers {
        if new_triggers.get(constraint).map(|(c, _)| c) != Some(create) {
            plan.change(
                format!("drop_{constraint}_set_null"),
                format!("{}: on delete set null of {constraint} removed", new.name),
            );
            plan.drop_foreign_keys.push_str(&format!(
                "\n-- {}: the on delete set null trigger of {constraint} removed or changed.\n{drop}",
                new.name
            ));
        }
    }
    let is_foreign_key = |definition: &str| definition.starts_with("FOREIGN KEY");
    for (constraint, definition) in &old_constraints {
        let unchanged = new_constraints
            .iter()
            .any(|(n, d)| n == constraint && d == definition);
        if unchanged {
            continue;
        }
        let statement = format!(
            "\n-- {}: constraint {constraint} removed or changed.\n\
             ALTER TABLE {name} DROP CONSTRAINT {};\n",
            new.name,
            ident(constraint)
        );
        if is_foreign_key(definition) {
            plan.drop_foreign_keys.push_str(&statement);
        } else {
            plan.drop_unique_keys.push_str(&statement);
        }
        if !new_constraints.iter().any(|(n, _)| n == constraint) {
            plan.change(
                format!("drop_{constraint}"),
                format!("{}: constraint {constraint} removed", new.name),
            );
        }
    }
    for (constraint, definition) in &new_constraints {
        if old_constraints.get(constraint) == Some(definition) {
            continue;
        }
        plan.change(
            format!("add_{constraint}"),
            format!("{}: constraint {constraint} added", new.name),
        );
        let statement = format!(
            "\n-- {}: constraint {constraint} (fails if existing rows violate it).\n\
             ALTER TABLE {name} ADD CONSTRAINT {} {definition};\n",
            new.name,
            ident(constraint)
        );
        if is_foreign_key(definition) {
            plan.add_foreign_keys.push_str(&statement);
        } else {
            plan.add_unique_keys.push_str(&statement);
        }
    }
    for (constraint, (create, _)) in &new_triggers {
        if old_triggers.get(constraint).map(|(c, _)| c) != Some(create) {
            plan.change(
                format!("{constraint}_set_null"),
                format!(
                    "{}: on delete set null of {constraint} (a trigger on Citus)",
                    new.name
                ),
            );
            plan.add_foreign_keys.push_str(create);
        }
    }

    // Indexes, by name.
    let old_indexes = tables::all_indexes(old_model, old);
    let new_indexes = tables::all_indexes(new_model, new);
    for index in &old_indexes {
        if new_indexes.contains(index) {
            continue;
        }
        if !new_indexes.iter().any(|i| i.name == index.name) {
            plan.change(
                format!("drop_{}", index.name),
                format!("{}: index {} removed", new.name, index.name),
            );
        }
        plan.drop_indexes.push_str(&format!(
            "\n-- {}: index {} removed or changed.\nDROP INDEX {};\n",
            new.name,
            index.name,
            ident(&index.name)
        ));
    }
    for index in &new_indexes {
        if old_indexes.contains(index) {
            continue;
        }
        plan.change(
            format!("add_{}", index.name),
            format!("{}: index {} added", new.name, index.name),
        );
        plan.create_indexes.push_str(&format!(
            "\n-- {}: new index (built inside the migration's transaction; writes to the table\n\
             -- wait until it is built).\n",
            new.name
        ));
        plan.create_indexes
            .push_str(&create_index_statement(new, index));
    }

    // The reader role of a masked view: before the policies that name it.
    let new_reader = super::masked::reader_section(new_model, new);
    if super::masked::reader_section(old_model, old) != new_reader {
        plan.reader_roles.push_str(&new_reader);
    }

    // Policies, by name: a changed policy is dropped and created again in the same
    // transaction, so no statement ever sees the table without it.
    let old_policies = security::policies(old_model, old, target);
    let new_policies = security::policies(new_model, new, target);
    for policy in &old_policies {
        if new_policies.contains(policy) {
            continue;
        }
        let kept = new_policies.iter().any(|p| p.name == policy.name);
        plan.change(
            format!(
                "{}_{}_rule",
                if kept { "change" } else { "drop" },
                policy.name
            ),
            format!(
                "{}: policy {} {}",
                new.name,
                policy.name,
                if kept { "changed" } else { "removed" }
            ),
        );
        plan.drop_policies.push_str(&format!(
            "\n-- {}: policy {} {}.\nDROP POLICY {} ON {name};\n",
            new.name,
            policy.name,
            if kept {
                "changed (created again below)"
            } else {
                "removed"
            },
            ident(&policy.name)
        ));
    }
    for policy in &new_policies {
        if old_policies.contains(policy) {
            continue;
        }
        if !old_policies.iter().any(|p| p.name == policy.name) {
            plan.change(
                format!("add_{}_rule", policy.name),
                format!("{}: policy {} added", new.name, policy.name),
            );
        }
        plan.create_policies.push_str(&format!(
            "\n-- {}: policy {}.\n{}",
            new.name, policy.name, policy.create
        ));
    }

    // The `on update` stamp trigger: created again (or dropped) when its columns change.
    let old_trigger = super::conditions::stamp_trigger_section(old_model, old);
    let new_trigger = super::conditions::stamp_trigger_section(new_model, new);
    if old_trigger != new_trigger {
        plan.change(
            format!("{}_stamp", new.name),
            format!("{}: stamped columns changed", new.name),
        );
        if new_trigger.is_empty() {
            plan.create_policies
                .push_str(&super::conditions::drop_stamp_trigger(new_model, new));
        } else {
            plan.create_policies.push_str(&new_trigger);
        }
    }

    // The column rights trigger: created again (or dropped) when the column lists change.
    let old_rights = super::column_rights::column_rights_section(old_model, old, target);
    let new_rights = super::column_rights::column_rights_section(new_model, new, target);
    if old_rights != new_rights {
        plan.change(
            format!("{}_column_rights", new.name),
            format!("{}: column rights changed", new.name),
        );
        if new_rights.is_empty() {
            plan.create_policies
                .push_str(&super::column_rights::drop_column_rights_trigger(
                    new_model, new,
                ));
        } else {
            plan.create_policies.push_str(&new_rights);
        }
    }

    // The masked view: dropped before any column changes (it names every column) and
    // created again at the end, when the column lists or the columns change.
    let old_masked = super::masked::masked_view_section(old_model, old, target);
    let new_masked = super::masked::masked_view_section(new_model, new, target);
    if old_masked != new_masked {
        let names =
            |t: &Table| -> Vec<String> { t.masked_columns().into_iter().map(|c| c.name).collect() };
        let slug = format!("{}_masked", new.name);
        if names(old) == names(new)
            && old.rules_for(Command::Select) == new.rules_for(Command::Select)
        {
            // Only the table's columns changed: the view follows them.
            plan.consequence(
                slug,
                format!("{}: masked view follows its columns", new.name),
            );
        } else {
            plan.change(slug, format!("{}: masked columns changed", new.name));
        }
        if !old_masked.is_empty() {
            plan.drop_policies.push_str(&format!(
                "\n-- {}: the masked view, created again below.\n{}",
                new.name,
                super::masked::drop_masked_view(old_model, old)
            ));
        }
        plan.create_policies.push_str(&new_masked);
    }

    // The per-tenant dimension trigger: created again when its `per tenant` columns change.
    let old_dims = super::vector_settings::dimensions_trigger_section(old_model, old);
    let new_dims = super::vector_settings::dimensions_trigger_section(new_model, new);
    if old_dims != new_dims && !new_dims.is_empty() {
        plan.change(
            format!("{}_vector_dimensions", new.name),
            format!("{}: per-tenant vector dimension check changed", new.name),
        );
        plan.create_policies.push_str(&new_dims);
    }

    // Grants: the whole block again (it revokes everything first), so commands and UPDATE
    // columns end up exactly as a fresh database would have them.
    let new_grants = security::grants_section(new_model, new);
    if security::grants_section(old_model, old) != new_grants {
        plan.consequence(
            format!("{}_grants", new.name),
            format!("{}: grants to the app role updated", new.name),
        );
        plan.grants
            .push_str(&format!("\n-- {}: grants refreshed.", new.name));
        plan.grants.push_str(&new_grants);
    }
    Ok(())
}

/// Declared columns removed, changed or added.
fn diff_columns(
    old: &Table,
    new_model: &Model,
    new: &Table,
    options: DiffOptions,
    plan: &mut Plan,
) -> Result<(), DiffError> {
    let name = ident(&new.name);
    for column in &old.columns {
        if new.columns.iter().any(|c| c.name == column.name) {
            continue;
        }
        if !options.allow_data_loss {
            return Err(DiffError::DataLoss {
                what: format!("column `{}.{}`", new.name, column.name),
            });
        }
        plan.change(
            format!("{}_drop_{}", new.name, column.name),
            format!(
                "{}: column {} dropped (its values are deleted)",
                new.name, column.name
            ),
        );
        plan.drop_columns.push_str(&format!(
            "\n-- DATA LOSS: {}.{} was removed from the policies; its values are deleted.\n\
             ALTER TABLE {name} DROP COLUMN {};\n",
            new.name,
            column.name,
            ident(&column.name)
        ));
    }
    for column in &new.columns {
        match old.columns.iter().find(|c| c.name == column.name) {
            None => add_column(new_model, new, column, plan)?,
            Some(previous) => alter_column(previous, new_model, new, column, plan)?,
        }
    }
    Ok(())
}

/// `ADD COLUMN`, refused for a NOT NULL column without a default.
fn add_column(
    model: &Model,
    table: &Table,
    column: &Column,
    plan: &mut Plan,
) -> Result<(), DiffError> {
    // A `current_user` stamp's default has no user to write into existing rows.
    let fills_rows = column.default.is_some()
        || column
            .stamp
            .is_some_and(|s| s.value == crate::condition::StampValue::Now);
    if !column.nullable && !fills_rows {
        return Err(DiffError::NotNullWithoutDefault {
            table: table.name.clone(),
            column: column.name.clone(),
            ty: column.ty.dsl_name(),
        });
    }
    plan.change(
        format!("add_{}_{}", table.name, column.name),
        format!("{}: new column {}", table.name, column.name),
    );
    let note = if column.nullable {
        "existing rows hold NULL"
    } else {
        "existing rows get the default"
    };
    plan.add_columns.push_str(&format!(
        "\n-- {}.{}: new column ({note}).\nALTER TABLE {} ADD COLUMN {} {};\n",
        table.name,
        column.name,
        ident(&table.name),
        ident(&column.name),
        column_definition(model, column)
    ));
    if super::statistics::tenant_owned(table) {
        // Like every column of a tenant-owned table: no planner statistics.
        plan.add_columns
            .push_str(&super::statistics::set_statistics_zero(
                &ident(&table.name),
                &[column.name.as_str()],
            ));
    }
    Ok(())
}

/// Nullability and default changes of one column; a type change is refused.
fn alter_column(
    old: &Column,
    model: &Model,
    table: &Table,
    column: &Column,
    plan: &mut Plan,
) -> Result<(), DiffError> {
    if old.ty != column.ty || old.per_tenant != column.per_tenant {
        let written = |c: &Column| {
            let per_tenant = if c.per_tenant { " per tenant" } else { "" };
            format!("{}{per_tenant}", c.ty.dsl_name())
        };
        return Err(DiffError::ColumnTypeChanged {
            table: table.name.clone(),
            column: column.name.clone(),
            from: written(old),
            to: written(column),
        });
    }
    let target = format!(
        "ALTER TABLE {} ALTER COLUMN {}",
        ident(&table.name),
        ident(&column.name)
    );
    let what = format!("{}.{}", table.name, column.name);
    let old_default = super::conditions::column_default(model, old);
    let new_default = super::conditions::column_default(model, column);
    if old_default != new_default {
        plan.change(
            format!("{}_{}_default", table.name, column.name),
            format!("{what}: default changed"),
        );
        let statement = if let Some(value) = new_default {
            format!("{target} SET DEFAULT {value};\n")
        } else {
            format!("{target} DROP DEFAULT;\n")
        };
        plan.alter_columns.push_str(&format!(
            "\n-- {what}: default changed (existing rows keep their value).\n{statement}"
        ));
    }
    if old.nullable != column.nullable {
        plan.change(
            format!(
                "{}_{}_{}",
                table.name,
                column.name,
                if column.nullable {
                    "nullable"
                } else {
                    "not_null"
                }
            ),
            format!(
                "{what}: {}",
                if column.nullable {
                    "now nullable"
                } else {
                    "now NOT NULL"
                }
            ),
        );
        if column.nullable {
            plan.alter_columns.push_str(&format!(
                "\n-- {what}: now nullable.\n{target} DROP NOT NULL;\n"
            ));
        } else {
            plan.alter_columns.push_str(&format!(
                "\n-- {what}: now NOT NULL (the migration fails, changing nothing, while a row holds NULL).\n\
                 {target} SET NOT NULL;\n"
            ));
        }
    }
    Ok(())
}
