//! The vector descriptors of the repositories: for every `vector(N)` column of a scoped table
//! the runtime's vector gateway can search, a `const` `tenancy_runtime::vector::VectorTable`
//! on the repository (`<Repository>::<COLUMN>_VECTORS`) and a typed search returning the
//! generated rows (`<Repository>::nearest_by_<column>`), and in `lib.rs` the list of every
//! descriptor (`VECTOR_TABLES`, for `VectorMaintenance::refresh_all`).
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

/// `impl <Repository> { pub async fn nearest_by_<column>(..); pub const <COLUMN>_VECTORS:
/// VectorTable<..> = ...; }` for the vector columns of `shape`'s table (no item when it has
/// none).
pub(crate) fn vector_items(shape: &Shape<'_>, roles_path: &syn::Path) -> syn::Result<Vec<Item>> {
    let columns = vector_columns(shape);
    if columns.is_empty() {
        return Ok(Vec::new());
    }
    let repository = Ident::new(&shape.names.repository, Span::call_site());
    let row = Ident::new(&shape.names.row, Span::call_site());
    let table = &shape.table.name;
    let schema = crate::model::TABLE_SCHEMA;
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
        let per_tenant = v.column.per_tenant;
        let per_tenant_doc = if per_tenant {
            " (the default; each tenant chooses its model, `per tenant`)"
        } else {
            ""
        };
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
             `vector({dimensions})`{per_tenant_doc}, {} distance, key `{key_column}`; `{}` to search, {update_doc}.",
            v.distance.dsl_name(),
            v.read_role,
        );
        let method = Ident::new(
            &format!("nearest_by_{}", v.column.name),
            Span::call_site(),
        );
        let method_doc = format!(
            " The `request.k` rows of the scope nearest to `request.query` by \
             `{vector_column}` ({} distance), with their rows, through the vector gateway on \
             [`Self::{name}`] (exact or the tenant's own HNSW index, see \
             `tenancy_runtime::vector::VectorGateway::search_rows`).",
            v.distance.dsl_name(),
        );
        let rule_doc = format!(
            " Requires `{}` or above in every project it reads (RLS policy `{table}_select`).",
            v.read_role,
        );
        quote! {
            #[doc = #method_doc]
            #[doc = ""]
            #[doc = #rule_doc]
            pub async fn #method<S>(
                tx: &mut ::tenancy_runtime::ScopedTx<S>,
                config: &::tenancy_runtime::vector::VectorConfig,
                request: &::tenancy_runtime::vector::SearchRequest,
            ) -> ::std::result::Result<
                ::tenancy_runtime::vector::SearchResults<S, #key_type, #row>,
                ::tenancy_runtime::Error,
            >
            where
                S: ::tenancy_runtime::ReadScope<#read>,
            {
                ::tenancy_runtime::vector::VectorGateway::new(Self::#name, ::std::clone::Clone::clone(config))
                    .search_rows::<S, #row>(tx, request)
                    .await
            }
            #[doc = #doc]
            pub const #name: ::tenancy_runtime::vector::VectorTable<#read, #update, #key_type> =
                ::tenancy_runtime::vector::VectorTable::new(::tenancy_runtime::vector::VectorSpec {
                    schema: #schema,
                    table: #table,
                    key_column: #key_column,
                    vector_column: #vector_column,
                    dimensions: #dimensions,
                    distance: ::tenancy_runtime::vector::Distance::#distance,
                    filter_columns: &[#(#filters),*],
                    per_tenant: #per_tenant,
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

#[cfg(test)]
mod tests {
    #![allow(clippy::expect_used, clippy::unwrap_used)]

    use super::super::generate_repositories;
    use crate::dsl::{compile, SourceFile};

    const MODEL: &str = "tenancy {\n owner_role = \"o\"\n app_role = \"a\"\n \
        helper_schema = \"tenancy\"\n roles = reader < writer\n}\n\
        tenants table tenants {\n name text\n allow select to reader\n}\n\
        projects table projects {\n name text\n allow select to reader\n}\n\
        memberships table members {\n allow select to reader\n}\n\
        scoped table folders {\n id uuid default gen_random_uuid()\n primary key (id)\n \
        allow select to reader\n}\n\
        scoped table notes {\n id bigint\n folder_id uuid references folders(id)\n \
        vec vector(8)? distance inner_product\n other vector(2)?\n primary key (id)\n \
        allow select to reader\n allow insert, update to writer\n}\n\
        scoped table frozen {\n id uuid\n vec vector(3)? distance l2\n primary key (id)\n \
        allow select, insert to reader\n}\n\
        scoped table pairs {\n a uuid\n b uuid\n vec vector(3)?\n primary key (a, b)\n \
        allow select to reader\n}\n";

    fn files() -> Vec<(String, String)> {
        let sources = [SourceFile::new("test.tenancy", MODEL.to_owned())];
        let (model, diagnostics) = compile(&sources);
        let model = model
            .filter(|_| !diagnostics.has_errors())
            .unwrap_or_else(|| panic!("{}", diagnostics.render(&sources, false)));
        generate_repositories(&model)
            .unwrap()
            .into_iter()
            .map(|f| (f.path.display().to_string(), f.contents))
            .collect()
    }

    fn file(files: &[(String, String)], path: &str) -> String {
        files
            .iter()
            .find(|(p, _)| p == path)
            .map(|(_, c)| c.replace(char::is_whitespace, ""))
            .unwrap()
    }

    #[test]
    fn every_searchable_vector_column_gets_a_typed_descriptor_from_the_model() {
        let files = files();
        let notes = file(&files, "src/notes.rs");
        // Two vector columns, key type from the model, roles of the select and update rules.
        assert!(notes.contains(
            "pubconstVEC_VECTORS:::tenancy_runtime::vector::VectorTable<crate::roles::Reader,\
             crate::roles::Writer,i64,>"
        ));
        assert!(notes.contains("vector_column:\"vec\",dimensions:8,distance:::tenancy_runtime::vector::Distance::InnerProduct,filter_columns:&[\"folder_id\"],"));
        assert!(notes.contains("pubconstOTHER_VECTORS"));
        // The typed search returns the generated rows, bounded by the select rule's role.
        assert!(
            notes.contains("pubasyncfnnearest_by_vec<S>(tx:&mut::tenancy_runtime::ScopedTx<S>,")
        );
        assert!(notes.contains("SearchResults<S,i64,Note>"));
        assert!(notes.contains("S:::tenancy_runtime::ReadScope<crate::roles::Reader>"));
        assert!(notes.contains("pubasyncfnnearest_by_other<S>"));
        assert!(notes.contains("vector_column:\"other\",dimensions:2,distance:::tenancy_runtime::vector::Distance::Cosine,"));
        // No update rule: no scope can set vectors.
        let frozen = file(&files, "src/frozen.rs");
        assert!(frozen.contains(
            "VectorTable<crate::roles::Reader,::tenancy_runtime::vector::NoUpdateRule,::uuid::Uuid,>"
        ));
        assert!(frozen.contains("Distance::L2"));
        // A two-column key is not searchable by the gateway: no descriptor.
        assert!(!file(&files, "src/pairs.rs").contains("VectorTable"));
        assert!(!file(&files, "src/folders.rs").contains("VectorTable"));
        let lib = file(&files, "src/lib.rs");
        assert!(lib.contains(
            "pubconstVECTOR_TABLES:&[&::tenancy_runtime::vector::VectorSpec]=&[&notes::Notes::VEC_VECTORS.spec,\
             &notes::Notes::OTHER_VECTORS.spec,&frozen::Frozen::VEC_VECTORS.spec,];"
        ));
    }
}
