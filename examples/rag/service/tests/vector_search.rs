//! The search endpoints go through the vector gateway: the service's own background
//! maintenance promotes a big tenant to its own HNSW index, after which its searches take the
//! tenant-HNSW route (the `x-search-route` header, which only the gateway's answer carries) and
//! still return k hits of the caller's scope, nearest first, each the row a superuser reads
//! (ordinal, content, distance), with recall >= 0.9 against the superuser's exact top-k (HNSW
//! is approximate); a tiny tenant beside it and a small project inside it stay on the exact
//! route and return exactly the superuser's top-k.
//!
//! On a few hundred rows the planner may answer the tenant-HNSW query with a sequential scan
//! (it costs the index by size; `tests/vector_live.rs` checks the plan on 20,000 rows), so this
//! test checks the gateway's answers, not the index's scan counter.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use common::*;
use pgvector::Vector;
use rag_service::api::SEARCH_ROUTE_HEADER;
use rag_service::demo::ids::*;
use reqwest::StatusCode;
use serde_json::{json, Value};
use tenancy_runtime::vector::VectorConfig;
use uuid::Uuid;

const DIMS: usize = 384;

/// Chunks of Acme/handbook.
const HANDBOOK: usize = 300;

/// A deterministic pseudo-random vector (splitmix64).
fn pseudo_vector(seed: u64) -> Vec<f32> {
    let mut state = seed;
    (0..DIMS)
        .map(|_| {
            state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
            let mut z = state;
            z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            z ^= z >> 31;
            (z as f64 / u64::MAX as f64 * 2.0 - 1.0) as f32
        })
        .collect()
}

/// `base + weight * pseudo_vector(seed)`.
fn near(base: &[f32], weight: f32, seed: u64) -> Vec<f32> {
    base.iter()
        .zip(pseudo_vector(seed))
        .map(|(b, n)| b + weight * n)
        .collect()
}

/// One hit as the API returns it and as the oracle computes it.
#[derive(Debug, PartialEq)]
struct Hit {
    chunk_id: Uuid,
    project_id: Uuid,
    document_id: Uuid,
    ordinal: i32,
    content: String,
    distance: f64,
}

fn hits_of(body: &Value) -> Vec<Hit> {
    body.as_array()
        .unwrap_or_else(|| panic!("not an array: {body}"))
        .iter()
        .map(|h| Hit {
            chunk_id: h["chunk_id"].as_str().unwrap().parse().unwrap(),
            project_id: h["project_id"].as_str().unwrap().parse().unwrap(),
            document_id: h["document_id"].as_str().unwrap().parse().unwrap(),
            ordinal: i32::try_from(h["ordinal"].as_i64().unwrap()).unwrap(),
            content: h["content"].as_str().unwrap().to_owned(),
            distance: h["distance"].as_f64().unwrap(),
        })
        .collect()
}

/// Inserts one chunk per embedding into `(tenant, project, document)` as the superuser, with
/// ordinals 0.. and content `<label> <ordinal>`.
async fn insert_chunks(
    service: &Service,
    (tenant, project, document): (Uuid, Uuid, Uuid),
    label: &str,
    embeddings: Vec<Vec<f32>>,
) {
    let count = embeddings.len() as i32;
    let ordinals: Vec<i32> = (0..count).collect();
    let contents: Vec<String> = ordinals.iter().map(|i| format!("{label} {i}")).collect();
    let embeddings: Vec<Vector> = embeddings.into_iter().map(Vector::from).collect();
    sqlx::query(
        "INSERT INTO chunks (tenant_id, project_id, document_id, ordinal, content, token_count, \
         embedding) SELECT $1, $2, $3, u.ordinal, u.content, 3, u.embedding \
         FROM unnest($4::int[], $5::text[], $6::vector[]) AS u(ordinal, content, embedding)",
    )
    .bind(tenant)
    .bind(project)
    .bind(document)
    .bind(ordinals)
    .bind(contents)
    .bind(embeddings)
    .execute(service.db.admin_pool())
    .await
    .unwrap();
}

