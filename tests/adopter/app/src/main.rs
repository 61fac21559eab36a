//! A helpdesk on tenancy, as an adopter writes it: two organisations, a scoped insert and read
//! through the generated repositories, a nearest-comment search with pgvector through the
//! runtime's sqlx and through the model-driven vector gateway (the helpdesk's own tables,
//! dimensions and distances: `comments.embedding` by L2, `tickets.topic` by inner product, both
//! promoted to per-tenant HNSW indexes by the maintenance), and the other organisation seeing
//! none of it.

use helpdesk_tenancy::roles::Agent;
use helpdesk_tenancy::{Comments, NewComment, NewTicket, Tickets};
use pgvector::Vector;
use tenancy_runtime::sqlx::{self, PgPool};
use tenancy_runtime::vector::{
    Distance, Route, SearchRequest, VectorConfig, VectorGateway, VectorMaintenance, VectorUpdate,
};
use tenancy_runtime::{pool, ProjectId, Tenancy, TenantId, UserId};
use uuid::Uuid;

type Failure = Box<dyn std::error::Error>;

fn env(name: &str) -> Result<String, Failure> {
    std::env::var(name).map_err(|_| format!("{name} is not set").into())
}

/// One organisation with one workspace and one agent, inserted as the operator.
async fn organisation(admin: &PgPool, slug: &str) -> Result<(Uuid, Uuid, Uuid), Failure> {
    let (org, workspace, agent) = (Uuid::new_v4(), Uuid::new_v4(), Uuid::new_v4());
    sqlx::query("INSERT INTO organizations (id, name, slug) VALUES ($1, $2, $2)")
        .bind(org)
        .bind(slug)
        .execute(admin)
        .await?;
    sqlx::query("INSERT INTO workspaces (tenant_id, id, name, slug) VALUES ($1, $2, 'support', 'support')")
        .bind(org)
        .bind(workspace)
        .execute(admin)
        .await?;
    sqlx::query(
        "INSERT INTO workspace_members (tenant_id, project_id, user_id, role) VALUES ($1, $2, $3, 'agent')",
    )
    .bind(org)
    .bind(workspace)
    .bind(agent)
    .execute(admin)
    .await?;
    Ok((org, workspace, agent))
}

