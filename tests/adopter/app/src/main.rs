//! A helpdesk on tenancy, as an adopter writes it: two organisations, a scoped insert and read
//! through the generated repositories, a nearest-comment search with pgvector through the
//! runtime's sqlx, and the other organisation seeing none of it.

use helpdesk_tenancy::roles::Agent;
use helpdesk_tenancy::{Comments, NewComment, NewTicket, Tickets};
use pgvector::Vector;
use tenancy_runtime::sqlx::{self, PgPool};
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

    // Bob, in another organisation: nothing of Acme, by id or by search.
    let ctx = tenancy.authorize(UserId::new(bob), TenantId::new(globex)).await?;
    let scope = ctx.project(ProjectId::new(globex_support))?.require::<Agent>()?;
    let mut tx = tenancy.begin(&scope).await?;
    assert!(Tickets::get(&mut tx, ticket.id).await?.is_none());
    let seen: i64 = sqlx::query_scalar("SELECT count(*) FROM comments")
        .fetch_one(tx.connection())
        .await?;
    assert_eq!(seen, 0);
    tx.commit().await?;
    println!("adopter: ok");
    Ok(())
}
