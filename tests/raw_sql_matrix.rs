//! The database alone holds the line: the access matrix through RAW SQL as the application role,
//! with only the context set (`BEGIN; SET LOCAL tenancy.context = '<tenant>;;{<project>};..'`,
//! the one setting of docs/context.md, built by `tenancy_tests::context_value`; the user field is
//! left empty, so only the tenant and the project levels decide) and no tenant or project
//! predicate in any statement.
//!
//! * SELECT sees only the context's rows;
//! * INSERT with another project's or tenant's ids fails with 42501;
//! * UPDATE / DELETE of other rows affect 0 rows (checked with RETURNING);
//! * UPDATE SET project_id / tenant_id is refused (no column grant);
//! * no context: 0 rows everywhere and every write refused;
//! * an empty context after an earlier transaction on the same connection: 0 rows.
//!
//! Every case commits what it may and then compares the table, as the superuser sees it, with
//! its state before: only an applied write may change it. Fixtures go through the admin pool.

use sqlx::postgres::{PgConnection, PgPoolOptions};
use sqlx::{Connection, PgPool};
use tenancy_tests::{set_context, TestDb, ROLES};
use uuid::Uuid;

fn rank(role: &str) -> u8 {
    ROLES
        .iter()
        .position(|r| *r == role)
        .and_then(|i| u8::try_from(i).ok())
        .unwrap()
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
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

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Command {
    Insert,
    Update,
    Delete,
}

/// The rule table of `policies/rag.tenancy`: the least role a command needs (`None`: no rule,
/// so no grant either). SELECT is `viewer` for every table here (on `queries` with the row
/// condition `asked_by = current_user`, editors without).
fn rule(table: Table, command: Command) -> Option<u8> {
    let (insert, update, delete) = match table {
        Table::Tenants => (None, None, None),
        Table::Projects => (None, Some(2), None),
        Table::Memberships => (Some(2), Some(2), Some(2)),
        Table::Documents => (Some(1), Some(1), Some(2)),
        Table::Chunks => (Some(1), Some(1), Some(1)),
        Table::Queries => (Some(0), None, Some(2)),
        Table::Responses => (Some(1), None, Some(2)),
        Table::Assertions => (Some(1), Some(1), Some(2)),
    };
    match command {
        Command::Insert => insert,
        Command::Update => update,
        Command::Delete => delete,
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Target {
    Own,
    OtherProject,
    OtherTenant,
}

/// What a raw statement did.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Outcome {
    /// It returned this many rows (RETURNING) and, when more than 0, changed the table.
    Rows(u64),
    /// SQLSTATE 42501: a WITH CHECK failure or a missing grant.
    Denied,
}

/// The oracle. `rank` is the context's role in the own project (`None`: no context at all).
/// The user of every context the matrix installs (stamps and `= current_user` conditions read
/// it; no membership names it).
const MATRIX_USER: Uuid = Uuid::from_u128(0x7e57);

fn expected(rank: Option<u8>, table: Table, command: Command, target: Target) -> Outcome {
    let Some(needed) = rule(table, command) else {
        return Outcome::Denied; // no grant
    };
    let mut allowed = rank.is_some_and(|rank| rank >= needed) && target == Target::Own;
    // `allow update to editor where created_by = current_user`: the seeded documents are
    // someone else's, so below admin an update finds no row.
    if table == Table::Documents && command == Command::Update {
        allowed = allowed && rank.is_some_and(|rank| rank >= 2);
    }
    match (command, allowed) {
        (_, true) => Outcome::Rows(1),
        // WITH CHECK fails for a row outside the context.
        (Command::Insert, false) => Outcome::Denied,
        // USING hides the row: nothing to update or delete.
        (Command::Update | Command::Delete, false) => Outcome::Rows(0),
    }
}

#[test]
fn oracle_spot_checks() {
    use Outcome::*;
    assert_eq!(
        expected(Some(0), Table::Documents, Command::Insert, Target::Own),
        Denied
    );
    assert_eq!(
        expected(Some(1), Table::Documents, Command::Insert, Target::Own),
        Rows(1)
    );
    assert_eq!(
        expected(
            Some(3),
            Table::Documents,
            Command::Insert,
            Target::OtherProject
        ),
        Denied
    );
    assert_eq!(
        expected(Some(1), Table::Documents, Command::Delete, Target::Own),
        Rows(0)
    );
    assert_eq!(
        expected(Some(2), Table::Documents, Command::Delete, Target::Own),
        Rows(1)
    );
    assert_eq!(
        expected(Some(3), Table::Chunks, Command::Update, Target::OtherTenant),
        Rows(0)
    );
    assert_eq!(
        expected(Some(3), Table::Queries, Command::Update, Target::Own),
        Denied
    );
    assert_eq!(
        expected(Some(0), Table::Queries, Command::Insert, Target::Own),
        Rows(1)
    );
    assert_eq!(
        expected(Some(3), Table::Tenants, Command::Delete, Target::Own),
        Denied
    );
    assert_eq!(
        expected(None, Table::Documents, Command::Insert, Target::Own),
        Denied
    );
    assert_eq!(
        expected(None, Table::Documents, Command::Update, Target::Own),
        Rows(0)
    );
}

impl Table {
    fn name(self) -> &'static str {
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

    fn key(self) -> &'static str {
        match self {
            Table::Memberships => "user_id",
            _ => "id",
        }
    }

    /// INSERT of one row: $1 tenant, $2 project, $3 the parent row (of the same place).
    fn insert_sql(self) -> &'static str {
        match self {
            Table::Tenants => "INSERT INTO tenants (id, name, slug) SELECT $1, 'raw', gen_random_uuid()::text WHERE $2::uuid IS NOT NULL AND $3::uuid IS NOT NULL RETURNING 1",
            Table::Projects => "INSERT INTO projects (tenant_id, id, name, slug) SELECT $1, $2, 'raw', gen_random_uuid()::text WHERE $3::uuid IS NOT NULL RETURNING 1",
            Table::Memberships => "INSERT INTO user_project_roles (tenant_id, project_id, user_id, role) SELECT $1, $2, gen_random_uuid(), 'viewer' WHERE $3::uuid IS NOT NULL RETURNING 1",
            Table::Documents => "INSERT INTO documents (tenant_id, project_id, title, content_hash, created_by) SELECT $1, $2, 'raw', gen_random_uuid()::text, gen_random_uuid() WHERE $3::uuid IS NOT NULL RETURNING 1",
            Table::Chunks => "INSERT INTO chunks (tenant_id, project_id, document_id, ordinal, content, token_count) VALUES ($1, $2, $3, 1000 + (random() * 1e8)::int, 'raw', 1) RETURNING 1",
            Table::Queries => "INSERT INTO queries (tenant_id, project_id, asked_by, query_text) SELECT $1, $2, gen_random_uuid(), 'raw' WHERE $3::uuid IS NOT NULL RETURNING 1",
            Table::Responses => "INSERT INTO responses (tenant_id, project_id, query_id, answer_text, model) VALUES ($1, $2, $3, 'raw', 'm') RETURNING 1",
            Table::Assertions => "INSERT INTO assertions (tenant_id, project_id, response_id, claim) VALUES ($1, $2, $3, 'raw') RETURNING 1",
        }
    }

    /// An UPDATE of one row by key ($1) that keeps it where it is.
    fn update_sql(self) -> String {
        let set = match self {
            Table::Tenants | Table::Projects => "name = name || '+'",
            Table::Memberships => "role = 'editor'",
            Table::Documents => "title = title || '+'",
            Table::Chunks => "content = content || '+'",
            Table::Queries | Table::Responses => "created_at = created_at + interval '1 second'",
            Table::Assertions => "claim = claim || '+'",
        };
        format!(
            "UPDATE {t} SET {set} WHERE {k} = $1 RETURNING 1",
            t = self.name(),
            k = self.key()
        )
    }

    /// UPDATEs that try to move row $1 to another project ($2) or tenant ($3).
    fn move_sqls(self) -> Vec<String> {
        let (t, k) = (self.name(), self.key());
        match self {
            Table::Tenants => vec![format!("UPDATE tenants SET id = $3 WHERE id = $1 AND $2::uuid IS NOT NULL RETURNING 1")],
            Table::Projects => vec![
                format!("UPDATE projects SET id = $2 WHERE id = $1 AND $3::uuid IS NOT NULL RETURNING 1"),
                format!("UPDATE projects SET tenant_id = $3 WHERE id = $1 AND $2::uuid IS NOT NULL RETURNING 1"),
            ],
            _ => vec![
                format!("UPDATE {t} SET project_id = $2 WHERE {k} = $1 AND $3::uuid IS NOT NULL RETURNING 1"),
                format!("UPDATE {t} SET tenant_id = $3 WHERE {k} = $1 AND $2::uuid IS NOT NULL RETURNING 1"),
            ],
        }
    }

    fn delete_sql(self) -> String {
        format!(
            "DELETE FROM {t} WHERE {k} = $1 RETURNING 1",
            t = self.name(),
            k = self.key()
        )
    }
}

