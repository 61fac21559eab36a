//! The vector descriptors of the repositories: for every `vector(N)` column of a scoped table
//! the runtime's vector gateway can search, a `const` `tenancy_runtime::vector::VectorTable`
//! on the repository (`<Repository>::<COLUMN>_VECTORS`), and in `lib.rs` the list of them all
//! (`VECTOR_TABLES`, for `VectorMaintenance::refresh_all`).
//!
//! A column gets a descriptor when its table is a scoped table with a `select` rule and a
//! single-column key within the project of an ordered type (uuid, text, integers, date,
//! timestamptz, boolean). Its types carry the select rule's role (searches), the update
//! rule's role (`set_embeddings`; `NoUpdateRule` when the model allows no update) and the
//! key's Rust type; its spec carries the names, the dimension, the distance (`distance` in the
//! DSL, cosine by default) and the filter columns (the table's single-column `uuid`
//! references).

use proc_macro2::{Ident, Span, TokenStream};
use quote::quote;
use syn::Item;

use crate::model::{Column, Command, SqlType, TableKind, VectorDistance};

use super::naming::{camel_case, snake_ident};
use super::shape::Shape;
use super::types::rust_type;

/// One vector column of a repository with what its descriptor needs.
struct VectorColumn<'s> {
    column: &'s Column,
    dimensions: u32,
    distance: VectorDistance,
    key: &'s Column,
    read_role: &'s str,
    update_role: Option<&'s str>,
}

/// `<COLUMN>_VECTORS`, the name of a column's descriptor constant.
fn const_name(column: &str) -> Ident {
    Ident::new(
        &format!("{}_VECTORS", column.to_ascii_uppercase()),
        Span::call_site(),
    )
}

/// The vector columns of `shape`'s table that get a descriptor, in column order.
fn vector_columns<'s>(shape: &'s Shape<'_>) -> Vec<VectorColumn<'s>> {
    if shape.table.kind != TableKind::Scoped {
        return Vec::new();
    }
    let (Some(read_role), [key]) = (
        shape.method_role(Command::Select),
        shape.read_key.as_slice(),
    ) else {
        return Vec::new();
    };
    let ordered_key = matches!(
        key.ty,
        SqlType::Uuid
            | SqlType::Text
            | SqlType::SmallInt
            | SqlType::Integer
            | SqlType::BigInt
            | SqlType::Date
            | SqlType::Timestamptz
            | SqlType::Boolean
    );
    if !ordered_key {
        return Vec::new();
    }
    shape
        .columns
        .iter()
        .filter_map(|column| match (column.ty, column.vector_distance()) {
            (SqlType::Vector(dimensions), Some(distance)) => Some(VectorColumn {
                column,
                dimensions,
                distance,
                key,
                read_role,
                update_role: shape.method_role(Command::Update),
            }),
            _ => None,
        })
        .collect()
}

/// The marker type of `role`: `crate::roles::<Role>`.
fn role_type(roles_path: &syn::Path, role: &str) -> syn::Path {
    let mut path = roles_path.clone();
    path.segments
        .push(Ident::new(&camel_case(role), Span::call_site()).into());
    path
}

/// `impl <Repository> { pub const <COLUMN>_VECTORS: VectorTable<..> = ...; }` for the vector
/// columns of `shape`'s table (no item when it has none).
pub(crate) fn vector_items(shape: &Shape<'_>, roles_path: &syn::Path) -> syn::Result<Vec<Item>> {
    let columns = vector_columns(shape);
    if columns.is_empty() {
        return Ok(Vec::new());
    }
    let repository = Ident::new(&shape.names.repository, Span::call_site());
    let table = &shape.table.name;
    let filters: Vec<&str> = shape
        .table
        .foreign_keys
        .iter()
        .filter_map(|fk| match fk.columns.as_slice() {
            [column] => Some(column.as_str()),
            _ => None,
        })
        .filter(|name| {
            shape
                .columns
                .iter()
                .any(|c| &c.name == name && c.ty == SqlType::Uuid)
        })
        .collect();
    let consts = columns.iter().map(|v| {
        let name = const_name(&v.column.name);
        let read = role_type(roles_path, v.read_role);
        let update = match v.update_role {
            Some(role) => {
                let path = role_type(roles_path, role);
                quote!(#path)
            }
            None => quote!(::tenancy_runtime::vector::NoUpdateRule),
        };
        let key_type = rust_type(v.key.ty);
        let key_column = &v.key.name;
        let vector_column = &v.column.name;
        let dimensions = proc_macro2::Literal::u32_unsuffixed(v.dimensions);
        let distance = Ident::new(
            match v.distance {
                VectorDistance::Cosine => "Cosine",
                VectorDistance::L2 => "L2",
                VectorDistance::InnerProduct => "InnerProduct",
            },
            Span::call_site(),
        );
        let update_doc = match v.update_role {
            Some(role) => format!("`{role}` (the update rule) to set vectors"),
            None => "no update rule, so vectors are written by `insert` only".to_owned(),
        };
        let doc = format!(
            " The `{vector_column}` column of `{table}` for the vector gateway \
             (`tenancy_runtime::vector::VectorGateway::new(Self::{name}, config)`): \
             `vector({dimensions})`, {} distance, key `{key_column}`; `{}` to search, {update_doc}.",
            v.distance.dsl_name(),
            v.read_role,
        );
        quote! {
            #[doc = #doc]
            pub const #name: ::tenancy_runtime::vector::VectorTable<#read, #update, #key_type> =
                ::tenancy_runtime::vector::VectorTable::new(::tenancy_runtime::vector::VectorSpec {
                    schema: "public",
                    table: #table,
                    key_column: #key_column,
                    vector_column: #vector_column,
                    dimensions: #dimensions,
                    distance: ::tenancy_runtime::vector::Distance::#distance,
                    filter_columns: &[#(#filters),*],
                });
        }
    });
    let tokens = quote! {
        impl #repository {
            #(#consts)*
        }
    };
    Ok(syn::parse2::<syn::File>(tokens)?.items)
}

/// `pub const VECTOR_TABLES: &[&VectorSpec] = &[...]` for `lib.rs`: every descriptor of
/// every repository, in table then column order (nothing when the model has none).
pub(crate) fn vector_tables_tokens(shapes: &[Shape<'_>]) -> TokenStream {
    let specs: Vec<TokenStream> = shapes
        .iter()
        .flat_map(|shape| {
            let module = snake_ident(&shape.table.name);
            let repository = Ident::new(&shape.names.repository, Span::call_site());
            vector_columns(shape)
                .into_iter()
                .map(move |v| {
                    let name = const_name(&v.column.name);
                    quote!(&#module::#repository::#name.spec)
                })
                .collect::<Vec<_>>()
        })
        .collect();
    if specs.is_empty() {
        return TokenStream::new();
    }
    quote! {
        /// Every vector column the vector gateway can search, for
        /// `tenancy_runtime::vector::VectorMaintenance::refresh_all`.
        pub const VECTOR_TABLES: &[&::tenancy_runtime::vector::VectorSpec] = &[#(#specs),*];
    }
}
