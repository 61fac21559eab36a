//! Read rights per column (docs/dsl.md, "Read rights per column"): on the RAG documents,
//! `allow select (title, ...) to viewer` and `allow select to editor` mask `source_uri` from
//! viewers. Proven with plain SQL as the application role, under genuine signed contexts:
//!
//! - the app role cannot read `source_uri` on the table in any form (select list, `*`, a
//!   whole-row reference, `WHERE`, `ORDER BY`, `RETURNING`, a self-reference in `SET`): 42501;
//! - the masked view returns exactly the rows the table's select policy admits (no other
//!   tenant's, none without a context), and shows `source_uri` only on rows of projects where
//!   the caller is an editor or above: per row, in a scope mixing roles;
//! - the app role cannot become the reader role that owns the view, nor change the view;
//! - `tenancy audit` accepts the generated view, reports one whose owner was changed (TA050)
//!   and a SELECT on the whole table given back to the app role (TA081).

#![allow(clippy::unwrap_used)]

use sqlx::{Connection, Executor, PgConnection, Row};
use tenancy_tests::{repo_root, set_context, TestDb, TwoTenants};
use uuid::Uuid;

struct World {
    db: TestDb,
    tenants: TwoTenants,
    /// A second project of tenant A, where the probing user is only a viewer.
    a2: Uuid,
    /// The probing user: editor of A1, viewer of A2.
    erin: Uuid,
}

impl World {
    async fn new() -> World {
        let db = TestDb::fresh().await;
        let tenants = TwoTenants::seed(&db, 3, 3).await;
        let (a2, erin) = (Uuid::new_v4(), Uuid::new_v4());
        let admin = db.admin_pool();
        sqlx::query("INSERT INTO projects (tenant_id, id, name, slug) VALUES ($1, $2, 'A2', $3)")
            .bind(tenants.tenant_a)
            .bind(a2)
            .bind(format!("a2-{a2}"))
            .execute(admin)
            .await
            .unwrap();
        for i in 0..2 {
            sqlx::query(
                "INSERT INTO documents (tenant_id, project_id, title, content_hash, created_by) \
                 VALUES ($1, $2, 'a2 doc', $3, $4)",
            )
            .bind(tenants.tenant_a)
            .bind(a2)
            .bind(format!("a2-{i}-{a2}"))
            .bind(tenants.alice)
            .execute(admin)
            .await
            .unwrap();
        }
        sqlx::query("UPDATE documents SET source_uri = 'uri:' || id::text")
            .execute(admin)
            .await
            .unwrap();
        sqlx::query(
            "INSERT INTO user_project_roles (tenant_id, project_id, user_id, role) \
             VALUES ($1, $2, $4, 'editor'), ($1, $3, $4, 'viewer')",
        )
        .bind(tenants.tenant_a)
        .bind(tenants.a1)
        .bind(a2)
        .bind(erin)
        .execute(admin)
        .await
        .unwrap();
        World {
            db,
            tenants,
            a2,
            erin,
        }
    }

    /// A connection of the app role inside a transaction with erin's context over A1 (editor)
    /// and A2 (viewer); `roles` overrides the `project:role` list.
    async fn erin(&self, roles: Option<&str>) -> PgConnection {
        let mut conn = PgConnection::connect(self.db.app_url()).await.unwrap();
        conn.execute("BEGIN").await.unwrap();
        let default = format!("{}:editor,{}:viewer", self.tenants.a1, self.a2);
        let context = set_context(
            &self.tenants.tenant_a.to_string(),
            &self.erin.to_string(),
            roles.unwrap_or(&default),
        );
        conn.execute(sqlx::AssertSqlSafe(context)).await.unwrap();
        conn
    }
}

/// The SQLSTATE of running `sql` (inside a savepoint, so the transaction goes on), or `None`
/// when it succeeded.
async fn refusal(conn: &mut PgConnection, sql: &str) -> Option<String> {
    conn.execute("SAVEPOINT probe").await.unwrap();
    let result = conn.execute(sqlx::AssertSqlSafe(sql.to_owned())).await;
    conn.execute("ROLLBACK TO SAVEPOINT probe").await.unwrap();
    result.err().map(|e| {
        e.as_database_error()
            .and_then(|d| d.code().map(|c| c.into_owned()))
            .unwrap_or_default()
    })
}

#[tokio::test]
async fn the_app_role_cannot_read_a_masked_column_on_the_table_in_any_form() {
    let w = World::new().await;
    let mut conn = w.erin(None).await;
    let doc = w.tenants.a_docs[0];
    for sql in [
        "SELECT source_uri FROM documents".to_owned(),
        "SELECT * FROM documents".to_owned(),
        "SELECT d FROM documents d".to_owned(),
        "SELECT row_to_json(d) FROM documents d".to_owned(),
        "SELECT id FROM documents WHERE source_uri LIKE 'uri:%'".to_owned(),
        "SELECT id FROM documents ORDER BY source_uri".to_owned(),
        "SELECT count(source_uri) FROM documents".to_owned(),
        format!("UPDATE documents SET title = title WHERE id = '{doc}' RETURNING source_uri"),
        format!("UPDATE documents SET source_uri = source_uri || '' WHERE id = '{doc}'"),
        format!("DELETE FROM documents WHERE id = '{doc}' AND source_uri IS NOT NULL"),
        "COPY documents TO STDOUT".to_owned(),
    ] {
        assert_eq!(
            refusal(&mut conn, &sql).await.as_deref(),
            Some("42501"),
            "the app role read source_uri with: {sql}"
        );
    }
    // The other columns stay readable, and the masked column writable by whoever the update
    // rules let write it (not an editor, here: column rights).
    assert_eq!(
        refusal(
            &mut conn,
            "SELECT id, title, content_hash, metadata FROM documents"
        )
        .await,
        None
    );
}

