//! The vector gateway against a real PostgreSQL 18 + pgvector: every search stays in its scope
//! and returns k rows whenever the scope holds k, for a tiny tenant beside a huge one; the huge
//! one is promoted to its own HNSW index online, the route switches only when the index is valid,
//! and tiers do not flap near the threshold. Everything goes through the descriptor the generator
//! emits (`Chunks::EMBEDDING_VECTORS`); a changed distance rebuilds the index with its operator
//! class, an old one-table catalog is upgraded, and the catalog audits clean. Fixtures go through
//! the admin pool (or the generated repository); the gateway always runs on the application
//! role's pool, under row-level security.

use std::collections::HashSet;
use std::time::Duration;

use pgvector::Vector;
use tenancy_generated::roles::{Editor, Viewer};
use tenancy_generated::{Chunk, Chunks, NewChunk};
use tenancy_runtime::vector::{
    Route, SearchRequest, Tier, VectorConfig, VectorGateway, VectorMaintenance, VectorSpec,
    VectorUpdate,
};
use tenancy_runtime::{Error, ProjectId, Scope, ScopedTx, Tenancy, TenantId, UserId};
use tenancy_tests::TestDb;
use uuid::Uuid;

const DIMS: usize = 384;

type Gateway = VectorGateway<Viewer, Editor, Uuid>;

/// The generated descriptor of `chunks.embedding` (names, 384 dimensions, cosine).
const SPEC: &VectorSpec = &Chunks::EMBEDDING_VECTORS.spec;

fn gateway(config: VectorConfig) -> Gateway {
    VectorGateway::new(Chunks::EMBEDDING_VECTORS, config)
}

/// A chunk of `document` with its vector, for `Chunks::insert_many`.
fn new_chunk(id: Uuid, document: Uuid, ordinal: i32, content: &str, v: Vector) -> NewChunk {
    let mut chunk = NewChunk::new(document, ordinal, content.to_owned(), 2);
    chunk.id = Some(id);
    chunk.embedding = Some(v);
    chunk
}

/// One tenant with its projects (one document each) and a user who is editor everywhere.
struct TenantFixture {
    tenant: TenantId,
    projects: Vec<ProjectId>,
    documents: Vec<Uuid>,
    user: UserId,
}

async fn add_tenant(db: &TestDb, slug: &str, projects: usize) -> TenantFixture {
    add_tenant_with_roles(db, slug, &vec!["editor"; projects]).await
}

/// A tenant whose user holds `roles[i]` in project i ("none" = no membership).
async fn add_tenant_with_roles(db: &TestDb, slug: &str, roles: &[&str]) -> TenantFixture {
    let admin = db.admin_pool();
    let fixture = TenantFixture {
        tenant: TenantId::new(Uuid::new_v4()),
        projects: roles
            .iter()
            .map(|_| ProjectId::new(Uuid::new_v4()))
            .collect(),
        documents: roles.iter().map(|_| Uuid::new_v4()).collect(),
        user: UserId::new(Uuid::new_v4()),
    };
    sqlx::query("INSERT INTO tenants (id, name, slug) VALUES ($1, $2, $2)")
        .bind(fixture.tenant.as_uuid())
        .bind(slug)
        .execute(admin)
        .await
        .unwrap();
    for (i, role) in roles.iter().enumerate() {
        let project = fixture.projects[i].as_uuid();
        sqlx::query("INSERT INTO projects (tenant_id, id, name, slug) VALUES ($1, $2, $3, $3)")
            .bind(fixture.tenant.as_uuid())
            .bind(project)
            .bind(format!("{slug}-p{i}"))
            .execute(admin)
            .await
            .unwrap();
        if *role != "none" {
            sqlx::query(
                "INSERT INTO user_project_roles (tenant_id, project_id, user_id, role) \
                 VALUES ($1, $2, $3, $4::tenancy.project_role)",
            )
            .bind(fixture.tenant.as_uuid())
            .bind(project)
            .bind(fixture.user.as_uuid())
            .bind(role)
            .execute(admin)
            .await
            .unwrap();
        }
        sqlx::query(
            "INSERT INTO documents (tenant_id, project_id, id, title, content_hash, created_by) \
             VALUES ($1, $2, $3, 'doc', $3::text, $4)",
        )
        .bind(fixture.tenant.as_uuid())
        .bind(project)
        .bind(fixture.documents[i])
        .bind(fixture.user.as_uuid())
        .execute(admin)
        .await
        .unwrap();
    }
    fixture
}

/// Inserts `count` chunks into project `index` of `fixture` server-side (admin), clustered
/// around 20 deterministic centres, with ordinals starting at `first_ordinal` (content
/// `chunk <ordinal>`).
async fn bulk_chunks(
    db: &TestDb,
    fixture: &TenantFixture,
    index: usize,
    first_ordinal: i32,
    count: i32,
) {
    sqlx::query(
        "INSERT INTO chunks (tenant_id, project_id, document_id, ordinal, content, token_count, embedding) \
         SELECT $1, $2, $3, g, 'chunk ' || g, 1, \
           (SELECT array_agg(sin((g % 20) * 12.9898 + j * 78.233) + (random() - 0.5) ORDER BY j) \
            FROM generate_series(1, 384) AS j)::vector \
         FROM generate_series($4::int, $4::int + $5::int - 1) AS g",
    )
    .bind(fixture.tenant.as_uuid())
    .bind(fixture.projects[index].as_uuid())
    .bind(fixture.documents[index])
    .bind(first_ordinal)
    .bind(count)
    .execute(db.admin_pool())
    .await
    .unwrap();
}

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

fn cosine_distance(a: &[f32], b: &[f32]) -> f64 {
    let dot: f64 = a
        .iter()
        .zip(b)
        .map(|(x, y)| f64::from(*x) * f64::from(*y))
        .sum();
    let na: f64 = a.iter().map(|x| f64::from(*x).powi(2)).sum::<f64>().sqrt();
    let nb: f64 = b.iter().map(|x| f64::from(*x).powi(2)).sum::<f64>().sqrt();
    1.0 - dot / (na * nb)
}

fn small_config() -> VectorConfig {
    VectorConfig {
        promote_at: 200,
        demote_below: Some(100),
        exact_scope_max: 50,
        ..VectorConfig::default()
    }
}

async fn maintenance(db: &TestDb, config: VectorConfig) -> VectorMaintenance {
    let m = VectorMaintenance::new(db.admin_pool().clone(), "vector tests", config).unwrap();
    m.install().await.unwrap();
    m
}

