//! `tenancy tenant export|import|delete|split` and `tenancy project move` as processes on a
//! real database with several tenants: the round trip export -> import into an empty database
//! -> export gives identical files; the other tenants' row counts and checksums never change;
//! refusals exit 1 with one sentence and write nothing.

#![allow(clippy::expect_used, clippy::unwrap_used)]

mod lifecycle;

use lifecycle::{
    counts_of, files, fingerprint, ok, refused, tenancy, tenant_id, text, without, world,
};
use tenancy_tests::TestDb;

#[tokio::test]
async fn export_import_export_gives_identical_files() {
    let source = TestDb::fresh().await;
    let [acme, beta, gamma] = world(&source, 20).await;
    let before = fingerprint(source.admin_pool()).await;
    let tmp = tempfile::tempdir().unwrap();
    let first = tmp.path().join("first");
    let first_s = first.to_str().unwrap();

    let out = tenancy(
        source.url(),
        &["tenant", "export", "acme", "--out", first_s],
    )
    .await;
    let stdout = ok(&out);
    assert!(stdout.contains("exported tenant acme ("), "{stdout}");
    // Piped: no progress output.
    assert!(text(&out.stderr).is_empty(), "{}", text(&out.stderr));
    // An export writes nothing.
    assert_eq!(fingerprint(source.admin_pool()).await, before);

    // The manifest's counts are the tenant's rows, table by table.
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(first.join("manifest.json")).unwrap()).unwrap();
    let counts = counts_of(&before, acme);
    let tables = manifest["tables"].as_array().unwrap();
    let names: Vec<&str> = tables
        .iter()
        .map(|t| t["table"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "tenants",
            "projects",
            "user_project_roles",
            "tenant_user_roles",
            "documents",
            "chunks",
            "queries",
            "responses",
            "assertions"
        ]
    );
    for table in tables {
        let name = table["table"].as_str().unwrap();
        assert_eq!(table["rows"].as_i64().unwrap(), counts[name], "{name}");
        let bytes = std::fs::read(first.join(table["file"].as_str().unwrap())).unwrap();
        assert_eq!(
            bytes.iter().filter(|b| **b == b'\n').count() as i64,
            counts[name]
        );
    }
    assert_eq!(manifest["tenant"]["slug"], "acme");
    assert!(manifest["generator"]
        .as_str()
        .unwrap()
        .starts_with("tenancy-cli "));
    assert_eq!(manifest["model_sha256"].as_str().unwrap().len(), 64);

    // Into an empty (migrated) database, then out again: the same bytes, manifest included.
    let target = TestDb::fresh().await;
    let out = tenancy(target.url(), &["tenant", "import", first_s]).await;
    assert!(ok(&out).contains("imported "), "{}", text(&out.stdout));
    let second = tmp.path().join("second");
    ok(&tenancy(
        target.url(),
        &[
            "tenant",
            "export",
            "acme",
            "--out",
            second.to_str().unwrap(),
        ],
    )
    .await);
    assert_eq!(files(&first), files(&second));
    // The imported rows are the exported rows, value for value.
    let imported = fingerprint(target.admin_pool()).await;
    assert_eq!(
        without(imported, &[]),
        without(before.clone(), &[beta, gamma])
    );
    let audit: Vec<String> =
        sqlx::query_scalar("SELECT action FROM tenancy.audit_log WHERE tenant_id = $1")
            .bind(acme)
            .fetch_all(target.admin_pool())
            .await
            .unwrap();
    assert_eq!(audit, ["tenant.import"]);

    // A second import of the same tenant is refused and changes nothing.
    let imported = fingerprint(target.admin_pool()).await;
    let line = refused(&tenancy(target.url(), &["tenant", "import", first_s]).await);
    assert!(line.contains("tenant `acme` already exists"), "{line}");
    assert_eq!(fingerprint(target.admin_pool()).await, imported);

    // As a new tenant next to the original: new id, same rows, the others untouched.
    let out = tenancy(
        source.url(),
        &["tenant", "import", first_s, "--as", "acme-copy"],
    )
    .await;
    ok(&out);
    let after = fingerprint(source.admin_pool()).await;
    let copy = tenant_id(source.admin_pool(), "acme-copy").await.unwrap();
    assert_ne!(copy, acme);
    assert_eq!(without(after.clone(), &[copy]), before);
    assert_eq!(counts_of(&after, copy), counts);

    // --merge loads into the existing tenant: here every row collides, so nothing changes.
    let line = refused(
        &tenancy(
            source.url(),
            &["tenant", "import", first_s, "--as", "acme-copy", "--merge"],
        )
        .await,
    );
    assert!(line.contains("could not import"), "{line}");
    assert_eq!(fingerprint(source.admin_pool()).await, after);
}

