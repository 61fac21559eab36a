//! The fault-and-load harness (issue 23, docs/reliability.md): the RAG service, behind a TCP
//! proxy, PgBouncer in transaction pooling and PostgreSQL, serves a mixed workload of many
//! tenants while faults are injected, and every answer is checked against a ground-truth
//! model the harness keeps.
//!
//! Faults, in turn: `terminate` (pg_terminate_backend on a random half of the app's server
//! connections), `proxy_cut` (the TCP proxy between the service and PgBouncer drops every
//! connection mid-flight), `proxy_stall` (the proxy holds every byte for 2.5 s), `pgbouncer_restart`, `statement_timeout` (an exclusive lock on
//! `chunks` held past the service's statement timeout) and `postgres_restart` (the throwaway
//! cluster, `scripts/pg-restart`). After each, a probe measures how long until the service
//! answers 200 again.
//!
//! Checks: every row of every answer belongs to the caller's tenant and project (a document's
//! content hash is unique to the tenant that wrote it in the model), every acknowledged write
//! is there at the end (documents by id and hash, ingests with all their chunks), every ingest
//! is all or nothing, a document the harness never wrote does not exist, no pooled server
//! connection carries a context after the run, and the metrics counted every 503 the clients
//! saw.

#![allow(dead_code)]

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use tokio::net::{TcpListener, TcpStream};
use uuid::Uuid;

use crate::common::{Service, StartOptions};

/// How long and how hard.
#[derive(Clone, Debug)]
pub struct HarnessConfig {
    /// Load runs this long (faults during all of it).
    pub duration: Duration,
    /// Tenants (each with 2 projects, an owner and a second member).
    pub tenants: usize,
    /// Concurrent HTTP clients.
    pub clients: usize,
    /// Pause between two faults.
    pub fault_every: Duration,
}

/// SplitMix64.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// One tenant of the model.
struct Tenant {
    id: Uuid,
    projects: [Uuid; 2],
    owner: Uuid,
    member: Uuid,
    /// content hash -> what the harness knows of that document.
    docs: Mutex<HashMap<String, DocState>>,
}

#[derive(Clone, Debug)]
struct DocState {
    project: Uuid,
    /// `Some(id)` once a create was acknowledged (201); `None` when its outcome is unknown.
    id: Option<Uuid>,
    /// The chunk ingest: `None` never tried; `Some((n, true))` acknowledged; `Some((n,
    /// false))` unknown outcome (503).
    ingest: Option<(usize, bool)>,
}

/// A TCP proxy that can drop every connection at once.
pub struct Proxy {
    pub port: u16,
    connections: Arc<Mutex<Vec<tokio::task::AbortHandle>>>,
    stalled: Arc<AtomicBool>,
    task: tokio::task::JoinHandle<()>,
}

/// Copies `from` to `to`, holding every chunk while `stalled` is set.
async fn forward(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    stalled: Arc<AtomicBool>,
) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut buffer = vec![0u8; 16 * 1024];
    loop {
        let n = match from.read(&mut buffer).await {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        while stalled.load(Ordering::Relaxed) {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        if to.write_all(&buffer[..n]).await.is_err() {
            break;
        }
    }
    let _ = to.shutdown().await;
}

impl Proxy {
    pub async fn start(upstream_port: u16) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let connections: Arc<Mutex<Vec<tokio::task::AbortHandle>>> = Arc::default();
        let registry = Arc::clone(&connections);
        let stalled = Arc::new(AtomicBool::new(false));
        let stall = Arc::clone(&stalled);
        let task = tokio::spawn(async move {
            loop {
                let Ok((client, _)) = listener.accept().await else {
                    continue;
                };
                let stall = Arc::clone(&stall);
                let handle = tokio::spawn(async move {
                    let Ok(server) = TcpStream::connect(("127.0.0.1", upstream_port)).await else {
                        return;
                    };
                    let (client_read, client_write) = client.into_split();
                    let (server_read, server_write) = server.into_split();
                    tokio::join!(
                        forward(client_read, server_write, Arc::clone(&stall)),
                        forward(server_read, client_write, stall),
                    );
                });
                let mut live = registry.lock().unwrap();
                live.retain(|h| !h.is_finished());
                live.push(handle.abort_handle());
            }
        });
        Proxy {
            port,
            connections,
            stalled,
            task,
        }
    }

    /// Holds every byte in both directions for `pause` (connections stay open), then lets
    /// them through.
    pub async fn stall(&self, pause: Duration) {
        self.stalled.store(true, Ordering::Relaxed);
        tokio::time::sleep(pause).await;
        self.stalled.store(false, Ordering::Relaxed);
    }

    /// Drops every open connection (both sides see it closed mid-flight).
    pub fn cut(&self) -> usize {
        let mut live = self.connections.lock().unwrap();
        let n = live.len();
        for handle in live.drain(..) {
            handle.abort();
        }
        n
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.cut();
        self.task.abort();
    }
}