/// Every hit belongs to the scope's tenant and projects, and carries its row (checked
/// against the database too).
async fn assert_in_scope<S: Scope>(
    db: &TestDb,
    results: &tenancy_runtime::vector::SearchResults<S, Uuid, Chunk>,
) {
    let projects: Vec<Uuid> = results
        .scope
        .project_ids()
        .iter()
        .map(|p| p.as_uuid())
        .collect();
    for hit in &results.hits {
        assert!(projects.contains(&hit.project_id.as_uuid()), "{hit:?}");
        let (tenant, document, ordinal, content): (Uuid, Uuid, i32, String) = sqlx::query_as(
            "SELECT tenant_id, document_id, ordinal, content FROM chunks \
             WHERE project_id = $1 AND id = $2",
        )
        .bind(hit.project_id.as_uuid())
        .bind(hit.key)
        .fetch_one(db.admin_pool())
        .await
        .unwrap();
        assert_eq!(tenant, results.tenant_id().as_uuid());
        assert_eq!(
            (hit.row.id, hit.row.project_id),
            (hit.key, hit.project_id.as_uuid())
        );
        assert_eq!(
            (document, ordinal, content.as_str()),
            (
                hit.row.document_id,
                hit.row.ordinal,
                hit.row.content.as_str()
            ),
            "{hit:?}"
        );
    }
    let sorted = results
        .hits
        .windows(2)
        .all(|w| w[0].distance <= w[1].distance);
    assert!(sorted, "hits not sorted by distance");
}

/// Exact top-k ids of a tenant, computed by the superuser with a sequential scan.
async fn truth(db: &TestDb, tenant: TenantId, query: &Vector, k: i64) -> Vec<Uuid> {
    let mut tx = db.admin_pool().begin().await.unwrap();
    sqlx::query("SELECT set_config('enable_indexscan', 'off', true), set_config('enable_bitmapscan', 'off', true)")
        .execute(&mut *tx)
        .await
        .unwrap();
    sqlx::query_scalar(
        "SELECT id FROM chunks WHERE tenant_id = $1 AND embedding IS NOT NULL \
         ORDER BY embedding <=> $2, project_id, id LIMIT $3",
    )
    .bind(tenant.as_uuid())
    .bind(query)
    .bind(k)
    .fetch_all(&mut *tx)
    .await
    .unwrap()
}

/// Queries near a tenant's own data: stored embeddings with a small perturbation.
async fn queries_near(db: &TestDb, tenant: TenantId, n: i64) -> Vec<Vector> {
    let stored: Vec<Vector> = sqlx::query_scalar(
        "SELECT embedding FROM chunks WHERE tenant_id = $1 ORDER BY ordinal LIMIT $2",
    )
    .bind(tenant.as_uuid())
    .bind(n)
    .fetch_all(db.admin_pool())
    .await
    .unwrap();
    stored
        .into_iter()
        .enumerate()
        .map(|(i, v)| {
            let noise = pseudo_vector(i as u64 + 7);
            Vector::from(
                v.to_vec()
                    .iter()
                    .zip(noise)
                    .map(|(x, n)| x + 0.2 * n)
                    .collect::<Vec<f32>>(),
            )
        })
        .collect()
}

async fn editor_tx(
    tenancy: &Tenancy,
    f: &TenantFixture,
    index: usize,
) -> ScopedTx<tenancy_runtime::ProjectScope<Editor>> {
    let ctx = tenancy.authorize(f.user, f.tenant).await.unwrap();
    let scope = ctx
        .project(f.projects[index])
        .unwrap()
        .require::<Editor>()
        .unwrap();
    tenancy.begin(&scope).await.unwrap()
}

async fn viewer_tx_all(
    tenancy: &Tenancy,
    f: &TenantFixture,
) -> ScopedTx<tenancy_runtime::ProjectsScope<Viewer>> {
    let ctx = tenancy.authorize(f.user, f.tenant).await.unwrap();
    let scope = ctx.all_projects().with_at_least::<Viewer>();
    tenancy.begin(&scope).await.unwrap()
}

