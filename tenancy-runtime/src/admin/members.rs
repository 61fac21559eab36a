//! Memberships: add, change and remove a member's role (never leaving a project without an
//! owner), list the members.

use super::*;

impl Onboarding {
    /// Locks the project's row (serialising membership changes of the project) or returns
    /// [`AdminError::ProjectNotFound`].
    pub(super) async fn lock_project(
        &self,
        tx: &mut SystemTx,
        tenant: TenantId,
        project: ProjectId,
    ) -> Result<(), AdminError> {
        // NO KEY UPDATE does not block the app's inserts that reference the project.
        let found: Option<i32> = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
            "SELECT 1 FROM {} WHERE tenant_id = $1 AND id = $2 FOR NO KEY UPDATE",
            quoted(&self.tables.projects_table)
        )))
        .bind(tenant)
        .bind(project)
        .fetch_optional(tx.connection())
        .await?;
        match found {
            Some(_) => Ok(()),
            None => Err(AdminError::ProjectNotFound {
                tenant: tenant.to_string(),
                project: project.to_string(),
            }),
        }
    }

    /// The user's role in the project, if any.
    pub async fn member_role(
        &self,
        tx: &mut SystemTx,
        tenant: TenantId,
        project: ProjectId,
        user: UserId,
    ) -> Result<Option<String>, AdminError> {
        let role: Option<String> = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
            "SELECT role::pg_catalog.text FROM {} WHERE tenant_id = $1 AND project_id = $2 AND user_id = $3",
            quoted(&self.tables.memberships_table)
        )))
        .bind(tenant)
        .bind(project)
        .bind(user)
        .fetch_optional(tx.connection())
        .await?;
        Ok(role)
    }

    /// Grants `role` to a user who holds no role in the project yet
    /// ([`AdminError::AlreadyExists`] otherwise: use [`Onboarding::set_role`]).
    /// Audit: `member.add` with `project_id`, `user_id`, `role`.
    pub async fn add_member(
        &self,
        tx: &mut SystemTx,
        tenant: TenantId,
        project: ProjectId,
        user: UserId,
        role: &str,
    ) -> Result<(), AdminError> {
        self.check_role(tx, role).await?;
        self.lock_project(tx, tenant, project).await?;
        if let Some(existing) = self.member_role(tx, tenant, project, user).await? {
            return Err(AdminError::AlreadyExists(format!(
                "membership of user {user} in project {project} (role {existing})"
            )));
        }
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "INSERT INTO {} (tenant_id, project_id, user_id, role) \
             VALUES ($1, $2, $3, CAST($4 AS {}))",
            quoted(&self.tables.memberships_table),
            self.role_type()
        )))
        .bind(tenant)
        .bind(project)
        .bind(user)
        .bind(role)
        .execute(tx.connection())
        .await?;
        self.record(
            tx.connection(),
            tenant,
            Some(project),
            "member.add",
            Subject::default()
                .id("project_id", project.as_uuid())
                .id("user_id", user.as_uuid())
                .role("role", role),
        )
        .await?;
        Ok(())
    }

    /// Changes a member's role and returns the previous one; [`AdminError::NotAMember`] when the
    /// user holds no role, [`AdminError::LastOwner`] when it would demote the project's last
    /// holder of the highest role. Setting the role the user already holds changes nothing and
    /// records nothing. Audit: `member.set_role` with `project_id`, `user_id`, `role`,
    /// `previous_role`.
    pub async fn set_role(
        &self,
        tx: &mut SystemTx,
        tenant: TenantId,
        project: ProjectId,
        user: UserId,
        role: &str,
    ) -> Result<String, AdminError> {
        let roles = self.check_role(tx, role).await?;
        self.lock_project(tx, tenant, project).await?;
        let previous = self
            .member_role(tx, tenant, project, user)
            .await?
            .ok_or_else(|| AdminError::NotAMember {
                user: user.to_string(),
                project: project.to_string(),
            })?;
        if previous == role {
            return Ok(previous);
        }
        self.refuse_last_owner(tx, &roles, tenant, project, user, &previous)
            .await?;
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "UPDATE {} SET role = CAST($4 AS {}) \
             WHERE tenant_id = $1 AND project_id = $2 AND user_id = $3",
            quoted(&self.tables.memberships_table),
            self.role_type()
        )))
        .bind(tenant)
        .bind(project)
        .bind(user)
        .bind(role)
        .execute(tx.connection())
        .await?;
        self.record(
            tx.connection(),
            tenant,
            Some(project),
            "member.set_role",
            Subject::default()
                .id("project_id", project.as_uuid())
                .id("user_id", user.as_uuid())
                .role("role", role)
                .role("previous_role", &previous),
        )
        .await?;
        Ok(previous)
    }

    /// Removes a member and returns the role they held; [`AdminError::NotAMember`] when the
    /// user holds no role, [`AdminError::LastOwner`] for the project's last holder of the
    /// highest role. Audit: `member.remove` with `project_id`, `user_id`, `previous_role`.
    pub async fn remove_member(
        &self,
        tx: &mut SystemTx,
        tenant: TenantId,
        project: ProjectId,
        user: UserId,
    ) -> Result<String, AdminError> {
        let roles = self.roles(tx).await?;
        self.lock_project(tx, tenant, project).await?;
        let previous = self
            .member_role(tx, tenant, project, user)
            .await?
            .ok_or_else(|| AdminError::NotAMember {
                user: user.to_string(),
                project: project.to_string(),
            })?;
        self.refuse_last_owner(tx, &roles, tenant, project, user, &previous)
            .await?;
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "DELETE FROM {} WHERE tenant_id = $1 AND project_id = $2 AND user_id = $3",
            quoted(&self.tables.memberships_table)
        )))
        .bind(tenant)
        .bind(project)
        .bind(user)
        .execute(tx.connection())
        .await?;
        self.record(
            tx.connection(),
            tenant,
            Some(project),
            "member.remove",
            Subject::default()
                .id("project_id", project.as_uuid())
                .id("user_id", user.as_uuid())
                .role("previous_role", &previous),
        )
        .await?;
        Ok(previous)
    }

    /// [`AdminError::LastOwner`] when `user` holds the highest role (`previous`) and nobody
    /// else in the project does. The caller holds the project's lock.
    pub(super) async fn refuse_last_owner(
        &self,
        tx: &mut SystemTx,
        roles: &[String],
        tenant: TenantId,
        project: ProjectId,
        user: UserId,
        previous: &str,
    ) -> Result<(), AdminError> {
        let Some(owner_role) = roles.last() else {
            return Ok(());
        };
        if previous != owner_role {
            return Ok(());
        }
        let other_owners: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
            "SELECT pg_catalog.count(*) FROM {} \
             WHERE tenant_id = $1 AND project_id = $2 AND user_id <> $3 AND role::pg_catalog.text = $4",
            quoted(&self.tables.memberships_table)
        )))
        .bind(tenant)
        .bind(project)
        .bind(user)
        .bind(owner_role)
        .fetch_one(tx.connection())
        .await?;
        if other_owners == 0 {
            return Err(AdminError::LastOwner {
                user: user.to_string(),
                project: project.to_string(),
                owner_role: owner_role.clone(),
            });
        }
        Ok(())
    }

    /// The project's members, highest role first, then by user id.
    /// [`AdminError::ProjectNotFound`] when the project is not in the tenant.
    pub async fn list_members(
        &self,
        tx: &mut SystemTx,
        tenant: TenantId,
        project: ProjectId,
    ) -> Result<Vec<Member>, AdminError> {
        let exists: bool = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
            "SELECT EXISTS (SELECT 1 FROM {} WHERE tenant_id = $1 AND id = $2)",
            quoted(&self.tables.projects_table)
        )))
        .bind(tenant)
        .bind(project)
        .fetch_one(tx.connection())
        .await?;
        if !exists {
            return Err(AdminError::ProjectNotFound {
                tenant: tenant.to_string(),
                project: project.to_string(),
            });
        }
        let rows: Vec<(Uuid, String)> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            // `m.role`, the enum (rank order), not the text output column named `role`.
            "SELECT m.user_id, m.role::pg_catalog.text FROM {} AS m \
             WHERE m.tenant_id = $1 AND m.project_id = $2 ORDER BY m.role DESC, m.user_id",
            quoted(&self.tables.memberships_table)
        )))
        .bind(tenant)
        .bind(project)
        .fetch_all(tx.connection())
        .await?;
        Ok(rows
            .into_iter()
            .map(|(user, role)| Member {
                user: UserId::new(user),
                role,
            })
            .collect())
    }
}
