//! The syntax-tree pieces of a derived table ([`crate::dsl::ast`]), with spans on the Rust
//! tokens they were read from ([`SpanMap`]): what the DSL parser would have built had the
//! struct been written as a `.tenancy` declaration.

use quote::ToTokens;

use crate::dsl::ast::{
    ColumnDecl, CommandSpec, Constraint, DefaultExpr, Expr, Ident, Reference, RuleDecl, StampDecl,
    TypeExpr,
};
use crate::model::{Column, Command, DefaultValue, ForeignKey, IndexMethod, SqlType};

use super::spans::SpanMap;

/// A DSL identifier named `name`, spanned on `tokens`.
pub(crate) fn ident(spans: &mut SpanMap<'_>, name: &str, tokens: impl ToTokens) -> Ident {
    Ident {
        name: name.to_owned(),
        span: spans.of(tokens),
    }
}

/// A list of column names as written (`primary_key(a, b)`).
pub(crate) fn idents(spans: &mut SpanMap<'_>, list: &[syn::Ident]) -> Vec<Ident> {
    list.iter()
        .map(|column| {
            let name = syn::ext::IdentExt::unraw(column).to_string();
            ident(spans, &name, column)
        })
        .collect()
}

/// Where each part of a column was written.
pub(crate) struct ColumnTokens<'f> {
    /// The field's identifier (the column name).
    pub(crate) ident: &'f syn::Ident,
    /// The field's type (or its `sql_type = "..."` literal, when given).
    pub(crate) ty: &'f dyn ToTokens,
    /// `default = ...`.
    pub(crate) default: Option<&'f syn::Expr>,
    /// `references = "..."`.
    pub(crate) references: Option<&'f syn::LitStr>,
    /// `on_delete = "..."`.
    pub(crate) on_delete: Option<&'f syn::LitStr>,
    /// The `primary_key` key.
    pub(crate) primary_key: Option<&'f syn::Ident>,
    /// The `unique` key.
    pub(crate) unique: Option<&'f syn::Ident>,
    /// `stamp = "current_user on insert"`.
    pub(crate) stamp: Option<&'f syn::LitStr>,
}

/// The column declaration of a field already turned into `column` (its foreign key, if
/// any, in `foreign_key`).
pub(crate) fn column_decl(
    spans: &mut SpanMap<'_>,
    column: &Column,
    foreign_key: Option<&ForeignKey>,
    tokens: &ColumnTokens<'_>,
) -> ColumnDecl {
    let ty_span = spans.of(tokens.ty);
    let (name, arg) = match column.ty {
        SqlType::Vector(n) => ("vector".to_owned(), Some((n.to_string(), ty_span))),
        ty => (ty.dsl_name(), None),
    };
    let default = match (&column.default, tokens.default) {
        (Some(value), Some(expr)) => Some(default_expr(spans, value, expr)),
        _ => None,
    };
    let references = match (foreign_key, tokens.references) {
        (Some(fk), Some(lit)) => Some(reference(spans, fk, lit, tokens.on_delete)),
        _ => None,
    };
    ColumnDecl {
        doc: column.doc.clone(),
        name: ident(spans, &column.name, tokens.ident),
        ty: TypeExpr {
            name: Ident {
                name,
                span: ty_span,
            },
            arg,
            span: ty_span,
        },
        nullable: column.nullable,
        default,
        references,
        primary_key: tokens.primary_key.map(|key| spans.of(key)),
        unique: tokens.unique.map(|key| spans.of(key)),
        // The derive has no `distance` attribute: vector columns keep the cosine default.
        distance: None,
        per_tenant: None,
        stamp: tokens.stamp.map(|lit| stamp(spans, lit)),
    }
}

/// `stamp = "current_user on insert"` as the DSL's `= current_user on insert`; words it does
/// not know are left for the validator to report (at the literal).
fn stamp(spans: &mut SpanMap<'_>, lit: &syn::LitStr) -> StampDecl {
    let span = spans.of(lit);
    let text = lit.value();
    let mut words = text.split_whitespace();
    let value = words
        .next()
        .unwrap_or_default()
        .trim_end_matches("()")
        .to_owned();
    let on = words.next().unwrap_or_default();
    let when = if on == "on" {
        words.next().unwrap_or_default().to_owned()
    } else {
        on.to_owned()
    };
    StampDecl {
        value: Ident { name: value, span },
        when: Ident { name: when, span },
        span,
    }
}

