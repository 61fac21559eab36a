//! Reading `#[tenancy(...)]` attributes into a DSL table declaration
//! ([`TableDecl`]), with every Rust-level misuse recorded as a spanned error.

use proc_macro2::Span;
use syn::meta::ParseNestedMeta;

use crate::dsl::ast::{ColumnDecl, Constraint, RuleDecl, TableDecl};
use crate::model::{
    Column, Command, ForeignKey, IndexMethod, OnDelete, SqlType, TableKind, PROJECT_COLUMN,
    TENANT_COLUMN,
};

use super::decl::{self, ColumnTokens, ConstraintKind};
use super::spans::SpanMap;
use super::types::{self, RustType};
use super::{role_name, suggestion, Errors};

/// Every key `#[tenancy(...)]` accepts on the struct.
const STRUCT_KEYS: [&str; 13] = [
    "table",
    "allow",
    "scoped",
    "global",
    "primary_key",
    "unique",
    "index",
    "gin_index",
    "select",
    "insert",
    "update",
    "delete",
    "roles",
];

/// Every key `#[tenancy(...)]` accepts on a field.
const FIELD_KEYS: [&str; 7] = [
    "sql_type",
    "stamp",
    "default",
    "references",
    "on_delete",
    "unique",
    "primary_key",
];

/// A list of column names as written, e.g. the `(id, ordinal)` of `unique(id, ordinal)`.
type ColumnList = Vec<syn::Ident>;

/// The struct-level attributes, as written.
/// One command of an `allow(...)` (or `command = Role`): the command, its key, the role, the
/// condition and the column list as written.
type AllowAttr = (
    Command,
    syn::Ident,
    Option<syn::Path>,
    Option<syn::LitStr>,
    Option<syn::LitStr>,
);

#[derive(Default)]
struct StructAttrs {
    table: Option<syn::LitStr>,
    kind: Option<(TableKind, syn::Ident)>,
    primary_keys: Vec<(syn::Ident, ColumnList)>,
    unique_keys: Vec<(syn::Ident, ColumnList)>,
    indexes: Vec<(IndexMethod, syn::Ident, ColumnList)>,
    /// `command = Role` and `allow(command, ..., to = Role, where = "...", columns = "a, b")`,
    /// in order.
    rules: Vec<AllowAttr>,
    roles: Option<syn::Path>,
    /// Keys an unknown key was taken for (`tabel` -> `table`), and keys written without
    /// their value or list (`table,`): no second error says they are missing.
    misspelled: Vec<String>,
}

/// The field-level attributes, as written.
#[derive(Default)]
struct FieldAttrs {
    sql_type: Option<syn::LitStr>,
    stamp: Option<syn::LitStr>,
    default: Option<syn::Expr>,
    references: Option<syn::LitStr>,
    on_delete: Option<syn::LitStr>,
    unique: Option<syn::Ident>,
    primary_key: Option<syn::Ident>,
}

fn is_tenancy(attr: &syn::Attribute) -> bool {
    attr.path().is_ident("tenancy")
}

/// The `///` text of `attrs` (one leading space removed per line, lines joined by `\n`), as
/// the DSL keeps it.
fn doc_text(attrs: &[syn::Attribute]) -> Option<String> {
    let lines: Vec<String> = attrs
        .iter()
        .filter(|a| a.path().is_ident("doc"))
        .filter_map(|a| match &a.meta {
            syn::Meta::NameValue(syn::MetaNameValue {
                value:
                    syn::Expr::Lit(syn::ExprLit {
                        lit: syn::Lit::Str(text),
                        ..
                    }),
                ..
            }) => {
                let text = text.value();
                Some(text.strip_prefix(' ').unwrap_or(&text).to_owned())
            }
            _ => None,
        })
        .collect();
    (!lines.is_empty()).then(|| lines.join("\n"))
}

