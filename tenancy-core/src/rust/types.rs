//! Mapping from model column types to Rust types and SQL spellings used in generated queries.

use proc_macro2::TokenStream;
use quote::quote;

use crate::model::{Column, DefaultValue, SqlType};

use super::naming::sql_literal;

/// The Rust type that holds a non-NULL value of `ty` (absolute paths).
///
/// The role enum is read as text (`role::text` in SELECT lists), so it maps to `String`.
pub(crate) fn rust_type(ty: SqlType) -> TokenStream {
    match ty {
        SqlType::Uuid => quote!(::uuid::Uuid),
        SqlType::Text | SqlType::Role => quote!(::std::string::String),
        SqlType::SmallInt => quote!(i16),
        SqlType::Integer => quote!(i32),
        SqlType::BigInt => quote!(i64),
        SqlType::Real => quote!(f32),
        SqlType::Double => quote!(f64),
        SqlType::Boolean => quote!(bool),
        SqlType::Date => quote!(::chrono::NaiveDate),
        SqlType::Timestamptz => quote!(::chrono::DateTime<::chrono::Utc>),
        SqlType::Jsonb => quote!(::serde_json::Value),
        SqlType::Bytea => quote!(::std::vec::Vec<u8>),
        SqlType::Vector(_) => quote!(::pgvector::Vector),
    }
}

/// The Rust type of a column as read from a row: `Option<T>` when the column is nullable.
pub(crate) fn row_field_type(column: &Column) -> TokenStream {
    let ty = rust_type(column.ty);
    if column.nullable {
        quote!(::std::option::Option<#ty>)
    } else {
        ty
    }
}

/// The SQL element type of the array a column's values are sent in by `insert_many`
/// (`text[]`, `double precision[]`, ...). The role enum travels as `text[]` and is cast
/// per element.
pub(crate) fn sql_array_type(ty: SqlType, helper_schema: &str) -> String {
    let element = match ty {
        SqlType::Role => "text".to_owned(),
        SqlType::Vector(_) => "vector".to_owned(),
        other => other.sql_name(helper_schema),
    };
    format!("{element}[]")
}

/// A column default as a SQL expression.
pub(crate) fn default_sql(default: &DefaultValue) -> String {
    match default {
        DefaultValue::String(text) => sql_literal(text),
        DefaultValue::Integer(value) => value.to_string(),
        DefaultValue::Decimal(value) => value.clone(),
        DefaultValue::Bool(value) => value.to_string(),
        DefaultValue::Now => "now()".to_owned(),
        DefaultValue::GenRandomUuid => "gen_random_uuid()".to_owned(),
    }
}

/// True when the type supports a useful equality filter (not jsonb, vector or bytea).
pub(crate) fn is_filterable(ty: SqlType) -> bool {
    !matches!(ty, SqlType::Jsonb | SqlType::Vector(_) | SqlType::Bytea)
}
