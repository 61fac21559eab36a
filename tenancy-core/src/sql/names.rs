//! Every name the SQL emitter gives an object, computed by the functions the emitter itself
//! uses (`tables::constraints`, `tables::all_indexes`, `security::policies`, ...), so the
//! validator can refuse a model whose generated names collide before anything is emitted.
//!
//! PostgreSQL keeps names in separate namespaces: relations (tables and the indexes, which
//! unique and primary-key constraints create under the constraint's name) and types per
//! schema, constraints, policies and triggers per table. Two objects collide when they share a
//! namespace and a name.

use std::collections::HashMap;

use super::authority::KEEP_TOP_ROLE_FUNCTION;
use super::ident::fit_identifier;
use super::{security, tables, Target};
use crate::model::{Model, TableKind, ROLE_TYPE, TABLE_SCHEMA};

/// Where a name must be unique.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Namespace {
    /// Tables and indexes of one schema.
    Relation(String),
    /// Types of one schema (every table also defines its row type).
    Type(String),
    /// The constraints of one table.
    Constraint(String),
    /// The row-level security policies of one table.
    Policy(String),
    /// The triggers of one table.
    Trigger(String),
    /// The functions of one schema (a stamp trigger's function is in the helper schema).
    Function(String),
    /// The role marker types of the generated Rust `roles` module.
    RustRole,
}

/// What kind of object a generated name names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ObjectKind {
    /// A table.
    Table,
    /// A primary-key constraint (and its index).
    PrimaryKey,
    /// A unique constraint (and its index).
    UniqueKey,
    /// A foreign-key constraint.
    ForeignKey,
    /// An index.
    Index,
    /// A row-level security policy.
    Policy,
    /// A trigger.
    Trigger,
    /// A type (a table's row type or the role enum).
    Type,
    /// A function.
    Function,
    /// A Rust role marker type.
    RustRole,
}

impl ObjectKind {
    /// How the object is called in messages.
    pub fn description(self) -> &'static str {
        match self {
            ObjectKind::Table => "table",
            ObjectKind::PrimaryKey => "primary key",
            ObjectKind::UniqueKey => "unique key",
            ObjectKind::ForeignKey => "foreign key",
            ObjectKind::Index => "index",
            ObjectKind::Policy => "policy",
            ObjectKind::Trigger => "trigger",
            ObjectKind::Type => "type",
            ObjectKind::Function => "function",
            ObjectKind::RustRole => "Rust role type",
        }
    }
}

/// What in the model a generated name comes from (for pointing at the source).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NameSource {
    /// A table of the model (its name, or an object named after the table only).
    Table(String),
    /// A key, foreign key or index of `table` over `columns` (as created, scope columns
    /// included).
    Columns {
        /// The table.
        table: String,
        /// The columns, as created.
        columns: Vec<String>,
    },
    /// A role of the `roles` line.
    Role(String),
    /// An object of the tenancy core with a fixed name.
    Fixed,
}

/// One generated name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GeneratedName {
    /// The name, as emitted (unquoted).
    pub name: String,
    /// Where it must be unique.
    pub namespace: Namespace,
    /// What it names.
    pub kind: ObjectKind,
    /// Where it comes from.
    pub source: NameSource,
}

