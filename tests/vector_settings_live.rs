//! Per-tenant embedding models (`embedding vector(3)? per tenant`) on a real PostgreSQL with
//! pgvector: two tenants whose models have different dimensions share one table and are
//! searched side by side (exact, and through each tenant's own HNSW index cast to its
//! dimension); a query or a vector of the other dimension is refused by the gateway with
//! `Error::EmbeddingDimension` and by the database's trigger (23514) on every write path;
//! changing a tenant's model clears exactly its vectors, drops its index, bumps the version,
//! writes an audit row and leaves the other tenant untouched; the app role reads only its own
//! tenant's setting and cannot write one; the CLI says what it did, or fails in one sentence.
//!
//! The model is generated from the DSL text below into a temporary directory (migrations
//! applied to an empty database); the gateway runs on the application role's pool.

#![allow(clippy::expect_used, clippy::unwrap_used)]

use pgvector::Vector;
use tenancy_runtime::vector::{
    EmbeddingModel, Route, SearchRequest, Tier, VectorConfig, VectorGateway, VectorMaintenance,
    VectorSpec, VectorTable, VectorUpdate,
};
use tenancy_runtime::{Error, Tenancy, TenancyConfig};
use tenancy_tests::TestDb;
use uuid::Uuid;

mod per_tenant_vectors;

use per_tenant_vectors::{add_tenant, count_vectors, database, fill, Tenant};

tenancy_runtime::roles! { Viewer = "viewer", Editor = "editor" }

/// What `tenancy generate` emits for `passages.embedding` (checked in tenancy-core's
/// `dsl_per_tenant_vectors`).
const PASSAGES: VectorTable<Viewer, Editor, Uuid> = VectorTable::new(VectorSpec {
    schema: "public",
    table: "passages",
    key_column: "id",
    vector_column: "embedding",
    dimensions: 3,
    distance: tenancy_runtime::vector::Distance::L2,
    filter_columns: &[],
    per_tenant: true,
});

fn tenancy(db: &TestDb) -> Tenancy {
    Tenancy::with_config(
        db.app_pool().clone(),
        TenancyConfig {
            memberships_table: "memberships".to_owned(),
            ..TenancyConfig::default()
        },
    )
}

/// The SQLSTATE of a statement that must fail.
fn sqlstate(result: Result<sqlx::postgres::PgQueryResult, sqlx::Error>) -> String {
    let error = result.unwrap_err();
    error
        .as_database_error()
        .unwrap()
        .code()
        .unwrap()
        .into_owned()
}

/// Small thresholds: a tenant of 50 vectors is promoted, a scope above 20 may use its index.
fn config() -> VectorConfig {
    VectorConfig {
        promote_at: 50,
        demote_below: Some(10),
        exact_scope_max: 20,
        ..VectorConfig::default()
    }
}

fn gateway() -> VectorGateway<Viewer, Editor, Uuid> {
    VectorGateway::new(PASSAGES, config())
}

/// The nearest `k` bodies to `query` in the tenant (a viewer scope over all its projects).
async fn search(
    tenancy: &Tenancy,
    t: &Tenant,
    query: Vec<f32>,
    k: u32,
) -> Result<(Route, Vec<String>), Error> {
    let ctx = tenancy.authorize(t.user, t.id).await?;
    let scope = ctx.all_projects().with_at_least::<Viewer>();
    let mut tx = tenancy.begin(&scope).await?;
    #[derive(sqlx::FromRow)]
    struct Row {
        body: String,
    }
    let found = gateway()
        .search_rows::<_, Row>(&mut tx, &SearchRequest::new(Vector::from(query), k))
        .await;
    tx.commit().await?;
    let found = found?;
    assert!(found.hits.iter().all(|h| h.project_id == t.project));
    Ok((
        found.route,
        found.hits.into_iter().map(|h| h.row.body).collect(),
    ))
}

async fn set_model(m: &VectorMaintenance, t: &Tenant, name: &str, dims: u32) -> u64 {
    let change = m
        .set_embedding_model(
            &PASSAGES.spec,
            t.id,
            &EmbeddingModel::new(name, dims),
            "test",
        )
        .await
        .unwrap();
    assert!(!change.unchanged);
    change.stale_vectors
}

