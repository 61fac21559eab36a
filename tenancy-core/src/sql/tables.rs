//! `CREATE TABLE`, keys, foreign keys and indexes; `0002_tables.sql`.

use super::ident::{ident, ident_list, object_name};
use super::{file_header, section_heading, security, Target};
use crate::model::{Column, ForeignKey, IndexMethod, Model, OnDelete, Table, TableKind};

/// The text of `migrations/0002_tables.sql`: every scoped and global table.
pub(super) fn tables_migration(model: &Model, target: Target) -> String {
    let mut out = file_header(
        "Tables declared in the policies (scoped and global), in dependency order.",
        target,
        &model.settings.helper_schema,
    );
    if target == Target::Citus {
        out.push_str(&super::citus::migration_settings());
    }
    out.push_str(&super::vector_settings::settings_section(model, target));
    for table in model.tables_in_dependency_order() {
        if matches!(table.kind, TableKind::Scoped | TableKind::Global) {
            out.push_str(&table_section(model, table, target));
            out.push_str(&security::security_section(model, table, target));
            out.push_str(&super::statistics::statistics_section(
                table,
                &ident(&table.name),
            ));
        }
    }
    if target == Target::Citus {
        out.push_str(&super::citus::tables_distribution(model));
    }
    out
}

/// How a table is described in its heading.
pub(crate) fn kind_description(kind: TableKind) -> &'static str {
    match kind {
        TableKind::Tenants => "the tenants table: one row per tenant",
        TableKind::Projects => "the projects table: scoped to a tenant",
        TableKind::Memberships => "the memberships table: scoped to a project",
        TableKind::TenantMemberships => {
            "the tenant memberships table: a role in every project of the tenant"
        }
        TableKind::Scoped => "scoped to a project",
        TableKind::Global => "global: shared by every tenant",
    }
}

/// Heading, `CREATE TABLE`, indexes and owner of one table.
pub(super) fn table_section(model: &Model, table: &Table, target: Target) -> String {
    let name = ident(&table.name);
    let mut out = section_heading(
        &format!("{} ({})", table.name, kind_description(table.kind)),
        table.doc.as_deref(),
    );

    let columns = table.all_columns();
    let width = columns
        .iter()
        .map(|c| ident(&c.name).len())
        .max()
        .unwrap_or(0);
    let mut body: Vec<String> = columns
        .iter()
        .map(|c| {
            format!(
                "  {:width$} {}",
                ident(&c.name),
                column_definition(model, c)
            )
        })
        .collect();

    // Citus: foreign keys are added once both sides are Citus tables (sql/citus.rs).
    for constraint in constraints(model, table)
        .into_iter()
        .filter(|c| target == Target::Postgres || !c.definition.starts_with("FOREIGN KEY"))
    {
        body.push(format!(
            "  CONSTRAINT {} {}",
            ident(&constraint.name),
            constraint.definition
        ));
    }
    out.push_str(&format!(
        "CREATE TABLE {name} (\n{}\n);\n",
        body.join(",\n")
    ));

    for index in all_indexes(model, table) {
        out.push_str(&create_index_statement(table, &index));
    }
    out.push_str(&format!(
        "ALTER TABLE {name} OWNER TO {};\n",
        ident(&model.settings.owner_role)
    ));
    out
}

/// A table constraint (primary key, unique key or foreign key) as created.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Constraint {
    /// The constraint's name (unquoted).
    pub name: String,
    /// What follows `CONSTRAINT name`: `UNIQUE (...)`, `FOREIGN KEY (...) REFERENCES ...`.
    pub definition: String,
}

