//! Adopting the pre-tenancy schema of `examples/legacy` on generated data, on a real
//! PostgreSQL: the phased migration generated from `examples/legacy/policies` keeps every row,
//! leaves no NULL scope and no scope default, ends with row-level security on and an audit as
//! clean as (and a catalog identical to) a database created from scratch; a planted NULL or
//! orphan stops it at the step that finds it, and that step leaves the database unchanged.

#![allow(clippy::expect_used, clippy::unwrap_used)] // tests panic with the reason

#[path = "../examples/legacy/runner.rs"]
mod runner;

use std::collections::BTreeMap;

use runner::{
    apply_file, file_name, legacy_model, load_legacy, migrations, LegacySize, LEGACY_TABLES,
};
use sqlx::{Connection, PgConnection};
use tenancy_core::model::Model;
use tenancy_core::sql::GeneratedFile;
use tenancy_tests::{set_context, TestDb};

/// 200 documents x 10 chunks: 2,000 chunks, 100 queries and responses, 300 assertions.
const SMALL: LegacySize = LegacySize {
    documents: 200,
    chunks_per_document: 10,
    queries: 100,
    assertions_per_response: 3,
    embeddings: true,
};

/// A test database holding the legacy schema with [`SMALL`] data, and the adoption files.
struct Legacy {
    db: TestDb,
    conn: PgConnection,
    model: Model,
    files: Vec<GeneratedFile>,
}

impl Legacy {
    async fn new() -> Legacy {
        let db = TestDb::empty().await;
        let mut conn = PgConnection::connect(db.url()).await.expect("connect");
        load_legacy(&mut conn, SMALL)
            .await
            .expect("load legacy data");
        let model = legacy_model().expect("legacy model");
        let files = migrations(&model);
        // 0001 creates cluster-wide roles: apply it through the harness, which serialises
        // that across concurrently running tests.
        let core_dir = tempdir();
        std::fs::write(core_dir.join("0001_tenancy_core.sql"), &files[0].contents).unwrap();
        db.apply_migrations(&core_dir).await.expect("0001");
        std::fs::remove_dir_all(&core_dir).ok();
        Legacy {
            db,
            conn,
            model,
            files,
        }
    }

    fn file(&self, prefix: &str) -> &GeneratedFile {
        self.files
            .iter()
            .find(|f| file_name(f).starts_with(prefix))
            .unwrap_or_else(|| panic!("no file {prefix}"))
    }

    /// Applies the files whose number is in `from..=to` (`0002`..), in order.
    async fn apply(&mut self, from: u32, to: u32) {
        let files: Vec<GeneratedFile> = self
            .files
            .iter()
            .filter(|f| {
                let number: u32 = file_name(f)[..4].parse().unwrap();
                (from..=to).contains(&number)
            })
            .cloned()
            .collect();
        for file in &files {
            apply_file(&mut self.conn, file)
                .await
                .unwrap_or_else(|e| panic!("{e:#}"));
        }
    }

    /// Applies one file and returns its error, which it must have.
    async fn apply_failing(&mut self, prefix: &str) -> String {
        let file = self.file(prefix).clone();
        match apply_file(&mut self.conn, &file).await {
            Ok(()) => panic!("{} succeeded", file_name(&file)),
            Err(e) => format!("{e:#}"),
        }
    }

    async fn exec(&mut self, sql: &str) {
        sqlx::raw_sql(sqlx::AssertSqlSafe(sql))
            .execute(&mut self.conn)
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e}"));
    }

    async fn scalar_i64(&mut self, sql: &str) -> i64 {
        sqlx::query_scalar(sqlx::AssertSqlSafe(sql))
            .fetch_one(&mut self.conn)
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e}"))
    }
}

fn tempdir() -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("legacy_adoption_{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Row counts of the legacy tables.
async fn counts(conn: &mut PgConnection) -> BTreeMap<&'static str, i64> {
    let mut out = BTreeMap::new();
    for table in LEGACY_TABLES {
        let n: i64 =
            sqlx::query_scalar(sqlx::AssertSqlSafe(format!("SELECT count(*) FROM {table}")))
                .fetch_one(&mut *conn)
                .await
                .unwrap();
        out.insert(table, n);
    }
    out
}

