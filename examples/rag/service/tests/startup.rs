//! The startup check (contract 3, docs/service.md "The context key"): the service refuses to
//! start without a context key the database accepts, or against a database that does not speak
//! the runtime's context contract, with one sentence and a non-zero exit; with the right key it
//! starts and serves.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use common::{acme, AUDIENCE, ISSUER, SECRET};
use rag_service::config::DEV_JWT_SECRET;
use rag_service::demo::ids::{ACME_HANDBOOK, ALICE};
use rag_service::demo::{mint_token, seed};
use rag_service::AppState;
use reqwest::StatusCode;
use serde_json::Value;
use tenancy_runtime::http::JwtVerifier;
use tenancy_runtime::{ContextKey, Error, TenancyConfig};
use tenancy_tests::{TestDb, TEST_CONTEXT_KEY_HEX, TEST_CONTEXT_KEY_ID};

const BIN: &str = env!("CARGO_BIN_EXE_rag-service");

/// The generated configuration with `key` as the context key.
fn config_with(key: ContextKey) -> TenancyConfig {
    tenancy_generated::config().with_context_key(key)
}

/// Builds the service's state the way the binary and the other tests do, with `config`.
async fn state(db: &TestDb, config: TenancyConfig) -> anyhow::Result<AppState> {
    AppState::with_tenancy_config(
        db.app_pool().clone(),
        None,
        JwtVerifier::hs256(SECRET, ISSUER, AUDIENCE),
        10,
        config,
    )
    .await
}

