//! `tenancy key install|rotate|retire|list` as processes on a real database: a generated key is
//! written 0600 and never printed, duplicates and overwrites are refused, a rotation leaves two
//! active keys, the last active key is kept unless --force, and a token signed with an installed
//! key verifies in `tenancy.install_context` while one signed with a retired key raises 42501.

#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use hmac::{Hmac, Mac};
use sqlx::Row;
use tenancy_tests::TestDb;
use uuid::Uuid;

const TENANT: &str = "33333333-3333-4333-8333-333333333333";
const USER: &str = "44444444-4444-4444-8444-444444444444";

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("crate lives in the workspace")
        .to_path_buf()
}

/// Runs `tenancy <args>` in the workspace root (so the default `policies` directory is the
/// real one) with DATABASE_URL=`url`.
async fn tenancy(url: &str, args: &[&str]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_tenancy"));
    command
        .args(args)
        .current_dir(repo_root().join("examples/rag"))
        .env("DATABASE_URL", url);
    tokio::task::spawn_blocking(move || command.output().expect("run tenancy"))
        .await
        .expect("join")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Asserts success and returns stdout.
fn ok(out: &Output) -> String {
    assert_eq!(
        out.status.code(),
        Some(0),
        "stdout: {}\nstderr: {}",
        text(&out.stdout),
        text(&out.stderr)
    );
    text(&out.stdout)
}

/// Asserts exit 1 with exactly one `error: ...` line and nothing on stdout; returns the line.
fn refused(out: &Output) -> String {
    assert_eq!(out.status.code(), Some(1), "stdout: {}", text(&out.stdout));
    assert_eq!(text(&out.stdout), "");
    let stderr = text(&out.stderr);
    let lines: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(lines.len(), 1, "{stderr}");
    assert!(lines[0].starts_with("error: "), "{stderr}");
    lines[0].to_owned()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(text: &str) -> Vec<u8> {
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).unwrap())
        .collect()
}

/// Reads a key file written by `--generate`/`rotate`: checks `KID:HEX\n`, mode 0600, and that
/// the secret appears in none of the command's output. Returns the secret.
fn key_file(path: &Path, kid: &str, out: &Output) -> Vec<u8> {
    let mode = fs::metadata(path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "mode of {}", path.display());
    let content = fs::read_to_string(path).unwrap();
    let line = content.strip_suffix('\n').expect("one line");
    let (file_kid, secret) = line.split_once(':').expect("KID:HEX");
    assert_eq!(file_kid, kid);
    assert_eq!(secret.len(), 64, "32 bytes");
    assert!(secret
        .bytes()
        .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()));
    for stream in [&out.stdout, &out.stderr] {
        let stream = text(stream).to_lowercase();
        assert!(!stream.contains(secret), "secret printed: {stream}");
        // Not even a fragment of it.
        assert!(!stream.contains(&secret[..16]), "secret printed: {stream}");
    }
    unhex(secret)
}

/// A token as the runtime mints it: `<hmac>.<kid>;<expires>;*;<tenant>;<user>`, the HMAC-SHA256
/// over `token;` and everything after the dot.
fn token(kid: &str, secret: &[u8]) -> String {
    let expires = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        + 300;
    let body = format!("{kid};{expires};*;{TENANT};{USER}");
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(secret).unwrap();
    mac.update(b"token;");
    mac.update(body.as_bytes());
    format!("{}.{body}", hex(&mac.finalize().into_bytes()))
}