/// A digest of the declared columns of every legacy row (the data the adoption must keep).
async fn legacy_data_digest(conn: &mut PgConnection, model: &Model) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for table in LEGACY_TABLES {
        let columns: Vec<String> = model
            .table(table)
            .unwrap()
            .columns
            .iter()
            .map(|c| c.name.clone())
            .collect();
        let digest: String = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
            "SELECT md5(string_agg(r::text, E'\\n' ORDER BY r::text)) FROM (SELECT {} FROM {table}) AS r",
            columns.join(", ")
        )))
        .fetch_one(&mut *conn)
        .await
        .unwrap();
        out.insert(table.to_owned(), digest);
    }
    out
}

/// The catalog of the user schemas (objects, owners, grants, row-level security, columns with
/// their types, nullability and defaults, constraints with their validation state, indexes
/// with their validity, policies, functions and procedures), one line per fact, sorted.
/// Column order is left out: adopted tables have their scope columns last.
const CATALOG_SQL: &str = r#"
WITH user_ns AS (
  SELECT oid FROM pg_namespace
  WHERE nspname NOT LIKE 'pg\_%' AND nspname <> 'information_schema'
)
SELECT line FROM (
  SELECT 'schema ' || nspname || ' ' || nspowner::regrole::text || ' ' || coalesce(nspacl::text, '') AS line
  FROM pg_namespace WHERE oid IN (SELECT oid FROM user_ns)
  UNION ALL
  SELECT 'relation ' || c.oid::regclass::text || ' kind=' || c.relkind::text || ' owner=' || c.relowner::regrole::text
         || ' rls=' || c.relrowsecurity || ' force=' || c.relforcerowsecurity || ' acl=' || coalesce(c.relacl::text, '')
  FROM pg_class AS c WHERE c.relnamespace IN (SELECT oid FROM user_ns) AND c.relkind IN ('r', 'v', 'm', 'S', 'p')
  UNION ALL
  SELECT 'column ' || a.attrelid::regclass::text || '.' || a.attname || ' ' || format_type(a.atttypid, a.atttypmod)
         || ' notnull=' || a.attnotnull || ' default=' || coalesce(pg_get_expr(d.adbin, d.adrelid), '')
         || ' acl=' || coalesce(a.attacl::text, '')
  FROM pg_attribute AS a
  JOIN pg_class AS c ON c.oid = a.attrelid
  LEFT JOIN pg_attrdef AS d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
  WHERE c.relnamespace IN (SELECT oid FROM user_ns) AND c.relkind IN ('r', 'v', 'm', 'p')
    AND a.attnum > 0 AND NOT a.attisdropped
  UNION ALL
  SELECT 'constraint ' || conrelid::regclass::text || ' ' || conname || ' ' || pg_get_constraintdef(oid)
         || ' validated=' || convalidated
  FROM pg_constraint WHERE connamespace IN (SELECT oid FROM user_ns) AND contype <> 'n'
  UNION ALL
  SELECT 'index ' || pg_get_indexdef(i.indexrelid) || ' valid=' || i.indisvalid
  FROM pg_index AS i JOIN pg_class AS c ON c.oid = i.indexrelid
  WHERE c.relnamespace IN (SELECT oid FROM user_ns)
  UNION ALL
  SELECT 'policy ' || schemaname || '.' || tablename || ' ' || policyname || ' ' || permissive || ' '
         || roles::text || ' ' || cmd || ' ' || coalesce(qual, '') || ' ' || coalesce(with_check, '')
  FROM pg_policies
  UNION ALL
  SELECT 'routine ' || p.oid::regprocedure::text || ' kind=' || p.prokind::text || ' owner=' || p.proowner::regrole::text
         || ' acl=' || coalesce(p.proacl::text, '') || ' src=' || md5(p.prosrc)
  FROM pg_proc AS p WHERE p.pronamespace IN (SELECT oid FROM user_ns)
    AND NOT EXISTS (SELECT 1 FROM pg_depend AS dep WHERE dep.objid = p.oid AND dep.deptype = 'e')
) AS facts
ORDER BY line
"#;

async fn catalog(conn: &mut PgConnection) -> Vec<String> {
    sqlx::query_scalar(CATALOG_SQL)
        .fetch_all(&mut *conn)
        .await
        .expect("catalog")
}

