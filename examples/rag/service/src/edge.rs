//! The HTTP edge: what protects the service and the database from slow, greedy or unlucky
//! clients (docs/reliability.md).
//!
//! * [`serve_with`]: an HTTP/1.1 accept loop with a header read timeout (a client that has not
//!   sent its request headers in time is disconnected) and a connection limit (one connection
//!   more is answered `503` and closed), and graceful shutdown.
//! * [`limit_and_retry`] (a middleware of [`crate::router`]): for a request with a valid
//!   bearer token (others are answered 401 without their body being read), the body must
//!   arrive within
//!   [`Limits::body_read_timeout`] (else 408 `body_timeout`) and fit the body limit (else 413
//!   `payload_too_large`); the whole request must finish within [`Limits::request_timeout`]
//!   (else 503 `timeout`, its transaction rolled back); an idempotent request (GET, HEAD, the
//!   search POSTs) answered 503 `unavailable` (a transient database fault) is run once more.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::Router;
use http_body_util::BodyExt;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tenancy_runtime::http::{ApiError, ErrorCode};
use tokio::io::AsyncWriteExt;
use tokio::sync::{watch, Semaphore};

use crate::AppState;

/// Request limits enforced by the router and the handlers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Largest `limit` of a list request (`RAG_MAX_PAGE_SIZE`, default 1000; more is 422).
    pub max_page_size: u32,
    /// Largest `k` of a search (`RAG_MAX_K`, default 100; more is 422).
    pub max_k: u32,
    /// Time allowed for receiving the body (`RAG_BODY_READ_TIMEOUT_MS`, default 10 s; then
    /// 408 `body_timeout`).
    pub body_read_timeout: Duration,
    /// Time allowed for the whole request once its body is in (`RAG_REQUEST_TIMEOUT_MS`,
    /// default 15 s; then 503 `timeout`). `None`: no limit.
    pub request_timeout: Option<Duration>,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_page_size: 1000,
            max_k: 100,
            body_read_timeout: Duration::from_secs(10),
            request_timeout: Some(Duration::from_secs(15)),
        }
    }
}

/// Settings of the accept loop.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServeOptions {
    /// A client must send its request headers within this (`RAG_HEADER_READ_TIMEOUT_MS`,
    /// default 10 s), or the connection is closed.
    pub header_read_timeout: Duration,
    /// Most open client connections (`RAG_MAX_HTTP_CONNECTIONS`, default 512); one more is
    /// answered `503` with `Retry-After: 1` and closed.
    pub max_connections: usize,
    /// After shutdown is asked for, in-flight requests get this long to finish (default 30 s).
    pub shutdown_grace: Duration,
}

impl Default for ServeOptions {
    fn default() -> Self {
        Self {
            header_read_timeout: Duration::from_secs(10),
            max_connections: 512,
            shutdown_grace: Duration::from_secs(30),
        }
    }
}