/// The primary key, unique keys and foreign keys of `table`, in the order they are created.
pub(super) fn constraints(model: &Model, table: &Table) -> Vec<Constraint> {
    let mut out = Vec::new();
    let primary_key = table.effective_primary_key();
    if !table.primary_key.is_empty() || table.kind.is_core() {
        out.push(Constraint {
            name: object_name(&table.name, &[] as &[&str], "pkey"),
            definition: format!("PRIMARY KEY ({})", ident_list(&primary_key)),
        });
    }
    // The context lists a tenant-wide member's tenant id among project ids (docs/context.md):
    // no project may carry its tenant's id, or a role in that project would read as a role
    // in the whole tenant.
    if table.kind == TableKind::Projects && model.core_table(TableKind::TenantMemberships).is_some()
    {
        out.push(Constraint {
            name: object_name(&table.name, &["id"], "check"),
            definition: format!("CHECK ({} <> {})", ident("id"), ident("tenant_id")),
        });
    }
    for key in table.effective_unique_keys() {
        out.push(Constraint {
            name: object_name(&table.name, &name_parts(table, &key), "key"),
            definition: format!("UNIQUE ({})", ident_list(&key)),
        });
    }
    for fk in all_foreign_keys(model, table) {
        out.push(Constraint {
            name: object_name(&table.name, &name_parts(table, &fk.local), "fkey"),
            definition: format!(
                "FOREIGN KEY ({})\n    REFERENCES {} ({}){}",
                ident_list(&fk.local),
                ident(&fk.parent),
                ident_list(&fk.remote),
                on_delete_clause(fk.on_delete, &fk.declared_columns)
            ),
        });
    }
    out
}

/// The `CREATE INDEX` statement of one index of `table` (with its note as a comment).
pub(super) fn create_index_statement(table: &Table, index: &EffectiveIndex) -> String {
    let using = match index.method {
        IndexMethod::BTree => String::new(),
        IndexMethod::Gin => " USING gin".to_owned(),
    };
    let mut out = String::new();
    if let Some(note) = index.note {
        out.push_str(&format!("-- {note}\n"));
    }
    out.push_str(&format!(
        "CREATE INDEX {} ON {}{using} ({});\n",
        ident(&index.name),
        ident(&table.name),
        ident_list(&index.columns)
    ));
    out
}

/// `type [NOT NULL] [DEFAULT ...]` for one column.
pub(super) fn column_definition(model: &Model, column: &Column) -> String {
    // A `per tenant` vector has its tenant's dimension, held by a trigger (vector_settings.rs).
    let mut def = if column.per_tenant {
        "vector".to_owned()
    } else {
        column.ty.sql_name(&ident(&model.settings.helper_schema))
    };
    if !column.nullable {
        def.push_str(" NOT NULL");
    }
    if let Some(default) = super::conditions::column_default(model, column) {
        def.push_str(" DEFAULT ");
        def.push_str(&default);
    }
    def
}

/// The columns a constraint or index name is made of: its columns without the table's scope
/// prefix (`documents_content_hash_key`), or all of them when only the prefix is left.
fn name_parts(table: &Table, columns: &[String]) -> Vec<String> {
    let prefix = table.key_prefix();
    let parts: Vec<String> = columns
        .iter()
        .filter(|c| !prefix.contains(c))
        .cloned()
        .collect();
    if parts.is_empty() {
        columns.to_vec()
    } else {
        parts
    }
}

/// A foreign key as created (scope columns included).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct EffectiveForeignKey {
    /// Referencing columns, scope columns first.
    pub local: Vec<String>,
    /// Referenced table.
    pub parent: String,
    /// Referenced columns, in the same order.
    pub remote: Vec<String>,
    /// Delete behaviour.
    pub on_delete: OnDelete,
    /// The declared referencing columns (the only ones `SET NULL` may clear).
    pub declared_columns: Vec<String>,
}

/// Every foreign key of `table`: the generated ones that tie it to the tenancy core, then the
/// declared ones, made composite with the scope columns when both sides are tenant-owned.
pub(crate) fn all_foreign_keys(model: &Model, table: &Table) -> Vec<EffectiveForeignKey> {
    let mut out = Vec::new();
    let generated = |parent_kind: TableKind, local: Vec<String>, remote: Vec<String>| {
        model
            .core_table(parent_kind)
            .map(|parent| EffectiveForeignKey {
                declared_columns: local.clone(),
                local,
                parent: parent.name.clone(),
                remote,
                on_delete: OnDelete::Cascade,
            })
    };
    let strings = |names: &[&str]| names.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
    match table.kind {
        TableKind::Projects | TableKind::TenantMemberships => out.extend(generated(
            TableKind::Tenants,
            strings(&["tenant_id"]),
            strings(&["id"]),
        )),
        TableKind::Memberships | TableKind::Scoped => out.extend(generated(
            TableKind::Projects,
            strings(&["tenant_id", "project_id"]),
            strings(&["tenant_id", "id"]),
        )),
        TableKind::Tenants | TableKind::Global => {}
    }
    for fk in &table.foreign_keys {
        out.push(declared_foreign_key(model, table, fk));
    }
    out
}

