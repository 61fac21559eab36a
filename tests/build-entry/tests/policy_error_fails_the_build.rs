//! A policy error in a crate whose build.rs uses tenancy-build fails `cargo build`, with the
//! diagnostic rustc-style (file, line and column, the offending line underlined) as
//! `tenancy check` prints it.
//!
//! The crate is written below `CARGO_TARGET_TMPDIR` and built by a nested `cargo build`
//! with its own target directory (kept between runs, like trybuild's), offline, with this
//! workspace's lockfile so it resolves the same versions.

#![allow(clippy::expect_used)] // fixture helpers outside #[test] functions

use std::path::{Path, PathBuf};
use std::process::Command;

/// A `tenancy` block and a scoped table whose rule names a role that does not exist.
const BAD_POLICY: &str = "\
tenancy {
    owner_role = \"o\"
    app_role = \"a\"
    helper_schema = \"tenancy\"
    roles = viewer < editor
}

tenants table tenants {
    name text
    allow select to viewer
}

projects table projects {
    name text
    allow select to viewer
}

memberships table members {
    allow select to viewer
}

scoped table notes {
    id uuid default gen_random_uuid()
    body text
    primary key (id)
    allow select to editr
}
";

fn write(path: &Path, contents: &str) {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).expect("create the fixture directories");
    }
    std::fs::write(path, contents).expect("write a fixture file");
}

/// Writes the fixture crate and returns its directory.
fn fixture() -> PathBuf {
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let workspace = workspace.canonicalize().expect("the workspace root");
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("tenancy-build-policy-error");
    let build = workspace.join("tenancy-build");
    write(
        &dir.join("Cargo.toml"),
        &format!(
            "[package]\nname = \"policy-error-fixture\"\nversion = \"0.0.0\"\nedition = \"2021\"\n\
             publish = false\n\n[build-dependencies]\ntenancy-build = {{ path = {:?} }}\n\n\
             [workspace]\n",
            build.display().to_string()
        ),
    );
    write(
        &dir.join("build.rs"),
        "fn main() -> Result<(), tenancy_build::Error> {\n    \
         tenancy_build::compile_policies(\"policies\")?;\n    Ok(())\n}\n",
    );
    write(
        &dir.join("src/lib.rs"),
        "include!(concat!(env!(\"OUT_DIR\"), \"/tenancy.rs\"));\n",
    );
    write(&dir.join("policies/notes.tenancy"), BAD_POLICY);
    let lock = std::fs::read_to_string(workspace.join("Cargo.lock")).expect("Cargo.lock");
    write(&dir.join("Cargo.lock"), &lock);
    dir
}

#[test]
fn a_policy_error_fails_the_build_with_the_rustc_style_diagnostic() {
    let dir = fixture();
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let output = Command::new(cargo)
        .args(["build", "--offline", "--quiet"])
        .current_dir(&dir)
        .env("CARGO_TARGET_DIR", dir.join("target"))
        .env_remove("RUSTFLAGS")
        .output()
        .expect("run cargo build");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "the build must fail:\n{stderr}");
    assert!(
        stderr.contains("failed to run custom build command for `policy-error-fixture"),
        "cargo reports the build script:\n{stderr}"
    );
    assert!(
        stderr.contains("error[") || stderr.contains("error:"),
        "an error diagnostic:\n{stderr}"
    );
    assert!(
        stderr.contains("unknown role `editr`"),
        "the diagnostic names the role:\n{stderr}"
    );
    assert!(
        stderr.contains("policies/notes.tenancy:26:21"),
        "file:line:column of the rule:\n{stderr}"
    );
    assert!(
        stderr.contains("allow select to editr") && stderr.contains("^^^^^"),
        "the offending line, underlined:\n{stderr}"
    );
    assert!(
        stderr.contains("tenancy-build: could not validate the policies in `policies`: 1 error(s)"),
        "the summary line:\n{stderr}"
    );
}
