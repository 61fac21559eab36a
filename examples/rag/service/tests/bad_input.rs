//! Every bad-input class: 413, 422 naming the field, 404 for unknown ids, and no 5xx for a
#![allow(clippy::unwrap_used, clippy::expect_used)]
//! batch of malformed inputs thrown at every endpoint; plus the OpenAPI document.

mod common;

use common::*;
use rag_service::demo::ids::*;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

#[tokio::test]
async fn each_bad_input_class_has_its_answer() {
    let service = Service::start_with_limit(16 * 1024).await;
    let base = acme(ACME_HANDBOOK);
    let url = format!("{}{base}/documents", service.base);
    let token = service.token(ALICE);
    // 413: body over the limit.
    let big = json!({"title": "x".repeat(20 * 1024), "content_hash": "h"});
    let response = service
        .client
        .post(&url)
        .bearer_auth(&token)
        .json(&big)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["code"], "payload_too_large");
    // 422: malformed JSON.
    let response = service
        .client
        .post(&url)
        .bearer_auth(&token)
        .header("content-type", "application/json")
        .body("{\"title\": ")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
    // 422 naming the field: wrong type, missing field, invalid values.
    for (body, field) in [
        (json!({"title": 5, "content_hash": "h"}), "title"),
        (json!({"title": "t"}), "content_hash"),
        (json!({"title": "", "content_hash": "h"}), "title"),
        (json!({"title": "a\u{0}b", "content_hash": "h"}), "title"),
        (
            json!({"title": "t", "content_hash": "h", "metadata": [1]}),
            "metadata",
        ),
        (
            json!({"title": "t", "content_hash": "h", "metadata": {"k": "\u{0}"}}),
            "metadata",
        ),
    ] {
        let (status, answer) = service
            .post(ALICE, &format!("{base}/documents"), body.clone())
            .await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}: {answer}");
        let message = answer["error"]["message"].as_str().unwrap();
        assert!(message.contains(field), "{body}: {message}");
    }
    let (_, docs) = service.get(ALICE, &format!("{base}/documents")).await;
    let doc = docs["items"][0]["id"].as_str().unwrap().to_owned();
    for (chunks, field) in [
        (
            json!([{"ordinal": 0, "content": "c", "token_count": 1, "embedding": [1.0, 2.0]}]),
            "embedding",
        ),
        (
            json!([{"ordinal": -1, "content": "c", "token_count": 1}]),
            "ordinal",
        ),
        (
            json!([{"ordinal": 0, "content": "c", "token_count": 1}, {"ordinal": 0, "content": "d", "token_count": 1}]),
            "ordinal",
        ),
        (json!([]), "chunks"),
        (
            json!([{"ordinal": 0, "content": "c", "token_count": 1, "embedding": vec![1e39; 384]}]),
            "embedding",
        ),
    ] {
        let (status, answer) = service
            .post(
                ALICE,
                &format!("{base}/documents/{doc}/chunks"),
                json!({"chunks": chunks}),
            )
            .await;
        assert_eq!(
            status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{chunks}: {answer}"
        );
        assert!(
            answer["error"]["message"].as_str().unwrap().contains(field),
            "{answer}"
        );
    }
    let (status, answer) = service
        .get(ALICE, &format!("{base}/documents?limit=abc"))
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(answer["error"]["message"]
        .as_str()
        .unwrap()
        .contains("limit"));
    // 404: unknown ids, and ids that are not UUIDs.
    for path in [
        format!("{base}/documents/{}", uuid::Uuid::new_v4()),
        format!("{base}/documents/not-a-uuid"),
        format!("{base}/queries/{}", uuid::Uuid::new_v4()),
        format!("{base}/documents/{}/chunks", uuid::Uuid::new_v4()),
        format!("/t/not-a-uuid/projects/{ACME_HANDBOOK}/documents"),
        "/no/such/route".to_owned(),
    ] {
        let (status, answer) = service.get(ALICE, &path).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{path}: {answer}");
    }
}