#[derive(Clone, Copy, Debug)]
struct Place {
    tenant: Uuid,
    project: Uuid,
}

/// One fresh row of each project table in one place.
#[derive(Clone, Copy, Debug)]
struct Seed {
    document: Uuid,
    chunk: Uuid,
    query: Uuid,
    response: Uuid,
    assertion: Uuid,
    member: Uuid,
}

impl Seed {
    /// The row a case aims at.
    fn key(&self, table: Table, place: Place) -> Uuid {
        match table {
            Table::Tenants => place.tenant,
            Table::Projects => place.project,
            Table::Memberships => self.member,
            Table::Documents => self.document,
            Table::Chunks => self.chunk,
            Table::Queries => self.query,
            Table::Responses => self.response,
            Table::Assertions => self.assertion,
        }
    }

    /// The parent an INSERT into `table` names.
    fn parent(&self, table: Table) -> Uuid {
        match table {
            Table::Chunks => self.document,
            Table::Responses => self.query,
            Table::Assertions => self.response,
            _ => Uuid::nil(),
        }
    }
}

struct Fixture {
    db: TestDb,
    p1: Place,
    p2: Place,
    p3: Place,
}

impl Fixture {
    async fn new() -> Fixture {
        let db = TestDb::fresh().await;
        let (t1, t2) = (Uuid::new_v4(), Uuid::new_v4());
        let p1 = Place {
            tenant: t1,
            project: Uuid::new_v4(),
        };
        let p2 = Place {
            tenant: t1,
            project: Uuid::new_v4(),
        };
        let p3 = Place {
            tenant: t2,
            project: Uuid::new_v4(),
        };
        for (tenant, slug) in [(t1, "t1"), (t2, "t2")] {
            sqlx::query("INSERT INTO tenants (id, name, slug) VALUES ($1, $2, $2)")
                .bind(tenant)
                .bind(slug)
                .execute(db.admin_pool())
                .await
                .unwrap();
        }
        for (place, slug) in [(p1, "p1"), (p2, "p2"), (p3, "p3")] {
            sqlx::query("INSERT INTO projects (tenant_id, id, name, slug) VALUES ($1, $2, $3, $3)")
                .bind(place.tenant)
                .bind(place.project)
                .bind(slug)
                .execute(db.admin_pool())
                .await
                .unwrap();
        }
        Fixture { db, p1, p2, p3 }
    }

