//! `Builder` outside a build script: where it writes, what it rewrites, how it fails.

use std::path::{Path, PathBuf};

use tenancy_build::{Builder, Error};

fn policies() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/rag/policies")
}

fn out_dir(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join("tenancy-build")
        .join(name);
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

#[test]
fn compile_writes_one_includable_file_and_leaves_it_alone_when_unchanged() {
    let out = out_dir("unchanged");
    let builder = Builder::new()
        .policies(policies())
        .out_dir(&out)
        .file_name("repos.rs")
        .cargo_instructions(false);
    let path = builder.clone().compile().expect("the policies are valid");
    assert_eq!(path, out.join("repos.rs"));
    let text = std::fs::read_to_string(&path).expect("written");
    assert!(text.starts_with(tenancy_core::rust::INCLUDE_HEADER));
    assert!(text.contains("pub mod documents {"));
    assert!(text.contains("pub struct Documents;") || text.contains("pub struct Documents {"));

    let before = std::fs::metadata(&path)
        .and_then(|m| m.modified())
        .expect("mtime");
    std::thread::sleep(std::time::Duration::from_millis(20));
    builder.compile().expect("again");
    let after = std::fs::metadata(&path)
        .and_then(|m| m.modified())
        .expect("mtime");
    assert_eq!(before, after, "an unchanged file is not rewritten");
}

#[test]
fn a_directory_without_policies_is_an_error_naming_it() {
    let empty = out_dir("empty-policies");
    std::fs::create_dir_all(&empty).expect("mkdir");
    let error = Builder::new()
        .policies(&empty)
        .out_dir(out_dir("unused"))
        .cargo_instructions(false)
        .compile()
        .expect_err("no policies");
    assert!(matches!(error, Error::NoPolicies { .. }), "{error}");
    assert!(
        error.to_string().contains("no `*.tenancy` files in"),
        "{error}"
    );
    // `main` returning the error prints its Debug form: the same sentence.
    assert_eq!(format!("{error:?}"), error.to_string());
}

#[test]
fn a_policy_error_is_rendered_rustc_style() {
    let dir = out_dir("bad-policies");
    std::fs::create_dir_all(&dir).expect("mkdir");
    let rag = std::fs::read_to_string(policies().join("rag.tenancy")).expect("rag.tenancy");
    let bad = rag.replacen("allow select to viewer", "allow select to viewr", 1);
    std::fs::write(dir.join("rag.tenancy"), bad).expect("write");
    let error = Builder::new()
        .policies(&dir)
        .out_dir(out_dir("unused-bad"))
        .cargo_instructions(false)
        .compile()
        .expect_err("an unknown role");
    let Error::Invalid { errors, .. } = &error else {
        panic!("not Invalid: {error}");
    };
    assert_eq!(*errors, 1);
    let text = format!("{error:?}");
    assert!(text.contains("error: unknown role `viewr`"), "{text}");
    assert!(text.contains("rag.tenancy:"), "{text}");
    assert!(text.contains("did you mean `viewer`?"), "{text}");
}
