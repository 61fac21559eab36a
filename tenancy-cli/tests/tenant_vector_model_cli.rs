//! `tenancy tenant set-vector-model` as a process on a real database: it switches one tenant's
//! embedding model, clears exactly that tenant's vectors (the stale ones the application
//! re-embeds), audits the change, changes nothing when the model is the same, and fails with
//! one sentence and exit 1 on a bad tenant, column, dimension or name.

#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::path::Path;
use std::process::Command;

mod lifecycle;
#[path = "../../tests/per_tenant_vectors/mod.rs"]
mod per_tenant_vectors;

use lifecycle::{files, ok, refused};

use per_tenant_vectors::{add_tenant, count_vectors, database, fill};

fn cli(dir: &Path, url: &str, args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_tenancy"))
        .current_dir(dir)
        .args(args)
        .args(["--database-url", url, "--actor", "cli-test"])
        .output()
        .unwrap()
}

#[tokio::test]
async fn set_vector_model_marks_vectors_stale_or_fails_in_one_sentence() {
    let (db, tmp) = database().await;
    let acme = add_tenant(&db, "acme").await;
    let beta = add_tenant(&db, "beta").await;
    fill(&db, &acme, 3, 7).await;
    fill(&db, &beta, 3, 4).await;

    let stdout = ok(&cli(
        tmp.path(),
        db.url(),
        &[
            "tenant",
            "set-vector-model",
            "acme",
            "--model",
            "bge-m3",
            "--dimensions",
            "6",
        ],
    ));
    assert!(
        stdout.contains(
            "tenant acme: passages.embedding now uses model bge-m3 (6 dimensions, version 1), \
             was the column's default (3 dimensions); 7 stale vectors cleared (embed those rows again)"
        ),
        "{stdout}"
    );
    assert_eq!(count_vectors(&db, &acme).await, (7, 0));
    assert_eq!(count_vectors(&db, &beta).await, (4, 4));
    let action: String = sqlx::query_scalar(
        "SELECT action FROM tenancy.audit_log WHERE tenant_id = $1 AND actor = 'cli-test'",
    )
    .bind(acme.id.as_uuid())
    .fetch_one(db.admin_pool())
    .await
    .unwrap();
    assert_eq!(action, "vector.set_embedding");

    let again = cli(
        tmp.path(),
        db.url(),
        &[
            "tenant",
            "set-vector-model",
            "acme",
            "--column",
            "passages.embedding",
            "--model",
            "bge-m3",
            "--dimensions",
            "6",
        ],
    );
    assert!(ok(&again).contains("nothing changed"));

    // Failures: non-zero exit, one sentence, nothing written.
    for (args, expected) in [
        (
            vec!["tenant", "set-vector-model", "nope", "--model", "m", "--dimensions", "3"],
            "no tenant with slug `nope`",
        ),
        (
            vec!["tenant", "set-vector-model", "beta", "--column", "passages.body", "--model", "m", "--dimensions", "3"],
            "`passages.body` is not a `per tenant` vector column of the policies (they declare passages.embedding)",
        ),
        (
            vec!["tenant", "set-vector-model", "beta", "--model", "m", "--dimensions", "0"],
            "vector model m: dimensions 0 not in 1..=16000",
        ),
        (
            vec!["tenant", "set-vector-model", "beta", "--model", " ", "--dimensions", "3"],
            "must be 1 to 200 printable bytes",
        ),
    ] {
        let line = refused(&cli(tmp.path(), db.url(), &args));
        assert!(line.contains(expected), "{args:?}: {line}");
    }
    assert_eq!(count_vectors(&db, &beta).await, (4, 4));
    let settings: i64 = sqlx::query_scalar("SELECT count(*) FROM tenancy.vector_settings")
        .fetch_one(db.admin_pool())
        .await
        .unwrap();
    assert_eq!(settings, 1);

    // Moving a project into a tenant of another dimension is refused and writes nothing.
    let out = cli(
        tmp.path(),
        db.url(),
        &[
            "project", "move", "beta-p", "--from", "beta", "--to", "acme",
        ],
    );
    let line = refused(&out);
    assert!(
        line.contains("holds 6-dimensional vectors in this tenant (model bge-m3), not 3"),
        "{line}"
    );
    assert_eq!(count_vectors(&db, &beta).await, (4, 4));

    // Export -> import into an empty database -> export again: identical files, the tenant's
    // model included (imported before the rows, so its 6-dimensional vectors load).
    sqlx::query("UPDATE passages SET embedding = array_fill(0.5::real, ARRAY[6])::vector WHERE tenant_id = $1")
        .bind(acme.id.as_uuid())
        .execute(db.admin_pool())
        .await
        .unwrap();
    let first = tmp.path().join("first");
    ok(&cli(
        tmp.path(),
        db.url(),
        &["tenant", "export", "acme", "--out", first.to_str().unwrap()],
    ));
    assert!(first.join("tenancy.vector_settings.jsonl").exists());
    let target = tenancy_tests::TestDb::empty().await;
    target
        .apply_migrations(&tmp.path().join("generated/migrations"))
        .await
        .unwrap();
    ok(&cli(
        tmp.path(),
        target.url(),
        &["tenant", "import", first.to_str().unwrap()],
    ));
    let second = tmp.path().join("second");
    ok(&cli(
        tmp.path(),
        target.url(),
        &[
            "tenant",
            "export",
            "acme",
            "--out",
            second.to_str().unwrap(),
        ],
    ));
    assert_eq!(files(&first), files(&second));
    let model: (String, i32) =
        sqlx::query_as("SELECT model, dimensions FROM tenancy.vector_settings")
            .fetch_one(target.admin_pool())
            .await
            .unwrap();
    assert_eq!(model, ("bge-m3".to_owned(), 6));
    let vectors: i64 = sqlx::query_scalar("SELECT count(embedding) FROM passages")
        .fetch_one(target.admin_pool())
        .await
        .unwrap();
    assert_eq!(vectors, 7);

    // Deleting the tenant removes its settings with it.
    ok(&cli(
        tmp.path(),
        target.url(),
        &[
            "tenant",
            "delete",
            "acme",
            "--confirm",
            "acme",
            "--no-export-i-am-sure",
        ],
    ));
    let settings: i64 = sqlx::query_scalar("SELECT count(*) FROM tenancy.vector_settings")
        .fetch_one(target.admin_pool())
        .await
        .unwrap();
    assert_eq!(settings, 0);
}