    fn admin(&self) -> &PgPool {
        self.db.admin_pool()
    }

    async fn seed(&self, place: Place) -> Seed {
        let row: (Uuid, Uuid, Uuid, Uuid, Uuid, Uuid) = sqlx::query_as(
            "WITH d AS (INSERT INTO documents (tenant_id, project_id, title, content_hash, created_by) \
                 VALUES ($1, $2, 'seed', gen_random_uuid()::text, gen_random_uuid()) RETURNING id), \
             c AS (INSERT INTO chunks (tenant_id, project_id, document_id, ordinal, content, token_count) \
                 SELECT $1, $2, d.id, 0, 'seed', 1 FROM d RETURNING id), \
             q AS (INSERT INTO queries (tenant_id, project_id, asked_by, query_text) \
                 VALUES ($1, $2, gen_random_uuid(), 'seed') RETURNING id), \
             r AS (INSERT INTO responses (tenant_id, project_id, query_id, answer_text, model) \
                 SELECT $1, $2, q.id, 'seed', 'm' FROM q RETURNING id), \
             a AS (INSERT INTO assertions (tenant_id, project_id, response_id, chunk_id, claim) \
                 SELECT $1, $2, r.id, c.id, 'seed' FROM r, c RETURNING id), \
             m AS (INSERT INTO user_project_roles (tenant_id, project_id, user_id, role) \
                 VALUES ($1, $2, gen_random_uuid(), 'viewer') RETURNING user_id) \
             SELECT d.id, c.id, q.id, r.id, a.id, m.user_id FROM d, c, q, r, a, m",
        )
        .bind(place.tenant)
        .bind(place.project)
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

    /// A digest of the whole table as the superuser sees it.
    async fn digest(&self, table: Table) -> String {
        sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
            "SELECT coalesce(md5(string_agg(t::text, '|' ORDER BY t::text)), '') FROM {} t",
            table.name()
        )))
        .fetch_one(self.admin())
        .await
        .unwrap()
    }

    /// (tenant, project) of every row of `table`, as the superuser sees them, in `place`.
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
                table.name()
            ),
        };
        sqlx::query_scalar(sqlx::AssertSqlSafe(sql.as_str()))
            .bind(place.tenant)
            .bind(place.project)
            .fetch_one(self.admin())
            .await
            .unwrap()
    }
}

