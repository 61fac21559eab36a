//! Read isolation against an oracle: proptest generates small worlds (tenants, projects, users,
//! role assignments, documents and chunks), Rust computes which rows each context may see (and
//! change, for RETURNING), and the database, queried as the application role, must answer
//! exactly that for plain selects, joins, aggregates, CTEs and UPDATE/DELETE ... RETURNING.
//!
//! One database for the whole run; each case truncates (as the superuser) and inserts its
//! world. Contexts per case:
//! - every (user, tenant) pair with the user's real memberships in that tenant (also through
//!   the runtime and the generated repositories). Users may hold a tenant-wide role
//!   (`tenant_user_roles`): the context then carries every project of the tenant at the higher
//!   of the two roles and the tenant id at the tenant-wide role's ranks, as `authorize` builds
//!   it, and the runtime check compares that expansion with the oracle's;
//! - a forged context claiming every project of every tenant as owner;
//! - a forged context whose role levels are random and not nested: each of the fields
//!   `{viewer+}`, `{editor+}`, `{admin+}`, `{owner+}` of `tenancy.context`, plus one field beyond
//!   the model's roles, lists a random subset of every tenant's projects and of the tenants' own
//!   ids (where tenant-wide roles put them);
//! - no context at all.
//!
//! Contexts are installed with raw SQL, signed by the test key (docs/context.md); the oracle
//! reads field `3 + rank` for a rule of that rank, as the policies do.

use std::collections::{BTreeMap, BTreeSet};

use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use sqlx::postgres::PgConnection;
use sqlx::{Connection, PgPool};
use tenancy_generated::roles::Viewer;
use tenancy_generated::{ChunkFilter, ChunkPage, Chunks, DocumentFilter, DocumentPage, Documents};
use tenancy_runtime::{Error, Tenancy, TenantId, UserId};
use tenancy_tests::{context_value, TestDb, ROLES};
use uuid::Uuid;

const VIEWER: u8 = 0;
const EDITOR: u8 = 1;
const ADMIN: u8 = 2;
const MAX_PROJECTS_PER_TENANT: usize = 3;
const MAX_TENANTS: usize = 3;
const MAX_PROJECTS: usize = MAX_TENANTS * MAX_PROJECTS_PER_TENANT;
const USERS: usize = 4;
const MAX_DOCS_PER_PROJECT: usize = 4;
/// Project fields of the forged "random levels" context: one per role, plus one beyond them.
const FORGED_FIELDS: usize = ROLES.len() + 1;

/// What proptest generates; [`World::build`] turns it into rows with ids.
#[derive(Clone, Debug)]
struct WorldSpec {
    /// One entry per tenant: its number of projects.
    projects_per_tenant: Vec<usize>,
    /// `[user * MAX_PROJECTS + project]`: the user's role rank in that project, if any.
    roles: Vec<Option<u8>>,
    /// Documents per project.
    docs_per_project: Vec<usize>,
    /// `[project * MAX_DOCS_PER_PROJECT + doc]`: (chunks, token count of the first chunk).
    chunks_per_doc: Vec<(usize, i32)>,
    /// `[project]`, then `[MAX_PROJECTS + tenant]`: bit k set = the forged "random levels"
    /// context lists the project (or the tenant's own id, as a tenant-wide role does) in its
    /// project field k (field `3 + k` of the setting).
    forged_fields: Vec<u8>,
    /// `[user * MAX_TENANTS + tenant]`: the user's tenant-wide role rank, if any.
    tenant_roles: Vec<Option<u8>>,
}

fn world_spec() -> impl Strategy<Value = WorldSpec> {
    (
        prop::collection::vec(1..=MAX_PROJECTS_PER_TENANT, 2..=MAX_TENANTS),
        prop::collection::vec(prop::option::weighted(0.45, 0..4u8), USERS * MAX_PROJECTS),
        prop::collection::vec(0..=MAX_DOCS_PER_PROJECT, MAX_PROJECTS),
        prop::collection::vec((0..=3usize, 1..100i32), MAX_PROJECTS * MAX_DOCS_PER_PROJECT),
        prop::collection::vec(0..(1u8 << FORGED_FIELDS), MAX_PROJECTS + MAX_TENANTS),
        prop::collection::vec(prop::option::weighted(0.25, 0..4u8), USERS * MAX_TENANTS),
    )
        .prop_map(
            |(
                projects_per_tenant,
                roles,
                docs_per_project,
                chunks_per_doc,
                forged_fields,
                tenant_roles,
            )| {
                WorldSpec {
                    projects_per_tenant,
                    roles,
                    docs_per_project,
                    chunks_per_doc,
                    forged_fields,
                    tenant_roles,
                }
            },
        )
}

