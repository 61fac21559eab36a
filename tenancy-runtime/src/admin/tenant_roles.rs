//! Tenant-wide roles on the operator path: give, change and remove a user's role in every
//! project of a tenant (the tenant memberships table, docs/dsl.md "Tenant-wide roles").

use super::*;

impl Onboarding {
    /// The tenant memberships table, or [`AdminError::Misconfigured`] when the model has none.
    fn tenant_memberships_table(&self) -> Result<String, AdminError> {
        self.tables
            .tenant_memberships_table
            .as_deref()
            .map(quoted)
            .ok_or_else(|| {
                AdminError::Misconfigured(
                    "the policies declare no tenant_memberships table (tenant-wide roles)"
                        .to_owned(),
                )
            })
    }

    /// The user's tenant-wide role in `tenant`, if any.
    pub async fn tenant_role(
        &self,
        tx: &mut SystemTx,
        tenant: TenantId,
        user: UserId,
    ) -> Result<Option<String>, AdminError> {
        let role: Option<String> = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
            "SELECT role::pg_catalog.text FROM {} WHERE tenant_id = $1 AND user_id = $2",
            self.tenant_memberships_table()?
        )))
        .bind(tenant)
        .bind(user)
        .fetch_optional(tx.connection())
        .await?;
        Ok(role)
    }

    /// Gives the user `role` in every project of `tenant` (a new row, or a changed one) and
    /// returns the previous tenant-wide role. Setting the role the user already holds changes
    /// nothing and records nothing. Audit: `tenant_member.set_role` with `user_id`, `role`,
    /// `previous_role` (empty for a new one).
    pub async fn set_tenant_role(
        &self,
        tx: &mut SystemTx,
        tenant: TenantId,
        user: UserId,
        role: &str,
    ) -> Result<Option<String>, AdminError> {
        self.check_role(tx, role).await?;
        let table = self.tenant_memberships_table()?;
        let previous = self.tenant_role(tx, tenant, user).await?;
        if previous.as_deref() == Some(role) {
            return Ok(previous);
        }
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "INSERT INTO {table} (tenant_id, user_id, role) VALUES ($1, $2, CAST($3 AS {})) \
             ON CONFLICT (tenant_id, user_id) DO UPDATE SET role = EXCLUDED.role",
            self.role_type()
        )))
        .bind(tenant)
        .bind(user)
        .bind(role)
        .execute(tx.connection())
        .await?;
        self.record(
            tx.connection(),
            tenant,
            None,
            "tenant_member.set_role",
            Subject::default()
                .id("user_id", user.as_uuid())
                .role("role", role)
                .role("previous_role", previous.as_deref().unwrap_or("")),
        )
        .await?;
        Ok(previous)
    }

    /// Removes the user's tenant-wide role and returns it; [`AdminError::NotATenantMember`] when
    /// they hold none. Their project roles stay. Audit: `tenant_member.remove` with
    /// `user_id`, `role`.
    pub async fn remove_tenant_role(
        &self,
        tx: &mut SystemTx,
        tenant: TenantId,
        user: UserId,
    ) -> Result<String, AdminError> {
        let table = self.tenant_memberships_table()?;
        let removed: Option<String> = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
            "DELETE FROM {table} WHERE tenant_id = $1 AND user_id = $2 \
             RETURNING role::pg_catalog.text"
        )))
        .bind(tenant)
        .bind(user)
        .fetch_optional(tx.connection())
        .await?;
        let Some(role) = removed else {
            return Err(AdminError::NotATenantMember {
                user: user.to_string(),
                tenant: tenant.to_string(),
            });
        };
        self.record(
            tx.connection(),
            tenant,
            None,
            "tenant_member.remove",
            Subject::default()
                .id("user_id", user.as_uuid())
                .role("role", &role),
        )
        .await?;
        Ok(role)
    }
}
