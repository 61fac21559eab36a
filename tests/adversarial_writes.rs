//! Write isolation beyond the basic matrix of `raw_sql_matrix.rs`: upserts, natural keys,
//! foreign keys and multi-table statements, all as the application role with raw SQL (the
//! database alone must hold) and, where the runtime is involved, through the generated
//! repositories.
//!
//! World: tenant A (projects A1, A2) and tenant B (project B1). `alice` is owner of A1 and
//! viewer of A2; `bob` is owner of B1. Each project holds two documents with a chunk each.
//! Every case compares the victim's rows, as the superuser sees them, before and after.

use sqlx::postgres::PgConnection;
use sqlx::{Connection, PgPool};
use tenancy_generated::roles::Editor;
use tenancy_generated::{Documents, NewDocument};
use tenancy_runtime::{Error, Tenancy, TenantId, UserId};
use tenancy_tests::{set_context, TestDb};
use uuid::Uuid;

#[derive(Clone, Copy, Debug)]
struct Place {
    tenant: Uuid,
    project: Uuid,
}

struct World {
    db: TestDb,
    a1: Place,
    a2: Place,
    b1: Place,
    alice: Uuid,
    /// (place, document id, content_hash, chunk id)
    docs: Vec<(Place, Uuid, String, Uuid)>,
}

impl World {
    async fn new() -> World {
        let db = TestDb::fresh().await;
        let (ta, tb) = (Uuid::new_v4(), Uuid::new_v4());
        let a1 = Place {
            tenant: ta,
            project: Uuid::new_v4(),
        };
        let a2 = Place {
            tenant: ta,
            project: Uuid::new_v4(),
        };
        let b1 = Place {
            tenant: tb,
            project: Uuid::new_v4(),
        };
        let (alice, bob) = (Uuid::new_v4(), Uuid::new_v4());
        let admin = db.admin_pool();
        for (t, slug) in [(ta, "a"), (tb, "b")] {
            sqlx::query("INSERT INTO tenants (id, name, slug) VALUES ($1, $2, $2)")
                .bind(t)
                .bind(slug)
                .execute(admin)
                .await
                .unwrap();
        }
        for (p, slug) in [(a1, "a1"), (a2, "a2"), (b1, "b1")] {
            sqlx::query("INSERT INTO projects (tenant_id, id, name, slug) VALUES ($1, $2, $3, $3)")
                .bind(p.tenant)
                .bind(p.project)
                .bind(slug)
                .execute(admin)
                .await
                .unwrap();
        }
        for (user, p, role) in [
            (alice, a1, "owner"),
            (alice, a2, "viewer"),
            (bob, b1, "owner"),
        ] {
            sqlx::query(
                "INSERT INTO user_project_roles (tenant_id, project_id, user_id, role) \
                 VALUES ($1, $2, $3, $4::tenancy.project_role)",
            )
            .bind(p.tenant)
            .bind(p.project)
            .bind(user)
            .bind(role)
            .execute(admin)
            .await
            .unwrap();
        }
        let mut docs = Vec::new();
        for (p, label) in [(a1, "a1"), (a2, "a2"), (b1, "b1")] {
            for n in 0..2 {
                let (doc, chunk) = (Uuid::new_v4(), Uuid::new_v4());
                let hash = format!("hash-{label}-{n}");
                sqlx::query(
                    "INSERT INTO documents (tenant_id, project_id, id, title, content_hash, created_by) \
                     VALUES ($1, $2, $3, 'original', $4, $5)",
                )
                .bind(p.tenant)
                .bind(p.project)
                .bind(doc)
                .bind(&hash)
                .bind(alice)
                .execute(admin)
                .await
                .unwrap();
                sqlx::query(
                    "INSERT INTO chunks (tenant_id, project_id, id, document_id, ordinal, content, token_count) \
                     VALUES ($1, $2, $3, $4, 0, 'original', 1)",
                )
                .bind(p.tenant)
                .bind(p.project)
                .bind(chunk)
                .bind(doc)
                .execute(admin)
                .await
                .unwrap();
                docs.push((p, doc, hash, chunk));
            }
        }
        World {
            db,
            a1,
            a2,
            b1,
            alice,
            docs,
        }
    }