/// One declared foreign key as created.
fn declared_foreign_key(model: &Model, table: &Table, fk: &ForeignKey) -> EffectiveForeignKey {
    let mut local = Vec::new();
    let mut remote = Vec::new();
    let parent_scope = model.table(&fk.table).and_then(Table::scope_columns);
    if let (Some(child), Some(parent)) = (table.scope_columns(), parent_scope) {
        let mut pair = |child_col: &str, parent_col: &str| {
            let already = fk.columns.iter().any(|c| c == child_col)
                || fk.target_columns.iter().any(|c| c == parent_col);
            if !already {
                local.push(child_col.to_owned());
                remote.push(parent_col.to_owned());
            }
        };
        pair(child.tenant, parent.tenant);
        if let (Some(child_project), Some(parent_project)) = (child.project, parent.project) {
            pair(child_project, parent_project);
        }
    }
    local.extend(fk.columns.iter().cloned());
    remote.extend(fk.target_columns.iter().cloned());
    EffectiveForeignKey {
        local,
        parent: fk.table.clone(),
        remote,
        on_delete: fk.on_delete,
        declared_columns: fk.columns.clone(),
    }
}

/// ` ON DELETE ...`; `SET NULL` names the declared columns so the scope columns are never
/// cleared (PostgreSQL 15's column-list form).
pub(super) fn on_delete_clause(on_delete: OnDelete, declared_columns: &[String]) -> String {
    match on_delete {
        OnDelete::NoAction => String::new(),
        OnDelete::Restrict => " ON DELETE RESTRICT".to_owned(),
        OnDelete::Cascade => " ON DELETE CASCADE".to_owned(),
        OnDelete::SetNull => format!(" ON DELETE SET NULL ({})", ident_list(declared_columns)),
    }
}

/// An index as created.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct EffectiveIndex {
    /// Index name.
    pub name: String,
    /// Indexed columns, in order.
    pub columns: Vec<String>,
    /// Access method.
    pub method: IndexMethod,
    /// Why the generator added it, when it was not declared.
    pub note: Option<&'static str>,
}

/// Declared indexes (led by the scope columns), the membership lookup index, and an index for
/// every foreign key that no key or index already starts with.
pub(crate) fn all_indexes(model: &Model, table: &Table) -> Vec<EffectiveIndex> {
    let mut out: Vec<EffectiveIndex> = Vec::new();
    let push = |out: &mut Vec<EffectiveIndex>,
                columns: Vec<String>,
                method: IndexMethod,
                note: Option<&'static str>| {
        if out
            .iter()
            .any(|i| i.columns == columns && i.method == method)
        {
            return;
        }
        let base = object_name(&table.name, &name_parts(table, &columns), "idx");
        let mut name = base.clone();
        let mut n = 2;
        while out.iter().any(|i| i.name == name) {
            name = object_name(
                &table.name,
                &name_parts(table, &columns),
                &format!("idx{n}"),
            );
            n += 1;
        }
        out.push(EffectiveIndex {
            name,
            columns,
            method,
            note,
        });
    };

    for index in &table.indexes {
        match index.method {
            IndexMethod::BTree => push(
                &mut out,
                table.with_key_prefix(&index.columns),
                IndexMethod::BTree,
                None,
            ),
            // A GIN index cannot hold uuid columns without the btree_gin extension: it covers
            // the declared columns only; the policy's scope predicate still applies.
            IndexMethod::Gin => push(
                &mut out,
                index.columns.clone(),
                IndexMethod::Gin,
                Some("GIN cannot index uuid without btree_gin: declared columns only."),
            ),
        }
    }
    if table.kind == TableKind::Memberships {
        push(
            &mut out,
            vec!["tenant_id".to_owned(), "user_id".to_owned()],
            IndexMethod::BTree,
            Some("Authorization looks up a user's memberships by (tenant_id, user_id)."),
        );
    }

    let mut covering: Vec<Vec<String>> = vec![table.effective_primary_key()];
    covering.extend(table.effective_unique_keys());
    for fk in all_foreign_keys(model, table) {
        covering.extend(
            out.iter()
                .filter(|i| i.method == IndexMethod::BTree)
                .map(|i| i.columns.clone()),
        );
        let covered = covering.iter().any(|key| key.starts_with(&fk.local));
        if !covered {
            push(
                &mut out,
                fk.local.clone(),
                IndexMethod::BTree,
                Some("Index for the foreign key (cascading deletes, joins)."),
            );
        }
    }
    out
}