/// Installs a token signed with `secret` under `kid` as the app role and reads the tenant back;
/// the SQLSTATE when the database refuses it.
async fn verify(db: &TestDb, kid: &str, secret: &[u8]) -> Result<Option<Uuid>, String> {
    let mut tx = db.app_pool().begin().await.unwrap();
    let installed = sqlx::query("SELECT tenancy.install_context($1)")
        .bind(token(kid, secret))
        .execute(&mut *tx)
        .await;
    if let Err(error) = installed {
        let code = error
            .as_database_error()
            .and_then(|e| e.code())
            .map(|c| c.into_owned())
            .unwrap_or_else(|| panic!("not a database error: {error}"));
        return Err(code);
    }
    // A refused token is raised by the first read of the context (contract 3 installs a
    // refusal instead of failing the BEGIN round trip).
    let tenant: Result<Option<Uuid>, sqlx::Error> =
        sqlx::query_scalar("SELECT tenancy.current_tenant_id()")
            .fetch_one(&mut *tx)
            .await;
    let tenant = match tenant {
        Ok(tenant) => tenant,
        Err(error) => {
            return Err(error
                .as_database_error()
                .and_then(|e| e.code())
                .map(|c| c.into_owned())
                .unwrap_or_else(|| panic!("not a database error: {error}")))
        }
    };
    tx.rollback().await.unwrap();
    Ok(tenant)
}

/// `(kid, active)` of every key, from `tenancy key list --format json`.
async fn listed(url: &str) -> Vec<(String, bool)> {
    let out = tenancy(url, &["key", "list", "--format", "json"]).await;
    let json: serde_json::Value = serde_json::from_str(&ok(&out)).unwrap();
    json["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| {
            assert!(k["created_at"].as_str().unwrap().ends_with('Z'), "{k}");
            assert_eq!(k["active"].as_bool().unwrap(), k["retired_at"].is_null());
            assert!(k.get("inner_pad").is_none() && k.get("secret").is_none());
            (
                k["kid"].as_str().unwrap().to_owned(),
                k["active"].as_bool().unwrap(),
            )
        })
        .collect()
}

fn keys(expected: &[(&str, bool)]) -> Vec<(String, bool)> {
    expected
        .iter()
        .map(|(kid, active)| ((*kid).to_owned(), *active))
        .collect()
}

/// A migrated database without any context key (the harness may install a test key; these
/// tests start from what `tenancy migrate apply` leaves: none).
async fn fresh_without_keys() -> TestDb {
    let db = TestDb::fresh().await;
    sqlx::query("DELETE FROM tenancy.context_keys")
        .execute(db.admin_pool())
        .await
        .unwrap();
    db
}