/// Skips the value of an unknown key (`= expr` or `(...)`) so parsing can go on.
fn skip_value(meta: &ParseNestedMeta<'_>) -> syn::Result<()> {
    if meta.input.peek(syn::Token![=]) {
        meta.value()?.parse::<syn::Expr>()?;
    } else if meta.input.peek(syn::token::Paren) {
        meta.input.parse::<proc_macro2::TokenTree>()?;
    }
    Ok(())
}

/// The `= value` of a key, with an error naming the key when the `=` is missing.
fn key_value<'m, 'b>(
    meta: &'m ParseNestedMeta<'b>,
    key: &syn::Ident,
    example: &str,
) -> syn::Result<&'m syn::parse::ParseBuffer<'b>> {
    if !meta.input.peek(syn::Token![=]) {
        return Err(meta.error(format!("`{key}` takes a value: `{key} = {example}`")));
    }
    meta.value()
}

/// The identifier of a key (`table`), or an error for a path like `a::b`.
fn key_ident(meta: &ParseNestedMeta<'_>) -> syn::Result<syn::Ident> {
    meta.path
        .get_ident()
        .cloned()
        .ok_or_else(|| meta.error("expected a key such as `table = \"...\"`"))
}

/// Records an unknown key; returns the key it was probably meant to be.
fn unknown_key(
    errors: &mut Errors,
    key: &syn::Ident,
    what: &str,
    known: &[&str],
) -> Option<String> {
    let name = key.to_string();
    let meant = suggestion(&name, known);
    let message = match &meant {
        Some(s) => {
            format!("unknown {what} attribute `{name}` in #[tenancy(...)]; did you mean `{s}`?")
        }
        None => format!(
            "unknown {what} attribute `{name}` in #[tenancy(...)]; expected one of: {}",
            known.join(", ")
        ),
    };
    errors.spanned(key, message);
    meant
}

/// A parenthesised list of column identifiers: `(a, b)`.
fn column_list(meta: &ParseNestedMeta<'_>) -> syn::Result<ColumnList> {
    if !meta.input.peek(syn::token::Paren) {
        let key = meta
            .path
            .get_ident()
            .map_or_else(String::new, ToString::to_string);
        return Err(meta.error(format!(
            "`{key}` takes a list of columns in parentheses, e.g. `{key}(id)`"
        )));
    }
    let mut columns = Vec::new();
    meta.parse_nested_meta(|inner| {
        columns.push(key_ident(&inner)?);
        Ok(())
    })?;
    if columns.is_empty() {
        return Err(meta.error("expected at least one column, e.g. `(id)`"));
    }
    Ok(columns)
}