    fn admin(&self) -> &PgPool {
        self.db.admin_pool()
    }

    fn doc(&self, place: Place, n: usize) -> (Uuid, String, Uuid) {
        let (_, id, hash, chunk) = self
            .docs
            .iter()
            .filter(|(p, ..)| p.project == place.project)
            .nth(n)
            .unwrap();
        (*id, hash.clone(), *chunk)
    }

    /// Every row of documents, chunks and assertions as text, as the superuser sees them.
    async fn digest(&self) -> Vec<String> {
        sqlx::query_scalar(
            "SELECT format('%s', d) FROM documents d \
             UNION ALL SELECT format('%s', c) FROM chunks c \
             UNION ALL SELECT format('%s', a) FROM assertions a ORDER BY 1",
        )
        .fetch_all(self.admin())
        .await
        .unwrap()
    }

    async fn app_conn(&self) -> PgConnection {
        PgConnection::connect(self.db.app_url()).await.unwrap()
    }

    /// Alice's context: owner of A1, viewer of A2.
    fn alice_context(&self) -> String {
        let mut roles = [
            format!("{}:owner", self.a1.project),
            format!("{}:viewer", self.a2.project),
        ];
        roles.sort();
        context(self.a1.tenant, self.alice, &roles.join(","))
    }
}

/// `BEGIN` and the one context setting `tenancy.context` for `tenant`, `user` and `roles`
/// (`project:role,...`), as raw SQL would set it.
fn context(tenant: Uuid, user: Uuid, roles: &str) -> String {
    format!(
        "BEGIN; {}",
        set_context(&tenant.to_string(), &user.to_string(), roles)
    )
}

/// Runs `sql` (bound to `args`) inside a transaction opened with `begin`, then rolls back.
/// Returns the SQLSTATE of the error, or the number of rows returned.
async fn attempt(
    conn: &mut PgConnection,
    begin: &str,
    sql: &str,
    args: &[Uuid],
) -> Result<usize, String> {
    sqlx::raw_sql(sqlx::AssertSqlSafe(begin))
        .execute(&mut *conn)
        .await
        .unwrap();
    let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
    for arg in args {
        query = query.bind(*arg);
    }
    let result = query.fetch_all(&mut *conn).await;
    // COMMIT, not ROLLBACK: whatever the statement did must be what stays.
    sqlx::raw_sql("COMMIT").execute(&mut *conn).await.unwrap();
    match result {
        Ok(rows) => Ok(rows.len()),
        Err(err) => Err(err
            .as_database_error()
            .and_then(|e| e.code())
            .map(|c| c.into_owned())
            .unwrap_or_else(|| format!("non-database error: {err}"))),
    }
}