/// A PgBouncer of `scripts/pgbouncer-up` that the harness can restart.
struct Bouncer {
    port: u16,
    dir: String,
}

impl Bouncer {
    fn start(upstream: &str) -> Bouncer {
        let output = std::process::Command::new("bash")
            .arg(tenancy_tests::repo_root().join("scripts/pgbouncer-up"))
            .arg(upstream)
            .env("PGBOUNCER_POOL_SIZE", "4")
            .env("PGBOUNCER_SERVER_LOGIN_RETRY", "1")
            .stderr(std::process::Stdio::inherit())
            .output()
            .unwrap();
        assert!(output.status.success(), "scripts/pgbouncer-up failed");
        let line = String::from_utf8_lossy(&output.stdout).into_owned();
        let fields: Vec<&str> = line.split_whitespace().collect();
        Bouncer {
            port: fields[0].parse().unwrap(),
            dir: fields[2].to_owned(),
        }
    }
}

/// Restarts the bouncer whose directory is `dir` (same port, same config).
fn restart_bouncer(dir: &str) {
    let status = std::process::Command::new("bash")
        .arg(tenancy_tests::repo_root().join("scripts/pgbouncer-restart"))
        .arg(dir)
        .stdout(std::process::Stdio::null())
        .status()
        .unwrap();
    assert!(status.success(), "scripts/pgbouncer-restart failed");
}

