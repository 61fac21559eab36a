//! The lexer: turns source text into tokens, reporting bad characters and unterminated
//! strings without stopping (the bad part is skipped or closed at the end of the line).

use super::diagnostic::{Diagnostic, Diagnostics, Span};

/// What a token is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenKind {
    /// A word: keyword or identifier (keywords are contextual, decided by the parser).
    Ident(String),
    /// A string literal, with quotes removed and `''` unescaped.
    Str(String),
    /// An integer literal (optionally negative), kept as written.
    Int(String),
    /// A decimal literal (optionally negative), kept as written.
    Decimal(String),
    /// `/// text` (the text after `///`, one leading space removed).
    DocComment(String),
    /// `{`
    LBrace,
    /// `}`
    RBrace,
    /// `(`
    LParen,
    /// `)`
    RParen,
    /// `,`
    Comma,
    /// `<`
    Lt,
    /// `>`
    Gt,
    /// `=`
    Eq,
    /// `?`
    Question,
    /// End of the file.
    Eof,
}

impl TokenKind {
    /// How the token is named in "expected ..., found ..." messages.
    pub fn describe(&self) -> String {
        match self {
            TokenKind::Ident(s) => format!("`{s}`"),
            TokenKind::Str(_) => "a string".to_owned(),
            TokenKind::Int(s) | TokenKind::Decimal(s) => format!("`{s}`"),
            TokenKind::DocComment(_) => "a doc comment".to_owned(),
            TokenKind::LBrace => "`{`".to_owned(),
            TokenKind::RBrace => "`}`".to_owned(),
            TokenKind::LParen => "`(`".to_owned(),
            TokenKind::RParen => "`)`".to_owned(),
            TokenKind::Comma => "`,`".to_owned(),
            TokenKind::Lt => "`<`".to_owned(),
            TokenKind::Gt => "`>`".to_owned(),
            TokenKind::Eq => "`=`".to_owned(),
            TokenKind::Question => "`?`".to_owned(),
            TokenKind::Eof => "end of file".to_owned(),
        }
    }
}

/// One token with its place.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Token {
    /// What it is.
    pub kind: TokenKind,
    /// Where it is.
    pub span: Span,
    /// True when it is the first token on its line (items end at line ends).
    pub line_start: bool,
}

/// Splits `text` (file number `file`) into tokens; lexical errors go to `diags`.
/// The result always ends with an [`TokenKind::Eof`] token.
pub fn lex(file: usize, text: &str, diags: &mut Diagnostics) -> Vec<Token> {
    let bytes = text.as_bytes();
    let mut tokens = Vec::new();
    let mut pos = 0;
    let mut line_start = true;
    while pos < bytes.len() {
        let c = bytes[pos];
        let start = pos;
        let span_to = |end: usize| Span::new(file, start, end);
        match c {
            b'\n' => {
                line_start = true;
                pos += 1;
                continue;
            }
            b' ' | b'\t' | b'\r' => {
                pos += 1;
                continue;
            }
            b'/' if bytes.get(pos + 1) == Some(&b'/') => {
                let end = line_end(bytes, pos);
                let is_doc = bytes.get(pos + 2) == Some(&b'/') && bytes.get(pos + 3) != Some(&b'/');
                if is_doc {
                    let body = &text[pos + 3..end];
                    let body = body.strip_prefix(' ').unwrap_or(body).trim_end();
                    tokens.push(Token {
                        kind: TokenKind::DocComment(body.to_owned()),
                        span: span_to(end),
                        line_start,
                    });
                    line_start = false;
                }
                pos = end;
                continue;
            }
            b'{' | b'}' | b'(' | b')' | b',' | b'<' | b'>' | b'=' | b'?' => {
                let kind = match c {
                    b'{' => TokenKind::LBrace,
                    b'}' => TokenKind::RBrace,
                    b'(' => TokenKind::LParen,
                    b')' => TokenKind::RParen,
                    b',' => TokenKind::Comma,
                    b'<' => TokenKind::Lt,
                    b'>' => TokenKind::Gt,
                    b'=' => TokenKind::Eq,
                    _ => TokenKind::Question,
                };
                pos += 1;
                tokens.push(Token {
                    kind,
                    span: span_to(pos),
                    line_start,
                });
            }
            b'\'' | b'"' => {
                let (value, end) = lex_string(text, pos, file, diags);
                pos = end;
                tokens.push(Token {
                    kind: TokenKind::Str(value),
                    span: span_to(pos),
                    line_start,
                });
            }
            b'0'..=b'9' | b'-'
                if c != b'-' || bytes.get(pos + 1).is_some_and(u8::is_ascii_digit) =>
            {
                pos += 1;
                while pos < bytes.len() && bytes[pos].is_ascii_digit() {
                    pos += 1;
                }
                let mut decimal = false;
                if bytes.get(pos) == Some(&b'.')
                    && bytes.get(pos + 1).is_some_and(u8::is_ascii_digit)
                {
                    decimal = true;
                    pos += 1;
                    while pos < bytes.len() && bytes[pos].is_ascii_digit() {
                        pos += 1;
                    }
                }
                let raw = text[start..pos].to_owned();
                let kind = if decimal {
                    TokenKind::Decimal(raw)
                } else {
                    TokenKind::Int(raw)
                };
                tokens.push(Token {
                    kind,
                    span: span_to(pos),
                    line_start,
                });
            }
            c if c.is_ascii_alphabetic() || c == b'_' => {
                while pos < bytes.len()
                    && (bytes[pos].is_ascii_alphanumeric() || bytes[pos] == b'_')
                {
                    pos += 1;
                }
                tokens.push(Token {
                    kind: TokenKind::Ident(text[start..pos].to_owned()),
                    span: span_to(pos),
                    line_start,
                });
            }
            _ => {
                // One diagnostic for a whole run of characters no token starts with, so a
                // long line of garbage is one error, not one per character.
                let ch = text[pos..].chars().next().unwrap_or('\u{fffd}');
                let mut count = 0usize;
                while let Some(next) = text.get(pos..).and_then(|rest| rest.chars().next()) {
                    if count > 0 && starts_token(next) {
                        break;
                    }
                    pos += next.len_utf8();
                    count += 1;
                }
                let message = if count == 1 {
                    format!("unexpected character `{}`", ch.escape_debug())
                } else {
                    format!(
                        "{count} unexpected characters, starting with `{}`",
                        ch.escape_debug()
                    )
                };
                diags.push(
                    Diagnostic::error(message, span_to(pos), "not valid in a policy file")
                        .with_help("comments start with `//`; strings are quoted"),
                );
                continue;
            }
        }
        line_start = false;
    }
    tokens.push(Token {
        kind: TokenKind::Eof,
        span: Span::new(file, text.len(), text.len()),
        line_start: true,
    });
    tokens
}

