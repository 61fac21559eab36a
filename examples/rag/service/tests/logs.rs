//! Captures the logs of a run (JSON, debug level) and checks that they carry ids but no email,
#![allow(clippy::unwrap_used, clippy::expect_used)]
//! token, document content or query text.

mod common;

use std::io::Write;
use std::sync::{Arc, Mutex};

use common::*;
use rag_service::demo::ids::*;
use reqwest::StatusCode;
use serde_json::json;

#[derive(Clone, Default)]
struct Buffer(Arc<Mutex<Vec<u8>>>);

impl Write for Buffer {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(data);
        Ok(data.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn logs_carry_ids_but_no_personal_data_tokens_content_or_queries() {
    let buffer = Buffer::default();
    let writer = buffer.clone();
    tracing_subscriber::fmt()
        .json()
        .with_current_span(true)
        .with_span_list(true)
        .with_env_filter("debug,sqlx=debug")
        .with_writer(move || writer.clone())
        .init();
    let service = Service::start().await;
    let base = acme(ACME_HANDBOOK);
    let (status, doc) = service
        .post(ALICE, &format!("{base}/documents"), json!({"title": "SECRET-TITLE", "content_hash": "SECRET-HASH", "metadata": {"email": "alice@example.com"}}))
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let doc = doc["id"].as_str().unwrap().to_owned();
    let (status, _) = service
        .post(ALICE, &format!("{base}/documents/{doc}/chunks"), json!({"chunks": [{"ordinal": 0, "content": "SECRET-CONTENT", "token_count": 1, "embedding": axis(1)}]}))
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let (status, _) = service
        .post(
            BOB,
            &format!("{base}/queries"),
            json!({"query_text": "SECRET-QUERY"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    // Failures log too: a duplicate hash (409) and a refused request.
    let (status, _) = service
        .post(
            ALICE,
            &format!("{base}/documents"),
            json!({"title": "SECRET-TITLE", "content_hash": "SECRET-HASH"}),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT);
    let (status, _) = service
        .get(ALICE, &format!("{}/documents", globex(GLOBEX_RESEARCH)))
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let token = service.token(ALICE);
    let logs = String::from_utf8(buffer.0.lock().unwrap().clone()).unwrap();
    assert!(
        logs.contains("request finished"),
        "no request logs captured"
    );
    assert!(logs.contains("request_id"));
    assert!(
        logs.contains(&ALICE.to_string()),
        "user id missing from spans"
    );
    assert!(
        logs.contains(&ACME_HANDBOOK.to_string()),
        "project id missing from spans"
    );
    for secret in [
        "SECRET-TITLE",
        "SECRET-HASH",
        "SECRET-CONTENT",
        "SECRET-QUERY",
        "alice@example.com",
        token.as_str(),
        "eyJ",
    ] {
        assert!(!logs.contains(secret), "{secret} appears in the logs");
    }
}
