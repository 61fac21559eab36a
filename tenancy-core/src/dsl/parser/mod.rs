//! The parser: a recursive-descent parser over the tokens of one file.
//!
//! Errors are reported to the shared [`Diagnostics`] and the parser recovers at the next
//! line (inside a table or the `tenancy` block) or at the next declaration (at the top
//! level), so one run reports every syntax error of a file.

mod blocks;
mod columns;
mod conditions;

use super::ast::{
    AdoptBlock, ColumnDecl, CommandSpec, Constraint, DefaultExpr, File, Ident, Reference,
    RolesDecl, RuleDecl, Setting, StampDecl, TableDecl, TenancyBlock, TypeExpr,
};
use super::diagnostic::{Diagnostic, Diagnostics, Span};
use super::lexer::{Token, TokenKind};
use super::suggest;
use crate::model::{Command, DefaultValue, IndexMethod, OnDelete, TableKind};

/// Table kind keywords, in the order they are suggested.
const KIND_KEYWORDS: [(&str, TableKind); 6] = [
    ("tenants", TableKind::Tenants),
    ("projects", TableKind::Projects),
    ("memberships", TableKind::Memberships),
    ("tenant_memberships", TableKind::TenantMemberships),
    ("scoped", TableKind::Scoped),
    ("global", TableKind::Global),
];

/// Rule command keywords (`all` stands for every command).
const COMMAND_KEYWORDS: [&str; 5] = ["select", "insert", "update", "delete", "all"];

/// Index access methods the DSL accepts.
const INDEX_METHODS: [&str; 2] = ["btree", "gin"];

/// Marker for "an error was reported; recover".
struct Reported;

type PResult<T> = Result<T, Reported>;

/// Parses the tokens of file number `file` (see [`super::lexer::lex`]).
pub fn parse(file: usize, tokens: Vec<Token>, diags: &mut Diagnostics) -> File {
    let mut parser = Parser {
        tokens,
        pos: 0,
        file,
        diags,
        prev_end: 0,
    };
    parser.parse_file()
}

/// Parses `text` as one rule condition (what follows `where`), for front ends that carry the
/// condition as a string (the derive's `where = "..."`). Every span points into `text`
/// (file number `file`); problems go to `diags`.
pub fn parse_condition_text(
    file: usize,
    text: &str,
    diags: &mut Diagnostics,
) -> Option<super::ast::Expr> {
    // Lexed after a `where`, as in a rule, so the condition starts mid-line.
    let tokens = super::lexer::lex(file, &format!("where {text}"), diags);
    if diags.has_errors() {
        return None;
    }
    let mut parser = Parser {
        tokens,
        pos: 0,
        file,
        diags,
        prev_end: 0,
    };
    let start = parser.bump().span;
    let expr = parser.parse_condition(start).ok()?;
    if !parser.at_eof() {
        parser.expected("the end of the condition");
        return None;
    }
    Some(expr)
}

struct Parser<'d> {
    tokens: Vec<Token>,
    pos: usize,
    file: usize,
    diags: &'d mut Diagnostics,
    /// End offset of the last consumed token (for item spans).
    prev_end: usize,
}

fn kind_for(word: &str) -> Option<TableKind> {
    KIND_KEYWORDS
        .iter()
        .find(|(k, _)| *k == word)
        .map(|(_, kind)| *kind)
}