#[derive(Clone, Copy, Debug)]
struct Project {
    tenant: Uuid,
    id: Uuid,
}

#[derive(Clone, Copy, Debug)]
struct Membership {
    tenant: Uuid,
    project: Uuid,
    user: Uuid,
    rank: u8,
}

/// A tenant-wide role: `rank` in every project of `tenant`.
#[derive(Clone, Copy, Debug)]
struct TenantMembership {
    tenant: Uuid,
    user: Uuid,
    rank: u8,
}

#[derive(Clone, Copy, Debug)]
struct Doc {
    tenant: Uuid,
    project: Uuid,
    id: Uuid,
    /// `created_by`: editors update only their own documents (admins any).
    author: Uuid,
}

#[derive(Clone, Copy, Debug)]
struct Chunk {
    tenant: Uuid,
    project: Uuid,
    id: Uuid,
    doc: Uuid,
    tokens: i32,
}

#[derive(Debug)]
struct World {
    tenants: Vec<Uuid>,
    projects: Vec<Project>,
    users: Vec<Uuid>,
    memberships: Vec<Membership>,
    tenant_memberships: Vec<TenantMembership>,
    docs: Vec<Doc>,
    chunks: Vec<Chunk>,
    /// The project fields of the forged "random levels" context (see [`WorldSpec`]).
    forged_fields: Vec<Vec<Uuid>>,
}

impl World {
    fn build(spec: &WorldSpec) -> World {
        let tenants: Vec<Uuid> = spec
            .projects_per_tenant
            .iter()
            .map(|_| Uuid::new_v4())
            .collect();
        let projects: Vec<Project> = tenants
            .iter()
            .zip(&spec.projects_per_tenant)
            .flat_map(|(tenant, n)| {
                (0..*n).map(move |_| Project {
                    tenant: *tenant,
                    id: Uuid::new_v4(),
                })
            })
            .collect();
        let users: Vec<Uuid> = (0..USERS).map(|_| Uuid::new_v4()).collect();
        let mut memberships = Vec::new();
        for (u, user) in users.iter().enumerate() {
            for (p, project) in projects.iter().enumerate() {
                if let Some(rank) = spec.roles[u * MAX_PROJECTS + p] {
                    memberships.push(Membership {
                        tenant: project.tenant,
                        project: project.id,
                        user: *user,
                        rank,
                    });
                }
            }
        }
        let mut tenant_memberships = Vec::new();
        for (u, user) in users.iter().enumerate() {
            for (t, tenant) in tenants.iter().enumerate() {
                if let Some(rank) = spec.tenant_roles[u * MAX_TENANTS + t] {
                    tenant_memberships.push(TenantMembership {
                        tenant: *tenant,
                        user: *user,
                        rank,
                    });
                }
            }
        }
        let (mut docs, mut chunks) = (Vec::new(), Vec::new());
        for (p, project) in projects.iter().enumerate() {
            for d in 0..spec.docs_per_project[p] {
                let doc = Doc {
                    tenant: project.tenant,
                    project: project.id,
                    id: Uuid::new_v4(),
                    author: users[d % users.len()],
                };
                let (n, tokens) = spec.chunks_per_doc[p * MAX_DOCS_PER_PROJECT + d];
                for k in 0..n {
                    chunks.push(Chunk {
                        tenant: doc.tenant,
                        project: doc.project,
                        id: Uuid::new_v4(),
                        doc: doc.id,
                        tokens: tokens + k as i32,
                    });
                }
                docs.push(doc);
            }
        }
        let forged_fields = (0..FORGED_FIELDS)
            .map(|k| {
                let tenant_ids = tenants
                    .iter()
                    .enumerate()
                    .map(|(t, id)| (MAX_PROJECTS + t, *id));
                projects
                    .iter()
                    .enumerate()
                    .map(|(p, project)| (p, project.id))
                    .chain(tenant_ids)
                    .filter(|(i, _)| spec.forged_fields[*i] & (1 << k) != 0)
                    .map(|(_, id)| id)
                    .collect()
            })
            .collect();
        World {
            tenants,
            projects,
            users,
            memberships,
            tenant_memberships,
            docs,
            chunks,
            forged_fields,
        }
    }

