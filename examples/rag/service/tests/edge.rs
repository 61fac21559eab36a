//! The HTTP edge (docs/reliability.md, docs/service.md): slow clients over raw TCP sockets
//! (header and body read timeouts), the connection limit, the request timeout, `/metrics`
//! access and labels, JWT time claims, limits (body, page size, `k`) and embeddings without a
//! cosine distance, all over real HTTP against real PostgreSQL.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::time::{Duration, Instant};

use common::*;
use jsonwebtoken::{encode, Algorithm, EncodingKey, Header};
use rag_service::demo::ids::*;
use rag_service::{Limits, MetricsAccess, ServeOptions};
use reqwest::StatusCode;
use serde_json::{json, Value};
use tenancy_runtime::http::{Claims, JwtVerifier};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Reads until the server closes the connection (or `limit` passes); returns what arrived.
async fn read_until_closed(stream: &mut TcpStream, limit: Duration) -> Option<String> {
    let mut buffer = Vec::new();
    match tokio::time::timeout(limit, stream.read_to_end(&mut buffer)).await {
        Ok(_) => Some(String::from_utf8_lossy(&buffer).into_owned()),
        Err(_) => None,
    }
}

#[tokio::test]
async fn slow_clients_are_cut_off_by_header_and_body_read_timeouts() {
    let service = Service::start_opts(StartOptions {
        serve: ServeOptions {
            header_read_timeout: Duration::from_millis(500),
            ..ServeOptions::default()
        },
        limits: Limits {
            body_read_timeout: Duration::from_millis(500),
            ..Limits::default()
        },
        ..StartOptions::default()
    })
    .await;
    // Headers that never end (slowloris): the connection is closed after the timeout.
    let mut slow = TcpStream::connect(service.address()).await.unwrap();
    slow.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: ")
        .await
        .unwrap();
    let started = Instant::now();
    let answer = read_until_closed(&mut slow, Duration::from_secs(5)).await;
    let waited = started.elapsed();
    assert!(answer.is_some(), "a half-sent request kept its connection");
    assert!(
        waited >= Duration::from_millis(400) && waited < Duration::from_secs(3),
        "{waited:?}"
    );

    // A body that never ends: 408 body_timeout, then the connection can go.
    let token = service.token(ALICE);
    let mut slow = TcpStream::connect(service.address()).await.unwrap();
    let head = format!(
        "POST {}/documents HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\n\
         Content-Type: application/json\r\nContent-Length: 100\r\nConnection: close\r\n\r\n{{\"title\"",
        acme(ACME_HANDBOOK)
    );
    slow.write_all(head.as_bytes()).await.unwrap();
    let started = Instant::now();
    let answer = read_until_closed(&mut slow, Duration::from_secs(5))
        .await
        .expect("no answer to a stalled body");
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains("body_timeout"), "{answer}");
    assert!(started.elapsed() < Duration::from_secs(3));

    // Fast clients are unaffected.
    let (status, _) = service
        .get(ALICE, &format!("{}/documents", acme(ACME_HANDBOOK)))
        .await;
    assert_eq!(status, StatusCode::OK);
    let metrics = service.metrics().await;
    assert_eq!(
        sample(
            &metrics,
            "tenancy_http_errors_total{code=\"body_timeout\",status=\"408\"}"
        ),
        Some(1.0),
        "{metrics}"
    );
}

/// Without a valid token the body is never read: a client announcing 1 MB and sending none of
/// it gets 401 at once, not after the body read timeout.
#[tokio::test]
async fn bodies_of_unauthenticated_requests_are_not_buffered() {
    let service = Service::start_opts(StartOptions {
        limits: Limits {
            body_read_timeout: Duration::from_secs(20),
            ..Limits::default()
        },
        body_limit: 2 << 20,
        ..StartOptions::default()
    })
    .await;
    for auth in ["", "Authorization: Bearer forged.token.here\r\n"] {
        let mut stream = TcpStream::connect(service.address()).await.unwrap();
        let head = format!(
            "POST {}/documents HTTP/1.1\r\nHost: x\r\n{auth}Content-Type: application/json\r\n\
             Content-Length: 1000000\r\nConnection: close\r\n\r\n",
            acme(ACME_HANDBOOK)
        );
        stream.write_all(head.as_bytes()).await.unwrap();
        let started = Instant::now();
        let mut buffer = vec![0u8; 512];
        let n = tokio::time::timeout(Duration::from_secs(5), stream.read(&mut buffer))
            .await
            .expect("no answer without the body")
            .unwrap();
        let answer = String::from_utf8_lossy(&buffer[..n]);
        assert!(answer.starts_with("HTTP/1.1 401"), "{answer}");
        assert!(started.elapsed() < Duration::from_secs(2));
    }
}

