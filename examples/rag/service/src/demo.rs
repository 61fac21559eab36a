//! Demo data (two tenants) and development tokens.

use jsonwebtoken::{encode, Algorithm, EncodingKey, Header};
use sqlx::PgPool;
use tenancy_runtime::http::Claims;
use uuid::Uuid;

/// Fixed ids of the demo data, so the printed curl commands stay valid across restarts.
pub mod ids {
    use uuid::Uuid;
    /// Tenant "Acme".
    pub const ACME: Uuid = Uuid::from_u128(0xa000_0000_0000_4000_8000_0000_0000_0001);
    /// Acme's project "handbook".
    pub const ACME_HANDBOOK: Uuid = Uuid::from_u128(0xa000_0000_0000_4000_8000_0000_0000_0011);
    /// Acme's project "support".
    pub const ACME_SUPPORT: Uuid = Uuid::from_u128(0xa000_0000_0000_4000_8000_0000_0000_0012);
    /// Tenant "Globex".
    pub const GLOBEX: Uuid = Uuid::from_u128(0xb000_0000_0000_4000_8000_0000_0000_0001);
    /// Globex's project "research".
    pub const GLOBEX_RESEARCH: Uuid = Uuid::from_u128(0xb000_0000_0000_4000_8000_0000_0000_0011);
    /// Alice: owner of Acme/handbook, viewer of Acme/support.
    pub const ALICE: Uuid = Uuid::from_u128(0xc000_0000_0000_4000_8000_0000_0000_0001);
    /// Bob: viewer of Acme/handbook.
    pub const BOB: Uuid = Uuid::from_u128(0xc000_0000_0000_4000_8000_0000_0000_0002);
    /// Carol: owner of Globex/research.
    pub const CAROL: Uuid = Uuid::from_u128(0xc000_0000_0000_4000_8000_0000_0000_0003);
}

/// Seeds the two demo tenants through a privileged pool (idempotent: `ON CONFLICT DO NOTHING`).
pub async fn seed(maintenance: &PgPool) -> anyhow::Result<()> {
    use ids::*;
    let mut tx = maintenance.begin().await?;
    for (id, name, slug) in [(ACME, "Acme", "acme"), (GLOBEX, "Globex", "globex")] {
        sqlx::query(
            "INSERT INTO tenants (id, name, slug) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
        )
        .bind(id)
        .bind(name)
        .bind(slug)
        .execute(&mut *tx)
        .await?;
    }
    for (tenant, id, name, slug) in [
        (ACME, ACME_HANDBOOK, "Handbook", "handbook"),
        (ACME, ACME_SUPPORT, "Support", "support"),
        (GLOBEX, GLOBEX_RESEARCH, "Research", "research"),
    ] {
        sqlx::query(
            "INSERT INTO projects (tenant_id, id, name, slug) VALUES ($1, $2, $3, $4) \
             ON CONFLICT DO NOTHING",
        )
        .bind(tenant)
        .bind(id)
        .bind(name)
        .bind(slug)
        .execute(&mut *tx)
        .await?;
    }
    for (tenant, project, user, role) in [
        (ACME, ACME_HANDBOOK, ALICE, "owner"),
        (ACME, ACME_SUPPORT, ALICE, "viewer"),
        (ACME, ACME_HANDBOOK, BOB, "viewer"),
        (GLOBEX, GLOBEX_RESEARCH, CAROL, "owner"),
    ] {
        sqlx::query(
            "INSERT INTO user_project_roles (tenant_id, project_id, user_id, role) \
             VALUES ($1, $2, $3, $4::tenancy.project_role) ON CONFLICT DO NOTHING",
        )
        .bind(tenant)
        .bind(project)
        .bind(user)
        .bind(role)
        .execute(&mut *tx)
        .await?;
    }
    for (tenant, project, title, hash, author) in [
        (
            ACME,
            ACME_HANDBOOK,
            "Acme vacation policy",
            "demo-acme-1",
            ALICE,
        ),
        (
            GLOBEX,
            GLOBEX_RESEARCH,
            "Globex secret formula",
            "demo-globex-1",
            CAROL,
        ),
    ] {
        sqlx::query(
            "INSERT INTO documents (tenant_id, project_id, title, content_hash, created_by) \
             VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING",
        )
        .bind(tenant)
        .bind(project)
        .bind(title)
        .bind(hash)
        .bind(author)
        .execute(&mut *tx)
        .await?;
    }
    tx.commit().await?;
    Ok(())
}

/// An HS256 token for `user`, valid for `ttl_secs` (development and tests).
pub fn mint_token(
    secret: &[u8],
    issuer: &str,
    audience: &str,
    user: Uuid,
    ttl_secs: i64,
) -> anyhow::Result<String> {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_secs();
    let exp = if ttl_secs >= 0 {
        now.saturating_add(ttl_secs.unsigned_abs())
    } else {
        now.saturating_sub(ttl_secs.unsigned_abs())
    };
    let claims = Claims {
        sub: user.to_string(),
        iss: issuer.to_owned(),
        aud: audience.to_owned(),
        exp,
        iat: Some(now),
        nbf: None,
    };
    Ok(encode(
        &Header::new(Algorithm::HS256),
        &claims,
        &EncodingKey::from_secret(secret),
    )?)
}
