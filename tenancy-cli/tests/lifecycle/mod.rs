//! Shared by the tenant lifecycle tests: running `tenancy`, a multi-tenant world of the RAG
//! policies, and per-tenant fingerprints (row counts and checksums of every tenant table).

#![allow(dead_code, clippy::expect_used, clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Command, Output};

use sqlx::PgPool;
use tenancy_tests::TestDb;

/// Every tenant table of the RAG policies with its tenant column, parents first.
pub const TABLES: [(&str, &str); 9] = [
    ("tenants", "id"),
    ("projects", "tenant_id"),
    ("user_project_roles", "tenant_id"),
    ("tenant_user_roles", "tenant_id"),
    ("documents", "tenant_id"),
    ("chunks", "tenant_id"),
    ("queries", "tenant_id"),
    ("responses", "tenant_id"),
    ("assertions", "tenant_id"),
];

/// A `tenancy` command run from examples/rag (whose policies it reads).
pub fn command(url: &str, args: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_tenancy"));
    command
        .current_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/../examples/rag"))
        .args(args)
        .env("DATABASE_URL", url)
        .env("USER", "ci-user");
    command
}

/// Runs `tenancy <args>` to the end.
pub async fn tenancy(url: &str, args: &[&str]) -> Output {
    let mut command = command(url, args);
    tokio::task::spawn_blocking(move || command.output().expect("run tenancy"))
        .await
        .expect("join")
}

pub fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Asserts success and returns stdout.
pub fn ok(out: &Output) -> String {
    assert_eq!(out.status.code(), Some(0), "stderr: {}", text(&out.stderr));
    text(&out.stdout)
}

/// Asserts exit 1 with exactly one `error: ...` line and returns it.
pub fn refused(out: &Output) -> String {
    assert_eq!(
        out.status.code(),
        Some(1),
        "stdout: {} stderr: {}",
        text(&out.stdout),
        text(&out.stderr)
    );
    let stderr = text(&out.stderr);
    let lines: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(lines.len(), 1, "{stderr}");
    assert!(lines[0].starts_with("error: "), "{stderr}");
    lines[0].to_owned()
}

/// Inserts tenant `slug` with `projects` (slugs), each with `docs` documents of 3 chunks,
/// `docs` queries with a response and an assertion each, and two members. Values include
/// NULLs, quotes, backslashes, newlines, non-ASCII text, nested jsonb, reals and vectors.
pub async fn seed_tenant(pool: &PgPool, slug: &str, projects: &[&str], docs: i32) -> uuid::Uuid {
    let tenant = uuid::Uuid::new_v4();
    sqlx::query("INSERT INTO tenants (id, name, slug) VALUES ($1, $2, $3)")
        .bind(tenant)
        .bind(format!("{slug} \"Corp\" — Ünïcode"))
        .bind(slug)
        .execute(pool)
        .await
        .expect("seed tenant");
    // A tenant-wide administrator, so exports and moves carry the tenant memberships table.
    sqlx::query(
        "INSERT INTO tenant_user_roles (tenant_id, user_id, role, granted_by) \
         VALUES ($1, gen_random_uuid(), 'admin', NULL)",
    )
    .bind(tenant)
    .execute(pool)
    .await
    .expect("seed tenant-wide role");
    for project in projects {
        let p = uuid::Uuid::new_v4();
        let owner = uuid::Uuid::new_v4();
        let viewer = uuid::Uuid::new_v4();
        let statements: Vec<sqlx::query::Query<'_, sqlx::Postgres, sqlx::postgres::PgArguments>> = vec![
            sqlx::query(
                "INSERT INTO projects (tenant_id, id, name, slug, description) \
                 VALUES ($1, $2, $3, $3, E'line one\\nline \"two\" \\\\ end')",
            )
            .bind(tenant)
            .bind(p)
            .bind(*project),
            sqlx::query(
                "INSERT INTO user_project_roles (tenant_id, project_id, user_id, role, granted_by) \
                 VALUES ($1, $2, $3, 'owner', NULL), ($1, $2, $4, 'viewer', $3)",
            )
            .bind(tenant)
            .bind(p)
            .bind(owner)
            .bind(viewer),
            sqlx::query(
                "INSERT INTO documents (tenant_id, project_id, id, title, source_uri, content_hash, \
                   metadata, created_by, created_at) \
                 SELECT $1, $2, gen_random_uuid(), 'Dokument ' || g || E' — \"q\" \\\\ b\\nx', \
                   CASE WHEN g % 2 = 0 THEN NULL ELSE 's3://b/' || g END, 'h' || g, \
                   jsonb_build_object('n', g, 'tags', jsonb_build_array('a', g * 1.5, NULL)), $3, \
                   now() - g * interval '1.234567 second' \
                 FROM generate_series(1, $4) g",
            )
            .bind(tenant)
            .bind(p)
            .bind(owner)
            .bind(docs),
            sqlx::query(
                "INSERT INTO chunks (tenant_id, project_id, document_id, ordinal, content, \
                   token_count, embedding) \
                 SELECT d.tenant_id, d.project_id, d.id, o, 'chunk ' || o || ' of ' || d.title, \
                   10 + o, CASE WHEN o = 3 THEN NULL \
                   ELSE array_fill((o::real / 7), ARRAY[384])::vector END \
                 FROM documents d, generate_series(1, 3) o \
                 WHERE d.tenant_id = $1 AND d.project_id = $2",
            )
            .bind(tenant)
            .bind(p),
            sqlx::query(
                "INSERT INTO queries (tenant_id, project_id, asked_by, query_text, top_k) \
                 SELECT $1, $2, $3, 'q' || g, g FROM generate_series(1, $4) g",
            )
            .bind(tenant)
            .bind(p)
            .bind(viewer)
            .bind(docs),
            sqlx::query(
                "INSERT INTO responses (tenant_id, project_id, query_id, answer_text, model, \
                   prompt_tokens, completion_tokens, latency_ms) \
                 SELECT tenant_id, project_id, id, 'answer to ' || query_text, 'm1', 100 + top_k, \
                   20, CASE WHEN top_k % 3 = 0 THEN NULL ELSE top_k END \
                 FROM queries WHERE tenant_id = $1 AND project_id = $2",
            )
            .bind(tenant)
            .bind(p),
            sqlx::query(
                "INSERT INTO assertions (tenant_id, project_id, response_id, chunk_id, claim, score) \
                 SELECT r.tenant_id, r.project_id, r.id, \
                   (SELECT c.id FROM chunks c WHERE c.tenant_id = r.tenant_id \
                      AND c.project_id = r.project_id ORDER BY c.id LIMIT 1), \
                   'claim', 0.1 \
                 FROM responses r WHERE r.tenant_id = $1 AND r.project_id = $2",
            )
            .bind(tenant)
            .bind(p),
        ];
        for statement in statements {
            statement.execute(pool).await.expect("seed project rows");
        }
    }
    tenant
}