#[tokio::test]
async fn connections_over_the_limit_get_503_and_the_limit_frees_up() {
    let service = Service::start_opts(StartOptions {
        serve: ServeOptions {
            max_connections: 2,
            header_read_timeout: Duration::from_secs(20),
            ..ServeOptions::default()
        },
        ..StartOptions::default()
    })
    .await;
    let idle_a = TcpStream::connect(service.address()).await.unwrap();
    let idle_b = TcpStream::connect(service.address()).await.unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    let response = reqwest::Client::new()
        .get(format!("{}/healthz", service.base))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(response.headers()["retry-after"], "1");
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["code"], "too_many_connections");
    drop((idle_a, idle_b));
    tokio::time::sleep(Duration::from_millis(200)).await;
    let response = reqwest::Client::new()
        .get(format!("{}/healthz", service.base))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
}

#[tokio::test]
async fn a_request_past_its_time_limit_is_503_timeout_and_rolled_back() {
    let service = Service::start_opts(StartOptions {
        limits: Limits {
            request_timeout: Some(Duration::from_millis(400)),
            ..Limits::default()
        },
        ..StartOptions::default()
    })
    .await;
    let mut lock = service.db.admin_pool().begin().await.unwrap();
    sqlx::query("LOCK TABLE documents IN ACCESS EXCLUSIVE MODE")
        .execute(&mut *lock)
        .await
        .unwrap();
    let started = Instant::now();
    let response = service
        .client
        .post(format!("{}{}/documents", service.base, acme(ACME_HANDBOOK)))
        .bearer_auth(service.token(ALICE))
        .json(&json!({"title": "late", "content_hash": "late-1"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(response.headers()["retry-after"], "1");
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["code"], "timeout");
    assert!(started.elapsed() < Duration::from_secs(3));
    lock.rollback().await.unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    let left: i64 =
        sqlx::query_scalar("SELECT count(*) FROM documents WHERE content_hash = 'late-1'")
            .fetch_one(service.db.admin_pool())
            .await
            .unwrap();
    assert_eq!(left, 0, "the timed-out write was committed");
    // Its connection went back clean: the next requests see only their own tenant.
    for _ in 0..5 {
        let (status, body) = service
            .get(CAROL, &format!("{}/documents", globex(GLOBEX_RESEARCH)))
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert!(body["items"]
            .as_array()
            .unwrap()
            .iter()
            .all(|d| d["project_id"] == GLOBEX_RESEARCH.to_string()));
    }
}

#[tokio::test]
async fn metrics_access_is_off_token_or_open_and_labels_hide_tenant_ids() {
    let service = Service::start_opts(StartOptions {
        metrics_access: MetricsAccess::Token("scrape-secret".into()),
        ..StartOptions::default()
    })
    .await;
    let (status, _) = service
        .get(ALICE, &format!("{}/documents", acme(ACME_HANDBOOK)))
        .await;
    assert_eq!(status, StatusCode::OK);
    let url = format!("{}/metrics", service.base);
    let refused = service.client.get(&url).send().await.unwrap();
    assert_eq!(refused.status(), StatusCode::UNAUTHORIZED);
    let refused = service
        .client
        .get(&url)
        .bearer_auth("scrape-secreT")
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), StatusCode::UNAUTHORIZED);
    let text = service
        .client
        .get(&url)
        .bearer_auth("scrape-secret")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        text.contains(&format!("tenant=\"{}\"", tenant_label(ACME))),
        "{text}"
    );
    assert!(!text.contains(&ACME.to_string()), "{text}");

    let off = Service::start_opts(StartOptions {
        metrics_access: MetricsAccess::Off,
        ..StartOptions::default()
    })
    .await;
    let response = off
        .client
        .get(format!("{}/metrics", off.base))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
}

fn signed(claims: &Claims) -> String {
    encode(
        &Header::new(Algorithm::HS256),
        claims,
        &EncodingKey::from_secret(SECRET),
    )
    .unwrap()
}

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

#[tokio::test]
async fn jwt_time_claims_are_enforced_over_http() {
    let service = Service::start_opts(StartOptions {
        verifier: Some(
            JwtVerifier::hs256(SECRET, ISSUER, AUDIENCE)
                .with_leeway(30)
                .with_max_lifetime(3600),
        ),
        ..StartOptions::default()
    })
    .await;
    let base = Claims {
        sub: ALICE.to_string(),
        iss: ISSUER.into(),
        aud: AUDIENCE.into(),
        exp: now() + 600,
        iat: Some(now()),
        nbf: None,
    };
    let url = format!("{}{}/documents", service.base, acme(ACME_HANDBOOK));
    let cases = [
        (base.clone(), StatusCode::OK, None),
        (
            Claims {
                nbf: Some(now() + 86_400),
                ..base.clone()
            },
            StatusCode::UNAUTHORIZED,
            Some("token_not_yet_valid"),
        ),
        (
            Claims {
                iat: Some(now() + 86_400),
                ..base.clone()
            },
            StatusCode::UNAUTHORIZED,
            Some("token_issued_in_future"),
        ),
        (
            Claims {
                exp: u64::MAX,
                ..base.clone()
            },
            StatusCode::UNAUTHORIZED,
            Some("token_lifetime_too_long"),
        ),
    ];
    for (claims, status, reason) in cases {
        let response = service
            .client
            .get(&url)
            .bearer_auth(signed(&claims))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), status, "{claims:?}");
        if let Some(reason) = reason {
            let body: Value = response.json().await.unwrap();
            assert!(
                body["error"]["message"].as_str().unwrap().contains(reason),
                "{body}"
            );
        }
    }
    let metrics = service.metrics().await;
    for reason in [
        "token_not_yet_valid",
        "token_issued_in_future",
        "token_lifetime_too_long",
    ] {
        assert_eq!(
            sample(
                &metrics,
                &format!("tenancy_http_refused_total{{reason=\"{reason}\"}}")
            ),
            Some(1.0),
            "{reason}"
        );
    }
}

