//! Semantic checks: turns the syntax trees of all files into a [`Model`], collecting
//! every error and warning on the way (nothing stops at the first problem).
//!
//! The [`Checker`] holds the diagnostics; each `check_*` function enforces one documented
//! rule. The model is only built when no error was reported.

mod adoption;
mod collisions;
mod column_rights;
mod columns;
mod conditions;
mod defaults;
mod keys;
mod names;
mod rules;
mod settings;

use std::collections::{HashMap, HashSet};

use super::ast::{
    AdoptBlock, ColumnDecl, Constraint, File, Ident, Reference, RuleDecl, TableDecl, TypeExpr,
};
use super::diagnostic::{Diagnostic, Diagnostics, Span};
use super::suggest;
use crate::model::{
    AdoptedTable, Adoption, Column, Command, DefaultValue, ForeignKey, Index, IndexMethod, Model,
    OnDelete, Rule, Settings, SqlType, Table, TableKind, VectorDistance,
};

/// PostgreSQL's NAMEDATALEN - 1: the longest identifier in bytes.
pub const MAX_IDENTIFIER_BYTES: usize = 63;

/// The largest `vector(N)` dimension pgvector accepts for a column.
pub const MAX_VECTOR_DIMENSIONS: u32 = 16000;

/// The settings a `tenancy` block may hold.
const SETTING_NAMES: [&str; 4] = ["owner_role", "app_role", "helper_schema", "python_package"];

/// The settings an `adopt` block may hold.
const ADOPT_SETTING_NAMES: [&str; 2] = ["tenant", "project"];

/// Common spellings from PostgreSQL or other languages, mapped to the DSL type.
const TYPE_ALIASES: [(&str, &str); 14] = [
    ("int", "integer"),
    ("int4", "integer"),
    ("int8", "bigint"),
    ("int2", "smallint"),
    ("bool", "boolean"),
    ("varchar", "text"),
    ("string", "text"),
    ("timestamp", "timestamptz"),
    ("datetime", "timestamptz"),
    ("json", "jsonb"),
    ("float", "double"),
    ("float8", "double"),
    ("float4", "real"),
    ("serial", "bigint"),
];

/// Validates the parsed files and builds the model (only when there is no error).
pub fn validate(files: &[File], diags: &mut Diagnostics) -> Option<Model> {
    let mut checker = Checker {
        diags,
        roles: None,
        tables: HashMap::new(),
    };
    let settings = checker.check_tenancy_blocks(files);
    let decls: Vec<&TableDecl> = files.iter().flat_map(|f| f.tables.iter()).collect();
    checker.check_table_names(&decls);
    checker.check_core_kinds(&decls);
    let mut infos: Vec<TableInfo<'_>> = Vec::new();
    for decl in &decls {
        let is_first = checker
            .tables
            .get(decl.name.name.as_str())
            .is_some_and(|first| std::ptr::eq(*first, *decl));
        if !is_first {
            continue; // a duplicate table, already reported
        }
        if let Some(kind) = decl.kind {
            infos.push(checker.check_table(decl, kind));
        }
    }
    let by_name: HashMap<&str, &TableInfo<'_>> = infos
        .iter()
        .map(|t| (t.decl.name.name.as_str(), t))
        .collect();
    for info in &infos {
        for fk in &info.foreign_keys {
            checker.check_foreign_key(info, fk, &by_name);
        }
    }
    checker.check_reference_cycles(&infos);
    for info in &infos {
        checker.check_select_rule(info);
    }
    let adoption = checker.check_adoption(files, &infos);
    if checker.diags.has_errors() {
        return None;
    }
    let roles = checker.roles.clone().unwrap_or_default();
    let mut tables: Vec<Table> = Vec::new();
    for kind in [
        TableKind::Tenants,
        TableKind::Projects,
        TableKind::Memberships,
        TableKind::TenantMemberships,
    ] {
        tables.extend(
            infos
                .iter()
                .filter(|t| t.kind == kind)
                .map(|t| build_table(t, &roles)),
        );
    }
    tables.extend(
        infos
            .iter()
            .filter(|t| !t.kind.is_core())
            .map(|t| build_table(t, &roles)),
    );
    let primary_keys: HashMap<String, Vec<String>> = tables
        .iter()
        .map(|t| (t.name.clone(), t.primary_key.clone()))
        .collect();
    for table in &mut tables {
        for fk in &mut table.foreign_keys {
            if fk.target_columns.is_empty() {
                fk.target_columns = primary_keys.get(&fk.table).cloned().unwrap_or_default();
            }
        }
    }
    let model = Model {
        settings: settings.unwrap_or_default(),
        roles,
        tables,
        adoption,
    };
    let role_idents: Vec<&Ident> = files
        .iter()
        .flat_map(|f| &f.tenancy_blocks)
        .flat_map(|b| b.roles.iter().flat_map(|r| &r.roles))
        .collect();
    let fallback = files
        .iter()
        .flat_map(|f| &f.tenancy_blocks)
        .map(|b| b.span)
        .next()
        .or_else(|| decls.first().map(|d| d.name.span));
    if let Some(fallback) = fallback {
        if !checker.check_generated_names(&model, &decls, &role_idents, fallback) {
            return None;
        }
    }
    Some(model)
}