/// The `Error::Misconfigured` sentence of a refused start; fails on any other error.
fn misconfigured(result: anyhow::Result<AppState>) -> String {
    let err = match result {
        Ok(_) => panic!("the service started"),
        Err(err) => err,
    };
    match err.downcast_ref::<Error>() {
        Some(Error::Misconfigured(sentence)) => {
            let text = format!("{err:#}");
            assert!(!text.contains('\n'), "not one line: {text:?}");
            sentence.clone()
        }
        _ => panic!("expected Error::Misconfigured, got {err:#}"),
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[tokio::test]
async fn state_is_refused_with_a_key_the_database_does_not_hold_and_built_with_the_right_one() {
    let db = TestDb::fresh().await;

    // An id the database does not know.
    let unknown = ContextKey::new("not-installed", vec![7; 32]).unwrap();
    let sentence = misconfigured(state(&db, config_with(unknown)).await);
    assert!(
        sentence.starts_with("the database refused this runtime's context key \"not-installed\""),
        "{sentence}"
    );
    assert!(sentence.contains("not an active key"), "{sentence}");

    // The installed id with another secret.
    let forged = ContextKey::new(TEST_CONTEXT_KEY_ID, vec![7; 32]).unwrap();
    let sentence = misconfigured(state(&db, config_with(forged)).await);
    assert!(
        sentence.starts_with(&format!(
            "the database refused this runtime's context key \"{TEST_CONTEXT_KEY_ID}\""
        )),
        "{sentence}"
    );
    assert!(
        !sentence.contains(&hex(&[7; 32])),
        "the secret is in the error: {sentence}"
    );

    // A retired key is refused as well, after it has worked.
    let secret: Vec<u8> = (0..32u8).map(|b| b.wrapping_mul(37)).collect();
    sqlx::query("SELECT tenancy.install_context_key('startup-retired', $1)")
        .bind(&secret)
        .execute(db.admin_pool())
        .await
        .unwrap();
    let retired = ContextKey::new("startup-retired", secret).unwrap();
    state(&db, config_with(retired.clone()))
        .await
        .expect("an installed key starts the service");
    sqlx::query("UPDATE tenancy.context_keys SET retired_at = now() WHERE kid = 'startup-retired'")
        .execute(db.admin_pool())
        .await
        .unwrap();
    let sentence = misconfigured(state(&db, config_with(retired)).await);
    assert!(sentence.contains("\"startup-retired\""), "{sentence}");

    // The right key: the state is built and serves a request under row-level security.
    seed(db.admin_pool()).await.unwrap();
    let right =
        ContextKey::parse(&format!("{TEST_CONTEXT_KEY_ID}:{TEST_CONTEXT_KEY_HEX}")).unwrap();
    let state = state(&db, config_with(right))
        .await
        .expect("the right key starts the service");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(rag_service::serve(
        listener,
        rag_service::router(state, 64 * 1024),
        async {
            let _ = rx.await;
        },
    ));
    let token = mint_token(SECRET, ISSUER, AUDIENCE, ALICE, 60).unwrap();
    let response = reqwest::Client::new()
        .get(format!("{base}{}/documents", acme(ACME_HANDBOOK)))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let _ = tx.send(());
    server.await.unwrap().unwrap();
}

#[tokio::test]
async fn state_is_refused_by_a_database_without_context_contract_3() {
    let db = TestDb::fresh().await;
    // What a contract-2 database looks like to the check: no context_contract().
    sqlx::query("DROP FUNCTION tenancy.context_contract()")
        .execute(db.admin_pool())
        .await
        .unwrap();
    let sentence = misconfigured(state(&db, tenancy_generated::config()).await);
    assert!(
        sentence.starts_with("the database speaks context contract 2 and this runtime speaks 3"),
        "{sentence}"
    );
    assert!(sentence.contains("tenancy migrate apply"), "{sentence}");
}

/// Runs `rag-service serve` on the test database with `key_env` (`None`: no key variable at
/// all); returns its exit success and stderr. It must exit by itself.
fn serve_refused(db: &TestDb, key_env: Option<&str>) -> (bool, String) {
    let mut command = Command::new(BIN);
    command
        .arg("serve")
        .env_remove("TENANCY_CONTEXT_KEY")
        .env_remove("TENANCY_CONTEXT_KEY_FILE")
        .env_remove("RAG_MAINTENANCE_DATABASE_URL")
        .env("RAG_DATABASE_URL", db.app_url())
        .env("RAG_BIND", "127.0.0.1:0")
        .env("RAG_LOG_FORMAT", "json")
        .env("TENANCY_DEV", "1")
        .stdin(Stdio::null());
    if let Some(value) = key_env {
        command.env("TENANCY_CONTEXT_KEY", value);
    }
    let mut child = KillOnDrop(
        command
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    // A service that passes the check would serve forever: give it 30 s to exit.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let status = loop {
        if let Some(status) = child.0.try_wait().unwrap() {
            break status;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "rag-service started instead of refusing to"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut child.0.stderr.take().unwrap(), &mut stderr).unwrap();
    (status.success(), stderr)
}

#[tokio::test]
async fn the_binary_exits_with_one_sentence_without_a_valid_key_and_serves_with_it() {
    let db = TestDb::fresh().await;
    seed(db.admin_pool()).await.unwrap();

    let (ok, stderr) = serve_refused(&db, None);
    assert!(!ok);
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.starts_with("rag-service: tenancy misconfigured: no context key: set TENANCY_CONTEXT_KEY or TENANCY_CONTEXT_KEY_FILE"),
        "{stderr}"
    );

    let wrong_secret = "ff".repeat(32);
    let (ok, stderr) = serve_refused(&db, Some(&format!("{TEST_CONTEXT_KEY_ID}:{wrong_secret}")));
    assert!(!ok);
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.starts_with(&format!(
            "rag-service: tenancy misconfigured: the database refused this runtime's context key \"{TEST_CONTEXT_KEY_ID}\""
        )),
        "{stderr}"
    );
    assert!(!stderr.contains(&wrong_secret), "{stderr}");

    let (ok, stderr) = serve_refused(&db, Some("half-a-key:abcd"));
    assert!(!ok);
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.contains("at least 32"), "{stderr}");

    // The right key, from a file as scripts/serve hands it over: the service listens and
    // answers Alice.
    let dir = std::env::temp_dir().join(format!("rag-startup-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let key_file = dir.join("context.key");
    std::fs::write(
        &key_file,
        format!("{TEST_CONTEXT_KEY_ID}:{TEST_CONTEXT_KEY_HEX}\n"),
    )
    .unwrap();
    let child = Command::new(BIN)
        .args(["serve", "--dev"])
        .env_remove("TENANCY_DEV")
        .env_remove("TENANCY_CONTEXT_KEY")
        .env("TENANCY_CONTEXT_KEY_FILE", &key_file)
        .env_remove("RAG_MAINTENANCE_DATABASE_URL")
        .env_remove("RAG_JWT_SECRET")
        .env_remove("RAG_JWT_JWKS_FILE")
        .env("RAG_DATABASE_URL", db.app_url())
        .env("RAG_BIND", "127.0.0.1:0")
        .env("RAG_LOG_FORMAT", "json")
        .env("RUST_LOG", "info")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut child = KillOnDrop(child);
    let stdout = child.0.stdout.take().unwrap();
    let address = tokio::task::spawn_blocking(move || {
        for line in BufReader::new(stdout).lines() {
            let line = line.unwrap();
            let Ok(event) = serde_json::from_str::<Value>(&line) else {
                continue;
            };
            if event["fields"]["message"] == "rag-service listening" {
                return event["fields"]["address"].as_str().map(str::to_owned);
            }
        }
        None
    })
    .await
    .unwrap();
    let result = async {
        let address = address.expect("the service did not report its address");
        let token = mint_token(
            DEV_JWT_SECRET.as_bytes(),
            "rag-service-dev",
            "rag-service",
            ALICE,
            60,
        )
        .unwrap();
        reqwest::Client::new()
            .get(format!("http://{address}{}/documents", acme(ACME_HANDBOOK)))
            .bearer_auth(token)
            .send()
            .await
            .unwrap()
            .status()
    }
    .await;
    drop(child);
    std::fs::remove_dir_all(&dir).unwrap();
    assert_eq!(result, StatusCode::OK);
}

/// Without a JWT key of its own the service refuses to start (anyone could mint tokens with the
/// built-in development secret) unless development mode is asked for; so does a short secret.
#[test]
fn the_binary_refuses_the_development_jwt_secret_without_dev_mode() {
    for (secret, needle) in [
        (None, "no JWT key"),
        (Some("too-short"), "shorter than 32 bytes"),
    ] {
        let mut command = Command::new(BIN);
        command
            .arg("serve")
            .env_remove("TENANCY_DEV")
            .env_remove("RAG_JWT_JWKS_FILE")
            .env(
                "RAG_DATABASE_URL",
                "postgres://tenancy_app@127.0.0.1:1/none",
            )
            .env("RAG_BIND", "127.0.0.1:0")
            .stdin(Stdio::null())
            .stdout(Stdio::null());
        match secret {
            Some(secret) => command.env("RAG_JWT_SECRET", secret),
            None => command.env_remove("RAG_JWT_SECRET"),
        };
        let output = command.output().unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(1), "{stderr}");
        assert_eq!(stderr.lines().count(), 1, "{stderr}");
        assert!(stderr.contains(needle), "{stderr}");
    }
}

/// Stops the service this test started, also when an assertion fails.
struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
