//! The access matrix of the generated repositories on a live PostgreSQL.
//!
//! Every generated repository method is called by every caller against rows of its own
//! project, of another project of the same tenant and of another tenant's project. The expected
//! outcome comes from [`rule`] (the rule table of `policies/rag.tenancy`) and the caller's rank in
//! a small oracle, [`expected`]; the oracle itself is checked by hand-written spot checks.
//! Every case also checks through the superuser pool that the table changed exactly as expected:
//! a refused or missed write leaves the table byte-for-byte as it was.
//!
//! Fixtures (written through the admin pool, which bypasses row-level security):
//! tenants T1 (projects P1, P2) and T2 (P3, P4); in T1/P1 one user per role (viewer, editor,
//! admin, owner); `multi` is editor in T1/P1 and viewer in T1/P2; `cross` is viewer in T1/P1 and
//! admin in T2/P3.

use std::collections::BTreeMap;

use sqlx::PgPool;
use tenancy_generated::roles::{Admin, Editor, Viewer};
use tenancy_generated::{
    AssertionFilter, AssertionPage, AssertionPatch, Assertions, ChunkFilter, ChunkPage, ChunkPatch,
    Chunks, DocumentFilter, DocumentPage, DocumentPatch, Documents, NewAssertion, NewChunk,
    NewDocument, NewQuery, NewResponse, NewUserProjectRole, ProjectFilter, ProjectPage,
    ProjectPatch, ProjectRole, Projects, Queries, QueryFilter, QueryPage, ResponseFilter,
    ResponsePage, Responses, Tenants, UserProjectRoleFilter, UserProjectRolePage,
    UserProjectRolePatch, UserProjectRoles,
};
use tenancy_runtime::{Error, ProjectId, RequestContext, Role, Tenancy, TenantId, UserId};
use tenancy_tests::TestDb;
use uuid::Uuid;

const VIEWER: u8 = 0;
const EDITOR: u8 = 1;
const ADMIN: u8 = 2;
const OWNER: u8 = 3;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Table {
    Tenants,
    Projects,
    Memberships,
    Documents,
    Chunks,
    Queries,
    Responses,
    Assertions,
}

const TABLES: [Table; 8] = [
    Table::Tenants,
    Table::Projects,
    Table::Memberships,
    Table::Documents,
    Table::Chunks,
    Table::Queries,
    Table::Responses,
    Table::Assertions,
];

impl Table {
    fn sql_name(self) -> &'static str {
        match self {
            Table::Tenants => "tenants",
            Table::Projects => "projects",
            Table::Memberships => "user_project_roles",
            Table::Documents => "documents",
            Table::Chunks => "chunks",
            Table::Queries => "queries",
            Table::Responses => "responses",
            Table::Assertions => "assertions",
        }
    }

    /// The SQL expression identifying one row (what a case's target id is compared with).
    fn key_column(self) -> &'static str {
        match self {
            Table::Memberships => "user_id",
            _ => "id",
        }
    }

    /// The methods the generator emitted for this table (the match in [`run_case`] fails to
    /// compile if one of them does not exist).
    fn methods(self) -> &'static [Op] {
        use Op::*;
        match self {
            Table::Tenants => &[Get],
            Table::Projects => &[Get, List, Count, Update],
            Table::Queries | Table::Responses => &[Get, List, Count, Insert, InsertMany, Delete],
            _ => &[Get, List, Count, Insert, InsertMany, Update, Delete],
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Op {
    Get,
    List,
    Count,
    Insert,
    InsertMany,
    Update,
    Delete,
}

/// Whose row a case aims at.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Target {
    /// A row of the caller's scope project.
    Own,
    /// A row of another project of the caller's tenant.
    OtherProject,
    /// A row of another tenant's project.
    OtherTenant,
}

const TARGETS: [Target; 3] = [Target::Own, Target::OtherProject, Target::OtherTenant];

/// The rule table of `policies/rag.tenancy`: the least role a command needs, `None` when the
/// table has no rule for it.
fn rule(table: Table, op: Op) -> Option<u8> {
    let (select, insert, update, delete) = match table {
        Table::Tenants => (Some(VIEWER), None, None, None),
        Table::Projects => (Some(VIEWER), None, Some(ADMIN), None),
        Table::Memberships => (Some(VIEWER), Some(ADMIN), Some(ADMIN), Some(ADMIN)),
        Table::Documents => (Some(VIEWER), Some(EDITOR), Some(EDITOR), Some(ADMIN)),
        Table::Chunks => (Some(VIEWER), Some(EDITOR), Some(EDITOR), Some(EDITOR)),
        Table::Queries => (Some(VIEWER), Some(VIEWER), None, Some(ADMIN)),
        Table::Responses => (Some(VIEWER), Some(EDITOR), None, Some(ADMIN)),
        Table::Assertions => (Some(VIEWER), Some(EDITOR), Some(EDITOR), Some(ADMIN)),
    };
    match op {
        Op::Get | Op::List | Op::Count => select,
        Op::Insert | Op::InsertMany => insert,
        Op::Update => update,
        Op::Delete => delete,
    }
}

/// What a case observed (and what the oracle predicts).
#[derive(Clone, Debug, PartialEq, Eq)]
enum Outcome {
    /// `require::<R>()` refused: the caller's role ranks below the method's rule.
    Forbidden,
    /// A read by id found the row.
    Found,
    /// A read, update or delete by id saw no row; nothing changed.
    Absent,
    /// list and count returned exactly the rows of the scope's project that the caller's
    /// select rules admit (this many).
    Listed(i64),
    /// The write was applied to the target row (insert: into the scope's project).
    Written,
    /// The database refused the write as invalid input (a parent id of another project).
    Invalid,
}

/// The oracle: the outcome the rules predict for a caller of rank `rank` in the scope's project.
/// `own_rows` is the number of rows of the scope's project the caller's select rules admit (for
/// list and count: [`Fixture::visible_rows`]).
fn expected(rank: u8, table: Table, op: Op, target: Target, own_rows: i64) -> Outcome {
    let Some(needed) = rule(table, op) else {
        panic!("{table:?} has no rule for {op:?}: no method to call");
    };
    if rank < needed {
        return Outcome::Forbidden;
    }
    match (op, target) {
        (Op::List | Op::Count, _) => Outcome::Listed(own_rows),
        // `allow select to viewer where asked_by = current_user` (+ `allow select to editor`):
        // the seeded query was asked by someone else, so below editor it is absent.
        (Op::Get, Target::Own) if table == Table::Queries && rank < EDITOR => Outcome::Absent,
        (Op::Get, Target::Own) => Outcome::Found,
        (Op::Insert | Op::InsertMany, Target::Own) => Outcome::Written,
        // Inserting a child row that names a parent of another project: the composite
        // foreign key (tenant_id, project_id, parent_id) finds no parent.
        (Op::Insert | Op::InsertMany, _) => Outcome::Invalid,
        // `allow update to editor where created_by = current_user`: the seeded documents were
        // ingested by someone else (`Seed`), so below admin an update finds no row.
        (Op::Update, Target::Own) if table == Table::Documents && rank < ADMIN => Outcome::Absent,
        (Op::Update | Op::Delete, Target::Own) => Outcome::Written,
        (Op::Get | Op::Update | Op::Delete, _) => Outcome::Absent,
    }
}