#[tokio::test]
async fn tiny_tenant_beside_a_huge_one_gets_k_rows_and_the_huge_one_keeps_recall() {
    let db = TestDb::fresh().await;
    let huge = add_tenant(&db, "huge", 1).await;
    let tiny = add_tenant(&db, "tiny", 1).await;
    bulk_chunks(&db, &huge, 0, 1, 20_000).await;
    bulk_chunks(&db, &tiny, 0, 1, 30).await;
    // The trap of NOTES section 4: one shared HNSW index over everyone. The planner would pick
    // it for a filtered ORDER BY ... LIMIT and return a short result for the tiny tenant.
    sqlx::raw_sql(
        "CREATE INDEX chunks_shared_hnsw ON chunks USING hnsw (embedding vector_cosine_ops)",
    )
    .execute(db.admin_pool())
    .await
    .unwrap();
    sqlx::raw_sql("ANALYZE chunks")
        .execute(db.admin_pool())
        .await
        .unwrap();

    let config = VectorConfig {
        promote_at: 10_000,
        demote_below: Some(5_000),
        exact_scope_max: 1_000,
        ..VectorConfig::default()
    };
    let m = maintenance(&db, config.clone()).await;
    let report = m.refresh(SPEC).await.unwrap();
    assert_eq!(report.promoted.len(), 1, "{report:?}");
    assert_eq!(report.promoted[0].0, huge.tenant);
    let huge_tier = report
        .tenants
        .iter()
        .find(|t| t.tenant_id == huge.tenant)
        .unwrap();
    assert_eq!((huge_tier.tier, huge_tier.row_count), (Tier::Hnsw, 20_000));
    let tiny_tier = report
        .tenants
        .iter()
        .find(|t| t.tenant_id == tiny.tenant)
        .unwrap();
    assert_eq!((tiny_tier.tier, tiny_tier.row_count), (Tier::Exact, 30));

    let tenancy = Tenancy::new(db.app_pool().clone());
    let gateway = gateway(config.clone());

    // The tiny tenant: exact route through the btree, never the shared HNSW; k rows, in scope.
    let tiny_queries = queries_near(&db, huge.tenant, 5).await; // near the huge tenant's data
    for (k, query) in [
        (10u32, &tiny_queries[0]),
        (30, &tiny_queries[1]),
        (10, &tiny_queries[2]),
    ] {
        let mut tx = viewer_tx_all(&tenancy, &tiny).await;
        let request = SearchRequest::new(query.clone(), k);
        let (route, plan) = gateway.explain_search(&mut tx, &request).await.unwrap();
        assert_eq!(route, Route::Exact);
        // A btree led by (tenant_id, project_id) finds the scope's rows.
        assert!(plan.contains("Index Cond: ((tenant_id = "), "{plan}");
        assert!(!plan.contains("hnsw"), "{plan}");
        let results = gateway.search_rows(&mut tx, &request).await.unwrap();
        assert_eq!(results.route, Route::Exact);
        assert_eq!(results.hits.len(), k as usize);
        assert_in_scope(&db, &results).await;
        let expected = truth(&db, tiny.tenant, query, i64::from(k)).await;
        let got: Vec<Uuid> = results.hits.iter().map(|h| h.key).collect();
        assert_eq!(got, expected);
        tx.commit().await.unwrap();
    }
    // More than the scope holds: all 30, not an error.
    let mut tx = viewer_tx_all(&tenancy, &tiny).await;
    let all = gateway
        .search(&mut tx, &SearchRequest::new(tiny_queries[3].clone(), 50))
        .await
        .unwrap();
    assert_eq!(all.hits.len(), 30);
    // The catalog is row-level secured: the tiny tenant sees only its own row.
    let visible: Vec<Uuid> = sqlx::query_scalar("SELECT tenant_id FROM tenancy.vector_tiers")
        .fetch_all(tx.connection())
        .await
        .unwrap();
    assert_eq!(visible, vec![tiny.tenant.as_uuid()]);
    tx.commit().await.unwrap();

    // The huge tenant: its own partial index, recall against exact search >= 0.9.
    let queries = queries_near(&db, huge.tenant, 20).await;
    let mut found = 0usize;
    for query in &queries {
        let mut tx = viewer_tx_all(&tenancy, &huge).await;
        let request = SearchRequest::new(query.clone(), 10);
        let (route, plan) = gateway.explain_search(&mut tx, &request).await.unwrap();
        assert_eq!(route, Route::TenantHnsw);
        let index = index_name_of(&m, huge.tenant).await.unwrap();
        let index = index.strip_prefix("public.").unwrap();
        assert!(plan.contains(index), "{plan}");
        let results = gateway.search_rows(&mut tx, &request).await.unwrap();
        assert_eq!(results.route, Route::TenantHnsw);
        assert_eq!(results.hits.len(), 10);
        // The HNSW statement ran with sorts disabled; the transaction has them back.
        let sort: String = sqlx::query_scalar("SELECT current_setting('enable_sort')")
            .fetch_one(tx.connection())
            .await
            .unwrap();
        assert_eq!(sort, "on");
        assert_in_scope(&db, &results).await;
        let expected: HashSet<Uuid> = truth(&db, huge.tenant, query, 10)
            .await
            .into_iter()
            .collect();
        found += results
            .hits
            .iter()
            .filter(|h| expected.contains(&h.key))
            .count();
        tx.commit().await.unwrap();
    }
    let recall = found as f64 / (queries.len() * 10) as f64;
    assert!(recall >= 0.9, "recall@10 of the huge tenant {recall}");

    // Queries far from every stored vector, halfway between two of the huge tenant's clusters:
    // the true neighbours lie in both, and a search stranded in one cluster of the graph finds
    // half of them. The defaults (a denser graph, the re-check of far answers) must find
    // nearly all of them.
    let far = queries_between_clusters(20);
    let mut found = 0usize;
    for query in &far {
        let mut tx = viewer_tx_all(&tenancy, &huge).await;
        let results = gateway
            .search(&mut tx, &SearchRequest::new(query.clone(), 10))
            .await
            .unwrap();
        assert!(
            matches!(
                results.route,
                Route::TenantHnsw | Route::ExactAfterShortHnsw
            ),
            "{:?}",
            results.route
        );
        assert_eq!(results.hits.len(), 10);
        let expected: HashSet<Uuid> = truth(&db, huge.tenant, query, 10)
            .await
            .into_iter()
            .collect();
        found += results
            .hits
            .iter()
            .filter(|h| expected.contains(&h.key))
            .count();
        tx.commit().await.unwrap();
    }
    let far_recall = found as f64 / (far.len() * 10) as f64;
    assert!(
        far_recall >= 0.98,
        "recall@10 of far queries in the huge tenant {far_recall}"
    );

    // The refresh measured the tenant's re-check distance. A query unlike any of the tenant's
    // vectors (uniform noise) is answered by the index, found too far, and searched again
    // exactly; without the re-check the index's answer stands.
    let recheck: Option<f64> = sqlx::query_scalar(
        "SELECT recheck_distance FROM tenancy.vector_tiers WHERE tenant_id = $1",
    )
    .bind(huge.tenant.as_uuid())
    .fetch_one(db.admin_pool())
    .await
    .unwrap();
    assert!(recheck.is_some_and(|d| d > 0.0 && d < 0.5), "{recheck:?}");
    let stranger = Vector::from(pseudo_vector(99));
    let expected = truth(&db, huge.tenant, &stranger, 10).await;
    let mut tx = viewer_tx_all(&tenancy, &huge).await;
    let results = gateway
        .search(&mut tx, &SearchRequest::new(stranger.clone(), 10))
        .await
        .unwrap();
    assert_eq!(results.route, Route::ExactAfterShortHnsw);
    let got: Vec<Uuid> = results.hits.iter().map(|h| h.key).collect();
    assert_eq!(got, expected);
    let unchecked = VectorGateway::new(
        Chunks::EMBEDDING_VECTORS,
        VectorConfig {
            recheck_far_queries: false,
            ..config
        },
    );
    let results = unchecked
        .search(&mut tx, &SearchRequest::new(stranger, 10))
        .await
        .unwrap();
    assert_eq!(results.route, Route::TenantHnsw);
    tx.commit().await.unwrap();
}

/// Query vectors halfway between two of [`bulk_chunks`]' 20 cluster centres (far from every
/// stored vector), with a small deterministic perturbation.
fn queries_between_clusters(n: usize) -> Vec<Vector> {
    (0..n)
        .map(|i| {
            // Never the same cluster twice: 6i + 3 is odd, so never 0 mod 20.
            let (a, b) = ((i % 20) as f64, ((i * 7 + 3) % 20) as f64);
            let noise = pseudo_vector(i as u64 + 1_000);
            let v: Vec<f32> = (1..=DIMS)
                .map(|j| {
                    let j64 = j as f64;
                    let centre = 0.5
                        * ((a * 12.9898 + j64 * 78.233).sin() + (b * 12.9898 + j64 * 78.233).sin());
                    (centre + 0.2 * f64::from(noise[j - 1])) as f32
                })
                .collect();
            Vector::from(v)
        })
        .collect()
}

