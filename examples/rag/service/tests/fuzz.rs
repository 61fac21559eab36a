//! Hostile input, property-tested (issue 23, item 3; docs/reliability.md): bearer JWTs,
//! context tokens (verified by the database), and request bodies and query strings at every
//! route. Each property runs a bounded number of cases (`PROPTEST_CASES` overrides) and first
//! replays the committed corpus of inputs that once needed care (`tests/fuzz_corpus/`). No
//! panic, no 5xx, no answer slower than a bound, every refusal a clear error.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::time::{Duration, Instant};

use common::*;
use proptest::prelude::*;
use proptest::test_runner::{Config as ProptestConfig, TestRunner};
use rag_service::demo::ids::*;
use rag_service::ROUTES;
use reqwest::{Method, StatusCode};
use tenancy_runtime::http::{AuthFailure, JwtVerifier};
use uuid::Uuid;

/// The committed corpus `name` without comment lines.
fn corpus(name: &str) -> Vec<String> {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fuzz_corpus")
        .join(name);
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .filter(|line| !line.starts_with('#'))
        .map(str::to_owned)
        .collect()
}

fn cases(default: u32) -> ProptestConfig {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default);
    ProptestConfig {
        cases,
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

fn verifier() -> JwtVerifier {
    JwtVerifier::hs256(SECRET, ISSUER, AUDIENCE)
        .with_leeway(30)
        .with_max_lifetime(86_400)
}

/// Every corpus token and every random string is refused, quickly and without a panic.
#[test]
fn jwt_garbage_is_refused() {
    let verifier = verifier();
    for token in corpus("jwt.txt") {
        let started = Instant::now();
        assert!(verifier.verify(&token).is_err(), "accepted: {token}");
        assert!(started.elapsed() < Duration::from_millis(200), "{token}");
    }
    let mut runner = TestRunner::new(cases(512));
    runner
        .run(
            &prop_oneof![
                ".{0,300}",
                "[A-Za-z0-9_-]{0,80}\\.[A-Za-z0-9_-]{0,200}\\.[A-Za-z0-9_-]{0,60}",
                "eyJ[A-Za-z0-9_-]{0,100}\\.eyJ[A-Za-z0-9_-]{0,200}\\.[A-Za-z0-9_-]{43}",
            ],
            |token| {
                prop_assert!(verifier.verify(&token).is_err());
                Ok(())
            },
        )
        .unwrap();
}

/// A valid token with one byte changed, or cut short, or extended, is refused, except a change
/// to the last character of the signature that decodes to the same bytes.
#[test]
fn mutated_jwts_are_refused() {
    let verifier = verifier();
    let valid = rag_service::demo::mint_token(SECRET, ISSUER, AUDIENCE, ALICE, 600).unwrap();
    assert!(verifier.verify(&valid).is_ok());
    let mut runner = TestRunner::new(cases(512));
    let len = valid.len();
    runner
        .run(&(0..len, any::<u8>(), 0..3u8), |(at, byte, how)| {
            let mut bytes = valid.clone().into_bytes();
            match how {
                0 => bytes[at] = byte,
                1 => bytes.truncate(at),
                _ => bytes.insert(at, byte),
            }
            let Ok(token) = String::from_utf8(bytes) else {
                return Ok(());
            };
            if token == valid {
                return Ok(());
            }
            match verifier.verify(&token) {
                Err(
                    AuthFailure::Malformed
                    | AuthFailure::BadSignature
                    | AuthFailure::UnknownKey
                    | AuthFailure::WrongIssuer
                    | AuthFailure::WrongAudience
                    | AuthFailure::Expired
                    | AuthFailure::NotYetValid
                    | AuthFailure::IssuedInFuture
                    | AuthFailure::LifetimeTooLong
                    | AuthFailure::Missing,
                ) => {}
                Ok(user) => {
                    // Only a signature that decodes to the same bytes may still verify.
                    prop_assert_eq!(user.as_uuid(), ALICE);
                    prop_assert!(how == 0 && at == len - 1, "forged: {}", token);
                }
            }
            Ok(())
        })
        .unwrap();
}

/// Mutated context tokens (a valid signed token with one character changed) are refused by
/// the database: no row is visible under them.
#[test]
fn mutated_context_tokens_show_no_rows() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let db = runtime.block_on(async {
        let db = tenancy_tests::TestDb::fresh().await;
        rag_service::demo::seed(db.admin_pool()).await.unwrap();
        db
    });
    let claims = tenancy_tests::context_value(
        &ACME.to_string(),
        &ALICE.to_string(),
        &format!("{ACME_HANDBOOK}:owner"),
    );
    let valid = tenancy_tests::context_token(&claims);
    let visible = |token: String| -> Result<i64, String> {
        runtime.block_on(async {
            let mut tx = db.app_pool().begin().await.map_err(|e| e.to_string())?;
            sqlx::query("SELECT tenancy.install_context($1)")
                .bind(&token)
                .execute(&mut *tx)
                .await
                .map_err(|e| e.to_string())?;
            sqlx::query_scalar("SELECT count(*) FROM documents")
                .fetch_one(&mut *tx)
                .await
                .map_err(|e| e.to_string())
        })
    };
    assert_eq!(
        visible(valid.clone()),
        Ok(1),
        "the control token sees Acme's document"
    );
    let mut runner = TestRunner::new(cases(48));
    let len = valid.len();
    runner
        .run(&(0..len, any::<char>()), |(at, replacement)| {
            let mut chars: Vec<char> = valid.chars().collect();
            chars[at] = replacement;
            let token: String = chars.into_iter().collect();
            if token == valid || token.contains('\0') {
                return Ok(());
            }
            match visible(token.clone()) {
                Ok(count) => prop_assert_eq!(count, 0, "rows visible under {}", token),
                Err(error) => prop_assert!(
                    error.contains("42501")
                        || error.contains("tenancy:")
                        || error.contains("invalid"),
                    "unexpected error for {}: {}",
                    token,
                    error
                ),
            }
            Ok(())
        })
        .unwrap();
    runtime.block_on(db.drop_db());
}