/// The targets a (table, op) pair is run against.
fn targets(table: Table, op: Op) -> &'static [Target] {
    match (table, op) {
        // Not aimed at a row: they cover the scope, and the scope is the caller's project.
        (_, Op::List | Op::Count) => &[Target::Own],
        // Reads the scope's own tenant / updates the scope's own project: no id to aim with.
        (Table::Tenants, _) | (Table::Projects, Op::Update) => &[Target::Own],
        // Rows without a parent: an insert always lands in the scope's project (NewX has no
        // tenant_id / project_id, see tests/ui/scope/new_document_with_*.rs).
        (Table::Documents | Table::Queries | Table::Memberships, Op::Insert | Op::InsertMany) => {
            &[Target::Own]
        }
        _ => &TARGETS,
    }
}

#[test]
fn oracle_spot_checks() {
    use Outcome::*;
    // Hand-derived from policies/rag.tenancy.
    assert_eq!(
        expected(VIEWER, Table::Documents, Op::Get, Target::Own, 0),
        Found
    );
    assert_eq!(
        expected(VIEWER, Table::Documents, Op::Insert, Target::Own, 0),
        Forbidden
    );
    assert_eq!(
        expected(VIEWER, Table::Documents, Op::Update, Target::Own, 0),
        Forbidden
    );
    // Only their own documents (row condition); the seeded one is someone else's.
    assert_eq!(
        expected(EDITOR, Table::Documents, Op::Update, Target::Own, 0),
        Absent
    );
    assert_eq!(
        expected(ADMIN, Table::Documents, Op::Update, Target::Own, 0),
        Written
    );
    assert_eq!(
        expected(EDITOR, Table::Documents, Op::Delete, Target::Own, 0),
        Forbidden
    );
    assert_eq!(
        expected(ADMIN, Table::Documents, Op::Delete, Target::OtherProject, 0),
        Absent
    );
    assert_eq!(
        expected(EDITOR, Table::Chunks, Op::Delete, Target::Own, 0),
        Written
    );
    assert_eq!(
        expected(EDITOR, Table::Chunks, Op::Insert, Target::OtherTenant, 0),
        Invalid
    );
    assert_eq!(
        expected(VIEWER, Table::Queries, Op::Insert, Target::Own, 0),
        Written
    );
    assert_eq!(
        expected(EDITOR, Table::Queries, Op::Delete, Target::Own, 0),
        Forbidden
    );
    // Viewers read only the queries they asked; the seeded one is someone else's.
    assert_eq!(
        expected(VIEWER, Table::Queries, Op::Get, Target::Own, 0),
        Absent
    );
    assert_eq!(
        expected(EDITOR, Table::Queries, Op::Get, Target::Own, 0),
        Found
    );
    assert_eq!(
        expected(EDITOR, Table::Memberships, Op::Insert, Target::Own, 0),
        Forbidden
    );
    assert_eq!(
        expected(ADMIN, Table::Memberships, Op::Delete, Target::Own, 0),
        Written
    );
    assert_eq!(
        expected(OWNER, Table::Projects, Op::Update, Target::Own, 0),
        Written
    );
    assert_eq!(
        expected(EDITOR, Table::Projects, Op::Update, Target::Own, 0),
        Forbidden
    );
    assert_eq!(
        expected(VIEWER, Table::Projects, Op::Count, Target::Own, 1),
        Listed(1)
    );
    assert_eq!(rule(Table::Queries, Op::Update), None);
    assert_eq!(rule(Table::Tenants, Op::Insert), None);
    assert_eq!(rule(Table::Projects, Op::Delete), None);
    // The generated role markers rank like the constants.
    assert_eq!(
        [
            Viewer::RANK,
            Editor::RANK,
            Admin::RANK,
            tenancy_generated::roles::Owner::RANK
        ],
        [VIEWER, EDITOR, ADMIN, OWNER]
    );
}

/// One project's place: (tenant, project).
#[derive(Clone, Copy, Debug)]
struct Place {
    tenant: TenantId,
    project: ProjectId,
}

/// A caller: a user acting in one tenant through one project of it.
#[derive(Clone, Debug)]
struct Caller {
    name: &'static str,
    user: UserId,
    own: Place,
    rank: u8,
    other_project: Place,
    other_tenant: Place,
}

impl Caller {
    fn place(&self, target: Target) -> Place {
        match target {
            Target::Own => self.own,
            Target::OtherProject => self.other_project,
            Target::OtherTenant => self.other_tenant,
        }
    }
}

/// One row of each table in one project, freshly inserted for a case.
#[derive(Clone, Copy, Debug)]
struct Seed {
    document: Uuid,
    chunk: Uuid,
    query: Uuid,
    response: Uuid,
    assertion: Uuid,
    member: Uuid,
}

