//! The Python twin (`examples/rag/python-service`, docs/python.md) against the Rust service:
//! the SAME scenarios, over real HTTP, each service on its own fresh database with the demo
//! data, and then the two transcripts (every step's status, error code and search route)
//! compared line by line. The scenarios: tenant isolation (404 for other tenants and projects,
//! 403 below the role, 401 for every kind of bad token), the data flow (documents, pagination,
//! 409, chunks, vector search nearest first, queries, responses, assertions, delete),
//! cross-tenant writes refused and the other tenant's rows unchanged, membership roles (admins
//! only, never above one's own role, never the last owner, audit rows), malformed requests,
//! and a leak sweep: every row any user reads through any list or search belongs to the
//! tenant and a project the user holds a role in.
//!
//! The Python service runs in the venv of `scripts/python-venv` (built once, pinned); when it
//! cannot be built or started the test fails, never skips.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};

use common::*;
use rag_service::demo::ids::*;
use rag_service::demo::{mint_token, seed};
use reqwest::{Client, Method, StatusCode};
use serde_json::{json, Value};
use tenancy_tests::{repo_root, TestDb};
use uuid::Uuid;

/// The venv's python, built by `scripts/python-venv` (which fails loudly).
fn venv_python() -> PathBuf {
    let out = Command::new(repo_root().join("scripts/python-venv"))
        .output()
        .expect("run scripts/python-venv");
    assert!(
        out.status.success(),
        "scripts/python-venv failed (the Python twin needs it):\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    PathBuf::from(String::from_utf8(out.stdout).unwrap().trim())
}

/// The Python service as a child process on 127.0.0.1:0; killed on drop.
struct PythonService {
    child: Child,
    base: String,
}

impl PythonService {
    fn start(db: &TestDb) -> PythonService {
        let mut child = Command::new(venv_python())
            .args(["-m", "rag_service_py", "serve"])
            .env("RAG_DATABASE_URL", db.app_url())
            .env("RAG_BIND", "127.0.0.1:0")
            .env("RAG_JWT_SECRET", std::str::from_utf8(SECRET).unwrap())
            .env("TENANCY_DEV", "1") // the tests' secret is shorter than 32 bytes
            .env("RAG_JWT_ISSUER", ISSUER)
            .env("RAG_JWT_AUDIENCE", AUDIENCE)
            // The Rust side's verifier: no leeway, no maximum lifetime.
            .env("RAG_JWT_LEEWAY_SECS", "0")
            .env("RAG_JWT_MAX_LIFETIME_SECS", "0")
            .env("RAG_MAX_PAGE_SIZE", "1000")
            .env("RAG_BODY_LIMIT_BYTES", (64 * 1024).to_string())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start the Python service");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let base = line
            .trim()
            .strip_prefix("rag-service-py: listening on ")
            .unwrap_or_else(|| {
                let _ = child.kill();
                panic!("the Python service did not start (stdout: {line:?}; see its stderr above)")
            })
            .to_owned();
        PythonService { child, base }
    }
}

impl Drop for PythonService {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One service under test, and the transcript of what it answered.
struct Target {
    name: &'static str,
    base: String,
    client: Client,
    transcript: Vec<String>,
}

impl Target {
    fn new(name: &'static str, base: String) -> Target {
        Target {
            name,
            base,
            client: Client::new(),
            transcript: Vec::new(),
        }
    }

    /// Sends a request with `token` (none when `None`) and records `step status code route`.
    async fn send(
        &mut self,
        step: &str,
        token: Option<String>,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let mut request = self
            .client
            .request(method, format!("{}{}", self.base, path));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.unwrap();
        let status = response.status();
        let route = response
            .headers()
            .get("x-search-route")
            .map(|v| v.to_str().unwrap().to_owned());
        let text = response.text().await.unwrap();
        let body: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
        let code = body["error"]["code"].as_str().unwrap_or("-");
        if status.is_client_error() || status.is_server_error() {
            assert!(
                body["error"]["message"].is_string(),
                "{}: {step}: an error without the JSON contract: {text}",
                self.name
            );
        }
        self.transcript.push(format!(
            "{step}: {} {code}{}",
            status.as_u16(),
            route.map(|r| format!(" route={r}")).unwrap_or_default()
        ));
        (status, body)
    }

    async fn call(
        &mut self,
        step: &str,
        user: Uuid,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let token = mint_token(SECRET, ISSUER, AUDIENCE, user, 600).unwrap();
        self.send(step, Some(token), method, path, body).await
    }

    async fn get(&mut self, step: &str, user: Uuid, path: &str) -> (StatusCode, Value) {
        self.call(step, user, Method::GET, path, None).await
    }

    async fn post(
        &mut self,
        step: &str,
        user: Uuid,
        path: &str,
        body: Value,
    ) -> (StatusCode, Value) {
        self.call(step, user, Method::POST, path, Some(body)).await
    }

    /// A raw request (headers and body as given) recorded like the others.
    async fn raw(
        &mut self,
        step: &str,
        path: &str,
        content_type: Option<&str>,
        body: &str,
    ) -> StatusCode {
        let token = mint_token(SECRET, ISSUER, AUDIENCE, ALICE, 600).unwrap();
        let mut request = self
            .client
            .post(format!("{}{}", self.base, path))
            .bearer_auth(token)
            .body(body.to_owned());
        if let Some(content_type) = content_type {
            request = request.header("content-type", content_type);
        }
        let response = request.send().await.unwrap();
        let status = response.status();
        let body: Value =
            serde_json::from_str(&response.text().await.unwrap()).unwrap_or(Value::Null);
        self.transcript.push(format!(
            "{step}: {} {}",
            status.as_u16(),
            body["error"]["code"].as_str().unwrap_or("-")
        ));
        status
    }
}

fn items(body: &Value) -> &Vec<Value> {
    body["items"].as_array().expect("a page")
}

/// Tenant isolation: the answers of the Rust e2e suite.
async fn isolation(t: &mut Target) {
    let (status, body) = t
        .get(
            "alice lists handbook",
            ALICE,
            &format!("{}/documents", acme(ACME_HANDBOOK)),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{}: {body}", t.name);
    let titles: Vec<&str> = items(&body)
        .iter()
        .map(|d| d["title"].as_str().unwrap())
        .collect();
    assert_eq!(titles, ["Acme vacation policy"], "{}", t.name);
    assert!(items(&body)
        .iter()
        .all(|d| d["tenant_id"] == ACME.to_string()));

    let (status, _) = t
        .get(
            "alice reads globex",
            ALICE,
            &format!("{}/documents", globex(GLOBEX_RESEARCH)),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{}", t.name);
    let (status, _) = t
        .get(
            "unknown tenant",
            ALICE,
            &format!("/t/{}/projects/{ACME_HANDBOOK}/documents", Uuid::new_v4()),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{}", t.name);
    let (status, _) = t
        .get(
            "globex project under acme",
            ALICE,
            &format!("{}/documents", acme(GLOBEX_RESEARCH)),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{}", t.name);
    let (status, _) = t
        .get(
            "bob without a role",
            BOB,
            &format!("{}/documents", acme(ACME_SUPPORT)),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{}", t.name);
    let (status, _) = t
        .get(
            "unknown project",
            BOB,
            &format!("{}/documents", acme(Uuid::new_v4())),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{}", t.name);
    let doc = json!({"title": "t", "content_hash": "h-iso"});
    let (status, body) = t
        .post(
            "bob (viewer) writes",
            BOB,
            &format!("{}/documents", acme(ACME_HANDBOOK)),
            doc.clone(),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{}", t.name);
    assert_eq!(body["error"]["code"], "forbidden");
    let (status, _) = t
        .post(
            "alice (viewer of support) writes",
            ALICE,
            &format!("{}/documents", acme(ACME_SUPPORT)),
            doc,
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{}", t.name);
    let (_, body) = t
        .get(
            "carol lists research",
            CAROL,
            &format!("{}/documents", globex(GLOBEX_RESEARCH)),
        )
        .await;
    let globex_doc = body["items"][0]["id"].as_str().unwrap().to_owned();
    let (status, _) = t
        .get(
            "globex doc through acme",
            ALICE,
            &format!("{}/documents/{globex_doc}", acme(ACME_HANDBOOK)),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{}", t.name);
    let (status, body) = t
        .get("my projects", ALICE, &format!("/t/{ACME}/projects"))
        .await;
    assert_eq!(status, StatusCode::OK);
    let mut mine: Vec<(String, String)> = body
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            (
                m["project_id"].as_str().unwrap().to_owned(),
                m["role"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    mine.sort();
    assert_eq!(
        mine,
        [
            (ACME_HANDBOOK.to_string(), "owner".to_owned()),
            (ACME_SUPPORT.to_string(), "viewer".to_owned())
        ],
        "{}",
        t.name
    );

    // Tokens: missing, expired, forged, another audience, another issuer, garbage, not a UUID.
    let path = format!("{}/documents", acme(ACME_HANDBOOK));
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let not_a_uuid = jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        &json!({"sub": "alice", "iss": ISSUER, "aud": AUDIENCE, "exp": now + 600}),
        &jsonwebtoken::EncodingKey::from_secret(SECRET),
    )
    .unwrap();
    let no_exp = jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        &json!({"sub": ALICE.to_string(), "iss": ISSUER, "aud": AUDIENCE}),
        &jsonwebtoken::EncodingKey::from_secret(SECRET),
    )
    .unwrap();
    let hs384 = jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS384),
        &json!({"sub": ALICE.to_string(), "iss": ISSUER, "aud": AUDIENCE, "exp": now + 600}),
        &jsonwebtoken::EncodingKey::from_secret(SECRET),
    )
    .unwrap();
    let claims = |extra: Value| {
        let mut claims =
            json!({"sub": ALICE.to_string(), "iss": ISSUER, "aud": AUDIENCE, "exp": now + 600});
        claims
            .as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        jsonwebtoken::encode(
            &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
            &claims,
            &jsonwebtoken::EncodingKey::from_secret(SECRET),
        )
        .unwrap()
    };
    let issued_later = claims(json!({"iat": now + 300}));
    let not_yet = claims(json!({"nbf": now + 300}));
    let oversized = claims(json!({"padding": "x".repeat(17 * 1024)}));
    for (step, token) in [
        ("iat in the future", Some(issued_later)),
        ("nbf in the future", Some(not_yet)),
        ("token over 16 KiB", Some(oversized)),
        ("no token", None),
        (
            "expired token",
            Some(mint_token(SECRET, ISSUER, AUDIENCE, ALICE, -120).unwrap()),
        ),
        (
            "forged token",
            Some(mint_token(b"wrong", ISSUER, AUDIENCE, ALICE, 600).unwrap()),
        ),
        (
            "other audience",
            Some(mint_token(SECRET, ISSUER, "other-app", ALICE, 600).unwrap()),
        ),
        (
            "other issuer",
            Some(mint_token(SECRET, "evil", AUDIENCE, ALICE, 600).unwrap()),
        ),
        ("garbage token", Some("not.a.jwt".to_owned())),
        ("sub not a uuid", Some(not_a_uuid)),
        ("no exp", Some(no_exp)),
        ("another algorithm", Some(hs384)),
    ] {
        let (status, body) = t.send(step, token, Method::GET, &path, None).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{}: {step}", t.name);
        assert_eq!(body["error"]["code"], "unauthorized");
    }
}

/// A 384-dimensional unit vector along `axis`.
fn unit(axis: usize) -> Vec<f32> {
    common::axis(axis)
}

/// The data flow, nearest-first vector search, and cross-tenant writes refused.
async fn data_flow(t: &mut Target) {
    let base = acme(ACME_HANDBOOK);
    let mut ids = Vec::new();
    for n in 0..3 {
        let (status, body) = t
            .post("create document", ALICE, &format!("{base}/documents"), json!({"title": format!("doc {n}"), "content_hash": format!("hash-{n}"), "metadata": {"n": n}}))
            .await;
        assert_eq!(status, StatusCode::CREATED, "{}: {body}", t.name);
        assert_eq!(body["tenant_id"], ACME.to_string());
        assert_eq!(body["project_id"], ACME_HANDBOOK.to_string());
        assert_eq!(
            body["created_by"],
            ALICE.to_string(),
            "stamped by the database"
        );
        assert_eq!(body["metadata"], json!({"n": n}));
        assert_eq!(body["mime_type"], "text/plain");
        ids.push(body["id"].as_str().unwrap().to_owned());
    }
    let (_, first) = t
        .get("page 1", ALICE, &format!("{base}/documents?limit=3"))
        .await;
    assert_eq!(items(&first).len(), 3, "{}", t.name);
    let after = first["next_after"].as_str().unwrap().to_owned();
    let (_, second) = t
        .get(
            "page 2",
            ALICE,
            &format!("{base}/documents?limit=3&after={after}"),
        )
        .await;
    assert_eq!(items(&second).len(), 1, "{}", t.name);
    assert!(second["next_after"].is_null());
    let (status, _) = t
        .post(
            "duplicate hash",
            ALICE,
            &format!("{base}/documents"),
            json!({"title": "again", "content_hash": "hash-0"}),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{}", t.name);
    let doc = ids[0].clone();
    let (status, body) = t
        .call(
            "rename",
            ALICE,
            Method::PATCH,
            &format!("{base}/documents/{doc}"),
            Some(json!({"title": "renamed"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{}: {body}", t.name);
    assert_eq!(body["title"], "renamed");
    let (status, body) = t
        .get("get renamed", BOB, &format!("{base}/documents/{doc}"))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["title"], "renamed");
    let (status, _) = t
        .call(
            "bob renames",
            BOB,
            Method::PATCH,
            &format!("{base}/documents/{doc}"),
            Some(json!({"title": "bob"})),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);

    // Chunks with embeddings; Globex gets one along the same axis, never seen by Acme.
    let chunks: Vec<Value> = (0..5)
        .map(|i| json!({"ordinal": i, "content": format!("chunk {i}"), "token_count": 2, "embedding": unit(i)}))
        .collect();
    let (status, body) = t
        .post(
            "ingest chunks",
            ALICE,
            &format!("{base}/documents/{doc}/chunks"),
            json!({"chunks": chunks}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{}: {body}", t.name);
    assert_eq!(body.as_array().unwrap().len(), 5);
    assert!(body
        .as_array()
        .unwrap()
        .iter()
        .all(|c| c["has_embedding"] == true));
    let (status, body) = t.post("ingest duplicate ordinal", ALICE, &format!("{base}/documents/{doc}/chunks"), json!({"chunks": [{"ordinal": 9, "content": "x", "token_count": 1}, {"ordinal": 9, "content": "y", "token_count": 1}]})).await;
    assert_eq!(
        status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}: {body}",
        t.name
    );
    let (_, listed) = t
        .get(
            "list chunks",
            BOB,
            &format!("{base}/documents/{doc}/chunks"),
        )
        .await;
    assert_eq!(items(&listed).len(), 5, "{}", t.name);
    // Pages of 2 after each page's cursor: the same 5 chunks, in the same order.
    let mut paged: Vec<String> = Vec::new();
    let mut after: Option<String> = None;
    for page_number in 0..4 {
        let query = after
            .as_ref()
            .map_or(String::new(), |a| format!("&after={a}"));
        let (status, page) = t
            .get(
                "page chunks",
                BOB,
                &format!("{base}/documents/{doc}/chunks?limit=2{query}"),
            )
            .await;
        assert_eq!(
            status,
            StatusCode::OK,
            "{}: page {page_number}: {page}",
            t.name
        );
        paged.extend(
            items(&page)
                .iter()
                .map(|c| c["id"].as_str().unwrap().to_owned()),
        );
        match page["next_after"].as_str() {
            Some(next) => after = Some(next.to_owned()),
            None => break,
        }
    }
    let all: Vec<String> = items(&listed)
        .iter()
        .map(|c| c["id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(paged, all, "{}: chunk pages", t.name);
    let (_, gdocs) = t
        .get(
            "carol lists",
            CAROL,
            &format!("{}/documents", globex(GLOBEX_RESEARCH)),
        )
        .await;
    let gdoc = gdocs["items"][0]["id"].as_str().unwrap().to_owned();
    let (status, gchunks) = t.post("carol ingests", CAROL, &format!("{}/documents/{gdoc}/chunks", globex(GLOBEX_RESEARCH)), json!({"chunks": [{"ordinal": 0, "content": "globex", "token_count": 1, "embedding": unit(3)}]})).await;
    assert_eq!(status, StatusCode::CREATED);
    let gchunk = gchunks[0]["id"].as_str().unwrap().to_owned();
    let (status, hits) = t
        .post(
            "search project",
            BOB,
            &format!("{base}/search"),
            json!({"embedding": unit(3), "k": 3}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{}: {hits}", t.name);
    let hits = hits.as_array().unwrap();
    assert_eq!(hits.len(), 3, "{}", t.name);
    assert_eq!(hits[0]["content"], "chunk 3");
    assert_eq!(hits[0]["ordinal"], 3);
    assert_eq!(hits[0]["document_id"], doc.as_str());
    assert!(hits[0]["distance"].as_f64().unwrap().abs() < 1e-6);
    assert!((hits[1]["distance"].as_f64().unwrap() - 1.0).abs() < 1e-6);
    let (status, hits) = t
        .post(
            "search tenant",
            ALICE,
            &format!("/t/{ACME}/search"),
            json!({"embedding": unit(3), "k": 10}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let hits = hits.as_array().unwrap();
    assert_eq!(
        hits.len(),
        5,
        "{}: every embedded chunk of Acme, none of Globex",
        t.name
    );
    assert!(hits.iter().all(|h| h["content"] != "globex"));
    assert_eq!(hits[0]["content"], "chunk 3");
    let (_, hits) = t
        .post(
            "carol searches",
            CAROL,
            &format!("/t/{GLOBEX}/search"),
            json!({"embedding": unit(3), "k": 10}),
        )
        .await;
    assert_eq!(hits.as_array().unwrap().len(), 1, "{}", t.name);
    let (status, _) = t
        .post(
            "search k too large",
            ALICE,
            &format!("{base}/search"),
            json!({"embedding": unit(3), "k": 101}),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    let (status, _) = t
        .post(
            "search zero vector",
            ALICE,
            &format!("{base}/search"),
            json!({"embedding": vec![0.0; 384]}),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    let (status, _) = t
        .post(
            "search short vector",
            ALICE,
            &format!("{base}/search"),
            json!({"embedding": [1.0]}),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);

    // Queries (viewers may ask), responses and assertions (editors).
    let (status, query) = t
        .post(
            "bob asks",
            BOB,
            &format!("{base}/queries"),
            json!({"query_text": "what is the policy?"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{}: {query}", t.name);
    assert_eq!(query["asked_by"], BOB.to_string(), "stamped");
    assert_eq!(query["top_k"], 10);
    let query_id = query["id"].as_str().unwrap().to_owned();
    let (status, _) = t
        .post(
            "bob answers",
            BOB,
            &format!("{base}/queries/{query_id}/responses"),
            json!({"answer_text": "a", "model": "m"}),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, response) = t
        .post(
            "alice answers",
            ALICE,
            &format!("{base}/queries/{query_id}/responses"),
            json!({"answer_text": "25 days", "model": "m", "prompt_tokens": 10}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{}: {response}", t.name);
    let response_id = response["id"].as_str().unwrap().to_owned();
    let chunk_id = items(&listed)[0]["id"].as_str().unwrap().to_owned();
    let (status, body) = t
        .post(
            "assertion",
            ALICE,
            &format!("{base}/responses/{response_id}/assertions"),
            json!({"claim": "25 days", "chunk_id": chunk_id, "verdict": "supported", "score": 0.9}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{}: {body}", t.name);
    let (status, body) = t
        .post(
            "assertion on globex's chunk",
            ALICE,
            &format!("{base}/responses/{response_id}/assertions"),
            json!({"claim": "x", "chunk_id": gchunk}),
        )
        .await;
    assert_eq!(
        status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}: {body}",
        t.name
    );
    let (_, list) = t
        .get(
            "list assertions",
            BOB,
            &format!("{base}/responses/{response_id}/assertions"),
        )
        .await;
    assert_eq!(items(&list).len(), 1);
    let (_, list) = t
        .get(
            "list responses",
            BOB,
            &format!("{base}/queries/{query_id}/responses"),
        )
        .await;
    assert_eq!(items(&list).len(), 1);
    let (_, list) = t.get("list queries", BOB, &format!("{base}/queries")).await;
    assert_eq!(items(&list).len(), 1);
    let (status, _) = t
        .get("get query", BOB, &format!("{base}/queries/{query_id}"))
        .await;
    assert_eq!(status, StatusCode::OK);
    // Viewers read only the queries they asked (`allow select to viewer where asked_by =
    // current_user`); editors and up read everyone's.
    let (status, alices) = t
        .post(
            "alice asks",
            ALICE,
            &format!("{base}/queries"),
            json!({"query_text": "who approves leave?"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{}: {alices}", t.name);
    let alices_id = alices["id"].as_str().unwrap().to_owned();
    let (_, list) = t
        .get("bob lists queries", BOB, &format!("{base}/queries"))
        .await;
    assert_eq!(items(&list).len(), 1, "{}: {list}", t.name);
    assert_eq!(items(&list)[0]["id"], query_id.as_str());
    let (status, _) = t
        .get(
            "bob gets alice's query",
            BOB,
            &format!("{base}/queries/{alices_id}"),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{}", t.name);
    let (status, _) = t
        .get(
            "bob lists responses of alice's query",
            BOB,
            &format!("{base}/queries/{alices_id}/responses"),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{}", t.name);
    let (_, list) = t
        .get("alice lists queries", ALICE, &format!("{base}/queries"))
        .await;
    assert_eq!(items(&list).len(), 2, "{}: {list}", t.name);
    let (status, _) = t
        .get(
            "responses of an unknown query",
            BOB,
            &format!("{base}/queries/{}/responses", Uuid::new_v4()),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // Cross-tenant writes: every one refused, Globex's rows unchanged.
    let (status, _) = t
        .post(
            "carol writes into acme",
            CAROL,
            &format!("{base}/documents"),
            json!({"title": "x", "content_hash": "carol"}),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = t
        .call(
            "alice renames globex's doc",
            ALICE,
            Method::PATCH,
            &format!("{base}/documents/{gdoc}"),
            Some(json!({"title": "pwned"})),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{}", t.name);
    let (status, _) = t
        .call(
            "alice deletes globex's doc",
            ALICE,
            Method::DELETE,
            &format!("{base}/documents/{gdoc}"),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{}", t.name);
    let (status, _) = t
        .post(
            "alice adds chunks to globex's doc",
            ALICE,
            &format!("{base}/documents/{gdoc}/chunks"),
            json!({"chunks": [{"ordinal": 7, "content": "x", "token_count": 1}]}),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{}", t.name);
    let (status, _) = t
        .call(
            "alice deletes in globex's path",
            ALICE,
            Method::DELETE,
            &format!("{}/documents/{gdoc}", globex(GLOBEX_RESEARCH)),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (_, body) = t
        .get(
            "carol's doc unchanged",
            CAROL,
            &format!("{}/documents/{gdoc}", globex(GLOBEX_RESEARCH)),
        )
        .await;
    assert_eq!(body["title"], "Globex secret formula", "{}", t.name);
    let (_, body) = t
        .get(
            "carol's chunks unchanged",
            CAROL,
            &format!("{}/documents/{gdoc}/chunks", globex(GLOBEX_RESEARCH)),
        )
        .await;
    assert_eq!(items(&body).len(), 1, "{}", t.name);

    // Delete needs admin: Bob 403, Alice 204, then 404.
    let (status, _) = t
        .call(
            "bob deletes",
            BOB,
            Method::DELETE,
            &format!("{base}/documents/{doc}"),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _) = t
        .call(
            "alice deletes",
            ALICE,
            Method::DELETE,
            &format!("{base}/documents/{doc}"),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{}", t.name);
    let (status, _) = t
        .get("deleted", ALICE, &format!("{base}/documents/{doc}"))
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

/// Membership roles: the Rust service's rules.
async fn membership(t: &mut Target, dave: Uuid, erin: Uuid) {
    let members = format!("{}/members", acme(ACME_HANDBOOK));
    let (status, body) = t.get("alice lists members", ALICE, &members).await;
    assert_eq!(status, StatusCode::OK, "{}: {body}", t.name);
    assert_eq!(items(&body).len(), 2);
    let (status, _) = t.get("bob lists members", BOB, &members).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _) = t
        .post(
            "bob adds",
            BOB,
            &members,
            json!({"user_id": erin, "role": "viewer"}),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, body) = t
        .post(
            "alice adds dave (admin)",
            ALICE,
            &members,
            json!({"user_id": dave, "role": "admin"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{}: {body}", t.name);
    assert_eq!(body["role"], "admin");
    assert_eq!(body["granted_by"], ALICE.to_string(), "stamped");
    let (status, _) = t
        .post(
            "alice adds dave again",
            ALICE,
            &members,
            json!({"user_id": dave, "role": "viewer"}),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT);
    let (status, _) = t
        .post(
            "bad role",
            ALICE,
            &members,
            json!({"user_id": erin, "role": "god"}),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    let (status, body) = t
        .post(
            "dave grants owner",
            dave,
            &members,
            json!({"user_id": erin, "role": "owner"}),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{}: {body}", t.name);
    let (status, _) = t
        .call(
            "dave demotes alice",
            dave,
            Method::PUT,
            &format!("{members}/{ALICE}"),
            Some(json!({"role": "viewer"})),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, body) = t
        .call(
            "alice demotes herself",
            ALICE,
            Method::PUT,
            &format!("{members}/{ALICE}"),
            Some(json!({"role": "admin"})),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{}: {body}", t.name);
    assert_eq!(body["error"]["code"], "last_owner");
    let (status, body) = t
        .call(
            "alice leaves",
            ALICE,
            Method::DELETE,
            &format!("{members}/{ALICE}"),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(body["error"]["code"], "last_owner");
    let (status, body) = t
        .call(
            "dave promotes bob",
            dave,
            Method::PUT,
            &format!("{members}/{BOB}"),
            Some(json!({"role": "editor"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{}: {body}", t.name);
    assert_eq!(body["role"], "editor");
    let (status, _) = t
        .post(
            "bob writes as editor",
            BOB,
            &format!("{}/documents", acme(ACME_HANDBOOK)),
            json!({"title": "by bob", "content_hash": "bob-1"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{}", t.name);
    // The update rule's row condition: editors change the documents they created only.
    let docs = format!("{}/documents", acme(ACME_HANDBOOK));
    let (_, listed) = t.get("bob lists", BOB, &format!("{docs}?limit=1000")).await;
    let by = |title: &str| {
        items(&listed)
            .iter()
            .find(|d| d["title"] == title)
            .map(|d| d["id"].as_str().unwrap().to_owned())
            .unwrap()
    };
    let (alices, bobs) = (by("Acme vacation policy"), by("by bob"));
    for (step, id, body, expected) in [
        (
            "bob renames alice's",
            &alices,
            json!({"title": "bob was here"}),
            StatusCode::NOT_FOUND,
        ),
        (
            "bob's empty patch of alice's",
            &alices,
            json!({}),
            StatusCode::NOT_FOUND,
        ),
        (
            "bob renames his own",
            &bobs,
            json!({"title": "bob's, renamed"}),
            StatusCode::OK,
        ),
        (
            "bob's empty patch of his own",
            &bobs,
            json!({}),
            StatusCode::OK,
        ),
    ] {
        let (status, body) = t
            .call(
                step,
                BOB,
                Method::PATCH,
                &format!("{docs}/{id}"),
                Some(body),
            )
            .await;
        assert_eq!(status, expected, "{}: {step}: {body}", t.name);
    }
    let (_, body) = t
        .get("alice's unchanged", ALICE, &format!("{docs}/{alices}"))
        .await;
    assert_eq!(body["title"], "Acme vacation policy", "{}", t.name);
    let (status, _) = t
        .call(
            "unknown member",
            ALICE,
            Method::PUT,
            &format!("{members}/{erin}"),
            Some(json!({"role": "viewer"})),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = t
        .post(
            "carol adds herself to acme",
            CAROL,
            &members,
            json!({"user_id": CAROL, "role": "owner"}),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = t
        .call(
            "alice removes dave",
            ALICE,
            Method::DELETE,
            &format!("{members}/{dave}"),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{}", t.name);
    let (status, _) = t.get("dave after removal", dave, &members).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{}", t.name);
}

/// Malformed requests answer as the Rust service does.
async fn malformed(t: &mut Target) {
    let docs = format!("{}/documents", acme(ACME_HANDBOOK));
    t.raw("bad json", &docs, Some("application/json"), "{not json")
        .await;
    t.raw(
        "no content type",
        &docs,
        None,
        r#"{"title": "t", "content_hash": "h"}"#,
    )
    .await;
    t.raw(
        "unknown field",
        &docs,
        Some("application/json"),
        r#"{"title": "t", "content_hash": "h", "owner": "me"}"#,
    )
    .await;
    t.raw(
        "missing field",
        &docs,
        Some("application/json"),
        r#"{"title": "t"}"#,
    )
    .await;
    t.raw(
        "wrong type",
        &docs,
        Some("application/json"),
        r#"{"title": 5, "content_hash": "h"}"#,
    )
    .await;
    t.raw(
        "blank title",
        &docs,
        Some("application/json"),
        r#"{"title": " ", "content_hash": "h"}"#,
    )
    .await;
    t.raw(
        "metadata not an object",
        &docs,
        Some("application/json"),
        r#"{"title": "t", "content_hash": "h", "metadata": [1]}"#,
    )
    .await;
    t.raw(
        "too large",
        &docs,
        Some("application/json"),
        &format!(
            r#"{{"title": "{}", "content_hash": "h"}}"#,
            "x".repeat(70 * 1024)
        ),
    )
    .await;
    let (status, _) = t.get("limit 0", ALICE, &format!("{docs}?limit=0")).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    let (status, _) = t
        .get("limit too large", ALICE, &format!("{docs}?limit=1001"))
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    let (status, _) = t
        .get(
            "limit 0 without a role",
            BOB,
            &format!("{}/documents?limit=0", acme(ACME_SUPPORT)),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "the role before the range");
    let (status, _) = t
        .get("after not a uuid", ALICE, &format!("{docs}?after=x"))
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    let (status, _) = t
        .get(
            "document id not a uuid",
            ALICE,
            &format!("{docs}/not-a-uuid"),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = t
        .get("tenant id not a uuid", ALICE, "/t/acme/projects")
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = t.get("unknown path", ALICE, "/nothing/here").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = t
        .call("wrong method", ALICE, Method::PUT, &docs, Some(json!({})))
        .await;
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
}

/// Every row any user reads through any list or search is of the path's tenant and of a project
/// the user holds a role in; returns the number of rows checked.
async fn leak_sweep(t: &mut Target) -> usize {
    let readable: &[(Uuid, Uuid, &[Uuid])] = &[
        (ALICE, ACME, &[ACME_HANDBOOK, ACME_SUPPORT]),
        (BOB, ACME, &[ACME_HANDBOOK]),
        (CAROL, GLOBEX, &[GLOBEX_RESEARCH]),
    ];
    // Both tenants get rows along the same axes first: documents with embedded chunks.
    for (user, project_path) in [
        (ALICE, acme(ACME_HANDBOOK)),
        (CAROL, globex(GLOBEX_RESEARCH)),
    ] {
        for n in 0..8 {
            let (status, doc) = t
                .post(
                    "sweep document",
                    user,
                    &format!("{project_path}/documents"),
                    json!({"title": format!("sweep {n}"), "content_hash": format!("sweep-{user}-{n}")}),
                )
                .await;
            assert_eq!(status, StatusCode::CREATED, "{}: {doc}", t.name);
            let doc = doc["id"].as_str().unwrap().to_owned();
            let chunks: Vec<Value> = (0..4)
                .map(|i| json!({"ordinal": i, "content": format!("sweep {n}.{i}"), "token_count": 1, "embedding": unit(n + i)}))
                .collect();
            let (status, _) = t
                .post(
                    "sweep chunks",
                    user,
                    &format!("{project_path}/documents/{doc}/chunks"),
                    json!({"chunks": chunks}),
                )
                .await;
            assert_eq!(status, StatusCode::CREATED, "{}", t.name);
        }
    }
    let mut checked = 0;
    let mut leaks = Vec::new();
    for &(user, tenant, projects) in readable {
        for (round, axis) in [0usize, 3, 4].into_iter().enumerate() {
            let (_, hits) = t
                .post(
                    &format!("sweep search {round}"),
                    user,
                    &format!("/t/{tenant}/search"),
                    json!({"embedding": unit(axis), "k": 100}),
                )
                .await;
            for hit in hits.as_array().unwrap() {
                checked += 1;
                if !projects.iter().any(|p| hit["project_id"] == p.to_string()) {
                    leaks.push(format!("{user} search: {hit}"));
                }
            }
        }
        for &tenant_guess in &[ACME, GLOBEX] {
            for &project in &[ACME_HANDBOOK, ACME_SUPPORT, GLOBEX_RESEARCH] {
                for what in ["documents", "queries"] {
                    let (status, body) = t
                        .get(
                            "sweep list",
                            user,
                            &format!("/t/{tenant_guess}/projects/{project}/{what}?limit=1000"),
                        )
                        .await;
                    let allowed = tenant_guess == tenant && projects.contains(&project);
                    if !allowed {
                        if status != StatusCode::NOT_FOUND {
                            leaks.push(format!("{user} {tenant_guess}/{project}/{what}: {status}"));
                        }
                        continue;
                    }
                    for row in items(&body) {
                        checked += 1;
                        if row["tenant_id"] != tenant.to_string()
                            || row["project_id"] != project.to_string()
                        {
                            leaks.push(format!("{user} {what}: {row}"));
                        }
                    }
                }
            }
        }
    }
    assert!(
        leaks.is_empty(),
        "{}: {} leaks: {leaks:#?}",
        t.name,
        leaks.len()
    );
    checked
}

/// 240 concurrent requests by the three users (lists and tenant-wide searches, interleaved so
/// that pooled connections pass from one tenant's request to another's): every row is of the
/// caller's tenant and projects. Returns the number of rows checked.
async fn concurrent_sweep(t: &Target) -> usize {
    let users: [(Uuid, Uuid, &[Uuid]); 3] = [
        (ALICE, ACME, &[ACME_HANDBOOK, ACME_SUPPORT]),
        (BOB, ACME, &[ACME_HANDBOOK]),
        (CAROL, GLOBEX, &[GLOBEX_RESEARCH]),
    ];
    let mut tasks = tokio::task::JoinSet::new();
    for n in 0..240usize {
        let (user, tenant, projects) = users[n % 3];
        let projects: Vec<String> = projects.iter().map(ToString::to_string).collect();
        let client = t.client.clone();
        let base = t.base.clone();
        tasks.spawn(async move {
            let token = mint_token(SECRET, ISSUER, AUDIENCE, user, 600).unwrap();
            let request = if n % 2 == 0 {
                client.get(format!(
                    "{base}/t/{tenant}/projects/{}/documents?limit=1000",
                    projects[0]
                ))
            } else {
                client
                    .post(format!("{base}/t/{tenant}/search"))
                    .json(&json!({"embedding": unit(n % 12), "k": 50}))
            };
            let response = request.bearer_auth(token).send().await.unwrap();
            assert_eq!(response.status(), StatusCode::OK);
            let body: Value = response.json().await.unwrap();
            let rows = if n % 2 == 0 {
                body["items"].clone()
            } else {
                body
            };
            let mut leaks = Vec::new();
            let rows = rows.as_array().unwrap().clone();
            for row in &rows {
                let project = row["project_id"].as_str().unwrap().to_owned();
                let tenant_ok = row
                    .get("tenant_id")
                    .is_none_or(|t| *t == tenant.to_string());
                if !tenant_ok || !projects.contains(&project) {
                    leaks.push(format!("{user}: {row}"));
                }
            }
            (rows.len(), leaks)
        });
    }
    let mut checked = 0;
    let mut leaks = Vec::new();
    while let Some(done) = tasks.join_next().await {
        let (rows, mut found) = done.unwrap();
        checked += rows;
        leaks.append(&mut found);
    }
    assert!(
        leaks.is_empty(),
        "{}: {} concurrent leaks: {leaks:#?}",
        t.name,
        leaks.len()
    );
    checked
}

async fn scenarios(t: &mut Target, dave: Uuid, erin: Uuid) -> usize {
    isolation(t).await;
    data_flow(t).await;
    membership(t, dave, erin).await;
    malformed(t).await;
    leak_sweep(t).await + concurrent_sweep(t).await
}

/// `action` counts of `tenancy.audit_log`, read as the superuser.
async fn audit_actions(db: &TestDb) -> Vec<(String, i64)> {
    sqlx::query_as("SELECT action, count(*) FROM tenancy.audit_log GROUP BY action ORDER BY action")
        .fetch_all(db.admin_pool())
        .await
        .unwrap()
}

#[tokio::test]
async fn the_python_twin_answers_the_rust_services_scenarios_identically() {
    let dave = Uuid::new_v4();
    let erin = Uuid::new_v4();

    let rust = Service::start().await;
    let mut rust_target = Target::new("rust", rust.base.clone());
    let rust_rows = scenarios(&mut rust_target, dave, erin).await;

    let db = TestDb::fresh().await;
    seed(db.admin_pool()).await.expect("seed");
    let python = PythonService::start(&db);
    let mut python_target = Target::new("python", python.base.clone());
    let python_rows = scenarios(&mut python_target, dave, erin).await;

    // The same answers, step by step.
    for (n, (r, p)) in rust_target
        .transcript
        .iter()
        .zip(&python_target.transcript)
        .enumerate()
    {
        assert_eq!(r, p, "step {n} differs (rust | python)");
    }
    assert_eq!(rust_target.transcript.len(), python_target.transcript.len());
    assert_eq!(
        rust_rows, python_rows,
        "the leak sweeps read different numbers of rows"
    );
    assert!(python_rows > 5000, "the sweep read only {python_rows} rows");
    // The same audit trail of membership changes.
    let actions = audit_actions(&db).await;
    assert_eq!(actions, audit_actions(&rust.db).await);
    assert_eq!(
        actions,
        [
            ("member.add".to_owned(), 1),
            ("member.remove".to_owned(), 1),
            ("member.set_role".to_owned(), 1)
        ]
    );
    drop(python);
    db.drop_db().await;
}

/// Runs `python -m rag_service_py serve` against `db` with `env` changes; returns its exit
/// status and stderr (it must exit: these are the refusals).
fn python_serve_refused(db: &TestDb, env: &[(&str, Option<&str>)]) -> String {
    let mut command = Command::new(venv_python());
    command
        .args(["-m", "rag_service_py", "serve"])
        .env("RAG_DATABASE_URL", db.app_url())
        .env("RAG_BIND", "127.0.0.1:0")
        .env("RAG_JWT_SECRET", "a-secret-of-at-least-thirty-two-bytes!")
        .env_remove("TENANCY_DEV")
        .env_remove("TENANCY_CONTEXT_KEY_FILE");
    for (name, value) in env {
        match value {
            Some(value) => command.env(name, value),
            None => command.env_remove(name),
        };
    }
    let out = command.output().expect("run the Python service");
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        out.stdout.is_empty(),
        "it listened: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert_eq!(stderr.lines().count(), 1, "one line: {stderr}");
    stderr
}

#[tokio::test]
async fn the_python_twin_refuses_to_start_like_the_rust_service() {
    let db = TestDb::fresh().await;
    let wrong_key = format!("tenancy-test-only:{}", "01".repeat(32));
    for (env, expected) in [
        (
            vec![("TENANCY_CONTEXT_KEY", None)],
            "rag-service-py: tenancy misconfigured: no context key",
        ),
        (
            vec![("TENANCY_CONTEXT_KEY", Some(wrong_key.as_str()))],
            "rag-service-py: tenancy misconfigured: the database refused this runtime's context key",
        ),
        (
            vec![("RAG_JWT_SECRET", None)],
            "rag-service-py: RAG_JWT_SECRET is required outside development mode",
        ),
        (
            vec![("RAG_JWT_SECRET", Some("short"))],
            "rag-service-py: RAG_JWT_SECRET must be at least 32 bytes",
        ),
        (
            vec![("RAG_DATABASE_URL", None)],
            "rag-service-py: RAG_DATABASE_URL is required",
        ),
    ] {
        let stderr = python_serve_refused(&db, &env);
        assert!(stderr.starts_with(expected), "{env:?}: {stderr}");
        assert!(!stderr.contains(&"01".repeat(32)), "the secret leaked: {stderr}");
    }
    db.drop_db().await;
}
