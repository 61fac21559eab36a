//! Mapping from model column types to Rust types and SQL spellings used in generated queries.

use syn::Type;

use crate::model::{Column, DefaultValue, SqlType};

use super::ast::{generic_type, option_type, path, path_type, vec_type};
use super::naming::sql_literal;

/// The Rust type that holds a non-NULL value of `ty` (absolute paths).
///
/// The role enum is read as text (`role::text` in SELECT lists), so it maps to `String`.
pub(crate) fn rust_type(ty: SqlType) -> Type {
    let absolute = |segments: &[&str]| path_type(path(true, segments));
    let primitive = |name: &str| path_type(path(false, &[name]));
    match ty {
        SqlType::Uuid => absolute(&["uuid", "Uuid"]),
        SqlType::Text | SqlType::Role => absolute(&["std", "string", "String"]),
        SqlType::SmallInt => primitive("i16"),
        SqlType::Integer => primitive("i32"),
        SqlType::BigInt => primitive("i64"),
        SqlType::Real => primitive("f32"),
        SqlType::Double => primitive("f64"),
        SqlType::Boolean => primitive("bool"),
        SqlType::Date => absolute(&["chrono", "NaiveDate"]),
        SqlType::Timestamptz => generic_type(&["chrono", "DateTime"], absolute(&["chrono", "Utc"])),
        SqlType::Jsonb => absolute(&["serde_json", "Value"]),
        SqlType::Bytea => vec_type(primitive("u8")),
        SqlType::Vector(_) => absolute(&["pgvector", "Vector"]),
    }
}

/// The Rust type of a column as read from a row: `Option<T>` when the column is nullable.
pub(crate) fn row_field_type(column: &Column) -> Type {
    let ty = rust_type(column.ty);
    if column.nullable {
        option_type(ty)
    } else {
        ty
    }
}

/// The schema-qualified SQL name of `ty` for casts in generated queries: built-in types in
/// `pg_catalog`, the role enum in the helper schema. pgvector's `vector` stays unqualified: the
/// operator chooses the extension's schema, and the runtime pins `search_path` (docs/security.md).
pub(crate) fn qualified_type_sql(ty: SqlType, helper_schema: &str) -> String {
    let builtin = |name: &str| format!("pg_catalog.{name}");
    match ty {
        SqlType::Uuid => builtin("uuid"),
        SqlType::Text => builtin("text"),
        SqlType::SmallInt => builtin("int2"),
        SqlType::Integer => builtin("int4"),
        SqlType::BigInt => builtin("int8"),
        SqlType::Real => builtin("float4"),
        SqlType::Double => builtin("float8"),
        SqlType::Boolean => builtin("bool"),
        SqlType::Date => builtin("date"),
        SqlType::Timestamptz => builtin("timestamptz"),
        SqlType::Jsonb => builtin("jsonb"),
        SqlType::Bytea => builtin("bytea"),
        SqlType::Vector(_) => ty.sql_name(helper_schema),
        SqlType::Role => format!(
            "{}.{}",
            super::naming::sql_ident(helper_schema),
            super::naming::sql_ident(crate::model::ROLE_TYPE)
        ),
    }
}

/// The SQL element type of the array a column's values are sent in by `insert_many`
/// (`pg_catalog.text[]`, `pg_catalog.float8[]`, ...). The role enum travels as text and is
/// cast per element.
pub(crate) fn sql_array_type(ty: SqlType, helper_schema: &str) -> String {
    let element = match ty {
        SqlType::Role => qualified_type_sql(SqlType::Text, helper_schema),
        SqlType::Vector(_) => "vector".to_owned(),
        other => qualified_type_sql(other, helper_schema),
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
        DefaultValue::Now => "pg_catalog.now()".to_owned(),
        DefaultValue::GenRandomUuid => "pg_catalog.gen_random_uuid()".to_owned(),
    }
}

/// True when the type supports a useful equality filter (not jsonb, vector or bytea).
pub(crate) fn is_filterable(ty: SqlType) -> bool {
    !matches!(ty, SqlType::Jsonb | SqlType::Vector(_) | SqlType::Bytea)
}
