//! Every fixture under `tests/fixtures/invalid/` is rejected (or, for `warn_*`, warned
//! about) and its rendered diagnostics match the insta snapshot.
//!
//! A fixture is a `*.tenancy` file or a directory of them (compiled as one model).

#![allow(clippy::expect_used, clippy::unwrap_used)] // test helpers panic on broken fixtures

use std::path::{Path, PathBuf};

use tenancy_core::dsl::{compile, read_dir, SourceFile};

fn fixtures_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/invalid")
}

/// Loads a fixture with names relative to the crate (stable in snapshots).
fn load(path: &Path) -> Vec<SourceFile> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut sources = if path.is_dir() {
        read_dir(path).expect("read fixture dir")
    } else {
        vec![SourceFile::new(
            path.display().to_string(),
            std::fs::read_to_string(path).expect("read fixture"),
        )]
    };
    for source in &mut sources {
        let relative = Path::new(&source.name)
            .strip_prefix(root)
            .map(|p| p.display().to_string())
            .unwrap_or_else(|_| source.name.clone());
        source.name = relative;
    }
    sources
}

fn fixtures() -> Vec<(String, PathBuf)> {
    let mut entries: Vec<(String, PathBuf)> = std::fs::read_dir(fixtures_dir())
        .expect("fixtures dir")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.is_dir() || p.extension().is_some_and(|e| e == "tenancy"))
        .map(|p| {
            let stem = p.file_stem().expect("stem").to_string_lossy().into_owned();
            (stem, p)
        })
        .collect();
    entries.sort();
    entries
}

#[test]
fn invalid_fixtures_render_as_snapshotted() {
    let fixtures = fixtures();
    assert!(fixtures.len() >= 14, "only {} fixtures", fixtures.len());
    for (name, path) in fixtures {
        let sources = load(&path);
        let (model, diags) = compile(&sources);
        if name.starts_with("warn_") {
            assert!(model.is_some(), "{name}: warnings must not fail validation");
            assert!(!diags.has_errors(), "{name}");
            assert!(diags.warning_count() > 0, "{name}: expected a warning");
        } else {
            assert!(model.is_none(), "{name}: expected errors");
            assert!(diags.has_errors(), "{name}");
        }
        let rendered = diags.render(&sources, false);
        assert!(
            !rendered.contains('\u{1b}'),
            "{name}: colour codes without colour"
        );
        insta::assert_snapshot!(name, rendered);
    }
}

#[test]
fn colour_rendering_adds_ansi_codes() {
    let path = fixtures_dir().join("unknown_role.tenancy");
    let sources = load(&path);
    let (_, diags) = compile(&sources);
    let coloured = diags.render(&sources, true);
    assert!(coloured.contains('\u{1b}'));
    assert!(coloured.contains("unknown role `editr`"));
}
