//! Row conditions and stamped columns (docs/dsl.md, "Row conditions" and "Stamped columns"),
//! against the generated RAG schema, through the repositories and through plain SQL as the
//! application role under each caller's own, genuine context:
//!
//! - `allow update to editor where created_by = current_user` + `allow update to admin`: the
//!   author (an editor) may edit, another editor may not (the row is absent for them), an
//!   admin may;
//! - `created_by`/`asked_by` are stamped `current_user on insert`: a spoofed value on insert is
//!   replaced by the caller's id, and an UPDATE naming them is refused;
//! - `updated_at` is stamped `now() on update`: the database rewrites it on every update;
//! - `allow insert to viewer where asked_by = current_user` holds because of the stamp;
//! - column rights, `allow update (title, metadata) to editor where ...` + `allow update to
//!   admin`: the author may change the title and metadata but not `source_uri`, `mime_type`
//!   or `content_hash` (refused with 42501 by the database, whatever the SQL), an admin may
//!   change them (`Documents::update_as_admin`), writing a column's current value is no change,
//!   and maintenance work without row-level security is not checked.
//!
//! World: tenant A, project A1: `alice` owner (seeded), `erin` and `frank` editors, `carol`
//! admin, `dave` viewer.

use sqlx::{Executor, PgPool};
use tenancy_runtime::{ProjectId, ScopedTx, Tenancy, TenantId, UserId};
use tenancy_tests::{TestDb, TwoTenants};
use uuid::Uuid;

use tenancy_generated::documents::{DocumentAdminPatch, DocumentPatch, Documents, NewDocument};
use tenancy_generated::queries::{NewQuery, Queries};
use tenancy_generated::roles::{Admin, Editor, Viewer};

struct World {
    _db: TestDb,
    tenants: TwoTenants,
    erin: Uuid,
    frank: Uuid,
    carol: Uuid,
    dave: Uuid,
    pool: PgPool,
}

impl World {
    async fn new() -> World {
        let db = TestDb::fresh().await;
        let tenants = TwoTenants::seed(&db, 1, 1).await;
        let (erin, frank, carol, dave) = (
            Uuid::new_v4(),
            Uuid::new_v4(),
            Uuid::new_v4(),
            Uuid::new_v4(),
        );
        for (user, role) in [
            (erin, "editor"),
            (frank, "editor"),
            (carol, "admin"),
            (dave, "viewer"),
        ] {
            sqlx::query(
                "INSERT INTO user_project_roles (tenant_id, project_id, user_id, role) \
                 VALUES ($1, $2, $3, $4::tenancy.project_role)",
            )
            .bind(tenants.tenant_a)
            .bind(tenants.a1)
            .bind(user)
            .bind(role)
            .execute(db.admin_pool())
            .await
            .unwrap();
        }
        let pool = PgPool::connect(db.app_url()).await.unwrap();
        World {
            _db: db,
            tenants,
            erin,
            frank,
            carol,
            dave,
            pool,
        }
    }

    /// A transaction of `user` in A1 at least `R`, through the runtime.
    async fn begin<R: tenancy_runtime::Role>(
        &self,
        user: Uuid,
    ) -> ScopedTx<tenancy_runtime::ProjectScope<R>> {
        let tenancy = Tenancy::with_config(self.pool.clone(), tenancy_generated::config());
        let ctx = tenancy
            .authorize(UserId::new(user), TenantId::new(self.tenants.tenant_a))
            .await
            .unwrap();
        let scope = ctx
            .project(ProjectId::new(self.tenants.a1))
            .unwrap()
            .require::<R>()
            .unwrap();
        tenancy.begin(&scope).await.unwrap()
    }

    /// A document ingested by `author` (an editor or above) through the repository.
    async fn ingest(&self, author: Uuid) -> Uuid {
        let mut tx = self.begin::<Editor>(author).await;
        let doc = Documents::insert(
            &mut tx,
            NewDocument {
                id: None,
                title: "draft".to_owned(),
                source_uri: None,
                mime_type: None,
                content_hash: Uuid::new_v4().to_string(),
                metadata: None,
            },
        )
        .await
        .unwrap();
        tx.commit().await.unwrap();
        doc.id
    }
}