/// The service binary's own defaults: 30 s leeway, 24 h maximum lifetime.
#[test]
fn the_service_configuration_enforces_a_maximum_lifetime_by_default() {
    let config = rag_service::Config::from_lookup(|name| match name {
        "RAG_DATABASE_URL" => Some("postgres://app@h/db".into()),
        "RAG_JWT_SECRET" => Some(String::from_utf8(SECRET.to_vec()).unwrap()),
        "RAG_JWT_ISSUER" => Some(ISSUER.into()),
        "RAG_JWT_AUDIENCE" => Some(AUDIENCE.into()),
        _ => None,
    })
    .unwrap();
    let verifier = config.verifier().unwrap();
    let claims = Claims {
        sub: ALICE.to_string(),
        iss: ISSUER.into(),
        aud: AUDIENCE.into(),
        exp: u64::MAX,
        iat: None,
        nbf: None,
    };
    assert!(verifier.verify(&signed(&claims)).is_err());
    let day = Claims {
        exp: now() + 86_400,
        ..claims.clone()
    };
    assert!(verifier.verify(&signed(&day)).is_ok());
    let skewed = Claims {
        exp: now() - 10,
        ..claims
    };
    assert!(verifier.verify(&signed(&skewed)).is_ok());
}

#[tokio::test]
async fn limits_and_embeddings_without_a_distance_are_refused_with_json_errors() {
    let service = Service::start_opts(StartOptions {
        body_limit: 32 * 1024,
        limits: Limits {
            max_page_size: 50,
            max_k: 5,
            ..Limits::default()
        },
        ..StartOptions::default()
    })
    .await;
    let base = acme(ACME_HANDBOOK);
    let (status, body) = service
        .get(ALICE, &format!("{base}/documents?limit=51"))
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert!(body["error"]["message"]
        .as_str()
        .unwrap()
        .contains("1..=50"));
    let (status, _) = service
        .get(ALICE, &format!("{base}/documents?limit=50"))
        .await;
    assert_eq!(status, StatusCode::OK);
    let (status, body) = service
        .post(
            ALICE,
            &format!("{base}/search"),
            json!({"embedding": axis(1), "k": 6}),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    let (status, body) = service
        .post(
            ALICE,
            &format!("{base}/documents"),
            json!({"title": "x".repeat(40_000), "content_hash": "big"}),
        )
        .await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{body}");
    assert_eq!(body["error"]["code"], "payload_too_large");

    let (status, document) = service
        .post(
            ALICE,
            &format!("{base}/documents"),
            json!({"title": "vectors", "content_hash": "vectors-1"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let chunks = format!(
        "{base}/documents/{}/chunks",
        document["id"].as_str().unwrap()
    );
    let zero = vec![0.0f32; 384];
    let tiny = vec![1e-30f32; 384];
    let huge = vec![1e30f32; 384];
    for (name, embedding) in [("zero", &zero), ("tiny", &tiny), ("huge", &huge)] {
        let (status, body) = service
            .post(
                ALICE,
                &chunks,
                json!({"chunks": [
                    {"ordinal": 0, "content": "fine", "token_count": 1, "embedding": axis(0)},
                    {"ordinal": 1, "content": name, "token_count": 1, "embedding": embedding},
                ]}),
            )
            .await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{name}: {body}");
        assert!(
            body["error"]["message"]
                .as_str()
                .unwrap()
                .starts_with("chunks[1].embedding"),
            "{body}"
        );
        let (status, _) = service
            .post(
                ALICE,
                &format!("{base}/search"),
                json!({"embedding": embedding}),
            )
            .await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{name}");
    }
    // Nothing of the refused batches was written.
    let stored: i64 = sqlx::query_scalar("SELECT count(*) FROM chunks WHERE document_id = $1")
        .bind(
            document["id"]
                .as_str()
                .unwrap()
                .parse::<uuid::Uuid>()
                .unwrap(),
        )
        .fetch_one(service.db.admin_pool())
        .await
        .unwrap();
    assert_eq!(stored, 0);
}