/// The seeded document of a project, or a new one.
async fn document_of(service: &Service, tenant: Uuid, project: Uuid) -> Uuid {
    let existing: Option<Uuid> =
        sqlx::query_scalar("SELECT id FROM documents WHERE tenant_id = $1 AND project_id = $2")
            .bind(tenant)
            .bind(project)
            .fetch_optional(service.db.admin_pool())
            .await
            .unwrap();
    if let Some(id) = existing {
        return id;
    }
    sqlx::query_scalar(
        "INSERT INTO documents (tenant_id, project_id, title, content_hash, created_by) \
         VALUES ($1, $2, 'vector test', $3, $4) RETURNING id",
    )
    .bind(tenant)
    .bind(project)
    .bind(format!("vector-{project}"))
    .bind(ALICE)
    .fetch_one(service.db.admin_pool())
    .await
    .unwrap()
}

/// The exact top-k of `projects`, computed by the superuser with a sequential scan (no index
/// may answer), ties by project id then chunk id.
async fn oracle(
    service: &Service,
    tenant: Uuid,
    projects: &[Uuid],
    query: &[f32],
    k: i64,
) -> Vec<Hit> {
    let mut tx = service.db.admin_pool().begin().await.unwrap();
    sqlx::query(
        "SELECT set_config('enable_indexscan', 'off', true), \
         set_config('enable_bitmapscan', 'off', true)",
    )
    .execute(&mut *tx)
    .await
    .unwrap();
    let rows: Vec<(Uuid, Uuid, Uuid, i32, String, f64)> = sqlx::query_as(
        "SELECT id, project_id, document_id, ordinal, content, embedding <=> $3 FROM chunks \
         WHERE tenant_id = $1 AND project_id = ANY($2) AND embedding IS NOT NULL \
         ORDER BY embedding <=> $3, project_id, id LIMIT $4",
    )
    .bind(tenant)
    .bind(projects)
    .bind(Vector::from(query.to_vec()))
    .bind(k)
    .fetch_all(&mut *tx)
    .await
    .unwrap();
    tx.commit().await.unwrap();
    rows.into_iter()
        .map(
            |(chunk_id, project_id, document_id, ordinal, content, distance)| Hit {
                chunk_id,
                project_id,
                document_id,
                ordinal,
                content,
                distance,
            },
        )
        .collect()
}

/// POSTs a search as `user`; returns the `x-search-route` header and the hits.
async fn search(
    service: &Service,
    user: Uuid,
    path: &str,
    query: &[f32],
    k: u32,
) -> (String, Vec<Hit>) {
    let response = service
        .client
        .post(format!("{}{path}", service.base))
        .bearer_auth(service.token(user))
        .json(&json!({"embedding": query, "k": k}))
        .send()
        .await
        .unwrap();
    let status = response.status();
    let route = response
        .headers()
        .get(SEARCH_ROUTE_HEADER)
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    let body: Value = response.json().await.unwrap();
    assert_eq!(status, StatusCode::OK, "{body}");
    (route, hits_of(&body))
}

/// Exact route: the API's hits are the oracle's, the same rows in the same order with the same
/// ordinal, content and distance (both computed by pgvector's `<=>`).
fn assert_exact(got: &[Hit], want: &[Hit], what: &str) {
    let ids = |hits: &[Hit]| hits.iter().map(|h| h.chunk_id).collect::<Vec<_>>();
    assert_eq!(ids(got), ids(want), "{what}: not the exact top-k");
    for (g, w) in got.iter().zip(want) {
        assert_eq!(
            (g.project_id, g.document_id, g.ordinal, g.content.as_str()),
            (w.project_id, w.document_id, w.ordinal, w.content.as_str()),
            "{what}"
        );
        assert!(
            (g.distance - w.distance).abs() < 1e-9,
            "{what}: {g:?} vs {w:?}"
        );
    }
}