fn parse_struct_attrs(attrs: &[syn::Attribute], errors: &mut Errors) -> StructAttrs {
    let mut out = StructAttrs::default();
    for attr in attrs.iter().filter(|a| is_tenancy(a)) {
        let result = attr.parse_nested_meta(|meta| {
            let key = key_ident(&meta)?;
            let name = key.to_string();
            let command = match name.as_str() {
                "select" => Some(Command::Select),
                "insert" => Some(Command::Insert),
                "update" => Some(Command::Update),
                "delete" => Some(Command::Delete),
                _ => None,
            };
            if let Some(command) = command {
                let role = if meta.input.peek(syn::Token![=]) {
                    Some(meta.value()?.parse::<syn::Path>()?)
                } else {
                    None
                };
                if out
                    .rules
                    .iter()
                    .any(|(c, _, _, w, l)| *c == command && w.is_none() && l.is_none())
                {
                    errors.spanned(&key, format!("duplicate `{name}` rule"));
                } else {
                    out.rules.push((command, key, role, None, None));
                }
                return Ok(());
            }
            match name.as_str() {
                "allow" => parse_allow(&meta, &mut out, errors)?,
                "table" => {
                    // A key without its value is reported and skipped, so the keys after it
                    // are still read (no "missing table kind" after `table,`).
                    let value: syn::LitStr = match key_value(&meta, &key, "\"notes\"") {
                        Ok(value) => value.parse()?,
                        Err(error) => {
                            errors.push(error);
                            out.misspelled.push(name);
                            return Ok(());
                        }
                    };
                    if out.table.is_some() {
                        errors.spanned(&key, "duplicate `table`");
                    }
                    out.table = Some(value);
                }
                "scoped" | "global" => {
                    let kind = if name == "scoped" {
                        TableKind::Scoped
                    } else {
                        TableKind::Global
                    };
                    if let Some((_, first)) = &out.kind {
                        let message = if *first == name {
                            format!("duplicate `{name}`")
                        } else {
                            format!("`{name}` conflicts with `{first}`: a table is either scoped or global")
                        };
                        errors.spanned(&key, message);
                    } else {
                        out.kind = Some((kind, key));
                    }
                }
                "primary_key" => match column_list(&meta) {
                    Ok(list) => out.primary_keys.push((key, list)),
                    Err(error) if !meta.input.peek(syn::token::Paren) => {
                        errors.push(error);
                        out.misspelled.push(name);
                    }
                    Err(error) => return Err(error),
                },
                "unique" => {
                    let list = column_list(&meta)?;
                    out.unique_keys.push((key, list));
                }
                "index" | "gin_index" => {
                    let method = if name == "index" {
                        IndexMethod::BTree
                    } else {
                        IndexMethod::Gin
                    };
                    let list = column_list(&meta)?;
                    out.indexes.push((method, key, list));
                }
                "roles" => out.roles = Some(key_value(&meta, &key, "crate::Role")?.parse()?),
                _ => {
                    if let Some(meant) = unknown_key(errors, &key, "struct", &STRUCT_KEYS) {
                        out.misspelled.push(meant);
                    }
                    skip_value(&meta)?;
                }
            }
            Ok(())
        });
        if let Err(error) = result {
            errors.push(error);
        }
    }
    out
}

/// `allow(update, delete, to = Editor, where = "created_by = current_user")`: one rule per
/// command, with an optional role, condition and column list (`columns = "title, body"`),
/// checked later, as the DSL's.
fn parse_allow(
    meta: &ParseNestedMeta<'_>,
    out: &mut StructAttrs,
    errors: &mut Errors,
) -> syn::Result<()> {
    let mut commands: Vec<(Command, syn::Ident)> = Vec::new();
    let mut role: Option<syn::Path> = None;
    let mut condition: Option<syn::LitStr> = None;
    let mut columns: Option<syn::LitStr> = None;
    meta.parse_nested_meta(|inner| {
        let key = key_ident(&inner)?;
        let name = syn::ext::IdentExt::unraw(&key).to_string();
        match name.as_str() {
            "select" => commands.push((Command::Select, key)),
            "insert" => commands.push((Command::Insert, key)),
            "update" => commands.push((Command::Update, key)),
            "delete" => commands.push((Command::Delete, key)),
            "to" => role = Some(inner.value()?.parse()?),
            "where" => condition = Some(inner.value()?.parse()?),
            "columns" => columns = Some(inner.value()?.parse()?),
            _ => {
                unknown_key(
                    errors,
                    &key,
                    "allow(...)",
                    &[
                        "select", "insert", "update", "delete", "to", "where", "columns",
                    ],
                );
                skip_value(&inner)?;
            }
        }
        Ok(())
    })?;
    if commands.is_empty() {
        errors.spanned(
            &meta.path,
            "`allow(...)` names no command; write e.g. `allow(update, to = Editor, where = \"...\")`",
        );
    }
    for (command, key) in commands {
        out.rules.push((
            command,
            key,
            role.clone(),
            condition.clone(),
            columns.clone(),
        ));
    }
    Ok(())
}