    /// Replaces every row of the database with this world (as the superuser).
    async fn load(&self, admin: &PgPool) {
        sqlx::raw_sql("TRUNCATE tenants CASCADE")
            .execute(admin)
            .await
            .unwrap();
        let slugs: Vec<String> = (0..self.tenants.len()).map(|i| format!("t{i}")).collect();
        sqlx::query("INSERT INTO tenants (id, name, slug) SELECT * , s FROM unnest($1::uuid[], $2::text[]) AS u(id, s)")
            .bind(&self.tenants)
            .bind(&slugs)
            .execute(admin)
            .await
            .unwrap();
        sqlx::query(
            "INSERT INTO projects (tenant_id, id, name, slug) \
             SELECT t, p, p::text, p::text FROM unnest($1::uuid[], $2::uuid[]) AS u(t, p)",
        )
        .bind(self.projects.iter().map(|p| p.tenant).collect::<Vec<_>>())
        .bind(self.projects.iter().map(|p| p.id).collect::<Vec<_>>())
        .execute(admin)
        .await
        .unwrap();
        sqlx::query(
            "INSERT INTO user_project_roles (tenant_id, project_id, user_id, role) \
             SELECT t, p, u, r::tenancy.project_role FROM unnest($1::uuid[], $2::uuid[], $3::uuid[], $4::text[]) AS x(t, p, u, r)",
        )
        .bind(self.memberships.iter().map(|m| m.tenant).collect::<Vec<_>>())
        .bind(self.memberships.iter().map(|m| m.project).collect::<Vec<_>>())
        .bind(self.memberships.iter().map(|m| m.user).collect::<Vec<_>>())
        .bind(self.memberships.iter().map(|m| ROLES[m.rank as usize]).collect::<Vec<_>>())
        .execute(admin)
        .await
        .unwrap();
        sqlx::query(
            "INSERT INTO tenant_user_roles (tenant_id, user_id, role) \
             SELECT t, u, r::tenancy.project_role FROM unnest($1::uuid[], $2::uuid[], $3::text[]) AS x(t, u, r)",
        )
        .bind(self.tenant_memberships.iter().map(|m| m.tenant).collect::<Vec<_>>())
        .bind(self.tenant_memberships.iter().map(|m| m.user).collect::<Vec<_>>())
        .bind(
            self.tenant_memberships
                .iter()
                .map(|m| ROLES[m.rank as usize])
                .collect::<Vec<_>>(),
        )
        .execute(admin)
        .await
        .unwrap();
        sqlx::query(
            "INSERT INTO documents (tenant_id, project_id, id, title, content_hash, created_by) \
             SELECT t, p, d, 'doc', d::text, a FROM unnest($1::uuid[], $2::uuid[], $3::uuid[], $4::uuid[]) AS x(t, p, d, a)",
        )
        .bind(self.docs.iter().map(|d| d.tenant).collect::<Vec<_>>())
        .bind(self.docs.iter().map(|d| d.project).collect::<Vec<_>>())
        .bind(self.docs.iter().map(|d| d.id).collect::<Vec<_>>())
        .bind(self.docs.iter().map(|d| d.author).collect::<Vec<_>>())
        .execute(admin)
        .await
        .unwrap();
        sqlx::query(
            "INSERT INTO chunks (tenant_id, project_id, id, document_id, ordinal, content, token_count) \
             SELECT t, p, c, d, n, 'chunk', k \
             FROM unnest($1::uuid[], $2::uuid[], $3::uuid[], $4::uuid[], $5::int[]) WITH ORDINALITY AS x(t, p, c, d, k, n)",
        )
        .bind(self.chunks.iter().map(|c| c.tenant).collect::<Vec<_>>())
        .bind(self.chunks.iter().map(|c| c.project).collect::<Vec<_>>())
        .bind(self.chunks.iter().map(|c| c.id).collect::<Vec<_>>())
        .bind(self.chunks.iter().map(|c| c.doc).collect::<Vec<_>>())
        .bind(self.chunks.iter().map(|c| c.tokens).collect::<Vec<_>>())
        .execute(admin)
        .await
        .unwrap();
    }
}

