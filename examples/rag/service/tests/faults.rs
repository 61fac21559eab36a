//! Faults, for real (docs/reliability.md): the service behind PgBouncer in transaction pooling
//! (`scripts/pgbouncer-up`), and each transient fault answered 503 with `Retry-After` and a
//! distinct code: a backend terminated mid-request (57P01 / connection lost), the pool's
//! acquire timeout, a statement timeout, a deadlock (40P01) and a serialization failure
//! (40001). The fault-and-load harness (`fault_harness_short`) is in this binary too; every
//! test holds `SERIAL`, because the harness restarts PgBouncer and PostgreSQL.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;
mod harness;

use std::time::{Duration, Instant};

use common::*;
use rag_service::demo::ids::*;
use reqwest::StatusCode;
use serde_json::{json, Value};
use tenancy_runtime::pool::{connect_with, PoolConfig, Pooler};
use tenancy_runtime::{Error, TenancyConfig};
use tenancy_tests::{PgBouncer, TestDb};
use uuid::Uuid;

/// One test at a time: they load the 2 cores and the harness restarts servers.
pub static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// `db`'s app-role URL through the bouncer on `port`.
fn through_bouncer(db: &TestDb, port: u16) -> String {
    let mut url = url::Url::parse(db.app_url()).unwrap();
    url.set_host(Some("127.0.0.1")).unwrap();
    url.set_port(Some(port)).unwrap();
    url.to_string()
}

/// Requests of every kind the demo users may make, `rounds` times by each of `clients`
/// concurrent clients; returns the unexpected answers (status, route, body).
async fn mixed_traffic(
    service: &Service,
    clients: usize,
    rounds: usize,
) -> (usize, Vec<(StatusCode, String, Value)>) {
    let mut tasks = Vec::new();
    for client in 0..clients {
        let base = service.base.clone();
        let http = service.client.clone();
        let alice = service.token(ALICE);
        let carol = service.token(CAROL);
        tasks.push(tokio::spawn(async move {
            let mut failures = Vec::new();
            let mut sent = 0;
            for round in 0..rounds {
                let (token, prefix) = if (client + round) % 2 == 0 {
                    (&alice, acme(ACME_HANDBOOK))
                } else {
                    (&carol, globex(GLOBEX_RESEARCH))
                };
                let hash = format!("pooler-{client}-{round}-{}", Uuid::new_v4());
                let mut calls: Vec<(reqwest::Method, String, Option<Value>, StatusCode)> = vec![
                    (reqwest::Method::GET, format!("{prefix}/documents?limit=5"), None, StatusCode::OK),
                    (
                        reqwest::Method::POST,
                        format!("{prefix}/documents"),
                        Some(json!({"title": "pooled", "content_hash": hash})),
                        StatusCode::CREATED,
                    ),
                    (reqwest::Method::GET, format!("{prefix}/queries"), None, StatusCode::OK),
                    (
                        reqwest::Method::POST,
                        format!("{prefix}/search"),
                        Some(json!({"embedding": axis(round), "k": 3})),
                        StatusCode::OK,
                    ),
                    (reqwest::Method::GET, format!("{prefix}/members"), None, StatusCode::OK),
                ];
                for (method, path, body, expected) in calls.drain(..) {
                    let mut request = http
                        .request(method.clone(), format!("{base}{path}"))
                        .bearer_auth(token);
                    if let Some(body) = &body {
                        request = request.json(body);
                    }
                    sent += 1;
                    let response = request.send().await.unwrap();
                    let status = response.status();
                    let body: Value = response.json().await.unwrap_or(Value::Null);
                    if status != expected {
                        failures.push((status, format!("{method} {path}"), body.clone()));
                        continue;
                    }
                    // A new document gets chunks: the whole ingest in one request.
                    if status == StatusCode::CREATED {
                        let id = body["id"].as_str().unwrap();
                        let chunks: Vec<Value> = (0..4)
                            .map(|i| json!({"ordinal": i, "content": "c", "token_count": 1, "embedding": axis(i)}))
                            .collect();
                        sent += 1;
                        let response = http
                            .post(format!("{base}{prefix}/documents/{id}/chunks"))
                            .bearer_auth(token)
                            .json(&json!({ "chunks": chunks }))
                            .send()
                            .await
                            .unwrap();
                        let status = response.status();
                        if status != StatusCode::CREATED {
                            let body = response.json().await.unwrap_or(Value::Null);
                            failures.push((status, "POST chunks".into(), body));
                        }
                    }
                }
            }
            (sent, failures)
        }));
    }
    let mut sent = 0;
    let mut failures = Vec::new();
    for task in tasks {
        let (n, f) = task.await.unwrap();
        sent += n;
        failures.extend(f);
    }
    (sent, failures)
}