#[tokio::test]
async fn import_verifies_the_manifest_before_touching_anything() {
    let source = TestDb::fresh().await;
    world(&source, 3).await;
    let tmp = tempfile::tempdir().unwrap();
    let good = tmp.path().join("good");
    ok(&tenancy(
        source.url(),
        &["tenant", "export", "beta", "--out", good.to_str().unwrap()],
    )
    .await);
    let target = TestDb::fresh().await;
    let empty = fingerprint(target.admin_pool()).await;

    // A copy of the export with one change applied by `damage`.
    let damaged = |name: &str, damage: &dyn Fn(&std::path::Path)| {
        let dir = tmp.path().join(name);
        std::fs::create_dir(&dir).unwrap();
        for (file, bytes) in files(&good) {
            std::fs::write(dir.join(file), bytes).unwrap();
        }
        damage(&dir);
        dir
    };
    let edit_manifest = |dir: &std::path::Path, edit: &dyn Fn(&mut serde_json::Value)| {
        let path = dir.join("manifest.json");
        let mut value: serde_json::Value =
            serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
        edit(&mut value);
        std::fs::write(path, serde_json::to_vec(&value).unwrap()).unwrap();
    };

    let cases: Vec<(std::path::PathBuf, &str)> = vec![
        (
            damaged("no-manifest", &|d| {
                std::fs::remove_file(d.join("manifest.json")).unwrap()
            }),
            "has no manifest.json: it is not an export or the export did not finish",
        ),
        (
            damaged("edited-row", &|d| {
                let path = d.join("documents.jsonl");
                let text = std::fs::read_to_string(&path).unwrap();
                std::fs::write(path, text.replacen("h1", "h9", 1)).unwrap();
            }),
            "does not match its SHA-256 in the manifest",
        ),
        (
            damaged("lost-row", &|d| {
                let path = d.join("chunks.jsonl");
                let text = std::fs::read_to_string(&path).unwrap();
                let kept: Vec<&str> = text.lines().skip(1).collect();
                std::fs::write(path, kept.join("\n") + "\n").unwrap();
            }),
            "rows but the manifest says",
        ),
        (
            damaged("newer", &|d| edit_manifest(d, &|m| m["format"] = 99.into())),
            "newer than this tenancy understands",
        ),
        (
            damaged("other-model", &|d| {
                edit_manifest(d, &|m| {
                    m["tables"][5]["columns"][7]["type"] = "vector(1536)".into()
                })
            }),
            "incompatible model: the columns of table chunks differ",
        ),
        (
            damaged("unknown-table", &|d| {
                edit_manifest(d, &|m| m["tables"][3]["table"] = "invoices".into())
            }),
            "incompatible model: table invoices is not in the current policies",
        ),
        (
            damaged("other-roles", &|d| {
                edit_manifest(d, &|m| m["roles"] = serde_json::json!(["reader", "writer"]))
            }),
            "incompatible model: its roles are reader < writer, the current policies' are viewer < editor < admin < owner",
        ),
        (
            damaged("missing-table", &|d| {
                edit_manifest(d, &|m| {
                    m["tables"].as_array_mut().unwrap().remove(8);
                })
            }),
            "incompatible model: it has no file for table assertions",
        ),
    ];
    for (dir, expected) in cases {
        let line =
            refused(&tenancy(target.url(), &["tenant", "import", dir.to_str().unwrap()]).await);
        assert!(line.contains(expected), "{}: {line}", dir.display());
        assert_eq!(
            fingerprint(target.admin_pool()).await,
            empty,
            "{}",
            dir.display()
        );
    }

    // The app role is refused by every command: under row-level security it would see,
    // import or delete nothing and call it success.
    let line = refused(
        &tenancy(
            target.app_url(),
            &["tenant", "import", good.to_str().unwrap()],
        )
        .await,
    );
    assert!(line.contains("is subject to row-level security"), "{line}");
    let app_dir = tmp.path().join("as-app");
    let line = refused(
        &tenancy(
            source.app_url(),
            &[
                "tenant",
                "export",
                "beta",
                "--out",
                app_dir.to_str().unwrap(),
            ],
        )
        .await,
    );
    assert!(line.contains("is subject to row-level security"), "{line}");
    assert!(!app_dir.join("manifest.json").exists());
    let line = refused(
        &tenancy(
            source.app_url(),
            &[
                "tenant",
                "delete",
                "beta",
                "--confirm",
                "beta",
                "--no-export-i-am-sure",
            ],
        )
        .await,
    );
    assert!(line.contains("is subject to row-level security"), "{line}");
    // Delete refuses an unfinished export.
    let unfinished = damaged("unfinished", &|d| {
        std::fs::remove_file(d.join("manifest.json")).unwrap()
    });
    let line = refused(
        &tenancy(
            source.url(),
            &[
                "tenant",
                "delete",
                "beta",
                "--confirm",
                "beta",
                "--export",
                unfinished.to_str().unwrap(),
            ],
        )
        .await,
    );
    assert!(line.contains("the export did not finish"), "{line}");
    assert!(lifecycle::tenant_id(source.admin_pool(), "beta")
        .await
        .is_some());

    // The exported id taken by a tenant of another slug.
    ok(&tenancy(target.url(), &["tenant", "import", good.to_str().unwrap()]).await);
    sqlx::query("UPDATE tenants SET slug = 'beta-old' WHERE slug = 'beta'")
        .execute(target.admin_pool())
        .await
        .unwrap();
    let renamed = fingerprint(target.admin_pool()).await;
    let line = refused(&tenancy(target.url(), &["tenant", "import", good.to_str().unwrap()]).await);
    assert!(
        line.contains("belongs to tenant `beta-old` here: import with --as NEW_SLUG"),
        "{line}"
    );
    assert_eq!(fingerprint(target.admin_pool()).await, renamed);

    // --merge into an existing tenant without rows: the rows take that tenant's id, its own
    // row stays as it was.
    ok(&tenancy(
        target.url(),
        &["tenant", "create", "--slug", "beta2", "--name", "Beta Two"],
    )
    .await);
    let beta2 = lifecycle::tenant_id(target.admin_pool(), "beta2")
        .await
        .unwrap();
    ok(&tenancy(
        target.url(),
        &[
            "tenant",
            "import",
            good.to_str().unwrap(),
            "--as",
            "beta2",
            "--merge",
        ],
    )
    .await);
    let merged = fingerprint(target.admin_pool()).await;
    let beta_old = lifecycle::tenant_id(target.admin_pool(), "beta-old")
        .await
        .unwrap();
    let mut expected = counts_of(&merged, beta_old);
    assert_eq!(counts_of(&merged, beta2), expected);
    expected.remove("tenants");
    assert!(expected.values().all(|n| *n > 0), "{expected:?}");
    let name: String = sqlx::query_scalar("SELECT name FROM tenants WHERE id = $1")
        .bind(beta2)
        .fetch_one(target.admin_pool())
        .await
        .unwrap();
    assert_eq!(name, "Beta Two");
    // Export refuses a non-empty directory and an unknown tenant.
    let line = refused(
        &tenancy(
            source.url(),
            &["tenant", "export", "beta", "--out", good.to_str().unwrap()],
        )
        .await,
    );
    assert!(line.contains("already exists and is not empty"), "{line}");
    let nowhere = tmp.path().join("nowhere");
    let line = refused(
        &tenancy(
            source.url(),
            &[
                "tenant",
                "export",
                "nobody",
                "--out",
                nowhere.to_str().unwrap(),
            ],
        )
        .await,
    );
    assert_eq!(line, "error: no tenant with slug `nobody`");
    assert!(!nowhere.join("manifest.json").exists());
}