/// What a connection over the limit gets before it is closed.
fn over_capacity() -> Vec<u8> {
    let body =
        r#"{"error":{"code":"too_many_connections","message":"too many open connections; retry"}}"#;
    format!(
        "HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\nretry-after: 1\r\n\
         connection: close\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

/// Serves `router` on `listener` with the default [`ServeOptions`] until `shutdown` resolves,
/// then lets in-flight requests finish (graceful shutdown).
pub async fn serve(
    listener: tokio::net::TcpListener,
    router: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    serve_with(listener, router, shutdown, ServeOptions::default()).await
}

/// Serves `router` on `listener` as `options` say until `shutdown` resolves; then stops
/// accepting, asks every connection to finish its current request and waits for them (at
/// most [`ServeOptions::shutdown_grace`]).
pub async fn serve_with(
    listener: tokio::net::TcpListener,
    router: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
    options: ServeOptions,
) -> std::io::Result<()> {
    let limit = options.max_connections.max(1);
    let permits = Arc::new(Semaphore::new(limit));
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut shutdown = std::pin::pin!(shutdown);
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(options.header_read_timeout);
    let builder = Arc::new(builder);
    loop {
        let (stream, _peer) = tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    // Out of file descriptors and the like: wait a little, keep serving.
                    tracing::warn!(%error, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let Ok(permit) = Arc::clone(&permits).try_acquire_owned() else {
            tokio::spawn(async move {
                let mut stream = stream;
                let _ = tokio::time::timeout(Duration::from_secs(1), async {
                    let _ = stream.write_all(&over_capacity()).await;
                    let _ = stream.shutdown().await;
                })
                .await;
            });
            tracing::warn!(limit, "connection refused: too many open connections");
            continue;
        };
        let _ = stream.set_nodelay(true);
        let service = TowerToHyperService::new(router.clone());
        let builder = Arc::clone(&builder);
        let mut stop = stop_rx.clone();
        tokio::spawn(async move {
            let _permit = permit;
            let connection = builder.serve_connection(TokioIo::new(stream), service);
            let mut connection = std::pin::pin!(connection);
            tokio::select! {
                _ = connection.as_mut() => return,
                _ = stop.wait_for(|stop| *stop) => {}
            }
            connection.as_mut().graceful_shutdown();
            let _ = connection.await;
        });
    }
    drop(listener);
    let _ = stop_tx.send(true);
    // Every connection holds a permit: all of them back means every connection is closed.
    let all = u32::try_from(limit).unwrap_or(u32::MAX);
    if tokio::time::timeout(options.shutdown_grace, permits.acquire_many(all))
        .await
        .is_err()
    {
        tracing::warn!("shutdown grace period over with connections still open");
    }
    Ok(())
}

/// Whether a request may be run twice: it reads only.
fn idempotent(request: &axum::http::request::Parts) -> bool {
    request.method == Method::GET
        || request.method == Method::HEAD
        || (request.method == Method::POST && request.uri.path().ends_with("/search"))
}

/// The middleware of [`crate::router`] (see the module docs). Its state is the app state and
/// the body limit in bytes.
pub async fn limit_and_retry(
    State((state, body_limit)): State<(AppState, usize)>,
    request: Request,
    next: Next,
) -> Response {
    let limits = state.limits().clone();
    let (parts, body) = request.into_parts();
    // Only an authenticated request gets its body buffered: without a valid token the
    // handler answers 401 before it reads the body, so nobody can make the service hold
    // `body_limit` bytes per connection without a token.
    if parts.uri.path().starts_with("/t/") && !has_valid_token(&state, &parts) {
        return next.run(Request::from_parts(parts, body)).await;
    }
    let collected = tokio::time::timeout(
        limits.body_read_timeout,
        http_body_util::Limited::new(body, body_limit).collect(),
    )
    .await;
    let bytes = match collected {
        Err(_) => {
            return ApiError::new(
                StatusCode::REQUEST_TIMEOUT,
                "body_timeout",
                "the request body did not arrive in time",
            )
            .into_response()
        }
        Ok(Err(error)) if error.is::<http_body_util::LengthLimitError>() => {
            return ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "payload_too_large",
                "the body exceeds the size limit",
            )
            .into_response()
        }
        Ok(Err(_)) => {
            return ApiError::new(
                StatusCode::BAD_REQUEST,
                "bad_request",
                "the request body could not be read",
            )
            .into_response()
        }
        Ok(Ok(collected)) => collected.to_bytes(),
    };
    let retry = idempotent(&parts).then(|| (parts.clone(), bytes.clone()));
    let response = run_limited(&limits, next.clone(), parts, bytes).await;
    let transient = response.status() == StatusCode::SERVICE_UNAVAILABLE
        && response.extensions().get::<ErrorCode>() == Some(&ErrorCode("unavailable"));
    match retry {
        Some((parts, bytes)) if transient => {
            tracing::info!("idempotent request met a transient fault; running it once more");
            run_limited(&limits, next, parts, bytes).await
        }
        _ => response,
    }
}

/// Whether the request carries a bearer token the service's verifier accepts.
fn has_valid_token(state: &AppState, parts: &axum::http::request::Parts) -> bool {
    parts
        .headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .is_some_and(|(_, token)| state.http.verifier().verify(token.trim()).is_ok())
}

/// Runs the rest of the stack under the request timeout.
async fn run_limited(
    limits: &Limits,
    next: Next,
    parts: axum::http::request::Parts,
    bytes: axum::body::Bytes,
) -> Response {
    let request = Request::from_parts(parts, Body::from(bytes));
    match limits.request_timeout {
        None => next.run(request).await,
        Some(timeout) => match tokio::time::timeout(timeout, next.run(request)).await {
            Ok(response) => response,
            Err(_) => {
                tracing::warn!(
                    timeout_ms = u64::try_from(timeout.as_millis()).unwrap_or(u64::MAX),
                    "request timed out; its transaction is rolled back"
                );
                ApiError::timeout("the request ran past its time limit; retry later")
                    .into_response()
            }
        },
    }
}
