//! No product crate hard-codes the RAG demo's tables or columns (issue 17: "the model drives
//! the runtime"). The demo's names are `chunks`, `documents`, `document_id`, `embedding`,
//! `assertions`, `responses` and `queries`; they belong in `policies/`, `generated/`, the
//! examples and the tests, never in `tenancy-*/src`.
//!
//! Every `.rs` file under the product crates' `src/` is scanned, doc comments included, up to
//! its unit-test module (`#[cfg(test)]` at the end of a file is test code, which may use the
//! example model). A hit is a whole-word demo name
//! * inside a string literal (SQL text, attribute strings),
//! * as an identifier in code (a `.chunks(` method call on a slice is not one),
//! * inside backticks or a fenced code block of a comment (doc examples, `table documents`).
//!
//! English prose in comments is not a hit ("the runtime's own queries"). There are no
//! exceptions.

use std::path::{Path, PathBuf};

/// The demo's table and column names.
const DEMO_NAMES: [&str; 7] = [
    "chunks",
    "documents",
    "document_id",
    "embedding",
    "assertions",
    "responses",
    "queries",
];

/// The product crates (their `src/` is scanned).
const PRODUCT_CRATES: [&str; 8] = [
    "tenancy-core",
    "tenancy-macros",
    "tenancy-runtime",
    "tenancy-cli",
    "tenancy-audit",
    "tenancy-migrate",
    "tenancy-seed",
    "tenancy-verify",
];

/// One hit: path relative to the workspace, 1-based line, the name and the trimmed line.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Hit {
    path: String,
    line: usize,
    name: &'static str,
    text: String,
}

fn is_word_byte(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || byte == b'_'
}

/// The demo names occurring as whole words in `text`, with their byte offsets.
fn words_in(text: &str) -> Vec<(usize, &'static str)> {
    let bytes = text.as_bytes();
    let mut found = Vec::new();
    for name in DEMO_NAMES {
        let mut from = 0;
        while let Some(offset) = text[from..].find(name) {
            let start = from + offset;
            let end = start + name.len();
            let before = start == 0 || !is_word_byte(bytes[start - 1]);
            let after = end == bytes.len() || !is_word_byte(bytes[end]);
            if before && after {
                found.push((start, name));
            }
            from = end;
        }
    }
    found.sort();
    found
}

/// What part of the source a byte is in.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Part {
    Code,
    Str,
    Comment,
}

/// Splits a Rust source into code, string literal and comment bytes (a small lexer: line and
/// block comments, `"..."` with escapes, `r#"..."#` raw strings, char literals vs lifetimes).
fn classify(source: &str) -> Vec<Part> {
    let bytes = source.as_bytes();
    let mut parts = vec![Part::Code; bytes.len()];
    let mut i = 0;
    while i < bytes.len() {
        let rest = &bytes[i..];
        if rest.starts_with(b"//") {
            let end = source[i..].find('\n').map_or(bytes.len(), |n| i + n);
            parts[i..end].fill(Part::Comment);
            i = end;
        } else if rest.starts_with(b"/*") {
            let end = source[i + 2..]
                .find("*/")
                .map_or(bytes.len(), |n| i + 2 + n + 2);
            parts[i..end].fill(Part::Comment);
            i = end;
        } else if rest.starts_with(b"r#\"") || rest.starts_with(b"r\"") {
            let hashes = rest[1..].iter().take_while(|b| **b == b'#').count();
            let close = format!("\"{}", "#".repeat(hashes));
            let body = i + 2 + hashes;
            let end = source[body..]
                .find(&close)
                .map_or(bytes.len(), |n| body + n + close.len());
            parts[i..end].fill(Part::Str);
            i = end;
        } else if bytes[i] == b'"'
            && (i == 0 || !is_word_byte(bytes[i - 1]) || bytes[i - 1] == b'b')
        {
            let mut j = i + 1;
            while j < bytes.len() && bytes[j] != b'"' {
                j += if bytes[j] == b'\\' { 2 } else { 1 };
            }
            let end = (j + 1).min(bytes.len());
            parts[i..end].fill(Part::Str);
            i = end;
        } else if bytes[i] == b'\'' {
            // A char literal ('x', '\n', '"') or a lifetime ('a).
            let closing = if rest.get(1) == Some(&b'\\') {
                rest.iter().skip(2).position(|b| *b == b'\'').map(|p| p + 2)
            } else if rest.get(2) == Some(&b'\'') {
                Some(2)
            } else {
                None
            };
            match closing {
                Some(offset) => {
                    parts[i..=i + offset].fill(Part::Str);
                    i += offset + 1;
                }
                None => i += 1,
            }
        } else {
            i += 1;
        }
    }
    parts
}

