//! Scoped request contexts and transactions over sqlx and PostgreSQL row-level security.
//!
//! The flow, each step narrowing what the next may touch:
//!
//! 1. [`Tenancy::authorize`] reads the user's memberships in one tenant and returns a
//!    [`RequestContext`] (the only way to get one).
//! 2. [`RequestContext::project`] / [`RequestContext::projects`] and `require::<R>()` prove a
//!    role and give a typed scope: [`ProjectScope<R>`] (one project, reads and writes) or
//!    [`ProjectsScope<R>`] (several projects, reads only).
//! 3. [`Tenancy::begin`] opens a [`ScopedTx`] whose first round trip is `BEGIN` plus
//!    `install_context` of a signed token (tenant, user, and for each role level the scope's
//!    projects where the user's actual role reaches it; docs/context.md). The database
//!    verifies it, and row-level-security policies read only the verified context, so the
//!    database enforces the same boundary the types describe.
//!
//! Generated repositories take `&mut ScopedTx<S>` with `S: ReadScope<Role>` or
//! `S: WriteScope<Role>`. [`SystemTx`] is the separate, logged escape hatch for maintenance.
//!
//! ```no_run
//! use tenancy_runtime::{Error, ProjectId, Tenancy, TenantId, UserId};
//! tenancy_runtime::roles! { Viewer = "viewer", Editor = "editor", Admin = "admin", Owner = "owner" }
//!
//! async fn rename_note(
//!     tenancy: &Tenancy,
//!     user: UserId,
//!     tenant: TenantId,
//!     project: ProjectId,
//!     note: uuid::Uuid,
//! ) -> Result<(), Error> {
//!     let ctx = tenancy.authorize(user, tenant).await?;
//!     let scope = ctx.project(project)?.require::<Editor>()?;
//!     let mut tx = tenancy.begin(&scope).await?;
//!     sqlx::query("UPDATE notes SET title = 'renamed' WHERE id = $1")
//!         .bind(note)
//!         .execute(tx.connection())
//!         .await?;
//!     tx.commit().await
//! }
//! ```

/// Onboarding and membership administration for operators, through [`SystemTx`], audited.
pub mod admin;
mod begin;
mod context_token;
mod error;
/// The HTTP layer: axum extractor, JWT verification, JSON errors, metrics (feature `axum`).
#[cfg(feature = "axum")]
pub mod http;
mod ids;
/// Pooled connections immune to planted session state and role defaults.
pub mod pool;
mod role;
mod scope;
mod sql_names;
mod system;
mod tenancy;
/// Vector search partitioned by tenant and project (pgvector), routed by scope size.
pub mod vector;

/// The sqlx this runtime is built on: its transactions, pools and errors are this crate's
/// types. Generated repositories and `#[derive(TenantScoped)]` name sqlx through it
/// (`::tenancy_runtime::sqlx`), so a crate using them needs no sqlx dependency of its own,
/// and one that has one must be on this version to pass its own queries a `ScopedTx`.
pub use sqlx;

pub use crate::context_token::{ContextKey, CONTEXT_KEY_ENV, CONTEXT_KEY_FILE_ENV};
pub use crate::error::Error;
pub use crate::ids::{ProjectId, TenantId, UserId};
pub use crate::role::{is_valid_role_name, AtLeast, Role};
pub use crate::scope::{
    ProjectAccess, ProjectScope, ProjectsAccess, ProjectsScope, ReadScope, RequestContext, Scope,
    TenantAccess, TenantReadScope, TenantScope, TenantWriteScope, WriteScope,
};
pub use crate::sql_names::TABLE_SCHEMA;
pub use crate::system::SystemTx;
pub use crate::tenancy::{ScopedTx, Tenancy, TenancyConfig, CONTEXT_CONTRACT};

/// `#[derive(TenantScoped)]`: declares a table of the tenancy model on a struct and expands
/// its tenant-scoped repository (see `docs/derive.md`).
#[cfg(feature = "derive")]
pub use tenancy_macros::TenantScoped;