#[tokio::test]
async fn delete_needs_an_export_that_matches_the_tenant_now() {
    let db = TestDb::fresh().await;
    let [acme, ..] = world(&db, 12).await;
    let before = fingerprint(db.admin_pool()).await;
    let tmp = tempfile::tempdir().unwrap();
    let old = tmp.path().join("old");
    ok(&tenancy(
        db.url(),
        &["tenant", "export", "acme", "--out", old.to_str().unwrap()],
    )
    .await);

    // A write after the export: the export is no longer enough.
    sqlx::query(
        "INSERT INTO queries (tenant_id, project_id, asked_by, query_text) \
         SELECT tenant_id, id, gen_random_uuid(), 'late' FROM projects WHERE tenant_id = $1 LIMIT 1",
    )
    .bind(acme)
    .execute(db.admin_pool())
    .await
    .unwrap();
    let written = fingerprint(db.admin_pool()).await;
    let line = refused(
        &tenancy(
            db.url(),
            &[
                "tenant",
                "delete",
                "acme",
                "--confirm",
                "acme",
                "--export",
                old.to_str().unwrap(),
            ],
        )
        .await,
    );
    assert!(
        line.contains(
            "is older than the tenant's last write (table queries: 24 rows exported, 25 now)"
        ),
        "{line}"
    );
    // An update that keeps the counts is caught too.
    sqlx::query("DELETE FROM queries WHERE query_text = 'late'")
        .execute(db.admin_pool())
        .await
        .unwrap();
    sqlx::query(
        "UPDATE documents SET title = 'changed' WHERE tenant_id = $1 AND content_hash = 'h1'",
    )
    .bind(acme)
    .execute(db.admin_pool())
    .await
    .unwrap();
    let line = refused(
        &tenancy(
            db.url(),
            &[
                "tenant",
                "delete",
                "acme",
                "--confirm",
                "acme",
                "--export",
                old.to_str().unwrap(),
            ],
        )
        .await,
    );
    assert!(
        line.contains("table documents: 24 rows exported, 24 now, contents differ"),
        "{line}"
    );
    // A mistyped confirmation, another tenant's export, no export at all.
    let line = refused(
        &tenancy(
            db.url(),
            &[
                "tenant",
                "delete",
                "acme",
                "--confirm",
                "acme2",
                "--export",
                old.to_str().unwrap(),
            ],
        )
        .await,
    );
    assert!(line.contains("does not match the tenant"), "{line}");
    let line = refused(
        &tenancy(
            db.url(),
            &[
                "tenant",
                "delete",
                "beta",
                "--confirm",
                "beta",
                "--export",
                old.to_str().unwrap(),
            ],
        )
        .await,
    );
    assert!(line.contains("is of tenant `acme`"), "{line}");
    let out = tenancy(db.url(), &["tenant", "delete", "acme", "--confirm", "acme"]).await;
    assert_ne!(out.status.code(), Some(0));
    assert!(
        text(&out.stderr).contains("--export"),
        "{}",
        text(&out.stderr)
    );
    let changed = fingerprint(db.admin_pool()).await;
    assert_eq!(without(changed.clone(), &[acme]), without(written, &[acme]));
    let audit: i64 = sqlx::query_scalar("SELECT count(*) FROM tenancy.audit_log")
        .fetch_one(db.admin_pool())
        .await
        .unwrap();
    assert_eq!(audit, 0, "a refused delete writes no audit row");

    // A fresh export, then the delete, in batches smaller than the tables.
    let fresh = tmp.path().join("fresh");
    ok(&tenancy(
        db.url(),
        &["tenant", "export", "acme", "--out", fresh.to_str().unwrap()],
    )
    .await);
    let out = tenancy(
        db.url(),
        &[
            "tenant",
            "delete",
            "acme",
            "--confirm",
            "acme",
            "--export",
            fresh.to_str().unwrap(),
            "--batch",
            "7",
            "--actor",
            "ops-alice",
        ],
    )
    .await;
    let stdout = ok(&out);
    let counts = counts_of(&changed, acme);
    for (table, rows) in &counts {
        assert!(
            stdout.contains(&format!("{table}\t{rows}\n")),
            "{table} {rows}: {stdout}"
        );
    }
    let after = fingerprint(db.admin_pool()).await;
    assert!(
        counts_of(&after, acme).is_empty(),
        "{:?}",
        counts_of(&after, acme)
    );
    assert_eq!(after, without(before, &[acme]));
    let audit: Vec<(String, String, serde_json::Value)> = sqlx::query_as(
        "SELECT actor, action, subject FROM tenancy.audit_log WHERE tenant_id = $1 ORDER BY id",
    )
    .bind(acme)
    .fetch_all(db.admin_pool())
    .await
    .unwrap();
    assert_eq!(audit.len(), 2, "{audit:?}");
    assert_eq!(
        (audit[0].0.as_str(), audit[0].1.as_str()),
        ("ops-alice", "tenant.delete_started")
    );
    assert_eq!(audit[0].2["export_verified"], true);
    assert_eq!(
        (audit[1].0.as_str(), audit[1].1.as_str()),
        ("ops-alice", "tenant.delete")
    );
    assert_eq!(audit[1].2["rows"]["chunks"], counts["chunks"]);

    // Imported again (same tenant id): the old delete's audit rows do not count as an
    // interrupted delete; a write after the import makes the export stale again.
    ok(&tenancy(db.url(), &["tenant", "import", fresh.to_str().unwrap()]).await);
    sqlx::query(
        "INSERT INTO queries (tenant_id, project_id, asked_by, query_text) \
         SELECT tenant_id, id, gen_random_uuid(), 'late' FROM projects WHERE tenant_id = $1 LIMIT 1",
    )
    .bind(acme)
    .execute(db.admin_pool())
    .await
    .unwrap();
    let line = refused(
        &tenancy(
            db.url(),
            &[
                "tenant",
                "delete",
                "acme",
                "--confirm",
                "acme",
                "--export",
                fresh.to_str().unwrap(),
            ],
        )
        .await,
    );
    assert!(
        line.contains("is older than the tenant's last write"),
        "{line}"
    );

    // Without an export, when the operator insists.
    let out = tenancy(
        db.url(),
        &[
            "tenant",
            "delete",
            "gamma",
            "--confirm",
            "gamma",
            "--no-export-i-am-sure",
        ],
    )
    .await;
    ok(&out);
    assert!(tenant_id(db.admin_pool(), "gamma").await.is_none());
}