impl Parser<'_> {
    // ---- token access -------------------------------------------------------------

    fn peek_at(&self, offset: usize) -> &Token {
        let last = self.tokens.len().saturating_sub(1);
        &self.tokens[(self.pos + offset).min(last)]
    }

    fn peek(&self) -> &Token {
        self.peek_at(0)
    }

    fn peek_kind(&self) -> &TokenKind {
        &self.peek().kind
    }

    fn at_eof(&self) -> bool {
        matches!(self.peek_kind(), TokenKind::Eof)
    }

    /// True when the next token is the word `word`.
    fn at_word(&self, word: &str) -> bool {
        self.word_at(0) == Some(word)
    }

    fn word_at(&self, offset: usize) -> Option<&str> {
        match &self.peek_at(offset).kind {
            TokenKind::Ident(w) => Some(w.as_str()),
            _ => None,
        }
    }

    /// True when the next token continues the current item (it is on the same line).
    fn same_line(&self) -> bool {
        !self.peek().line_start && !self.at_eof()
    }

    fn bump(&mut self) -> Token {
        let token = self.peek().clone();
        if !self.at_eof() {
            self.pos += 1;
        }
        self.prev_end = token.span.end;
        token
    }

    fn span_from(&self, start: Span) -> Span {
        Span::new(self.file, start.start, self.prev_end.max(start.end))
    }

    /// Reports "expected X, found Y" at the next token.
    fn expected(&mut self, what: &str) -> Reported {
        let token = self.peek().clone();
        let found = token.kind.describe();
        let label = format!("expected {what}");
        self.diags.push(Diagnostic::error(
            format!("expected {what}, found {found}"),
            token.span,
            label,
        ));
        Reported
    }

    fn expect(&mut self, kind: &TokenKind, what: &str) -> PResult<Token> {
        if self.peek_kind() == kind {
            Ok(self.bump())
        } else {
            Err(self.expected(what))
        }
    }

    fn expect_word(&mut self, word: &str) -> PResult<Token> {
        if self.at_word(word) {
            Ok(self.bump())
        } else {
            Err(self.expected(&format!("`{word}`")))
        }
    }

    fn ident(&mut self, what: &str) -> PResult<Ident> {
        match self.peek_kind().clone() {
            TokenKind::Ident(name) => {
                let span = self.bump().span;
                Ok(Ident { name, span })
            }
            _ => Err(self.expected(what)),
        }
    }

    /// True at the start of a line that begins a new top-level declaration.
    fn at_declaration_start(&self) -> bool {
        if !self.peek().line_start {
            return false;
        }
        match self.word_at(0) {
            Some("tenancy") | Some("adopt") => matches!(self.peek_at(1).kind, TokenKind::LBrace),
            Some("table") => true,
            Some(_) => self.word_at(1) == Some("table"),
            None => false,
        }
    }

    // ---- recovery -----------------------------------------------------------------

    /// Skips to the next top-level declaration (or the end of the file).
    fn recover_top(&mut self) {
        let start = self.pos;
        loop {
            let at_next_declaration = self.pos > start && self.at_declaration_start();
            if self.at_eof() || at_next_declaration {
                return;
            }
            self.bump();
        }
    }

    /// Skips the rest of an item: to the next line, a `}` or the end of the file.
    fn recover_item(&mut self, item_start: usize) {
        loop {
            let at_next_line = self.pos > item_start && self.peek().line_start;
            if self.at_eof() || matches!(self.peek_kind(), TokenKind::RBrace) || at_next_line {
                return;
            }
            self.bump();
        }
    }

    /// After an item: anything else on the same line is an error.
    fn end_of_item(&mut self, what: &str, item_start: usize) {
        if self.same_line() && !matches!(self.peek_kind(), TokenKind::RBrace) {
            let token = self.peek().clone();
            self.diags.push(
                Diagnostic::error(
                    format!("unexpected {} after {what}", token.kind.describe()),
                    token.span,
                    "expected the end of the line",
                )
                .with_help("write one item per line"),
            );
            self.recover_item(item_start);
        }
    }

    // ---- top level ------------------------------------------------------------------

    fn parse_file(&mut self) -> File {
        let mut file = File::default();
        let mut doc: Vec<String> = Vec::new();
        loop {
            match self.peek_kind().clone() {
                TokenKind::Eof => break,
                TokenKind::DocComment(text) => {
                    self.bump();
                    doc.push(text);
                    continue;
                }
                TokenKind::Ident(word) => {
                    let doc_text = take_doc(&mut doc);
                    if word == "tenancy" && matches!(self.peek_at(1).kind, TokenKind::LBrace) {
                        if let Some(block) = self.parse_tenancy_block() {
                            file.tenancy_blocks.push(block);
                        }
                    } else if word == "adopt" && matches!(self.peek_at(1).kind, TokenKind::LBrace) {
                        file.adopt_blocks.push(self.parse_adopt_block());
                    } else if let Some(table) = self.parse_table_header(&word, doc_text) {
                        file.tables.push(table);
                    }
                }
                _ => {
                    doc.clear();
                    self.expected("`tenancy { ... }` or a table declaration");
                    self.recover_top();
                }
            }
        }
        file
    }

    /// Parses `<kind> table <name> { ... }`, reporting a missing or unknown kind.
    fn parse_table_header(&mut self, word: &str, doc: Option<String>) -> Option<TableDecl> {
        let first = self.peek().clone();
        let kind;
        let kind_span;
        if word == "table" {
            let name = self.word_at(1).unwrap_or("x").to_owned();
            self.diags.push(
                Diagnostic::error(
                    "table declared without a kind",
                    first.span,
                    "a table needs a kind keyword before `table`",
                )
                .with_note("nothing is global by accident: every table says who owns its rows")
                .with_help(format!(
                    "write `scoped table {name}` (owned by a project) or `global table {name}` (shared by all tenants)"
                )),
            );
            kind = None;
            kind_span = first.span;
        } else if self.word_at(1) == Some("table") {
            kind_span = self.bump().span;
            kind = kind_for(word);
            if kind.is_none() {
                let names: Vec<&str> = KIND_KEYWORDS.iter().map(|(k, _)| *k).collect();
                let mut d = Diagnostic::error(
                    format!("unknown table kind `{word}`"),
                    kind_span,
                    "not a table kind",
                );
                let alias = match word {
                    "shared" | "public" | "common" => Some("global"),
                    "owned" | "project" | "private" => Some("scoped"),
                    _ => None,
                };
                d = match alias.or_else(|| suggest(word, &names)) {
                    Some(s) => d.with_help(format!("did you mean `{s}`?")),
                    None => d.with_help(
                        "the kinds are `tenants`, `projects`, `memberships`, `scoped` and `global`",
                    ),
                };
                self.diags.push(d);
            }
        } else {
            self.expected("`tenancy { ... }` or a table declaration (`scoped table name { ... }`)");
            self.recover_top();
            return None;
        }
        match self.expect_word("table") {
            Ok(_) => {}
            Err(Reported) => {
                self.recover_top();
                return None;
            }
        }
        let name = match self.ident("a table name") {
            Ok(name) => name,
            Err(Reported) => {
                self.recover_top();
                return None;
            }
        };
        let mut adopts = None;
        if self.at_word("adopts") {
            let keyword = self.bump().span;
            match self.ident("the name of the existing table") {
                Ok(legacy) => adopts = Some((legacy, keyword)),
                Err(Reported) => {
                    self.diags
                        .add_help_to_last(format!("write `adopts {}`", name.name));
                    self.recover_top();
                    return None;
                }
            }
        }
        let open = match self.expect(&TokenKind::LBrace, "`{`") {
            Ok(t) => t,
            Err(Reported) => {
                self.recover_top();
                return None;
            }
        };
        let mut table = TableDecl {
            doc,
            kind,
            kind_span,
            name,
            adopts,
            columns: Vec::new(),
            constraints: Vec::new(),
            rules: Vec::new(),
        };
        self.parse_table_body(&mut table, open.span);
        Some(table)
    }

    /// Reports a block whose closing `}` is missing.
    fn unclosed(&mut self, open: Span, what: &str) {
        let at = self.peek().span;
        self.diags.push(
            Diagnostic::error(
                format!("unclosed {what}: expected `}}`"),
                open,
                "this `{` is never closed",
            )
            .with_secondary(at, "expected `}` before this")
            .with_help("add `}` after the last item"),
        );
    }

    // ---- tables -----------------------------------------------------------------------

    fn parse_table_body(&mut self, table: &mut TableDecl, open: Span) {
        let mut doc: Vec<String> = Vec::new();
        loop {
            let item_start = self.pos;
            match self.peek_kind().clone() {
                TokenKind::RBrace => {
                    self.bump();
                    return;
                }
                TokenKind::Eof => {
                    self.unclosed(open, &format!("table `{}`", table.name.name));
                    return;
                }
                TokenKind::DocComment(text) => {
                    self.bump();
                    doc.push(text);
                }
                TokenKind::Ident(word) => {
                    if self.at_declaration_start() {
                        self.unclosed(open, &format!("table `{}`", table.name.name));
                        return;
                    }
                    let doc_text = take_doc(&mut doc);
                    let (result, what) = match word.as_str() {
                        "allow" => (self.parse_rule().map(|r| table.rules.push(r)), "a rule"),
                        "primary" | "unique" | "foreign" => (
                            self.parse_key(&word).map(|c| table.constraints.push(c)),
                            "a key",
                        ),
                        "index" if self.index_item_follows() => (
                            self.parse_index().map(|c| table.constraints.push(c)),
                            "an index",
                        ),
                        _ => (
                            self.parse_column(doc_text).map(|c| table.columns.push(c)),
                            "a column",
                        ),
                    };
                    match result {
                        Ok(()) => self.end_of_item(what, item_start),
                        Err(Reported) => self.recover_item(item_start),
                    }
                }
                _ => {
                    doc.clear();
                    self.expected("a column, key, index or `allow` rule");
                    self.recover_item(item_start);
                    if self.pos == item_start {
                        self.bump();
                    }
                }
            }
        }
    }

    /// `index (...)` or `index <method> (...)`, as opposed to a column named `index`.
    fn index_item_follows(&self) -> bool {
        match &self.peek_at(1).kind {
            TokenKind::LParen => true,
            TokenKind::Ident(w) => {
                w != "vector" && matches!(self.peek_at(2).kind, TokenKind::LParen)
            }
            _ => false,
        }
    }

    /// `( a, b, ... )`: a non-empty list of column names.
    fn ident_list(&mut self) -> PResult<Vec<Ident>> {
        self.expect(&TokenKind::LParen, "`(`")?;
        let mut names = vec![self.ident("a column name")?];
        loop {
            match self.peek_kind() {
                TokenKind::Comma => {
                    self.bump();
                    if matches!(self.peek_kind(), TokenKind::RParen) {
                        self.bump();
                        return Ok(names);
                    }
                    names.push(self.ident("a column name")?);
                }
                TokenKind::RParen => {
                    self.bump();
                    return Ok(names);
                }
                _ => return Err(self.expected("`,` or `)`")),
            }
        }
    }

    /// `primary key (...)`, `unique (...)`, `foreign key (...) references ...`.
    fn parse_key(&mut self, word: &str) -> PResult<Constraint> {
        let start = self.bump().span;
        match word {
            "primary" => {
                self.expect_word("key")?;
                let columns = self.ident_list()?;
                Ok(Constraint::PrimaryKey {
                    span: self.span_from(start),
                    columns,
                })
            }
            "unique" => {
                let columns = self.ident_list()?;
                Ok(Constraint::Unique {
                    span: self.span_from(start),
                    columns,
                })
            }
            _ => {
                self.expect_word("key")?;
                let columns = self.ident_list()?;
                if !self.at_word("references") {
                    return Err(self.expected("`references`"));
                }
                let reference = self.parse_reference()?;
                Ok(Constraint::ForeignKey {
                    span: self.span_from(start),
                    columns,
                    reference,
                })
            }
        }
    }

    /// `index [method] (...)`.
    fn parse_index(&mut self) -> PResult<Constraint> {
        let start = self.bump().span;
        let mut method = IndexMethod::BTree;
        if let TokenKind::Ident(name) = self.peek_kind().clone() {
            let span = self.bump().span;
            match name.as_str() {
                "gin" => method = IndexMethod::Gin,
                "btree" => method = IndexMethod::BTree,
                other => {
                    let mut d = Diagnostic::error(
                        format!("unknown index method `{other}`"),
                        span,
                        "not a supported index method",
                    );
                    d = match suggest(other, &INDEX_METHODS) {
                        Some(s) => d.with_help(format!("did you mean `{s}`?")),
                        None => d.with_help("supported methods: `btree` (the default) and `gin`"),
                    };
                    self.diags.push(d);
                }
            }
        }
        let columns = self.ident_list()?;
        Ok(Constraint::Index {
            span: self.span_from(start),
            method,
            columns,
        })
    }

    /// `references table[(cols)] [on delete action]` (the next token is `references`).
    fn parse_reference(&mut self) -> PResult<Reference> {
        let start = self.bump().span;
        let table = self.ident("a table name")?;
        let columns = if matches!(self.peek_kind(), TokenKind::LParen) {
            Some(self.ident_list()?)
        } else {
            None
        };
        let span = self.span_from(start);
        let mut on_delete = None;
        if self.same_line() && self.at_word("on") {
            self.bump();
            self.expect_word("delete")?;
            let action_start = self.peek().span;
            let action = match self.word_at(0) {
                Some("cascade") => {
                    self.bump();
                    OnDelete::Cascade
                }
                Some("restrict") => {
                    self.bump();
                    OnDelete::Restrict
                }
                Some("set") => {
                    self.bump();
                    self.expect_word("null")?;
                    OnDelete::SetNull
                }
                Some("no") => {
                    self.bump();
                    self.expect_word("action")?;
                    OnDelete::NoAction
                }
                _ => {
                    let err = self.expected("`cascade`, `restrict`, `set null` or `no action`");
                    return Err(err);
                }
            };
            on_delete = Some((action, self.span_from(action_start)));
        }
        Ok(Reference {
            table,
            columns,
            on_delete,
            span,
        })
    }
}

/// Takes the pending `///` lines as one doc string.
fn take_doc(doc: &mut Vec<String>) -> Option<String> {
    if doc.is_empty() {
        None
    } else {
        let text = doc.join("\n");
        doc.clear();
        Some(text)
    }
}
