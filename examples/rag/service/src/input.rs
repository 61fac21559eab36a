//! Request extractors whose rejections are JSON [`ApiError`]s, and field validation.
//!
//! * [`ApiJson`]: malformed JSON or a field of the wrong type -> 422 naming the field (the
//!   path serde reports), body over the limit -> 413, wrong content type -> 415.
//! * [`ApiPath`]: a path id that is not a UUID -> 404 (an unknown id).
//! * [`ApiQuery`]: a bad query parameter -> 422 naming it.

use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::extract::{FromRequest, FromRequestParts, Path, Query, Request};
use axum::http::request::Parts;
use axum::http::StatusCode;
use serde::de::DeserializeOwned;
use tenancy_runtime::http::ApiError;

/// A JSON body with JSON error answers.
#[derive(Debug)]
pub struct ApiJson<T>(pub T);

impl<S, T> FromRequest<S> for ApiJson<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        match axum::Json::<T>::from_request(request, state).await {
            Ok(axum::Json(value)) => Ok(ApiJson(value)),
            Err(rejection) => Err(json_rejection(rejection)),
        }
    }
}

/// Maps axum's JSON rejection onto our error codes.
fn json_rejection(rejection: JsonRejection) -> ApiError {
    match rejection {
        JsonRejection::JsonDataError(error) => ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_field",
            strip_prefix(&error.body_text()),
        ),
        JsonRejection::JsonSyntaxError(_) => ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "malformed_json",
            "the body is not valid JSON",
        ),
        JsonRejection::MissingJsonContentType(_) => ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "expected `Content-Type: application/json`",
        ),
        other if other.status() == StatusCode::PAYLOAD_TOO_LARGE => ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            "the body exceeds the size limit",
        ),
        other => ApiError::new(
            StatusCode::BAD_REQUEST,
            "bad_request",
            format!("unreadable body ({})", other.status()),
        ),
    }
}

/// axum's messages start with a generic sentence; keep the part naming the field.
fn strip_prefix(text: &str) -> String {
    text.split_once(": ")
        .map(|(_, rest)| rest.to_owned())
        .unwrap_or_else(|| text.to_owned())
}

/// Path parameters; an unparsable id is an unknown id (404).
#[derive(Debug)]
pub struct ApiPath<T>(pub T);

impl<S, T> FromRequestParts<S> for ApiPath<T>
where
    T: DeserializeOwned + Send,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        match Path::<T>::from_request_parts(parts, state).await {
            Ok(Path(value)) => Ok(ApiPath(value)),
            Err(PathRejection::FailedToDeserializePathParams(_)) => Err(ApiError::not_found()),
            Err(_) => Err(ApiError::not_found()),
        }
    }
}

/// Query parameters; a bad one is 422 naming it.
#[derive(Debug)]
pub struct ApiQuery<T>(pub T);

impl<S, T> FromRequestParts<S> for ApiQuery<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        match Query::<T>::from_request_parts(parts, state).await {
            Ok(Query(value)) => Ok(ApiQuery(value)),
            Err(QueryRejection::FailedToDeserializeQueryString(error)) => Err(ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_field",
                strip_prefix(&error.body_text()),
            )),
            Err(_) => Err(ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_field",
                "query string",
            )),
        }
    }
}

/// Longest accepted short text (titles, model names, verdicts, URIs), in bytes.
pub const MAX_SHORT_TEXT: usize = 1_000;
/// Longest accepted long text (chunk content, query text, answers, claims), in bytes.
pub const MAX_LONG_TEXT: usize = 100_000;
/// Embedding dimension of the `chunks.embedding` column.
pub const EMBEDDING_DIMENSIONS: usize = 384;
/// Most chunks in one ingest batch.
pub const MAX_BATCH: usize = 1_000;

/// A text field: not blank, at most `max` bytes, no NUL (PostgreSQL text cannot hold it).
pub fn check_text(field: &str, value: &str, max: usize) -> Result<(), ApiError> {
    if value.trim().is_empty() {
        return Err(ApiError::invalid_field(field, "must not be empty"));
    }
    check_optional_text(field, value, max)
}

/// Like [`check_text`] but blank is allowed.
pub fn check_optional_text(field: &str, value: &str, max: usize) -> Result<(), ApiError> {
    if value.len() > max {
        return Err(ApiError::invalid_field(
            field,
            &format!("longer than {max} bytes"),
        ));
    }
    if value.contains('\0') {
        return Err(ApiError::invalid_field(field, "must not contain NUL"));
    }
    Ok(())
}

/// A JSON value for a `jsonb` column: an object without NUL in any string or key.
pub fn check_metadata(field: &str, value: &serde_json::Value) -> Result<(), ApiError> {
    if !value.is_object() {
        return Err(ApiError::invalid_field(field, "must be a JSON object"));
    }
    fn has_nul(value: &serde_json::Value) -> bool {
        match value {
            serde_json::Value::String(s) => s.contains('\0'),
            serde_json::Value::Array(items) => items.iter().any(has_nul),
            serde_json::Value::Object(map) => {
                map.iter().any(|(k, v)| k.contains('\0') || has_nul(v))
            }
            _ => false,
        }
    }
    if has_nul(value) {
        return Err(ApiError::invalid_field(field, "must not contain NUL"));
    }
    Ok(())
}

/// An embedding: exactly [`EMBEDDING_DIMENSIONS`] finite numbers whose cosine distance to any
/// other accepted embedding is a number: the sum of squares, computed in `f32` as pgvector does,
/// must be a normal positive number (not zero or underflowing to zero, which gives a NaN
/// distance that sorts first) and at most `f32::MAX / 4` (not overflowing, which gives NaN
/// too). Stored and query embeddings get the same check.
pub fn check_embedding(field: &str, values: &[f32]) -> Result<(), ApiError> {
    if values.len() != EMBEDDING_DIMENSIONS {
        return Err(ApiError::invalid_field(
            field,
            &format!(
                "expected {EMBEDDING_DIMENSIONS} numbers, got {}",
                values.len()
            ),
        ));
    }
    if values.iter().any(|v| !v.is_finite()) {
        return Err(ApiError::invalid_field(
            field,
            "every number must be finite",
        ));
    }
    let squares: f32 = values.iter().map(|v| v * v).sum();
    if !squares.is_normal() {
        return Err(ApiError::invalid_field(
            field,
            "must have a non-zero norm (its cosine distance would be undefined)",
        ));
    }
    if squares > f32::MAX / 4.0 {
        return Err(ApiError::invalid_field(
            field,
            "its norm is too large (its cosine distance would be undefined)",
        ));
    }
    Ok(())
}

/// A non-negative integer field.
pub fn check_non_negative(field: &str, value: i32) -> Result<(), ApiError> {
    if value < 0 {
        return Err(ApiError::invalid_field(field, "must not be negative"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vector(value: f32) -> Vec<f32> {
        vec![value; EMBEDDING_DIMENSIONS]
    }

    #[test]
    fn embeddings_without_a_cosine_distance_are_refused() {
        assert!(check_embedding("e", &vector(0.05)).is_ok());
        let mut axis = vector(0.0);
        axis[3] = 1.0;
        assert!(check_embedding("e", &axis).is_ok());
        for bad in [
            vector(0.0),
            vector(1e-30),
            vector(1e30),
            vector(f32::MAX),
            vector(f32::NAN),
            vector(f32::INFINITY),
            vec![1.0; 3],
        ] {
            let error = check_embedding("e", &bad).unwrap_err();
            assert_eq!(error.status(), StatusCode::UNPROCESSABLE_ENTITY, "{bad:?}");
        }
    }
}