#[tokio::test]
async fn upsert_hitting_another_tenants_row_is_an_error_not_an_update() {
    let w = World::new().await;
    let mut conn = w.app_conn().await;
    let (b_doc, b_hash, _) = w.doc(w.b1, 0);
    let begin = w.alice_context();
    let before = w.digest().await;
    let upserts = [
        // The exact primary key of B's row.
        "INSERT INTO documents (tenant_id, project_id, id, title, content_hash, created_by) \
         VALUES ($1, $2, $3, 'pwned', 'x', $4) \
         ON CONFLICT (tenant_id, project_id, id) DO UPDATE SET title = 'pwned' RETURNING id",
        // B's natural key.
        "INSERT INTO documents (tenant_id, project_id, id, title, content_hash, created_by) \
         VALUES ($1, $2, $3, 'pwned', (SELECT 'hash-b1-0'), $4) \
         ON CONFLICT (tenant_id, project_id, content_hash) DO UPDATE SET title = 'pwned' RETURNING id",
        // ON CONFLICT DO NOTHING must not answer "exists" with silence either.
        "INSERT INTO documents (tenant_id, project_id, id, title, content_hash, created_by) \
         VALUES ($1, $2, $3, 'pwned', 'x', $4) ON CONFLICT DO NOTHING RETURNING id",
        // Whole-row form, with the conflicting row's columns copied over.
        "INSERT INTO documents AS d (tenant_id, project_id, id, title, content_hash, created_by) \
         VALUES ($1, $2, $3, 'pwned', 'x', $4) \
         ON CONFLICT ON CONSTRAINT documents_pkey DO UPDATE SET title = EXCLUDED.title, \
         content_hash = d.content_hash || '!' RETURNING id",
    ];
    for sql in upserts {
        let got = attempt(
            &mut conn,
            &begin,
            sql,
            &[w.b1.tenant, w.b1.project, b_doc, w.alice],
        )
        .await;
        assert_eq!(got, Err("42501".to_owned()), "{sql}");
    }
    // Alice's tenant, B's project id: no conflict possible (tenant_id is in every key), and
    // the project is not hers -> refused by WITH CHECK.
    let got = attempt(
        &mut conn,
        &begin,
        upserts[0],
        &[w.a1.tenant, w.b1.project, b_doc, w.alice],
    )
    .await;
    assert_eq!(got, Err("42501".to_owned()));
    // A forged context that claims B1 as owner inside tenant A still cannot reach B's row.
    let forged = context(w.a1.tenant, w.alice, &format!("{}:owner", w.b1.project));
    let got = attempt(
        &mut conn,
        &forged,
        upserts[0],
        &[w.b1.tenant, w.b1.project, b_doc, w.alice],
    )
    .await;
    assert_eq!(got, Err("42501".to_owned()));
    // ... and the forged (A, B1) pair has no parent project: the FK refuses it.
    let got = attempt(
        &mut conn,
        &forged,
        upserts[0],
        &[w.a1.tenant, w.b1.project, b_doc, w.alice],
    )
    .await;
    assert_eq!(got, Err("23503".to_owned()));
    // A2 is Alice's, but only as viewer: an upsert onto A2's row is refused, not applied.
    let (a2_doc, ..) = w.doc(w.a2, 0);
    let got = attempt(
        &mut conn,
        &begin,
        upserts[0],
        &[w.a2.tenant, w.a2.project, a2_doc, w.alice],
    )
    .await;
    assert_eq!(got, Err("42501".to_owned()));
    assert_eq!(w.digest().await, before, "a refused upsert changed rows");
    assert!(!b_hash.is_empty());

    // Control: the same upsert on Alice's own row does update it (the statements are not
    // simply broken).
    let (a1_doc, ..) = w.doc(w.a1, 0);
    let got = attempt(
        &mut conn,
        &begin,
        upserts[0],
        &[w.a1.tenant, w.a1.project, a1_doc, w.alice],
    )
    .await;
    assert_eq!(got, Ok(1));
    let title: String = sqlx::query_scalar("SELECT title FROM documents WHERE id = $1")
        .bind(a1_doc)
        .fetch_one(w.admin())
        .await
        .unwrap();
    assert_eq!(title, "pwned");
    let b_title: String = sqlx::query_scalar("SELECT title FROM documents WHERE id = $1")
        .bind(b_doc)
        .fetch_one(w.admin())
        .await
        .unwrap();
    assert_eq!(b_title, "original");
    conn.close().await.unwrap();
    w.db.drop_db().await;
}