/// Every name the migrations of `model` create (fixed core objects included), in emission
/// order. Index names are de-duplicated by the emitter within a table (`_idx2`), constraint
/// and policy names are not.
pub fn generated_names(model: &Model) -> Vec<GeneratedName> {
    let public = TABLE_SCHEMA.to_owned();
    let helper = model.settings.helper_schema.clone();
    let mut out = Vec::new();
    let mut push = |name: String, namespace: Namespace, kind: ObjectKind, source: NameSource| {
        out.push(GeneratedName {
            name,
            namespace,
            kind,
            source,
        });
    };
    // The helper schema's fixed objects (they share a namespace with the model's tables when
    // the helper schema is the table schema).
    for relation in [
        "audit_log",
        "audit_log_pkey",
        "audit_log_tenant_id_at_idx",
        "context_keys",
        "context_keys_pkey",
    ] {
        push(
            relation.to_owned(),
            Namespace::Relation(helper.clone()),
            ObjectKind::Table,
            NameSource::Fixed,
        );
    }
    push(
        KEEP_TOP_ROLE_FUNCTION.to_owned(),
        Namespace::Function(helper.clone()),
        ObjectKind::Function,
        NameSource::Fixed,
    );
    for ty in [ROLE_TYPE, "audit_log", "context_keys"] {
        push(
            ty.to_owned(),
            Namespace::Type(helper.clone()),
            ObjectKind::Type,
            NameSource::Fixed,
        );
    }
    for role in &model.roles {
        push(
            crate::rust::naming::camel_case(role),
            Namespace::RustRole,
            ObjectKind::RustRole,
            NameSource::Role(role.clone()),
        );
    }
    for table in &model.tables {
        let source = || NameSource::Table(table.name.clone());
        push(
            table.name.clone(),
            Namespace::Relation(public.clone()),
            ObjectKind::Table,
            source(),
        );
        push(
            table.name.clone(),
            Namespace::Type(public.clone()),
            ObjectKind::Type,
            source(),
        );
        let primary_key = table.effective_primary_key();
        let unique_keys = table.effective_unique_keys();
        let foreign_keys = tables::all_foreign_keys(model, table);
        let mut unique_iter = unique_keys.iter();
        let mut fk_iter = foreign_keys.iter();
        for constraint in tables::constraints(model, table) {
            let (kind, columns) = if constraint.definition.starts_with("PRIMARY KEY") {
                (ObjectKind::PrimaryKey, primary_key.clone())
            } else if constraint.definition.starts_with("UNIQUE") {
                (
                    ObjectKind::UniqueKey,
                    unique_iter.next().cloned().unwrap_or_default(),
                )
            } else {
                (
                    ObjectKind::ForeignKey,
                    fk_iter
                        .next()
                        .map(|fk| fk.local.clone())
                        .unwrap_or_default(),
                )
            };
            let source = NameSource::Columns {
                table: table.name.clone(),
                columns,
            };
            if kind != ObjectKind::ForeignKey {
                // The key's index carries the constraint's name.
                push(
                    constraint.name.clone(),
                    Namespace::Relation(public.clone()),
                    kind,
                    source.clone(),
                );
            }
            push(
                constraint.name,
                Namespace::Constraint(table.name.clone()),
                kind,
                source,
            );
        }
        for index in tables::all_indexes(model, table) {
            push(
                index.name,
                Namespace::Relation(public.clone()),
                ObjectKind::Index,
                NameSource::Columns {
                    table: table.name.clone(),
                    columns: index.columns,
                },
            );
        }
        for policy in security::policies(model, table, Target::Postgres) {
            push(
                policy.name,
                Namespace::Policy(table.name.clone()),
                ObjectKind::Policy,
                source(),
            );
        }
        if !table.stamped_columns().is_empty() {
            let stamp = super::conditions::stamp_trigger_name(table);
            push(
                stamp.clone(),
                Namespace::Trigger(table.name.clone()),
                ObjectKind::Trigger,
                source(),
            );
            push(
                stamp,
                Namespace::Function(helper.clone()),
                ObjectKind::Function,
                source(),
            );
        }
        if !super::column_rights::restricted_columns(table).is_empty() {
            let rights = super::column_rights::column_rights_trigger_name(table);
            push(
                rights.clone(),
                Namespace::Trigger(table.name.clone()),
                ObjectKind::Trigger,
                source(),
            );
            push(
                rights,
                Namespace::Function(helper.clone()),
                ObjectKind::Function,
                source(),
            );
        }
        if table.kind == TableKind::Memberships {
            push(
                fit_identifier(&format!("{}_{KEEP_TOP_ROLE_FUNCTION}", table.name)),
                Namespace::Trigger(table.name.clone()),
                ObjectKind::Trigger,
                source(),
            );
        }
    }
    out
}

/// The generated names that are taken twice in their namespace: `(first, second)` pairs,
/// in emission order of the second.
pub fn name_collisions(model: &Model) -> Vec<(GeneratedName, GeneratedName)> {
    let mut first: HashMap<(Namespace, String), GeneratedName> = HashMap::new();
    let mut out = Vec::new();
    for name in generated_names(model) {
        let key = (name.namespace.clone(), name.name.clone());
        match first.get(&key) {
            Some(previous) => out.push((previous.clone(), name)),
            None => {
                first.insert(key, name);
            }
        }
    }
    out
}