/// Validates one table without the rest of a model: names, columns, types, defaults,
/// keys, indexes and rules (roles are not checked against a `tenancy` block, foreign keys
/// not against their target). The table is built only when there is no error; a global
/// table's `select` rule then names no role (`min_role` is empty).
pub fn validate_table_alone(decl: &TableDecl, diags: &mut Diagnostics) -> Option<Table> {
    let mut checker = Checker {
        diags,
        roles: None,
        tables: HashMap::new(),
    };
    checker.check_table_names(&[decl]);
    let kind = decl.kind?;
    let info = checker.check_table(decl, kind);
    if checker.diags.has_errors() {
        return None;
    }
    let table = build_table(&info, &[]);
    let alone = Model {
        settings: Settings::default(),
        roles: Vec::new(),
        tables: vec![table],
        adoption: None,
    };
    if !checker.check_generated_names(&alone, &[decl], &[], decl.name.span) {
        return None;
    }
    alone.tables.into_iter().next()
}

/// A foreign key as declared (column-level or table-level), with spans.
struct FkDecl<'a> {
    columns: Vec<&'a Ident>,
    reference: &'a Reference,
    /// Where to point for problems with the key as a whole.
    span: Span,
}

/// A table with its types resolved, on the way to becoming a [`Table`].
struct TableInfo<'a> {
    decl: &'a TableDecl,
    kind: TableKind,
    /// Declared columns with their resolved types (`None`: unknown, already reported).
    columns: Vec<(&'a ColumnDecl, Option<SqlType>)>,
    /// Generated columns (from the kind).
    generated: Vec<Column>,
    primary_key: Vec<String>,
    unique_keys: Vec<Vec<String>>,
    indexes: Vec<Index>,
    foreign_keys: Vec<FkDecl<'a>>,
    /// The rules per command, in canonical command order, least role first.
    rules: Vec<RuleInfo<'a>>,
    /// Stamps of declared columns, by column name.
    stamps: HashMap<&'a str, crate::condition::Stamp>,
}

/// One checked rule for one command.
struct RuleInfo<'a> {
    command: Command,
    role: Option<&'a Ident>,
    condition: Option<crate::condition::Condition>,
    /// `(a, b)`: the columns the rule covers, in table column order.
    columns: Option<Vec<String>>,
}

impl TableInfo<'_> {
    fn name(&self) -> &str {
        &self.decl.name.name
    }

    /// Type and nullability of a declared or generated column; `Some((None, _))` when the
    /// column exists but its type was invalid.
    fn column(&self, name: &str) -> Option<(Option<SqlType>, bool)> {
        if let Some(c) = self.generated.iter().find(|c| c.name == name) {
            return Some((Some(c.ty), c.nullable));
        }
        self.columns
            .iter()
            .find(|(c, _)| c.name.name == name)
            .map(|(c, ty)| (*ty, c.nullable))
    }

    fn column_names(&self) -> Vec<&str> {
        let mut names: Vec<&str> = self.generated.iter().map(|c| c.name.as_str()).collect();
        names.extend(self.columns.iter().map(|(c, _)| c.name.name.as_str()));
        names
    }

    /// The declared keys a foreign key may target (primary key first).
    fn keys(&self) -> Vec<&Vec<String>> {
        let mut keys = Vec::new();
        if !self.primary_key.is_empty() {
            keys.push(&self.primary_key);
        }
        keys.extend(self.unique_keys.iter());
        keys
    }
}

