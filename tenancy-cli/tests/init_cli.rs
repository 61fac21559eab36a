//! `tenancy init`: the scaffold validates and generates, and a second run overwrites nothing.

use std::path::Path;
use std::process::{Command, Output};

fn tenancy(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_tenancy"))
        .current_dir(dir)
        .args(args)
        .output()
        .unwrap_or_else(|err| panic!("running tenancy: {err}"))
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn init_scaffolds_a_project_that_checks_and_generates_and_never_overwrites() {
    let dir = tempfile::tempdir().unwrap();
    let checkout = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let init = tenancy(
        dir.path(),
        &[
            "init",
            "--name",
            "helpdesk",
            "--tenancy-path",
            checkout.to_str().unwrap(),
        ],
    );
    assert!(init.status.success(), "{}", text(&init.stderr));
    let policy = dir.path().join("policies/helpdesk.tenancy");
    let manifest = dir.path().join("generated/Cargo.toml");
    for path in [&policy, &manifest, &dir.path().join("TENANCY.md")] {
        assert!(path.is_file(), "{} missing", path.display());
    }
    let manifest_text = std::fs::read_to_string(&manifest).unwrap();
    assert!(
        manifest_text.contains("name = \"helpdesk-tenancy\""),
        "{manifest_text}"
    );
    assert!(
        manifest_text.contains("tenancy-runtime = { path = "),
        "{manifest_text}"
    );

    let check = tenancy(dir.path(), &["check"]);
    assert!(check.status.success(), "{}", text(&check.stderr));
    assert!(
        text(&check.stdout).contains("3 tables"),
        "{}",
        text(&check.stdout)
    );
    let generate = tenancy(dir.path(), &["generate"]);
    assert!(generate.status.success(), "{}", text(&generate.stderr));
    assert!(dir
        .path()
        .join("generated/migrations/0001_tenancy_core.sql")
        .is_file());
    assert!(dir.path().join("generated/src/lib.rs").is_file());
    // generate leaves the crate manifest alone.
    assert_eq!(std::fs::read_to_string(&manifest).unwrap(), manifest_text);
    let check = tenancy(dir.path(), &["generate", "--check"]);
    assert!(check.status.success(), "{}", text(&check.stderr));

    // A second init: refused with one sentence, nothing changed.
    std::fs::write(&policy, "// edited by the user\n").unwrap();
    let again = tenancy(dir.path(), &["init", "--name", "helpdesk"]);
    assert_eq!(again.status.code(), Some(1));
    let message = text(&again.stderr);
    assert!(
        message.contains("already exists") && message.contains("nothing was written"),
        "{message}"
    );
    assert_eq!(message.trim().lines().count(), 1, "{message}");
    assert_eq!(
        std::fs::read_to_string(&policy).unwrap(),
        "// edited by the user\n"
    );
    // Another name beside existing policies: refused too (one core per model).
    let other = tenancy(dir.path(), &["init", "--name", "other"]);
    assert_eq!(other.status.code(), Some(1));
    assert!(!dir.path().join("policies/other.tenancy").exists());
    // A bad name.
    let bad = tenancy(
        dir.path(),
        &["init", "--dir", "elsewhere", "--name", "Bad-Name"],
    );
    assert_eq!(bad.status.code(), Some(1));
    assert!(!dir.path().join("elsewhere").exists());
}