struct Fixture {
    db: TestDb,
    p1: Place,
    p2: Place,
    p3: Place,
    p4: Place,
    /// user -> (tenant, project, role) memberships, as inserted.
    memberships: Vec<(UserId, Place, &'static str)>,
    callers: Vec<Caller>,
}

fn user() -> UserId {
    UserId::new(Uuid::new_v4())
}

impl Fixture {
    async fn new() -> Fixture {
        let db = TestDb::fresh().await;
        let t1 = TenantId::new(Uuid::new_v4());
        let t2 = TenantId::new(Uuid::new_v4());
        let place = |tenant| Place {
            tenant,
            project: ProjectId::new(Uuid::new_v4()),
        };
        let (p1, p2, p3, p4) = (place(t1), place(t1), place(t2), place(t2));
        let admin = db.admin_pool();
        for (tenant, slug) in [(t1, "t1"), (t2, "t2")] {
            sqlx::query("INSERT INTO tenants (id, name, slug) VALUES ($1, $2, $2)")
                .bind(tenant.as_uuid())
                .bind(slug)
                .execute(admin)
                .await
                .unwrap();
        }
        for (p, slug) in [(p1, "p1"), (p2, "p2"), (p3, "p3"), (p4, "p4")] {
            sqlx::query("INSERT INTO projects (tenant_id, id, name, slug) VALUES ($1, $2, $3, $3)")
                .bind(p.tenant.as_uuid())
                .bind(p.project.as_uuid())
                .bind(slug)
                .execute(admin)
                .await
                .unwrap();
        }
        let (viewer, editor, admin_user, owner, multi, cross) =
            (user(), user(), user(), user(), user(), user());
        let memberships = vec![
            (viewer, p1, "viewer"),
            (editor, p1, "editor"),
            (admin_user, p1, "admin"),
            (owner, p1, "owner"),
            (multi, p1, "editor"),
            (multi, p2, "viewer"),
            (cross, p1, "viewer"),
            (cross, p3, "admin"),
        ];
        for (user, p, role) in &memberships {
            sqlx::query(
                "INSERT INTO user_project_roles (tenant_id, project_id, user_id, role) \
                 VALUES ($1, $2, $3, $4::tenancy.project_role)",
            )
            .bind(p.tenant.as_uuid())
            .bind(p.project.as_uuid())
            .bind(user.as_uuid())
            .bind(role)
            .execute(admin)
            .await
            .unwrap();
        }
        let in_t1 = |name, user, rank| Caller {
            name,
            user,
            own: p1,
            rank,
            other_project: p2,
            other_tenant: p3,
        };
        let callers = vec![
            in_t1("viewer", viewer, VIEWER),
            in_t1("editor", editor, EDITOR),
            in_t1("admin", admin_user, ADMIN),
            in_t1("owner", owner, OWNER),
            in_t1("multi@P1 (viewer in P2)", multi, EDITOR),
            in_t1("cross@T1/P1 (admin in T2/P3)", cross, VIEWER),
            Caller {
                name: "cross@T2/P3 (viewer in T1/P1)",
                user: cross,
                own: p3,
                rank: ADMIN,
                other_project: p4,
                other_tenant: p1,
            },
        ];
        Fixture {
            db,
            p1,
            p2,
            p3,
            p4,
            memberships,
            callers,
        }
    }

    fn admin(&self) -> &PgPool {
        self.db.admin_pool()
    }

    fn tenancy(&self) -> Tenancy {
        Tenancy::with_config(self.db.app_pool().clone(), tenancy_generated::config())
    }

    /// One fresh row in every table of `place` (and a fresh viewer membership), via the admin
    /// pool, in one statement.
    async fn seed(&self, place: Place) -> Seed {
        let row: (Uuid, Uuid, Uuid, Uuid, Uuid, Uuid) = sqlx::query_as(
            "WITH d AS (INSERT INTO documents (tenant_id, project_id, title, content_hash, created_by) \
                 VALUES ($1, $2, 'seed', gen_random_uuid()::text, $3) RETURNING id), \
             c AS (INSERT INTO chunks (tenant_id, project_id, document_id, ordinal, content, token_count) \
                 SELECT $1, $2, d.id, 0, 'seed', 1 FROM d RETURNING id), \
             q AS (INSERT INTO queries (tenant_id, project_id, asked_by, query_text) \
                 VALUES ($1, $2, $3, 'seed') RETURNING id), \
             r AS (INSERT INTO responses (tenant_id, project_id, query_id, answer_text, model) \
                 SELECT $1, $2, q.id, 'seed', 'm' FROM q RETURNING id), \
             a AS (INSERT INTO assertions (tenant_id, project_id, response_id, chunk_id, claim) \
                 SELECT $1, $2, r.id, c.id, 'seed' FROM r, c RETURNING id), \
             m AS (INSERT INTO user_project_roles (tenant_id, project_id, user_id, role) \
                 VALUES ($1, $2, gen_random_uuid(), 'viewer') RETURNING user_id) \
             SELECT d.id, c.id, q.id, r.id, a.id, m.user_id FROM d, c, q, r, a, m",
        )
        .bind(place.tenant.as_uuid())
        .bind(place.project.as_uuid())
        .bind(Uuid::new_v4())
        .fetch_one(self.admin())
        .await
        .unwrap();
        Seed {
            document: row.0,
            chunk: row.1,
            query: row.2,
            response: row.3,
            assertion: row.4,
            member: row.5,
        }
    }

    /// A digest of every row of `table` except the ones whose key is `except` in `place`
    /// (superuser view, row-level security bypassed).
    async fn digest(&self, table: Table, except: Option<(Place, Uuid)>) -> String {
        let (exclude, tenant, project, key) = match except {
            Some((place, key)) => (true, place.tenant.as_uuid(), place.project.as_uuid(), key),
            None => (false, Uuid::nil(), Uuid::nil(), Uuid::nil()),
        };
        let scope_column = match table {
            Table::Tenants => "id",
            Table::Projects => "tenant_id",
            _ => "tenant_id",
        };
        let project_column = match table {
            Table::Tenants => "id",
            Table::Projects => "id",
            _ => "project_id",
        };
        let sql = format!(
            "SELECT coalesce(md5(string_agg(t::text, '|' ORDER BY t::text)), '') FROM {table} t \
             WHERE NOT ($1 AND t.{scope_column} = $2 AND t.{project_column} = $3 AND t.{key} = $4)",
            table = table.sql_name(),
            key = table.key_column(),
        );
        sqlx::query_scalar(sqlx::AssertSqlSafe(sql.as_str()))
            .bind(exclude)
            .bind(tenant)
            .bind(project)
            .bind(key)
            .fetch_one(self.admin())
            .await
            .unwrap()
    }

    /// The rows of `table` in `place`, as the superuser sees them.
    async fn rows_in(&self, table: Table, place: Place) -> i64 {
        let sql = match table {
            Table::Tenants => {
                "SELECT count(*) FROM tenants WHERE id = $1 AND $2::uuid IS NOT NULL".to_owned()
            }
            Table::Projects => {
                "SELECT count(*) FROM projects WHERE tenant_id = $1 AND id = $2".to_owned()
            }
            _ => format!(
                "SELECT count(*) FROM {} WHERE tenant_id = $1 AND project_id = $2",
                table.sql_name()
            ),
        };
        sqlx::query_scalar(sqlx::AssertSqlSafe(sql.as_str()))
            .bind(place.tenant.as_uuid())
            .bind(place.project.as_uuid())
            .fetch_one(self.admin())
            .await
            .unwrap()
    }