#[tokio::test]
async fn two_tenants_with_different_dimensions_are_searched_side_by_side() {
    let (db, _tmp) = database().await;
    let small = add_tenant(&db, "small").await;
    let large = add_tenant(&db, "large").await;
    let m = VectorMaintenance::new(db.admin_pool().clone(), "test", config()).unwrap();
    m.install().await.unwrap();

    // `small` keeps the declared 3 dimensions; `large` switches to a 5-dimensional model
    // before it has vectors.
    assert_eq!(set_model(&m, &large, "wide-5", 5).await, 0);
    fill(&db, &small, 3, 30).await;
    fill(&db, &large, 5, 120).await;

    let tenancy = tenancy(&db);
    // Exact search in each tenant with its own dimension.
    let (route, bodies) = search(&tenancy, &small, vec![7.2; 3], 3).await.unwrap();
    assert_eq!(route, Route::Exact);
    assert_eq!(bodies, ["p7", "p8", "p6"]);
    let (_, bodies) = search(&tenancy, &large, vec![100.1; 5], 2).await.unwrap();
    assert_eq!(bodies, ["p100", "p101"]);

    // Mixed dimensions are refused before anything is compared, with the tenant's model.
    match search(&tenancy, &small, vec![1.0; 5], 3).await {
        Err(Error::EmbeddingDimension {
            expected: 3,
            got: 5,
            model,
        }) => assert_eq!(model, "default"),
        other => panic!("expected EmbeddingDimension, got {other:?}"),
    }
    match search(&tenancy, &large, vec![1.0; 3], 3).await {
        Err(Error::EmbeddingDimension {
            expected: 5,
            got: 3,
            model,
        }) => assert_eq!(model, "wide-5"),
        other => panic!("expected EmbeddingDimension, got {other:?}"),
    }
    assert_eq!(
        Error::EmbeddingDimension {
            expected: 5,
            got: 3,
            model: "wide-5".to_owned()
        }
        .http_status(),
        422
    );

    // The large tenant gets its own HNSW index, on the column cast to its dimension.
    let report = m.refresh(&PASSAGES.spec).await.unwrap();
    assert_eq!(report.promoted.len(), 1, "{report:?}");
    assert_eq!(report.promoted[0].0, large.id);
    let tiers = m.tiers(&PASSAGES.spec).await.unwrap();
    let large_tier = tiers.iter().find(|t| t.tenant_id == large.id).unwrap();
    assert_eq!(large_tier.tier, Tier::Hnsw);
    let index = large_tier.index_name.clone().unwrap();
    let definition: String = sqlx::query_scalar("SELECT pg_get_indexdef($1::regclass)")
        .bind(&index)
        .fetch_one(db.admin_pool())
        .await
        .unwrap();
    assert!(
        definition.contains("((embedding)::vector(5)) vector_l2_ops"),
        "{definition}"
    );
    let (route, bodies) = search(&tenancy, &large, vec![100.1; 5], 2).await.unwrap();
    assert_eq!(route, Route::TenantHnsw);
    assert_eq!(bodies, ["p100", "p101"]);
    // ... while the small tenant next to it is still searched exactly with 3 dimensions.
    let (route, bodies) = search(&tenancy, &small, vec![29.9; 3], 1).await.unwrap();
    assert_eq!((route, bodies), (Route::Exact, vec!["p30".to_owned()]));

    // Writes of the other dimension: refused by the gateway (typed) ...
    let ctx = tenancy.authorize(small.user, small.id).await.unwrap();
    let scope = ctx
        .project(small.project)
        .unwrap()
        .require::<Editor>()
        .unwrap();
    let mut tx = tenancy.begin(&scope).await.unwrap();
    let key: Uuid = sqlx::query_scalar("SELECT id FROM passages WHERE body = 'p1'")
        .fetch_one(tx.connection())
        .await
        .unwrap();
    let wrong = VectorUpdate {
        project_id: small.project,
        key,
        vector: Some(Vector::from(vec![1.0; 5])),
    };
    assert!(matches!(
        gateway().set_embeddings(&mut tx, &[wrong]).await,
        Err(Error::EmbeddingDimension {
            expected: 3,
            got: 5,
            ..
        })
    ));
    // ... and by the database on a plain INSERT or UPDATE of the app role (23514).
    let raw = sqlx::query("UPDATE passages SET embedding = '[1,2,3,4,5]' WHERE id = $1")
        .bind(key)
        .execute(tx.connection())
        .await
        .unwrap_err();
    let db_error = raw.as_database_error().unwrap();
    assert_eq!(db_error.code().as_deref(), Some("23514"));
    assert!(
        db_error.message().contains(
            "passages.embedding holds 3-dimensional vectors in this tenant (model default), not 5"
        ),
        "{}",
        db_error.message()
    );
    tx.rollback().await.unwrap();
    // ... and on an INSERT of the app role.
    let mut tx = tenancy.begin(&scope).await.unwrap();
    let refused = sqlx::query(
        "INSERT INTO passages (tenant_id, project_id, body, embedding) \
         VALUES ($1, $2, 'wide', '[1,2,3,4,5]')",
    )
    .bind(small.id.as_uuid())
    .bind(small.project.as_uuid())
    .execute(tx.connection())
    .await;
    assert_eq!(sqlstate(refused), "23514");
    tx.rollback().await.unwrap();
    // The app role reads its own tenant's setting only (a third tenant has one too), and
    // writes none.
    let third = add_tenant(&db, "third").await;
    sqlx::query(
        "INSERT INTO tenancy.vector_settings (tenant_id, table_name, column_name, model, dimensions) \
         VALUES ($1, 'public.passages', 'embedding', 'third-7', 7)",
    )
    .bind(third.id.as_uuid())
    .execute(db.admin_pool())
    .await
    .unwrap();
    let ctx = tenancy.authorize(large.user, large.id).await.unwrap();
    let scope = ctx.all_projects().with_at_least::<Viewer>();
    let mut tx = tenancy.begin(&scope).await.unwrap();
    let seen: Vec<(Uuid, String, i32)> =
        sqlx::query_as("SELECT tenant_id, model, dimensions FROM tenancy.vector_settings")
            .fetch_all(tx.connection())
            .await
            .unwrap();
    assert_eq!(seen, [(large.id.as_uuid(), "wide-5".to_owned(), 5)]);
    let setting = gateway().embedding_model(&mut tx).await.unwrap();
    assert_eq!(setting.model, EmbeddingModel::new("wide-5", 5));
    assert_eq!(setting.version, 1);
    let refused = sqlx::query(
        "INSERT INTO tenancy.vector_settings (tenant_id, table_name, column_name, model, dimensions) \
         VALUES ($1, 'public.passages', 'embedding', 'mine', 3)",
    )
    .bind(small.id.as_uuid())
    .execute(tx.connection())
    .await;
    assert_eq!(sqlstate(refused), "42501");
    tx.rollback().await.unwrap();

    // EXPLAIN refuses a query of another length the same way; the model of a column that is
    // not `per tenant` cannot be changed.
    let ctx = tenancy.authorize(small.user, small.id).await.unwrap();
    let scope = ctx.all_projects().with_at_least::<Viewer>();
    let mut tx = tenancy.begin(&scope).await.unwrap();
    let explained = gateway()
        .explain_search(&mut tx, &SearchRequest::new(Vector::from(vec![1.0; 4]), 3))
        .await;
    assert!(matches!(
        explained,
        Err(Error::EmbeddingDimension {
            expected: 3,
            got: 4,
            ..
        })
    ));
    tx.rollback().await.unwrap();
    let fixed = VectorSpec {
        per_tenant: false,
        ..PASSAGES.spec
    };
    assert!(matches!(
        m.set_embedding_model(&fixed, small.id, &EmbeddingModel::new("x", 3), "ops")
            .await,
        Err(Error::Misconfigured(_))
    ));

    // Changing the large tenant's model: its index is dropped, its vectors (and only its)
    // are cleared, the version goes up, an audit row says what happened.
    let small_before = count_vectors(&db, &small).await;
    let change = m
        .set_embedding_model(
            &PASSAGES.spec,
            large.id,
            &EmbeddingModel::new("narrow-4", 4),
            "ops",
        )
        .await
        .unwrap();
    assert_eq!(change.stale_vectors, 120);
    assert_eq!(change.previous.model, EmbeddingModel::new("wide-5", 5));
    assert_eq!(change.current.version, 2);
    assert_eq!(change.dropped_index.as_deref(), Some(index.as_str()));
    assert_eq!(count_vectors(&db, &large).await, (120, 0));
    assert_eq!(count_vectors(&db, &small).await, small_before);
    let exists: Option<String> = sqlx::query_scalar("SELECT to_regclass($1)::text")
        .bind(&index)
        .fetch_one(db.admin_pool())
        .await
        .unwrap();
    assert_eq!(exists, None);
    let audit: (String, serde_json::Value) = sqlx::query_as(
        "SELECT actor, subject FROM tenancy.audit_log \
         WHERE tenant_id = $1 AND action = 'vector.set_embedding' ORDER BY id DESC LIMIT 1",
    )
    .bind(large.id.as_uuid())
    .fetch_one(db.admin_pool())
    .await
    .unwrap();
    assert_eq!(audit.0, "ops");
    assert_eq!(audit.1["from"]["dimensions"], 5);
    assert_eq!(audit.1["to"]["model"], "narrow-4");
    assert_eq!(audit.1["stale_vectors"], 120);
    // The same model again changes nothing.
    let again = m
        .set_embedding_model(
            &PASSAGES.spec,
            large.id,
            &EmbeddingModel::new("narrow-4", 4),
            "ops",
        )
        .await
        .unwrap();
    assert!(again.unchanged);

    // The stale rows are what the application re-embeds; until then the tenant finds nothing.
    let ctx = tenancy.authorize(large.user, large.id).await.unwrap();
    let scope = ctx
        .project(large.project)
        .unwrap()
        .require::<Editor>()
        .unwrap();
    let mut tx = tenancy.begin(&scope).await.unwrap();
    let missing = gateway().missing_vectors(&mut tx, 1000).await.unwrap();
    assert_eq!(missing.len(), 120);
    let rows: Vec<VectorUpdate<Uuid>> = missing
        .iter()
        .map(|(project, key)| VectorUpdate {
            project_id: *project,
            key: *key,
            vector: Some(Vector::from(vec![0.5; 4])),
        })
        .collect();
    assert_eq!(gateway().set_embeddings(&mut tx, &rows).await.unwrap(), 120);
    tx.commit().await.unwrap();
    assert_eq!(
        search(&tenancy, &large, vec![0.5; 4], 3)
            .await
            .unwrap()
            .1
            .len(),
        3
    );
    assert!(matches!(
        search(&tenancy, &large, vec![0.5; 5], 3).await,
        Err(Error::EmbeddingDimension {
            expected: 4,
            got: 5,
            ..
        })
    ));
    // The next refresh builds the large tenant's index for 4 dimensions.
    m.refresh(&PASSAGES.spec).await.unwrap();
    let tiers = m.tiers(&PASSAGES.spec).await.unwrap();
    let index = tiers
        .iter()
        .find(|t| t.tenant_id == large.id)
        .and_then(|t| t.index_name.clone())
        .unwrap();
    let definition: String = sqlx::query_scalar("SELECT pg_get_indexdef($1::regclass)")
        .bind(&index)
        .fetch_one(db.admin_pool())
        .await
        .unwrap();
    assert!(definition.contains("::vector(4)"), "{definition}");
    assert_eq!(
        search(&tenancy, &large, vec![0.5; 4], 3).await.unwrap().0,
        Route::TenantHnsw
    );

    // Moving a row into a tenant of another dimension is refused by the trigger too.
    let refused = sqlx::query(
        "UPDATE passages SET tenant_id = $1, project_id = $2 WHERE tenant_id = $3 AND body = 'p1'",
    )
    .bind(large.id.as_uuid())
    .bind(large.project.as_uuid())
    .bind(small.id.as_uuid())
    .execute(db.admin_pool())
    .await;
    assert_eq!(sqlstate(refused), "23514");
}

