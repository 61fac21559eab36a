//! Inside a table: columns with their types and defaults, and access rules.

use super::*;

impl Parser<'_> {
    /// `name type[?] [default v] [references ...] [primary key] [unique] [distance d]
    /// [per tenant]`.
    pub(super) fn parse_column(&mut self, doc: Option<String>) -> PResult<ColumnDecl> {
        let name = self.ident("a column name")?;
        if !self.same_line() || !matches!(self.peek_kind(), TokenKind::Ident(_)) {
            let token = self.peek().clone();
            let at = if self.same_line() {
                token.span
            } else {
                name.span
            };
            self.diags.push(
                Diagnostic::error(
                    format!("expected a type for column `{}`", name.name),
                    at,
                    "expected a type",
                )
                .with_help(format!(
                    "write the column as `{} text` (or another type)",
                    name.name
                )),
            );
            return Err(Reported);
        }
        let ty = self.parse_type()?;
        let mut column = ColumnDecl {
            doc,
            name,
            ty,
            nullable: false,
            default: None,
            references: None,
            primary_key: None,
            unique: None,
            distance: None,
            per_tenant: None,
            stamp: None,
        };
        if self.same_line() && matches!(self.peek_kind(), TokenKind::Question) {
            self.bump();
            column.nullable = true;
        }
        if self.same_line() && matches!(self.peek_kind(), TokenKind::Eq) {
            column.stamp = Some(self.parse_stamp()?);
        }
        while self.same_line() {
            let token = self.peek().clone();
            let duplicate = |what: &str| {
                Diagnostic::error(
                    format!("`{what}` given twice for column `{}`", column.name.name),
                    token.span,
                    "second one here",
                )
            };
            match self.word_at(0) {
                Some("default") => {
                    let keyword = self.bump().span;
                    if !self.same_line() {
                        self.diags.push(
                            Diagnostic::error(
                                "`default` needs a value",
                                keyword,
                                "no value after `default`",
                            )
                            .with_help("write the value on the same line, e.g. `default 'draft'`"),
                        );
                        return Err(Reported);
                    }
                    let value = self.parse_default()?;
                    if column.default.is_some() {
                        self.diags.push(duplicate("default"));
                    }
                    column.default = Some(value);
                }
                Some("references") => {
                    let reference = self.parse_reference()?;
                    if column.references.is_some() {
                        self.diags.push(duplicate("references"));
                    }
                    column.references = Some(reference);
                }
                Some("primary") => {
                    self.bump();
                    self.expect_word("key")?;
                    if column.primary_key.is_some() {
                        self.diags.push(duplicate("primary key"));
                    }
                    column.primary_key = Some(self.span_from(token.span));
                }
                Some("distance") => {
                    self.bump();
                    let name = self.ident("a distance (`cosine`, `l2` or `inner_product`)")?;
                    if column.distance.is_some() {
                        self.diags.push(duplicate("distance"));
                    }
                    column.distance = Some(name);
                }
                Some("per") => {
                    self.bump();
                    self.expect_word("tenant")?;
                    if column.per_tenant.is_some() {
                        self.diags.push(duplicate("per tenant"));
                    }
                    column.per_tenant = Some(self.span_from(token.span));
                }
                Some("unique") => {
                    self.bump();
                    if column.unique.is_some() {
                        self.diags.push(duplicate("unique"));
                    }
                    column.unique = Some(token.span);
                }
                Some("not") if self.word_at(1) == Some("null") => {
                    self.bump();
                    self.bump();
                    self.diags.push(
                        Diagnostic::error(
                            "`not null` is not needed",
                            self.span_from(token.span),
                            "columns are NOT NULL unless their type ends with `?`",
                        )
                        .with_help("remove `not null`"),
                    );
                }
                Some("null") => {
                    self.bump();
                    self.diags.push(
                        Diagnostic::error(
                            "`null` is not a column option",
                            token.span,
                            "nullable columns are written with `?`",
                        )
                        .with_help(format!(
                            "write `{} {}?`",
                            column.name.name, column.ty.name.name
                        )),
                    );
                }
                _ => break,
            }
        }
        Ok(column)
    }

    /// `= current_user on insert` / `= now() on update` (at the `=`).
    pub(super) fn parse_stamp(&mut self) -> PResult<StampDecl> {
        let start = self.bump().span;
        if !self.same_line() || !matches!(self.peek_kind(), TokenKind::Ident(_)) {
            let found = self.peek().clone();
            let at = if self.same_line() { found.span } else { start };
            let written = match &found.kind {
                TokenKind::Str(s) => format!("'{}'", s.replace('\'', "''")),
                TokenKind::Int(v) | TokenKind::Decimal(v) => v.clone(),
                _ => "...".to_owned(),
            };
            self.diags.push(
                Diagnostic::error(
                    "`=` after a column's type declares a stamped column",
                    at,
                    "expected `current_user` or `now()`",
                )
                .with_help(format!(
                    "for a default value write `default {written}`; a stamp is `= current_user on insert`"
                )),
            );
            return Err(Reported);
        }
        let value = self.ident("`current_user` or `now()`")?;
        if self.same_line() && matches!(self.peek_kind(), TokenKind::LParen) {
            self.bump();
            self.expect(&TokenKind::RParen, "`)`")?;
        }
        if !self.same_line() || !self.at_word("on") {
            let at = Span::new(self.file, self.prev_end, self.prev_end);
            self.diags.push(
                Diagnostic::error(
                    "a stamped column needs `on insert` or `on update`",
                    self.span_from(start).to(at),
                    "when does the database write it?",
                )
                .with_help(format!(
                    "write `= {} on insert` (set once) or `on update` (set on every write)",
                    value.name
                )),
            );
            return Err(Reported);
        }
        self.bump();
        if !self.same_line() {
            return Err(self.expected("`insert` or `update`"));
        }
        let when = self.ident("`insert` or `update`")?;
        Ok(StampDecl {
            value,
            when,
            span: self.span_from(start),
        })
    }

    /// `name` or `name(arg)`.
    pub(super) fn parse_type(&mut self) -> PResult<TypeExpr> {
        let name = self.ident("a type")?;
        let mut arg = None;
        if self.same_line() && matches!(self.peek_kind(), TokenKind::LParen) {
            self.bump();
            match self.peek_kind().clone() {
                TokenKind::Int(value) => {
                    let span = self.bump().span;
                    arg = Some((value, span));
                }
                _ => return Err(self.expected("a number")),
            }
            self.expect(&TokenKind::RParen, "`)`")?;
        }
        Ok(TypeExpr {
            span: self.span_from(name.span),
            name,
            arg,
        })
    }

    /// A default value: string, number, `true`/`false`, `now()`, `gen_random_uuid()`.
    pub(super) fn parse_default(&mut self) -> PResult<DefaultExpr> {
        let token = self.peek().clone();
        let value = match &token.kind {
            TokenKind::Str(s) => {
                self.bump();
                DefaultValue::String(s.clone())
            }
            TokenKind::Int(raw) => {
                self.bump();
                match raw.parse::<i64>() {
                    Ok(v) => DefaultValue::Integer(v),
                    Err(_) => {
                        self.diags.push(Diagnostic::error(
                            format!("integer `{raw}` is out of range"),
                            token.span,
                            "does not fit in 64 bits",
                        ));
                        return Err(Reported);
                    }
                }
            }
            TokenKind::Decimal(raw) => {
                self.bump();
                DefaultValue::Decimal(raw.clone())
            }
            TokenKind::Ident(word) => {
                self.bump();
                let is_call = matches!(self.peek_kind(), TokenKind::LParen);
                if is_call {
                    self.bump();
                    self.expect(&TokenKind::RParen, "`)`")?;
                }
                match (word.as_str(), is_call) {
                    ("true", false) => DefaultValue::Bool(true),
                    ("false", false) => DefaultValue::Bool(false),
                    ("now", true) => DefaultValue::Now,
                    ("gen_random_uuid", true) => DefaultValue::GenRandomUuid,
                    _ => {
                        let mut d = Diagnostic::error(
                            format!("unsupported default `{word}`"),
                            self.span_from(token.span),
                            "not a supported default value",
                        );
                        let names = ["now", "gen_random_uuid", "true", "false"];
                        if let Some(s) = suggest(word, &names) {
                            let call = if s == "true" || s == "false" {
                                ""
                            } else {
                                "()"
                            };
                            d = d.with_help(format!("did you mean `{s}{call}`?"));
                        } else {
                            d = d.with_help(
                                "defaults are 'strings', numbers, true/false, now() or gen_random_uuid()",
                            );
                        }
                        self.diags.push(d);
                        return Err(Reported);
                    }
                }
            }
            _ => return Err(self.expected("a default value")),
        };
        Ok(DefaultExpr {
            value,
            span: self.span_from(token.span),
        })
    }

    /// `allow cmd[, cmd...] [(column, ...)] [to role] [where condition]`.
    pub(super) fn parse_rule(&mut self) -> PResult<RuleDecl> {
        let start = self.bump().span;
        let mut commands = Vec::new();
        loop {
            let token = self.peek().clone();
            let word = match &token.kind {
                TokenKind::Ident(w) => w.clone(),
                _ => {
                    return Err(self
                        .expected("a command (`select`, `insert`, `update`, `delete` or `all`)"))
                }
            };
            self.bump();
            let spec = match word.as_str() {
                "select" => Some(CommandSpec::One(Command::Select)),
                "insert" => Some(CommandSpec::One(Command::Insert)),
                "update" => Some(CommandSpec::One(Command::Update)),
                "delete" => Some(CommandSpec::One(Command::Delete)),
                "all" => Some(CommandSpec::All),
                other => {
                    let mut d = Diagnostic::error(
                        format!("unknown command `{other}`"),
                        token.span,
                        "not a command",
                    );
                    d = match suggest(other, &COMMAND_KEYWORDS) {
                        Some(s) => d.with_help(format!("did you mean `{s}`?")),
                        None => d.with_help(
                            "the commands are `select`, `insert`, `update`, `delete` and `all`",
                        ),
                    };
                    self.diags.push(d);
                    None
                }
            };
            if let Some(spec) = spec {
                commands.push((spec, token.span));
            }
            if matches!(self.peek_kind(), TokenKind::Comma) {
                self.bump();
            } else {
                break;
            }
        }
        let mut columns = None;
        if self.same_line() && matches!(self.peek_kind(), TokenKind::LParen) {
            columns = Some(self.ident_list()?);
        }
        let mut role = None;
        if self.same_line() && self.at_word("to") {
            self.bump();
            role = Some(self.ident("a role name")?);
        }
        let mut condition = None;
        if self.same_line() && self.at_word("where") {
            let keyword = self.bump().span;
            condition = Some(self.parse_condition(keyword)?);
        }
        Ok(RuleDecl {
            span: self.span_from(start),
            commands,
            role,
            condition,
            columns,
        })
    }

    // ---- tenancy block ----------------------------------------------------------------
}