#[tokio::test]
async fn the_masked_view_shows_a_masked_value_only_where_the_callers_role_reads_it() {
    let w = World::new().await;
    let mut conn = w.erin(None).await;
    let rows = sqlx::query(
        "SELECT project_id, id, source_uri FROM tenancy.documents_masked ORDER BY project_id, id",
    )
    .fetch_all(&mut conn)
    .await
    .unwrap();
    let table_ids: Vec<Uuid> =
        sqlx::query_scalar("SELECT id FROM documents ORDER BY project_id, id")
            .fetch_all(&mut conn)
            .await
            .unwrap();
    let view_ids: Vec<Uuid> = rows.iter().map(|r| r.get("id")).collect();
    assert_eq!(
        view_ids, table_ids,
        "the view returns the rows the table's policy admits"
    );
    assert_eq!(
        view_ids.len(),
        w.tenants.a_docs.len() + 2,
        "A1's and A2's documents only"
    );
    for row in &rows {
        let project: Uuid = row.get("project_id");
        let id: Uuid = row.get("id");
        let source: Option<String> = row.get("source_uri");
        if project == w.tenants.a1 {
            assert_eq!(source, Some(format!("uri:{id}")), "editor of A1 reads it");
        } else {
            assert_eq!(project, w.a2);
            assert_eq!(source, None, "viewer of A2 does not");
        }
    }
    // Filtering the view on the masked column sees the masked value: no probing through WHERE.
    let probed: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM tenancy.documents_masked WHERE source_uri LIKE 'uri:%'",
    )
    .fetch_one(&mut conn)
    .await
    .unwrap();
    assert_eq!(probed as usize, w.tenants.a_docs.len());
    conn.execute("ROLLBACK").await.unwrap();

    // Another tenant's rows never appear, whatever the caller claims for them; no context, no rows.
    let mut conn = w.erin(Some(&format!("{}:owner", w.tenants.b1))).await;
    let other: i64 = sqlx::query_scalar("SELECT count(*) FROM tenancy.documents_masked")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    assert_eq!(
        other, 0,
        "a tenant A context names a tenant B project: nothing"
    );
    conn.execute("ROLLBACK").await.unwrap();
    let mut bare = PgConnection::connect(w.db.app_url()).await.unwrap();
    let none: i64 = sqlx::query_scalar("SELECT count(*) FROM tenancy.documents_masked")
        .fetch_one(&mut bare)
        .await
        .unwrap();
    assert_eq!(none, 0, "no context means no rows, through the view too");
}

#[tokio::test]
async fn the_app_role_cannot_become_the_reader_or_change_the_view() {
    let w = World::new().await;
    let mut conn = w.erin(None).await;
    for sql in [
        "SET ROLE tenancy_app_reader",
        "SET SESSION AUTHORIZATION tenancy_app_reader",
        "ALTER VIEW tenancy.documents_masked OWNER TO tenancy_app",
        "CREATE OR REPLACE VIEW tenancy.documents_masked AS SELECT * FROM documents",
        "DROP VIEW tenancy.documents_masked",
        "GRANT tenancy_app_reader TO tenancy_app",
    ] {
        let code = refusal(&mut conn, sql).await;
        assert!(
            matches!(
                code.as_deref(),
                Some("42501") | Some("42P01") | Some("0LP01")
            ),
            "{sql}: {code:?}"
        );
    }
    let attributes: (bool, bool, i64) = sqlx::query_as(
        "SELECT r.rolcanlogin, r.rolbypassrls, \
                (SELECT count(*) FROM pg_catalog.pg_auth_members m WHERE m.roleid = r.oid) \
         FROM pg_catalog.pg_roles r WHERE r.rolname = 'tenancy_app_reader'",
    )
    .fetch_one(w.db.admin_pool())
    .await
    .unwrap();
    assert_eq!(
        attributes,
        (false, false, 0),
        "NOLOGIN, no BYPASSRLS, no members"
    );
}

#[tokio::test]
async fn audit_accepts_the_masked_view_and_reports_one_with_another_owner() {
    let w = World::new().await;
    let model = tenancy_core::dsl::compile_dir(&repo_root().join("examples/rag/policies"))
        .unwrap()
        .0;
    let pool = tenancy_audit::connect(w.db.url()).await.unwrap();
    let clean = tenancy_audit::audit(&pool, &model).await.unwrap();
    assert!(clean.is_clean(), "{:?}", clean.findings);
    // Giving the app role the masked column back (a whole-table SELECT) is TA081.
    sqlx::query("GRANT SELECT ON documents TO tenancy_app")
        .execute(w.db.admin_pool())
        .await
        .unwrap();
    let regranted = tenancy_audit::audit(&pool, &model).await.unwrap();
    assert!(
        regranted
            .findings
            .iter()
            .any(|f| f.code == "TA081" && f.object.contains("documents")),
        "{:?}",
        regranted.findings
    );
    sqlx::query("ALTER VIEW tenancy.documents_masked OWNER TO tenancy_owner")
        .execute(w.db.admin_pool())
        .await
        .unwrap();
    let report = tenancy_audit::audit(&pool, &model).await.unwrap();
    assert!(
        report
            .findings
            .iter()
            .any(|f| f.code == "TA050" && f.object.contains("documents_masked")),
        "{:?}",
        report.findings
    );
}
