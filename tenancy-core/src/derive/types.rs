//! Rust field types to SQL types, `sql_type = "..."` and `default = ...` values.

use crate::model::{DefaultValue, SqlType};

/// What a field's Rust type says about its column.
pub(crate) enum RustType<'a> {
    /// A type with a fixed SQL type.
    Known(SqlType),
    /// `pgvector::Vector`: the dimension must come from `sql_type = "vector(N)"`.
    Vector,
    /// Anything else: needs `sql_type`.
    Unknown(&'a syn::Type),
}

/// Splits `Option<T>` into `(T, true)`; other types are `(ty, false)`.
pub(crate) fn strip_option(ty: &syn::Type) -> (&syn::Type, bool) {
    if let Some(inner) = single_generic(ty, "Option") {
        return (inner, true);
    }
    (ty, false)
}

/// The last path segment of a plain type path (`chrono::NaiveDate` -> `NaiveDate`).
fn last_segment(ty: &syn::Type) -> Option<&syn::PathSegment> {
    match ty {
        syn::Type::Path(path) if path.qself.is_none() => path.path.segments.last(),
        syn::Type::Group(group) => last_segment(&group.elem),
        syn::Type::Paren(paren) => last_segment(&paren.elem),
        _ => None,
    }
}

/// `T` when `ty` is `<name><T>`.
fn single_generic<'a>(ty: &'a syn::Type, name: &str) -> Option<&'a syn::Type> {
    let segment = last_segment(ty)?;
    if segment.ident != name {
        return None;
    }
    match &segment.arguments {
        syn::PathArguments::AngleBracketed(args) if args.args.len() == 1 => {
            match args.args.first() {
                Some(syn::GenericArgument::Type(inner)) => Some(inner),
                _ => None,
            }
        }
        _ => None,
    }
}

/// Maps a (non-`Option`) Rust type to its SQL type.
pub(crate) fn rust_type(ty: &syn::Type) -> RustType<'_> {
    let Some(segment) = last_segment(ty) else {
        return RustType::Unknown(ty);
    };
    let plain = segment.arguments.is_empty();
    let name = segment.ident.to_string();
    let known = match name.as_str() {
        "Uuid" if plain => SqlType::Uuid,
        "String" if plain => SqlType::Text,
        "i16" if plain => SqlType::SmallInt,
        "i32" if plain => SqlType::Integer,
        "i64" if plain => SqlType::BigInt,
        "f32" if plain => SqlType::Real,
        "f64" if plain => SqlType::Double,
        "bool" if plain => SqlType::Boolean,
        "NaiveDate" if plain => SqlType::Date,
        "DateTime" => SqlType::Timestamptz,
        "Value" | "JsonValue" if plain => SqlType::Jsonb,
        "Vector" if plain => return RustType::Vector,
        "Vec"
            if single_generic(ty, "Vec")
                .and_then(last_segment)
                .is_some_and(|s| s.ident == "u8" && s.arguments.is_empty()) =>
        {
            SqlType::Bytea
        }
        _ => return RustType::Unknown(ty),
    };
    RustType::Known(known)
}

/// The Rust type that holds a column of `ty` (for messages).
pub(crate) fn rust_type_name(ty: SqlType) -> &'static str {
    match ty {
        SqlType::Uuid => "uuid::Uuid",
        SqlType::Text | SqlType::Role => "String",
        SqlType::SmallInt => "i16",
        SqlType::Integer => "i32",
        SqlType::BigInt => "i64",
        SqlType::Real => "f32",
        SqlType::Double => "f64",
        SqlType::Boolean => "bool",
        SqlType::Date => "chrono::NaiveDate",
        SqlType::Timestamptz => "chrono::DateTime<chrono::Utc>",
        SqlType::Jsonb => "serde_json::Value",
        SqlType::Bytea => "Vec<u8>",
        SqlType::Vector(_) => "pgvector::Vector",
    }
}

/// The SQL type names `sql_type` accepts (for suggestions).
pub(crate) const SQL_TYPE_NAMES: [&str; 14] = [
    "uuid",
    "text",
    "smallint",
    "integer",
    "bigint",
    "real",
    "double",
    "double precision",
    "boolean",
    "date",
    "timestamptz",
    "jsonb",
    "bytea",
    "vector(N)",
];

/// Parses `sql_type = "..."`: a DSL type name, `double precision` or `vector(N)`.
pub(crate) fn parse_sql_type(text: &str) -> Result<SqlType, String> {
    let text = text.trim();
    let ty = match text {
        "uuid" => SqlType::Uuid,
        "text" => SqlType::Text,
        "smallint" => SqlType::SmallInt,
        "integer" => SqlType::Integer,
        "bigint" => SqlType::BigInt,
        "real" => SqlType::Real,
        "double" | "double precision" => SqlType::Double,
        "boolean" => SqlType::Boolean,
        "date" => SqlType::Date,
        "timestamptz" => SqlType::Timestamptz,
        "jsonb" => SqlType::Jsonb,
        "bytea" => SqlType::Bytea,
        other => {
            let dims = other
                .strip_prefix("vector(")
                .and_then(|rest| rest.strip_suffix(')'))
                .map(str::trim);
            return match dims.map(str::parse::<u32>) {
                Some(Ok(n)) if (1..=16000).contains(&n) => Ok(SqlType::Vector(n)),
                Some(_) => Err(format!(
                    "`{other}`: a vector needs a dimension between 1 and 16000, e.g. `vector(384)`"
                )),
                None => Err(match super::suggestion(other, &SQL_TYPE_NAMES) {
                    Some(s) => format!("unknown SQL type `{other}`; did you mean `{s}`?"),
                    None => format!(
                        "unknown SQL type `{other}`; expected one of: {}",
                        SQL_TYPE_NAMES.join(", ")
                    ),
                }),
            };
        }
    };
    Ok(ty)
}