/// The shipped service behind PgBouncer 1.18 in transaction pooling (2 server connections for
/// the service's 6 client connections): with `tenancy_pooler=transaction` in the URL every
/// request of 6 concurrent clients succeeds; the same service without it (named prepared
/// statements) fails many.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn service_behind_pgbouncer_transaction_pooling_answers_every_request() {
    let _serial = SERIAL.lock().await;
    let db = TestDb::fresh().await;
    rag_service::demo::seed(db.admin_pool()).await.unwrap();
    let bouncer = PgBouncer::start(db.url());
    let url = format!(
        "{}?tenancy_pooler=transaction",
        through_bouncer(&db, bouncer.port)
    );
    let (pool, pooler) = connect_with(
        &url,
        &PoolConfig {
            max_connections: 6,
            ..PoolConfig::default()
        },
    )
    .unwrap();
    assert_eq!(pooler, Pooler::Transaction);
    let service = Service::start_opts(StartOptions {
        app_pool: Some(pool.clone()),
        db: Some(db),
        ..StartOptions::default()
    })
    .await;
    let started = Instant::now();
    let (sent, failures) = mixed_traffic(&service, 6, 25).await;
    println!(
        "through PgBouncer (transaction pooling, statement cache off): {sent} requests in {:.1} s, {} failed",
        started.elapsed().as_secs_f64(),
        failures.len()
    );
    assert!(sent >= 6 * 25 * 6, "{sent}");
    assert!(
        failures.is_empty(),
        "{} failed: {:?}",
        failures.len(),
        &failures[..failures.len().min(5)]
    );
    // Really multiplexed: fewer app-role server backends than client connections.
    let backends: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND usename = 'tenancy_app'",
    )
    .fetch_one(service.db.admin_pool())
    .await
    .unwrap();
    assert!(
        pool.size() > 2 && backends <= 2,
        "pool {} backends {backends}",
        pool.size()
    );
    drop(service);

    // The control: the same service with sqlx's default statement cache through the bouncer.
    let db = TestDb::fresh().await;
    rag_service::demo::seed(db.admin_pool()).await.unwrap();
    let naive = sqlx::postgres::PgPoolOptions::new()
        .max_connections(6)
        .connect_lazy(&through_bouncer(&db, bouncer.port))
        .unwrap();
    let service = Service::start_opts(StartOptions {
        app_pool: Some(naive),
        db: Some(db),
        tenancy_config: TenancyConfig {
            named_statements: false,
            ..tenancy_generated::config()
        },
        ..StartOptions::default()
    })
    .await;
    let (sent, failures) = mixed_traffic(&service, 6, 5).await;
    println!(
        "through PgBouncer with named statements: {} of {sent} requests failed",
        failures.len()
    );
    assert!(
        !failures.is_empty(),
        "named statements did not fail: the control proves nothing"
    );
    drop(service);
    drop(bouncer);
}