impl Fixture {
    /// The queries of `place` asked by `user`, as the superuser sees them.
    async fn asked_by(&self, place: Place, user: Uuid) -> i64 {
        sqlx::query_scalar(
            "SELECT count(*) FROM queries WHERE tenant_id = $1 AND project_id = $2 AND asked_by = $3",
        )
        .bind(place.tenant)
        .bind(place.project)
        .bind(user)
        .fetch_one(self.admin())
        .await
        .unwrap()
    }
}

/// `BEGIN` plus the context as the runtime sends it: one simple query. `Some((tenant, roles))`
/// sets `tenancy.context` for that tenant, the user `MATRIX_USER` and the projects of
/// `roles` (`project:role,...`, `""` for none) at their role levels; `None` sends no context.
async fn begin(conn: &mut PgConnection, context: Option<(Uuid, &str)>) {
    let statement = match context {
        Some((tenant, roles)) => format!(
            "BEGIN; {}",
            set_context(&tenant.to_string(), &MATRIX_USER.to_string(), roles)
        ),
        None => "BEGIN".to_owned(),
    };
    sqlx::raw_sql(sqlx::AssertSqlSafe(statement.as_str()))
        .execute(&mut *conn)
        .await
        .unwrap();
}

/// Runs `sql` with ($1, $2, $3) and commits (a failed statement's transaction rolls back).
async fn run(conn: &mut PgConnection, sql: &str, args: [Uuid; 3]) -> Outcome {
    let result = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(args[0])
        .bind(args[1])
        .bind(args[2])
        .fetch_all(&mut *conn)
        .await;
    let outcome = match result {
        Ok(rows) => Outcome::Rows(rows.len() as u64),
        Err(err) => match err.as_database_error().and_then(|e| e.code()) {
            Some(code) if code == "42501" => Outcome::Denied,
            _ => panic!("{sql}: unexpected error {err}"),
        },
    };
    sqlx::raw_sql("COMMIT").execute(&mut *conn).await.unwrap();
    outcome
}

/// The rows a SELECT without predicates sees in the context, as (tenant, project) pairs.
async fn visible(conn: &mut PgConnection, table: Table) -> Vec<(Uuid, Uuid)> {
    let sql = match table {
        Table::Tenants => "SELECT id, id FROM tenants".to_owned(),
        Table::Projects => "SELECT tenant_id, id FROM projects".to_owned(),
        _ => format!("SELECT tenant_id, project_id FROM {}", table.name()),
    };
    sqlx::query_as(sqlx::AssertSqlSafe(sql.as_str()))
        .fetch_all(&mut *conn)
        .await
        .unwrap()
}