/// True when the comment text before `offset` on its line holds an odd number of backticks,
/// or the line is inside a fenced code block.
fn in_comment_code(line: &str, offset: usize, in_fence: bool) -> bool {
    in_fence || line[..offset].matches('`').count() % 2 == 1
}

fn hits_in(path: &str, source: &str) -> Vec<Hit> {
    let parts = classify(source);
    let mut hits = Vec::new();
    let mut in_fence = false;
    let mut line_start = 0;
    for (index, line) in source.split('\n').enumerate() {
        let comment_line = line.trim_start().starts_with("//");
        let fence = comment_line
            && line
                .trim_start()
                .trim_start_matches('/')
                .trim_start_matches('!')
                .trim()
                .starts_with("```");
        for (offset, name) in words_in(line) {
            let at = line_start + offset;
            let hit = match parts[at] {
                Part::Str => true,
                Part::Code => {
                    // `.chunks(n)` is the slice method, not the table.
                    let method = line[..offset].ends_with('.')
                        && line[offset + name.len()..].starts_with('(')
                        && name == "chunks";
                    !method
                }
                Part::Comment => !fence && in_comment_code(line, offset, in_fence),
            };
            if hit {
                hits.push(Hit {
                    path: path.to_owned(),
                    line: index + 1,
                    name,
                    text: line.trim().to_owned(),
                });
            }
        }
        if fence {
            in_fence = !in_fence;
        }
        line_start += line.len() + 1;
    }
    hits
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let mut entries: Vec<PathBuf> = entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
    entries.sort();
    for path in entries {
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// Every hit of the product crates, one per file, line and name.
fn all_hits() -> Vec<Hit> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut hits = Vec::new();
    for krate in PRODUCT_CRATES {
        let mut files = Vec::new();
        rust_files(&root.join(krate).join("src"), &mut files);
        assert!(!files.is_empty(), "{krate}/src holds no Rust file");
        for file in files {
            let source = std::fs::read_to_string(&file).unwrap();
            // A top-level `#[cfg(test)] mod` (to the end of the file) is test code: it may
            // exercise the generator on the example model. Other `#[cfg(test)]` items are scanned.
            let source = match source.find("\n#[cfg(test)]\nmod ") {
                Some(end) => source[..end].to_owned(),
                None => source,
            };
            let relative = file
                .strip_prefix(root)
                .unwrap()
                .to_string_lossy()
                .into_owned();
            hits.extend(hits_in(&relative, &source));
        }
    }
    hits.dedup();
    hits
}

#[test]
fn the_scanner_finds_demo_names_in_sql_code_and_doc_examples_but_not_in_prose() {
    let source = r##"
//! The runtime's own queries are scoped.
//! `SELECT * FROM chunks` in backticks is a hit.
/// ```
/// sqlx::query("UPDATE documents SET x = 1");
/// ```
fn f(rows: &[u8]) -> usize {
    let sql = "SELECT document_id FROM t";
    let raw = r#"INSERT INTO queries VALUES (1)"#;
    let embedding = 1;
    let c = '"'; let d = "chunks_total";
    rows.chunks(2).count() + embedding
}
"##;
    let hits: Vec<(usize, &str)> = hits_in("x.rs", source)
        .iter()
        .map(|h| (h.line, h.name))
        .collect();
    assert_eq!(
        hits,
        [
            (3, "chunks"),
            (5, "documents"),
            (8, "document_id"),
            (9, "queries"),
            (10, "embedding"),
            (12, "embedding"),
        ]
    );
}

#[test]
fn no_product_crate_names_a_demo_table_or_column() {
    let hits = all_hits();
    let new: Vec<String> = hits
        .iter()
        .map(|hit| format!("{}:{}: `{}` in: {}", hit.path, hit.line, hit.name, hit.text))
        .collect();
    assert!(
        new.is_empty(),
        "demo names in product crates (use the model's names, or neutral ones):\n{}",
        new.join("\n")
    );
}