/// The backend of the request that waits for a lock `admin` holds (the lock stands in for
/// any slow moment of a request).
async fn waiting_backend(db: &TestDb) -> i32 {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let pid: Option<i32> = sqlx::query_scalar(
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database() \
             AND usename = 'tenancy_app' AND wait_event_type = 'Lock' LIMIT 1",
        )
        .fetch_optional(db.admin_pool())
        .await
        .unwrap();
        if let Some(pid) = pid {
            return pid;
        }
        assert!(
            Instant::now() < deadline,
            "no request is waiting for the lock"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn assert_503(status: StatusCode, headers: &reqwest::header::HeaderMap, body: &Value, code: &str) {
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert_eq!(body["error"]["code"], code, "{body}");
    assert_eq!(
        headers.get("retry-after").and_then(|v| v.to_str().ok()),
        Some("1"),
        "{headers:?}"
    );
}

async fn send(
    service: &Service,
    method: reqwest::Method,
    path: &str,
    body: Option<Value>,
) -> (StatusCode, reqwest::header::HeaderMap, Value) {
    let mut request = service
        .client
        .request(method, format!("{}{path}", service.base))
        .bearer_auth(service.token(ALICE));
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.unwrap();
    let status = response.status();
    let headers = response.headers().clone();
    (
        status,
        headers,
        response.json().await.unwrap_or(Value::Null),
    )
}

/// A write whose backend is terminated mid-request (pg_terminate_backend: 57P01, then a lost
/// connection) answers 503 `unavailable` with `Retry-After` and leaves nothing behind; a read
/// in the same situation is retried once by the service and answers 200; the pool replaces
/// the dead connection by itself.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backend_killed_mid_request_is_503_for_writes_and_retried_for_reads() {
    let _serial = SERIAL.lock().await;
    let service = Service::start_opts(StartOptions::default()).await;
    let docs = format!("{}/documents", acme(ACME_HANDBOOK));
    for write in [true, false] {
        let mut lock = service.db.admin_pool().begin().await.unwrap();
        sqlx::query("LOCK TABLE documents IN ACCESS EXCLUSIVE MODE")
            .execute(&mut *lock)
            .await
            .unwrap();
        let hash = format!("killed-{}", Uuid::new_v4());
        let request = {
            let (method, body) = if write {
                (
                    reqwest::Method::POST,
                    Some(json!({"title": "t", "content_hash": hash})),
                )
            } else {
                (reqwest::Method::GET, None)
            };
            let path = docs.clone();
            let service_ref = &service;
            async move { send(service_ref, method, &path, body).await }
        };
        let killer = async {
            let pid = waiting_backend(&service.db).await;
            let killed: bool = sqlx::query_scalar("SELECT pg_terminate_backend($1)")
                .bind(pid)
                .fetch_one(service.db.admin_pool())
                .await
                .unwrap();
            assert!(killed);
            // Let the retry (reads) through.
            tokio::time::sleep(Duration::from_millis(100)).await;
            lock.rollback().await.unwrap();
        };
        let ((status, headers, body), ()) = tokio::join!(request, killer);
        if write {
            assert_503(status, &headers, &body, "unavailable");
            let left: i64 =
                sqlx::query_scalar("SELECT count(*) FROM documents WHERE content_hash = $1")
                    .bind(&hash)
                    .fetch_one(service.db.admin_pool())
                    .await
                    .unwrap();
            assert_eq!(left, 0, "the failed write left a row");
        } else {
            assert_eq!(status, StatusCode::OK, "the read was not retried: {body}");
        }
    }
    // The service recovered by itself.
    let (status, _, _) = send(&service, reqwest::Method::GET, &docs, None).await;
    assert_eq!(status, StatusCode::OK);
    let metrics = service.metrics().await;
    assert_eq!(
        sample(
            &metrics,
            "tenancy_http_errors_total{code=\"unavailable\",status=\"503\"}"
        ),
        Some(1.0),
        "{metrics}"
    );
}

/// Pool acquire timeout (pool of 1, its connection held elsewhere) and statement timeout
/// (a lock held past it): 503 `unavailable` and 503 `timeout`, both with `Retry-After`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pool_and_statement_timeouts_are_503() {
    let _serial = SERIAL.lock().await;
    let db = TestDb::fresh().await;
    rag_service::demo::seed(db.admin_pool()).await.unwrap();
    let (pool, _) = connect_with(
        db.app_url(),
        &PoolConfig {
            max_connections: 1,
            acquire_timeout: Duration::from_millis(300),
            ..PoolConfig::default()
        },
    )
    .unwrap();
    let service = Service::start_opts(StartOptions {
        app_pool: Some(pool.clone()),
        db: Some(db),
        tenancy_config: TenancyConfig {
            statement_timeout: Some(Duration::from_millis(300)),
            ..tenancy_generated::config()
        },
        ..StartOptions::default()
    })
    .await;
    let docs = format!("{}/documents", acme(ACME_HANDBOOK));
    let (status, _, _) = send(&service, reqwest::Method::GET, &docs, None).await;
    assert_eq!(status, StatusCode::OK);

    let held = pool.acquire().await.unwrap();
    let started = Instant::now();
    let (status, headers, body) = send(&service, reqwest::Method::GET, &docs, None).await;
    assert_503(status, &headers, &body, "unavailable");
    assert!(started.elapsed() < Duration::from_secs(5));
    drop(held);

    let mut lock = service.db.admin_pool().begin().await.unwrap();
    sqlx::query("LOCK TABLE documents IN ACCESS EXCLUSIVE MODE")
        .execute(&mut *lock)
        .await
        .unwrap();
    let (status, headers, body) = send(
        &service,
        reqwest::Method::POST,
        &docs,
        Some(json!({"title": "t", "content_hash": "statement-timeout"})),
    )
    .await;
    assert_503(status, &headers, &body, "timeout");
    lock.rollback().await.unwrap();
    let (status, _, body) = send(&service, reqwest::Method::GET, &docs, None).await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

/// A real deadlock and a real serialization failure map to `Error::Unavailable` (HTTP 503).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deadlocks_and_serialization_failures_are_transient() {
    let _serial = SERIAL.lock().await;
    let db = TestDb::fresh().await;
    rag_service::demo::seed(db.admin_pool()).await.unwrap();
    let admin = db.admin_pool();
    sqlx::query("CREATE TABLE fault_rows (id int PRIMARY KEY, v int)")
        .execute(admin)
        .await
        .unwrap();
    sqlx::query("INSERT INTO fault_rows VALUES (1, 0), (2, 0)")
        .execute(admin)
        .await
        .unwrap();

    // Deadlock: each transaction updates the row the other holds.
    let mut a = admin.begin().await.unwrap();
    let mut b = admin.begin().await.unwrap();
    sqlx::query("UPDATE fault_rows SET v = 1 WHERE id = 1")
        .execute(&mut *a)
        .await
        .unwrap();
    sqlx::query("UPDATE fault_rows SET v = 1 WHERE id = 2")
        .execute(&mut *b)
        .await
        .unwrap();
    let (ra, rb) = tokio::join!(
        sqlx::query("UPDATE fault_rows SET v = 2 WHERE id = 2").execute(&mut *a),
        sqlx::query("UPDATE fault_rows SET v = 2 WHERE id = 1").execute(&mut *b),
    );
    let error = ra.err().or(rb.err()).expect("no deadlock detected");
    let error = Error::from(error);
    assert!(
        matches!(
            error,
            Error::Unavailable {
                kind: "serialization",
                ..
            }
        ),
        "{error:?}"
    );
    assert_eq!(error.http_status(), 503);
    drop((a, b));

    // Serialization failure: write skew between two SERIALIZABLE transactions.
    let mut a = admin.begin().await.unwrap();
    let mut b = admin.begin().await.unwrap();
    for tx in [&mut a, &mut b] {
        sqlx::query("SET TRANSACTION ISOLATION LEVEL SERIALIZABLE")
            .execute(&mut **tx)
            .await
            .unwrap();
        let _: i64 = sqlx::query_scalar("SELECT sum(v)::int8 FROM fault_rows")
            .fetch_one(&mut **tx)
            .await
            .unwrap();
    }
    sqlx::query("UPDATE fault_rows SET v = v + 1 WHERE id = 1")
        .execute(&mut *a)
        .await
        .unwrap();
    sqlx::query("UPDATE fault_rows SET v = v + 1 WHERE id = 2")
        .execute(&mut *b)
        .await
        .unwrap();
    let first = a.commit().await;
    let second = b.commit().await;
    let error = first
        .err()
        .or(second.err())
        .expect("no serialization failure");
    let error = Error::from(error);
    assert!(
        matches!(
            error,
            Error::Unavailable {
                kind: "serialization",
                ..
            }
        ),
        "{error:?}"
    );
    let api = tenancy_runtime::http::ApiError::from(error);
    assert_eq!(api.code(), "unavailable");
    assert_eq!(api.retry_after(), Some(1));
}