#[tokio::test]
async fn a_natural_key_taken_only_in_another_tenant_is_accepted() {
    let w = World::new().await;
    let (_, b_hash, _) = w.doc(w.b1, 0);
    let (_, a2_hash, _) = w.doc(w.a2, 0);
    let (_, a1_hash, _) = w.doc(w.a1, 0);

    // Through the runtime and the generated repository.
    let tenancy = Tenancy::with_config(w.db.app_pool().clone(), tenancy_generated::config());
    let ctx = tenancy
        .authorize(UserId::new(w.alice), TenantId::new(w.a1.tenant))
        .await
        .unwrap();
    let scope = ctx
        .project(tenancy_runtime::ProjectId::new(w.a1.project))
        .unwrap()
        .require::<Editor>()
        .unwrap();
    let new_doc = |hash: &str| NewDocument {
        id: None,
        title: "mine".to_owned(),
        source_uri: None,
        mime_type: None,
        content_hash: hash.to_owned(),
        metadata: None,
    };
    // Taken in tenant B, and in Alice's own other project A2: both accepted in A1.
    for hash in [&b_hash, &a2_hash] {
        let mut tx = tenancy.begin(&scope).await.unwrap();
        let doc = Documents::insert(&mut tx, new_doc(hash)).await.unwrap();
        tx.commit().await.unwrap();
        assert_eq!((doc.tenant_id, doc.project_id), (w.a1.tenant, w.a1.project));
        assert_eq!(&doc.content_hash, hash);
    }
    // Taken in A1 itself: a conflict, reported as such.
    let mut tx = tenancy.begin(&scope).await.unwrap();
    let err = Documents::insert(&mut tx, new_doc(&a1_hash))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Conflict), "{err:?}");
    drop(tx);

    // Raw SQL: the same answers, and an upsert on B's hash inserts a new row in A1.
    let mut conn = w.app_conn().await;
    let begin = w.alice_context();
    let upsert = "INSERT INTO documents (tenant_id, project_id, title, content_hash, created_by) \
                  VALUES ($1, $2, 'upserted', $3::text || '', $4) \
                  ON CONFLICT (tenant_id, project_id, content_hash) DO UPDATE SET title = 'updated' \
                  RETURNING title";
    sqlx::raw_sql(sqlx::AssertSqlSafe(begin.as_str()))
        .execute(&mut conn)
        .await
        .unwrap();
    let title: String = sqlx::query_scalar(upsert)
        .bind(w.a1.tenant)
        .bind(w.a1.project)
        .bind(format!("{b_hash}-x"))
        .bind(w.alice)
        .fetch_one(&mut conn)
        .await
        .unwrap();
    assert_eq!(title, "upserted");
    sqlx::raw_sql("ROLLBACK").execute(&mut conn).await.unwrap();
    // B's rows are untouched; A1 now holds B's hash too.
    let holders: Vec<(Uuid, String)> = sqlx::query_as(
        "SELECT tenant_id, title FROM documents WHERE content_hash = $1 ORDER BY tenant_id = $2",
    )
    .bind(&b_hash)
    .bind(w.a1.tenant)
    .fetch_all(w.admin())
    .await
    .unwrap();
    assert_eq!(
        holders,
        vec![
            (w.b1.tenant, "original".to_owned()),
            (w.a1.tenant, "mine".to_owned())
        ]
    );
    conn.close().await.unwrap();
    w.db.drop_db().await;
}