#[tokio::main]
async fn main() -> Result<(), Failure> {
    let admin = PgPool::connect(&env("ADMIN_URL")?).await?;
    let (acme, acme_support, alice) = organisation(&admin, "acme").await?;
    let (globex, globex_support, bob) = organisation(&admin, "globex").await?;

    let app = pool::connect(&env("APP_URL")?, &pool::SessionSettings::default(), 4).await?;
    let tenancy = Tenancy::with_config(app, helpdesk_tenancy::config());
    tenancy.check().await?;

    let ctx = tenancy.authorize(UserId::new(alice), TenantId::new(acme)).await?;
    let scope = ctx.project(ProjectId::new(acme_support))?.require::<Agent>()?;
    let mut tx = tenancy.begin(&scope).await?;
    // `new` takes the required columns only: adding an optional column to the policies does
    // not break this code.
    let ticket = Tickets::insert(&mut tx, NewTicket::new("printer jammed".to_owned(), alice)).await?;
    for (body, embedding) in [("paper stuck", [1.0, 0.0, 0.0]), ("toner empty", [0.0, 1.0, 0.0])] {
        let mut comment = NewComment::new(ticket.id, body.to_owned());
        comment.embedding = Some(Vector::from(embedding.to_vec()));
        Comments::insert(&mut tx, comment).await?;
    }
    // The ticket's topic vector through the gateway (tickets have an update rule, agent).
    let tickets = VectorGateway::new(Tickets::TOPIC_VECTORS, VectorConfig::default());
    let topic = VectorUpdate {
        project_id: ProjectId::new(acme_support),
        key: ticket.id,
        vector: Some(Vector::from(vec![0.0, 1.0])),
    };
    assert_eq!(tickets.set_embeddings(&mut tx, &[topic]).await?, 1);
    let read = Tickets::get(&mut tx, ticket.id).await?.ok_or("the new ticket is not visible")?;
    assert_eq!(read.status, "open");
    let nearest: Vec<String> = sqlx::query_scalar(
        "SELECT body FROM comments WHERE tenant_id = $1 AND project_id = $2 \
         ORDER BY embedding <-> $3 LIMIT 1",
    )
    .bind(acme)
    .bind(acme_support)
    .bind(Vector::from(vec![0.9, 0.1, 0.0]))
    .fetch_all(tx.connection())
    .await?;
    assert_eq!(nearest, ["paper stuck"]);
    tx.commit().await?;

    // The vector gateway on the helpdesk's own descriptors: the catalog (installed by the
    // maintenance pool), exact search first, then each organisation's own HNSW index.
    assert_eq!(Comments::EMBEDDING_VECTORS.spec.distance, Distance::L2);
    assert_eq!(Tickets::TOPIC_VECTORS.spec.distance, Distance::InnerProduct);
    let config = VectorConfig {
        promote_at: 1,
        demote_below: None,
        exact_scope_max: 0,
        min_hnsw_scope_share: 0.0,
        ..VectorConfig::default()
    };
    let maintenance = VectorMaintenance::new(admin.clone(), "adopter: vector tiers", config.clone())?;
    maintenance.install().await?;
    let comments = VectorGateway::new(Comments::EMBEDDING_VECTORS, config.clone());
    let tickets = VectorGateway::new(Tickets::TOPIC_VECTORS, config);
    let query = SearchRequest::new(Vector::from(vec![0.9, 0.1, 0.0]), 2);
    let acme_scope = |ctx: &tenancy_runtime::RequestContext| {
        ctx.project(ProjectId::new(acme_support))?.require::<Agent>()
    };
    let ctx = tenancy.authorize(UserId::new(alice), TenantId::new(acme)).await?;
    let mut tx = tenancy.begin(&acme_scope(&ctx)?).await?;
    // The typed search the generator emits: the helpdesk's own `Comment` rows.
    let found = Comments::nearest_by_embedding(&mut tx, comments.config(), &query).await?;
    assert_eq!(found.route, Route::Exact);
    let bodies: Vec<&str> = found.hits.iter().map(|h| h.row.body.as_str()).collect();
    assert_eq!(bodies, ["paper stuck", "toner empty"]);
    let acme_comments: Vec<Uuid> = found.hits.iter().map(|h| h.key).collect();
    let on_ticket = comments
        .search(&mut tx, &query.clone().where_eq("ticket_id", ticket.id))
        .await?;
    assert_eq!(on_ticket.hits.len(), 2);
    tx.commit().await?;

    // Globex gets a comment identical to the query: still never in Acme's results, and Acme's
    // never in Globex's.
    let ctx = tenancy.authorize(UserId::new(bob), TenantId::new(globex)).await?;
    let scope = ctx.project(ProjectId::new(globex_support))?.require::<Agent>()?;
    let mut tx = tenancy.begin(&scope).await?;
    let globex_ticket = Tickets::insert(&mut tx, NewTicket::new("login fails".to_owned(), bob)).await?;
    let mut comment = NewComment::new(globex_ticket.id, "password reset".to_owned());
    comment.embedding = Some(query.query.clone());
    let globex_comment = Comments::insert(&mut tx, comment).await?;
    tx.commit().await?;

    let reports = maintenance.refresh_all(helpdesk_tenancy::VECTOR_TABLES).await?;
    let promoted: Vec<(String, usize)> =
        reports.iter().map(|r| (r.table.clone(), r.promoted.len())).collect();
    assert_eq!(
        promoted,
        [("public.tickets".to_owned(), 1), ("public.comments".to_owned(), 2)]
    );
    let ctx = tenancy.authorize(UserId::new(alice), TenantId::new(acme)).await?;
    let mut tx = tenancy.begin(&acme_scope(&ctx)?).await?;
    let found = comments.search(&mut tx, &query).await?;
    assert_eq!(found.route, Route::TenantHnsw);
    assert_eq!(found.hits.iter().map(|h| h.key).collect::<Vec<_>>(), acme_comments);
    let topics = tickets
        .search(&mut tx, &SearchRequest::new(Vector::from(vec![0.0, 2.0]), 1))
        .await?;
    assert_eq!(topics.route, Route::TenantHnsw);
    assert_eq!(topics.hits.iter().map(|h| h.key).collect::<Vec<_>>(), [ticket.id]);
    assert!((topics.hits[0].distance + 2.0).abs() < 1e-6, "negative inner product");
    tx.commit().await?;
    let ctx = tenancy.authorize(UserId::new(bob), TenantId::new(globex)).await?;
    let scope = ctx.project(ProjectId::new(globex_support))?.require::<Agent>()?;
    let mut tx = tenancy.begin(&scope).await?;
    let found = comments.search(&mut tx, &SearchRequest::new(query.query.clone(), 1)).await?;
    assert_eq!(found.route, Route::TenantHnsw);
    assert_eq!(found.hits.iter().map(|h| h.key).collect::<Vec<_>>(), [globex_comment.id]);
    assert!(found.hits[0].distance.abs() < 1e-6);
    tx.commit().await?;

    // Bob, in another organisation: nothing of Acme, by id or by search.
    let ctx = tenancy.authorize(UserId::new(bob), TenantId::new(globex)).await?;
    let scope = ctx.project(ProjectId::new(globex_support))?.require::<Agent>()?;
    let mut tx = tenancy.begin(&scope).await?;
    assert!(Tickets::get(&mut tx, ticket.id).await?.is_none());
    let seen: i64 = sqlx::query_scalar("SELECT count(*) FROM comments WHERE tenant_id <> $1")
        .bind(globex)
        .fetch_one(tx.connection())
        .await?;
    assert_eq!(seen, 0);
    tx.commit().await?;
    println!("adopter: ok");
    Ok(())
}