fn parse_field_attrs(attrs: &[syn::Attribute], errors: &mut Errors) -> FieldAttrs {
    let mut out = FieldAttrs::default();
    for attr in attrs.iter().filter(|a| is_tenancy(a)) {
        let result = attr.parse_nested_meta(|meta| {
            let key = key_ident(&meta)?;
            match key.to_string().as_str() {
                "sql_type" => {
                    out.sql_type = Some(key_value(&meta, &key, "\"vector(384)\"")?.parse()?);
                }
                "stamp" => {
                    out.stamp =
                        Some(key_value(&meta, &key, "\"current_user on insert\"")?.parse()?);
                }
                "default" => out.default = Some(key_value(&meta, &key, "\"now()\"")?.parse()?),
                "references" => {
                    out.references = Some(key_value(&meta, &key, "\"notes(id)\"")?.parse()?);
                }
                "on_delete" => {
                    out.on_delete = Some(key_value(&meta, &key, "\"cascade\"")?.parse()?);
                }
                "unique" => out.unique = Some(key),
                "primary_key" => out.primary_key = Some(key),
                _ => {
                    unknown_key(errors, &key, "field", &FIELD_KEYS);
                    skip_value(&meta)?;
                }
            }
            Ok(())
        });
        if let Err(error) = result {
            errors.push(error);
        }
    }
    out
}

/// True for `[a-z_][a-z0-9_]*` of at most 63 bytes (a plain PostgreSQL identifier).
fn is_plain_identifier(name: &str) -> bool {
    name.len() <= 63
        && name
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_lowercase() || c == '_')
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
}

/// `notes(id)` or `notes` -> (table, target columns).
fn parse_reference(text: &str) -> Option<(String, Vec<String>)> {
    let text = text.trim();
    let (table, columns) = match text.split_once('(') {
        Some((table, rest)) => {
            let inner = rest.strip_suffix(')')?;
            let columns: Vec<String> = inner.split(',').map(|c| c.trim().to_owned()).collect();
            (table.trim(), columns)
        }
        None => (text, Vec::new()),
    };
    let valid = is_plain_identifier(table) && columns.iter().all(|c| is_plain_identifier(c));
    valid.then(|| (table.to_owned(), columns))
}

fn parse_on_delete(text: &str) -> Option<OnDelete> {
    match text.trim().to_ascii_lowercase().as_str() {
        "cascade" => Some(OnDelete::Cascade),
        "restrict" => Some(OnDelete::Restrict),
        "set null" | "set_null" => Some(OnDelete::SetNull),
        "no action" | "no_action" => Some(OnDelete::NoAction),
        _ => None,
    }
}

/// One field turned into a column (or `None` after recording why not).
fn build_column(
    field: &syn::Field,
    ident: &syn::Ident,
    name: &str,
    attrs: &FieldAttrs,
    errors: &mut Errors,
) -> Option<Column> {
    let (inner, nullable) = types::strip_option(&field.ty);
    let declared = match &attrs.sql_type {
        Some(lit) => match types::parse_sql_type(&lit.value()) {
            Ok(ty) => Some((ty, lit)),
            Err(message) => {
                errors.spanned(lit, message);
                return None;
            }
        },
        None => None,
    };
    let ty = match (types::rust_type(inner), declared) {
        (RustType::Known(ty), None) => ty,
        (RustType::Known(ty), Some((declared, lit))) => {
            if ty != declared {
                errors.spanned(
                    lit,
                    format!(
                        "`sql_type = \"{}\"` does not match the field's Rust type, which maps to `{}`; a `{}` column is read into `{}`",
                        lit.value(),
                        ty.dsl_name(),
                        declared.dsl_name(),
                        types::rust_type_name(declared)
                    ),
                );
                return None;
            }
            ty
        }
        (RustType::Vector, Some((SqlType::Vector(n), _))) => SqlType::Vector(n),
        (RustType::Vector, Some((_, lit))) => {
            errors.spanned(lit, "a `Vector` field needs `sql_type = \"vector(N)\"`");
            return None;
        }
        (RustType::Vector, None) => {
            errors.spanned(
                inner,
                format!("the dimension of `{ident}` is unknown; add #[tenancy(sql_type = \"vector(N)\")], e.g. `vector(384)`"),
            );
            return None;
        }
        (RustType::Unknown(_), Some((declared, _))) => declared,
        (RustType::Unknown(ty), None) => {
            errors.spanned(
                ty,
                format!(
                    "unsupported field type for column `{name}`; use uuid::Uuid, String, i16, i32, i64, f32, f64, bool, chrono::NaiveDate, chrono::DateTime<Utc>, serde_json::Value, Vec<u8> (or Option of one), or add #[tenancy(sql_type = \"...\")]"
                ),
            );
            return None;
        }
    };
    // Whether the value fits the column's type is the validator's check (on `expr`).
    let default = match &attrs.default {
        Some(expr) => match types::parse_default(expr) {
            Ok(value) => Some(value),
            Err(message) => {
                errors.spanned(expr, message);
                None
            }
        },
        None => None,
    };
    Some(Column {
        name: name.to_owned(),
        ty,
        nullable,
        default,
        doc: doc_text(&field.attrs),
        distance: None,
        per_tenant: false,
        stamp: None,
    })
}

