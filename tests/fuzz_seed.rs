//! Hostile seed files (issue 23, item 3; docs/reliability.md): random text and one-byte
//! mutations, truncations and insertions of the sample seed `examples/rag/seeds/dev.toml` never
//! panic, are parsed within a bounded time, and every refusal is one line naming
//! `seed.toml:<line>` (or the file). Bounded cases (`PROPTEST_CASES` overrides).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::{Duration, Instant};

use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use tenancy_seed::{SeedError, SeedFile};
use tenancy_tests::repo_root;

fn runner(default: u32) -> TestRunner {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default);
    TestRunner::new(Config {
        cases,
        failure_persistence: None,
        ..Config::default()
    })
}

/// Parses `text`; a refusal must be one line that names the file.
fn check(text: &str) -> Result<(), TestCaseError> {
    let started = Instant::now();
    let outcome = std::panic::catch_unwind(|| SeedFile::parse("seed.toml", text));
    prop_assert!(outcome.is_ok(), "the parser panicked on {:?}", text);
    prop_assert!(
        started.elapsed() < Duration::from_secs(1),
        "{:?} for {} bytes",
        started.elapsed(),
        text.len()
    );
    if let Ok(Err(error)) = outcome {
        let message = error.to_string();
        prop_assert!(!message.contains('\n'), "not one line: {}", message);
        match error {
            SeedError::At { file, line, .. } => {
                prop_assert_eq!(file, "seed.toml");
                prop_assert!(
                    line >= 1 && line <= text.lines().count().max(1) + 1,
                    "line {}",
                    line
                );
            }
            SeedError::File { file, .. } => prop_assert_eq!(file, "seed.toml"),
            other => prop_assert!(false, "unexpected error kind: {}", other),
        }
    }
    Ok(())
}

#[test]
fn mutated_and_random_seed_files_are_parsed_or_refused_in_one_line() {
    let sample = std::fs::read_to_string(repo_root().join("examples/rag/seeds/dev.toml")).unwrap();
    assert!(SeedFile::parse("seed.toml", &sample).is_ok());
    let len = sample.len();
    runner(256)
        .run(&(0..len, any::<u8>(), 0..3u8), |(at, byte, how)| {
            let mut bytes = sample.clone().into_bytes();
            match how {
                0 => bytes[at] = byte,
                1 => bytes.truncate(at),
                _ => bytes.insert(at, byte),
            }
            match String::from_utf8(bytes) {
                Ok(text) => check(&text),
                Err(_) => Ok(()),
            }
        })
        .unwrap();
    runner(256)
        .run(
            &prop_oneof![
                ".{0,200}",
                "(\\[\\[tenant(\\.project(\\.member)?)?\\]\\]\n([a-z]{1,6} = \"[^\"\n]{0,12}\"\n){0,3}){0,6}",
            ],
            |text| check(&text),
        )
        .unwrap();
    // Deep nesting and long lines stay bounded too.
    for text in [
        format!("x = {}{}", "[".repeat(5000), "]".repeat(5000)),
        format!("[[tenant]]\nslug = \"{}\"\n", "a".repeat(1 << 20)),
        "[[tenant]]\n".repeat(20_000),
    ] {
        check(&text).unwrap();
    }
}
