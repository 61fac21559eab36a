//! The syntax tree of one table's repository: row, input and filter types, and the
//! repository methods its rules allow.
//!
//! The bulk of every file (struct fields, method signatures and bodies, the SQL constants)
//! is built as `syn` trees directly with the builders of [`super::ast`]; emitting tokens
//! with `quote!` and parsing them back was most of the emitter's time. Struct headers, the
//! pagination helpers and the `ProjectRole` enum, small and fixed, are still written with
//! `quote!` and parsed. The comments show the Rust each part builds.

mod methods;
mod types;

use proc_macro2::{Ident, TokenStream};
use quote::quote;
use syn::punctuated::Punctuated;
use syn::{Expr, Field, ImplItem, ImplItemFn, Item, ItemStruct, Stmt, Type};

use crate::model::{Column, Command, SqlType};

use super::ast::{
    async_fn, await_try, binds, call, closure, deref, doc_attrs, field, for_loop, ident,
    inherent_impl, int, let_, let_typed, match_expr, method, named_fields, ok_tail, option_type,
    parse_stmts, path, path_expr, path_type, pub_field, qualified_path, reference, reference_type,
    semi, slice_pat, sqlx_query, str_const, var, vec_type, wild_pat, with_args,
};
use super::naming::{camel_case, snake_ident};
use super::shape::Shape;
use super::types::{row_field_type, rust_type};

/// Name of the generated role enum used by the memberships repository.
const PROJECT_ROLE: &str = "ProjectRole";