/// Checks that every column of `list` exists; records an error for each one that does not.
fn check_columns(list: &[syn::Ident], known: &[&str], errors: &mut Errors) -> Vec<String> {
    let mut out = Vec::new();
    for column in list {
        let name = column.to_string();
        if known.contains(&name.as_str()) {
            out.push(name);
        } else {
            let message = match suggestion(&name, known) {
                Some(s) => format!("no field `{name}` in this struct; did you mean `{s}`?"),
                None => format!("no field `{name}` in this struct"),
            };
            errors.spanned(column, message);
        }
    }
    out
}

/// What [`build`] read from a struct: the table as the DSL parser would have declared it,
/// and what the expansion needs besides.
pub(crate) struct Built {
    /// The table declaration, spanned on the Rust tokens (validated by the DSL validator).
    pub(crate) decl: TableDecl,
    /// The marker type of every role the rules name, keyed by role name.
    pub(crate) role_markers: Vec<(String, syn::Path)>,
    /// Every field's identifier with the name of its column, in declaration order.
    pub(crate) fields: Vec<(syn::Ident, String)>,
}

/// Reads the table of `input` into a declaration with spans from `spans`, recording every
/// Rust-level problem (attribute syntax, field types, misplaced keys) in `errors`. The
/// semantic checks shared with the DSL are the validator's, run on the declaration.
pub(crate) fn build(
    input: &syn::DeriveInput,
    errors: &mut Errors,
    spans: &mut SpanMap<'_>,
) -> Option<Built> {
    let attrs = parse_struct_attrs(&input.attrs, errors);
    if !input.generics.params.is_empty() {
        errors.spanned(
            &input.generics,
            "#[derive(TenantScoped)] does not support generic structs",
        );
    }
    let fields = match &input.data {
        syn::Data::Struct(syn::DataStruct {
            fields: syn::Fields::Named(fields),
            ..
        }) => Some(&fields.named),
        _ => {
            errors.spanned(
                &input.ident,
                "#[derive(TenantScoped)] needs a struct with named fields (one per column)",
            );
            None
        }
    };
    let table_name = match &attrs.table {
        // The name is checked by the validator's identifier rule, at the string, as in the DSL.
        Some(lit) => Some(lit.value()),
        None if attrs.misspelled.iter().any(|k| k == "table") => None,
        None => {
            errors.spanned(
                &input.ident,
                format!(
                    "missing table name; add #[tenancy(table = \"...\")] to `{}`",
                    input.ident
                ),
            );
            None
        }
    };
    let kind = match &attrs.kind {
        Some((kind, _)) => Some(*kind),
        None if attrs
            .misspelled
            .iter()
            .any(|k| k == "scoped" || k == "global") =>
        {
            None
        }
        None => {
            errors.spanned(
                &input.ident,
                "missing table kind; add `scoped` (owned by a project) or `global` (shared by all tenants) to #[tenancy(...)]",
            );
            None
        }
    };
    let scoped = kind == Some(TableKind::Scoped);

    let mut columns = Vec::new();
    let mut column_decls: Vec<ColumnDecl> = Vec::new();
    let mut field_names = Vec::new();
    let mut field_pks: Vec<(syn::Ident, String)> = Vec::new();
    for field in fields.into_iter().flatten() {
        let Some(ident) = &field.ident else { continue };
        let name = syn::ext::IdentExt::unraw(ident).to_string();
        let field_attrs = parse_field_attrs(&field.attrs, errors);
        if scoped && (name == TENANT_COLUMN || name == PROJECT_COLUMN) {
            errors.spanned(
                ident,
                format!(
                    "`{name}` is generated for every scoped table; remove this field (the scope supplies the tenant and project, and the generated row type `<table>::<Row>` has `{name}`)"
                ),
            );
            continue;
        }
        field_names.push((ident.clone(), name.clone()));
        let Some(column) = build_column(field, ident, &name, &field_attrs, errors) else {
            continue;
        };
        if let Some(pk) = &field_attrs.primary_key {
            field_pks.push((pk.clone(), name.clone()));
        }
        let mut foreign_key = None;
        match (&field_attrs.references, &field_attrs.on_delete) {
            (Some(lit), on_delete) => {
                let on_delete = match on_delete {
                    Some(action) => match parse_on_delete(&action.value()) {
                        Some(OnDelete::SetNull) if !column.nullable => {
                            errors.spanned(
                                action,
                                format!("`on_delete = \"set null\"` needs a nullable column; make `{ident}` an `Option<...>`"),
                            );
                            OnDelete::SetNull
                        }
                        Some(action) => action,
                        None => {
                            errors.spanned(
                                action,
                                "unknown `on_delete`; expected \"cascade\", \"restrict\", \"set null\" or \"no action\"",
                            );
                            OnDelete::NoAction
                        }
                    },
                    None => OnDelete::NoAction,
                };
                match parse_reference(&lit.value()) {
                    Some((table, target_columns)) => foreign_key = Some(ForeignKey {
                        columns: vec![name.clone()],
                        table,
                        target_columns,
                        on_delete,
                    }),
                    None => errors.spanned(
                        lit,
                        "expected `references = \"table(column, ...)\"` or `references = \"table\"`",
                    ),
                }
            }
            (None, Some(action)) => {
                errors.spanned(action, "`on_delete` needs `references = \"table(column)\"`")
            }
            (None, None) => {}
        }
        let ty: &dyn quote::ToTokens = match &field_attrs.sql_type {
            Some(lit) => lit,
            None => &field.ty,
        };
        let tokens = ColumnTokens {
            ident,
            ty,
            default: field_attrs.default.as_ref(),
            references: field_attrs.references.as_ref(),
            on_delete: field_attrs.on_delete.as_ref(),
            primary_key: field_attrs.primary_key.as_ref(),
            unique: field_attrs.unique.as_ref(),
            stamp: field_attrs.stamp.as_ref(),
        };
        column_decls.push(decl::column_decl(
            spans,
            &column,
            foreign_key.as_ref(),
            &tokens,
        ));
        columns.push(column);
    }

    // Keys and indexes may name the generated scope columns.
    let mut known: Vec<&str> = field_names.iter().map(|(_, n)| n.as_str()).collect();
    if scoped {
        known.extend([TENANT_COLUMN, PROJECT_COLUMN]);
    }
    let mut primary_key: Vec<String> = Vec::new();
    let mut pk_spans: Vec<Span> = Vec::new();
    let mut constraints: Vec<Constraint> = Vec::new();
    for (pk, name) in &field_pks {
        pk_spans.push(pk.span());
        if primary_key.is_empty() {
            primary_key = vec![name.clone()];
        }
    }
    for (key, list) in &attrs.primary_keys {
        pk_spans.push(key.span());
        let checked = check_columns(list, &known, errors);
        if primary_key.is_empty() && checked.len() == list.len() {
            primary_key = checked;
            constraints.push(decl::constraint(
                spans,
                ConstraintKind::PrimaryKey,
                key,
                list,
            ));
        }
    }
    for extra in pk_spans.iter().skip(1) {
        errors.at(
            *extra,
            "a table has one primary key; use `unique(...)` for the other keys",
        );
    }
    let pk_reported = attrs.misspelled.iter().any(|k| k == "primary_key");
    if pk_spans.is_empty() && kind.is_some() && fields.is_some() && !pk_reported {
        errors.spanned(
            &input.ident,
            format!(
                "{} table{} has no primary key; add `primary_key(id)` to #[tenancy(...)] or #[tenancy(primary_key)] to a field",
                kind.map_or("a", |k| k.keyword()),
                table_name
                    .as_deref()
                    .map(|name| format!(" `{name}`"))
                    .unwrap_or_default()
            ),
        );
    }
    for name in &primary_key {
        if columns.iter().any(|c| &c.name == name && c.nullable) {
            if let Some((ident, _)) = field_names.iter().find(|(_, n)| n == name) {
                errors.spanned(
                    ident,
                    format!("primary key column `{name}` cannot be an `Option`"),
                );
            }
        }
    }
    for (key, list) in &attrs.unique_keys {
        let checked = check_columns(list, &known, errors);
        if checked.len() == list.len() {
            constraints.push(decl::constraint(spans, ConstraintKind::Unique, key, list));
        }
    }
    for (method, key, list) in &attrs.indexes {
        // A `gin_index` on a column that is not jsonb is the validator's check.
        let checked = check_columns(list, &known, errors);
        if checked.len() == list.len() {
            let kind = ConstraintKind::Index(*method);
            constraints.push(decl::constraint(spans, kind, key, list));
        }
    }

    let rules = build_rules(&attrs, kind, errors, spans);
    let role_markers = role_markers(&attrs);

    if !errors.is_empty() {
        return None;
    }
    let (Some(table_name), Some(kind), Some((_, kind_ident)), Some(table_lit)) =
        (table_name, kind, &attrs.kind, &attrs.table)
    else {
        return None;
    };
    let decl = TableDecl {
        doc: doc_text(&input.attrs),
        kind: Some(kind),
        kind_span: spans.of(kind_ident),
        name: decl::ident(spans, &table_name, table_lit),
        adopts: None,
        columns: column_decls,
        constraints,
        rules,
    };
    Some(Built {
        decl,
        role_markers,
        fields: field_names,
    })
}