/// The catalog and every row of every table of the user schemas: equal digests mean the
/// database is exactly as it was.
async fn full_digest(conn: &mut PgConnection) -> String {
    let mut parts = catalog(conn).await;
    let tables: Vec<String> = sqlx::query_scalar(
        "SELECT c.oid::regclass::text FROM pg_class AS c JOIN pg_namespace AS n ON n.oid = c.relnamespace \
         WHERE c.relkind = 'r' AND n.nspname NOT LIKE 'pg\\_%' AND n.nspname <> 'information_schema' \
         ORDER BY 1",
    )
    .fetch_all(&mut *conn)
    .await
    .unwrap();
    for table in tables {
        let digest: Option<String> = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
            "SELECT md5(string_agg(t::text, E'\\n' ORDER BY t::text)) FROM {table} AS t"
        )))
        .fetch_one(&mut *conn)
        .await
        .unwrap();
        parts.push(format!("data {table} {}", digest.unwrap_or_default()));
    }
    parts.join("\n")
}

#[tokio::test]
async fn adoption_keeps_every_row_and_ends_like_a_database_created_from_scratch() {
    let mut legacy = Legacy::new().await;
    let before = counts(&mut legacy.conn).await;
    assert_eq!(before["chunks"], 2000);
    assert_eq!(before["assertions"], 300);
    let data_before = legacy_data_digest(&mut legacy.conn, &legacy.model).await;

    legacy.apply(2, 99).await;

    // Counts and contents preserved per table.
    assert_eq!(counts(&mut legacy.conn).await, before);
    assert_eq!(
        legacy_data_digest(&mut legacy.conn, &legacy.model).await,
        data_before
    );
    // Every row is in the default tenant and project; no NULL, no default, RLS on and forced.
    let (tenant, project): (uuid::Uuid, uuid::Uuid) = sqlx::query_as(
        "SELECT t.id, p.id FROM tenants AS t JOIN projects AS p ON p.tenant_id = t.id \
         WHERE t.slug = 'default' AND p.slug = 'default'",
    )
    .fetch_one(&mut legacy.conn)
    .await
    .unwrap();
    for table in LEGACY_TABLES {
        let outside = legacy
            .scalar_i64(&format!(
                "SELECT count(*) FROM {table} WHERE tenant_id IS DISTINCT FROM '{tenant}' \
                 OR project_id IS DISTINCT FROM '{project}'"
            ))
            .await;
        assert_eq!(outside, 0, "{table}: rows outside the default scope");
        let (rls, forced): (bool, bool) = sqlx::query_as(
            "SELECT relrowsecurity, relforcerowsecurity FROM pg_class WHERE oid = $1::regclass",
        )
        .bind(table)
        .fetch_one(&mut legacy.conn)
        .await
        .unwrap();
        assert!(rls && forced, "{table}: rls={rls} forced={forced}");
        let scope_defaults = legacy
            .scalar_i64(&format!(
                "SELECT count(*) FROM pg_attribute AS a \
                 JOIN pg_attrdef AS d ON d.adrelid = a.attrelid AND d.adnum = a.attnum \
                 WHERE a.attrelid = '{table}'::regclass AND a.attname IN ('tenant_id', 'project_id')"
            ))
            .await;
        assert_eq!(scope_defaults, 0, "{table}: a scope column kept a default");
        let nullable_scope = legacy
            .scalar_i64(&format!(
                "SELECT count(*) FROM pg_attribute WHERE attrelid = '{table}'::regclass \
                 AND attname IN ('tenant_id', 'project_id') AND NOT attnotnull"
            ))
            .await;
        assert_eq!(nullable_scope, 0, "{table}: a scope column accepts NULL");
    }
    // The bookkeeping records the adoption; the backfill procedure is gone.
    let recorded: Vec<(String, i64, i64, bool)> = sqlx::query_as(
        "SELECT table_name, rows_before, rows_backfilled, adopted_at IS NOT NULL \
         FROM tenancy.adoption ORDER BY table_name",
    )
    .fetch_all(&mut legacy.conn)
    .await
    .unwrap();
    assert_eq!(recorded.len(), 5);
    for (table, rows_before, backfilled, adopted) in recorded {
        assert_eq!(rows_before, before[table.as_str()], "{table}");
        assert_eq!(backfilled, rows_before, "{table}");
        assert!(adopted, "{table}");
    }
    let procedure: Option<String> =
        sqlx::query_scalar("SELECT to_regprocedure('tenancy.adoption_backfill(integer)')::text")
            .fetch_one(&mut legacy.conn)
            .await
            .unwrap();
    assert_eq!(procedure, None);

    // The audit finds nothing.
    let report = tenancy_audit::audit(legacy.db.admin_pool(), &legacy.model)
        .await
        .expect("audit");
    assert!(report.is_clean(), "{}", report.to_text());

    // The catalog is the one a database created from scratch for the same model has.
    let mut from_scratch_model = legacy.model.clone();
    from_scratch_model.adoption = None;
    let scratch = TestDb::empty().await;
    let scratch_dir = tempdir();
    for file in migrations(&from_scratch_model) {
        std::fs::write(scratch_dir.join(file_name(&file)), &file.contents).unwrap();
    }
    scratch
        .apply_migrations(&scratch_dir)
        .await
        .expect("from scratch");
    std::fs::remove_dir_all(&scratch_dir).ok();
    let mut scratch_conn = PgConnection::connect(scratch.url()).await.unwrap();
    let expected: Vec<String> = catalog(&mut scratch_conn).await.into_iter().collect();
    let adopted: Vec<String> = catalog(&mut legacy.conn)
        .await
        .into_iter()
        // The record of the adoption is the one thing a scratch database does not have.
        .filter(|line| !line.contains("tenancy.adoption"))
        .collect();
    assert_eq!(adopted, expected);

    // The app role sees the adopted rows only inside the default scope.
    let mut app = PgConnection::connect(legacy.db.app_url()).await.unwrap();
    let visible = |tenant: uuid::Uuid, project: uuid::Uuid| {
        format!(
            "BEGIN; {};",
            set_context(
                &tenant.to_string(),
                &uuid::Uuid::new_v4().to_string(),
                &format!("{project}:viewer"),
            )
        )
    };
    sqlx::raw_sql(sqlx::AssertSqlSafe(visible(tenant, project)))
        .execute(&mut app)
        .await
        .unwrap();
    let seen: i64 = sqlx::query_scalar("SELECT count(*) FROM chunks")
        .fetch_one(&mut app)
        .await
        .unwrap();
    sqlx::raw_sql("COMMIT").execute(&mut app).await.unwrap();
    assert_eq!(seen, 2000);
    sqlx::raw_sql(sqlx::AssertSqlSafe(visible(uuid::Uuid::new_v4(), project)))
        .execute(&mut app)
        .await
        .unwrap();
    let seen_elsewhere: i64 = sqlx::query_scalar("SELECT count(*) FROM chunks")
        .fetch_one(&mut app)
        .await
        .unwrap();
    sqlx::raw_sql("COMMIT").execute(&mut app).await.unwrap();
    assert_eq!(seen_elsewhere, 0);
    app.close().await.ok();
    scratch_conn.close().await.ok();
    scratch.drop_db().await;
    legacy.conn.close().await.ok();
    legacy.db.drop_db().await;
}