fn doc(text: &str) -> TokenStream {
    let lines = text.lines().map(|line| format!(" {}", line.trim_end()));
    quote! { #(#[doc = #lines])* }
}

/// The items of `tokens`.
fn parse_items(tokens: TokenStream) -> syn::Result<Vec<Item>> {
    Ok(syn::parse2::<syn::File>(tokens)?.items)
}

/// `tx.connection()`.
fn tx_connection() -> Expr {
    method(var(ident("tx")), "connection", [])
}

/// `::tenancy_runtime::sqlx::query_as::<_, Row>(Self::sql)`.
fn query_as(row: &Ident, sql: &Ident) -> Expr {
    let row = path_type(syn::Path::from(row.clone()));
    sqlx_query("query_as", Some(row), sql.clone())
}

/// `tx.scope()`.
fn tx_scope() -> Expr {
    method(var(ident("tx")), "scope", [])
}

/// The SQL constants and the methods of one command (or of list and count).
type Methods = syn::Result<Option<(Vec<ImplItem>, Vec<ImplItemFn>)>>;

/// Everything the emitter needs while writing one repository.
struct Emitter<'s, 'm> {
    shape: &'s Shape<'m>,
    roles_path: &'s syn::Path,
    /// Marker types given explicitly per role name (the derive passes the user's tokens, so
    /// an unknown role is reported at them); roles not listed use `roles_path`.
    markers: &'s [(String, TokenStream)],
}

impl Emitter<'_, '_> {
    fn row(&self) -> Ident {
        ident(&self.shape.names.row)
    }

    /// The row struct as a type.
    fn row_type(&self) -> Type {
        path_type(syn::Path::from(self.row()))
    }

    fn table_name(&self) -> &str {
        &self.shape.table.name
    }

    /// The Rust type a caller passes for `column` (the role as the generated enum).
    fn input_type(&self, column: &Column) -> Type {
        if column.ty == SqlType::Role {
            path_type(path(false, &[PROJECT_ROLE]))
        } else {
            rust_type(column.ty)
        }
    }

    /// Converts a bound role value to the `&'static str` PostgreSQL casts to the enum:
    /// `value.map(ProjectRole::as_str)` when optional, else `value.as_str()`.
    fn bind_value(&self, column: &Column, value: Expr, optional: bool) -> Expr {
        match (column.ty == SqlType::Role, optional) {
            (true, true) => {
                let as_str = path_expr(path(false, &[PROJECT_ROLE, "as_str"]));
                method(value, "map", [as_str])
            }
            (true, false) => method(value, "as_str", []),
            (false, _) => value,
        }
    }

    /// The marker type of the minimum role of `command`'s method (`None`: no such method),
    /// and the role's name.
    fn role_type(&self, command: Command) -> syn::Result<Option<(Type, &str)>> {
        let Some(role) = self.shape.method_role(command) else {
            return Ok(None);
        };
        Ok(Some((self.role_marker(role)?, role)))
    }

    /// The marker type of `role`.
    fn role_marker(&self, role: &str) -> syn::Result<Type> {
        if let Some((_, marker)) = self.markers.iter().find(|(name, _)| name == role) {
            return syn::parse2(marker.clone());
        }
        let mut path = self.roles_path.clone();
        path.segments.push(ident(&camel_case(role)).into());
        Ok(path_type(path))
    }

    fn rule_doc(&self, command: Command, role: &str) -> String {
        let scope = match command {
            Command::Select => "in every project it reads",
            _ => "in the write scope's project",
        };
        let mut doc = format!(
            "Requires `{role}` or above {scope} (RLS policy `{}_{}`).",
            self.table_name(),
            command.keyword()
        );
        let rules = self.shape.table.rules_for(command);
        if rules.iter().any(|r| r.condition.is_some()) {
            let allowed: Vec<String> = rules
                .iter()
                .map(|r| {
                    let mut who = match &r.condition {
                        Some(c) => format!("`{}` where `{}`", r.min_role, c.to_dsl()),
                        None => format!("`{}`", r.min_role),
                    };
                    if let Some(columns) = &r.columns {
                        who.push_str(&format!(" (columns {})", columns.join(", ")));
                    }
                    who
                })
                .collect();
            doc.push_str(&format!(
                " Row conditions apply: allowed to {}; a row the conditions refuse is treated \
                 as absent (or, for a write that would create or leave a refused row, fails \
                 with `Error::Forbidden`).",
                allowed.join(", or ")
            ));
        }
        doc
    }

    fn field_doc(column: &Column, helper_schema: &str) -> String {
        match &column.doc {
            Some(text) => text.clone(),
            None => format!(
                "`{}` ({}{}).",
                column.name,
                column.ty.sql_name(helper_schema),
                if column.nullable { ", nullable" } else { "" }
            ),
        }
    }

    /// One documented `pub` field per column, of type `ty(column)`.
    fn fields(
        &self,
        columns: &[Column],
        ty: impl Fn(&Column) -> Type,
    ) -> Punctuated<Field, syn::Token![,]> {
        let schema = &self.shape.model.settings.helper_schema;
        named_fields(columns.iter().map(|c| {
            let attrs = doc_attrs(&Self::field_doc(c, schema));
            pub_field(attrs, snake_ident(&c.name), ty(c))
        }))
    }

    /// `#doc #derive pub struct name { fields }`.
    fn struct_item(
        doc: &str,
        derive: TokenStream,
        name: &Ident,
        fields: Punctuated<Field, syn::Token![,]>,
    ) -> syn::Result<Item> {
        let mut item: ItemStruct = syn::parse2(quote! { #derive pub struct #name {} })?;
        item.attrs.splice(0..0, doc_attrs(doc));
        if let syn::Fields::Named(named) = &mut item.fields {
            named.named = fields;
        }
        Ok(Item::Struct(item))
    }
}

/// The items of the repository of `shape`'s table.
pub(crate) fn repository_items(
    shape: &Shape<'_>,
    roles_path: &syn::Path,
) -> syn::Result<Vec<Item>> {
    repository_items_with_markers(shape, roles_path, &[])
}

/// [`repository_items`] with explicit marker types for some roles.
pub(crate) fn repository_items_with_markers(
    shape: &Shape<'_>,
    roles_path: &syn::Path,
    markers: &[(String, TokenStream)],
) -> syn::Result<Vec<Item>> {
    let emitter = Emitter {
        shape,
        roles_path,
        markers,
    };
    let mut items = emitter.project_role_enum()?;
    items.push(emitter.row_struct()?);
    items.extend(emitter.row_from_row()?);
    for tier in &shape.read_tiers {
        let tier_shape = shape.for_read_tier(tier);
        let tier_emitter = Emitter {
            shape: &tier_shape,
            roles_path,
            markers,
        };
        items.push(tier_emitter.row_struct()?);
        items.extend(tier_emitter.row_from_row()?);
    }
    items.extend(emitter.key_struct()?);
    items.extend(emitter.pagination()?);
    items.extend(emitter.new_struct()?);
    items.extend(emitter.new_constructor()?);
    items.extend(emitter.patch_struct()?);
    items.extend(emitter.filter_struct()?);
    items.extend(emitter.repository()?);
    Ok(items)
}

/// The whole repository of `shape`'s table as tokens (a `compile_error!` if the emitter
/// produced something that does not parse, which would be a bug in it).
pub(crate) fn repository_tokens_with_markers(
    shape: &Shape<'_>,
    roles_path: &syn::Path,
    markers: &[(String, TokenStream)],
) -> TokenStream {
    match repository_items_with_markers(shape, roles_path, markers) {
        Ok(items) => quote!(#(#items)*),
        Err(error) => error.to_compile_error(),
    }
}