/// HNSW route: `k` distinct hits, nearest first, each a row of the scope exactly as the
/// superuser reads it (`scope` holds every row of the caller's projects, nearest first);
/// returns how many of the exact top-k were found.
fn assert_approximate(got: &[Hit], scope: &[Hit], k: usize, what: &str) -> usize {
    assert_eq!(got.len(), k, "{what}: k hits");
    let rows: HashMap<Uuid, &Hit> = scope.iter().map(|h| (h.chunk_id, h)).collect();
    let distinct: HashSet<Uuid> = got.iter().map(|h| h.chunk_id).collect();
    assert_eq!(distinct.len(), k, "{what}: repeated hits");
    for hit in got {
        let row = rows
            .get(&hit.chunk_id)
            .unwrap_or_else(|| panic!("{what}: {hit:?} is not a row of the caller's scope"));
        assert_eq!(
            (
                hit.project_id,
                hit.document_id,
                hit.ordinal,
                hit.content.as_str()
            ),
            (
                row.project_id,
                row.document_id,
                row.ordinal,
                row.content.as_str()
            ),
            "{what}"
        );
        assert!(
            (hit.distance - row.distance).abs() < 1e-9,
            "{what}: {hit:?} vs {row:?}"
        );
    }
    assert!(
        got.windows(2).all(|p| p[0].distance <= p[1].distance),
        "{what}: not nearest first"
    );
    let top: HashSet<Uuid> = scope.iter().take(k).map(|h| h.chunk_id).collect();
    let found = got.iter().filter(|h| top.contains(&h.chunk_id)).count();
    assert!(found as f64 >= 0.8 * k as f64, "{what}: recall {found}/{k}");
    found
}

async fn tier_of(service: &Service, tenant: Uuid) -> Option<(String, i64)> {
    sqlx::query_as(
        "SELECT tier, row_count FROM tenancy.vector_tiers \
         WHERE table_name = 'public.chunks' AND tenant_id = $1",
    )
    .bind(tenant)
    .fetch_optional(service.db.admin_pool())
    .await
    .unwrap()
}