#[tokio::test]
async fn a_planted_null_in_a_required_column_stops_validate_and_changes_nothing() {
    let mut legacy = Legacy::new().await;
    // The legacy schema allows a response without its query; the policies do not.
    legacy
        .exec(
            "UPDATE responses SET query_id = NULL \
             WHERE id IN (SELECT id FROM responses ORDER BY id LIMIT 2)",
        )
        .await;
    legacy.apply(2, 3).await;
    let before = full_digest(&mut legacy.conn).await;
    let error = legacy.apply_failing("0004").await;
    assert!(
        error.contains(
            "adoption stopped at validate: responses: 2 row(s) with NULL query_id, which the policies declare NOT NULL"
        ),
        "{error}"
    );
    assert_eq!(full_digest(&mut legacy.conn).await, before);
    // The contract refuses to start before the validate phase succeeded.
    let error = legacy.apply_failing("0005").await;
    assert!(error.contains("the validate phase"), "{error}");
    assert_eq!(full_digest(&mut legacy.conn).await, before);
    legacy.conn.close().await.ok();
    legacy.db.drop_db().await;
}

#[tokio::test]
async fn a_planted_orphan_stops_validate_and_changes_nothing() {
    let mut legacy = Legacy::new().await;
    // assertions.chunk_id has no foreign key in the legacy schema; the policies declare one.
    legacy
        .exec(
            "UPDATE assertions SET chunk_id = gen_random_uuid() \
             WHERE id IN (SELECT id FROM assertions WHERE chunk_id IS NOT NULL ORDER BY id LIMIT 3)",
        )
        .await;
    legacy.apply(2, 3).await;
    let before = full_digest(&mut legacy.conn).await;
    let error = legacy.apply_failing("0004").await;
    assert!(
        error.contains("assertions: 3 row(s) whose chunk_id match no row of chunks"),
        "{error}"
    );
    assert_eq!(full_digest(&mut legacy.conn).await, before);
    legacy.conn.close().await.ok();
    legacy.db.drop_db().await;
}

