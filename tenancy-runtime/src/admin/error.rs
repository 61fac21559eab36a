//! Errors of the operator commands: one sentence each, naming what was refused.

use crate::error::Error;

/// Why an onboarding or membership command was refused.
///
/// Unlike [`Error`], these carry detail (slugs, ids, role names): they are shown to the
/// operator who ran the command, never to an end user of another tenant. [`From`] maps each to
/// the [`Error`] variant with the same HTTP meaning.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AdminError {
    /// The input has an invalid form (a slug, a name, an actor, a role name).
    #[error("{0}")]
    InvalidInput(String),
    /// A role name that is not a value of the database's role enum.
    #[error("unknown role `{role}` (roles: {known})")]
    UnknownRole {
        /// The name given.
        role: String,
        /// The enum's values, least privileged first, joined with `, `.
        known: String,
    },
    /// No tenant with that slug.
    #[error("no tenant with slug `{0}`")]
    TenantNotFound(String),
    /// No project with that slug in the tenant.
    #[error("no project with slug `{project}` in tenant {tenant}")]
    ProjectNotFound {
        /// The tenant (its id or slug, as the caller knows it).
        tenant: String,
        /// The project's slug.
        project: String,
    },
    /// The user holds no tenant-wide role in the tenant.
    #[error("user {user} holds no tenant-wide role in tenant {tenant}")]
    NotATenantMember {
        /// The user's id.
        user: String,
        /// The tenant's id.
        tenant: String,
    },
    /// The user holds no role in the project.
    #[error("user {user} is not a member of project {project}")]
    NotAMember {
        /// The user's id.
        user: String,
        /// The project's id.
        project: String,
    },
    /// A row with the same natural key exists already.
    #[error("{0} already exists")]
    AlreadyExists(String),
    /// Removing or demoting the project's last holder of the highest role.
    #[error(
        "user {user} is the last {owner_role} of project {project}: grant {owner_role} to \
         someone else first"
    )]
    LastOwner {
        /// The user's id.
        user: String,
        /// The project's id.
        project: String,
        /// The highest role of the enum (e.g. `owner`).
        owner_role: String,
    },
    /// The runtime or the schema is not what the commands expect (a missing table, role enum
    /// or audit table).
    #[error("tenancy misconfigured: {0}")]
    Misconfigured(String),
    /// Any other database error.
    #[error("database error: {0}")]
    Database(#[source] sqlx::Error),
}

impl From<sqlx::Error> for AdminError {
    fn from(error: sqlx::Error) -> Self {
        AdminError::Database(error)
    }
}

impl From<Error> for AdminError {
    fn from(error: Error) -> Self {
        match error {
            Error::Database(error) => AdminError::Database(error),
            Error::Misconfigured(message) => AdminError::Misconfigured(message),
            other => AdminError::InvalidInput(other.to_string()),
        }
    }
}

impl From<AdminError> for Error {
    /// The runtime error with the same HTTP meaning (the detail is dropped, as [`Error`]
    /// never carries any).
    fn from(error: AdminError) -> Self {
        match error {
            AdminError::InvalidInput(_) | AdminError::UnknownRole { .. } => Error::InvalidInput,
            AdminError::TenantNotFound(_)
            | AdminError::ProjectNotFound { .. }
            | AdminError::NotAMember { .. }
            | AdminError::NotATenantMember { .. } => Error::NotFound,
            AdminError::AlreadyExists(_) | AdminError::LastOwner { .. } => Error::Conflict,
            AdminError::Misconfigured(message) => Error::Misconfigured(message),
            AdminError::Database(error) => Error::from(error),
        }
    }
}