/// Parses a `default = ...` value: `"now()"`, `"gen_random_uuid()"`, `"'text'"` (a SQL
/// string literal, quotes included), an integer, a decimal or a boolean.
pub(crate) fn parse_default(expr: &syn::Expr) -> Result<DefaultValue, String> {
    let (negative, lit) = match expr {
        syn::Expr::Lit(lit) => (false, &lit.lit),
        syn::Expr::Unary(syn::ExprUnary {
            op: syn::UnOp::Neg(_),
            expr,
            ..
        }) => match expr.as_ref() {
            syn::Expr::Lit(lit) => (true, &lit.lit),
            _ => return Err(DEFAULT_FORMS.to_owned()),
        },
        _ => return Err(DEFAULT_FORMS.to_owned()),
    };
    let sign = if negative { "-" } else { "" };
    match lit {
        syn::Lit::Str(text) if !negative => parse_default_string(&text.value()),
        syn::Lit::Int(int) => format!("{sign}{}", int.base10_digits())
            .parse::<i64>()
            .map(DefaultValue::Integer)
            .map_err(|_| "integer default out of range for bigint".to_owned()),
        syn::Lit::Float(float) => decimal_default(sign, float.base10_digits()),
        syn::Lit::Bool(value) if !negative => Ok(DefaultValue::Bool(value.value)),
        _ => Err(DEFAULT_FORMS.to_owned()),
    }
}

/// A float literal as the DSL writes a decimal (`-?digits.digits`, no exponent): `1e5`
/// becomes `100000.0`, `2.5E-3` becomes `0.0025`.
fn decimal_default(sign: &str, digits: &str) -> Result<DefaultValue, String> {
    if !digits.contains(['e', 'E']) {
        let text = match digits.split_once('.') {
            Some((_, "")) => format!("{digits}0"),
            Some(_) => digits.to_owned(),
            None => format!("{digits}.0"),
        };
        return Ok(DefaultValue::Decimal(format!("{sign}{text}")));
    }
    let value: f64 = digits
        .parse()
        .map_err(|_| format!("`{digits}` is not a number"))?;
    if !value.is_finite() {
        return Err(format!("`{digits}` is out of range for a double"));
    }
    // `Display` for f64 never uses an exponent and round-trips.
    let mut text = value.to_string();
    if !text.contains('.') {
        text.push_str(".0");
    }
    Ok(DefaultValue::Decimal(format!("{sign}{text}")))
}

const DEFAULT_FORMS: &str = "unsupported default; write `default = \"now()\"`, \
    `default = \"gen_random_uuid()\"`, `default = \"'text'\"` (a SQL string literal), \
    `default = 10`, `default = 0.5` or `default = true`";

fn parse_default_string(text: &str) -> Result<DefaultValue, String> {
    match text.trim() {
        "now()" => return Ok(DefaultValue::Now),
        "gen_random_uuid()" => return Ok(DefaultValue::GenRandomUuid),
        _ => {}
    }
    let inner = text
        .strip_prefix('\'')
        .and_then(|rest| rest.strip_suffix('\''))
        .filter(|_| text.len() >= 2);
    match inner {
        Some(inner) => {
            // A quote inside is written doubled, as in SQL.
            if inner.replace("''", "").contains('\'') {
                return Err(format!(
                    "`{text}`: a single quote inside a SQL string is written twice (`''`)"
                ));
            }
            Ok(DefaultValue::String(inner.replace("''", "'")))
        }
        None => Err(format!(
            "`{text}` is not a supported default; SQL string defaults keep their quotes \
             (`default = \"'{text}'\"`), functions are `now()` and `gen_random_uuid()`"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rust_types_map_to_sql_types() {
        let cases: [(syn::Type, SqlType); 6] = [
            (syn::parse_quote!(uuid::Uuid), SqlType::Uuid),
            (syn::parse_quote!(String), SqlType::Text),
            (syn::parse_quote!(DateTime<Utc>), SqlType::Timestamptz),
            (syn::parse_quote!(serde_json::Value), SqlType::Jsonb),
            (syn::parse_quote!(Vec<u8>), SqlType::Bytea),
            (syn::parse_quote!(chrono::NaiveDate), SqlType::Date),
        ];
        for (ty, expected) in cases {
            match rust_type(&ty) {
                RustType::Known(found) => assert_eq!(found, expected),
                _ => panic!("{expected:?} not recognised"),
            }
        }
        let vec_string: syn::Type = syn::parse_quote!(Vec<String>);
        assert!(matches!(rust_type(&vec_string), RustType::Unknown(_)));
    }

    #[test]
    fn option_is_nullable() {
        let ty: syn::Type = syn::parse_quote!(Option<i32>);
        let (inner, nullable) = strip_option(&ty);
        assert!(nullable);
        assert!(matches!(
            rust_type(inner),
            RustType::Known(SqlType::Integer)
        ));
    }

    #[test]
    fn sql_types_and_defaults_parse() {
        assert_eq!(parse_sql_type("vector(384)"), Ok(SqlType::Vector(384)));
        assert!(parse_sql_type("vector(0)").is_err());
        assert!(parse_sql_type("txt")
            .unwrap_err()
            .contains("did you mean `text`"));
        let expr: syn::Expr = syn::parse_quote!("'it''s'");
        assert_eq!(
            parse_default(&expr),
            Ok(DefaultValue::String("it's".into()))
        );
        let expr: syn::Expr = syn::parse_quote!(-1);
        assert_eq!(parse_default(&expr), Ok(DefaultValue::Integer(-1)));
        let expr: syn::Expr = syn::parse_quote!("draft");
        assert!(parse_default(&expr).is_err());
    }
}