/// The matrix for one context: every table, every command, every target.
async fn check_context(
    f: &Fixture,
    conn: &mut PgConnection,
    label: &str,
    context: Option<(Uuid, String)>,
    rank: Option<u8>,
    failures: &mut Vec<String>,
) -> usize {
    let mut cases = 0;
    let own = f.p1;
    let ctx = || context.as_ref().map(|(t, r)| (*t, r.as_str()));
    for table in TABLES {
        // SELECT without predicates.
        begin(conn, ctx()).await;
        let rows = visible(conn, table).await;
        sqlx::raw_sql("COMMIT").execute(&mut *conn).await.unwrap();
        let own_id = |r: &(Uuid, Uuid)| match table {
            Table::Tenants => r.0 == own.tenant,
            _ => *r == (own.tenant, own.project),
        };
        let want = match rank {
            // `allow select to viewer where asked_by = current_user`: below editor, only the
            // queries the context's user asked (the ones this matrix inserted).
            Some(0) if table == Table::Queries => f.asked_by(own, MATRIX_USER).await as usize,
            Some(_) => f.rows_in(table, own).await as usize,
            None => 0,
        };
        if rows.len() != want || !rows.iter().all(own_id) {
            failures.push(format!(
                "{label} SELECT {table:?}: saw {} rows ({} outside the context), expected {want}",
                rows.len(),
                rows.iter().filter(|r| !own_id(r)).count()
            ));
        }
        cases += 1;

        let places = [
            (Target::Own, own),
            (Target::OtherProject, f.p2),
            (Target::OtherTenant, f.p3),
        ];
        for command in [Command::Insert, Command::Update, Command::Delete] {
            for (target, place) in places {
                let seed = f.seed(place).await;
                let key = seed.key(table, place);
                let (sql, args) = match command {
                    Command::Insert => (
                        table.insert_sql().to_owned(),
                        [place.tenant, place.project, seed.parent(table)],
                    ),
                    Command::Update => (table.update_sql(), [key, Uuid::nil(), Uuid::nil()]),
                    Command::Delete => (table.delete_sql(), [key, Uuid::nil(), Uuid::nil()]),
                };
                // Projects and tenants inserted by a case need fresh ids.
                let args = match (table, command) {
                    (Table::Projects, Command::Insert) => {
                        [place.tenant, Uuid::new_v4(), Uuid::nil()]
                    }
                    (Table::Tenants, Command::Insert) => [Uuid::new_v4(), Uuid::nil(), Uuid::nil()],
                    _ => args,
                };
                let before = f.digest(table).await;
                begin(conn, ctx()).await;
                let got = run(conn, &sql, args).await;
                let want = expected(rank, table, command, target);
                let changed = f.digest(table).await != before;
                let case = format!("{label} {command:?} {table:?} -> {target:?}");
                if got != want {
                    failures.push(format!("{case}: expected {want:?}, got {got:?}"));
                } else if changed != (got == Outcome::Rows(1)) {
                    failures.push(format!("{case}: {got:?} but table changed = {changed}"));
                }
                cases += 1;
            }
        }

        // Moving an own row elsewhere: no column grant for the key columns.
        let seed = f.seed(own).await;
        for sql in table.move_sqls() {
            let before = f.digest(table).await;
            begin(conn, ctx()).await;
            let got = run(
                conn,
                &sql,
                [seed.key(table, own), f.p2.project, f.p3.tenant],
            )
            .await;
            if got != Outcome::Denied || f.digest(table).await != before {
                failures.push(format!("{label} {sql}: expected Denied, got {got:?}"));
            }
            cases += 1;
        }
    }
    cases
}

#[tokio::test]
async fn the_database_alone_enforces_the_matrix() {
    let f = Fixture::new().await;
    // Something to see in every project.
    for place in [f.p1, f.p2, f.p3] {
        f.seed(place).await;
    }
    let mut conn = PgConnection::connect(f.db.app_url()).await.unwrap();
    let mut failures = Vec::new();
    let mut cases = 0;
    for role in ROLES {
        let context = Some((f.p1.tenant, format!("{}:{role}", f.p1.project)));
        cases += check_context(
            &f,
            &mut conn,
            role,
            context,
            Some(rank(role)),
            &mut failures,
        )
        .await;
    }
    cases += check_context(&f, &mut conn, "no context", None, None, &mut failures).await;
    assert!(
        failures.is_empty(),
        "{} failures:\n{}",
        failures.len(),
        failures.join("\n")
    );
    // Per context: 8 SELECTs, 8 x 3 x 3 writes, 15 moves (2 for each of the 6 project tables,
    // 2 for projects, 1 for tenants).
    assert_eq!(cases, 5 * (8 + 72 + 15));
    conn.close().await.unwrap();
    f.db.drop_db().await;
}