#[tokio::test]
async fn a_row_written_without_scope_during_the_migration_stops_validate() {
    let mut legacy = Legacy::new().await;
    legacy.apply(2, 3).await;
    // A writer that names the scope columns but leaves them NULL (the transition default
    // fills only rows that do not name them).
    legacy
        .exec(
            "INSERT INTO queries (asked_by, query_text, tenant_id, project_id) \
             VALUES (gen_random_uuid(), 'who?', NULL, NULL)",
        )
        .await;
    let before = full_digest(&mut legacy.conn).await;
    let error = legacy.apply_failing("0004").await;
    assert!(
        error.contains("queries: 1 row(s) with NULL tenant_id or project_id"),
        "{error}"
    );
    assert_eq!(full_digest(&mut legacy.conn).await, before);
    legacy.conn.close().await.ok();
    legacy.db.drop_db().await;
}

#[tokio::test]
async fn a_backfill_that_fails_half_way_is_simply_run_again() {
    let mut legacy = Legacy::new().await;
    legacy.apply(2, 2).await;
    // Make the batch holding the 1,001st chunk (in key order) fail.
    let victim: uuid::Uuid =
        sqlx::query_scalar("SELECT id FROM chunks ORDER BY id OFFSET 1000 LIMIT 1")
            .fetch_one(&mut legacy.conn)
            .await
            .unwrap();
    legacy
        .exec(&format!(
            "CREATE FUNCTION fail_on_chunk() RETURNS trigger LANGUAGE plpgsql AS $$ \
             BEGIN RAISE EXCEPTION 'injected failure'; END $$; \
             CREATE TRIGGER fail_on_chunk BEFORE UPDATE ON chunks FOR EACH ROW \
             WHEN (OLD.id = '{victim}') EXECUTE FUNCTION fail_on_chunk();"
        ))
        .await;
    let error = sqlx::raw_sql("CALL tenancy.adoption_backfill(300)")
        .execute(&mut legacy.conn)
        .await
        .expect_err("the injected failure");
    assert!(error.to_string().contains("injected failure"), "{error}");
    // Batches before the failing one committed, with their counts; nothing after it ran.
    let filled = legacy
        .scalar_i64("SELECT count(*) FROM chunks WHERE tenant_id IS NOT NULL")
        .await;
    assert_eq!(filled, 900);
    let counted = legacy
        .scalar_i64("SELECT rows_backfilled FROM tenancy.adoption WHERE table_name = 'chunks'")
        .await;
    assert_eq!(counted, 900);
    assert_eq!(
        legacy
            .scalar_i64("SELECT count(*) FROM documents WHERE tenant_id IS NULL")
            .await,
        0
    );
    // Validate refuses the half-done backfill ...
    let error = legacy.apply_failing("0004").await;
    assert!(
        error.contains("chunks: 2000 row(s) before the backfill but 900 backfilled"),
        "{error}"
    );
    assert!(
        error.contains("chunks: 1100 row(s) with NULL tenant_id or project_id"),
        "{error}"
    );
    // ... and after running the backfill file again, everything passes.
    legacy
        .exec("DROP TRIGGER fail_on_chunk ON chunks; DROP FUNCTION fail_on_chunk();")
        .await;
    legacy.apply(3, 99).await;
    let counted = legacy
        .scalar_i64("SELECT rows_backfilled FROM tenancy.adoption WHERE table_name = 'chunks'")
        .await;
    assert_eq!(counted, 2000);
    legacy.conn.close().await.ok();
    legacy.db.drop_db().await;
}