#[tokio::test]
async fn malformed_inputs_at_every_endpoint_never_produce_a_5xx() {
    let service = Service::start_with_limit(16 * 1024).await;
    let (_, docs) = service
        .get(ALICE, &format!("{}/documents", acme(ACME_HANDBOOK)))
        .await;
    let doc = docs["items"][0]["id"].as_str().unwrap().to_owned();
    let ids = [
        ("{tenant_id}", ACME.to_string()),
        ("{project_id}", ACME_HANDBOOK.to_string()),
        ("{document_id}", doc.clone()),
        ("{query_id}", doc.clone()),
        ("{response_id}", doc.clone()),
        ("{user_id}", BOB.to_string()),
    ];
    let bodies: Vec<String> = vec![
        String::new(),
        "null".into(),
        "[]".into(),
        "{".into(),
        "\"text\"".into(),
        "{}".into(),
        json!({"title": null, "content_hash": 1}).to_string(),
        json!({"title": "t", "content_hash": "h", "extra": 1}).to_string(),
        json!({"embedding": "x"}).to_string(),
        json!({"embedding": vec![0.0; 384], "k": 0}).to_string(),
        json!({"embedding": vec![0.0; 384], "k": -1}).to_string(),
        json!({"chunks": [{"ordinal": 2147483648i64, "content": "c", "token_count": 1}]})
            .to_string(),
        json!({"chunks": [{"ordinal": 0, "content": "\u{0}", "token_count": 1}]}).to_string(),
        json!({"query_text": "q", "top_k": 100000}).to_string(),
        json!({"answer_text": "a", "model": "m", "latency_ms": -5}).to_string(),
        json!({"claim": "c", "chunk_id": "not-a-uuid"}).to_string(),
        json!({"claim": "c", "chunk_id": uuid::Uuid::new_v4()}).to_string(),
        json!({"user_id": "x", "role": "owner"}).to_string(),
        json!({"user_id": uuid::Uuid::new_v4(), "role": "ghost"}).to_string(),
        json!({"role": "\u{0}"}).to_string(),
        "\u{feff}{}".into(),
        "{\"title\": \"\\ud800\", \"content_hash\": \"h\"}".into(),
    ];
    let queries = [
        "",
        "?limit=0",
        "?limit=-1",
        "?after=zzz",
        "?limit=99999999999",
        "?x=1",
    ];
    let mut requests = 0;
    for (verb, route, _, _) in rag_service::ROUTES {
        let mut path = route.to_string();
        for (name, value) in &ids {
            path = path.replace(name, value);
        }
        let method: Method = verb.parse().unwrap();
        for body in &bodies {
            for query in queries {
                for content_type in ["application/json", "text/plain"] {
                    let response = service
                        .client
                        .request(method.clone(), format!("{}{path}{query}", service.base))
                        .bearer_auth(service.token(ALICE))
                        .header("content-type", content_type)
                        .body(body.clone())
                        .send()
                        .await
                        .unwrap();
                    let status = response.status();
                    let text = response.text().await.unwrap();
                    assert!(
                        !status.is_server_error(),
                        "{verb} {path}{query} {content_type} body {body:?}: {status} {text}"
                    );
                    requests += 1;
                }
            }
        }
    }
    assert!(requests > 3000, "{requests}");
}

#[tokio::test]
async fn openapi_document_lists_every_route_and_every_route_is_served() {
    let service = Service::start().await;
    let response = service
        .client
        .get(format!("{}/openapi.json", service.base))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let document: Value = response.json().await.unwrap();
    assert!(document["openapi"].as_str().unwrap().starts_with("3."));
    assert_eq!(document["info"]["title"], "rag-service");
    for (verb, route, role, _) in rag_service::ROUTES {
        let operation = &document["paths"][route][verb.to_lowercase()];
        assert!(
            operation.is_object(),
            "{verb} {route} missing from the OpenAPI document"
        );
        if *role != "-" {
            assert!(
                operation["security"].is_array(),
                "{verb} {route} has no security"
            );
        }
        if matches!(*verb, "POST" | "PUT" | "PATCH") {
            let schema = operation["requestBody"]["content"]["application/json"]["schema"]["$ref"]
                .as_str()
                .unwrap_or_else(|| panic!("{verb} {route} has no body schema"));
            let name = schema.rsplit('/').next().unwrap();
            assert!(
                document["components"]["schemas"][name].is_object(),
                "{name}"
            );
        }
        // The router serves it: a protected route answers 401 without a token, not 404/405.
        let path = route.replace(['{', '}'], "");
        let path = path
            .split('/')
            .map(|s| {
                if s.ends_with("_id") {
                    uuid::Uuid::new_v4().to_string()
                } else {
                    s.to_owned()
                }
            })
            .collect::<Vec<_>>()
            .join("/");
        let status = service
            .client
            .request(verb.parse().unwrap(), format!("{}{path}", service.base))
            .send()
            .await
            .unwrap()
            .status();
        if *role == "-" {
            assert_eq!(status, StatusCode::OK, "{verb} {route}");
        } else {
            assert_eq!(status, StatusCode::UNAUTHORIZED, "{verb} {route}");
        }
    }
}
