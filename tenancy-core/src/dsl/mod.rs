//! The `.tenancy` policy language: lexer, parser, validator and diagnostics.
//!
//! [`compile`] turns policy files into a validated [`Model`], reporting every syntax and
//! semantic problem at once as rustc-style [`Diagnostics`]. The language is described in
//! `docs/dsl.md`.

pub(crate) mod ast;
mod diagnostic;
mod lexer;
mod parser;
mod validate;

use std::path::{Path, PathBuf};

pub use diagnostic::{Diagnostic, Diagnostics, Severity, Span, MAX_RENDERED};
pub(crate) use parser::parse_condition_text;

use crate::model::Model;

/// One policy file: its name (as shown in diagnostics) and its text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceFile {
    /// The name diagnostics show, usually the path as given.
    pub name: String,
    /// The file contents.
    pub text: String,
}

impl SourceFile {
    /// A source file from a name and its text.
    pub fn new(name: impl Into<String>, text: impl Into<String>) -> SourceFile {
        SourceFile {
            name: name.into(),
            text: text.into(),
        }
    }
}

/// Why [`compile_dir`] produced no model.
#[derive(Debug, thiserror::Error)]
pub enum CompileError {
    /// The directory or one of its files could not be read.
    #[error("cannot read policy files in {}: {source}", dir.display())]
    Io {
        /// The directory being read.
        dir: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// The directory holds no `*.tenancy` file.
    #[error("no `*.tenancy` files in {}", dir.display())]
    NoSources {
        /// The directory searched.
        dir: PathBuf,
    },
    /// The policy has errors; `rendered` holds them, rustc-style, without colour.
    #[error("{rendered}")]
    Invalid {
        /// Every diagnostic, rendered.
        rendered: String,
        /// The diagnostics themselves.
        diagnostics: Diagnostics,
        /// The files they point into.
        sources: Vec<SourceFile>,
    },
}

/// Parses and validates the given files as one model. Returns `Some(model)` only when there
/// is no error; warnings (and errors) are in the returned [`Diagnostics`] either way.
pub fn compile(sources: &[SourceFile]) -> (Option<Model>, Diagnostics) {
    compile_with(sources, Vec::new())
}

/// [`compile`] with more syntax trees that were not parsed from `sources` (the
/// `#[derive(TenantScoped)]` front end builds its tables as [`ast::TableDecl`]s whose spans
/// point into Rust files): they are validated together with the parsed files, as one model.
pub(crate) fn compile_with(
    sources: &[SourceFile],
    built: Vec<ast::File>,
) -> (Option<Model>, Diagnostics) {
    let mut diags = Diagnostics::new();
    let mut files: Vec<ast::File> = sources
        .iter()
        .enumerate()
        .map(|(index, source)| {
            let tokens = lexer::lex(index, &source.text, &mut diags);
            parser::parse(index, tokens, &mut diags)
        })
        .collect();
    files.extend(built);
    // Like rustc, semantic checks wait until the syntax is right: a half-parsed item
    // would only produce follow-up errors.
    let model = if diags.has_errors() {
        None
    } else {
        validate::validate(&files, &mut diags)
    };
    diags.sort();
    (model, diags)
}

/// Validates one table declared on its own (a `#[derive(TenantScoped)]` struct inside the
/// compiler): every check of [`compile`] that needs no other table, the `tenancy` block or
/// the roles. The model table is returned only when there is no error.
pub(crate) fn validate_table_alone(
    decl: &ast::TableDecl,
) -> (Option<crate::model::Table>, Diagnostics) {
    let mut diags = Diagnostics::new();
    let table = validate::validate_table_alone(decl, &mut diags);
    diags.sort();
    (table, diags)
}

/// Reads every `*.tenancy` file in `dir`, sorted by file name, into [`SourceFile`]s named
/// by their path (`dir` joined with the file name).
pub fn read_dir(dir: &Path) -> std::io::Result<Vec<SourceFile>> {
    let mut paths: Vec<PathBuf> = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path.is_file() && path.extension().is_some_and(|e| e == "tenancy") {
            paths.push(path);
        }
    }
    paths.sort_by(|a, b| a.file_name().cmp(&b.file_name()));
    paths
        .into_iter()
        .map(|path| {
            let text = std::fs::read_to_string(&path)?;
            Ok(SourceFile {
                name: path.display().to_string(),
                text,
            })
        })
        .collect()
}

/// Reads and compiles every `*.tenancy` file in `dir`. On success the diagnostics hold
/// only warnings (possibly none).
pub fn compile_dir(dir: &Path) -> Result<(Model, Diagnostics), CompileError> {
    let sources = read_dir(dir).map_err(|source| CompileError::Io {
        dir: dir.to_path_buf(),
        source,
    })?;
    if sources.is_empty() {
        return Err(CompileError::NoSources {
            dir: dir.to_path_buf(),
        });
    }
    match compile(&sources) {
        (Some(model), diagnostics) => Ok((model, diagnostics)),
        (None, diagnostics) => Err(CompileError::Invalid {
            rendered: diagnostics.render(&sources, false),
            diagnostics,
            sources,
        }),
    }
}

/// The candidate closest to `word` by edit distance, if it is close enough to be a likely
/// typo (at most a third of the longer word, at least 1; same word in another case counts).
pub(crate) fn suggest<'c, S: AsRef<str>>(word: &str, candidates: &'c [S]) -> Option<&'c str> {
    let lower = word.to_ascii_lowercase();
    candidates
        .iter()
        .map(AsRef::as_ref)
        .filter(|c| *c != word)
        .map(|c| (strsim::damerau_levenshtein(&lower, c), c))
        .filter(|(distance, c)| *distance <= (lower.len().max(c.len()) / 3).max(1))
        .min_by_key(|(distance, _)| *distance)
        .map(|(_, c)| c)
}
