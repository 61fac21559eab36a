//! Spans of the Rust tokens a derived table was read from, as DSL [`Span`]s.
//!
//! The derive front end builds the same syntax tree as the DSL parser
//! ([`crate::dsl::ast::TableDecl`]), so the one validator checks both; its diagnostics carry
//! DSL spans. [`SpanMap`] makes those spans point back at the Rust tokens:
//!
//! - inside the compiler ([`SpanMap::recorded`]) a span is an index into the recorded
//!   tokens, and [`SpanMap::error`] turns a diagnostic into a `syn::Error` spanned on them;
//! - for a Rust file read by the CLI ([`SpanMap::located`]) a span is the tokens' byte range
//!   in the file (proc-macro2's `span-locations`), so the diagnostic is rendered rustc-style
//!   on the Rust source.

use proc_macro2::{LineColumn, TokenStream};
use quote::ToTokens;

use crate::dsl::{Diagnostic, Span};

/// Where the spans of one derived table point.
pub(crate) enum SpanMap<'t> {
    /// Inside the compiler: `start` is the index of the recorded tokens.
    Recorded(Vec<TokenStream>),
    /// A Rust source file: byte offsets into `text`, which is source `file` of the
    /// diagnostics.
    Located {
        /// The index of the file among the sources the diagnostics are rendered with.
        file: usize,
        /// The file's text.
        text: &'t str,
        /// The byte offset where each line starts.
        line_starts: Vec<usize>,
    },
}

impl<'t> SpanMap<'t> {
    /// Spans for a derive expanded by the compiler.
    pub(crate) fn recorded() -> SpanMap<'static> {
        SpanMap::Recorded(Vec::new())
    }

    /// Spans into `text`, source number `file`.
    pub(crate) fn located(file: usize, text: &'t str) -> SpanMap<'t> {
        let mut line_starts = vec![0];
        line_starts.extend(text.match_indices('\n').map(|(at, _)| at + 1));
        SpanMap::Located {
            file,
            text,
            line_starts,
        }
    }

    /// The span of `tokens` (from their first to their last token).
    pub(crate) fn of(&mut self, tokens: impl ToTokens) -> Span {
        let tokens = tokens.into_token_stream();
        match self {
            SpanMap::Recorded(recorded) => {
                recorded.push(tokens);
                let index = recorded.len() - 1;
                Span::new(0, index, index + 1)
            }
            SpanMap::Located {
                file,
                text,
                line_starts,
            } => {
                let mut iter = tokens.into_iter();
                let Some(first) = iter.next() else {
                    return Span::new(*file, 0, 0);
                };
                let last = iter.last().unwrap_or_else(|| first.clone());
                let start = byte_offset(text, line_starts, first.span().start());
                let end = byte_offset(text, line_starts, last.span().end());
                Span::new(*file, start, end.max(start))
            }
        }
    }

    /// The diagnostic as a `syn::Error` on the recorded tokens it points at (at the
    /// `fallback` tokens when it points nowhere, or the spans are located). The message
    /// carries the label and the help and notes, as rustc would show them.
    pub(crate) fn error(&self, diagnostic: &Diagnostic, fallback: impl ToTokens) -> syn::Error {
        let mut message = diagnostic.message().to_owned();
        if let Some(label) = diagnostic.label().filter(|l| !l.is_empty()) {
            message.push_str(&format!(" ({label})"));
        }
        for note in diagnostic.notes() {
            message.push_str(&format!("\n= note: {note}"));
        }
        for help in diagnostic.help() {
            message.push_str(&format!("\n= help: {help}"));
        }
        let tokens = match (self, diagnostic.span()) {
            (SpanMap::Recorded(recorded), Some(span)) => recorded.get(span.start),
            _ => None,
        };
        match tokens {
            Some(tokens) => syn::Error::new_spanned(tokens, message),
            None => syn::Error::new_spanned(fallback, message),
        }
    }
}

/// The byte offset of a proc-macro2 line (1-based) and column (in characters) in `text`.
fn byte_offset(text: &str, line_starts: &[usize], at: LineColumn) -> usize {
    let Some(&line_start) = at.line.checked_sub(1).and_then(|i| line_starts.get(i)) else {
        return 0;
    };
    let line = &text[line_start..];
    let within = line
        .char_indices()
        .nth(at.column)
        .map_or(line.len(), |(offset, _)| offset);
    line_start + within
}

#[cfg(test)]
mod tests {
    #![allow(clippy::expect_used, clippy::unwrap_used)]

    use super::*;

    #[test]
    fn located_spans_are_byte_ranges_of_the_tokens() {
        let text = "// é\nstruct Note {\n    body: Option<String>,\n}\n";
        let file = syn::parse_file(text).expect("valid");
        let syn::Item::Struct(item) = &file.items[0] else {
            panic!("a struct")
        };
        let field = item.fields.iter().next().expect("a field");
        let mut spans = SpanMap::located(3, text);
        let span = spans.of(&field.ty);
        assert_eq!(span.file, 3);
        assert_eq!(&text[span.start..span.end], "Option<String>");
        let span = spans.of(&item.ident);
        assert_eq!(&text[span.start..span.end], "Note");
    }

    #[test]
    fn recorded_spans_index_the_tokens() {
        let mut spans = SpanMap::recorded();
        let a = spans.of(quote::quote!(a));
        let b = spans.of(quote::quote!(b c));
        assert_eq!((a.start, b.start), (0, 1));
        let diagnostic = Diagnostic::error("bad", b, "here").with_help("fix it");
        let error = spans.error(&diagnostic, quote::quote!(x));
        assert_eq!(error.to_string(), "bad (here)\n= help: fix it");
    }
}