#[tokio::test]
async fn several_projects_merge_into_the_global_top_k_on_both_routes() {
    let db = TestDb::fresh().await;
    // Viewer in p0 and p1, editor in p2, no role in p3 (whose chunks are the nearest of all).
    let t = add_tenant_with_roles(&db, "multi", &["editor", "editor", "editor", "none"]).await;
    let other = add_tenant(&db, "other", 1).await;
    let tenancy = Tenancy::new(db.app_pool().clone());
    let config = small_config();
    let gateway = gateway(config.clone());
    let m = maintenance(&db, config).await;

    let query: Vec<f32> = pseudo_vector(1);
    let mut expected: Vec<(f64, Uuid, Uuid, i32, String)> = Vec::new();
    for (index, count) in [(0usize, 40i32), (1, 90), (2, 3)] {
        let rows: Vec<NewChunk> = (0..count)
            .map(|i| {
                let seed = (index as u64) * 1000 + i as u64 + 100;
                let v: Vec<f32> = pseudo_vector(seed)
                    .iter()
                    .zip(&query)
                    .map(|(n, q)| q + 0.8 * n)
                    .collect();
                let content = format!("p{index} c{i}");
                new_chunk(
                    Uuid::new_v4(),
                    t.documents[index],
                    i,
                    &content,
                    Vector::from(v),
                )
            })
            .collect();
        for row in &rows {
            let v = row.embedding.as_ref().unwrap();
            expected.push((
                cosine_distance(&query, v.as_slice()),
                t.projects[index].as_uuid(),
                row.id.unwrap(),
                row.ordinal,
                row.content.clone(),
            ));
        }
        let mut tx = editor_tx(&tenancy, &t, index).await;
        let inserted = Chunks::insert_many(&mut tx, rows).await.unwrap();
        assert_eq!(inserted.len(), count as usize);
        tx.commit().await.unwrap();
    }
    // Closer than everything above, but outside the user's scope.
    bulk_chunks(&db, &t, 3, 1, 50).await;
    sqlx::query("UPDATE chunks SET embedding = $1 WHERE project_id = $2")
        .bind(Vector::from(query.clone()))
        .bind(t.projects[3].as_uuid())
        .execute(db.admin_pool())
        .await
        .unwrap();
    bulk_chunks(&db, &other, 0, 1, 50).await;
    sqlx::query("UPDATE chunks SET embedding = $1 WHERE tenant_id = $2")
        .bind(Vector::from(query.clone()))
        .bind(other.tenant.as_uuid())
        .execute(db.admin_pool())
        .await
        .unwrap();

    expected.sort_by(|a, b| a.0.total_cmp(&b.0));
    let k = 25usize;
    let check = |results: &tenancy_runtime::vector::SearchResults<_, Uuid, Chunk>, exact: bool| {
        let got: Vec<Uuid> = results.hits.iter().map(|h| h.key).collect();
        let want: Vec<Uuid> = expected.iter().take(k).map(|e| e.2).collect();
        assert_eq!(got.len(), k);
        if exact {
            assert_eq!(got, want);
            for (hit, e) in results.hits.iter().zip(&expected) {
                assert!(
                    (hit.distance - e.0).abs() < 1e-4,
                    "{} vs {}",
                    hit.distance,
                    e.0
                );
                assert_eq!(hit.project_id.as_uuid(), e.1);
                assert_eq!(
                    (hit.row.ordinal, hit.row.content.as_str()),
                    (e.3, e.4.as_str())
                );
            }
        } else {
            let want: HashSet<Uuid> = want.into_iter().collect();
            let overlap = got.iter().filter(|id| want.contains(id)).count();
            assert!(overlap as f64 >= 0.9 * k as f64, "overlap {overlap}/{k}");
        }
    };
    let projects_hit = |results: &tenancy_runtime::vector::SearchResults<_, Uuid, Chunk>| {
        results
            .hits
            .iter()
            .map(|h| h.project_id)
            .collect::<HashSet<ProjectId>>()
    };

    // Exact route (not promoted yet).
    let mut tx = viewer_tx_all(&tenancy, &t).await;
    assert_eq!(tx.scope().project_ids().len(), 3);
    let results = gateway
        .search_rows(
            &mut tx,
            &SearchRequest::new(Vector::from(query.clone()), k as u32),
        )
        .await
        .unwrap();
    assert_eq!(results.route, Route::Exact);
    check(&results, true);
    assert_in_scope(&db, &results).await;
    assert!(
        projects_hit(&results).len() >= 2,
        "the merge should mix projects"
    );
    tx.commit().await.unwrap();

    // Promote the tenant (133 visible + 50 hidden = 183 < 200: add hidden rows to cross).
    bulk_chunks(&db, &t, 3, 51, 30).await;
    let report = m.refresh(SPEC).await.unwrap();
    assert!(
        report.promoted.iter().any(|(id, _)| *id == t.tenant),
        "{report:?}"
    );
    let mut tx = viewer_tx_all(&tenancy, &t).await;
    let results = gateway
        .search_rows(
            &mut tx,
            &SearchRequest::new(Vector::from(query.clone()), k as u32),
        )
        .await
        .unwrap();
    assert_eq!(results.route, Route::TenantHnsw);
    check(&results, false);
    assert_in_scope(&db, &results).await;

    // A filter (here a document) is exact, even in a promoted tenant.
    let in_doc =
        SearchRequest::new(Vector::from(query.clone()), 5).where_eq("document_id", t.documents[2]);
    let (route, plan) = gateway.explain_search(&mut tx, &in_doc).await.unwrap();
    assert_eq!(route, Route::Exact);
    assert!(!plan.contains("hnsw"), "{plan}");
    // Through the typed search the generator emits on the repository.
    let results = Chunks::nearest_by_embedding(&mut tx, gateway.config(), &in_doc)
        .await
        .unwrap();
    assert_eq!(results.hits.len(), 3, "the document holds 3 chunks");
    assert!(results
        .hits
        .iter()
        .all(|h| h.row.document_id == t.documents[2]));
    let mut in_doc_rows: Vec<(i32, &str)> = results
        .hits
        .iter()
        .map(|h| (h.row.ordinal, h.row.content.as_str()))
        .collect();
    in_doc_rows.sort();
    assert_eq!(in_doc_rows, [(0, "p2 c0"), (1, "p2 c1"), (2, "p2 c2")]);
    tx.commit().await.unwrap();
}