/// Runs `sql` in `tx`: the rows it affected, or the SQLSTATE of its error.
async fn run<S: tenancy_runtime::Scope>(tx: &mut ScopedTx<S>, sql: &str) -> Result<u64, String> {
    match tx.connection().execute(sqlx::AssertSqlSafe(sql)).await {
        Ok(done) => Ok(done.rows_affected()),
        Err(err) => Err(err
            .as_database_error()
            .and_then(|d| d.code().map(|c| c.into_owned()))
            .unwrap_or_default()),
    }
}

fn retitle() -> DocumentPatch {
    DocumentPatch {
        title: Some("edited".to_owned()),
        ..DocumentPatch::default()
    }
}

#[tokio::test]
async fn the_author_may_edit_another_editor_may_not_an_admin_may() {
    let w = World::new().await;
    let doc = w.ingest(w.erin).await;

    // The author.
    let mut tx = w.begin::<Editor>(w.erin).await;
    let edited = Documents::update(&mut tx, doc, retitle()).await.unwrap();
    assert_eq!(edited.map(|d| d.title).as_deref(), Some("edited"));
    tx.commit().await.unwrap();

    // Another editor of the same project: the row is absent for an update (None), through the
    // repository and through plain SQL; it stays readable.
    let mut tx = w.begin::<Editor>(w.frank).await;
    assert!(Documents::update(&mut tx, doc, retitle())
        .await
        .unwrap()
        .is_none());
    assert_eq!(
        run(
            &mut tx,
            &format!("UPDATE documents SET title = 'hijacked' WHERE id = '{doc}'")
        )
        .await,
        Ok(0)
    );
    assert_eq!(
        run(
            &mut tx,
            &format!("SELECT 1 FROM documents WHERE id = '{doc}'")
        )
        .await,
        Ok(1),
        "another editor still reads the document"
    );
    tx.rollback().await.unwrap();

    // An admin edits any document.
    let mut tx = w.begin::<Admin>(w.carol).await;
    assert!(Documents::update(&mut tx, doc, retitle())
        .await
        .unwrap()
        .is_some());
    tx.commit().await.unwrap();

    let mut tx = w.begin::<Viewer>(w.dave).await;
    let title: String = sqlx::query_scalar("SELECT title FROM documents WHERE id = $1")
        .bind(doc)
        .fetch_one(tx.connection())
        .await
        .unwrap();
    assert_eq!(title, "edited", "frank's update changed nothing");
}

#[tokio::test]
async fn an_editor_cannot_take_over_a_document_by_rewriting_its_author() {
    let w = World::new().await;
    let doc = w.ingest(w.erin).await;

    // Not granted: the app role may not name a stamped column in an UPDATE.
    let mut tx = w.begin::<Editor>(w.erin).await;
    assert_eq!(
        run(
            &mut tx,
            &format!(
                "UPDATE documents SET created_by = '{}' WHERE id = '{doc}'",
                w.frank
            )
        )
        .await,
        Err("42501".to_owned())
    );
    tx.rollback().await.unwrap();
    // Frank cannot write a row naming himself onto Erin's document either: it is absent.
    let mut tx = w.begin::<Editor>(w.frank).await;
    assert_eq!(
        run(
            &mut tx,
            &format!(
                "UPDATE documents SET title = 'x' WHERE id = '{doc}' AND created_by = '{}'",
                w.erin
            )
        )
        .await,
        Ok(0)
    );
    tx.rollback().await.unwrap();
}

