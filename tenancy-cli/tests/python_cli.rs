//! `tenancy generate --python DIR`: writes the Python package, `--check` names its stale files
//! and exits non-zero (docs/python.md).

#![allow(clippy::expect_used)]

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("crate lives in the workspace")
        .to_path_buf()
}

fn tenancy(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_tenancy"))
        .args(args)
        .current_dir(dir)
        .output()
        .expect("run tenancy")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

const ARGS: [&str; 4] = ["--python", "py", "--python-package", "app_db"];

#[test]
fn the_committed_python_package_is_up_to_date() {
    let out = tenancy(
        &repo_root().join("examples/rag"),
        &[
            "generate",
            "--check",
            "--python",
            "python",
            "--python-package",
            "rag_tenancy",
        ],
    );
    assert!(
        out.status.success(),
        "python/ is stale: {}",
        text(&out.stderr)
    );
    assert!(text(&out.stdout).contains("python is up to date"));
}

#[test]
fn generate_then_check_then_edit_makes_check_fail() {
    let dir = tempfile::tempdir().expect("tempdir");
    let policies = dir.path().join("policies");
    fs::create_dir_all(&policies).expect("mkdir");
    fs::copy(
        repo_root().join("examples/rag/policies/rag.tenancy"),
        policies.join("rag.tenancy"),
    )
    .expect("copy");
    let generate = |check: bool| {
        let mut args = vec!["generate"];
        if check {
            args.push("--check");
        }
        args.extend(ARGS);
        tenancy(dir.path(), &args)
    };
    let first = generate(false);
    assert!(first.status.success(), "{}", text(&first.stderr));
    assert!(text(&first.stdout).contains("Python files into py"));
    assert!(dir.path().join("py/pyproject.toml").is_file());
    assert!(dir.path().join("py/app_db/models.py").is_file());
    assert!(generate(true).status.success());

    fs::write(dir.path().join("py/app_db/roles.py"), "# edited\n").expect("edit");
    fs::write(dir.path().join("py/app_db/migrations/versions/m9_x.py"), "").expect("extra");
    let stale = generate(true);
    assert_eq!(stale.status.code(), Some(1));
    let stderr = text(&stale.stderr);
    assert!(
        stderr.contains("stale: py/app_db/roles.py (differs"),
        "{stderr}"
    );
    assert!(
        stderr.contains("stale: py/app_db/migrations/versions/m9_x.py (not generated"),
        "{stderr}"
    );
    assert!(
        stderr.contains("error: py is stale (2 file(s))"),
        "{stderr}"
    );

    // Generating again repairs both.
    assert!(generate(false).status.success());
    assert!(generate(true).status.success());
    assert!(!dir
        .path()
        .join("py/app_db/migrations/versions/m9_x.py")
        .exists());
}

#[test]
fn a_bad_package_name_is_one_sentence() {
    let out = tenancy(
        &repo_root().join("examples/rag"),
        &[
            "generate",
            "--check",
            "--python",
            "python",
            "--python-package",
            "Rag-DB",
        ],
    );
    assert_eq!(out.status.code(), Some(1));
    let stderr = text(&out.stderr);
    assert!(
        stderr.starts_with("error: the Python package name \"Rag-DB\" must match"),
        "{stderr}"
    );
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
}

#[test]
fn the_model_setting_names_the_package_and_the_flag_overrides_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let policies = dir.path().join("policies");
    fs::create_dir_all(&policies).expect("mkdir");
    let rag = fs::read_to_string(repo_root().join("examples/rag/policies/rag.tenancy"))
        .expect("read rag.tenancy");
    let rag = rag.replacen(
        "tenancy {",
        "tenancy {\n    python_package = \"from_model\"",
        1,
    );
    fs::write(policies.join("rag.tenancy"), rag).expect("write");

    let out = tenancy(dir.path(), &["generate", "--python", "py"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(dir.path().join("py/from_model/models.py").is_file());
    let check = tenancy(dir.path(), &["generate", "--check", "--python", "py"]);
    assert!(check.status.success(), "{}", text(&check.stderr));
    // The snapshot holds no trace of it (not a database setting).
    let snapshot =
        fs::read_to_string(dir.path().join("generated/model.snapshot.json")).expect("snapshot");
    assert!(!snapshot.contains("from_model"));

    let out = tenancy(
        dir.path(),
        &[
            "generate",
            "--python",
            "py2",
            "--python-package",
            "from_flag",
        ],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(dir.path().join("py2/from_flag/models.py").is_file());
    assert!(!dir.path().join("py2/from_model").exists());
}
