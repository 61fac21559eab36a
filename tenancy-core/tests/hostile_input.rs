//! Issue 24, in CI: random unusual models and derive structs, end to end, for a fixed number
//! of cases (bounded time), and a committed corpus of inputs that once failed.
//!
//! * `random_models_*`: policy files from pools of ordinary and hostile names, types and
//!   defaults (`hostile/mod.rs`); `compile` never panics, and every accepted model generates
//!   SQL and Rust without error, its Rust parses with `syn`, its generated SQL names fit in
//!   63 bytes and do not collide, and it diffs empty against itself through its snapshot.
//! * `random_derive_structs_*`: the derive never panics, and what it accepts the DSL reads as
//!   the same table (then the same end-to-end check).
//! * `the_corpus_replays`: every file under `tests/corpus/dsl` and `tests/corpus/derive`
//!   starts with `// expect: accepted` or `// expect: rejected: <text of an error>` and is
//!   checked as above. When a property fails, its input is printed (`--- input ---`): add it
//!   to the corpus with the expectation it should have, then fix the cause.
//!
//! `PROPTEST_CASES` overrides the case counts (e.g. a long local run).

#![allow(clippy::expect_used, clippy::unwrap_used)]

mod hostile;

use std::path::{Path, PathBuf};

use proptest::prelude::*;

/// Cases per property in CI (about 10-20 s for the whole file in a debug build).
const CASES: u32 = 160;

fn config() -> ProptestConfig {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(CASES);
    ProptestConfig {
        cases,
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn random_models_never_panic_and_accepted_ones_generate_clean_output(m in hostile::model()) {
        let text = m.render();
        let (model, _) = hostile::compile_text(&text);
        if let Some(model) = model {
            hostile::check_accepted(&model, &text);
        }
    }

    #[test]
    fn random_plain_models_generate_clean_output(m in hostile::plain_model()) {
        let text = m.render();
        let (model, _) = hostile::compile_text(&text);
        if let Some(model) = model {
            hostile::check_accepted(&model, &text);
        }
    }

    #[test]
    fn random_derive_structs_never_panic_and_agree_with_the_dsl(s in hostile::derive_struct()) {
        let source = s.render();
        if let Err(message) = hostile::check_derive(&source) {
            panic!("{message}");
        }
    }
}

fn corpus(dir: &str, ext: &str) -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/corpus")
        .join(dir);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == ext))
        .collect();
    files.sort();
    files
}

/// The expectation on the first line: `None` for accepted, `Some(text)` for rejected.
fn expectation(path: &Path, text: &str) -> Option<String> {
    let first = text.lines().next().unwrap_or_default();
    if first == "// expect: accepted" {
        return None;
    }
    match first.strip_prefix("// expect: rejected: ") {
        Some(message) => Some(message.to_owned()),
        None => panic!(
            "{}: the first line must be `// expect: accepted` or `// expect: rejected: <error>`",
            path.display()
        ),
    }
}

#[test]
fn the_corpus_replays() {
    let dsl = corpus("dsl", "tenancy");
    let derive = corpus("derive", "rs");
    assert!(dsl.len() >= 10 && derive.len() >= 5, "corpus went missing");
    for path in dsl {
        let text = std::fs::read_to_string(&path).expect("read");
        let (model, rendered) = hostile::compile_text(&text);
        match (expectation(&path, &text), model) {
            (None, Some(model)) => hostile::check_accepted(&model, &text),
            (None, None) => panic!("{}: expected accepted:\n{rendered}", path.display()),
            (Some(message), None) => assert!(
                rendered.contains(&message),
                "{}: expected `{message}`:\n{rendered}",
                path.display()
            ),
            (Some(message), Some(_)) => {
                panic!("{}: accepted, expected `{message}`", path.display())
            }
        }
    }
    for path in derive {
        let text = std::fs::read_to_string(&path).expect("read");
        let expected = expectation(&path, &text);
        if let Err(message) = hostile::check_derive(&text) {
            panic!("{}: {message}", path.display());
        }
        let input: syn::DeriveInput = syn::parse_str(&text).expect("a struct");
        match (expected, tenancy_core::derive::derive_table(&input)) {
            (None, Ok(_)) => {}
            (None, Err(e)) => panic!("{}: expected accepted: {e}", path.display()),
            (Some(message), Err(e)) => {
                let all: Vec<String> = e.into_iter().map(|e| e.to_string()).collect();
                assert!(
                    all.iter().any(|m| m.contains(&message)),
                    "{}: expected `{message}`: {all:#?}",
                    path.display()
                );
            }
            (Some(message), Ok(_)) => {
                panic!("{}: accepted, expected `{message}`", path.display())
            }
        }
    }
}

/// The generators keep reaching the emitters: a fixed sample of random models holds accepted
/// ones (a generator whose every model is rejected would test only the validator).
#[test]
fn the_generators_reach_the_emitters() {
    use proptest::strategy::ValueTree;
    use proptest::test_runner::{Config, RngAlgorithm, TestRng, TestRunner};
    let mut runner = TestRunner::new_with_rng(
        Config::default(),
        TestRng::from_seed(RngAlgorithm::ChaCha, &[7; 32]),
    );
    let sample = |runner: &mut TestRunner, plain: bool| -> (usize, usize) {
        let mut ok = 0;
        for _ in 0..100 {
            let m = if plain {
                hostile::plain_model().new_tree(runner).unwrap().current()
            } else {
                hostile::model().new_tree(runner).unwrap().current()
            };
            let (model, rendered) = hostile::compile_text(&m.render());
            if model.is_none() && plain && std::env::var("HOSTILE_DEBUG").is_ok() {
                eprintln!("{}", rendered.lines().next().unwrap_or_default());
            }
            ok += usize::from(model.is_some());
        }
        (ok, 100)
    };
    let mut derived = 0;
    for _ in 0..100 {
        let source = hostile::derive_struct()
            .new_tree(&mut runner)
            .unwrap()
            .current()
            .render();
        let input: syn::DeriveInput = syn::parse_str(&source).expect("a struct");
        match tenancy_core::derive::derive_table(&input) {
            Ok(_) => derived += 1,
            Err(e) if std::env::var("HOSTILE_DEBUG").is_ok() => {
                eprintln!(
                    "derive: {}",
                    e.to_string().lines().next().unwrap_or_default()
                );
            }
            Err(_) => {}
        }
    }
    let (plain, n) = sample(&mut runner, true);
    let (hostile, _) = sample(&mut runner, false);
    eprintln!(
        "accepted: {plain}/{n} plain models, {hostile}/{n} hostile models, {derived}/100 structs"
    );
    assert!(derived >= 3, "only {derived}/100 derive structs accepted");
    assert!(plain >= 30, "only {plain}/{n} plain models accepted");
    assert!(hostile >= 3, "only {hostile}/{n} hostile models accepted");
}

/// The committed example models pass the same end-to-end check; in particular each diffs
/// empty against itself through its snapshot (issue 24: a model with colliding generated
/// names did not, so every `generate` added a migration).
#[test]
fn the_example_models_diff_empty_against_themselves() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    for dir in [
        "examples/rag/policies",
        "examples/legacy/policies",
        "tests/adopter",
    ] {
        let sources = tenancy_core::dsl::read_dir(&root.join(dir)).expect(dir);
        let (model, diags) = tenancy_core::dsl::compile(&sources);
        let model = model.unwrap_or_else(|| panic!("{dir}: {}", diags.render(&sources, false)));
        let text: String = sources.iter().map(|s| s.text.clone()).collect();
        hostile::check_accepted(&model, &text);
    }
}
