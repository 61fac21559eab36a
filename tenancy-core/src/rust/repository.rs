//! The token stream of one table's repository: row, input and filter types, and the
//! repository methods its rules allow.

use proc_macro2::{Delimiter, Group, Ident, Span, TokenStream};
use quote::{format_ident, quote};

use crate::model::{Column, Command, SqlType};

use super::naming::{camel_case, snake_ident};
use super::shape::Shape;
use super::types::{row_field_type, rust_type};

/// Name of the generated role enum used by the memberships repository.
const PROJECT_ROLE: &str = "ProjectRole";

fn ident(name: &str) -> Ident {
    Ident::new(name, Span::call_site())
}

fn doc(text: &str) -> TokenStream {
    let lines = text.lines().map(|line| format!(" {}", line.trim_end()));
    quote! { #(#[doc = #lines])* }
}

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

    fn table_name(&self) -> &str {
        &self.shape.table.name
    }

    /// The Rust type a caller passes for `column` (the role as the generated enum).
    fn input_type(&self, column: &Column) -> TokenStream {
        if column.ty == SqlType::Role {
            let role = ident(PROJECT_ROLE);
            quote!(#role)
        } else {
            rust_type(column.ty)
        }
    }

    /// Converts a bound role value to the `&'static str` PostgreSQL casts to the enum.
    fn bind_value(&self, column: &Column, value: TokenStream, optional: bool) -> TokenStream {
        match (column.ty == SqlType::Role, optional) {
            (true, true) => {
                let role = ident(PROJECT_ROLE);
                quote!(#value.map(#role::as_str))
            }
            (true, false) => quote!(#value.as_str()),
            (false, _) => value,
        }
    }

    fn role_type(&self, command: Command) -> Option<(TokenStream, &str)> {
        let role = self.shape.method_role(command)?;
        if let Some((_, marker)) = self.markers.iter().find(|(name, _)| name == role) {
            return Some((marker.clone(), role));
        }
        let path = self.roles_path;
        let marker = ident(&camel_case(role));
        Some((quote!(#path::#marker), role))
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

    /// The `{ ... }` body of a struct with one documented `pub` field per column, as one
    /// group (interpolating a group shares its tokens; interpolating a stream copies them).
    fn fields(&self, columns: &[Column], ty: impl Fn(&Column) -> TokenStream) -> Group {
        let schema = &self.shape.model.settings.helper_schema;
        let mut fields = TokenStream::new();
        for c in columns {
            let name = snake_ident(&c.name);
            let doc = doc(&Self::field_doc(c, schema));
            let ty = ty(c);
            fields.extend(doc);
            fields.extend(quote! { pub #name: #ty, });
        }
        Group::new(Delimiter::Brace, fields)
    }

    fn project_role_enum(&self) -> TokenStream {
        if !self.shape.is_memberships() {
            return TokenStream::new();
        }
        let role = ident(PROJECT_ROLE);
        let roles = &self.shape.model.roles;
        let variants: Vec<Ident> = roles.iter().map(|r| ident(&camel_case(r))).collect();
        let count = roles.len();
        let variant_docs = roles.iter().map(|r| format!(" The `{r}` role."));
        quote! {
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
        }
    }

    fn row_struct(&self) -> TokenStream {
        let row = self.row();
        let table_doc = match &self.shape.table.doc {
            Some(text) => format!("{text}\n\nA row of `{}`.", self.table_name()),
            None => format!("A row of `{}`.", self.table_name()),
        };
        let doc = doc(&table_doc);
        let fields = self.fields(&self.shape.columns, row_field_type);
        quote! {
            #doc
            #[derive(Debug, Clone, PartialEq, ::sqlx::FromRow, ::serde::Serialize, ::serde::Deserialize)]
            pub struct #row #fields
        }
    }

    fn key_struct(&self) -> TokenStream {
        if !self.shape.has_key_struct() {
            return TokenStream::new();
        }
        let key = ident(&self.shape.names.key());
        let doc = doc(&format!(
            "The key of one `{}` row inside its project.",
            self.table_name()
        ));
        let fields = self.fields(self.shape.key_struct_columns(), |c| self.input_type(c));
        quote! {
            #doc
            #[derive(Debug, Clone, PartialEq, ::serde::Serialize, ::serde::Deserialize)]
            pub struct #key #fields
        }
    }

    /// `<Row>Cursor`, `<Row>Page` and `<Row>::cursor()`.
    fn pagination(&self) -> TokenStream {
        if !self.shape.has_list() || self.shape.method_role(Command::Select).is_none() {
            return TokenStream::new();
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
        let cursor_doc = doc(&format!(
            "A position in `{}` in list order ({order}); take it from the last row of a page.",
            self.table_name()
        ));
        let fields = self.fields(&self.shape.cursor, |c| rust_type(c.ty));
        let names: Vec<Ident> = self
            .shape
            .cursor
            .iter()
            .map(|c| snake_ident(&c.name))
            .collect();
        quote! {
            #cursor_doc
            #[derive(Debug, Clone, PartialEq, ::serde::Serialize, ::serde::Deserialize)]
            pub struct #cursor #fields

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
        }
    }

    fn new_struct(&self) -> TokenStream {
        if self.shape.method_role(Command::Insert).is_none() {
            return TokenStream::new();
        }
        let name = ident(&self.shape.names.new_row());
        let doc = doc(&format!(
            "A new `{}` row. The tenant and project come from the write scope; a `None` in a \
             column with a default means \"use the default\".",
            self.table_name()
        ));
        let fields = self.fields(&self.shape.new_columns, |c| {
            let ty = self.input_type(c);
            if c.nullable || c.default.is_some() {
                quote!(::std::option::Option<#ty>)
            } else {
                ty
            }
        });
        quote! {
            #doc
            #[derive(Debug, Clone, PartialEq, ::serde::Serialize, ::serde::Deserialize)]
            pub struct #name #fields
        }
    }

    fn patch_struct(&self) -> TokenStream {
        if self.shape.method_role(Command::Update).is_none() {
            return TokenStream::new();
        }
        let name = ident(&self.shape.names.patch());
        let doc = doc(&format!(
            "Changes to one `{}` row: `None` leaves a column as it is (for a nullable column, \
             `Some(None)` sets it to NULL).",
            self.table_name()
        ));
        let fields = self.fields(&self.shape.patch_columns, |c| {
            let ty = self.input_type(c);
            if c.nullable {
                quote!(::std::option::Option<::std::option::Option<#ty>>)
            } else {
                quote!(::std::option::Option<#ty>)
            }
        });
        quote! {
            #doc
            #[derive(Debug, Clone, PartialEq, Default, ::serde::Serialize, ::serde::Deserialize)]
            pub struct #name #fields
        }
    }

    fn filter_struct(&self) -> TokenStream {
        if !self.shape.has_list() || self.shape.method_role(Command::Select).is_none() {
            return TokenStream::new();
        }
        let name = ident(&self.shape.names.filter());
        let doc = doc(&format!(
            "Equality filters for listing `{}`; `None` does not filter.",
            self.table_name()
        ));
        let fields = self.fields(&self.shape.filter_columns, |c| {
            let ty = self.input_type(c);
            quote!(::std::option::Option<#ty>)
        });
        quote! {
            #doc
            #[derive(Debug, Clone, PartialEq, Default, ::serde::Serialize, ::serde::Deserialize)]
            pub struct #name #fields
        }
    }

    /// Local variables holding the read scope's values.
    fn read_scope_prelude(&self) -> (TokenStream, TokenStream) {
        let mut prelude = quote! {
            let scope_tenant_id = ::tenancy_runtime::Scope::tenant_id(tx.scope()).as_uuid();
        };
        let mut binds = quote!(.bind(scope_tenant_id));
        if self.shape.project_column.is_some() {
            prelude.extend(quote! {
                let scope_project_ids: ::std::vec::Vec<::uuid::Uuid> =
                    ::tenancy_runtime::Scope::project_ids(tx.scope())
                        .iter()
                        .map(|id| id.as_uuid())
                        .collect();
            });
            binds.extend(quote!(.bind(scope_project_ids)));
        }
        (prelude, binds)
    }

    /// Local variables holding the write scope's values.
    fn write_scope_prelude(&self, role: &TokenStream) -> (TokenStream, TokenStream) {
        let mut prelude = quote! {
            let scope_tenant_id = ::tenancy_runtime::Scope::tenant_id(tx.scope()).as_uuid();
        };
        let mut binds = quote!(.bind(scope_tenant_id));
        if self.shape.project_column.is_some() {
            prelude.extend(quote! {
                let scope_project_id =
                    <S as ::tenancy_runtime::WriteScope<#role>>::project_id(tx.scope()).as_uuid();
            });
            binds.extend(quote!(.bind(scope_project_id)));
        }
        (prelude, binds)
    }

    /// The key parameters of a method and their binds.
    fn key_params(&self, key: &[Column]) -> (TokenStream, TokenStream) {
        match key {
            [] => (TokenStream::new(), TokenStream::new()),
            [column] => {
                let name = snake_ident(&column.name);
                let ty = self.input_type(column);
                let value = self.bind_value(column, quote!(#name), false);
                (quote!(, #name: #ty), quote!(.bind(#value)))
            }
            columns => {
                let key = ident(&self.shape.names.key());
                let binds = columns.iter().map(|c| {
                    let name = snake_ident(&c.name);
                    let value = self.bind_value(c, quote!(key.#name), false);
                    quote!(.bind(#value))
                });
                (quote!(, key: #key), quote!(#(#binds)*))
            }
        }
    }

    fn sql_const(name: &Ident, method: &str, sql: String) -> TokenStream {
        let doc = format!(" The SQL of [`Self::{method}`].");
        quote! {
            #[doc = #doc]
            pub const #name: &'static str = #sql;
        }
    }

    fn get_method(&self) -> Option<(TokenStream, TokenStream)> {
        let (role, role_name) = self.role_type(Command::Select)?;
        let row = self.row();
        let (prelude, scope_binds) = self.read_scope_prelude();
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
        let doc = doc(&format!(
            "{what} `None` when no visible row matches.\n\n{}",
            self.rule_doc(Command::Select, role_name)
        ));
        let sql = format_ident!("GET_SQL");
        let Some(one_sql_text) = self.shape.get_in_project_sql() else {
            return Some((
                Self::sql_const(&sql, "get", self.shape.get_sql()),
                quote! {
                    #doc
                    pub async fn get<S>(tx: &mut ::tenancy_runtime::ScopedTx<S> #params)
                        -> ::std::result::Result<::std::option::Option<#row>, ::tenancy_runtime::Error>
                    where S: ::tenancy_runtime::ReadScope<#role>
                    {
                        #prelude
                        let row = ::sqlx::query_as::<_, #row>(Self::#sql)
                            #scope_binds
                            #key_binds
                            .fetch_optional(tx.connection())
                            .await?;
                        ::std::result::Result::Ok(row)
                    }
                },
            ));
        };
        let one_sql = format_ident!("GET_IN_PROJECT_SQL");
        let consts = [
            Self::sql_const(&sql, "get", self.shape.get_sql()),
            quote! {
                #[doc = " The SQL of [`Self::get`] when the scope holds exactly one project (a scalar project parameter keeps the cached generic plan usable)."]
                pub const #one_sql: &'static str = #one_sql_text;
            },
        ];
        Some((
            quote!(#(#consts)*),
            quote! {
                #doc
                pub async fn get<S>(tx: &mut ::tenancy_runtime::ScopedTx<S> #params)
                    -> ::std::result::Result<::std::option::Option<#row>, ::tenancy_runtime::Error>
                where S: ::tenancy_runtime::ReadScope<#role>
                {
                    #prelude
                    let row = match scope_project_ids.as_slice() {
                        [scope_project_id] => {
                            let scope_project_id = *scope_project_id;
                            ::sqlx::query_as::<_, #row>(Self::#one_sql)
                                .bind(scope_tenant_id)
                                .bind(scope_project_id)
                                #key_binds
                                .fetch_optional(tx.connection())
                                .await?
                        }
                        _ => {
                            ::sqlx::query_as::<_, #row>(Self::#sql)
                                #scope_binds
                                #key_binds
                                .fetch_optional(tx.connection())
                                .await?
                        }
                    };
                    ::std::result::Result::Ok(row)
                }
            },
        ))
    }

    fn filter_binds(&self) -> TokenStream {
        let binds = self.shape.filter_columns.iter().map(|c| {
            let name = snake_ident(&c.name);
            let value = if c.ty == SqlType::Role {
                self.bind_value(c, quote!(filter.#name), true)
            } else {
                quote!(filter.#name.as_ref())
            };
            quote!(.bind(#value))
        });
        quote!(#(#binds)*)
    }

    fn list_methods(&self) -> Option<(TokenStream, TokenStream)> {
        if !self.shape.has_list() {
            return None;
        }
        let (role, role_name) = self.role_type(Command::Select)?;
        let row = self.row();
        let filter = ident(&self.shape.names.filter());
        let page = ident(&self.shape.names.page());
        let (prelude, scope_binds) = self.read_scope_prelude();
        let filter_binds = self.filter_binds();
        let cursor_binds = self.shape.cursor.iter().map(|c| {
            let name = snake_ident(&c.name);
            quote!(.bind(page.after.as_ref().map(|after| &after.#name)))
        });
        let rule = self.rule_doc(Command::Select, role_name);
        let list_doc = doc(&format!(
            "Lists rows matching `filter` in key order, one page at a time (keyset pagination: \
             pass the last row's `cursor()` as the next page's `after`).\n\n{rule}"
        ));
        let count_doc = doc(&format!("Counts the rows matching `filter`.\n\n{rule}"));
        let list_sql = format_ident!("LIST_SQL");
        let count_sql = format_ident!("COUNT_SQL");
        let consts = [
            Self::sql_const(&list_sql, "list", self.shape.list_sql()),
            Self::sql_const(&count_sql, "count", self.shape.count_sql()),
        ];
        Some((
            quote!(#(#consts)*),
            quote! {
                #list_doc
                pub async fn list<S>(tx: &mut ::tenancy_runtime::ScopedTx<S>, filter: &#filter, page: #page)
                    -> ::std::result::Result<::std::vec::Vec<#row>, ::tenancy_runtime::Error>
                where S: ::tenancy_runtime::ReadScope<#role>
                {
                    #prelude
                    let limit = i64::from(page.limit.clamp(1, 1000));
                    let rows = ::sqlx::query_as::<_, #row>(Self::#list_sql)
                        #scope_binds
                        #filter_binds
                        #(#cursor_binds)*
                        .bind(limit)
                        .fetch_all(tx.connection())
                        .await?;
                    ::std::result::Result::Ok(rows)
                }

                #count_doc
                pub async fn count<S>(tx: &mut ::tenancy_runtime::ScopedTx<S>, filter: &#filter)
                    -> ::std::result::Result<i64, ::tenancy_runtime::Error>
                where S: ::tenancy_runtime::ReadScope<#role>
                {
                    #prelude
                    let count = ::sqlx::query_scalar::<_, i64>(Self::#count_sql)
                        #scope_binds
                        #filter_binds
                        .fetch_one(tx.connection())
                        .await?;
                    ::std::result::Result::Ok(count)
                }
            },
        ))
    }

    fn insert_methods(&self) -> Option<(TokenStream, TokenStream)> {
        let (role, role_name) = self.role_type(Command::Insert)?;
        let row = self.row();
        let new = ident(&self.shape.names.new_row());
        let (prelude, scope_binds) = self.write_scope_prelude(&role);
        let optional = |c: &Column| c.nullable || c.default.is_some();
        let new_binds = self.shape.new_columns.iter().map(|c| {
            let name = snake_ident(&c.name);
            let value = self.bind_value(c, quote!(new.#name), optional(c));
            quote!(.bind(#value))
        });
        let arrays: Vec<Ident> = self
            .shape
            .new_columns
            .iter()
            .map(|c| format_ident!("{}_values", c.name))
            .collect();
        let array_types = self.shape.new_columns.iter().map(|c| {
            let ty = if c.ty == SqlType::Role {
                quote!(::std::string::String)
            } else {
                rust_type(c.ty)
            };
            if optional(c) {
                quote!(::std::vec::Vec<::std::option::Option<#ty>>)
            } else {
                quote!(::std::vec::Vec<#ty>)
            }
        });
        let pushes = self
            .shape
            .new_columns
            .iter()
            .zip(&arrays)
            .map(|(c, array)| {
                let name = snake_ident(&c.name);
                let value = match (c.ty == SqlType::Role, optional(c)) {
                    (true, true) => quote!(new.#name.map(|role| role.as_str().to_owned())),
                    (true, false) => quote!(new.#name.as_str().to_owned()),
                    (false, _) => quote!(new.#name),
                };
                quote!(#array.push(#value);)
            });
        let rule = self.rule_doc(Command::Insert, role_name);
        let insert_doc = doc(&format!(
            "Inserts one row into the write scope's project and returns it as stored.\n\n{rule}"
        ));
        let many_doc = doc(&format!(
            "Inserts every row into the write scope's project in ONE statement \
             (`INSERT ... SELECT ... FROM unnest(...)`; `COPY` is refused under row-level \
             security) and returns them as stored. `None` in a column with a default applies \
             the default (`COALESCE`). An empty input runs no statement.\n\n{rule}"
        ));
        let insert_sql = format_ident!("INSERT_SQL");
        let many_sql = format_ident!("INSERT_MANY_SQL");
        let consts = [
            Self::sql_const(&insert_sql, "insert", self.shape.insert_sql()),
            Self::sql_const(&many_sql, "insert_many", self.shape.insert_many_sql()),
        ];
        Some((
            quote!(#(#consts)*),
            quote! {
                #insert_doc
                pub async fn insert<S>(tx: &mut ::tenancy_runtime::ScopedTx<S>, new: #new)
                    -> ::std::result::Result<#row, ::tenancy_runtime::Error>
                where S: ::tenancy_runtime::WriteScope<#role>
                {
                    #prelude
                    let row = ::sqlx::query_as::<_, #row>(Self::#insert_sql)
                        #scope_binds
                        #(#new_binds)*
                        .fetch_one(tx.connection())
                        .await?;
                    ::std::result::Result::Ok(row)
                }

                #many_doc
                pub async fn insert_many<S>(tx: &mut ::tenancy_runtime::ScopedTx<S>, rows: ::std::vec::Vec<#new>)
                    -> ::std::result::Result<::std::vec::Vec<#row>, ::tenancy_runtime::Error>
                where S: ::tenancy_runtime::WriteScope<#role>
                {
                    if rows.is_empty() {
                        return ::std::result::Result::Ok(::std::vec::Vec::new());
                    }
                    #prelude
                    #(let mut #arrays: #array_types = ::std::vec::Vec::with_capacity(rows.len());)*
                    for new in rows {
                        #(#pushes)*
                    }
                    let inserted = ::sqlx::query_as::<_, #row>(Self::#many_sql)
                        #scope_binds
                        #(.bind(#arrays))*
                        .fetch_all(tx.connection())
                        .await?;
                    ::std::result::Result::Ok(inserted)
                }
            },
        ))
    }

    fn update_method(&self) -> Option<(TokenStream, TokenStream)> {
        let (role, role_name) = self.role_type(Command::Update)?;
        let row = self.row();
        let patch = ident(&self.shape.names.patch());
        let (prelude, scope_binds) = self.write_scope_prelude(&role);
        let (params, key_binds) = self.key_params(&self.shape.write_key);
        let patch_binds = self.shape.patch_columns.iter().map(|c| {
            let name = snake_ident(&c.name);
            let value = if c.nullable {
                self.bind_value(c, quote!(patch.#name.flatten()), true)
            } else {
                self.bind_value(c, quote!(patch.#name), true)
            };
            quote!(.bind(patch.#name.is_some()).bind(#value))
        });
        let what = if self.shape.write_key.is_empty() {
            "Updates the write scope's own row"
        } else {
            "Updates one row of the write scope's project"
        };
        let doc = doc(&format!(
            "{what} and returns it as stored; `None` when no visible row matches. An empty \
             patch changes nothing and returns the current row.\n\n{}",
            self.rule_doc(Command::Update, role_name)
        ));
        let sql = format_ident!("UPDATE_SQL");
        Some((
            Self::sql_const(&sql, "update", self.shape.update_sql()),
            quote! {
                #doc
                pub async fn update<S>(tx: &mut ::tenancy_runtime::ScopedTx<S> #params, patch: #patch)
                    -> ::std::result::Result<::std::option::Option<#row>, ::tenancy_runtime::Error>
                where S: ::tenancy_runtime::WriteScope<#role>
                {
                    #prelude
                    let row = ::sqlx::query_as::<_, #row>(Self::#sql)
                        #scope_binds
                        #key_binds
                        #(#patch_binds)*
                        .fetch_optional(tx.connection())
                        .await?;
                    ::std::result::Result::Ok(row)
                }
            },
        ))
    }

    fn delete_method(&self) -> Option<(TokenStream, TokenStream)> {
        let (role, role_name) = self.role_type(Command::Delete)?;
        let (prelude, scope_binds) = self.write_scope_prelude(&role);
        let (params, key_binds) = self.key_params(&self.shape.write_key);
        let what = if self.shape.write_key.is_empty() {
            "Deletes the write scope's own row"
        } else {
            "Deletes one row of the write scope's project"
        };
        let doc = doc(&format!(
            "{what}; `false` when no visible row matched.\n\n{}",
            self.rule_doc(Command::Delete, role_name)
        ));
        let sql = format_ident!("DELETE_SQL");
        Some((
            Self::sql_const(&sql, "delete", self.shape.delete_sql()),
            quote! {
                #doc
                pub async fn delete<S>(tx: &mut ::tenancy_runtime::ScopedTx<S> #params)
                    -> ::std::result::Result<bool, ::tenancy_runtime::Error>
                where S: ::tenancy_runtime::WriteScope<#role>
                {
                    #prelude
                    let result = ::sqlx::query(Self::#sql)
                        #scope_binds
                        #key_binds
                        .execute(tx.connection())
                        .await?;
                    ::std::result::Result::Ok(result.rows_affected() > 0)
                }
            },
        ))
    }

    fn repository(&self) -> TokenStream {
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
        let parts: Vec<(TokenStream, TokenStream)> = [
            self.get_method(),
            self.list_methods(),
            self.insert_methods(),
            self.update_method(),
            self.delete_method(),
        ]
        .into_iter()
        .flatten()
        .collect();
        let mut body = TokenStream::new();
        let mut methods = TokenStream::new();
        for (consts, method) in parts {
            body.extend(consts);
            methods.extend(method);
        }
        body.extend(methods);
        let body = Group::new(Delimiter::Brace, body);
        quote! {
            #doc
            #[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
            pub struct #repo;

            impl #repo #body
        }
    }
}

/// The whole repository of `shape`'s table.
pub(crate) fn repository_tokens(shape: &Shape<'_>, roles_path: &syn::Path) -> TokenStream {
    repository_tokens_with_markers(shape, roles_path, &[])
}

/// [`repository_tokens`] with explicit marker types for some roles.
pub(crate) fn repository_tokens_with_markers(
    shape: &Shape<'_>,
    roles_path: &syn::Path,
    markers: &[(String, TokenStream)],
) -> TokenStream {
    let emitter = Emitter {
        shape,
        roles_path,
        markers,
    };
    let parts = [
        emitter.project_role_enum(),
        emitter.row_struct(),
        emitter.key_struct(),
        emitter.pagination(),
        emitter.new_struct(),
        emitter.patch_struct(),
        emitter.filter_struct(),
        emitter.repository(),
    ];
    // Moved, not interpolated: `#(#parts)*` would copy every part's tokens.
    parts.into_iter().collect()
}
