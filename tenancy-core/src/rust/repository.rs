//! The syntax tree of one table's repository: row, input and filter types, and the
//! repository methods its rules allow.
//!
//! The bulk of every file (struct fields, method signatures and bodies, the SQL constants)
//! is built as `syn` trees directly with the builders of [`super::ast`]; emitting tokens
//! with `quote!` and parsing them back was most of the emitter's time. Struct headers, the
//! pagination helpers and the `ProjectRole` enum, small and fixed, are still written with
//! `quote!` and parsed. The comments show the Rust each part builds.

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
        if let Some((_, marker)) = self.markers.iter().find(|(name, _)| name == role) {
            return Ok(Some((syn::parse2(marker.clone())?, role)));
        }
        let mut path = self.roles_path.clone();
        path.segments.push(ident(&camel_case(role)).into());
        Ok(Some((path_type(path), role)))
    }

    fn rule_doc(&self, command: Command, role: &str) -> String {
        let scope = match command {
            Command::Select => "in every project it reads",
            _ => "in the write scope's project",
        };
        format!(
            "Requires `{role}` or above {scope} (RLS policy `{}_{}`).",
            self.table_name(),
            command.keyword()
        )
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

    fn project_role_enum(&self) -> syn::Result<Vec<Item>> {
        if !self.shape.is_memberships() {
            return Ok(Vec::new());
        }
        let role = ident(PROJECT_ROLE);
        let roles = &self.shape.model.roles;
        let variants: Vec<Ident> = roles.iter().map(|r| ident(&camel_case(r))).collect();
        let count = roles.len();
        let variant_docs = roles.iter().map(|r| format!(" The `{r}` role."));
        parse_items(quote! {
            /// A role of the model, least privileged first; the value of the memberships
            /// table's `role` column.
            #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, ::serde::Serialize, ::serde::Deserialize)]
            pub enum #role {
                #(
                    #[doc = #variant_docs]
                    #[serde(rename = #roles)]
                    #variants,
                )*
            }

            impl #role {
                /// Every role, least privileged first.
                pub const ALL: [#role; #count] = [#(#role::#variants),*];

                /// The role's name in the database (`"editor"`).
                pub fn as_str(self) -> &'static str {
                    match self { #(#role::#variants => #roles,)* }
                }

                /// The role named `name`, if the model declares it.
                pub fn parse(name: &str) -> ::std::option::Option<#role> {
                    #role::ALL.into_iter().find(|role| role.as_str() == name)
                }
            }

            impl ::std::fmt::Display for #role {
                fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                    f.write_str(self.as_str())
                }
            }
        })
    }

    fn row_struct(&self) -> syn::Result<Item> {
        let table_doc = match &self.shape.table.doc {
            Some(text) => format!("{text}\n\nA row of `{}`.", self.table_name()),
            None => format!("A row of `{}`.", self.table_name()),
        };
        Self::struct_item(
            &table_doc,
            quote!(#[derive(Debug, Clone, PartialEq, ::serde::Serialize, ::serde::Deserialize)]),
            &self.row(),
            self.fields(&self.shape.columns, row_field_type),
        )
    }

    /// `impl FromRow<'r, PgRow> for Row`, one `try_get` per column by its SQL name. Written out
    /// rather than `#[derive(sqlx::FromRow)]`, whose expansion names `::sqlx`: this names sqlx
    /// only through the runtime's re-export, so a crate using the repositories needs no sqlx
    /// dependency of its own (let alone one of the runtime's version).
    fn row_from_row(&self) -> syn::Result<Vec<Item>> {
        let row = self.row();
        let fields = self.shape.columns.iter().map(|c| snake_ident(&c.name));
        let names = self.shape.columns.iter().map(|c| c.name.as_str());
        parse_items(quote! {
            impl<'r> ::tenancy_runtime::sqlx::FromRow<'r, ::tenancy_runtime::sqlx::postgres::PgRow> for #row {
                fn from_row(
                    __row: &'r ::tenancy_runtime::sqlx::postgres::PgRow,
                ) -> ::tenancy_runtime::sqlx::Result<Self> {
                    use ::tenancy_runtime::sqlx::Row as _;
                    ::std::result::Result::Ok(#row { #(#fields: __row.try_get(#names)?,)* })
                }
            }
        })
    }

    fn key_struct(&self) -> syn::Result<Option<Item>> {
        if !self.shape.has_key_struct() {
            return Ok(None);
        }
        let doc = format!(
            "The key of one `{}` row inside its project.",
            self.table_name()
        );
        Self::struct_item(
            &doc,
            quote!(#[derive(Debug, Clone, PartialEq, ::serde::Serialize, ::serde::Deserialize)]),
            &ident(&self.shape.names.key()),
            self.fields(self.shape.key_struct_columns(), |c| self.input_type(c)),
        )
        .map(Some)
    }

    /// `<Row>Cursor`, `<Row>Page` and `<Row>::cursor()`.
    fn pagination(&self) -> syn::Result<Vec<Item>> {
        if !self.shape.has_list() || self.shape.method_role(Command::Select).is_none() {
            return Ok(Vec::new());
        }
        let row = self.row();
        let cursor = ident(&self.shape.names.cursor());
        let page = ident(&self.shape.names.page());
        let order = self
            .shape
            .cursor
            .iter()
            .map(|c| format!("`{}`", c.name))
            .collect::<Vec<_>>()
            .join(", ");
        let cursor_doc = format!(
            "A position in `{}` in list order ({order}); take it from the last row of a page.",
            self.table_name()
        );
        let cursor_struct = Self::struct_item(
            &cursor_doc,
            quote!(#[derive(Debug, Clone, PartialEq, ::serde::Serialize, ::serde::Deserialize)]),
            &cursor,
            self.fields(&self.shape.cursor, |c| rust_type(c.ty)),
        )?;
        let names: Vec<Ident> = self
            .shape
            .cursor
            .iter()
            .map(|c| snake_ident(&c.name))
            .collect();
        let mut items = vec![cursor_struct];
        items.extend(parse_items(quote! {
            /// One page request: rows after `after` (from the start when `None`), at most
            /// `limit` of them (clamped to 1..=1000).
            #[derive(Debug, Clone, PartialEq)]
            pub struct #page {
                /// Position of the last row of the previous page.
                pub after: ::std::option::Option<#cursor>,
                /// Maximum number of rows (clamped to 1..=1000).
                pub limit: u32,
            }

            impl ::std::default::Default for #page {
                /// The first page of 100 rows.
                fn default() -> Self {
                    #page { after: ::std::option::Option::None, limit: 100 }
                }
            }

            impl #row {
                /// This row's position in list order, for the next page's `after`.
                pub fn cursor(&self) -> #cursor {
                    #cursor { #(#names: ::std::clone::Clone::clone(&self.#names),)* }
                }
            }
        })?);
        Ok(items)
    }

    fn new_struct(&self) -> syn::Result<Option<Item>> {
        if self.shape.method_role(Command::Insert).is_none() {
            return Ok(None);
        }
        let doc = format!(
            "A new `{}` row. The tenant and project come from the write scope; a `None` in a \
             column with a default means \"use the default\".",
            self.table_name()
        );
        let fields = self.fields(&self.shape.new_columns, |c| {
            let ty = self.input_type(c);
            if c.nullable || c.default.is_some() {
                option_type(ty)
            } else {
                ty
            }
        });
        Self::struct_item(
            &doc,
            quote!(#[derive(Debug, Clone, PartialEq, ::serde::Serialize, ::serde::Deserialize)]),
            &ident(&self.shape.names.new_row()),
            fields,
        )
        .map(Some)
    }

    /// `impl NewX { pub fn new(<required columns>) -> Self }`: every column that is nullable or
    /// has a default starts as `None`, so code that builds rows with `new` keeps compiling
    /// when such a column is added to the table (a new required column changes `new`, as it
    /// should).
    fn new_constructor(&self) -> syn::Result<Option<Item>> {
        if self.shape.method_role(Command::Insert).is_none() {
            return Ok(None);
        }
        let name = ident(&self.shape.names.new_row());
        let optional = |c: &Column| c.nullable || c.default.is_some();
        let params = self
            .shape
            .new_columns
            .iter()
            .filter(|c| !optional(c))
            .map(|c| {
                let field = snake_ident(&c.name);
                let ty = self.input_type(c);
                quote!(#field: #ty)
            });
        let inits = self.shape.new_columns.iter().map(|c| {
            let field = snake_ident(&c.name);
            if optional(c) {
                quote!(#field: ::std::option::Option::None)
            } else {
                quote!(#field)
            }
        });
        let doc = format!(
            " A new `{}` row from its required columns; the nullable and defaulted ones start as \
             `None` (set them on the returned value).",
            self.table_name()
        );
        Ok(Some(syn::parse2(quote! {
            impl #name {
                #[doc = #doc]
                #[allow(clippy::too_many_arguments)]
                pub fn new(#(#params),*) -> Self {
                    #name { #(#inits),* }
                }
            }
        })?))
    }

    fn patch_struct(&self) -> syn::Result<Option<Item>> {
        if self.shape.method_role(Command::Update).is_none() {
            return Ok(None);
        }
        let doc = format!(
            "Changes to one `{}` row: `None` leaves a column as it is (for a nullable column, \
             `Some(None)` sets it to NULL).",
            self.table_name()
        );
        let fields = self.fields(&self.shape.patch_columns, |c| {
            let ty = self.input_type(c);
            if c.nullable {
                option_type(option_type(ty))
            } else {
                option_type(ty)
            }
        });
        Self::struct_item(
            &doc,
            quote!(#[derive(Debug, Clone, PartialEq, Default, ::serde::Serialize, ::serde::Deserialize)]),
            &ident(&self.shape.names.patch()),
            fields,
        )
        .map(Some)
    }

    fn filter_struct(&self) -> syn::Result<Option<Item>> {
        if !self.shape.has_list() || self.shape.method_role(Command::Select).is_none() {
            return Ok(None);
        }
        let doc = format!(
            "Equality filters for listing `{}`; `None` does not filter.",
            self.table_name()
        );
        Self::struct_item(
            &doc,
            quote!(#[derive(Debug, Clone, PartialEq, Default, ::serde::Serialize, ::serde::Deserialize)]),
            &ident(&self.shape.names.filter()),
            self.fields(&self.shape.filter_columns, |c| {
                option_type(self.input_type(c))
            }),
        )
        .map(Some)
    }

    /// `let scope_tenant_id = ::tenancy_runtime::Scope::tenant_id(tx.scope()).as_uuid();`
    fn scope_tenant_id() -> Stmt {
        let tenant_id = path_expr(path(true, &["tenancy_runtime", "Scope", "tenant_id"]));
        let_(
            "scope_tenant_id",
            method(call(tenant_id, [tx_scope()]), "as_uuid", []),
        )
    }

    /// Local variables holding the read scope's values, and their binds:
    ///
    /// ```text
    /// let scope_tenant_id = ::tenancy_runtime::Scope::tenant_id(tx.scope()).as_uuid();
    /// let scope_project_ids: ::std::vec::Vec<::uuid::Uuid> =
    ///     ::tenancy_runtime::Scope::project_ids(tx.scope())
    ///         .iter()
    ///         .map(|id| id.as_uuid())
    ///         .collect();
    /// ```
    fn read_scope_prelude(&self) -> (Vec<Stmt>, Vec<Expr>) {
        let mut prelude = vec![Self::scope_tenant_id()];
        let mut binds = vec![var(ident("scope_tenant_id"))];
        if self.shape.project_column.is_some() {
            let project_ids = path_expr(path(true, &["tenancy_runtime", "Scope", "project_ids"]));
            let ids = method(call(project_ids, [tx_scope()]), "iter", []);
            let as_uuid = closure("id", method(var(ident("id")), "as_uuid", []));
            let ids = method(method(ids, "map", [as_uuid]), "collect", []);
            let uuid = path_type(path(true, &["uuid", "Uuid"]));
            prelude.push(let_typed(
                ident("scope_project_ids"),
                false,
                vec_type(uuid),
                ids,
            ));
            binds.push(var(ident("scope_project_ids")));
        }
        (prelude, binds)
    }

    /// Local variables holding the write scope's values, and their binds.
    ///
    /// ```text
    /// let scope_tenant_id = ::tenancy_runtime::Scope::tenant_id(tx.scope()).as_uuid();
    /// let scope_project_id =
    ///     <S as ::tenancy_runtime::WriteScope<Role>>::project_id(tx.scope()).as_uuid();
    /// ```
    fn write_scope_prelude(&self, role: &Type) -> (Vec<Stmt>, Vec<Expr>) {
        let mut prelude = vec![Self::scope_tenant_id()];
        let mut binds = vec![var(ident("scope_tenant_id"))];
        if self.shape.project_column.is_some() {
            let scope = path_type(path(false, &["S"]));
            let write_scope = with_args(
                path(true, &["tenancy_runtime", "WriteScope"]),
                [role.clone()],
                false,
            );
            let project_id = qualified_path(scope, write_scope, &["project_id"]);
            let project_id = method(call(project_id, [tx_scope()]), "as_uuid", []);
            prelude.push(let_("scope_project_id", project_id));
            binds.push(var(ident("scope_project_id")));
        }
        (prelude, binds)
    }

    /// The key parameters of a method and their bound values.
    fn key_params(&self, key: &[Column]) -> (Vec<(Ident, Type)>, Vec<Expr>) {
        match key {
            [] => (Vec::new(), Vec::new()),
            [column] => {
                let name = snake_ident(&column.name);
                let value = self.bind_value(column, var(name.clone()), false);
                (vec![(name, self.input_type(column))], vec![value])
            }
            columns => {
                let key = path_type(path(false, &[&self.shape.names.key()]));
                let binds = columns
                    .iter()
                    .map(|c| {
                        let value = field(var(ident("key")), snake_ident(&c.name));
                        self.bind_value(c, value, false)
                    })
                    .collect();
                (vec![(ident("key"), key)], binds)
            }
        }
    }

    /// `/// The SQL of [`Self::method`].` `pub const NAME: &'static str = "sql";`
    fn sql_const(name: &Ident, method: &str, sql: &str) -> ImplItem {
        str_const(
            &format!(" The SQL of [`Self::{method}`]."),
            name.clone(),
            sql,
        )
    }

    /// `pub async fn name<S>(tx: &mut ::tenancy_runtime::ScopedTx<S>, params...)
    /// -> ::std::result::Result<ok, ::tenancy_runtime::Error>
    /// where S: ::tenancy_runtime::<scope><role> { body }` under the doc comment `doc`.
    fn scoped_method(
        doc: &str,
        name: &str,
        params: Vec<(Ident, Type)>,
        ok: Type,
        scope: &str,
        role: &Type,
        body: Vec<Stmt>,
    ) -> ImplItemFn {
        let scoped_tx = with_args(
            path(true, &["tenancy_runtime", "ScopedTx"]),
            [path_type(path(false, &["S"]))],
            false,
        );
        let mut inputs = vec![(ident("tx"), reference_type(true, path_type(scoped_tx)))];
        inputs.extend(params);
        let error = path_type(path(true, &["tenancy_runtime", "Error"]));
        let result = with_args(path(true, &["std", "result", "Result"]), [ok, error], false);
        let bound = with_args(
            path(true, &["tenancy_runtime", scope]),
            [role.clone()],
            false,
        );
        async_fn(
            doc_attrs(doc),
            name,
            "S",
            bound,
            inputs,
            path_type(result),
            body,
        )
    }

    fn get_method(&self) -> Methods {
        let Some((role, role_name)) = self.role_type(Command::Select)? else {
            return Ok(None);
        };
        let row = self.row();
        let (mut body, scope_binds) = self.read_scope_prelude();
        let (params, key_binds) = self.key_params(&self.shape.read_key);
        let what = if self.shape.read_key.is_empty() {
            "Reads the scope's own row.".to_owned()
        } else if self.shape.has_list() && self.shape.cursor.len() > self.shape.read_key.len() {
            "Reads one row by its key (when the scope spans several projects holding that key, \
             the row of the lowest project id)."
                .to_owned()
        } else {
            "Reads one row by its key.".to_owned()
        };
        let doc = format!(
            "{what} `None` when no visible row matches.\n\n{}",
            self.rule_doc(Command::Select, role_name)
        );
        let sql = ident("GET_SQL");
        let get = |body| {
            let ok = option_type(self.row_type());
            Self::scoped_method(&doc, "get", params.clone(), ok, "ReadScope", &role, body)
        };
        // ::tenancy_runtime::sqlx::query_as::<_, Row>(Self::GET_SQL) <scope binds> <key binds>
        //     .fetch_optional(tx.connection()).await?
        let fetch = |query: Expr, binds_: Vec<Expr>| {
            let chain = binds(query, binds_.into_iter().chain(key_binds.iter().cloned()));
            await_try(method(chain, "fetch_optional", [tx_connection()]))
        };
        let Some(one_sql_text) = self.shape.get_in_project_sql() else {
            body.push(let_("row", fetch(query_as(&row, &sql), scope_binds)));
            body.push(ok_tail(var(ident("row"))));
            let get = get(body);
            return Ok(Some((
                vec![Self::sql_const(&sql, "get", &self.shape.get_sql())],
                vec![get],
            )));
        };
        let one_sql = ident("GET_IN_PROJECT_SQL");
        let consts = vec![
            Self::sql_const(&sql, "get", &self.shape.get_sql()),
            str_const(
                " The SQL of [`Self::get`] when the scope holds exactly one project (a scalar \
                 project parameter keeps the cached generic plan usable).",
                one_sql.clone(),
                &one_sql_text,
            ),
        ];
        // let row = match scope_project_ids.as_slice() {
        //     [scope_project_id] => {
        //         let scope_project_id = *scope_project_id;
        //         <GET_IN_PROJECT_SQL with the tenant, the one project and the key>
        //     }
        //     _ => { <GET_SQL with the scope and the key> }
        // };
        let one_project = [
            var(ident("scope_tenant_id")),
            var(ident("scope_project_id")),
        ];
        let one = vec![
            let_("scope_project_id", deref(var(ident("scope_project_id")))),
            Stmt::Expr(fetch(query_as(&row, &one_sql), one_project.into()), None),
        ];
        let many = vec![Stmt::Expr(fetch(query_as(&row, &sql), scope_binds), None)];
        let scrutinee = method(var(ident("scope_project_ids")), "as_slice", []);
        body.push(let_(
            "row",
            match_expr(
                scrutinee,
                vec![
                    (slice_pat(ident("scope_project_id")), one),
                    (wild_pat(), many),
                ],
            ),
        ));
        body.push(ok_tail(var(ident("row"))));
        let get = get(body);
        Ok(Some((consts, vec![get])))
    }

    /// `filter.<column>.as_ref()` per filter column (the role as `&'static str`).
    fn filter_binds(&self) -> Vec<Expr> {
        self.shape
            .filter_columns
            .iter()
            .map(|c| {
                let value = field(var(ident("filter")), snake_ident(&c.name));
                if c.ty == SqlType::Role {
                    self.bind_value(c, value, true)
                } else {
                    method(value, "as_ref", [])
                }
            })
            .collect()
    }

    fn list_methods(&self) -> Methods {
        if !self.shape.has_list() {
            return Ok(None);
        }
        let Some((role, role_name)) = self.role_type(Command::Select)? else {
            return Ok(None);
        };
        let row = self.row();
        let filter = ident(&self.shape.names.filter());
        let page = ident(&self.shape.names.page());
        // page.after.as_ref().map(|after| &after.<column>) per cursor column
        let cursor_binds = self.shape.cursor.iter().map(|c| {
            let after = method(field(var(ident("page")), ident("after")), "as_ref", []);
            let column = reference(field(var(ident("after")), snake_ident(&c.name)));
            method(after, "map", [closure("after", column)])
        });
        let rule = self.rule_doc(Command::Select, role_name);
        let list_doc = format!(
            "Lists rows matching `filter` in key order, one page at a time (keyset pagination: \
             pass the last row's `cursor()` as the next page's `after`).\n\n{rule}"
        );
        let count_doc = format!("Counts the rows matching `filter`.\n\n{rule}");
        let list_sql = ident("LIST_SQL");
        let count_sql = ident("COUNT_SQL");
        let consts = vec![
            Self::sql_const(&list_sql, "list", &self.shape.list_sql()),
            Self::sql_const(&count_sql, "count", &self.shape.count_sql()),
        ];

        // let limit = i64::from(page.limit.clamp(1, 1000));
        // let rows = ::tenancy_runtime::sqlx::query_as::<_, Row>(Self::LIST_SQL) <scope> <filter> <cursor>
        //     .bind(limit).fetch_all(tx.connection()).await?;
        let (mut list_body, scope_binds) = self.read_scope_prelude();
        let limit = method(
            field(var(ident("page")), ident("limit")),
            "clamp",
            [int("1"), int("1000")],
        );
        let from = path_expr(path(false, &["i64", "from"]));
        list_body.push(let_("limit", call(from, [limit])));
        let values = scope_binds
            .into_iter()
            .chain(self.filter_binds())
            .chain(cursor_binds)
            .chain([var(ident("limit"))]);
        let query = binds(query_as(&row, &list_sql), values);
        list_body.push(let_(
            "rows",
            await_try(method(query, "fetch_all", [tx_connection()])),
        ));
        list_body.push(ok_tail(var(ident("rows"))));
        let filter_param = (
            ident("filter"),
            reference_type(false, path_type(syn::Path::from(filter))),
        );
        let list = Self::scoped_method(
            &list_doc,
            "list",
            vec![
                filter_param.clone(),
                (ident("page"), path_type(syn::Path::from(page))),
            ],
            vec_type(self.row_type()),
            "ReadScope",
            &role,
            list_body,
        );

        // let count = ::tenancy_runtime::sqlx::query_scalar::<_, i64>(Self::COUNT_SQL) <scope> <filter>
        //     .fetch_one(tx.connection()).await?;
        let (mut count_body, scope_binds) = self.read_scope_prelude();
        let values = scope_binds.into_iter().chain(self.filter_binds());
        let query = binds(
            sqlx_query(
                "query_scalar",
                Some(path_type(path(false, &["i64"]))),
                count_sql.clone(),
            ),
            values,
        );
        count_body.push(let_(
            "count",
            await_try(method(query, "fetch_one", [tx_connection()])),
        ));
        count_body.push(ok_tail(var(ident("count"))));
        let count = Self::scoped_method(
            &count_doc,
            "count",
            vec![filter_param],
            path_type(path(false, &["i64"])),
            "ReadScope",
            &role,
            count_body,
        );
        Ok(Some((consts, vec![list, count])))
    }

    fn insert_methods(&self) -> Methods {
        let Some((role, role_name)) = self.role_type(Command::Insert)? else {
            return Ok(None);
        };
        let row = self.row();
        let new = ident(&self.shape.names.new_row());
        let optional = |c: &Column| c.nullable || c.default.is_some();
        let new_field = |c: &Column| field(var(ident("new")), snake_ident(&c.name));
        let rule = self.rule_doc(Command::Insert, role_name);
        let insert_doc = format!(
            "Inserts one row into the write scope's project and returns it as stored.\n\n{rule}"
        );
        let many_doc = format!(
            "Inserts every row into the write scope's project in ONE statement \
             (`INSERT ... SELECT ... FROM unnest(...)`; `COPY` is refused under row-level \
             security) and returns them as stored. `None` in a column with a default applies \
             the default (`COALESCE`). An empty input runs no statement.\n\n{rule}"
        );
        let insert_sql = ident("INSERT_SQL");
        let many_sql = ident("INSERT_MANY_SQL");
        let consts = vec![
            Self::sql_const(&insert_sql, "insert", &self.shape.insert_sql()),
            Self::sql_const(&many_sql, "insert_many", &self.shape.insert_many_sql()),
        ];

        // let row = ::tenancy_runtime::sqlx::query_as::<_, Row>(Self::INSERT_SQL) <scope> <new.<column>...>
        //     .fetch_one(tx.connection()).await?;
        let (mut insert_body, scope_binds) = self.write_scope_prelude(&role);
        let new_binds = self
            .shape
            .new_columns
            .iter()
            .map(|c| self.bind_value(c, new_field(c), optional(c)));
        let query = binds(
            query_as(&row, &insert_sql),
            scope_binds.into_iter().chain(new_binds),
        );
        insert_body.push(let_(
            "row",
            await_try(method(query, "fetch_one", [tx_connection()])),
        ));
        insert_body.push(ok_tail(var(ident("row"))));
        let new_type = path_type(syn::Path::from(new));
        let insert = Self::scoped_method(
            &insert_doc,
            "insert",
            vec![(ident("new"), new_type.clone())],
            self.row_type(),
            "WriteScope",
            &role,
            insert_body,
        );

        // if rows.is_empty() { return Ok(Vec::new()); }
        // <prelude>
        // let mut <column>_values: Vec<T> = ::std::vec::Vec::with_capacity(rows.len()); ...
        // for new in rows { <column>_values.push(new.<column>); ... }
        // let inserted = ::tenancy_runtime::sqlx::query_as::<_, Row>(Self::INSERT_MANY_SQL) <scope>
        //     .bind(<column>_values)... .fetch_all(tx.connection()).await?;
        let mut many_body = parse_stmts(quote! {
            if rows.is_empty() {
                return ::std::result::Result::Ok(::std::vec::Vec::new());
            }
        })?;
        let (prelude, scope_binds) = self.write_scope_prelude(&role);
        many_body.extend(prelude);
        let arrays: Vec<Ident> = self
            .shape
            .new_columns
            .iter()
            .map(|c| ident(&format!("{}_values", c.name)))
            .collect();
        let with_capacity = path(true, &["std", "vec", "Vec", "with_capacity"]);
        let rows_len = method(var(ident("rows")), "len", []);
        for (c, array) in self.shape.new_columns.iter().zip(&arrays) {
            let ty = if c.ty == SqlType::Role {
                path_type(path(true, &["std", "string", "String"]))
            } else {
                rust_type(c.ty)
            };
            let ty = if optional(c) { option_type(ty) } else { ty };
            let init = call(path_expr(with_capacity.clone()), [rows_len.clone()]);
            many_body.push(let_typed(array.clone(), true, vec_type(ty), init));
        }
        let pushes = self
            .shape
            .new_columns
            .iter()
            .zip(&arrays)
            .map(|(c, array)| {
                let value = match (c.ty == SqlType::Role, optional(c)) {
                    // new.<column>.map(|role| role.as_str().to_owned())
                    (true, true) => {
                        let owned =
                            method(method(var(ident("role")), "as_str", []), "to_owned", []);
                        method(new_field(c), "map", [closure("role", owned)])
                    }
                    // new.<column>.as_str().to_owned()
                    (true, false) => method(method(new_field(c), "as_str", []), "to_owned", []),
                    (false, _) => new_field(c),
                };
                semi(method(var(array.clone()), "push", [value]))
            })
            .collect();
        many_body.push(for_loop("new", var(ident("rows")), pushes));
        let query = binds(
            query_as(&row, &many_sql),
            scope_binds
                .into_iter()
                .chain(arrays.iter().map(|a| var(a.clone()))),
        );
        many_body.push(let_(
            "inserted",
            await_try(method(query, "fetch_all", [tx_connection()])),
        ));
        many_body.push(ok_tail(var(ident("inserted"))));
        let insert_many = Self::scoped_method(
            &many_doc,
            "insert_many",
            vec![(ident("rows"), vec_type(new_type))],
            vec_type(self.row_type()),
            "WriteScope",
            &role,
            many_body,
        );
        Ok(Some((consts, vec![insert, insert_many])))
    }

    fn update_method(&self) -> Methods {
        let Some((role, role_name)) = self.role_type(Command::Update)? else {
            return Ok(None);
        };
        let row = self.row();
        let patch = ident(&self.shape.names.patch());
        let (mut body, scope_binds) = self.write_scope_prelude(&role);
        let (params, key_binds) = self.key_params(&self.shape.write_key);
        // .bind(patch.<column>.is_some()).bind(patch.<column>) per patch column
        // (`.flatten()` for a nullable column)
        let patch_binds = self.shape.patch_columns.iter().flat_map(|c| {
            let value = field(var(ident("patch")), snake_ident(&c.name));
            let flag = method(value.clone(), "is_some", []);
            let value = if c.nullable {
                method(value, "flatten", [])
            } else {
                value
            };
            [flag, self.bind_value(c, value, true)]
        });
        let what = if self.shape.write_key.is_empty() {
            "Updates the write scope's own row"
        } else {
            "Updates one row of the write scope's project"
        };
        let doc = format!(
            "{what} and returns it as stored; `None` when no visible row matches. An empty \
             patch changes nothing and returns the current row.\n\n{}",
            self.rule_doc(Command::Update, role_name)
        );
        let sql = ident("UPDATE_SQL");
        let values = scope_binds.into_iter().chain(key_binds).chain(patch_binds);
        let query = binds(query_as(&row, &sql), values);
        body.push(let_(
            "row",
            await_try(method(query, "fetch_optional", [tx_connection()])),
        ));
        body.push(ok_tail(var(ident("row"))));
        let mut params = params;
        params.push((ident("patch"), path_type(syn::Path::from(patch))));
        let ok = option_type(self.row_type());
        let update = Self::scoped_method(&doc, "update", params, ok, "WriteScope", &role, body);
        Ok(Some((
            vec![Self::sql_const(&sql, "update", &self.shape.update_sql())],
            vec![update],
        )))
    }

    fn delete_method(&self) -> Methods {
        let Some((role, role_name)) = self.role_type(Command::Delete)? else {
            return Ok(None);
        };
        let (mut body, scope_binds) = self.write_scope_prelude(&role);
        let (params, key_binds) = self.key_params(&self.shape.write_key);
        let what = if self.shape.write_key.is_empty() {
            "Deletes the write scope's own row"
        } else {
            "Deletes one row of the write scope's project"
        };
        let doc = format!(
            "{what}; `false` when no visible row matched.\n\n{}",
            self.rule_doc(Command::Delete, role_name)
        );
        let sql = ident("DELETE_SQL");
        // let result = ::tenancy_runtime::sqlx::query(Self::DELETE_SQL) <scope> <key>
        //     .execute(tx.connection()).await?;
        let query = binds(
            sqlx_query("query", None, sql.clone()),
            scope_binds.into_iter().chain(key_binds),
        );
        body.push(let_(
            "result",
            await_try(method(query, "execute", [tx_connection()])),
        ));
        body.extend(parse_stmts(quote! {
            ::std::result::Result::Ok(result.rows_affected() > 0)
        })?);
        let ok = path_type(path(false, &["bool"]));
        let delete = Self::scoped_method(&doc, "delete", params, ok, "WriteScope", &role, body);
        Ok(Some((
            vec![Self::sql_const(&sql, "delete", &self.shape.delete_sql())],
            vec![delete],
        )))
    }

    /// The repository unit struct and its `impl` (SQL constants first, then the methods).
    fn repository(&self) -> syn::Result<Vec<Item>> {
        let repo = ident(&self.shape.names.repository);
        let allowed: Vec<String> = Command::ALL
            .iter()
            .filter_map(|c| {
                self.shape
                    .method_role(*c)
                    .map(|role| format!("{} ({role})", c.keyword()))
            })
            .collect();
        let doc = doc(&format!(
            "The repository of `{}`: only the commands its rules allow ({}). Every query names \
             the scope's tenant and projects explicitly; row-level security remains the final \
             gate.",
            self.table_name(),
            allowed.join(", ")
        ));
        let mut consts = Vec::new();
        let mut methods = Vec::new();
        for part in [
            self.get_method()?,
            self.list_methods()?,
            self.insert_methods()?,
            self.update_method()?,
            self.delete_method()?,
        ]
        .into_iter()
        .flatten()
        {
            consts.extend(part.0);
            methods.extend(part.1);
        }
        consts.extend(methods.into_iter().map(ImplItem::Fn));
        let implementation = inherent_impl(repo.clone(), consts);
        let mut items = parse_items(quote! {
            #doc
            #[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
            pub struct #repo;
        })?;
        items.push(Item::Impl(implementation));
        Ok(items)
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
