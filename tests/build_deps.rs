//! `scripts/build-deps` (libclang for the `pg_query` crate): instant when present; as root with
//! apt-get it installs `libclang-dev` when missing; elsewhere one sentence and exit 1. The
//! missing cases run the script with stub `dpkg-query`, `id` and `apt-get` first on PATH.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/build-deps")
}

fn stub(dir: &Path, name: &str, body: &str) {
    let path = dir.join(name);
    std::fs::write(&path, format!("#!/bin/sh\n{body}\n")).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
}

fn run_with_stubs(stubs: &Path) -> Output {
    Command::new("bash")
        .arg(script())
        .env_remove("LIBCLANG_PATH")
        .env("PATH", format!("{}:/usr/bin:/bin", stubs.display()))
        .output()
        .unwrap()
}

#[test]
fn present_here_exit_0_and_silent() {
    let out = Command::new(script()).output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.stdout.is_empty());
}

#[test]
fn missing_and_not_root_says_what_to_install() {
    let stubs = tempfile_dir();
    stub(&stubs, "dpkg-query", "echo 'unknown ok not-installed'");
    stub(&stubs, "id", "echo 1000");
    let out = run_with_stubs(&stubs);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.contains("needs libclang") && stderr.contains("apt-get install -y libclang-dev")
    );
    std::fs::remove_dir_all(stubs).unwrap();
}

#[test]
fn missing_as_root_installs_libclang_dev_with_apt_get() {
    let stubs = tempfile_dir();
    let marker = stubs.join("installed");
    let calls = stubs.join("calls");
    stub(
        &stubs,
        "dpkg-query",
        &format!(
            "if [ -e {m} ]; then echo 'install ok installed'; else echo 'unknown ok not-installed'; fi",
            m = marker.display()
        ),
    );
    stub(&stubs, "id", "echo 0");
    stub(
        &stubs,
        "apt-get",
        &format!(
            "echo \"$*\" >> {c}; [ \"$1\" = install ] && touch {m}; exit 0",
            c = calls.display(),
            m = marker.display()
        ),
    );
    let out = run_with_stubs(&stubs);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        std::fs::read_to_string(&calls).unwrap(),
        "install -y -q libclang-dev\n"
    );
    // and again: nothing to do
    std::fs::remove_file(&calls).unwrap();
    let out = run_with_stubs(&stubs);
    assert_eq!(out.status.code(), Some(0));
    assert!(!calls.exists());
    std::fs::remove_dir_all(stubs).unwrap();
}

fn tempfile_dir() -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "tenancy-build-deps-{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}