/// A context as the database receives it.
#[derive(Clone, Debug)]
struct Context {
    label: String,
    /// `None`: no context at all.
    tenant: Option<Uuid>,
    user: Uuid,
    /// (project, rank), sorted by project: the context carries each project in the fields of
    /// every rank up to its own (what `context_value` writes, and the runtime).
    roles: Vec<(Uuid, u8)>,
    /// `Some`: a forged context sending these project fields as they are (field k lists the
    /// projects of rank k, whatever the other fields say) instead of the fields of `roles`.
    fields: Option<Vec<Vec<Uuid>>>,
    /// The user's real memberships in the tenant (what the runtime would send); false for a
    /// forged context, which only raw SQL can produce.
    honest: bool,
}

impl Context {
    fn begin(&self) -> String {
        let Some(tenant) = self.tenant else {
            return "BEGIN".to_owned();
        };
        let value = match &self.fields {
            None => {
                let roles: Vec<String> = self
                    .roles
                    .iter()
                    .map(|(p, r)| format!("{p}:{}", ROLES[*r as usize]))
                    .collect();
                context_value(
                    &tenant.to_string(),
                    &self.user.to_string(),
                    &roles.join(","),
                )
            }
            Some(fields) => {
                let mut value = format!("{tenant};{}", self.user);
                for field in fields {
                    let ids: Vec<String> = field.iter().map(Uuid::to_string).collect();
                    value.push_str(&format!(";{{{}}}", ids.join(",")));
                }
                value
            }
        };
        format!("BEGIN; {}", tenancy_tests::install_claims(&value))
    }

    /// The projects the policies let through for a rule of `min_rank`: those the context lists
    /// in the field of that rank. (The tenant boundary is checked separately.)
    fn projects_at_least(&self, min_rank: u8) -> BTreeSet<Uuid> {
        match &self.fields {
            None => self
                .roles
                .iter()
                .filter(|(_, r)| *r >= min_rank)
                .map(|(p, _)| *p)
                .collect(),
            Some(fields) => fields
                .get(usize::from(min_rank))
                .into_iter()
                .flatten()
                .copied()
                .collect(),
        }
    }

    fn in_scope(&self, tenant: Uuid, project: Uuid, min_rank: u8) -> bool {
        self.tenant == Some(tenant) && self.projects_at_least(min_rank).contains(&project)
    }
}

/// What the oracle expects one context to get from every probe.
#[derive(Debug, PartialEq, Eq, Default)]
struct Answers {
    documents: Vec<Uuid>,
    chunks: Vec<Uuid>,
    chunk_doc_pairs: Vec<(Uuid, Uuid)>,
    chunks_per_doc: Vec<(Uuid, i64)>,
    per_project: Vec<(Uuid, i64, i64)>,
    totals: (i64, i64),
    cte_docs_with_chunks: Vec<(Uuid, i64)>,
    projects: Vec<Uuid>,
    memberships: Vec<(Uuid, Uuid)>,
    /// Visible tenant-wide roles: (tenant, user).
    tenant_memberships: Vec<(Uuid, Uuid)>,
    tenants: Vec<Uuid>,
    updated_documents: Vec<Uuid>,
    deleted_chunks: Vec<Uuid>,
    deleted_documents: Vec<Uuid>,
}