/// The rules in canonical command order, checked against the table kind.
fn build_rules(
    attrs: &StructAttrs,
    kind: Option<TableKind>,
    errors: &mut Errors,
    spans: &mut SpanMap<'_>,
) -> Vec<RuleDecl> {
    let mut rules = Vec::new();
    for command in Command::ALL {
        for (_, key, role, condition, columns) in attrs.rules.iter().filter(|(c, ..)| *c == command)
        {
            match (kind, role) {
                (Some(TableKind::Global), _) if command != Command::Select => {
                    errors.spanned(
                        key,
                        format!("a global table cannot allow `{command}`: it is shared by every tenant and read-only for the application"),
                    );
                }
                (Some(TableKind::Global), Some(role)) => {
                    errors.spanned(
                        role,
                        "global tables have no project, so no project role applies; write `select` without a role",
                    );
                }
                (Some(TableKind::Global), None) => {
                    rules.push(decl::rule(spans, command, key, None, None, None));
                }
                (_, None) => {
                    errors.spanned(
                        key,
                        format!("`{command}` names no role; write the lowest role allowed, e.g. `{command} = Viewer`"),
                    );
                }
                (_, Some(role)) => {
                    let name = role_name(role);
                    let condition = match condition {
                        Some(lit) => match decl::condition(spans, lit) {
                            Ok(expr) => Some(expr),
                            Err(message) => {
                                errors.spanned(lit, message);
                                continue;
                            }
                        },
                        None => None,
                    };
                    let columns = columns.as_ref().map(|lit| decl::column_names(spans, lit));
                    rules.push(decl::rule(
                        spans,
                        command,
                        key,
                        Some((&name, role)),
                        condition,
                        columns,
                    ));
                }
            }
        }
    }
    rules
}