/// Collects diagnostics while checking.
struct Checker<'d, 'a> {
    diags: &'d mut Diagnostics,
    /// Declared roles, when a `roles = ...` line exists (rules are checked against it).
    roles: Option<Vec<String>>,
    /// First declaration of each table name.
    tables: HashMap<&'a str, &'a TableDecl>,
}

impl<'a> Checker<'_, 'a> {
    fn error(&mut self, d: Diagnostic) {
        self.diags.push(d);
    }

    // ---- names --------------------------------------------------------------------

    // ---- tenancy block ----------------------------------------------------------------
}

/// The key the generator gives a core table (for messages).
fn core_key(kind: TableKind) -> Vec<&'static str> {
    match kind {
        TableKind::Tenants => vec!["id"],
        TableKind::Projects => vec!["tenant_id", "id"],
        _ => vec!["tenant_id", "project_id", "user_id"],
    }
}

fn names(idents: &[Ident]) -> Vec<String> {
    idents.iter().map(|i| i.name.clone()).collect()
}

/// `'xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx'` (hex digits, any case).
fn is_uuid(s: &str) -> bool {
    let groups: Vec<&str> = s.split('-').collect();
    groups.len() == 5
        && groups
            .iter()
            .zip([8, 4, 4, 4, 12])
            .all(|(g, n)| g.len() == n && g.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// `'YYYY-MM-DD'` with plausible month and day numbers.
fn is_date(s: &str) -> bool {
    let parts: Vec<&str> = s.split('-').collect();
    if parts.len() != 3
        || parts
            .iter()
            .zip([4, 2, 2])
            .any(|(p, n)| p.len() != n || !p.bytes().all(|b| b.is_ascii_digit()))
    {
        return false;
    }
    let month: u32 = parts[1].parse().unwrap_or(0);
    let day: u32 = parts[2].parse().unwrap_or(0);
    (1..=12).contains(&month) && (1..=31).contains(&day)
}

fn describe_default(value: &DefaultValue) -> String {
    match value {
        DefaultValue::String(_) => "a string".to_owned(),
        DefaultValue::Integer(v) => format!("`{v}`"),
        DefaultValue::Decimal(v) => format!("`{v}`"),
        DefaultValue::Bool(v) => format!("`{v}`"),
        DefaultValue::Now => "`now()`".to_owned(),
        DefaultValue::GenRandomUuid => "`gen_random_uuid()`".to_owned(),
    }
}

/// Builds the model table from a checked [`TableInfo`] (only called without errors).
fn build_table(info: &TableInfo<'_>, roles: &[String]) -> Table {
    let lowest = roles.first().cloned().unwrap_or_default();
    Table {
        name: info.name().to_owned(),
        kind: info.kind,
        doc: info.decl.doc.clone(),
        columns: info
            .columns
            .iter()
            .filter_map(|(c, ty)| {
                Some(Column {
                    name: c.name.name.clone(),
                    ty: (*ty)?,
                    nullable: c.nullable,
                    default: c.default.as_ref().map(|d| d.value.clone()),
                    doc: c.doc.clone(),
                    distance: c
                        .distance
                        .as_ref()
                        .and_then(|d| VectorDistance::from_dsl(&d.name)),
                    per_tenant: c.per_tenant.is_some(),
                    stamp: info.stamps.get(c.name.name.as_str()).copied(),
                })
            })
            .collect(),
        primary_key: info.primary_key.clone(),
        unique_keys: info.unique_keys.clone(),
        foreign_keys: info
            .foreign_keys
            .iter()
            .map(|fk| ForeignKey {
                columns: fk.columns.iter().map(|c| c.name.clone()).collect(),
                table: fk.reference.table.name.clone(),
                target_columns: match &fk.reference.columns {
                    Some(cols) => names(cols),
                    // Filled from the target's primary key once every table is built.
                    None => Vec::new(),
                },
                on_delete: fk.reference.on_delete.map(|(a, _)| a).unwrap_or_default(),
            })
            .collect(),
        indexes: info.indexes.clone(),
        rules: info
            .rules
            .iter()
            .map(|rule| Rule {
                command: rule.command,
                min_role: rule.role.map_or_else(|| lowest.clone(), |r| r.name.clone()),
                condition: rule.condition.clone(),
                columns: rule.columns.clone(),
            })
            .collect(),
    }
}