#[tokio::test]
async fn split_moves_projects_with_their_rows_and_memberships() {
    let db = TestDb::fresh().await;
    let pool = db.admin_pool();
    let [_, beta, gamma] = world(&db, 5).await;
    let default = lifecycle::seed_tenant(pool, "default", &["a-docs", "a-wiki", "b-docs"], 6).await;
    let project_rows = |print: &lifecycle::Fingerprint| counts_of(print, default);
    let before = fingerprint(pool).await;

    // Per project counts before, by direct query.
    async fn project_counts(pool: &sqlx::PgPool, tenant: uuid::Uuid, slug: &str) -> Vec<i64> {
        let mut out = Vec::new();
        // Tenant-level rows (tenant-wide roles) belong to no project.
        for (table, _) in lifecycle::TABLES[1..]
            .iter()
            .filter(|(table, _)| *table != "tenant_user_roles")
        {
            let column = if *table == "projects" {
                "id"
            } else {
                "project_id"
            };
            let n: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
                "SELECT count(*) FROM {table} t WHERE t.tenant_id = $1 AND t.{column} = \
                 (SELECT id FROM projects WHERE tenant_id = $1 AND slug = $2)"
            )))
            .bind(tenant)
            .bind(slug)
            .fetch_one(pool)
            .await
            .unwrap();
            out.push(n);
        }
        out
    }
    let a_docs = project_counts(pool, default, "a-docs").await;
    let a_wiki = project_counts(pool, default, "a-wiki").await;
    assert!(a_docs.iter().all(|n| *n > 0), "{a_docs:?}");

    let out = tenancy(
        db.url(),
        &[
            "tenant",
            "split",
            "--from",
            "default",
            "--to",
            "acme-new",
            "--create",
            "Acme New",
            "--project",
            "a-docs,a-wiki",
        ],
    )
    .await;
    let stdout = ok(&out);
    assert!(
        stdout.contains("moved project a-docs from default to acme-new"),
        "{stdout}"
    );
    let acme_new = tenant_id(pool, "acme-new").await.unwrap();
    assert_eq!(project_counts(pool, acme_new, "a-docs").await, a_docs);
    assert_eq!(project_counts(pool, acme_new, "a-wiki").await, a_wiki);
    assert_eq!(project_counts(pool, default, "a-docs").await, vec![0; 7]);
    let after = fingerprint(pool).await;
    // Nothing else moved, and the totals add up.
    assert_eq!(
        without(after.clone(), &[default, acme_new]),
        without(before.clone(), &[default])
    );
    let (old, new, now) = (
        project_rows(&before),
        counts_of(&after, acme_new),
        project_rows(&after),
    );
    for (table, rows) in &old {
        if table == "tenants" {
            continue;
        }
        assert_eq!(
            rows,
            &(new.get(table).copied().unwrap_or(0) + now.get(table).copied().unwrap_or(0)),
            "{table}"
        );
    }

    // --create refuses an existing tenant.
    let line = refused(
        &tenancy(
            db.url(),
            &[
                "tenant",
                "split",
                "--to",
                "beta",
                "--create",
                "Beta",
                "--project",
                "b-docs",
            ],
        )
        .await,
    );
    assert_eq!(
        line,
        "error: tenant `beta` already exists: drop --create to move into it"
    );
    assert_eq!(fingerprint(pool).await, after);

    // `project move` into an existing tenant; a slug already there is refused; an unknown
    // project too.
    let line = refused(
        &tenancy(
            db.url(),
            &[
                "project", "move", "a-docs", "--from", "default", "--to", "beta",
            ],
        )
        .await,
    );
    assert_eq!(
        line,
        "error: tenant `default` has no project with slug `a-docs`"
    );
    let b_docs = project_counts(pool, default, "b-docs").await;
    sqlx::query("UPDATE projects SET slug = 'docs' WHERE tenant_id = $1 AND slug = 'b-docs'")
        .bind(default)
        .execute(pool)
        .await
        .unwrap();
    let unchanged = fingerprint(pool).await;
    let line = refused(
        &tenancy(
            db.url(),
            &[
                "project", "move", "docs", "--from", "default", "--to", "beta",
            ],
        )
        .await,
    );
    assert_eq!(
        line,
        "error: tenant `beta` already has a project `docs`: rename one first"
    );
    assert_eq!(fingerprint(pool).await, unchanged);
    ok(&tenancy(
        db.url(),
        &[
            "project", "move", "docs", "--from", "default", "--to", "gamma",
        ],
    )
    .await);
    assert_eq!(project_counts(pool, gamma, "docs").await, b_docs);
    let moved = fingerprint(pool).await;
    assert_eq!(
        without(moved, &[default, gamma]),
        without(unchanged, &[default, gamma])
    );
    let _ = beta;
    let audit: i64 =
        sqlx::query_scalar("SELECT count(*) FROM tenancy.audit_log WHERE action = 'project.move'")
            .fetch_one(pool)
            .await
            .unwrap();
    assert_eq!(audit, 6, "one entry per project in each tenant");
}

