//! Rule: every name the SQL emitter generates (constraints, indexes, policies, triggers,
//! types, the Rust role types) is unique in its PostgreSQL namespace across the whole model.
//! The names are computed by the emitter's own functions ([`crate::sql::names`]); a collision
//! is reported at both declarations that produce the name.

use super::*;
use crate::model::{PROJECT_COLUMN, TENANT_COLUMN};
use crate::sql::names::{name_collisions, GeneratedName, NameSource, Namespace, ObjectKind};

/// Where a key, foreign key or index was declared, with its columns as written.
struct Declared {
    kind: ObjectKind,
    columns: Vec<String>,
    span: Span,
}

/// The declared keys, foreign keys and indexes of one table.
fn declared_items(decl: &TableDecl) -> Vec<Declared> {
    let mut out = Vec::new();
    for column in &decl.columns {
        let columns = vec![column.name.name.clone()];
        if let Some(span) = column.primary_key {
            out.push(Declared {
                kind: ObjectKind::PrimaryKey,
                columns: columns.clone(),
                span,
            });
        }
        if let Some(span) = column.unique {
            out.push(Declared {
                kind: ObjectKind::UniqueKey,
                columns: columns.clone(),
                span,
            });
        }
        if let Some(reference) = &column.references {
            out.push(Declared {
                kind: ObjectKind::ForeignKey,
                columns,
                span: reference.span,
            });
        }
    }
    for constraint in &decl.constraints {
        let (kind, columns, span) = match constraint {
            Constraint::PrimaryKey { span, columns } => (ObjectKind::PrimaryKey, columns, span),
            Constraint::Unique { span, columns } => (ObjectKind::UniqueKey, columns, span),
            Constraint::Index { span, columns, .. } => (ObjectKind::Index, columns, span),
            Constraint::ForeignKey { span, columns, .. } => (ObjectKind::ForeignKey, columns, span),
        };
        out.push(Declared {
            kind,
            columns: names(columns),
            span: *span,
        });
    }
    out
}

/// `columns` without the scope columns the generator adds in front of keys.
fn without_scope(columns: &[String]) -> Vec<&str> {
    columns
        .iter()
        .map(String::as_str)
        .filter(|c| *c != TENANT_COLUMN && *c != PROJECT_COLUMN)
        .collect()
}

/// How a namespace is described in the note.
fn namespace_description(namespace: &Namespace) -> String {
    match namespace {
        Namespace::Relation(schema) => {
            format!("tables and indexes (unique and primary keys included) of schema `{schema}`")
        }
        Namespace::Type(schema) => format!("types of schema `{schema}`"),
        Namespace::Constraint(table) => format!("constraints of table `{table}`"),
        Namespace::Policy(table) => format!("policies of table `{table}`"),
        Namespace::Trigger(table) => format!("triggers of table `{table}`"),
        Namespace::Function(schema) => format!("functions of schema `{schema}`"),
        Namespace::RustRole => "role types of the generated Rust `roles` module".to_owned(),
    }
}

impl<'a> Checker<'_, 'a> {
    /// Where `name` comes from in the sources: the declaration of its key or index, else its
    /// table's (or role's) name; `avoid` is a span already used for the other name of a pair.
    fn generated_name_span(
        &self,
        name: &GeneratedName,
        decls: &[&'a TableDecl],
        roles: &[&'a Ident],
        avoid: Option<Span>,
    ) -> Option<Span> {
        let table_decl = |table: &str| decls.iter().find(|d| d.name.name == table).copied();
        match &name.source {
            NameSource::Table(table) => table_decl(table).map(|d| d.name.span),
            NameSource::Role(role) => roles.iter().find(|r| r.name == *role).map(|r| r.span),
            NameSource::Fixed => None,
            NameSource::Columns { table, columns } => {
                let decl = table_decl(table)?;
                let wanted = without_scope(columns);
                let matching: Vec<Span> = declared_items(decl)
                    .into_iter()
                    .filter(|d| d.kind == name.kind && without_scope(&d.columns) == wanted)
                    .map(|d| d.span)
                    .collect();
                matching
                    .iter()
                    .find(|s| Some(**s) != avoid)
                    .or(matching.first())
                    .copied()
                    .or(Some(decl.name.span))
            }
        }
    }

    /// Rule: no two generated names collide (see the module docs). Returns false after
    /// reporting a collision.
    pub(super) fn check_generated_names(
        &mut self,
        model: &Model,
        decls: &[&'a TableDecl],
        roles: &[&'a Ident],
        fallback: Span,
    ) -> bool {
        let collisions = name_collisions(model);
        // A unique key's name is taken twice (its constraint and its index): report it once.
        let mut reported: Vec<(&str, Option<Span>, Option<Span>)> = Vec::new();
        for (first, second) in &collisions {
            let first_span = self.generated_name_span(first, decls, roles, None);
            let second_span = self.generated_name_span(second, decls, roles, first_span);
            let key = (second.name.as_str(), first_span, second_span);
            if reported.contains(&key) {
                continue;
            }
            reported.push(key);
            let (primary, secondary) = match (first_span, second_span) {
                (_, Some(second)) => (second, first_span),
                (Some(first), None) => (first, None),
                (None, None) => (fallback, None),
            };
            let what = |n: &GeneratedName| n.kind.description();
            let mut d = Diagnostic::error(
                format!("two objects would be named `{}`", second.name),
                primary,
                format!("this {} is created as `{}`", what(second), second.name),
            )
            .with_note(format!(
                "PostgreSQL keeps one object per name among the {}: the migration would fail, \
                 and the model would never diff clean against itself",
                namespace_description(&second.namespace)
            ))
            .with_help(
                "rename a table, column or role so the generated names differ, or remove the \
                 duplicate declaration",
            );
            match secondary {
                Some(span) => {
                    d = d.with_secondary(span, format!("so is this {}", what(first)));
                }
                None => {
                    d = d.with_note(format!(
                        "`{}` is also the name of the tenancy core's {}",
                        first.name,
                        what(first)
                    ));
                }
            }
            self.error(d);
        }
        collisions.is_empty()
    }
}