/// Bodies (corpus and random JSON) at every route with a body, and query strings at every
/// list route: never a 5xx, never slower than 5 s.
#[test]
fn hostile_bodies_and_query_strings_never_get_a_5xx() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let service = runtime.block_on(Service::start_opts(StartOptions {
        body_limit: 256 * 1024,
        ..StartOptions::default()
    }));
    let token = service.token(ALICE);
    let doc = Uuid::new_v4();
    let concrete = |path: &str| {
        path.replace("{tenant_id}", &ACME.to_string())
            .replace("{project_id}", &ACME_HANDBOOK.to_string())
            .replace("{document_id}", &doc.to_string())
            .replace("{query_id}", &doc.to_string())
            .replace("{response_id}", &doc.to_string())
            .replace("{user_id}", &BOB.to_string())
    };
    let with_body: Vec<(Method, String)> = ROUTES
        .iter()
        .filter(|(method, ..)| matches!(*method, "POST" | "PATCH" | "PUT"))
        .map(|(method, path, ..)| (method.parse().unwrap(), concrete(path)))
        .collect();
    let lists: Vec<String> = ROUTES
        .iter()
        .filter(|(method, path, ..)| *method == "GET" && path.starts_with("/t/"))
        .map(|(_, path, ..)| concrete(path))
        .collect();
    let send = |method: Method, path: String, body: Option<String>| -> (StatusCode, Duration) {
        runtime.block_on(async {
            let started = Instant::now();
            let mut request = service
                .client
                .request(method, format!("{}{path}", service.base))
                .bearer_auth(&token);
            if let Some(body) = body {
                request = request
                    .header("content-type", "application/json")
                    .body(body);
            }
            let status = request.send().await.unwrap().status();
            (status, started.elapsed())
        })
    };
    for body in corpus("bodies.txt") {
        for (method, path) in &with_body {
            let (status, took) = send(method.clone(), path.clone(), Some(body.clone()));
            assert!(
                status.as_u16() < 500,
                "{status} for {method} {path} with {}",
                &body[..body.len().min(80)]
            );
            assert!(took < Duration::from_secs(5), "{method} {path}: {took:?}");
        }
    }
    let json = any::<i64>()
        .prop_map(serde_json::Value::from)
        .boxed()
        .prop_recursive(4, 64, 8, |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..8).prop_map(serde_json::Value::from),
                proptest::collection::btree_map(
                    prop_oneof![
                        Just("title".to_owned()),
                        Just("content_hash".to_owned()),
                        Just("embedding".to_owned()),
                        Just("k".to_owned()),
                        Just("chunks".to_owned()),
                        Just("role".to_owned()),
                        Just("user_id".to_owned()),
                        ".{0,8}",
                    ],
                    inner,
                    0..6
                )
                .prop_map(|map| serde_json::Value::Object(map.into_iter().collect())),
                ".{0,40}".prop_map(serde_json::Value::from),
                any::<f64>().prop_map(serde_json::Value::from),
            ]
        });
    let mut runner = TestRunner::new(cases(64));
    runner
        .run(&(json, 0..with_body.len()), |(value, route)| {
            let (method, path) = with_body[route].clone();
            let (status, took) = send(method, path, Some(value.to_string()));
            prop_assert!(status.as_u16() < 500, "{} for {}", status, value);
            prop_assert!(took < Duration::from_secs(5));
            Ok(())
        })
        .unwrap();
    let mut runner = TestRunner::new(cases(64));
    runner
        .run(
            &("[a-z_=&%0-9.-]{0,60}", 0..lists.len()),
            |(query, route)| {
                let path = format!("{}?{query}", lists[route]);
                let (status, took) = send(Method::GET, path.clone(), None);
                prop_assert!(status.as_u16() < 500, "{} for {}", status, path);
                prop_assert!(took < Duration::from_secs(5));
                Ok(())
            },
        )
        .unwrap();
    drop(service);
}