/// `columns = "a, b"` as column names, every span on the literal (the validator reports
/// unknown or repeated names, as for the DSL's `(a, b)`).
pub(crate) fn column_names(spans: &mut SpanMap<'_>, lit: &syn::LitStr) -> Vec<Ident> {
    let span = spans.of(lit);
    lit.value()
        .split(',')
        .map(str::trim)
        .filter(|name| !name.is_empty())
        .map(|name| Ident {
            name: name.to_owned(),
            span,
        })
        .collect()
}

/// `where = "..."` parsed as a DSL condition, every span on the literal.
pub(crate) fn condition(spans: &mut SpanMap<'_>, lit: &syn::LitStr) -> Result<Expr, String> {
    let span = spans.of(lit);
    let mut diags = crate::dsl::Diagnostics::new();
    match crate::dsl::parse_condition_text(span.file, &lit.value(), &mut diags) {
        Some(mut expr) if !diags.has_errors() => {
            expr.respan(span);
            Ok(expr)
        }
        _ => Err(diags
            .iter()
            .next()
            .map(|d| format!("invalid condition: {}", d.message()))
            .unwrap_or_else(|| "invalid condition".to_owned())),
    }
}

fn default_expr(spans: &mut SpanMap<'_>, value: &DefaultValue, expr: &syn::Expr) -> DefaultExpr {
    DefaultExpr {
        value: value.clone(),
        span: spans.of(expr),
    }
}

/// `references = "table(cols)"` (and `on_delete = "..."`) as a column-level reference.
fn reference(
    spans: &mut SpanMap<'_>,
    fk: &ForeignKey,
    lit: &syn::LitStr,
    on_delete: Option<&syn::LitStr>,
) -> Reference {
    let span = spans.of(lit);
    let named = |name: &String| Ident {
        name: name.clone(),
        span,
    };
    let on_delete = on_delete.map(|action| (fk.on_delete, spans.of(action)));
    Reference {
        table: named(&fk.table),
        columns: (!fk.target_columns.is_empty())
            .then(|| fk.target_columns.iter().map(named).collect()),
        on_delete,
        span,
    }
}

/// `primary_key(...)`, `unique(...)`, `index(...)` or `gin_index(...)` on the struct.
pub(crate) fn constraint(
    spans: &mut SpanMap<'_>,
    kind: ConstraintKind,
    key: &syn::Ident,
    list: &[syn::Ident],
) -> Constraint {
    let span = spans.of(key);
    let columns = idents(spans, list);
    match kind {
        ConstraintKind::PrimaryKey => Constraint::PrimaryKey { span, columns },
        ConstraintKind::Unique => Constraint::Unique { span, columns },
        ConstraintKind::Index(method) => Constraint::Index {
            span,
            method,
            columns,
        },
    }
}

/// Which table-level item [`constraint`] builds.
#[derive(Debug, Clone, Copy)]
pub(crate) enum ConstraintKind {
    /// `primary_key(...)`.
    PrimaryKey,
    /// `unique(...)`.
    Unique,
    /// `index(...)` or `gin_index(...)`.
    Index(IndexMethod),
}

/// `select = Viewer` as `allow select to viewer` (`role` is `None` on global tables).
pub(crate) fn rule(
    spans: &mut SpanMap<'_>,
    command: Command,
    key: &syn::Ident,
    role: Option<(&str, &syn::Path)>,
    condition: Option<Expr>,
    columns: Option<Vec<Ident>>,
) -> RuleDecl {
    let span = spans.of(key);
    RuleDecl {
        span,
        commands: vec![(CommandSpec::One(command), span)],
        role: role.map(|(name, path)| ident(spans, name, path)),
        condition,
        columns,
    }
}