#[tokio::test]
async fn stamped_columns_cannot_be_spoofed_on_insert() {
    let w = World::new().await;
    let spoofed = w.frank;
    let mut tx = w.begin::<Editor>(w.erin).await;
    let id = Uuid::new_v4();
    // Plain SQL naming another author and an old timestamp: the database writes its own.
    assert_eq!(
        run(
            &mut tx,
            &format!(
                "INSERT INTO documents (tenant_id, project_id, id, title, content_hash, created_by, created_at) \
                 VALUES ('{}', '{}', '{id}', 't', '{id}', '{spoofed}', '2001-01-01')",
                w.tenants.tenant_a, w.tenants.a1
            )
        )
        .await,
        Ok(1)
    );
    let (author, recent): (Uuid, bool) = sqlx::query_as(
        "SELECT created_by, created_at > now() - interval '1 hour' FROM documents WHERE id = $1",
    )
    .bind(id)
    .fetch_one(tx.connection())
    .await
    .unwrap();
    assert_eq!(
        author, w.erin,
        "created_by is the caller, not the spoofed id"
    );
    assert!(
        recent,
        "created_at is the database's time, not the client's"
    );

    // queries.asked_by: a viewer asking in someone else's name asks in its own.
    let mut tx2 = w.begin::<Viewer>(w.dave).await;
    let q = Queries::insert(
        &mut tx2,
        NewQuery {
            id: None,
            query_text: "who am i".to_owned(),
            top_k: None,
            created_at: None,
        },
    )
    .await
    .unwrap();
    assert_eq!(q.asked_by, w.dave);
    let qid = Uuid::new_v4();
    assert_eq!(
        run(
            &mut tx2,
            &format!(
                "INSERT INTO queries (tenant_id, project_id, id, asked_by, query_text) \
                 VALUES ('{}', '{}', '{qid}', '{spoofed}', 'q')",
                w.tenants.tenant_a, w.tenants.a1
            )
        )
        .await,
        Ok(1)
    );
    let asked_by: Uuid = sqlx::query_scalar("SELECT asked_by FROM queries WHERE id = $1")
        .bind(qid)
        .fetch_one(tx2.connection())
        .await
        .unwrap();
    assert_eq!(asked_by, w.dave);
}

#[tokio::test]
async fn updated_at_is_rewritten_by_every_update() {
    let w = World::new().await;
    let doc = w.ingest(w.erin).await;
    let mut tx = w.begin::<Admin>(w.carol).await;
    // Not granted to the app role: naming it is refused.
    assert_eq!(
        run(
            &mut tx,
            &format!("UPDATE documents SET updated_at = '2001-01-01' WHERE id = '{doc}'")
        )
        .await,
        Err("42501".to_owned())
    );
    tx.rollback().await.unwrap();
    let mut tx = w.begin::<Admin>(w.carol).await;
    let before: chrono::DateTime<chrono::Utc> =
        sqlx::query_scalar("SELECT updated_at FROM documents WHERE id = $1")
            .bind(doc)
            .fetch_one(tx.connection())
            .await
            .unwrap();
    tx.commit().await.unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    let mut tx = w.begin::<Admin>(w.carol).await;
    let after = Documents::update(&mut tx, doc, retitle())
        .await
        .unwrap()
        .unwrap();
    assert!(
        after.updated_at > before,
        "{before} -> {}",
        after.updated_at
    );
    assert_eq!(after.created_by, w.erin, "created_by kept on update");
}

#[tokio::test]
async fn maintenance_without_a_context_writes_what_it_gives() {
    let w = World::new().await;
    let id = Uuid::new_v4();
    sqlx::query(
        "INSERT INTO documents (tenant_id, project_id, id, title, content_hash, created_by, created_at) \
         VALUES ($1, $2, $3, 'imported', $3::text, $4, '2001-01-01')",
    )
    .bind(w.tenants.tenant_a)
    .bind(w.tenants.a1)
    .bind(id)
    .bind(w.frank)
    .execute(w._db.admin_pool())
    .await
    .unwrap();
    let (author, year): (Uuid, f64) = sqlx::query_as(
        "SELECT created_by, extract(year FROM created_at)::float8 FROM documents WHERE id = $1",
    )
    .bind(id)
    .fetch_one(w._db.admin_pool())
    .await
    .unwrap();
    assert_eq!((author, year), (w.frank, 2001.0));
}

