//! The data types of a table's repository: row, key, pagination, new row, patch, filter.

use super::*;

impl Emitter<'_, '_> {
    pub(super) fn project_role_enum(&self) -> syn::Result<Vec<Item>> {
        if self.shape.table.kind == crate::model::TableKind::TenantMemberships {
            // The enum lives in the memberships table's module, a sibling of this one.
            let Some(memberships) = self
                .shape
                .model
                .core_table(crate::model::TableKind::Memberships)
            else {
                return Ok(Vec::new());
            };
            let module = snake_ident(&memberships.name);
            let role = ident(PROJECT_ROLE);
            return parse_items(quote! {
                use super::#module::#role;
            });
        }
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

    pub(super) fn row_struct(&self) -> syn::Result<Item> {
        let mut table_doc = match &self.shape.table.doc {
            Some(text) => format!("{text}\n\nA row of `{}`.", self.table_name()),
            None => format!("A row of `{}`.", self.table_name()),
        };
        if let Some(tier) = &self.shape.tier {
            table_doc = format!(
                "A row of `{}` as a caller with `{}` or above reads it, masked columns \
                 included (read through the masked view `{}`).",
                self.table_name(),
                tier.role,
                tier.view_sql
            );
        } else if !self.shape.masked.is_empty() {
            table_doc.push_str(&format!(
                " Without the masked columns {} (see the `get_as_<role>` methods).",
                self.shape
                    .masked
                    .iter()
                    .map(|c| format!("`{}`", c.name))
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        }
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
    pub(super) fn row_from_row(&self) -> syn::Result<Vec<Item>> {
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

    pub(super) fn key_struct(&self) -> syn::Result<Option<Item>> {
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
    pub(super) fn pagination(&self) -> syn::Result<Vec<Item>> {
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

    pub(super) fn new_struct(&self) -> syn::Result<Option<Item>> {
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
    pub(super) fn new_constructor(&self) -> syn::Result<Option<Item>> {
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

    pub(super) fn patch_struct(&self) -> syn::Result<Vec<Item>> {
        let mut items = Vec::new();
        for tier in &self.shape.update_tiers {
            let mut doc = format!(
                "Changes to one `{}` row: `None` leaves a column as it is (for a nullable column, \
                 `Some(None)` sets it to NULL).",
                self.table_name()
            );
            if self.shape.table.has_column_rights() {
                doc.push_str(&format!(
                    " Holds the columns `{}` may change (method `{}`).",
                    tier.role,
                    tier.method()
                ));
            }
            let fields = self.fields(&tier.columns, |c| {
                let ty = self.input_type(c);
                if c.nullable {
                    option_type(option_type(ty))
                } else {
                    option_type(ty)
                }
            });
            items.push(Self::struct_item(
                &doc,
                quote!(#[derive(Debug, Clone, PartialEq, Default, ::serde::Serialize, ::serde::Deserialize)]),
                &ident(&tier.patch(&self.shape.names)),
                fields,
            )?);
        }
        Ok(items)
    }

    pub(super) fn filter_struct(&self) -> syn::Result<Option<Item>> {
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
}