fn oracle(world: &World, ctx: &Context) -> Answers {
    let docs: Vec<&Doc> = world
        .docs
        .iter()
        .filter(|d| ctx.in_scope(d.tenant, d.project, VIEWER))
        .collect();
    let chunks: Vec<&Chunk> = world
        .chunks
        .iter()
        .filter(|c| ctx.in_scope(c.tenant, c.project, VIEWER))
        .collect();
    let sorted = |mut v: Vec<Uuid>| {
        v.sort();
        v
    };
    let mut per_doc: BTreeMap<Uuid, i64> = docs.iter().map(|d| (d.id, 0)).collect();
    for c in &chunks {
        *per_doc.get_mut(&c.doc).unwrap() += 1;
    }
    let mut per_project: BTreeMap<Uuid, (i64, i64)> = BTreeMap::new();
    for c in &chunks {
        let e = per_project.entry(c.project).or_default();
        e.0 += 1;
        e.1 += i64::from(c.tokens);
    }
    let mut pairs: Vec<(Uuid, Uuid)> = chunks.iter().map(|c| (c.id, c.doc)).collect();
    pairs.sort();
    let mut memberships: Vec<(Uuid, Uuid)> = world
        .memberships
        .iter()
        .filter(|m| {
            ctx.tenant == Some(m.tenant)
                && (ctx.projects_at_least(VIEWER).contains(&m.project) || m.user == ctx.user)
        })
        .map(|m| (m.project, m.user))
        .collect();
    memberships.sort();
    // `allow all to admin` on the tenant-wide roles (the role tested on the tenant itself),
    // and everyone reads their own.
    let mut tenant_memberships: Vec<(Uuid, Uuid)> = world
        .tenant_memberships
        .iter()
        .filter(|m| {
            ctx.tenant == Some(m.tenant)
                && (ctx.projects_at_least(ADMIN).contains(&m.tenant) || m.user == ctx.user)
        })
        .map(|m| (m.tenant, m.user))
        .collect();
    tenant_memberships.sort();
    let tenant_visible = ctx
        .tenant
        .filter(|t| world.tenants.contains(t) && !ctx.projects_at_least(VIEWER).is_empty());
    Answers {
        documents: sorted(docs.iter().map(|d| d.id).collect()),
        chunks: sorted(chunks.iter().map(|c| c.id).collect()),
        chunk_doc_pairs: pairs,
        chunks_per_doc: per_doc.iter().map(|(d, n)| (*d, *n)).collect(),
        per_project: per_project.iter().map(|(p, (n, s))| (*p, *n, *s)).collect(),
        totals: (
            chunks.len() as i64,
            chunks.iter().map(|c| i64::from(c.tokens)).sum(),
        ),
        cte_docs_with_chunks: per_doc
            .iter()
            .filter(|(_, n)| **n > 0)
            .map(|(d, n)| (*d, *n))
            .collect(),
        projects: sorted(
            world
                .projects
                .iter()
                // A project listed, or its tenant listed (a tenant-wide role): the projects
                // policies test both.
                .filter(|p| {
                    ctx.in_scope(p.tenant, p.id, VIEWER) || ctx.in_scope(p.tenant, p.tenant, VIEWER)
                })
                .map(|p| p.id)
                .collect(),
        ),
        memberships,
        tenant_memberships,
        tenants: tenant_visible.into_iter().collect(),
        // `allow update to editor where created_by = current_user` + `allow update to admin`.
        updated_documents: sorted(
            docs.iter()
                .filter(|d| {
                    (ctx.in_scope(d.tenant, d.project, EDITOR) && d.author == ctx.user)
                        || ctx.in_scope(d.tenant, d.project, ADMIN)
                })
                .map(|d| d.id)
                .collect(),
        ),
        deleted_chunks: sorted(
            chunks
                .iter()
                .filter(|c| ctx.in_scope(c.tenant, c.project, EDITOR))
                .map(|c| c.id)
                .collect(),
        ),
        deleted_documents: sorted(
            docs.iter()
                .filter(|d| ctx.in_scope(d.tenant, d.project, ADMIN))
                .map(|d| d.id)
                .collect(),
        ),
    }
}