/// (table, tenant id) -> (rows, md5 of the sorted rows as jsonb text).
pub type Fingerprint = BTreeMap<(String, uuid::Uuid), (i64, String)>;

/// The fingerprint of every tenant in the database.
pub async fn fingerprint(pool: &PgPool) -> Fingerprint {
    let mut out = Fingerprint::new();
    for (table, column) in TABLES {
        let rows: Vec<(uuid::Uuid, i64, String)> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {column}, count(*), md5(string_agg(to_jsonb(t)::text, '|' \
               ORDER BY to_jsonb(t)::text)) FROM {table} t GROUP BY 1"
        )))
        .fetch_all(pool)
        .await
        .expect("fingerprint");
        for (tenant, count, md5) in rows {
            out.insert((table.to_owned(), tenant), (count, md5));
        }
    }
    out
}

/// The fingerprint without the entries of `tenants`.
pub fn without(mut print: Fingerprint, tenants: &[uuid::Uuid]) -> Fingerprint {
    print.retain(|(_, tenant), _| !tenants.contains(tenant));
    print
}

/// Rows of `tenant` per table (tables without rows omitted).
pub fn counts_of(print: &Fingerprint, tenant: uuid::Uuid) -> BTreeMap<String, i64> {
    print
        .iter()
        .filter(|((_, t), _)| *t == tenant)
        .map(|((table, _), (count, _))| (table.clone(), *count))
        .collect()
}

/// The tenant id of `slug`.
pub async fn tenant_id(pool: &PgPool, slug: &str) -> Option<uuid::Uuid> {
    sqlx::query_scalar("SELECT id FROM tenants WHERE slug = $1")
        .bind(slug)
        .fetch_optional(pool)
        .await
        .expect("tenant id")
}

/// Every file of an export directory, name -> bytes.
pub fn files(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    std::fs::read_dir(dir)
        .expect("read export dir")
        .map(|e| {
            let path = e.expect("entry").path();
            (
                path.file_name().unwrap().to_string_lossy().into_owned(),
                std::fs::read(&path).expect("read file"),
            )
        })
        .collect()
}

/// A world of three tenants: acme (2 projects), beta (1), gamma (1).
pub async fn world(db: &TestDb, docs: i32) -> [uuid::Uuid; 3] {
    let pool = db.admin_pool();
    [
        seed_tenant(pool, "acme", &["docs", "wiki"], docs).await,
        seed_tenant(pool, "beta", &["docs"], docs).await,
        seed_tenant(pool, "gamma", &["main"], docs / 2 + 1).await,
    ]
}