/// A write of the old model in flight when the model changes: the change waits for it (the
/// trigger holds the tenant's advisory lock shared) and then clears its vector too, so no
/// vector of the old model survives the change.
#[tokio::test]
async fn a_model_change_waits_for_writes_in_flight_and_clears_them() {
    assert_eq!(
        tenancy_runtime::vector::SETTINGS_LOCK_CLASS,
        tenancy_core::sql::vector_settings::SETTINGS_LOCK_CLASS
    );
    let (db, _tmp) = database().await;
    let t = add_tenant(&db, "busy").await;
    fill(&db, &t, 3, 5).await;
    let m = VectorMaintenance::new(db.admin_pool().clone(), "test", config()).unwrap();
    m.install().await.unwrap();

    // An application transaction writes a 3-dimensional vector and stays open.
    let tenancy = tenancy(&db);
    let ctx = tenancy.authorize(t.user, t.id).await.unwrap();
    let scope = ctx.project(t.project).unwrap().require::<Editor>().unwrap();
    let mut writer = tenancy.begin(&scope).await.unwrap();
    sqlx::query(
        "INSERT INTO passages (tenant_id, project_id, body, embedding) \
         VALUES ($1, $2, 'in flight', '[1,2,3]')",
    )
    .bind(t.id.as_uuid())
    .bind(t.project.as_uuid())
    .execute(writer.connection())
    .await
    .unwrap();

    let (spec, tenant) = (PASSAGES.spec, t.id);
    let change = tokio::spawn(async move {
        m.set_embedding_model(&spec, tenant, &EmbeddingModel::new("wide-5", 5), "ops")
            .await
    });
    // The change waits for the writer.
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    assert!(
        !change.is_finished(),
        "the change did not wait for the write in flight"
    );
    writer.commit().await.unwrap();
    let change = change.await.unwrap().unwrap();
    assert_eq!(change.stale_vectors, 6);
    assert_eq!(count_vectors(&db, &t).await, (6, 0));
}