#[tokio::test]
async fn cross_tenant_and_cross_project_foreign_keys_are_refused() {
    let w = World::new().await;
    let mut conn = w.app_conn().await;
    let begin = w.alice_context();
    let (b_doc, _, b_chunk) = w.doc(w.b1, 0);
    let (a2_doc, _, a2_chunk) = w.doc(w.a2, 0);
    let (a1_doc, _, a1_chunk) = w.doc(w.a1, 0);
    let before = w.digest().await;
    let insert_chunk =
        "INSERT INTO chunks (tenant_id, project_id, document_id, ordinal, content, token_count) \
                        VALUES ($1, $2, $3, 7, 'x', 1) RETURNING id";
    // A chunk in A1 pointing at B's document, and at A2's document: no such parent in (A, A1).
    for doc in [b_doc, a2_doc] {
        let got = attempt(
            &mut conn,
            &begin,
            insert_chunk,
            &[w.a1.tenant, w.a1.project, doc],
        )
        .await;
        assert_eq!(got, Err("23503".to_owned()), "chunk -> {doc}");
    }
    // Re-pointing an own chunk at B's document.
    let repoint = "UPDATE chunks SET document_id = $2 WHERE id = $1 RETURNING id";
    for doc in [b_doc, a2_doc] {
        let got = attempt(&mut conn, &begin, repoint, &[a1_chunk, doc]).await;
        assert_eq!(got, Err("23503".to_owned()), "repoint -> {doc}");
    }
    // A query/response/assertion chain in A1 whose assertion cites B's chunk or A2's chunk.
    for chunk in [b_chunk, a2_chunk] {
        let chain = "WITH q AS (INSERT INTO queries (tenant_id, project_id, asked_by, query_text) \
                     VALUES ($1, $2, $4, 'q') RETURNING tenant_id, project_id, id), \
                     r AS (INSERT INTO responses (tenant_id, project_id, query_id, answer_text, model) \
                     SELECT tenant_id, project_id, id, 'a', 'm' FROM q RETURNING tenant_id, project_id, id) \
                     INSERT INTO assertions (tenant_id, project_id, response_id, chunk_id, claim) \
                     SELECT tenant_id, project_id, id, $3, 'c' FROM r RETURNING id";
        let got = attempt(
            &mut conn,
            &begin,
            chain,
            &[w.a1.tenant, w.a1.project, chunk, w.alice],
        )
        .await;
        assert_eq!(got, Err("23503".to_owned()), "assertion -> chunk {chunk}");
    }
    assert_eq!(w.digest().await, before);
    // Control: the same statements with Alice's own parent succeed.
    let got = attempt(
        &mut conn,
        &begin,
        insert_chunk,
        &[w.a1.tenant, w.a1.project, a1_doc],
    )
    .await;
    assert_eq!(got, Ok(1));
    conn.close().await.unwrap();
    w.db.drop_db().await;
}

#[tokio::test]
async fn multi_table_statements_cannot_reach_outside_the_scope() {
    let w = World::new().await;
    let mut conn = w.app_conn().await;
    let begin = w.alice_context();
    let (b_doc, ..) = w.doc(w.b1, 0);
    let (a2_doc, ..) = w.doc(w.a2, 0);
    let before = w.digest().await;
    // Each returns the rows it touched: 0 for rows outside the scope (or of the viewer-only A2).
    let zero_row_statements = [
        "UPDATE documents SET title = 'pwned' WHERE id = $1 RETURNING id",
        "UPDATE chunks c SET content = 'pwned' FROM documents d \
         WHERE d.id = $1 AND c.document_id = d.id RETURNING c.id",
        "DELETE FROM chunks USING documents d WHERE d.id = $1 AND chunks.document_id = d.id RETURNING chunks.id",
        "WITH gone AS (DELETE FROM documents WHERE id = $1 RETURNING id) SELECT id FROM gone",
        "WITH gone AS (DELETE FROM chunks WHERE document_id = $1 RETURNING *) \
         INSERT INTO chunks SELECT * FROM gone RETURNING id",
        "UPDATE documents SET title = 'pwned' WHERE id IN (SELECT id FROM documents WHERE id = $1) RETURNING id",
        "DELETE FROM documents WHERE tenant_id <> (SELECT tenancy.current_tenant_id()) OR id = $1 RETURNING id",
    ];
    for sql in zero_row_statements {
        for doc in [b_doc, a2_doc] {
            let got = attempt(&mut conn, &begin, sql, &[doc]).await;
            assert_eq!(got, Ok(0), "{sql} on {doc}");
        }
    }
    // Copying B's rows into A1 with INSERT ... SELECT: the SELECT sees none of them.
    let copy = "INSERT INTO documents (tenant_id, project_id, title, content_hash, created_by) \
                SELECT $1, $2, title, content_hash || '-copy', created_by FROM documents WHERE tenant_id = $3 \
                RETURNING id";
    let got = attempt(
        &mut conn,
        &begin,
        copy,
        &[w.a1.tenant, w.a1.project, w.b1.tenant],
    )
    .await;
    assert_eq!(got, Ok(0));
    assert_eq!(w.digest().await, before);
    conn.close().await.unwrap();
    w.db.drop_db().await;
}