#[tokio::test]
async fn a_failing_contract_step_leaves_the_database_as_it_was_before_that_step() {
    let mut legacy = Legacy::new().await;
    legacy.apply(2, 5).await;
    // After validate: the legacy application writes a response without its query. The NOT
    // VALID check of 0005 refuses it for new rows, so it arrives through an old row.
    legacy
        .exec(
            "ALTER TABLE responses DROP CONSTRAINT responses_adopt_not_null; \
             UPDATE responses SET query_id = NULL WHERE id = (SELECT id FROM responses ORDER BY id LIMIT 1); \
             ALTER TABLE responses ADD CONSTRAINT responses_adopt_not_null CHECK \
             (tenant_id IS NOT NULL AND project_id IS NOT NULL AND id IS NOT NULL AND query_id IS NOT NULL \
              AND answer_text IS NOT NULL AND model IS NOT NULL AND prompt_tokens IS NOT NULL \
              AND completion_tokens IS NOT NULL AND created_at IS NOT NULL) NOT VALID;",
        )
        .await;
    let before = full_digest(&mut legacy.conn).await;
    let error = legacy.apply_failing("0006").await;
    assert!(
        error.contains("adoption stopped at contract: responses: 1 row(s) with NULL"),
        "{error}"
    );
    assert_eq!(full_digest(&mut legacy.conn).await, before);

    // Repair, then go on to the foreign keys; an orphan slipped in past the NOT VALID
    // foreign key (triggers off, as a bulk loader would) stops their validation.
    legacy
        .exec("DELETE FROM responses WHERE query_id IS NULL")
        .await;
    legacy.apply(6, 8).await;
    legacy
        .exec(
            "SET session_replication_role = replica; \
             UPDATE assertions SET chunk_id = gen_random_uuid() \
             WHERE id IN (SELECT id FROM assertions WHERE chunk_id IS NOT NULL ORDER BY id LIMIT 2); \
             SET session_replication_role = origin;",
        )
        .await;
    let before = full_digest(&mut legacy.conn).await;
    let error = legacy.apply_failing("0009").await;
    assert!(
        error.contains("assertions: 2 row(s) whose chunk_id match no row of chunks (orphans)"),
        "{error}"
    );
    assert_eq!(full_digest(&mut legacy.conn).await, before);
    legacy.conn.close().await.ok();
    legacy.db.drop_db().await;
}

#[tokio::test]
async fn tenancy_migrate_runs_the_whole_phased_adoption_and_records_every_file() {
    let mut legacy = Legacy::new().await;
    let before = counts(&mut legacy.conn).await;

    // Files 0002.. as an operator would have them on disk (0001 was applied by the harness).
    let dir = tempdir();
    for file in legacy.files.iter().skip(1) {
        std::fs::write(dir.join(file_name(file)), &file.contents).unwrap();
    }
    let migrations = tenancy_migrate::read_migrations(&dir).unwrap();
    let outside: Vec<String> = migrations
        .iter()
        .filter(|m| tenancy_core::sql::runs_outside_transaction(&m.sql))
        .map(|m| m.file_name())
        .collect();
    assert!(
        outside.len() >= 2,
        "the adoption has files that run outside a transaction: {outside:?}"
    );

    // A dry run stops at the first such file and changes nothing.
    let dry = tenancy_migrate::dry_run(&mut legacy.conn, &migrations)
        .await
        .unwrap();
    assert_eq!(
        dry.files.last().map(|f| f.file.clone()),
        outside.first().cloned()
    );
    assert_eq!(counts(&mut legacy.conn).await, before);

    let applied = tenancy_migrate::apply(&mut legacy.conn, &migrations)
        .await
        .unwrap();
    assert_eq!(applied.len(), migrations.len());
    std::fs::remove_dir_all(&dir).ok();

    assert_eq!(counts(&mut legacy.conn).await, before);
    for table in LEGACY_TABLES {
        let nulls = legacy
            .scalar_i64(&format!(
                "SELECT count(*) FROM {table} WHERE tenant_id IS NULL OR project_id IS NULL"
            ))
            .await;
        assert_eq!(nulls, 0, "{table}");
    }
    let recorded = legacy
        .scalar_i64("SELECT count(*) FROM tenancy_meta.tenancy_migrations")
        .await;
    assert_eq!(recorded, i64::try_from(migrations.len()).unwrap());
    let report = tenancy_audit::audit(legacy.db.admin_pool(), &legacy.model)
        .await
        .unwrap();
    assert!(report.is_clean(), "{}", report.to_text());
}
