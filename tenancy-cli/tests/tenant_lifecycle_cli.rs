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
                    m["tables"][4]["columns"][7]["type"] = "vector(1536)".into()
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
            damaged("missing-table", &|d| {
                edit_manifest(d, &|m| {
                    m["tables"].as_array_mut().unwrap().remove(7);
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
        for (table, _) in &lifecycle::TABLES[1..] {
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