#[tokio::test]
async fn a_context_naming_another_tenants_project_sees_nothing_of_it() {
    let f = Fixture::new().await;
    let s3 = f.seed(f.p3).await;
    let mut conn = PgConnection::connect(f.db.app_url()).await.unwrap();
    // Tenant T1, but every project level (viewer to owner) claims T2's project P3.
    let forged = format!("{}:owner", f.p3.project);
    for table in TABLES {
        begin(&mut conn, Some((f.p1.tenant, &forged))).await;
        let rows = visible(&mut conn, table).await;
        sqlx::raw_sql("COMMIT").execute(&mut conn).await.unwrap();
        assert!(
            rows.iter().all(|(tenant, _)| *tenant == f.p1.tenant),
            "{table:?}: saw another tenant's rows"
        );
        assert!(
            !rows.iter().any(|(_, project)| *project == f.p3.project),
            "{table:?}: saw P3"
        );
    }
    let before = f.digest(Table::Documents).await;
    begin(&mut conn, Some((f.p1.tenant, &forged))).await;
    assert_eq!(
        run(&mut conn, "DELETE FROM documents WHERE id = $1 AND $2::uuid IS NOT NULL AND $3::uuid IS NOT NULL RETURNING 1", [s3.document, Uuid::nil(), Uuid::nil()]).await,
        Outcome::Rows(0)
    );
    begin(&mut conn, Some((f.p1.tenant, &forged))).await;
    assert_eq!(
        run(
            &mut conn,
            Table::Documents.insert_sql(),
            [f.p3.tenant, f.p3.project, Uuid::nil()]
        )
        .await,
        Outcome::Denied
    );
    assert_eq!(f.digest(Table::Documents).await, before);
    conn.close().await.unwrap();
    f.db.drop_db().await;
}

#[tokio::test]
async fn an_empty_context_after_an_earlier_transaction_sees_nothing() {
    let f = Fixture::new().await;
    f.seed(f.p1).await;
    // One connection, so the later transactions run where the context was once set.
    let pool = PgPoolOptions::new()
        .max_connections(1)
        .connect(f.db.app_url())
        .await
        .unwrap();
    let mut conn = pool.acquire().await.unwrap();
    let roles = format!("{}:owner", f.p1.project);
    begin(&mut conn, Some((f.p1.tenant, &roles))).await;
    assert!(!visible(&mut conn, Table::Documents).await.is_empty());
    sqlx::raw_sql("COMMIT").execute(&mut *conn).await.unwrap();

    // After the transaction the setting reads '' (not NULL): still no context.
    let leftover: Option<String> =
        sqlx::query_scalar("SELECT current_setting('tenancy.context', true)")
            .fetch_one(&mut *conn)
            .await
            .unwrap();
    assert_eq!(leftover.as_deref(), Some(""));
    for table in TABLES {
        begin(&mut conn, None).await;
        assert!(
            visible(&mut conn, table).await.is_empty(),
            "{table:?} after commit"
        );
        sqlx::raw_sql("COMMIT").execute(&mut *conn).await.unwrap();
        begin(&mut conn, Some((f.p1.tenant, ""))).await; // tenant set, no project field
        let rows = visible(&mut conn, table).await;
        sqlx::raw_sql("COMMIT").execute(&mut *conn).await.unwrap();
        assert!(rows.is_empty(), "{table:?} with no projects saw {rows:?}");
        // Set explicitly to '', and to every field present but empty.
        for value in ["", ";;{};{};{};{}"] {
            sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
                "BEGIN; {}",
                tenancy_tests::install_claims(value)
            )))
            .execute(&mut *conn)
            .await
            .unwrap();
            assert!(
                visible(&mut conn, table).await.is_empty(),
                "{table:?} with {value:?}"
            );
            sqlx::raw_sql("COMMIT").execute(&mut *conn).await.unwrap();
        }
    }
    // And writes are refused.
    begin(&mut conn, None).await;
    assert_eq!(
        run(
            &mut conn,
            Table::Documents.insert_sql(),
            [f.p1.tenant, f.p1.project, Uuid::nil()]
        )
        .await,
        Outcome::Denied
    );
    drop(conn);
    pool.close().await;
    f.db.drop_db().await;
}