impl Drop for Bouncer {
    fn drop(&mut self) {
        if let Ok(pid) = std::fs::read_to_string(format!("{}/pgbouncer.pid", self.dir)) {
            let _ = std::process::Command::new("kill").arg(pid.trim()).status();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// What a run found.
#[derive(Debug, Default)]
pub struct Report {
    pub requests: u64,
    pub ok: u64,
    pub unavailable: u64,
    pub timeouts: u64,
    /// Answers that are neither expected nor a 503: (status, route, body), first few.
    pub unexpected: Vec<(u16, String, String)>,
    pub unexpected_count: u64,
    pub rows_checked: u64,
    pub wrong_tenant_rows: u64,
    pub lost_writes: u64,
    pub partial_ingests: u64,
    pub phantom_documents: u64,
    pub leaked_contexts: u64,
    pub acknowledged_documents: u64,
    pub acknowledged_ingests: u64,
    /// fault kind -> recovery times in seconds.
    pub recovery: BTreeMap<&'static str, Vec<f64>>,
    pub latencies_ms: Vec<f64>,
    pub metrics_503: f64,
    pub rss_kib: (u64, u64),
    pub app_backends_end: i64,
}

impl Report {
    pub fn percentile(&self, p: f64) -> f64 {
        let mut sorted = self.latencies_ms.clone();
        sorted.sort_by(f64::total_cmp);
        if sorted.is_empty() {
            return 0.0;
        }
        let at = ((sorted.len() - 1) as f64 * p).round() as usize;
        sorted[at]
    }

    pub fn print(&self) {
        println!(
            "harness: {} requests ({} ok, {} 503 unavailable, {} 503 timeout, {} unexpected), p50 {:.1} ms, p99 {:.1} ms",
            self.requests,
            self.ok,
            self.unavailable,
            self.timeouts,
            self.unexpected_count,
            self.percentile(0.5),
            self.percentile(0.99)
        );
        println!(
            "harness: {} rows checked, {} wrong-tenant rows, {} lost acknowledged writes ({} documents, {} ingests acknowledged), {} partial ingests, {} phantom documents, {} leaked contexts",
            self.rows_checked,
            self.wrong_tenant_rows,
            self.lost_writes,
            self.acknowledged_documents,
            self.acknowledged_ingests,
            self.partial_ingests,
            self.phantom_documents,
            self.leaked_contexts
        );
        for (kind, times) in &self.recovery {
            let max = times.iter().copied().fold(0.0, f64::max);
            let mean = times.iter().sum::<f64>() / times.len().max(1) as f64;
            println!(
                "harness: fault {kind}: {} injected, recovery mean {mean:.3} s, max {max:.3} s",
                times.len()
            );
        }
        println!(
            "harness: metrics counted {} 503s; RSS {} KiB -> {} KiB; {} app-role server connections at the end",
            self.metrics_503, self.rss_kib.0, self.rss_kib.1, self.app_backends_end
        );
        for (status, route, body) in &self.unexpected {
            println!("harness: unexpected {status} {route}: {body}");
        }
    }
}

fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(0)
}

/// Shared counters of the workers.
#[derive(Default)]
struct Tally {
    requests: AtomicU64,
    ok: AtomicU64,
    unavailable: AtomicU64,
    timeouts: AtomicU64,
    unexpected_count: AtomicU64,
    rows_checked: AtomicU64,
    wrong_tenant_rows: AtomicU64,
    lost_writes: AtomicU64,
    unexpected: Mutex<Vec<(u16, String, String)>>,
    latencies_ms: Mutex<Vec<f64>>,
}

struct World {
    base: String,
    tenants: Vec<Tenant>,
    tally: Tally,
    /// Every content hash the harness ever used -> its tenant index (to name a stray row).
    owners: Mutex<HashMap<String, usize>>,
}

/// One HTTP call; 503s are counted, everything else is returned.
async fn call(
    world: &World,
    http: &reqwest::Client,
    token: &str,
    method: Method,
    path: &str,
    body: Option<Value>,
) -> Option<(StatusCode, Value)> {
    let mut request = http
        .request(method.clone(), format!("{}{path}", world.base))
        .bearer_auth(token);
    if let Some(body) = body {
        request = request.json(&body);
    }
    let started = Instant::now();
    world.tally.requests.fetch_add(1, Ordering::Relaxed);
    let response = match request.send().await {
        Ok(response) => response,
        Err(error) => {
            unexpected(world, 0, &format!("{method} {path}"), &error.to_string());
            return None;
        }
    };
    let status = response.status();
    let body: Value = response.json().await.unwrap_or(Value::Null);
    world
        .tally
        .latencies_ms
        .lock()
        .unwrap()
        .push(started.elapsed().as_secs_f64() * 1000.0);
    if status == StatusCode::SERVICE_UNAVAILABLE {
        match body["error"]["code"].as_str() {
            Some("unavailable") => world.tally.unavailable.fetch_add(1, Ordering::Relaxed),
            Some("timeout") => world.tally.timeouts.fetch_add(1, Ordering::Relaxed),
            _ => {
                unexpected(world, 503, &format!("{method} {path}"), &body.to_string());
                0
            }
        };
    }
    Some((status, body))
}

fn unexpected(world: &World, status: u16, route: &str, body: &str) {
    world.tally.unexpected_count.fetch_add(1, Ordering::Relaxed);
    let mut list = world.tally.unexpected.lock().unwrap();
    if list.len() < 10 {
        list.push((status, route.to_owned(), body.chars().take(300).collect()));
    }
}

/// Every row must be a document/chunk of `tenant`'s `project` (or of one of its projects).
fn check_rows(world: &World, tenant: usize, projects: &[Uuid], rows: &[Value], hash_field: bool) {
    for row in rows {
        world.tally.rows_checked.fetch_add(1, Ordering::Relaxed);
        let project = row["project_id"].as_str().and_then(|p| p.parse().ok());
        let mut wrong = !project.is_some_and(|p| projects.contains(&p));
        if hash_field {
            if let Some(hash) = row["content_hash"].as_str() {
                let owner = world.owners.lock().unwrap().get(hash).copied();
                if owner.is_some_and(|owner| owner != tenant) {
                    wrong = true;
                }
            }
        }
        if wrong {
            world
                .tally
                .wrong_tenant_rows
                .fetch_add(1, Ordering::Relaxed);
            unexpected(world, 200, "WRONG-TENANT ROW", &row.to_string());
        }
    }
}

fn token(user: Uuid) -> String {
    rag_service::demo::mint_token(
        crate::common::SECRET,
        crate::common::ISSUER,
        crate::common::AUDIENCE,
        user,
        3600,
    )
    .unwrap()
}

fn embedding(seed: usize) -> Vec<f32> {
    let mut v = vec![0.01f32; 384];
    v[seed % 384] = 1.0;
    v
}

/// One worker: random operations until `stop`.
async fn worker(world: Arc<World>, seed: u64, stop: Arc<AtomicBool>) {
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap();
    let mut rng = Rng(seed);
    while !stop.load(Ordering::Relaxed) {
        let t = rng.below(world.tenants.len());
        let tenant = &world.tenants[t];
        let owner = token(tenant.owner);
        let p = tenant.projects[rng.below(2)];
        let prefix = format!("/t/{}/projects/{p}", tenant.id);
        match rng.below(10) {
            0..=2 => {
                // Create a document; on 503 retry once with the same content hash.
                let hash = format!("h-{}", Uuid::new_v4());
                world.owners.lock().unwrap().insert(hash.clone(), t);
                tenant.docs.lock().unwrap().insert(
                    hash.clone(),
                    DocState {
                        project: p,
                        id: None,
                        ingest: None,
                    },
                );
                for _attempt in 0..2 {
                    let Some((status, body)) = call(
                        &world,
                        &http,
                        &owner,
                        Method::POST,
                        &format!("{prefix}/documents"),
                        Some(json!({"title": "doc", "content_hash": hash})),
                    )
                    .await
                    else {
                        break;
                    };
                    match status {
                        StatusCode::CREATED => {
                            world.tally.ok.fetch_add(1, Ordering::Relaxed);
                            let id = body["id"].as_str().and_then(|id| id.parse().ok());
                            if let Some(doc) = tenant.docs.lock().unwrap().get_mut(&hash) {
                                doc.id = id;
                            }
                            break;
                        }
                        // The first attempt committed after all: the document is there.
                        StatusCode::CONFLICT => break,
                        StatusCode::SERVICE_UNAVAILABLE => {
                            tokio::time::sleep(Duration::from_millis(100)).await;
                        }
                        other => {
                            unexpected(&world, other.as_u16(), "POST documents", &body.to_string());
                            break;
                        }
                    }
                }
            }
            3..=4 => {
                // Ingest chunks into an acknowledged document that has none yet.
                let target = {
                    let docs = tenant.docs.lock().unwrap();
                    docs.iter()
                        .find(|(_, d)| d.id.is_some() && d.ingest.is_none())
                        .map(|(h, d)| (h.clone(), d.clone()))
                };
                let Some((hash, doc)) = target else { continue };
                let n = 4 + rng.below(28);
                if let Some(d) = tenant.docs.lock().unwrap().get_mut(&hash) {
                    d.ingest = Some((n, false));
                }
                let chunks: Vec<Value> = (0..n)
                    .map(|i| {
                        json!({"ordinal": i, "content": format!("chunk {i}"), "token_count": 2,
                               "embedding": embedding(i + n)})
                    })
                    .collect();
                let path = format!(
                    "/t/{}/projects/{}/documents/{}/chunks",
                    tenant.id,
                    doc.project,
                    doc.id.unwrap_or_default()
                );
                let Some((status, body)) = call(
                    &world,
                    &http,
                    &owner,
                    Method::POST,
                    &path,
                    Some(json!({ "chunks": chunks })),
                )
                .await
                else {
                    continue;
                };
                match status {
                    StatusCode::CREATED => {
                        world.tally.ok.fetch_add(1, Ordering::Relaxed);
                        let rows = body.as_array().cloned().unwrap_or_default();
                        check_rows(&world, t, &[doc.project], &rows, false);
                        if rows.len() == n {
                            if let Some(d) = tenant.docs.lock().unwrap().get_mut(&hash) {
                                d.ingest = Some((n, true));
                            }
                        } else {
                            unexpected(&world, 201, "POST chunks (count)", &rows.len().to_string());
                        }
                    }
                    StatusCode::SERVICE_UNAVAILABLE => {}
                    other => unexpected(&world, other.as_u16(), "POST chunks", &body.to_string()),
                }
            }
            5..=6 => {
                // Page through the project's documents (two pages at most).
                let mut after: Option<String> = None;
                for _ in 0..2 {
                    let path = match &after {
                        Some(a) => format!("{prefix}/documents?limit=20&after={a}"),
                        None => format!("{prefix}/documents?limit=20"),
                    };
                    let Some((status, body)) =
                        call(&world, &http, &owner, Method::GET, &path, None).await
                    else {
                        break;
                    };
                    if status != StatusCode::OK {
                        if status != StatusCode::SERVICE_UNAVAILABLE {
                            unexpected(&world, status.as_u16(), "GET documents", &body.to_string());
                        }
                        break;
                    }
                    world.tally.ok.fetch_add(1, Ordering::Relaxed);
                    let items = body["items"].as_array().cloned().unwrap_or_default();
                    check_rows(&world, t, &[p], &items, true);
                    match body["next_after"].as_str() {
                        Some(next) => after = Some(next.to_owned()),
                        None => break,
                    }
                }
            }
            7 => {
                // Tenant-wide search as the second member (viewer or editor of project 0).
                let member = token(tenant.member);
                let Some((status, body)) = call(
                    &world,
                    &http,
                    &member,
                    Method::POST,
                    &format!("/t/{}/search", tenant.id),
                    Some(json!({"embedding": embedding(rng.below(384)), "k": 20})),
                )
                .await
                else {
                    continue;
                };
                match status {
                    StatusCode::OK => {
                        world.tally.ok.fetch_add(1, Ordering::Relaxed);
                        let hits = body.as_array().cloned().unwrap_or_default();
                        check_rows(&world, t, &[tenant.projects[0]], &hits, false);
                    }
                    StatusCode::SERVICE_UNAVAILABLE => {}
                    other => unexpected(&world, other.as_u16(), "POST search", &body.to_string()),
                }
            }
            8 => {
                // An acknowledged document must be readable.
                let target = {
                    let docs = tenant.docs.lock().unwrap();
                    docs.values()
                        .filter(|d| d.id.is_some())
                        .nth(rng.below(docs.len().max(1)) % docs.len().max(1))
                        .cloned()
                };
                let Some(doc) = target else { continue };
                let path = format!(
                    "/t/{}/projects/{}/documents/{}",
                    tenant.id,
                    doc.project,
                    doc.id.unwrap_or_default()
                );
                let Some((status, body)) =
                    call(&world, &http, &owner, Method::GET, &path, None).await
                else {
                    continue;
                };
                match status {
                    StatusCode::OK => {
                        world.tally.ok.fetch_add(1, Ordering::Relaxed);
                        check_rows(&world, t, &[doc.project], &[body], true);
                    }
                    StatusCode::NOT_FOUND => {
                        world.tally.lost_writes.fetch_add(1, Ordering::Relaxed);
                        unexpected(&world, 404, "LOST acknowledged document", &path);
                    }
                    StatusCode::SERVICE_UNAVAILABLE => {}
                    other => unexpected(&world, other.as_u16(), "GET document", &body.to_string()),
                }
            }
            _ => {
                // Membership change: the member becomes viewer or editor of project 0.
                let role = if rng.below(2) == 0 {
                    "viewer"
                } else {
                    "editor"
                };
                let path = format!(
                    "/t/{}/projects/{}/members/{}",
                    tenant.id, tenant.projects[0], tenant.member
                );
                let Some((status, body)) = call(
                    &world,
                    &http,
                    &owner,
                    Method::PUT,
                    &path,
                    Some(json!({ "role": role })),
                )
                .await
                else {
                    continue;
                };
                match status {
                    StatusCode::OK => {
                        world.tally.ok.fetch_add(1, Ordering::Relaxed);
                    }
                    StatusCode::SERVICE_UNAVAILABLE => {}
                    other => unexpected(&world, other.as_u16(), "PUT member", &body.to_string()),
                }
            }
        }
    }
}

/// Seconds until `GET documents` of tenant 0 answers 200 again (at most 60 s).
async fn recovery(world: &World, since: Instant) -> f64 {
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    let tenant = &world.tenants[0];
    let url = format!(
        "{}/t/{}/projects/{}/documents?limit=1",
        world.base, tenant.id, tenant.projects[0]
    );
    let owner = token(tenant.owner);
    while since.elapsed() < Duration::from_secs(60) {
        if let Ok(response) = http.get(&url).bearer_auth(&owner).send().await {
            if response.status() == StatusCode::OK {
                return since.elapsed().as_secs_f64();
            }
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    f64::INFINITY
}

const FAULTS: [&str; 6] = [
    "terminate",
    "proxy_cut",
    "proxy_stall",
    "statement_timeout",
    "pgbouncer_restart",
    "postgres_restart",
];

/// Runs the harness and returns what it found (the caller asserts).
pub async fn run(config: HarnessConfig) -> Report {
    let rss_start = rss_kib();
    let db = tenancy_tests::TestDb::fresh().await;
    let admin = db.admin_pool().clone();
    let admin_port = url::Url::parse(db.url()).unwrap().port().unwrap_or(5432);
    let mut tenants = Vec::new();
    for i in 0..config.tenants {
        let (id, p0, p1, owner, member) = (
            Uuid::new_v4(),
            Uuid::new_v4(),
            Uuid::new_v4(),
            Uuid::new_v4(),
            Uuid::new_v4(),
        );
        let mut tx = admin.begin().await.unwrap();
        sqlx::query("INSERT INTO tenants (id, name, slug) VALUES ($1, $2, $2)")
            .bind(id)
            .bind(format!("tenant-{i}"))
            .execute(&mut *tx)
            .await
            .unwrap();
        for (n, p) in [p0, p1].iter().enumerate() {
            sqlx::query("INSERT INTO projects (tenant_id, id, name, slug) VALUES ($1, $2, $3, $3)")
                .bind(id)
                .bind(p)
                .bind(format!("project-{n}"))
                .execute(&mut *tx)
                .await
                .unwrap();
            sqlx::query(
                "INSERT INTO user_project_roles (tenant_id, project_id, user_id, role) \
                 VALUES ($1, $2, $3, 'owner')",
            )
            .bind(id)
            .bind(p)
            .bind(owner)
            .execute(&mut *tx)
            .await
            .unwrap();
        }
        sqlx::query(
            "INSERT INTO user_project_roles (tenant_id, project_id, user_id, role) \
             VALUES ($1, $2, $3, 'viewer')",
        )
        .bind(id)
        .bind(p0)
        .bind(member)
        .execute(&mut *tx)
        .await
        .unwrap();
        tx.commit().await.unwrap();
        tenants.push(Tenant {
            id,
            projects: [p0, p1],
            owner,
            member,
            docs: Mutex::new(HashMap::new()),
        });
    }

    let bouncer = Bouncer::start(db.url());
    let proxy = Proxy::start(bouncer.port).await;
    let mut app_url = url::Url::parse(db.app_url()).unwrap();
    app_url.set_host(Some("127.0.0.1")).unwrap();
    app_url.set_port(Some(proxy.port)).unwrap();
    app_url.set_query(Some("tenancy_pooler=transaction"));
    let (pool, _) = tenancy_runtime::pool::connect_with(
        app_url.as_str(),
        &tenancy_runtime::pool::PoolConfig {
            max_connections: 6,
            acquire_timeout: Duration::from_secs(2),
            ..Default::default()
        },
    )
    .unwrap();
    let service = Service::start_opts(StartOptions {
        body_limit: 1 << 20,
        app_pool: Some(pool.clone()),
        db: Some(db),
        tenancy_config: tenancy_runtime::TenancyConfig {
            statement_timeout: Some(Duration::from_millis(1000)),
            ..tenancy_generated::config()
        },
        limits: rag_service::Limits {
            request_timeout: Some(Duration::from_secs(8)),
            ..rag_service::Limits::default()
        },
        ..StartOptions::default()
    })
    .await;
    let world = Arc::new(World {
        base: service.base.clone(),
        tenants,
        tally: Tally::default(),
        owners: Mutex::new(HashMap::new()),
    });

    let stop = Arc::new(AtomicBool::new(false));
    let workers: Vec<_> = (0..config.clients)
        .map(|i| {
            tokio::spawn(worker(
                Arc::clone(&world),
                0x5eed_0000 + i as u64,
                Arc::clone(&stop),
            ))
        })
        .collect();

    // Faults until the end, in turn.
    let started = Instant::now();
    let mut recovery_times: BTreeMap<&'static str, Vec<f64>> = BTreeMap::new();
    let mut rng = Rng(0xfa017);
    let mut next = 0;
    while started.elapsed() + config.fault_every < config.duration {
        tokio::time::sleep(config.fault_every).await;
        let kind = FAULTS[next % FAULTS.len()];
        next += 1;
        let since = match kind {
            "terminate" => {
                let pids: Vec<i32> = sqlx::query_scalar(
                    "SELECT pid FROM pg_stat_activity WHERE datname = current_database() \
                     AND usename = 'tenancy_app'",
                )
                .fetch_all(service.db.admin_pool())
                .await
                .unwrap_or_default();
                for pid in pids.iter().filter(|_| rng.below(2) == 0) {
                    let _ = sqlx::query("SELECT pg_terminate_backend($1)")
                        .bind(pid)
                        .execute(service.db.admin_pool())
                        .await;
                }
                Instant::now()
            }
            "proxy_cut" => {
                proxy.cut();
                Instant::now()
            }
            "proxy_stall" => {
                // Longer than the statement timeout (1 s, which the server cannot apply to
                // bytes it has not received), shorter than the request timeout (8 s).
                proxy.stall(Duration::from_millis(2500)).await;
                Instant::now()
            }
            "statement_timeout" => {
                let mut lock = service.db.admin_pool().begin().await.unwrap();
                sqlx::query("LOCK TABLE chunks IN ACCESS EXCLUSIVE MODE")
                    .execute(&mut *lock)
                    .await
                    .unwrap();
                tokio::time::sleep(Duration::from_millis(1500)).await;
                lock.rollback().await.unwrap();
                Instant::now()
            }
            "pgbouncer_restart" => {
                let dir = bouncer.dir.clone();
                tokio::task::spawn_blocking(move || restart_bouncer(&dir))
                    .await
                    .unwrap();
                Instant::now()
            }
            _ => {
                let ok = tokio::task::spawn_blocking(move || {
                    std::process::Command::new("bash")
                        .arg(tenancy_tests::repo_root().join("scripts/pg-restart"))
                        .arg(admin_port.to_string())
                        .status()
                        .map(|s| s.success())
                        .unwrap_or(false)
                })
                .await
                .unwrap();
                assert!(
                    ok,
                    "scripts/pg-restart failed (is the URL this checkout's throwaway cluster?)"
                );
                // The admin pool's connections died with the server.
                Instant::now()
            }
        };
        let took = recovery(&world, since).await;
        recovery_times.entry(kind).or_default().push(took);
    }
    stop.store(true, Ordering::Relaxed);
    for worker in workers {
        worker.await.unwrap();
    }

    // Final checks against the database (as the superuser).
    let admin = service.db.admin_pool();
    let mut report = Report {
        recovery: recovery_times,
        ..Report::default()
    };
    let mut lost = world.tally.lost_writes.load(Ordering::Relaxed);
    let mut partial = 0;
    let mut phantom = 0;
    for tenant in &world.tenants {
        let stored: Vec<(Uuid, Uuid, String, i64)> = sqlx::query_as(
            "SELECT d.id, d.project_id, d.content_hash, \
             (SELECT count(*) FROM chunks c WHERE c.tenant_id = d.tenant_id AND c.document_id = d.id) \
             FROM documents d WHERE d.tenant_id = $1",
        )
        .bind(tenant.id)
        .fetch_all(admin)
        .await
        .unwrap();
        let stored: HashMap<String, (Uuid, Uuid, i64)> = stored
            .into_iter()
            .map(|(id, project, hash, chunks)| (hash, (id, project, chunks)))
            .collect();
        let docs = tenant.docs.lock().unwrap();
        for (hash, (_, project, _)) in &stored {
            match docs.get(hash) {
                Some(doc) if doc.project == *project => {}
                _ => phantom += 1,
            }
        }
        for (hash, doc) in docs.iter() {
            let found = stored.get(hash);
            if let Some(id) = doc.id {
                report.acknowledged_documents += 1;
                if found.map(|f| f.0) != Some(id) {
                    lost += 1;
                    continue;
                }
            }
            let chunks = found.map_or(0, |f| f.2);
            match doc.ingest {
                Some((n, true)) => {
                    report.acknowledged_ingests += 1;
                    if chunks != n as i64 {
                        lost += 1;
                    }
                }
                Some((n, false)) => {
                    if chunks != 0 && chunks != n as i64 {
                        partial += 1;
                    }
                }
                None => {
                    if chunks != 0 {
                        phantom += 1;
                    }
                }
            }
        }
    }
    // No pooled server connection carries a context: every connection of the service's pool
    // at once, each asking in a transaction what it sees without a context of its own.
    let mut held = Vec::new();
    for _ in 0..6 {
        if let Ok(Ok(conn)) = tokio::time::timeout(Duration::from_secs(5), pool.acquire()).await {
            held.push(conn);
        }
    }
    for conn in &mut held {
        let mut tx = sqlx::Connection::begin(&mut **conn).await.unwrap();
        let (visible, context): (i64, Option<String>) = sqlx::query_as(
            "SELECT (SELECT count(*) FROM documents), current_setting('tenancy.context', true)",
        )
        .fetch_one(&mut *tx)
        .await
        .unwrap();
        tx.rollback().await.unwrap();
        if visible != 0 || context.is_some_and(|c| !c.is_empty()) {
            report.leaked_contexts += 1;
        }
    }
    drop(held);
    let metrics = service.metrics().await;
    report.metrics_503 = metrics
        .lines()
        .filter(|l| l.starts_with("tenancy_http_errors_total{") && l.contains("status=\"503\""))
        .filter_map(|l| l.rsplit(' ').next().and_then(|v| v.parse::<f64>().ok()))
        .sum();
    report.app_backends_end = sqlx::query_scalar(
        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND usename = 'tenancy_app'",
    )
    .fetch_one(admin)
    .await
    .unwrap_or(-1);
    let tally = &world.tally;
    report.requests = tally.requests.load(Ordering::Relaxed);
    report.ok = tally.ok.load(Ordering::Relaxed);
    report.unavailable = tally.unavailable.load(Ordering::Relaxed);
    report.timeouts = tally.timeouts.load(Ordering::Relaxed);
    report.unexpected_count = tally.unexpected_count.load(Ordering::Relaxed);
    report.unexpected = tally.unexpected.lock().unwrap().clone();
    report.rows_checked = tally.rows_checked.load(Ordering::Relaxed);
    report.wrong_tenant_rows = tally.wrong_tenant_rows.load(Ordering::Relaxed);
    report.latencies_ms = tally.latencies_ms.lock().unwrap().clone();
    report.lost_writes = lost;
    report.partial_ingests = partial;
    report.phantom_documents = phantom;
    report.rss_kib = (rss_start, rss_kib());
    drop(service);
    drop(proxy);
    drop(bouncer);
    report
}
