//! `compile` never panics: not on arbitrary text, not on mutations of the real policy.

#![allow(clippy::expect_used, clippy::unwrap_used)] // test helpers panic on broken fixtures

use proptest::prelude::*;
use tenancy_core::dsl::{compile, SourceFile};

const RAG: &str = include_str!("../../examples/rag/policies/rag.tenancy");

/// Compiles and renders (rendering walks every span, so it is exercised too).
fn compile_and_render(text: String) {
    let sources = vec![SourceFile::new("fuzz.tenancy", text)];
    let (model, diags) = compile(&sources);
    let rendered = diags.render(&sources, false);
    assert_eq!(model.is_some(), !diags.has_errors());
    if diags.has_errors() {
        assert!(rendered.contains("error"));
    }
}

/// Applies one edit at a char boundary near `at` (a fraction of the length).
fn mutate(base: &str, at: f64, len: usize, kind: u8, insert: &str) -> String {
    let mut start = ((base.len() as f64) * at) as usize;
    while !base.is_char_boundary(start) {
        start -= 1;
    }
    let mut end = (start + len).min(base.len());
    while !base.is_char_boundary(end) {
        end -= 1;
    }
    match kind % 3 {
        0 => format!("{}{}", &base[..start], &base[end..]),
        1 => format!("{}{}{}", &base[..start], insert, &base[start..]),
        _ => format!("{}{}{}", &base[..start], insert, &base[end..]),
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 384, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_text_never_panics(text in "\\PC{0,400}") {
        compile_and_render(text);
    }

    #[test]
    fn token_soup_never_panics(words in proptest::collection::vec(
        prop_oneof![
            Just("tenancy"), Just("{"), Just("}"), Just("("), Just(")"), Just(","), Just("<"),
            Just("="), Just("?"), Just("scoped"), Just("global"), Just("table"), Just("allow"),
            Just("to"), Just("select"), Just("references"), Just("on delete set null"),
            Just("primary key"), Just("unique"), Just("index gin"), Just("default"), Just("'x"),
            Just("'{}'"), Just("\n"), Just("/// doc\n"), Just("id"), Just("uuid"), Just("vector(3)"),
            Just("-7"), Just("1.5"), Just("now()"), Just("roles"), Just("viewer"), Just("\u{e9}"),
        ],
        0..80,
    )) {
        compile_and_render(words.join(" "));
    }

    #[test]
    fn mutated_rag_policy_never_panics(
        edits in proptest::collection::vec(
            (0.0f64..1.0, 0usize..12, any::<u8>(), "[ -~\\n\u{e9}]{0,8}"),
            1..4,
        )
    ) {
        let mut text = RAG.to_owned();
        for (at, len, kind, insert) in edits {
            text = mutate(&text, at, len, kind, &insert);
        }
        compile_and_render(text);
    }
}

#[test]
fn the_unmutated_policy_is_valid() {
    let sources = vec![SourceFile::new("rag.tenancy", RAG)];
    let (model, diags) = compile(&sources);
    assert!(model.is_some() && diags.warning_count() == 0);
}