#[tokio::test]
async fn an_author_changes_title_and_metadata_but_only_an_admin_changes_the_source() {
    let w = World::new().await;
    let doc = w.ingest(w.erin).await;

    // The author (an editor): the editor's patch has title and metadata, and they change.
    let mut tx = w.begin::<Editor>(w.erin).await;
    let edited = Documents::update(
        &mut tx,
        doc,
        DocumentPatch {
            title: Some("mine".to_owned()),
            metadata: Some(serde_json::json!({"k": 1})),
        },
    )
    .await
    .unwrap()
    .unwrap();
    assert_eq!(edited.title, "mine");
    assert_eq!(edited.metadata, serde_json::json!({"k": 1}));
    // Plain SQL as the app role cannot reach the admins' columns either: each is refused by
    // the database with insufficient_privilege, alone or next to an allowed column.
    for set in [
        "source_uri = 'https://evil.example'",
        "source_uri = 'https://b.example', title = 'x'",
        "mime_type = 'application/pdf'",
        "content_hash = 'forged'",
        "title = 'x', mime_type = upper(mime_type)",
    ] {
        assert_eq!(
            run(
                &mut tx,
                &format!("SAVEPOINT s; UPDATE documents SET {set} WHERE id = '{doc}'")
            )
            .await,
            Err("42501".to_owned()),
            "author: UPDATE ... SET {set}"
        );
        run(&mut tx, "ROLLBACK TO SAVEPOINT s").await.unwrap();
    }
    // Writing a column's current value changes nothing, so it is not refused.
    assert_eq!(
        run(
            &mut tx,
            &format!(
                "UPDATE documents SET mime_type = mime_type, title = 'same source' \
                 WHERE id = '{doc}'"
            )
        )
        .await,
        Ok(1)
    );
    // (`source_uri = source_uri` would read `source_uri`, which is masked from the app role:
    // tests/masked_columns.rs.)
    // A session search_path cannot redirect the trigger's operators or functions.
    run(&mut tx, "SET LOCAL search_path = pg_temp, public")
        .await
        .unwrap();
    assert_eq!(
        run(
            &mut tx,
            &format!("SAVEPOINT s; UPDATE documents SET source_uri = 'x' WHERE id = '{doc}'")
        )
        .await,
        Err("42501".to_owned())
    );
    run(&mut tx, "ROLLBACK TO SAVEPOINT s").await.unwrap();
    tx.commit().await.unwrap();

    // An admin changes the source through the admin patch, and by plain SQL.
    let mut tx = w.begin::<Admin>(w.carol).await;
    let moved = Documents::update_as_admin(
        &mut tx,
        doc,
        DocumentAdminPatch {
            source_uri: Some(Some("https://docs.example/a".to_owned())),
            mime_type: Some("text/markdown".to_owned()),
            ..DocumentAdminPatch::default()
        },
    )
    .await
    .unwrap()
    .unwrap();
    assert_eq!(moved.mime_type, "text/markdown");
    // `source_uri` is masked from viewers: the editor's view reads it.
    let full = Documents::get_as_editor(&mut tx, doc)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(full.source_uri.as_deref(), Some("https://docs.example/a"));
    assert_eq!(
        moved.title, "same source",
        "the admin patch left the title alone"
    );
    assert_eq!(
        run(
            &mut tx,
            &format!("UPDATE documents SET content_hash = 'rehashed' WHERE id = '{doc}'")
        )
        .await,
        Ok(1)
    );
    tx.commit().await.unwrap();

    // Maintenance work (row-level security does not apply to it) is not checked.
    let done = sqlx::query("UPDATE documents SET source_uri = 'maintenance' WHERE id = $1")
        .bind(doc)
        .execute(w._db.admin_pool())
        .await
        .unwrap();
    assert_eq!(done.rows_affected(), 1);

    let source: Option<String> =
        sqlx::query_scalar("SELECT source_uri FROM documents WHERE id = $1")
            .bind(doc)
            .fetch_one(w._db.admin_pool())
            .await
            .unwrap();
    assert_eq!(source.as_deref(), Some("maintenance"));
}

#[tokio::test]
async fn a_refused_column_change_is_forbidden_through_the_runtime() {
    let w = World::new().await;
    let doc = w.ingest(w.erin).await;
    let mut tx = w.begin::<Editor>(w.erin).await;
    let err = sqlx::query("UPDATE documents SET mime_type = 'x' WHERE id = $1")
        .bind(doc)
        .execute(tx.connection())
        .await
        .unwrap_err();
    let err = tenancy_runtime::Error::from(err);
    assert!(
        matches!(err, tenancy_runtime::Error::Forbidden),
        "refused column change maps to Forbidden, got {err:?}"
    );
}