/// The fault-and-load harness in its short CI mode (about 45 s; every fault kind at least
/// once, most twice). `RAG_FAULTS_SECS=600` makes it the soak of BENCHMARKS.md; `RAG_FAULTS_TENANTS` and
/// `RAG_FAULTS_CLIENTS` set the load (default 24 tenants, 4 clients).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fault_harness_short() {
    let _serial = SERIAL.lock().await;
    let number = |name: &str, default: u64| {
        std::env::var(name)
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(default)
    };
    let config = harness::HarnessConfig {
        duration: Duration::from_secs(number("RAG_FAULTS_SECS", 45)),
        tenants: number("RAG_FAULTS_TENANTS", 24) as usize,
        clients: number("RAG_FAULTS_CLIENTS", 4) as usize,
        fault_every: Duration::from_millis(number("RAG_FAULTS_EVERY_MS", 3000)),
    };
    let report = harness::run(config).await;
    report.print();
    assert_eq!(
        report.wrong_tenant_rows, 0,
        "rows of another tenant were answered"
    );
    assert_eq!(report.lost_writes, 0, "acknowledged writes were lost");
    assert_eq!(report.partial_ingests, 0, "an ingest was partly written");
    assert_eq!(
        report.phantom_documents, 0,
        "a document nobody wrote exists"
    );
    assert_eq!(
        report.leaked_contexts, 0,
        "a pooled connection kept a context"
    );
    assert_eq!(
        report.unexpected_count, 0,
        "unexpected answers: {:?}",
        report.unexpected
    );
    assert!(
        report.rows_checked > 1000,
        "too little checked: {}",
        report.rows_checked
    );
    assert!(report.acknowledged_ingests > 10);
    for kind in [
        "terminate",
        "proxy_cut",
        "proxy_stall",
        "statement_timeout",
        "pgbouncer_restart",
        "postgres_restart",
    ] {
        let times = report.recovery.get(kind).cloned().unwrap_or_default();
        assert!(!times.is_empty(), "fault {kind} was never injected");
        for took in times {
            assert!(took < 30.0, "{kind}: no recovery within 30 s ({took})");
        }
    }
    assert!(
        report.metrics_503 >= (report.unavailable + report.timeouts) as f64,
        "metrics counted {} 503s, clients saw {}",
        report.metrics_503,
        report.unavailable + report.timeouts
    );
}