/// Policies with other names, a two-role order, a composite primary key, bytea, double,
/// smallint and jsonb columns, and a global table (never exported).
const SHOP: &str = r#"
tenancy {
    owner_role = "tenancy_owner"
    app_role = "tenancy_app"
    helper_schema = "tenancy"
    roles = member < manager
}

tenants table orgs {
    name text
    slug text
    unique (slug)
    allow select to member
}

projects table stores {
    name text
    slug text
    unique (slug)
    allow select to member
}

memberships table staff {
    allow select to member
}

scoped table orders {
    id uuid default gen_random_uuid()
    total double
    note text?
    primary key (id)
    allow select to member
}

scoped table order_lines {
    order_id uuid references orders(id) on delete cascade
    line smallint
    sku text
    qty smallint
    primary key (order_id, line)
    allow select to member
}

scoped table events {
    id uuid default gen_random_uuid()
    at timestamptz default now()
    payload jsonb
    blob bytea?
    primary key (id)
    allow select to member
}

global table currencies {
    code text
    primary key (code)
    allow select
}
"#;

#[tokio::test]
async fn any_model_round_trips_and_deletes() {
    let tmp = tempfile::tempdir().unwrap();
    let policies = tmp.path().join("policies");
    std::fs::create_dir_all(&policies).unwrap();
    std::fs::write(policies.join("shop.tenancy"), SHOP).unwrap();
    let generated = tmp.path().join("generated");
    let (p, g) = (policies.to_str().unwrap(), generated.to_str().unwrap());
    let out = tenancy(
        "postgres://unused",
        &["generate", "--policies", p, "--out", g],
    )
    .await;
    ok(&out);
    let migrated = || async {
        let db = TestDb::empty().await;
        db.apply_migrations(&generated.join("migrations"))
            .await
            .unwrap();
        db
    };
    let source = migrated().await;
    let pool = source.admin_pool();
    for (org, orders) in [("north", 40), ("south", 7)] {
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
            "INSERT INTO currencies VALUES ('EUR');
             INSERT INTO orgs (id, name, slug) VALUES (md5('{org}')::uuid, '{org}', '{org}');
             INSERT INTO stores (tenant_id, id, name, slug)
               SELECT md5('{org}')::uuid, md5('{org}' || s)::uuid, 'store ' || s, 's' || s
               FROM generate_series(1, 2) s;
             INSERT INTO staff (tenant_id, project_id, user_id, role)
               SELECT tenant_id, id, md5(slug)::uuid, 'manager' FROM stores WHERE tenant_id = md5('{org}')::uuid;
             INSERT INTO orders (tenant_id, project_id, total, note)
               SELECT tenant_id, id, o / 3.0, CASE WHEN o % 2 = 0 THEN 'n\"' || o END
               FROM stores, generate_series(1, {orders}) o WHERE tenant_id = md5('{org}')::uuid;
             INSERT INTO order_lines (tenant_id, project_id, order_id, line, sku, qty)
               SELECT tenant_id, project_id, id, l, 'sku', 2 FROM orders, generate_series(1, 2) l
               WHERE tenant_id = md5('{org}')::uuid;
             INSERT INTO events (tenant_id, project_id, payload, blob)
               SELECT tenant_id, id, jsonb_build_object('k', s.slug), '\\x00ff'::bytea
               FROM stores s WHERE tenant_id = md5('{org}')::uuid;"
        )))
        .execute(pool)
        .await
        .unwrap_or_else(|e| panic!("seed {org}: {e}"));
        if org == "north" {
            sqlx::query("DELETE FROM currencies")
                .execute(pool)
                .await
                .unwrap();
        }
    }

    let first = tmp.path().join("first");
    let args = |verb: &'static str, rest: Vec<String>| -> Vec<String> {
        let mut v = vec!["tenant".to_owned(), verb.to_owned()];
        v.extend(rest);
        v.extend(["--policies".to_owned(), p.to_owned()]);
        v
    };
    let run = |url: String, args: Vec<String>| async move {
        let refs: Vec<&str> = args.iter().map(String::as_str).collect();
        tenancy(&url, &refs).await
    };
    let f = first.to_str().unwrap().to_owned();
    ok(&run(
        source.url().to_owned(),
        args("export", vec!["north".into(), "--out".into(), f.clone()]),
    )
    .await);
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(first.join("manifest.json")).unwrap()).unwrap();
    let tables: Vec<(&str, i64)> = manifest["tables"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| (t["table"].as_str().unwrap(), t["rows"].as_i64().unwrap()))
        .collect();
    assert_eq!(
        tables,
        [
            ("orgs", 1),
            ("stores", 2),
            ("staff", 2),
            ("orders", 80),
            ("order_lines", 160),
            ("events", 2)
        ]
    );

    let target = migrated().await;
    ok(&run(target.url().to_owned(), args("import", vec![f.clone()])).await);
    let second = tmp.path().join("second");
    let s = second.to_str().unwrap().to_owned();
    ok(&run(
        target.url().to_owned(),
        args("export", vec!["north".into(), "--out".into(), s]),
    )
    .await);
    assert_eq!(files(&first), files(&second));

    // The RAG policies do not fit this export.
    let line = refused(&tenancy(target.url(), &["tenant", "import", &f, "--as", "x"]).await);
    assert!(
        line.contains("incompatible model: its roles are member < manager"),
        "{line}"
    );

    // Delete in small batches; south stays as it was.
    let south = |pool: sqlx::PgPool| async move {
        let n: (i64, i64, i64) = sqlx::query_as(
            "SELECT (SELECT count(*) FROM orders WHERE tenant_id = md5('south')::uuid), \
                    (SELECT count(*) FROM order_lines WHERE tenant_id = md5('south')::uuid), \
                    (SELECT count(*) FROM staff WHERE tenant_id = md5('south')::uuid)",
        )
        .fetch_one(&pool)
        .await
        .unwrap();
        n
    };
    let before = south(source.admin_pool().clone()).await;
    let out = run(
        source.url().to_owned(),
        args(
            "delete",
            vec![
                "north".into(),
                "--confirm".into(),
                "north".into(),
                "--export".into(),
                f,
                "--batch".into(),
                "33".into(),
            ],
        ),
    )
    .await;
    let stdout = ok(&out);
    assert!(stdout.contains("order_lines\t160\n"), "{stdout}");
    let left: i64 = sqlx::query_scalar(
        "SELECT (SELECT count(*) FROM orders WHERE tenant_id = md5('north')::uuid) \
              + (SELECT count(*) FROM order_lines WHERE tenant_id = md5('north')::uuid) \
              + (SELECT count(*) FROM stores WHERE tenant_id = md5('north')::uuid) \
              + (SELECT count(*) FROM orgs WHERE id = md5('north')::uuid)",
    )
    .fetch_one(source.admin_pool())
    .await
    .unwrap();
    assert_eq!(left, 0);
    assert_eq!(south(source.admin_pool().clone()).await, before);
    assert_eq!(before, (14, 28, 2));
}