#[tokio::test]
async fn search_goes_through_the_gateway_before_and_after_the_service_promotes_a_tenant() {
    let config = VectorConfig {
        promote_at: 200,
        demote_below: Some(100),
        exact_scope_max: 50,
        ..VectorConfig::default()
    };
    let service = Service::start_with(64 * 1024, config, Some(Duration::from_millis(200))).await;
    let handbook = document_of(&service, ACME, ACME_HANDBOOK).await;
    let support = document_of(&service, ACME, ACME_SUPPORT).await;
    let research = document_of(&service, GLOBEX, GLOBEX_RESEARCH).await;

    let query = pseudo_vector(1);
    // Acme/handbook: HANDBOOK chunks around the query at various distances.
    let handbook_rows: Vec<Vec<f32>> = (0..HANDBOOK as u64)
        .map(|i| near(&query, 0.3 + (i % 7) as f32 * 0.2, 100 + i))
        .collect();
    insert_chunks(
        &service,
        (ACME, ACME_HANDBOOK, handbook),
        "handbook",
        handbook_rows,
    )
    .await;
    // Acme/support: 30 chunks nearer than any of handbook's (Bob may not read them).
    let support_rows: Vec<Vec<f32>> = (0..30u64)
        .map(|i| near(&query, 0.05 + i as f32 * 0.005, 500 + i))
        .collect();
    insert_chunks(
        &service,
        (ACME, ACME_SUPPORT, support),
        "support",
        support_rows,
    )
    .await;
    // Globex (tiny): 15 chunks, one of them the query itself.
    let mut globex_rows: Vec<Vec<f32>> = (0..14u64).map(|i| near(&query, 0.5, 900 + i)).collect();
    globex_rows.push(query.clone());
    insert_chunks(
        &service,
        (GLOBEX, GLOBEX_RESEARCH, research),
        "globex",
        globex_rows,
    )
    .await;

    // Before promotion: the exact route, already the oracle's rows (unless the background
    // maintenance was quicker than this request).
    let (route, hits) = search(&service, BOB, &format!("/t/{ACME}/search"), &query, 10).await;
    let bob_scope = oracle(&service, ACME, &[ACME_HANDBOOK], &query, 100_000).await;
    assert_eq!(bob_scope.len(), HANDBOOK);
    if route == "exact" {
        assert_exact(
            &hits,
            &bob_scope[..10],
            "Bob, tenant-wide, before promotion",
        );
    } else {
        assert_eq!(route, "tenant_hnsw");
        assert_approximate(&hits, &bob_scope, 10, "Bob, tenant-wide, before promotion");
    }

    // The service's own maintenance loop counts the chunks and promotes Acme (330 >= 200).
    let started = Instant::now();
    loop {
        if tier_of(&service, ACME).await == Some(("hnsw".to_owned(), HANDBOOK as i64 + 30)) {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "Acme was not promoted: {:?}",
            tier_of(&service, ACME).await
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        tier_of(&service, GLOBEX).await,
        Some(("exact".to_owned(), 15))
    );

    // Bob (viewer of handbook only), tenant-wide and in the project: the tenant-HNSW route,
    // k rows of handbook only (none of support's nearer chunks nor Globex's), as the
    // superuser reads them, nearly all of the exact top-k.
    let (mut found, mut wanted) = (0usize, 0usize);
    for (path, k) in [
        (format!("/t/{ACME}/search"), 10u32),
        (format!("{}/search", acme(ACME_HANDBOOK)), 20),
    ] {
        for (n, q) in [query.clone(), near(&query, 0.4, 7), near(&query, 0.8, 8)]
            .iter()
            .enumerate()
        {
            let (route, hits) = search(&service, BOB, &path, q, k).await;
            let what = format!("Bob {path} query {n}");
            assert_eq!(route, "tenant_hnsw", "{what}");
            assert!(hits.iter().all(|h| h.project_id == ACME_HANDBOOK), "{what}");
            let scope = oracle(&service, ACME, &[ACME_HANDBOOK], q, 100_000).await;
            found += assert_approximate(&hits, &scope, k as usize, &what);
            wanted += k as usize;
        }
    }

    // Alice reads handbook and support: one global top-k over both projects.
    let (route, hits) = search(&service, ALICE, &format!("/t/{ACME}/search"), &query, 40).await;
    assert_eq!(route, "tenant_hnsw");
    let alice_scope = oracle(
        &service,
        ACME,
        &[ACME_HANDBOOK, ACME_SUPPORT],
        &query,
        100_000,
    )
    .await;
    assert_eq!(alice_scope.len(), HANDBOOK + 30);
    found += assert_approximate(&hits, &alice_scope, 40, "Alice, tenant-wide");
    wanted += 40;
    let from = |project: Uuid| hits.iter().filter(|h| h.project_id == project).count();
    // Support holds only 30 chunks, and the exact top-40 holds all of them.
    assert!(alice_scope[..30]
        .iter()
        .all(|h| h.project_id == ACME_SUPPORT));
    assert!(from(ACME_HANDBOOK) >= 10);
    assert!(from(ACME_SUPPORT) >= 1);
    let recall = found as f64 / wanted as f64;
    assert!(recall >= 0.9, "recall of the tenant-HNSW route {recall}");
    println!("tenant-HNSW route: recall {found}/{wanted} = {recall:.3}");

    // A small project inside the promoted tenant (30 chunks <= exact_scope_max) stays exact.
    let (route, hits) = search(
        &service,
        ALICE,
        &format!("{}/search", acme(ACME_SUPPORT)),
        &query,
        10,
    )
    .await;
    assert_eq!(route, "exact");
    let want = oracle(&service, ACME, &[ACME_SUPPORT], &query, 10).await;
    assert_exact(&hits, &want, "Alice, support");
    assert_eq!(hits.len(), 10);
    assert_eq!(
        (hits[0].ordinal, hits[0].content.as_str()),
        (0, "support 0")
    );

    // The tiny tenant beside it: exact, k hits, its own rows only; all 15 when k is larger.
    let (route, hits) = search(&service, CAROL, &format!("/t/{GLOBEX}/search"), &query, 10).await;
    assert_eq!(route, "exact");
    assert_eq!(hits.len(), 10);
    let want = oracle(&service, GLOBEX, &[GLOBEX_RESEARCH], &query, 10).await;
    assert_exact(&hits, &want, "Carol");
    assert_eq!(
        (hits[0].ordinal, hits[0].content.as_str()),
        (14, "globex 14")
    );
    assert!(hits[0].distance.abs() < 1e-6);
    let (_, hits) = search(
        &service,
        CAROL,
        &format!("{}/search", globex(GLOBEX_RESEARCH)),
        &query,
        50,
    )
    .await;
    assert_eq!(hits.len(), 15);
    assert!(hits.iter().all(|h| h.project_id == GLOBEX_RESEARCH));
}