/// Asks the database every probe in `ctx` (one transaction, rolled back at the end).
async fn probe(conn: &mut PgConnection, ctx: &Context) -> Answers {
    sqlx::raw_sql(sqlx::AssertSqlSafe(ctx.begin()))
        .execute(&mut *conn)
        .await
        .unwrap();
    let ids = |sql: &'static str| sqlx::query_scalar::<_, Uuid>(sqlx::AssertSqlSafe(sql));
    let answers = Answers {
        documents: ids("SELECT id FROM documents ORDER BY id").fetch_all(&mut *conn).await.unwrap(),
        chunks: ids("SELECT id FROM chunks ORDER BY id").fetch_all(&mut *conn).await.unwrap(),
        chunk_doc_pairs: sqlx::query_as(
            "SELECT c.id, d.id FROM chunks c JOIN documents d \
             ON (d.tenant_id, d.project_id, d.id) = (c.tenant_id, c.project_id, c.document_id) ORDER BY 1",
        )
        .fetch_all(&mut *conn)
        .await
        .unwrap(),
        chunks_per_doc: sqlx::query_as(
            "SELECT d.id, count(c.id) FROM documents d LEFT JOIN chunks c ON c.document_id = d.id \
             GROUP BY d.id ORDER BY 1",
        )
        .fetch_all(&mut *conn)
        .await
        .unwrap(),
        per_project: sqlx::query_as(
            "SELECT project_id, count(*), sum(token_count)::bigint FROM chunks GROUP BY project_id ORDER BY 1",
        )
        .fetch_all(&mut *conn)
        .await
        .unwrap(),
        totals: sqlx::query_as("SELECT count(*), coalesce(sum(token_count), 0)::bigint FROM chunks")
            .fetch_one(&mut *conn)
            .await
            .unwrap(),
        cte_docs_with_chunks: sqlx::query_as(
            "WITH per_doc AS MATERIALIZED (SELECT document_id, count(*) AS n FROM chunks GROUP BY document_id), \
             docs AS (SELECT id FROM documents) \
             SELECT docs.id, per_doc.n FROM docs JOIN per_doc ON per_doc.document_id = docs.id ORDER BY 1",
        )
        .fetch_all(&mut *conn)
        .await
        .unwrap(),
        projects: ids("SELECT id FROM projects ORDER BY id").fetch_all(&mut *conn).await.unwrap(),
        memberships: sqlx::query_as("SELECT project_id, user_id FROM user_project_roles ORDER BY 1, 2")
            .fetch_all(&mut *conn)
            .await
            .unwrap(),
        tenant_memberships: sqlx::query_as(
            "SELECT tenant_id, user_id FROM tenant_user_roles ORDER BY 1, 2",
        )
        .fetch_all(&mut *conn)
        .await
        .unwrap(),
        tenants: ids("SELECT id FROM tenants ORDER BY id").fetch_all(&mut *conn).await.unwrap(),
        updated_documents: ids(
            "WITH u AS (UPDATE documents SET title = title || '!' RETURNING id) SELECT id FROM u ORDER BY id",
        )
        .fetch_all(&mut *conn)
        .await
        .unwrap(),
        deleted_chunks: ids("WITH g AS (DELETE FROM chunks RETURNING id) SELECT id FROM g ORDER BY id")
            .fetch_all(&mut *conn)
            .await
            .unwrap(),
        deleted_documents: ids(
            "WITH g AS (DELETE FROM documents RETURNING id) SELECT id FROM g ORDER BY id",
        )
        .fetch_all(&mut *conn)
        .await
        .unwrap(),
    };
    sqlx::raw_sql("ROLLBACK").execute(&mut *conn).await.unwrap();
    answers
}

fn contexts(world: &World) -> Vec<Context> {
    let mut out = Vec::new();
    for (u, user) in world.users.iter().enumerate() {
        for (t, tenant) in world.tenants.iter().enumerate() {
            // What authorize sends: each project at the higher of the project role and the
            // tenant-wide role; with a tenant-wide role, every project of the tenant and the
            // tenant id itself at that role.
            let tenant_rank = world
                .tenant_memberships
                .iter()
                .find(|m| m.user == *user && m.tenant == *tenant)
                .map(|m| m.rank);
            let mut roles: Vec<(Uuid, u8)> = world
                .projects
                .iter()
                .filter(|p| p.tenant == *tenant)
                .filter_map(|p| {
                    let own = world
                        .memberships
                        .iter()
                        .find(|m| m.user == *user && m.project == p.id)
                        .map(|m| m.rank);
                    own.max(tenant_rank).map(|rank| (p.id, rank))
                })
                .chain(tenant_rank.map(|rank| (*tenant, rank)))
                .collect();
            roles.sort();
            out.push(Context {
                label: format!("user {u} in tenant {t}"),
                tenant: Some(*tenant),
                user: *user,
                roles,
                fields: None,
                honest: true,
            });
        }
    }
    let mut everything: Vec<(Uuid, u8)> = world.projects.iter().map(|p| (p.id, 3)).collect();
    everything.sort();
    out.push(Context {
        label: "forged: tenant 0 claiming every project as owner".to_owned(),
        tenant: Some(world.tenants[0]),
        user: world.users[0],
        roles: everything,
        fields: None,
        honest: false,
    });
    out.push(Context {
        label: "forged: tenant 0 with random, not nested role levels".to_owned(),
        tenant: Some(world.tenants[0]),
        user: world.users[0],
        roles: vec![],
        fields: Some(world.forged_fields.clone()),
        honest: false,
    });
    out.push(Context {
        label: "no context".to_owned(),
        tenant: None,
        user: Uuid::nil(),
        roles: vec![],
        fields: None,
        honest: false,
    });
    out
}