/// Each role's marker type: `<roles>::<Ident>` when `roles = path` is given and the role is
/// a single identifier, the path as written otherwise.
fn role_markers(attrs: &StructAttrs) -> Vec<(String, syn::Path)> {
    let mut out: Vec<(String, syn::Path)> = Vec::new();
    for (_, _, role, _, _) in &attrs.rules {
        let Some(role) = role else { continue };
        let name = role_name(role);
        if out.iter().any(|(n, _)| *n == name) {
            continue;
        }
        let path = match (&attrs.roles, role.get_ident()) {
            (Some(prefix), Some(ident)) => {
                let mut path = prefix.clone();
                path.segments.push(syn::PathSegment::from(ident.clone()));
                path
            }
            _ => role.clone(),
        };
        out.push((name, path));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::DefaultValue;

    fn errors_of(input: syn::DeriveInput) -> Vec<String> {
        match crate::derive::derive_table(&input) {
            Ok(_) => Vec::new(),
            Err(error) => error.into_iter().map(|e| e.to_string()).collect(),
        }
    }

    #[test]
    fn every_problem_is_reported_at_once() {
        let errors = errors_of(syn::parse_quote! {
            #[tenancy(tabel = "x", scoped, select = Viewer)]
            struct Thing {
                tenant_id: uuid::Uuid,
                weird: std::collections::HashMap<String, String>,
            }
        });
        // The misspelled `table` is reported once, not again as a missing table name.
        assert_eq!(errors.len(), 4, "{errors:#?}");
        assert!(errors[0].contains("did you mean `table`"));
        assert!(!errors.iter().any(|e| e.contains("missing table name")));
        assert!(errors
            .iter()
            .any(|e| e.contains("`tenant_id` is generated")));
        assert!(errors.iter().any(|e| e.contains("unsupported field type")));
        assert!(errors.iter().any(|e| e.contains("has no primary key")));
    }

    #[test]
    fn field_attributes_build_columns_and_keys() {
        let input: syn::DeriveInput = syn::parse_quote! {
            /// Doc line.
            #[tenancy(table = "chunks", scoped, primary_key(id), unique(document_id, ordinal))]
            #[tenancy(select = Viewer, insert = roles::Editor)]
            struct Chunk {
                #[tenancy(default = "gen_random_uuid()")]
                id: Uuid,
                #[tenancy(references = "documents(id)", on_delete = "cascade")]
                document_id: Uuid,
                ordinal: i32,
                #[tenancy(sql_type = "vector(3)")]
                embedding: Option<pgvector::Vector>,
            }
        };
        let derived = crate::derive::derive_table(&input).expect("valid");
        let table = derived.table;
        assert_eq!(table.doc.as_deref(), Some("Doc line."));
        assert_eq!(table.columns[3].ty, SqlType::Vector(3));
        assert!(table.columns[3].nullable);
        assert_eq!(table.columns[0].default, Some(DefaultValue::GenRandomUuid));
        assert_eq!(table.foreign_keys[0].on_delete, OnDelete::Cascade);
        assert_eq!(table.rules[1].min_role, "editor");
        assert_eq!(table.unique_keys, vec![vec!["document_id", "ordinal"]]);
        assert_eq!(derived.role_markers.len(), 2);
    }
}
