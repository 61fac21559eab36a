//! The OpenAPI 3.1 description, built from [`crate::ROUTES`] and the request/response types.

use utoipa::openapi::path::{HttpMethod, OperationBuilder, ParameterBuilder, ParameterIn};
use utoipa::openapi::request_body::RequestBodyBuilder;
use utoipa::openapi::response::ResponseBuilder;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityRequirement, SecurityScheme};
use utoipa::openapi::{
    ComponentsBuilder, Content, InfoBuilder, OpenApi, OpenApiBuilder, Paths, Ref, Required,
};

use crate::api;
use crate::ROUTES;

fn method(name: &str) -> HttpMethod {
    match name {
        "POST" => HttpMethod::Post,
        "PUT" => HttpMethod::Put,
        "PATCH" => HttpMethod::Patch,
        "DELETE" => HttpMethod::Delete,
        _ => HttpMethod::Get,
    }
}

/// The request body schema of a route, by (method, path suffix).
fn body_schema(method: &str, path: &str) -> Option<&'static str> {
    if method != "POST" && method != "PUT" && method != "PATCH" {
        return None;
    }
    Some(match () {
        _ if path.ends_with("/search") => "SearchBody",
        _ if path.ends_with("/documents") => "CreateDocument",
        _ if path.ends_with("/documents/{document_id}") => "UpdateDocument",
        _ if path.ends_with("/chunks") => "IngestChunks",
        _ if path.ends_with("/queries") => "CreateQuery",
        _ if path.ends_with("/responses") => "CreateResponse",
        _ if path.ends_with("/assertions") => "CreateAssertion",
        _ if path.ends_with("/members") => "AddMember",
        _ if path.ends_with("/members/{user_id}") => "ChangeRole",
        _ => return None,
    })
}

/// The document.
pub fn document() -> OpenApi {
    let mut paths = Paths::new();
    for (verb, path, role, summary) in ROUTES {
        let mut operation = OperationBuilder::new()
            .summary(Some(*summary))
            .description(Some(if *role == "-" {
                "No authentication.".to_owned()
            } else {
                format!(
                    "Bearer JWT; requires role `{role}` or above in the project. 401 bad token, \
                     404 unknown tenant/project (or no role in it), 403 role too low, 413 body \
                     too large, 422 invalid field."
                )
            }))
            .response("200", ResponseBuilder::new().description("Success").build())
            .response(
                "default",
                ResponseBuilder::new()
                    .description("`{\"error\": {\"code\": \"...\", \"message\": \"...\"}}`")
                    .build(),
            );
        for segment in path.split('/') {
            if let Some(name) = segment.strip_prefix('{').and_then(|s| s.strip_suffix('}')) {
                operation = operation.parameter(
                    ParameterBuilder::new()
                        .name(name)
                        .parameter_in(ParameterIn::Path)
                        .required(Required::True)
                        .description(Some("UUID"))
                        .build(),
                );
            }
        }
        if path.ends_with("/search") {
            operation = operation.description(Some(format!(
                "Bearer JWT; requires role `{role}` or above in the project. Returns the k \
                 nearest chunks (`SearchHit`), nearest first; header `{}` tells how the search \
                 was answered (`exact`, `tenant_hnsw`, `exact_after_short_hnsw`, \
                 `empty_scope`). 401 bad token, 404 unknown tenant/project (or no role in it), \
                 403 role too low, 413 body too large, 422 invalid field.",
                api::SEARCH_ROUTE_HEADER
            )));
        }
        if *role != "-" {
            operation =
                operation.security(SecurityRequirement::new("bearer", Vec::<String>::new()));
        }
        if let Some(schema) = body_schema(verb, path) {
            operation = operation.request_body(Some(
                RequestBodyBuilder::new()
                    .content(
                        "application/json",
                        Content::new(Some(Ref::from_schema_name(schema))),
                    )
                    .required(Some(Required::True))
                    .build(),
            ));
        }
        paths.add_path_operation(*path, vec![method(verb)], operation.build());
    }
    let components = ComponentsBuilder::new()
        .schema_from::<api::CreateDocument>()
        .schema_from::<api::UpdateDocument>()
        .schema_from::<api::ChunkInput>()
        .schema_from::<api::IngestChunks>()
        .schema_from::<api::ChunkView>()
        .schema_from::<api::SearchBody>()
        .schema_from::<api::SearchHit>()
        .schema_from::<api::CreateQuery>()
        .schema_from::<api::CreateResponse>()
        .schema_from::<api::CreateAssertion>()
        .schema_from::<api::AddMember>()
        .schema_from::<api::ChangeRole>()
        .schema_from::<api::MyProject>()
        .schema_from::<api::ProjectUsage>()
        .schema_from::<api::PageParams>()
        .security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .build(),
            ),
        )
        .build();
    OpenApiBuilder::new()
        .info(
            InfoBuilder::new()
                .title("rag-service")
                .version(env!("CARGO_PKG_VERSION"))
                .description(Some(
                    "Example multi-tenant RAG service on tenancy-runtime (row-level security).",
                ))
                .build(),
        )
        .paths(paths)
        .components(Some(components))
        .build()
}

/// The document as JSON text.
pub fn document_json() -> String {
    document().to_json().unwrap_or_else(|_| "{}".to_owned())
}
