//! The shared test vectors of the signed context (`tests/python/context_vectors.json`): the
//! Rust runtime mints exactly the committed tokens. `tests/python/test_vectors.py` checks the
//! generated Python runtime against the same file, so both mint byte-identical tokens.

#![allow(clippy::expect_used, clippy::unwrap_used)] // tests panic on broken fixtures

use serde_json::Value;
use tenancy_runtime::ContextKey;
use tenancy_tests::{context_value, repo_root, ROLES};

fn vectors() -> Value {
    let path = repo_root().join("tests/python/context_vectors.json");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).expect("context_vectors.json is JSON")
}

#[test]
fn rust_mints_the_committed_tokens() {
    let vectors = vectors();
    let tokens = vectors["tokens"].as_array().expect("tokens");
    assert!(tokens.len() >= 5, "too few vectors");
    for vector in tokens {
        let key = ContextKey::parse(vector["key"].as_str().unwrap()).expect("key parses");
        let expires = vector["expires"].as_u64().unwrap();
        let claims = vector["claims"].as_str().unwrap();
        let token = key.mint_until(claims, expires).unwrap();
        assert_eq!(token, vector["token"].as_str().unwrap(), "vector {vector}");
    }
}

/// The claims vectors against the tests' own oracle of docs/context.md (the runtime's claims
/// function is private; `tests/python_live.rs` compares the Rust runtime's claims of real
/// authorized scopes with the Python runtime's).
#[test]
fn claims_vectors_follow_the_contract() {
    let vectors = vectors();
    for vector in vectors["claims"].as_array().expect("claims") {
        let mut memberships: Vec<(uuid::Uuid, usize)> = vector["memberships"]
            .as_array()
            .map(|list| {
                list.iter()
                    .map(|m| {
                        let project = m[0].as_str().unwrap().parse().unwrap();
                        (project, usize::try_from(m[1].as_u64().unwrap()).unwrap())
                    })
                    .collect()
            })
            .unwrap_or_default();
        memberships.sort();
        let entries = memberships
            .iter()
            .map(|(project, rank)| format!("{project}:{}", ROLES[*rank]))
            .collect::<Vec<_>>()
            .join(",");
        let claims = context_value(
            vector["tenant"].as_str().unwrap(),
            vector["user"].as_str().unwrap(),
            &entries,
        );
        assert_eq!(
            claims,
            vector["claims"].as_str().unwrap(),
            "vector {vector}"
        );
    }
}