/// The runtime's view: authorize, then every project of the user in that tenant, read through
/// the generated repositories. Must match the oracle's documents and chunks.
async fn check_runtime(tenancy: &Tenancy, world: &World, ctx: &Context) -> Result<(), String> {
    let (Some(tenant), true) = (ctx.tenant, ctx.honest) else {
        return Ok(());
    };
    let want = oracle(world, ctx);
    let rc = match tenancy
        .authorize(UserId::new(ctx.user), TenantId::new(tenant))
        .await
    {
        Ok(rc) => rc,
        Err(Error::NotFound) if ctx.roles.is_empty() => return Ok(()),
        Err(err) => return Err(format!("{}: authorize: {err:?}", ctx.label)),
    };
    let scope = rc.all_projects().with_at_least::<Viewer>();
    let mut tx = tenancy.begin(&scope).await.map_err(|e| format!("{e:?}"))?;
    let mut docs: Vec<Uuid> = Documents::list(
        &mut tx,
        &DocumentFilter::default(),
        DocumentPage {
            after: None,
            limit: 1000,
        },
    )
    .await
    .map_err(|e| format!("{e:?}"))?
    .into_iter()
    .map(|d| d.id)
    .collect();
    docs.sort();
    let mut chunks: Vec<Uuid> = Chunks::list(
        &mut tx,
        &ChunkFilter::default(),
        ChunkPage {
            after: None,
            limit: 1000,
        },
    )
    .await
    .map_err(|e| format!("{e:?}"))?
    .into_iter()
    .map(|c| c.id)
    .collect();
    chunks.sort();
    let count = Chunks::count(&mut tx, &ChunkFilter::default())
        .await
        .map_err(|e| format!("{e:?}"))?;
    tx.rollback().await.map_err(|e| format!("{e:?}"))?;
    if docs != want.documents || chunks != want.chunks || count != want.chunks.len() as i64 {
        return Err(format!(
            "{}: runtime saw {} documents / {} chunks (count {count}), oracle says {} / {}",
            ctx.label,
            docs.len(),
            chunks.len(),
            want.documents.len(),
            want.chunks.len()
        ));
    }
    Ok(())
}

async fn check_world(
    db: &TestDb,
    conn: &mut PgConnection,
    tenancy: &Tenancy,
    spec: &WorldSpec,
) -> Result<(), String> {
    let world = World::build(spec);
    world.load(db.admin_pool()).await;
    for ctx in contexts(&world) {
        let want = oracle(&world, &ctx);
        let got = probe(conn, &ctx).await;
        if got != want {
            return Err(format!(
                "{}:\n database: {got:?}\n   oracle: {want:?}",
                ctx.label
            ));
        }
        check_runtime(tenancy, &world, &ctx).await?;
    }
    Ok(())
}

#[test]
fn every_context_reads_exactly_what_the_oracle_allows() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let db = rt.block_on(TestDb::fresh());
    let conn = std::cell::RefCell::new(rt.block_on(PgConnection::connect(db.app_url())).unwrap());
    let tenancy = Tenancy::with_config(db.app_pool().clone(), tenancy_generated::config());
    let mut runner = TestRunner::new(Config {
        cases: 32,
        failure_persistence: None,
        ..Config::default()
    });
    let worlds = std::cell::Cell::new(0);
    let nonempty_reads = std::cell::Cell::new(0);
    let result = runner.run(&world_spec(), |spec| {
        worlds.set(worlds.get() + 1);
        let world_docs: usize = spec.docs_per_project.iter().sum();
        if world_docs > 0 {
            nonempty_reads.set(nonempty_reads.get() + 1);
        }
        rt.block_on(check_world(&db, &mut conn.borrow_mut(), &tenancy, &spec))
            .map_err(TestCaseError::fail)
    });
    rt.block_on(conn.into_inner().close()).unwrap();
    rt.block_on(db.drop_db());
    if let Err(err) = result {
        panic!("{err}");
    }
    assert!(worlds.get() >= 32, "only {} worlds ran", worlds.get());
    assert!(nonempty_reads.get() > 0);
}