#[tokio::test]
async fn a_vector_batch_with_a_row_outside_the_scope_or_a_wrong_length_fails_whole() {
    let db = TestDb::fresh().await;
    let t = add_tenant(&db, "batch", 2).await;
    let other = add_tenant(&db, "foreign", 1).await;
    let tenancy = Tenancy::new(db.app_pool().clone());
    let gateway = gateway(VectorConfig::default());
    maintenance(&db, VectorConfig::default()).await;
    // Three chunks without a vector in project 0, one in project 1 (through the repository).
    let mut ids = Vec::new();
    for (index, count) in [(0usize, 3i32), (1, 1)] {
        let mut tx = editor_tx(&tenancy, &t, index).await;
        let rows = (1..=count)
            .map(|i| NewChunk::new(t.documents[index], i, "x".to_owned(), 1))
            .collect();
        let inserted = Chunks::insert_many(&mut tx, rows).await.unwrap();
        ids.extend(inserted.iter().map(|c| (t.projects[index], c.id)));
        tx.commit().await.unwrap();
    }
    let update = |(project, key): (ProjectId, Uuid), seed: u64| VectorUpdate {
        project_id: project,
        key,
        vector: Some(Vector::from(pseudo_vector(seed))),
    };
    let with_vector = || async {
        sqlx::query_scalar::<_, i64>("SELECT count(*) FROM chunks WHERE embedding IS NOT NULL")
            .fetch_one(db.admin_pool())
            .await
            .unwrap()
    };

    // A row naming another project of the same tenant, or another tenant's project.
    for foreign in [
        update(ids[3], 3),
        update((other.projects[0], Uuid::new_v4()), 3),
    ] {
        let mut tx = editor_tx(&tenancy, &t, 0).await;
        let batch = vec![update(ids[0], 1), update(ids[1], 2), foreign];
        let result = gateway.set_embeddings(&mut tx, &batch).await;
        assert!(matches!(result, Err(Error::Forbidden)), "{result:?}");
        drop(tx);
        assert_eq!(with_vector().await, 0);
    }
    // A repeated key, or a vector that is not 384 long: nothing of the batch is written.
    let mut short = update(ids[1], 2);
    short.vector = Some(Vector::from(vec![1.0; 3]));
    for batch in [
        vec![update(ids[0], 1), update(ids[0], 2)],
        vec![update(ids[0], 1), short],
    ] {
        let mut tx = editor_tx(&tenancy, &t, 0).await;
        let result = gateway.set_embeddings(&mut tx, &batch).await;
        assert!(matches!(result, Err(Error::InvalidInput)), "{result:?}");
        drop(tx);
        assert_eq!(with_vector().await, 0);
    }

    // A valid batch, then one row's vector replaced.
    let mut tx = editor_tx(&tenancy, &t, 0).await;
    let batch: Vec<_> = (0..3).map(|i| update(ids[i], i as u64 + 1)).collect();
    assert_eq!(gateway.set_embeddings(&mut tx, &batch).await.unwrap(), 3);
    let replaced = update(ids[0], 999);
    assert_eq!(
        gateway
            .set_embeddings(&mut tx, std::slice::from_ref(&replaced))
            .await
            .unwrap(),
        1
    );
    tx.commit().await.unwrap();
    assert_eq!(with_vector().await, 3);
    let replaced_vector = replaced.vector.clone().unwrap();
    let mut tx = viewer_tx_all(&tenancy, &t).await;
    let nearest = gateway
        .search_rows::<_, Chunk>(&mut tx, &SearchRequest::new(replaced_vector.clone(), 1))
        .await
        .unwrap();
    assert_eq!(nearest.hits[0].key, replaced.key);
    assert!(nearest.hits[0].distance.abs() < 1e-6);
    assert_eq!(
        nearest.hits[0].row.embedding.as_ref(),
        Some(&replaced_vector)
    );
    for bad in [
        SearchRequest::new(replaced_vector.clone(), 0),
        SearchRequest::new(Vector::from(vec![1.0; 3]), 1),
        SearchRequest::new(replaced_vector.clone(), 1).where_eq("content", Uuid::nil()),
    ] {
        assert!(matches!(
            gateway.search(&mut tx, &bad).await,
            Err(Error::InvalidInput)
        ));
    }
    drop(tx);
    // From another project's scope, a key of project 0 touches nothing; from the right scope,
    // clearing a vector takes the row out of searches.
    let mut tx = editor_tx(&tenancy, &t, 1).await;
    let elsewhere = VectorUpdate {
        project_id: t.projects[1],
        key: ids[1].1,
        vector: None,
    };
    assert_eq!(
        gateway
            .set_embeddings(&mut tx, std::slice::from_ref(&elsewhere))
            .await
            .unwrap(),
        0
    );
    tx.commit().await.unwrap();
    assert_eq!(with_vector().await, 3);
    let mut tx = editor_tx(&tenancy, &t, 0).await;
    let cleared = VectorUpdate {
        project_id: t.projects[0],
        ..elsewhere
    };
    assert_eq!(
        gateway.set_embeddings(&mut tx, &[cleared]).await.unwrap(),
        1
    );
    tx.commit().await.unwrap();
    assert_eq!(with_vector().await, 2);
    let mut tx = viewer_tx_all(&tenancy, &t).await;
    let all = gateway
        .search(&mut tx, &SearchRequest::new(replaced_vector, 10))
        .await
        .unwrap();
    let keys: HashSet<Uuid> = all.hits.iter().map(|h| h.key).collect();
    assert_eq!(keys, HashSet::from([ids[0].1, ids[2].1]));
    tx.commit().await.unwrap();
}

async fn index_validity(db: &TestDb, name: &str) -> Option<bool> {
    sqlx::query_scalar("SELECT indisvalid FROM pg_index WHERE indexrelid = to_regclass($1)")
        .bind(name)
        .fetch_optional(db.admin_pool())
        .await
        .unwrap()
}

/// The tenant's index (`schema.name`) as the catalog records it.
async fn index_name_of(m: &VectorMaintenance, tenant: TenantId) -> Option<String> {
    let tiers = m.tiers(SPEC).await.unwrap();
    tiers
        .into_iter()
        .find(|t| t.tenant_id == tenant)
        .and_then(|t| t.index_name)
}

async fn tier_of(m: &VectorMaintenance, tenant: TenantId) -> (Tier, i64) {
    let tiers = m.tiers(SPEC).await.unwrap();
    let row = tiers.iter().find(|t| t.tenant_id == tenant).unwrap();
    (row.tier, row.row_count)
}

async fn delete_down_to(db: &TestDb, f: &TenantFixture, keep: i64) {
    sqlx::query("DELETE FROM chunks WHERE tenant_id = $1 AND ordinal > $2")
        .bind(f.tenant.as_uuid())
        .bind(keep as i32)
        .execute(db.admin_pool())
        .await
        .unwrap();
}