    /// The rows of `table` in the caller's own project that its select rules admit (superuser
    /// view): every row, except that below editor a caller reads only the queries it asked
    /// (`allow select to viewer where asked_by = current_user`).
    async fn visible_rows(&self, table: Table, caller: &Caller) -> i64 {
        if table != Table::Queries || caller.rank >= EDITOR {
            return self.rows_in(table, caller.own).await;
        }
        sqlx::query_scalar(
            "SELECT count(*) FROM queries WHERE tenant_id = $1 AND project_id = $2 AND asked_by = $3",
        )
        .bind(caller.own.tenant.as_uuid())
        .bind(caller.own.project.as_uuid())
        .bind(caller.user.as_uuid())
        .fetch_one(self.admin())
        .await
        .unwrap()
    }

    /// Whether `table` holds the row `key` in `place` (superuser view), and its marker column.
    async fn row_marker(&self, table: Table, place: Place, key: Uuid) -> Option<String> {
        let (column, sql_key) = match table {
            Table::Documents => ("title", "id"),
            Table::Chunks => ("content", "id"),
            Table::Queries => ("query_text", "id"),
            Table::Responses => ("answer_text", "id"),
            Table::Assertions => ("claim", "id"),
            Table::Memberships => ("role::text", "user_id"),
            Table::Projects => {
                return sqlx::query_scalar(
                    "SELECT name FROM projects WHERE tenant_id = $1 AND id = $2 AND id = $3",
                )
                .bind(place.tenant.as_uuid())
                .bind(place.project.as_uuid())
                .bind(key)
                .fetch_optional(self.admin())
                .await
                .unwrap();
            }
            Table::Tenants => unreachable!("tenants are not written"),
        };
        let sql = format!(
            "SELECT {column} FROM {table} WHERE tenant_id = $1 AND project_id = $2 AND {sql_key} = $3",
            table = table.sql_name()
        );
        sqlx::query_scalar(sqlx::AssertSqlSafe(sql.as_str()))
            .bind(place.tenant.as_uuid())
            .bind(place.project.as_uuid())
            .bind(key)
            .fetch_optional(self.admin())
            .await
            .unwrap()
    }
}

/// The id a case aims at in `seed` for `table`.
fn target_key(table: Table, seed: &Seed, place: Place) -> Uuid {
    match table {
        Table::Tenants => place.tenant.as_uuid(),
        Table::Projects => place.project.as_uuid(),
        Table::Memberships => seed.member,
        Table::Documents => seed.document,
        Table::Chunks => seed.chunk,
        Table::Queries => seed.query,
        Table::Responses => seed.response,
        Table::Assertions => seed.assertion,
    }
}

/// The marker value a successful update writes.
const UPDATED: &str = "updated by the matrix";

fn new_document() -> NewDocument {
    NewDocument {
        id: None,
        title: "inserted".to_owned(),
        source_uri: None,
        mime_type: None,
        content_hash: Uuid::new_v4().to_string(),
        metadata: None,
    }
}

fn new_chunk(document: Uuid) -> NewChunk {
    NewChunk {
        id: None,
        document_id: document,
        ordinal: 1,
        content: "inserted".to_owned(),
        token_count: 1,
        embedding: None,
        created_at: None,
    }
}

fn new_query() -> NewQuery {
    NewQuery {
        id: None,
        query_text: "inserted".to_owned(),
        top_k: None,
        created_at: None,
    }
}

fn new_response(query: Uuid) -> NewResponse {
    NewResponse {
        id: None,
        query_id: query,
        answer_text: "inserted".to_owned(),
        model: "m".to_owned(),
        prompt_tokens: None,
        completion_tokens: None,
        latency_ms: None,
        created_at: None,
    }
}

fn new_assertion(response: Uuid) -> NewAssertion {
    NewAssertion {
        id: None,
        response_id: response,
        chunk_id: None,
        claim: "inserted".to_owned(),
        verdict: None,
        score: None,
        created_at: None,
    }
}

fn new_member() -> NewUserProjectRole {
    NewUserProjectRole {
        user_id: Uuid::new_v4(),
        role: ProjectRole::Viewer,
    }
}

/// What a write returned: the written row's key, or the runtime error.
fn write_outcome(result: Result<Option<Uuid>, Error>) -> (Outcome, Option<Uuid>) {
    match result {
        Ok(Some(key)) => (Outcome::Written, Some(key)),
        Ok(None) => (Outcome::Absent, None),
        Err(Error::InvalidInput) => (Outcome::Invalid, None),
        Err(other) => panic!("unexpected error from a write: {other:?}"),
    }
}

/// Runs one case: the caller's scope on its own project, aimed at `target`'s rows.
/// Returns the outcome and, for a write, the key of the written row.
async fn run_case(
    tenancy: &Tenancy,
    ctx: &RequestContext,
    caller: &Caller,
    table: Table,
    op: Op,
    seed: &Seed,
    target: Target,
) -> (Outcome, Option<Uuid>) {
    let place = caller.place(target);
    let key = target_key(table, seed, place);
    let own = caller.own.project;

    macro_rules! scope {
        ($role:ty) => {
            match ctx.project(own).unwrap().require::<$role>() {
                Ok(scope) => scope,
                Err(Error::Forbidden) => return (Outcome::Forbidden, None),
                Err(other) => panic!("require: {other:?}"),
            }
        };
    }
    macro_rules! get {
        ($repo:ident $(, $arg:expr)*) => {{
            let scope = scope!(Viewer);
            let mut tx = tenancy.begin(&scope).await.unwrap();
            let found = $repo::get(&mut tx $(, $arg)*).await.unwrap().is_some();
            tx.commit().await.unwrap();
            (if found { Outcome::Found } else { Outcome::Absent }, None)
        }};
    }
    // list (all pages) and count; every listed row must belong to the scope's project.
    macro_rules! list_count {
        ($repo:ident, $filter:expr, $page:ident, $count:expr) => {{
            let scope = scope!(Viewer);
            let mut tx = tenancy.begin(&scope).await.unwrap();
            let result = if $count {
                $repo::count(&mut tx, &$filter).await.unwrap()
            } else {
                let mut page = $page {
                    after: None,
                    limit: 7,
                };
                let mut total = 0;
                loop {
                    let rows = $repo::list(&mut tx, &$filter, page.clone()).await.unwrap();
                    for row in &rows {
                        assert_eq!(row.tenant_id, caller.own.tenant.as_uuid());
                        assert_eq!(list_project(row), own.as_uuid());
                    }
                    total += rows.len() as i64;
                    match rows.last() {
                        Some(last) if rows.len() == 7 => page.after = Some(last.cursor()),
                        _ => break,
                    }
                }
                total
            };
            tx.commit().await.unwrap();
            (Outcome::Listed(result), None)
        }};
    }
    macro_rules! write {
        ($role:ty, |$tx:ident| $call:expr) => {{
            let scope = scope!($role);
            let mut $tx = tenancy.begin(&scope).await.unwrap();
            let result = $call;
            if result.is_ok() {
                $tx.commit().await.unwrap();
            }
            write_outcome(result)
        }};
    }

    use Op::*;
    use Table as T;
    match (table, op) {
        (T::Tenants, Get) => get!(Tenants),
        (T::Projects, Get) => get!(Projects, key),
        (T::Projects, List) => list_count!(Projects, ProjectFilter::default(), ProjectPage, false),
        (T::Projects, Count) => list_count!(Projects, ProjectFilter::default(), ProjectPage, true),
        (T::Projects, Update) => write!(Admin, |tx| Projects::update(
            &mut tx,
            ProjectPatch {
                name: Some(UPDATED.to_owned()),
                ..ProjectPatch::default()
            }
        )
        .await
        .map(|row| row.map(|r| r.id))),

        (T::Memberships, Get) => get!(UserProjectRoles, key),
        (T::Memberships, List) => list_count!(
            UserProjectRoles,
            UserProjectRoleFilter::default(),
            UserProjectRolePage,
            false
        ),
        (T::Memberships, Count) => list_count!(
            UserProjectRoles,
            UserProjectRoleFilter::default(),
            UserProjectRolePage,
            true
        ),
        (T::Memberships, Insert) => {
            write!(Admin, |tx| UserProjectRoles::insert(&mut tx, new_member())
                .await
                .map(|r| Some(r.user_id)))
        }
        (T::Memberships, InsertMany) => write!(Admin, |tx| UserProjectRoles::insert_many(
            &mut tx,
            vec![new_member()]
        )
        .await
        .map(|rows| rows.first().map(|r| r.user_id))),
        (T::Memberships, Update) => write!(Admin, |tx| UserProjectRoles::update(
            &mut tx,
            key,
            UserProjectRolePatch {
                role: Some(ProjectRole::Editor),
            }
        )
        .await
        .map(|row| row.map(|r| r.user_id))),
        (T::Memberships, Delete) => write!(Admin, |tx| UserProjectRoles::delete(&mut tx, key)
            .await
            .map(|deleted| deleted.then_some(key))),

        (T::Documents, Get) => get!(Documents, key),
        (T::Documents, List) => {
            list_count!(Documents, DocumentFilter::default(), DocumentPage, false)
        }
        (T::Documents, Count) => {
            list_count!(Documents, DocumentFilter::default(), DocumentPage, true)
        }
        (T::Documents, Insert) => {
            write!(Editor, |tx| Documents::insert(&mut tx, new_document())
                .await
                .map(|r| Some(r.id)))
        }
        (T::Documents, InsertMany) => write!(Editor, |tx| Documents::insert_many(
            &mut tx,
            vec![new_document()]
        )
        .await
        .map(|rows| rows.first().map(|r| r.id))),
        (T::Documents, Update) => write!(Editor, |tx| Documents::update(
            &mut tx,
            key,
            DocumentPatch {
                title: Some(UPDATED.to_owned()),
                ..DocumentPatch::default()
            }
        )
        .await
        .map(|row| row.map(|r| r.id))),
        (T::Documents, Delete) => write!(Admin, |tx| Documents::delete(&mut tx, key)
            .await
            .map(|deleted| deleted.then_some(key))),

        (T::Chunks, Get) => get!(Chunks, key),
        (T::Chunks, List) => list_count!(Chunks, ChunkFilter::default(), ChunkPage, false),
        (T::Chunks, Count) => list_count!(Chunks, ChunkFilter::default(), ChunkPage, true),
        (T::Chunks, Insert) => write!(Editor, |tx| Chunks::insert(
            &mut tx,
            new_chunk(seed.document)
        )
        .await
        .map(|r| Some(r.id))),
        (T::Chunks, InsertMany) => write!(Editor, |tx| Chunks::insert_many(
            &mut tx,
            vec![new_chunk(seed.document)]
        )
        .await
        .map(|rows| rows.first().map(|r| r.id))),
        (T::Chunks, Update) => write!(Editor, |tx| Chunks::update(
            &mut tx,
            key,
            ChunkPatch {
                content: Some(UPDATED.to_owned()),
                ..ChunkPatch::default()
            }
        )
        .await
        .map(|row| row.map(|r| r.id))),
        (T::Chunks, Delete) => write!(Editor, |tx| Chunks::delete(&mut tx, key)
            .await
            .map(|deleted| deleted.then_some(key))),

        (T::Queries, Get) => get!(Queries, key),
        (T::Queries, List) => list_count!(Queries, QueryFilter::default(), QueryPage, false),
        (T::Queries, Count) => list_count!(Queries, QueryFilter::default(), QueryPage, true),
        (T::Queries, Insert) => write!(Viewer, |tx| Queries::insert(&mut tx, new_query())
            .await
            .map(|r| Some(r.id))),
        (T::Queries, InsertMany) => write!(Viewer, |tx| Queries::insert_many(
            &mut tx,
            vec![new_query()]
        )
        .await
        .map(|rows| rows.first().map(|r| r.id))),
        (T::Queries, Delete) => write!(Admin, |tx| Queries::delete(&mut tx, key)
            .await
            .map(|deleted| deleted.then_some(key))),

        (T::Responses, Get) => get!(Responses, key),
        (T::Responses, List) => {
            list_count!(Responses, ResponseFilter::default(), ResponsePage, false)
        }
        (T::Responses, Count) => {
            list_count!(Responses, ResponseFilter::default(), ResponsePage, true)
        }
        (T::Responses, Insert) => write!(Editor, |tx| Responses::insert(
            &mut tx,
            new_response(seed.query)
        )
        .await
        .map(|r| Some(r.id))),
        (T::Responses, InsertMany) => write!(Editor, |tx| Responses::insert_many(
            &mut tx,
            vec![new_response(seed.query)]
        )
        .await
        .map(|rows| rows.first().map(|r| r.id))),
        (T::Responses, Delete) => write!(Admin, |tx| Responses::delete(&mut tx, key)
            .await
            .map(|deleted| deleted.then_some(key))),

        (T::Assertions, Get) => get!(Assertions, key),
        (T::Assertions, List) => {
            list_count!(Assertions, AssertionFilter::default(), AssertionPage, false)
        }
        (T::Assertions, Count) => {
            list_count!(Assertions, AssertionFilter::default(), AssertionPage, true)
        }
        (T::Assertions, Insert) => write!(Editor, |tx| Assertions::insert(
            &mut tx,
            new_assertion(seed.response)
        )
        .await
        .map(|r| Some(r.id))),
        (T::Assertions, InsertMany) => write!(Editor, |tx| Assertions::insert_many(
            &mut tx,
            vec![new_assertion(seed.response)]
        )
        .await
        .map(|rows| rows.first().map(|r| r.id))),
        (T::Assertions, Update) => write!(Editor, |tx| Assertions::update(
            &mut tx,
            key,
            AssertionPatch {
                claim: Some(UPDATED.to_owned()),
                ..AssertionPatch::default()
            }
        )
        .await
        .map(|row| row.map(|r| r.id))),
        (T::Assertions, Delete) => write!(Admin, |tx| Assertions::delete(&mut tx, key)
            .await
            .map(|deleted| deleted.then_some(key))),

        (table, op) => panic!("{table:?} has no {op:?} method"),
    }
}

/// The project a listed row belongs to.
trait ListedRow {
    fn project(&self) -> Uuid;
}

fn list_project(row: &impl ListedRow) -> Uuid {
    row.project()
}

macro_rules! listed_row {
    ($($ty:ty => $field:ident),* $(,)?) => {
        $(impl ListedRow for $ty {
            fn project(&self) -> Uuid {
                self.$field
            }
        })*
    };
}

listed_row! {
    tenancy_generated::Project => id,
    tenancy_generated::UserProjectRole => project_id,
    tenancy_generated::Document => project_id,
    tenancy_generated::Chunk => project_id,
    tenancy_generated::Query => project_id,
    tenancy_generated::Response => project_id,
    tenancy_generated::Assertion => project_id,
}

#[tokio::test]
async fn every_repository_method_for_every_caller_and_target() {
    let f = Fixture::new().await;
    let tenancy = f.tenancy();
    let mut failures = Vec::new();
    let mut counted: BTreeMap<&'static str, usize> = BTreeMap::new();

    for caller in &f.callers {
        let ctx = tenancy
            .authorize(caller.user, caller.own.tenant)
            .await
            .unwrap();
        for table in TABLES {
            for &op in table.methods() {
                for &target in targets(table, op) {
                    let seed = f.seed(caller.place(target)).await;
                    let own_rows = f.visible_rows(table, caller).await;
                    let key = target_key(table, &seed, caller.place(target));
                    let before = f.digest(table, None).await;
                    let before_others = f.digest(table, Some((caller.own, key))).await;
                    let want = expected(caller.rank, table, op, target, own_rows);
                    let (got, written) =
                        run_case(&tenancy, &ctx, caller, table, op, &seed, target).await;
                    *counted.entry(caller.name).or_default() += 1;
                    let case = format!("{} {table:?}::{op:?} -> {target:?}", caller.name);
                    if got != want {
                        failures.push(format!("{case}: expected {want:?}, got {got:?}"));
                        continue;
                    }
                    // What the superuser sees afterwards.
                    match (&got, op) {
                        (Outcome::Written, Op::Insert | Op::InsertMany) => {
                            let new_key = written.unwrap();
                            let marker = f.row_marker(table, caller.own, new_key).await;
                            if marker.is_none() {
                                failures.push(format!("{case}: inserted row not in own project"));
                            }
                            if f.digest(table, Some((caller.own, new_key))).await != before {
                                failures.push(format!("{case}: insert changed other rows"));
                            }
                        }
                        (Outcome::Written, Op::Update) => {
                            let marker = f.row_marker(table, caller.own, key).await;
                            let want_marker = if table == Table::Memberships {
                                "editor"
                            } else {
                                UPDATED
                            };
                            if marker.as_deref() != Some(want_marker) {
                                failures.push(format!("{case}: row not updated ({marker:?})"));
                            }
                            if f.digest(table, Some((caller.own, key))).await != before_others {
                                failures.push(format!("{case}: update changed other rows"));
                            }
                        }
                        (Outcome::Written, Op::Delete) => {
                            if f.row_marker(table, caller.own, key).await.is_some() {
                                failures.push(format!("{case}: row still there"));
                            }
                            // Cascades may remove children in other tables, never other rows here.
                            if f.digest(table, Some((caller.own, key))).await != before_others {
                                failures.push(format!("{case}: delete changed other rows"));
                            }
                        }
                        _ => {
                            if f.digest(table, None).await != before {
                                failures.push(format!("{case}: {got:?} but the table changed"));
                            }
                        }
                    }
                }
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} failures:\n{}",
        failures.len(),
        failures.join("\n")
    );
    // Every caller ran the whole matrix.
    let per_caller: usize = TABLES
        .iter()
        .flat_map(|t| t.methods().iter().map(move |op| targets(*t, *op).len()))
        .sum();
    // Hand-counted: tenants 1, projects 6, memberships 13, documents 13, chunks 17, queries 10,
    // responses 14, assertions 17.
    assert_eq!(per_caller, 91);
    for caller in &f.callers {
        assert_eq!(counted[caller.name], per_caller, "{}", caller.name);
    }
    f.db.drop_db().await;
}

#[tokio::test]
async fn scopes_exist_only_for_the_callers_own_memberships() {
    let f = Fixture::new().await;
    let tenancy = f.tenancy();
    let all = [f.p1, f.p2, f.p3, f.p4];
    for caller in &f.callers {
        for tenant in [f.p1.tenant, f.p3.tenant] {
            let held: Vec<(ProjectId, &str)> = f
                .memberships
                .iter()
                .filter(|(user, place, _)| *user == caller.user && place.tenant == tenant)
                .map(|(_, place, role)| (place.project, *role))
                .collect();
            let authorized = tenancy.authorize(caller.user, tenant).await;
            let ctx = match authorized {
                Ok(ctx) => ctx,
                Err(Error::NotFound) => {
                    assert!(
                        held.is_empty(),
                        "{}: authorize refused in {tenant}",
                        caller.name
                    );
                    continue;
                }
                Err(other) => panic!("authorize: {other:?}"),
            };
            let mut listed: Vec<(ProjectId, String)> =
                ctx.memberships().map(|(p, r)| (p, r.to_owned())).collect();
            let mut want: Vec<(ProjectId, String)> =
                held.iter().map(|(p, r)| (*p, (*r).to_owned())).collect();
            listed.sort();
            want.sort();
            assert_eq!(listed, want, "{} in {tenant}", caller.name);
            for place in all {
                let role = held
                    .iter()
                    .find(|(p, _)| *p == place.project)
                    .map(|(_, r)| *r);
                match (ctx.project(place.project), role) {
                    (Ok(access), Some(role)) => assert_eq!(access.role_name(), role),
                    (Err(Error::NotFound), None) => {}
                    (got, want) => panic!(
                        "{}: project {:?} gave {:?}, expected role {want:?}",
                        caller.name,
                        place.project,
                        got.map(|a| a.role_name().to_owned())
                    ),
                }
            }
            // A several-project scope over a project outside the context is NotFound too.
            let foreign = if tenant == f.p1.tenant { f.p3 } else { f.p1 };
            assert!(matches!(
                ctx.projects(&[caller.own.project, foreign.project]),
                Err(Error::NotFound)
            ));
        }
    }
    f.db.drop_db().await;
}

// Hand-written spot checks of the matrix (so the oracle is not the only judge).

#[tokio::test]
async fn spot_checks_by_hand() {
    let f = Fixture::new().await;
    let tenancy = f.tenancy();
    let admin = f.admin();
    let by_name = |name: &str| f.callers.iter().find(|c| c.name == name).unwrap().clone();
    let (viewer, editor, admin_caller) = (by_name("viewer"), by_name("editor"), by_name("admin"));
    let cross_t1 = by_name("cross@T1/P1 (admin in T2/P3)");
    let cross_t2 = by_name("cross@T2/P3 (viewer in T1/P1)");
    let s1 = f.seed(f.p1).await;
    let s2 = f.seed(f.p2).await;
    let s3 = f.seed(f.p3).await;

    // A viewer reads but cannot get an editor scope.
    let ctx = tenancy.authorize(viewer.user, f.p1.tenant).await.unwrap();
    assert!(matches!(
        ctx.project(f.p1.project).unwrap().require::<Editor>(),
        Err(Error::Forbidden)
    ));
    let scope = ctx
        .project(f.p1.project)
        .unwrap()
        .require::<Viewer>()
        .unwrap();
    let mut tx = tenancy.begin(&scope).await.unwrap();
    assert!(Documents::get(&mut tx, s1.document)
        .await
        .unwrap()
        .is_some());
    assert!(Documents::get(&mut tx, s2.document)
        .await
        .unwrap()
        .is_none());
    assert!(Documents::get(&mut tx, s3.document)
        .await
        .unwrap()
        .is_none());
    tx.rollback().await.unwrap();

    // Queries: a viewer reads the ones it asked, not the seeded one (someone else's); an
    // editor of the project reads both.
    let mut tx = tenancy.begin(&scope).await.unwrap();
    let asked = Queries::insert(&mut tx, new_query()).await.unwrap();
    assert_eq!(asked.asked_by, viewer.user.as_uuid());
    tx.commit().await.unwrap();
    let mut tx = tenancy.begin(&scope).await.unwrap();
    assert!(Queries::get(&mut tx, s1.query).await.unwrap().is_none());
    assert!(Queries::get(&mut tx, asked.id).await.unwrap().is_some());
    let listed = Queries::list(&mut tx, &QueryFilter::default(), QueryPage::default())
        .await
        .unwrap();
    assert_eq!(
        listed.iter().map(|q| q.id).collect::<Vec<_>>(),
        vec![asked.id]
    );
    assert_eq!(
        Queries::count(&mut tx, &QueryFilter::default())
            .await
            .unwrap(),
        1
    );
    tx.rollback().await.unwrap();
    let ctx = tenancy.authorize(editor.user, f.p1.tenant).await.unwrap();
    let scope = ctx
        .project(f.p1.project)
        .unwrap()
        .require::<Viewer>()
        .unwrap();
    let mut tx = tenancy.begin(&scope).await.unwrap();
    let listed: Vec<Uuid> = Queries::list(&mut tx, &QueryFilter::default(), QueryPage::default())
        .await
        .unwrap()
        .iter()
        .map(|q| q.id)
        .collect();
    assert!(listed.contains(&s1.query) && listed.contains(&asked.id));
    assert!(!listed.contains(&s2.query));
    tx.rollback().await.unwrap();

    // An editor inserts; the row lands in T1/P1.
    let ctx = tenancy.authorize(editor.user, f.p1.tenant).await.unwrap();
    let scope = ctx
        .project(f.p1.project)
        .unwrap()
        .require::<Editor>()
        .unwrap();
    let mut tx = tenancy.begin(&scope).await.unwrap();
    let doc = Documents::insert(&mut tx, new_document()).await.unwrap();
    tx.commit().await.unwrap();
    let (tenant, project): (Uuid, Uuid) =
        sqlx::query_as("SELECT tenant_id, project_id FROM documents WHERE id = $1")
            .bind(doc.id)
            .fetch_one(admin)
            .await
            .unwrap();
    assert_eq!(
        (tenant, project),
        (f.p1.tenant.as_uuid(), f.p1.project.as_uuid())
    );

    // An admin of P1 deleting P2's document by id deletes nothing.
    let ctx = tenancy
        .authorize(admin_caller.user, f.p1.tenant)
        .await
        .unwrap();
    let scope = ctx
        .project(f.p1.project)
        .unwrap()
        .require::<Admin>()
        .unwrap();
    let mut tx = tenancy.begin(&scope).await.unwrap();
    assert!(!Documents::delete(&mut tx, s2.document).await.unwrap());
    assert!(!Documents::delete(&mut tx, s3.document).await.unwrap());
    assert!(Documents::delete(&mut tx, s1.document).await.unwrap());
    tx.commit().await.unwrap();
    let left: Vec<Uuid> =
        sqlx::query_scalar("SELECT id FROM documents WHERE id = ANY($1) ORDER BY id")
            .bind(vec![s1.document, s2.document, s3.document])
            .fetch_all(admin)
            .await
            .unwrap();
    let mut want = vec![s2.document, s3.document];
    want.sort();
    assert_eq!(left, want);

    // Admin in T2/P3 is worth nothing in the T1 context, and everything in its own.
    let ctx = tenancy.authorize(cross_t1.user, f.p1.tenant).await.unwrap();
    assert!(matches!(ctx.project(f.p3.project), Err(Error::NotFound)));
    let scope = ctx
        .project(f.p1.project)
        .unwrap()
        .require::<Viewer>()
        .unwrap();
    let mut tx = tenancy.begin(&scope).await.unwrap();
    assert!(Chunks::get(&mut tx, s3.chunk).await.unwrap().is_none());
    tx.rollback().await.unwrap();
    let ctx = tenancy.authorize(cross_t2.user, f.p3.tenant).await.unwrap();
    let scope = ctx
        .project(f.p3.project)
        .unwrap()
        .require::<Admin>()
        .unwrap();
    let mut tx = tenancy.begin(&scope).await.unwrap();
    assert!(Chunks::delete(&mut tx, s3.chunk).await.unwrap());
    assert!(!Chunks::delete(&mut tx, s2.chunk).await.unwrap());
    tx.commit().await.unwrap();
    let chunks: i64 = sqlx::query_scalar("SELECT count(*) FROM chunks WHERE id = ANY($1)")
        .bind(vec![s2.chunk, s3.chunk])
        .fetch_one(admin)
        .await
        .unwrap();
    assert_eq!(chunks, 1, "P3's chunk deleted, P2's kept");

    // A chunk naming another project's document is refused, and leaves nothing.
    let ctx = tenancy.authorize(editor.user, f.p1.tenant).await.unwrap();
    let scope = ctx
        .project(f.p1.project)
        .unwrap()
        .require::<Editor>()
        .unwrap();
    let mut tx = tenancy.begin(&scope).await.unwrap();
    assert!(matches!(
        Chunks::insert(&mut tx, new_chunk(s2.document)).await,
        Err(Error::InvalidInput)
    ));
    drop(tx);
    let stray: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM chunks WHERE document_id = $1 AND project_id = $2",
    )
    .bind(s2.document)
    .bind(f.p1.project.as_uuid())
    .fetch_one(admin)
    .await
    .unwrap();
    assert_eq!(stray, 0);
    f.db.drop_db().await;
}

#[tokio::test]
async fn several_project_read_scopes() {
    let f = Fixture::new().await;
    let tenancy = f.tenancy();
    let multi = f
        .callers
        .iter()
        .find(|c| c.name.starts_with("multi"))
        .unwrap()
        .clone();
    let (s1, s2, s3) = (f.seed(f.p1).await, f.seed(f.p2).await, f.seed(f.p3).await);
    let ctx = tenancy.authorize(multi.user, f.p1.tenant).await.unwrap();

    // Viewer in both: reads both projects, nothing of T2.
    let both = ctx
        .projects(&[f.p1.project, f.p2.project])
        .unwrap()
        .require::<Viewer>()
        .unwrap();
    let mut tx = tenancy.begin(&both).await.unwrap();
    let docs = Documents::list(&mut tx, &DocumentFilter::default(), DocumentPage::default())
        .await
        .unwrap();
    let ids: Vec<Uuid> = docs.iter().map(|d| d.id).collect();
    assert!(ids.contains(&s1.document) && ids.contains(&s2.document));
    assert!(!ids.contains(&s3.document));
    let expected =
        f.rows_in(Table::Documents, f.p1).await + f.rows_in(Table::Documents, f.p2).await;
    assert_eq!(
        Documents::count(&mut tx, &DocumentFilter::default())
            .await
            .unwrap(),
        expected
    );
    assert_eq!(
        Projects::count(&mut tx, &ProjectFilter::default())
            .await
            .unwrap(),
        2
    );
    // Queries are decided per row's project: every query of P1 (editor there), none of P2's
    // (viewer there, and the seeded query is someone else's).
    let queries: Vec<Uuid> = Queries::list(&mut tx, &QueryFilter::default(), QueryPage::default())
        .await
        .unwrap()
        .iter()
        .map(|q| q.id)
        .collect();
    assert!(queries.contains(&s1.query));
    assert!(!queries.contains(&s2.query) && !queries.contains(&s3.query));
    assert_eq!(
        Queries::count(&mut tx, &QueryFilter::default())
            .await
            .unwrap(),
        f.rows_in(Table::Queries, f.p1).await
    );
    tx.rollback().await.unwrap();

    // Editor is not held in P2.
    assert!(matches!(
        ctx.projects(&[f.p1.project, f.p2.project])
            .unwrap()
            .require::<Editor>(),
        Err(Error::Forbidden)
    ));
    // Narrowing keeps only P1.
    let editable = ctx.all_projects().with_at_least::<Editor>();
    let mut tx = tenancy.begin(&editable).await.unwrap();
    let docs = Documents::list(&mut tx, &DocumentFilter::default(), DocumentPage::default())
        .await
        .unwrap();
    assert!(docs.iter().all(|d| d.project_id == f.p1.project.as_uuid()));
    assert!(docs.iter().any(|d| d.id == s1.document));
    tx.rollback().await.unwrap();
    // Nothing where multi is admin: an empty scope reads nothing.
    let none = ctx.all_projects().with_at_least::<Admin>();
    assert!(none.is_empty());
    let mut tx = tenancy.begin(&none).await.unwrap();
    assert_eq!(
        Documents::count(&mut tx, &DocumentFilter::default())
            .await
            .unwrap(),
        0
    );
    tx.rollback().await.unwrap();
    f.db.drop_db().await;
}

#[tokio::test]
async fn no_context_sees_nothing_and_writes_nothing() {
    let f = Fixture::new().await;
    let s1 = f.seed(f.p1).await;
    let app = f.db.app_pool();
    for table in TABLES {
        let visible: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
            "SELECT count(*) FROM {}",
            table.sql_name()
        )))
        .fetch_one(app)
        .await
        .unwrap();
        assert_eq!(visible, 0, "{table:?} without context");
        assert!(
            f.rows_in(table, f.p1).await > 0,
            "{table:?} has rows to hide"
        );
    }
    let before = f.digest(Table::Documents, None).await;
    let refused = sqlx::query(
        "INSERT INTO documents (tenant_id, project_id, title, content_hash, created_by) \
         VALUES ($1, $2, 'x', 'x', $3)",
    )
    .bind(f.p1.tenant.as_uuid())
    .bind(f.p1.project.as_uuid())
    .bind(Uuid::new_v4())
    .execute(app)
    .await
    .unwrap_err();
    assert_eq!(
        refused
            .as_database_error()
            .and_then(|e| e.code())
            .as_deref(),
        Some("42501")
    );
    let deleted = sqlx::query("DELETE FROM documents WHERE id = $1")
        .bind(s1.document)
        .execute(app)
        .await
        .unwrap();
    assert_eq!(deleted.rows_affected(), 0);
    assert_eq!(f.digest(Table::Documents, None).await, before);
    f.db.drop_db().await;
}