#[tokio::test]
async fn install_rotate_retire_and_verify_end_to_end() {
    let db = fresh_without_keys().await;
    let url = db.url();
    let dir = tempfile::tempdir().unwrap();
    let path = |name: &str| dir.path().join(name);
    let arg = |name: &str| path(name).display().to_string();

    // A fresh database has no key, and says so.
    let out = tenancy(url, &["key", "list"]).await;
    assert!(ok(&out).contains("active keys: none"));
    assert!(text(&out.stderr).contains("no active key"), "{out:?}");

    // install --generate: a 0600 file, the secret never printed, the key verifies.
    let out = tenancy(
        url,
        &[
            "key",
            "install",
            "--kid",
            "k1",
            "--generate",
            "--out",
            &arg("k1.key"),
        ],
    )
    .await;
    let stdout = ok(&out);
    assert!(stdout.contains("installed key k1"), "{stdout}");
    let k1 = key_file(&path("k1.key"), "k1", &out);
    assert_eq!(listed(url).await, keys(&[("k1", true)]));
    let out = tenancy(url, &["key", "list"]).await;
    let stdout = ok(&out);
    assert!(stdout.starts_with("KID"), "{stdout}");
    assert!(
        stdout
            .lines()
            .any(|l| l.starts_with("k1 ") && l.contains("active")),
        "{stdout}"
    );
    assert_eq!(text(&out.stderr), "");
    assert_eq!(
        verify(&db, "k1", &k1).await,
        Ok(Some(TENANT.parse().unwrap()))
    );
    // A wrong secret under the right kid does not verify.
    assert_eq!(verify(&db, "k1", &[7u8; 32]).await, Err("42501".to_owned()));

    // A duplicate kid: one sentence, no file, nothing changed.
    let line = refused(
        &tenancy(
            url,
            &[
                "key",
                "install",
                "--kid",
                "k1",
                "--generate",
                "--out",
                &arg("dup.key"),
            ],
        )
        .await,
    );
    assert!(line.contains("key k1 already exists"), "{line}");
    assert!(!path("dup.key").exists());
    // An existing --out file is never overwritten, and nothing is installed.
    let line = refused(
        &tenancy(
            url,
            &[
                "key",
                "install",
                "--kid",
                "k9",
                "--generate",
                "--out",
                &arg("k1.key"),
            ],
        )
        .await,
    );
    assert!(line.contains("already exists"), "{line}");
    assert_eq!(key_file(&path("k1.key"), "k1", &out), k1);
    assert_eq!(listed(url).await, keys(&[("k1", true)]));
    // A kid the key table would refuse.
    let line = refused(
        &tenancy(
            url,
            &[
                "key",
                "install",
                "--kid",
                "a:b",
                "--generate",
                "--out",
                &arg("x.key"),
            ],
        )
        .await,
    );
    assert!(line.contains("is not 1 to 64"), "{line}");

    // The last active key is kept.
    let line = refused(&tenancy(url, &["key", "retire", "k1"]).await);
    assert!(line.contains("last active key"), "{line}");
    assert_eq!(listed(url).await, keys(&[("k1", true)]));

    // rotate: a second active key, the next steps, both keys verify.
    let out = tenancy(
        url,
        &["key", "rotate", "--new-kid", "k2", "--out", &arg("k2.key")],
    )
    .await;
    let stdout = ok(&out);
    assert!(
        stdout.contains(&format!("TENANCY_CONTEXT_KEY_FILE={}", arg("k2.key"))),
        "{stdout}"
    );
    assert!(stdout.contains("tenancy key retire k1"), "{stdout}");
    let k2 = key_file(&path("k2.key"), "k2", &out);
    assert_ne!(k1, k2);
    assert_eq!(listed(url).await, keys(&[("k1", true), ("k2", true)]));
    assert!(verify(&db, "k1", &k1).await.is_ok());
    assert!(verify(&db, "k2", &k2).await.is_ok());

    // retire the old key: its tokens are refused, the new key's are not.
    let out = tenancy(url, &["key", "retire", "k1"]).await;
    assert!(ok(&out).starts_with("retired key k1"));
    assert_eq!(listed(url).await, keys(&[("k1", false), ("k2", true)]));
    assert_eq!(verify(&db, "k1", &k1).await, Err("42501".to_owned()));
    assert_eq!(
        verify(&db, "k2", &k2).await,
        Ok(Some(TENANT.parse().unwrap()))
    );
    // Retiring it again changes nothing.
    let out = tenancy(url, &["key", "retire", "k1"]).await;
    assert!(ok(&out).starts_with("nothing to do"));

    // Unknown kid.
    let line = refused(&tenancy(url, &["key", "retire", "nope"]).await);
    assert!(line.contains("no key nope"), "{line}");

    // The last one only with --force, and then nothing verifies.
    let line = refused(&tenancy(url, &["key", "retire", "k2"]).await);
    assert!(line.contains("last active key"), "{line}");
    let out = tenancy(url, &["key", "retire", "k2", "--force"]).await;
    assert!(ok(&out).contains("no active key is left"));
    assert_eq!(listed(url).await, keys(&[("k1", false), ("k2", false)]));
    assert_eq!(verify(&db, "k2", &k2).await, Err("42501".to_owned()));

    // The key table holds pads, never the secret, and the text list shows no secret either.
    let row = sqlx::query("SELECT inner_pad, outer_pad FROM tenancy.context_keys WHERE kid = 'k2'")
        .fetch_one(db.admin_pool())
        .await
        .unwrap();
    let inner: Vec<u8> = row.get(0);
    assert_eq!(inner.len(), 64);
    assert_ne!(&inner[..32], k2.as_slice());
    let listing = ok(&tenancy(url, &["key", "list"]).await);
    assert!(!listing.contains(&hex(&k2)[..16]));
}