#[tokio::test]
async fn promotion_builds_online_switches_only_when_valid_and_does_not_flap() {
    let db = TestDb::fresh().await;
    let t = add_tenant(&db, "growing", 1).await;
    bulk_chunks(&db, &t, 0, 1, 250).await;
    let config = small_config();
    let m = maintenance(&db, config.clone()).await;
    let tenancy = Tenancy::new(db.app_pool().clone());
    let gateway = gateway(config.clone());
    let query = queries_near(&db, t.tenant, 1).await.remove(0);
    let route_now = || async {
        let mut tx = viewer_tx_all(&tenancy, &t).await;
        let results = gateway
            .search(&mut tx, &SearchRequest::new(query.clone(), 10))
            .await
            .unwrap();
        assert_eq!(results.hits.len(), 10);
        results.route
    };

    // A writer holds a lock on chunks: CREATE INDEX CONCURRENTLY waits for it (a plain CREATE
    // INDEX would not get its lock either, but it would also block new writers; see below).
    let mut blocker = db.admin_pool().begin().await.unwrap();
    sqlx::raw_sql("LOCK TABLE chunks IN ROW EXCLUSIVE MODE")
        .execute(&mut *blocker)
        .await
        .unwrap();
    let refresh = tokio::spawn({
        let m = VectorMaintenance::new(db.admin_pool().clone(), "vector tests", config.clone())
            .unwrap();
        async move { m.refresh(SPEC).await }
    });
    // Wait until the index exists but is not valid (its random name is in the catalog first).
    let mut waited = 0;
    let index = loop {
        if let Some(name) = index_name_of(&m, t.tenant).await {
            if index_validity(&db, &name).await == Some(false) {
                break name;
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
        waited += 1;
        assert!(waited < 600, "the index build never started");
    };
    // The name and the predicate carry nothing of the tenant's UUID (every role reads
    // pg_indexes).
    let tenant_hex = t.tenant.as_uuid().simple().to_string();
    let definition: String = sqlx::query_scalar(
        "SELECT indexdef FROM pg_indexes WHERE schemaname || '.' || indexname = $1",
    )
    .bind(&index)
    .fetch_one(db.admin_pool())
    .await
    .unwrap();
    for text in [&index, &definition] {
        assert!(
            !text.contains(&tenant_hex) && !text.contains(&t.tenant.to_string()),
            "{text}"
        );
    }
    assert!(
        definition.contains("uuid_hash_extended(tenant_id, '"),
        "{definition}"
    );
    assert_eq!(tier_of(&m, t.tenant).await.0, Tier::Building);
    // Searches are served exactly meanwhile, and writes are not blocked by the build.
    assert_eq!(route_now().await, Route::Exact);
    let mut tx = editor_tx(&tenancy, &t, 0).await;
    let during = new_chunk(
        Uuid::new_v4(),
        t.documents[0],
        10_000,
        "during build",
        query.clone(),
    );
    let written = tokio::time::timeout(
        Duration::from_secs(10),
        Chunks::insert_many(&mut tx, vec![during]),
    )
    .await
    .expect("a write waited for the index build")
    .unwrap();
    assert_eq!(written.len(), 1);
    tx.commit().await.unwrap();
    assert!(!refresh.is_finished());
    blocker.rollback().await.unwrap();
    let report = refresh.await.unwrap().unwrap();
    assert_eq!(report.promoted.len(), 1);
    assert_eq!(index_validity(&db, &index).await, Some(true));
    assert_eq!(tier_of(&m, t.tenant).await, (Tier::Hnsw, 250));
    assert_eq!(route_now().await, Route::TenantHnsw);

    // Hysteresis: promote at 200, demote below 100.
    delete_down_to(&db, &t, 150).await; // 150 rows: between the thresholds
    let report = m.refresh(SPEC).await.unwrap();
    assert!(report.demoted.is_empty() && report.promoted.is_empty());
    assert_eq!(tier_of(&m, t.tenant).await, (Tier::Hnsw, 150));
    assert_eq!(route_now().await, Route::TenantHnsw);
    delete_down_to(&db, &t, 90).await;
    let report = m.refresh(SPEC).await.unwrap();
    assert_eq!(report.demoted, vec![t.tenant]);
    assert_eq!(tier_of(&m, t.tenant).await, (Tier::Exact, 90));
    assert_eq!(index_validity(&db, &index).await, None, "index dropped");
    assert_eq!(route_now().await, Route::Exact);
    bulk_chunks(&db, &t, 0, 91, 90).await; // 180: still below the promotion threshold
    let report = m.refresh(SPEC).await.unwrap();
    assert!(report.promoted.is_empty());
    assert_eq!(tier_of(&m, t.tenant).await, (Tier::Exact, 180));
    // Repeated refreshes at a stable size change nothing.
    for _ in 0..3 {
        let report = m.refresh(SPEC).await.unwrap();
        assert!(report.promoted.is_empty() && report.demoted.is_empty());
    }
    bulk_chunks(&db, &t, 0, 181, 30).await; // 210
    let report = m.refresh(SPEC).await.unwrap();
    assert_eq!(report.promoted.len(), 1);
    assert_eq!(route_now().await, Route::TenantHnsw);
}

#[tokio::test]
async fn install_upgrades_a_one_table_catalog_and_drops_the_indexes_it_listed() {
    let db = TestDb::fresh().await;
    let t = add_tenant(&db, "legacy", 1).await;
    bulk_chunks(&db, &t, 0, 1, 30).await;
    let old_index = format!("chunks_hnsw_{}", t.tenant.as_uuid().simple());
    // The catalog and index of the earlier, one-table gateway.
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
        "CREATE TABLE tenancy.vector_tiers (tenant_id uuid PRIMARY KEY, chunk_count bigint \
         NOT NULL DEFAULT 0, tier text NOT NULL DEFAULT 'exact', index_name text, \
         updated_at timestamptz NOT NULL DEFAULT now()); \
         CREATE TABLE tenancy.vector_project_sizes (tenant_id uuid NOT NULL, project_id uuid \
         NOT NULL, chunk_count bigint NOT NULL, updated_at timestamptz NOT NULL DEFAULT now(), \
         PRIMARY KEY (tenant_id, project_id)); \
         CREATE INDEX {old_index} ON chunks USING hnsw (embedding vector_cosine_ops) \
         WHERE tenant_id = '{}'::uuid; \
         INSERT INTO tenancy.vector_tiers VALUES ('{}', 30, 'hnsw', '{old_index}', now())",
        t.tenant, t.tenant
    )))
    .execute(db.admin_pool())
    .await
    .unwrap();
    assert_eq!(index_validity(&db, &old_index).await, Some(true));

    let config = VectorConfig {
        promote_at: 20,
        demote_below: Some(10),
        exact_scope_max: 10,
        ..VectorConfig::default()
    };
    let m = maintenance(&db, config.clone()).await;
    assert_eq!(
        index_validity(&db, &old_index).await,
        None,
        "old index dropped"
    );
    let columns: Vec<String> = sqlx::query_scalar(
        "SELECT attname::text FROM pg_attribute WHERE attrelid = 'tenancy.vector_tiers'::regclass \
         AND attnum > 0 AND NOT attisdropped ORDER BY attnum",
    )
    .fetch_all(db.admin_pool())
    .await
    .unwrap();
    assert_eq!(
        columns,
        [
            "table_name",
            "tenant_id",
            "row_count",
            "tier",
            "index_name",
            "updated_at",
            "index_seed",
            "index_key",
            "index_dimensions",
            "recheck_distance"
        ]
    );
    // Installing again changes nothing; the next refresh rebuilds the tenant under the new name.
    m.install().await.unwrap();
    let report = m.refresh(SPEC).await.unwrap();
    assert_eq!(report.table, "public.chunks");
    assert_eq!(report.promoted.len(), 1);
    let index = index_name_of(&m, t.tenant).await.unwrap();
    assert!(
        index.starts_with("public.chunks_embedding_hnsw_"),
        "{index}"
    );
    assert!(
        !index.contains(&t.tenant.as_uuid().simple().to_string()),
        "{index}"
    );
    assert_eq!(index_validity(&db, &index).await, Some(true));
    assert_eq!(tier_of(&m, t.tenant).await, (Tier::Hnsw, 30));
    let tenancy = Tenancy::new(db.app_pool().clone());
    let gateway = gateway(config);
    let query = queries_near(&db, t.tenant, 1).await.remove(0);
    let mut tx = viewer_tx_all(&tenancy, &t).await;
    let results = gateway
        .search(&mut tx, &SearchRequest::new(query, 10))
        .await
        .unwrap();
    assert_eq!(results.route, Route::TenantHnsw);
    assert_eq!(results.hits.len(), 10);
    tx.commit().await.unwrap();
}