/// Byte offset of the `\n` ending the line that contains `pos` (or the text length).
/// True when `c` can start a token or is whitespace: where a run of unexpected characters ends.
fn starts_token(c: char) -> bool {
    c.is_ascii_alphanumeric()
        || c.is_ascii_whitespace()
        || matches!(
            c,
            '_' | '/'
                | '{'
                | '}'
                | '('
                | ')'
                | ','
                | '<'
                | '>'
                | '='
                | '?'
                | '\''
                | '"'
                | '-'
                | '.'
        )
}

fn line_end(bytes: &[u8], pos: usize) -> usize {
    bytes[pos..]
        .iter()
        .position(|&b| b == b'\n')
        .map_or(bytes.len(), |i| pos + i)
}

/// Lexes a quoted string starting at `start`. Single-quoted strings use SQL escaping
/// (`''` is one quote); strings never span lines. Returns the value and the end offset.
fn lex_string(text: &str, start: usize, file: usize, diags: &mut Diagnostics) -> (String, usize) {
    let bytes = text.as_bytes();
    let quote = bytes[start];
    let mut value = String::new();
    let mut pos = start + 1;
    let mut run_start = pos;
    loop {
        match bytes.get(pos) {
            None | Some(b'\n') => {
                value.push_str(&text[run_start..pos]);
                let end = if pos > start + 1 && bytes.get(pos - 1) == Some(&b'\r') {
                    pos - 1
                } else {
                    pos
                };
                let q = quote as char;
                diags.push(
                    Diagnostic::error(
                        "unterminated string literal",
                        Span::new(file, start, end.max(start + 1)),
                        "this string is never closed",
                    )
                    .with_help(format!("close it with `{q}` on the same line")),
                );
                return (value, pos);
            }
            Some(&b) if b == quote => {
                value.push_str(&text[run_start..pos]);
                if quote == b'\'' && bytes.get(pos + 1) == Some(&b'\'') {
                    value.push('\'');
                    pos += 2;
                    run_start = pos;
                    continue;
                }
                return (value, pos + 1);
            }
            Some(_) => pos += 1,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kinds(text: &str) -> (Vec<TokenKind>, Diagnostics) {
        let mut diags = Diagnostics::new();
        let tokens = lex(0, text, &mut diags);
        (tokens.into_iter().map(|t| t.kind).collect(), diags)
    }

    #[test]
    fn sql_strings_unescape_doubled_quotes_and_numbers_keep_their_sign() {
        let (tokens, diags) = kinds("x 'it''s' -7 1.5 \"v\"");
        assert!(!diags.has_errors());
        assert_eq!(
            tokens,
            [
                TokenKind::Ident("x".into()),
                TokenKind::Str("it's".into()),
                TokenKind::Int("-7".into()),
                TokenKind::Decimal("1.5".into()),
                TokenKind::Str("v".into()),
                TokenKind::Eof,
            ]
        );
    }

    #[test]
    fn doc_comments_are_tokens_and_plain_comments_vanish() {
        let (tokens, _) = kinds("// plain\n/// Doc line\n//// not doc\na");
        assert_eq!(
            tokens,
            [
                TokenKind::DocComment("Doc line".into()),
                TokenKind::Ident("a".into()),
                TokenKind::Eof
            ]
        );
    }

    #[test]
    fn bad_characters_and_open_strings_are_reported_and_skipped() {
        let (tokens, diags) = kinds("a $ b 'open\nc");
        assert_eq!(
            diags.messages(),
            ["unexpected character `$`", "unterminated string literal"]
        );
        assert_eq!(tokens.len(), 5, "{tokens:?}");
        let mut diags = Diagnostics::new();
        let line_starts: Vec<bool> = lex(0, "a b\n c", &mut diags)
            .iter()
            .map(|t| t.line_start)
            .collect();
        assert_eq!(line_starts, [true, false, true, true]);
    }
}