#[tokio::test]
async fn install_from_a_secret_file() {
    let db = fresh_without_keys().await;
    let url = db.url();
    let dir = tempfile::tempdir().unwrap();
    let secret: Vec<u8> = (0u8..48).collect();

    // Just HEX (upper case and a trailing newline are fine).
    let hex_only = dir.path().join("hex-only");
    fs::write(&hex_only, format!("{}\n", hex(&secret).to_uppercase())).unwrap();
    let file = hex_only.display().to_string();
    let out = tenancy(
        url,
        &["key", "install", "--kid", "f1", "--secret-file", &file],
    )
    .await;
    let stdout = ok(&out);
    assert!(stdout.contains("installed key f1"), "{stdout}");
    for stream in [&out.stdout, &out.stderr] {
        assert!(!text(stream).to_lowercase().contains(&hex(&secret)[..16]));
    }
    assert_eq!(
        verify(&db, "f1", &secret).await,
        Ok(Some(TENANT.parse().unwrap()))
    );

    // KID:HEX for the same kid.
    let with_kid = dir.path().join("with-kid");
    fs::write(&with_kid, format!("f2:{}", hex(&secret[..32]))).unwrap();
    let file = with_kid.display().to_string();
    ok(&tenancy(
        url,
        &["key", "install", "--kid", "f2", "--secret-file", &file],
    )
    .await);
    assert!(verify(&db, "f2", &secret[..32]).await.is_ok());

    // KID:HEX for another kid, too short, not hex: refused without quoting the content.
    let line = refused(
        &tenancy(
            url,
            &["key", "install", "--kid", "f3", "--secret-file", &file],
        )
        .await,
    );
    assert!(line.contains("is for key \"f2\""), "{line}");
    let short = dir.path().join("short");
    fs::write(&short, hex(&secret[..31])).unwrap();
    let line = refused(
        &tenancy(
            url,
            &[
                "key",
                "install",
                "--kid",
                "f3",
                "--secret-file",
                &short.display().to_string(),
            ],
        )
        .await,
    );
    assert!(line.contains("has 31 bytes"), "{line}");
    assert!(!line.contains(&hex(&secret[..31])));
    let garbage = dir.path().join("garbage");
    fs::write(&garbage, "f3:not-hex-at-all-but-a-password").unwrap();
    let line = refused(
        &tenancy(
            url,
            &[
                "key",
                "install",
                "--kid",
                "f3",
                "--secret-file",
                &garbage.display().to_string(),
            ],
        )
        .await,
    );
    assert!(line.contains("does not hold KID:HEX or HEX"), "{line}");
    assert!(!line.contains("password"));
    let line = refused(
        &tenancy(
            url,
            &[
                "key",
                "install",
                "--kid",
                "f3",
                "--secret-file",
                "/nonexistent/key",
            ],
        )
        .await,
    );
    assert!(line.contains("could not read the secret file"), "{line}");
    assert_eq!(listed(url).await, keys(&[("f1", true), ("f2", true)]));
}