/// What `refresh` reads from the catalog row decides the repair: a promoted tenant without a
/// re-check distance (promoted before it existed) gets one measured, its index kept; an index
/// of the earlier shape (no predicate key) is built again.
#[tokio::test]
async fn refresh_measures_a_missing_recheck_distance_and_rebuilds_an_unkeyed_index() {
    let db = TestDb::fresh().await;
    let t = add_tenant(&db, "repair", 1).await;
    bulk_chunks(&db, &t, 0, 1, 40).await;
    let config = VectorConfig {
        promote_at: 20,
        demote_below: Some(10),
        exact_scope_max: 10,
        ..VectorConfig::default()
    };
    let m = maintenance(&db, config).await;
    assert_eq!(m.refresh(SPEC).await.unwrap().promoted.len(), 1);
    let first = index_name_of(&m, t.tenant).await.unwrap();
    let catalog = |sql: &'static str| {
        let pool = db.admin_pool().clone();
        let tenant = t.tenant.as_uuid();
        async move { sqlx::query(sql).bind(tenant).execute(&pool).await.unwrap() }
    };
    let recheck = || async {
        sqlx::query_scalar::<_, Option<f64>>(
            "SELECT recheck_distance FROM tenancy.vector_tiers WHERE tenant_id = $1",
        )
        .bind(t.tenant.as_uuid())
        .fetch_one(db.admin_pool())
        .await
        .unwrap()
    };
    assert!(recheck().await.is_some());

    catalog("UPDATE tenancy.vector_tiers SET recheck_distance = NULL WHERE tenant_id = $1").await;
    let report = m.refresh(SPEC).await.unwrap();
    assert!(report.promoted.is_empty(), "{report:?}");
    assert!(
        recheck().await.is_some(),
        "the re-check distance was not measured again"
    );
    assert_eq!(index_name_of(&m, t.tenant).await.unwrap(), first);

    catalog("UPDATE tenancy.vector_tiers SET index_key = NULL WHERE tenant_id = $1").await;
    let report = m.refresh(SPEC).await.unwrap();
    assert_eq!(report.promoted.len(), 1, "{report:?}");
    assert_ne!(index_name_of(&m, t.tenant).await.unwrap(), first);
}

#[tokio::test]
async fn a_changed_distance_rebuilds_the_tenant_index_with_its_operator_class_and_orders_by_it() {
    let db = TestDb::fresh().await;
    let t = add_tenant(&db, "metric", 1).await;
    bulk_chunks(&db, &t, 0, 1, 40).await;
    let config = VectorConfig {
        promote_at: 20,
        demote_below: Some(10),
        exact_scope_max: 10,
        ..VectorConfig::default()
    };
    let m = maintenance(&db, config.clone()).await;
    let opclass = || async {
        sqlx::query_scalar::<_, String>(
            "SELECT c.opcname::text FROM pg_index i JOIN pg_opclass c ON c.oid = i.indclass[0] \
             WHERE i.indexrelid = to_regclass($1)",
        )
        .bind(index_name_of(&m, t.tenant).await)
        .fetch_optional(db.admin_pool())
        .await
        .unwrap()
    };
    assert_eq!(m.refresh(SPEC).await.unwrap().promoted.len(), 1);
    assert_eq!(opclass().await.as_deref(), Some("vector_cosine_ops"));
    // The same column declared `distance l2`: the next refresh rebuilds the index for L2.
    let l2 = VectorSpec {
        distance: tenancy_runtime::vector::Distance::L2,
        ..*SPEC
    };
    let report = m.refresh(&l2).await.unwrap();
    assert_eq!(report.promoted.len(), 1, "{report:?}");
    assert_eq!(opclass().await.as_deref(), Some("vector_l2_ops"));
    assert!(m.refresh(&l2).await.unwrap().promoted.is_empty());

    let gateway: Gateway =
        VectorGateway::new(tenancy_runtime::vector::VectorTable::new(l2), config);
    let tenancy = Tenancy::new(db.app_pool().clone());
    let query = queries_near(&db, t.tenant, 1).await.remove(0);
    let mut tx = viewer_tx_all(&tenancy, &t).await;
    let request = SearchRequest::new(query.clone(), 5);
    let (route, plan) = gateway.explain_search(&mut tx, &request).await.unwrap();
    assert_eq!(route, Route::TenantHnsw);
    assert!(plan.contains("<->"), "{plan}");
    let results = gateway.search(&mut tx, &request).await.unwrap();
    tx.commit().await.unwrap();
    let expected: Vec<(Uuid, f64)> = sqlx::query_as(
        "SELECT id, embedding <-> $2 FROM chunks WHERE tenant_id = $1 \
         ORDER BY embedding <-> $2, project_id, id LIMIT 5",
    )
    .bind(t.tenant.as_uuid())
    .bind(&query)
    .fetch_all(db.admin_pool())
    .await
    .unwrap();
    let got: Vec<Uuid> = results.hits.iter().map(|h| h.key).collect();
    let want: Vec<Uuid> = expected.iter().map(|e| e.0).collect();
    assert_eq!(
        got, want,
        "L2 order (40 rows: the HNSW graph holds them all)"
    );
    for (hit, (_, distance)) in results.hits.iter().zip(&expected) {
        assert!((hit.distance - distance).abs() < 1e-4);
    }
}