#[test]
fn the_oracle_itself_on_a_hand_made_world() {
    // Tenant T with projects P (viewer) and Q (admin); tenant U with project R (owner).
    let (t, u, p, q, r) = (
        Uuid::from_u128(1),
        Uuid::from_u128(2),
        Uuid::from_u128(10),
        Uuid::from_u128(11),
        Uuid::from_u128(12),
    );
    let user = Uuid::from_u128(100);
    let doc = |tenant, project, id| Doc {
        tenant,
        project,
        id: Uuid::from_u128(id),
        author: Uuid::from_u128(999),
    };
    let world = World {
        tenants: vec![t, u],
        projects: vec![
            Project { tenant: t, id: p },
            Project { tenant: t, id: q },
            Project { tenant: u, id: r },
        ],
        users: vec![user],
        memberships: vec![],
        tenant_memberships: vec![],
        docs: vec![doc(t, p, 20), doc(t, q, 21), doc(u, r, 22)],
        chunks: vec![Chunk {
            tenant: t,
            project: q,
            id: Uuid::from_u128(30),
            doc: Uuid::from_u128(21),
            tokens: 5,
        }],
        forged_fields: vec![],
    };
    let ctx = Context {
        label: "t".into(),
        tenant: Some(t),
        user,
        roles: vec![(p, 0), (q, 2), (r, 3)],
        fields: None,
        honest: false,
    };
    // Each project in the fields of every rank up to its own.
    assert_eq!(
        ctx.begin(),
        format!(
            "BEGIN; {}",
            tenancy_tests::install_claims(&format!(
                "{t};{user};{{{p},{q},{r}}};{{{q},{r}}};{{{q},{r}}};{{{r}}}"
            ))
        )
    );
    let a = oracle(&world, &ctx);
    assert_eq!(a.documents, vec![Uuid::from_u128(20), Uuid::from_u128(21)]);
    assert_eq!(a.updated_documents, vec![Uuid::from_u128(21)]);
    assert_eq!(a.deleted_documents, vec![Uuid::from_u128(21)]);
    assert_eq!(a.per_project, vec![(q, 1, 5)]);
    assert_eq!(
        a.chunks_per_doc,
        vec![(Uuid::from_u128(20), 0), (Uuid::from_u128(21), 1)]
    );
    assert_eq!(a.cte_docs_with_chunks, vec![(Uuid::from_u128(21), 1)]);
    assert_eq!(a.projects, vec![p, q]);
    assert_eq!(a.tenants, vec![t]);
    // Forged fields are read by position only: viewer {P}, editor {Q}, admin {P, Q, R},
    // owner {}, a fifth field {P} that no rule reads.
    let forged = Context {
        label: "forged".into(),
        tenant: Some(t),
        user,
        roles: vec![],
        fields: Some(vec![vec![p], vec![q], vec![p, q, r], vec![], vec![p]]),
        honest: false,
    };
    assert_eq!(
        forged.begin(),
        format!(
            "BEGIN; {}",
            tenancy_tests::install_claims(&format!(
                "{t};{user};{{{p}}};{{{q}}};{{{p},{q},{r}}};{{}};{{{p}}}"
            ))
        )
    );
    let f = oracle(&world, &forged);
    assert_eq!(f.documents, vec![Uuid::from_u128(20)]);
    assert_eq!(f.chunks, Vec::<Uuid>::new());
    assert_eq!(f.projects, vec![p]);
    assert_eq!(f.tenants, vec![t]);
    // Updating needs the update rule's field (editor, for the author's own documents; or
    // admin) and the viewer field (RETURNING reads the row): document 20 in P, through the
    // forged admin field; not 21 in Q (editor field, but another author; no viewer field).
    assert_eq!(f.updated_documents, vec![Uuid::from_u128(20)]);
    assert_eq!(f.deleted_documents, vec![Uuid::from_u128(20)]);
    let none = Context {
        label: "none".into(),
        tenant: None,
        user,
        roles: vec![],
        fields: None,
        honest: false,
    };
    assert_eq!(oracle(&world, &none), Answers::default());

    // Tenant-wide roles: the tenant id listed at the admin rank shows every tenant-wide role
    // of the tenant; without it, only the caller's own.
    let other = Uuid::from_u128(101);
    let world = World {
        tenant_memberships: vec![
            TenantMembership {
                tenant: t,
                user,
                rank: ADMIN,
            },
            TenantMembership {
                tenant: t,
                user: other,
                rank: VIEWER,
            },
            TenantMembership {
                tenant: u,
                user: other,
                rank: ADMIN,
            },
        ],
        ..world
    };
    let admin = Context {
        roles: vec![(t, ADMIN)],
        ..ctx.clone()
    };
    assert_eq!(
        oracle(&world, &admin).tenant_memberships,
        vec![(t, user), (t, other)]
    );
    let editor = Context {
        roles: vec![(t, EDITOR)],
        ..ctx
    };
    assert_eq!(oracle(&world, &editor).tenant_memberships, vec![(t, user)]);
}