#[tokio::test]
async fn refusals_before_any_change() {
    let db = fresh_without_keys().await;
    // The app role cannot read the key table and is told whom to connect as.
    let line = refused(&tenancy(db.app_url(), &["key", "list"]).await);
    assert!(
        line.contains("may not manage context keys") && line.contains("tenancy_owner"),
        "{line}"
    );
    // No database at all.
    let mut command = Command::new(env!("CARGO_BIN_EXE_tenancy"));
    command
        .args(["key", "list"])
        .current_dir(repo_root().join("examples/rag"))
        .env_remove("DATABASE_URL");
    let out = command.output().unwrap();
    assert_eq!(
        refused(&out),
        "error: no database: pass --database-url or set DATABASE_URL"
    );
    // A database without the v3 migrations.
    let empty = TestDb::empty().await;
    let line = refused(&tenancy(empty.url(), &["key", "list"]).await);
    assert!(
        line.contains("no context key table tenancy.context_keys"),
        "{line}"
    );
    // --generate needs --out; --secret-file and --generate exclude each other (clap: exit 2).
    let out = tenancy(db.url(), &["key", "install", "--kid", "k", "--generate"]).await;
    assert_eq!(out.status.code(), Some(2));
    let out = tenancy(db.url(), &["key", "install", "--kid", "k"]).await;
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(listed(db.url()).await, keys(&[]));
}

/// Role DDL is cluster-wide: serialise it with the harness's migrations.
async fn with_role_lock(admin: &str, sql: &str) {
    let mut conn = <sqlx::PgConnection as sqlx::Connection>::connect(admin)
        .await
        .unwrap();
    sqlx::query("SELECT pg_advisory_lock($1)")
        .bind(tenancy_tests::MIGRATION_LOCK_KEY)
        .execute(&mut conn)
        .await
        .unwrap();
    let result = sqlx::raw_sql(sqlx::AssertSqlSafe(sql))
        .execute(&mut conn)
        .await;
    sqlx::query("SELECT pg_advisory_unlock($1)")
        .bind(tenancy_tests::MIGRATION_LOCK_KEY)
        .execute(&mut conn)
        .await
        .unwrap();
    result.unwrap();
}

#[tokio::test]
async fn an_owner_member_manages_keys_unless_the_server_logs_parameters() {
    let db = fresh_without_keys().await;
    let admin = tenancy_tests::admin_url().await;
    let role = format!("keys_cli_op_{}", std::process::id());
    let password = Uuid::new_v4().simple().to_string();
    with_role_lock(
        &admin,
        &format!(
            "DROP ROLE IF EXISTS {role}; \
             CREATE ROLE {role} LOGIN PASSWORD '{password}' IN ROLE tenancy_owner"
        ),
    )
    .await;
    let url = tenancy_tests::database_url(&admin, Some(&role), Some(&password), db.name()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let out_arg = |name: &str| dir.path().join(name).display().to_string();

    // A member of the owner role (not a superuser) may manage keys.
    let out = tenancy(
        &url,
        &[
            "key",
            "install",
            "--kid",
            "m1",
            "--generate",
            "--out",
            &out_arg("m1.key"),
        ],
    )
    .await;
    ok(&out);
    let m1 = key_file(&dir.path().join("m1.key"), "m1", &out);
    assert!(verify(&db, "m1", &m1).await.is_ok());

    // With every statement logged with its parameters, which this role cannot turn off, the
    // secret is not sent; a superuser turns the parameters off for its session and may.
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
        "ALTER DATABASE \"{}\" SET log_statement = 'all'",
        db.name()
    )))
    .execute(db.admin_pool())
    .await
    .unwrap();
    let line = refused(
        &tenancy(
            &url,
            &[
                "key",
                "install",
                "--kid",
                "m2",
                "--generate",
                "--out",
                &out_arg("m2.key"),
            ],
        )
        .await,
    );
    assert!(line.contains("would end up in the server log"), "{line}");
    assert!(!dir.path().join("m2.key").exists());
    let out = tenancy(
        db.url(),
        &[
            "key",
            "install",
            "--kid",
            "m3",
            "--generate",
            "--out",
            &out_arg("m3.key"),
        ],
    )
    .await;
    ok(&out);
    assert_eq!(listed(db.url()).await, keys(&[("m1", true), ("m3", true)]));

    db.drop_db().await;
    with_role_lock(&admin, &format!("DROP ROLE {role}")).await;
}