#[tokio::test]
async fn the_installed_catalog_audits_clean() {
    let db = TestDb::fresh().await;
    // What an operator's database is after `tenancy migrate apply` (a template copy loses it).
    let revoke = format!(
        "REVOKE TEMPORARY ON DATABASE {} FROM PUBLIC",
        tenancy_tests::quote_ident(db.name())
    );
    sqlx::raw_sql(sqlx::AssertSqlSafe(revoke))
        .execute(db.admin_pool())
        .await
        .unwrap();
    let sources = tenancy_core::dsl::read_dir(
        &std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/rag/policies"),
    )
    .unwrap();
    let (model, diagnostics) = tenancy_core::dsl::compile(&sources);
    assert!(!diagnostics.has_errors());
    let model = model.unwrap();
    maintenance(&db, VectorConfig::default()).await;
    let report = tenancy_audit::audit(db.admin_pool(), &model).await.unwrap();
    assert!(report.is_clean(), "{}", report.to_text());
    // The same tables without a vector column in the model are undeclared (TA080).
    let mut without = model.clone();
    for table in &mut without.tables {
        table
            .columns
            .retain(|c| !matches!(c.ty, tenancy_core::model::SqlType::Vector(_)));
    }
    let report = tenancy_audit::audit(db.admin_pool(), &without)
        .await
        .unwrap();
    let undeclared: Vec<&str> = report
        .findings
        .iter()
        .filter(|f| f.code == "TA080")
        .map(|f| f.object.as_str())
        .collect();
    assert_eq!(
        undeclared,
        [
            "table tenancy.vector_project_sizes",
            "table tenancy.vector_tiers"
        ],
        "{}",
        report.to_text()
    );
}

/// The catalog forces row-level security, and the app role reads the sizes of the projects it
/// holds a role in only: a member of one project of a tenant learns nothing about the tenant's
/// other projects (their ids or sizes).
#[tokio::test]
async fn project_sizes_are_visible_to_members_of_that_project_only() {
    let db = TestDb::fresh().await;
    let f = add_tenant_with_roles(&db, "sizes", &["viewer", "none"]).await;
    bulk_chunks(&db, &f, 0, 0, 5).await;
    bulk_chunks(&db, &f, 1, 0, 7).await;
    let m = maintenance(&db, small_config()).await;
    m.refresh(SPEC).await.unwrap();
    let all: i64 = sqlx::query_scalar("SELECT count(*) FROM tenancy.vector_project_sizes")
        .fetch_one(db.admin_pool())
        .await
        .unwrap();
    assert_eq!(all, 2, "the maintenance role sees both projects");
    let forced: Vec<bool> = sqlx::query_scalar(
        "SELECT relforcerowsecurity FROM pg_class \
         WHERE oid IN ('tenancy.vector_tiers'::regclass, 'tenancy.vector_project_sizes'::regclass)",
    )
    .fetch_all(db.admin_pool())
    .await
    .unwrap();
    assert_eq!(forced, [true, true]);

    let pool = sqlx::PgPool::connect(db.app_url()).await.unwrap();
    let tenancy = Tenancy::with_config(pool, tenancy_generated::config());
    let mut tx = viewer_tx_all(&tenancy, &f).await;
    let seen: Vec<(Uuid, i64)> =
        sqlx::query_as("SELECT project_id, row_count FROM tenancy.vector_project_sizes")
            .fetch_all(tx.connection())
            .await
            .unwrap();
    tx.commit().await.unwrap();
    assert_eq!(seen, [(f.projects[0].as_uuid(), 5)]);
}

/// The gateway's statements reach a cached generic plan after PostgreSQL's five custom plans,
/// in a table large enough that the planner's estimates matter (issue 22, item 3). A custom
/// plan saw the scope's project array and `k` as constants and came out cheaper than the
/// generic plan (which assumes 10 array elements and a LIMIT of 10% of the estimated rows), so
/// PostgreSQL re-planned the exact search on every call: about 0.1 ms of a 0.25 ms search of a
/// small tenant in a 1,000-tenant database, and nothing in a database holding only that tenant,
/// whose tiny table made both plans cost the same. The gateway now hides both values from
/// custom plans too (`(SELECT $n)`), so the costs are equal and the generic plan is kept.
#[tokio::test]
async fn exact_search_and_route_lookup_keep_a_generic_plan_in_a_large_table() {
    let db = TestDb::fresh().await;
    let big = add_tenant(&db, "big", 1).await;
    let small = add_tenant(&db, "small", 1).await;
    bulk_chunks(&db, &big, 0, 1, 20_000).await;
    bulk_chunks(&db, &small, 0, 1, 10).await;
    sqlx::raw_sql("VACUUM ANALYZE chunks")
        .execute(db.admin_pool())
        .await
        .unwrap();
    // No tenant is promoted: every search is exact, the route a small tenant of many takes.
    let config = VectorConfig {
        promote_at: 1_000_000,
        demote_below: Some(500_000),
        exact_scope_max: 500_000,
        ..VectorConfig::default()
    };
    let m = maintenance(&db, config.clone()).await;
    m.refresh(SPEC).await.unwrap();
    let gateway = gateway(config);
    let tenancy = Tenancy::new(db.app_pool().clone());
    let queries = queries_near(&db, small.tenant, 10).await;
    // One transaction, so one connection and one prepared statement per query text.
    let mut tx = editor_tx(&tenancy, &small, 0).await;
    for query in queries.iter().cycle().take(8) {
        let results = gateway
            .search(&mut tx, &SearchRequest::new(query.clone(), 5))
            .await
            .unwrap();
        assert_eq!(results.route, Route::Exact);
        assert_eq!(results.hits.len(), 5);
    }
    let plans: Vec<(String, i64, i64)> = sqlx::query_as(
        "SELECT CASE WHEN statement LIKE 'WITH scoped AS MATERIALIZED%' THEN 'exact' \
         ELSE 'route' END, generic_plans, custom_plans FROM pg_catalog.pg_prepared_statements \
         WHERE statement LIKE 'WITH scoped AS MATERIALIZED%' \
         OR statement LIKE 'SELECT set_config(''hnsw.ef_search''%' ORDER BY 1",
    )
    .fetch_all(tx.connection())
    .await
    .unwrap();
    tx.commit().await.unwrap();
    // Five custom plans to learn their cost, then the generic one for the remaining three.
    assert_eq!(
        plans,
        [("exact".to_owned(), 3, 5), ("route".to_owned(), 3, 5)],
        "(statement, generic plans, custom plans) after 8 searches"
    );
}
