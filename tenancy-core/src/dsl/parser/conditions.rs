//! Row conditions after `where` in a rule: `created_by = current_user and not archived`.
//!
//! Grammar (lowest binding first; a condition stays on the rule's line):
//!
//! ```text
//! or   := and ("or" and)*
//! and  := not ("and" not)*
//! not  := "not" not | atom
//! atom := "(" or ")" | "sql" STRING
//!       | operand [ op operand | "is" ["not"] "null" | "in" "(" operand ("," operand)* ")" ]
//! op   := "=" | "<>" | "<" | "<=" | ">" | ">="
//! ```

use super::*;
use crate::condition::CompareOp;
use crate::dsl::ast::{Expr, ExprOperand};

/// Deepest nesting of parentheses and `not`s accepted (keeps recursion bounded).
const MAX_DEPTH: usize = 32;

impl Parser<'_> {
    /// The condition after `where` (the keyword already consumed, its span given).
    pub(super) fn parse_condition(&mut self, keyword: Span) -> PResult<Expr> {
        if !self.same_line() {
            self.diags.push(
                Diagnostic::error("`where` needs a condition", keyword, "nothing after `where`")
                    .with_help("write the condition on the rule's line, e.g. `where created_by = current_user`"),
            );
            return Err(Reported);
        }
        self.parse_or(0)
    }

    fn condition_continues(&mut self, what: &str) -> PResult<()> {
        if self.same_line() {
            return Ok(());
        }
        let at = Span::new(self.file, self.prev_end, self.prev_end);
        self.diags.push(
            Diagnostic::error(
                format!("the condition ends before {what}"),
                at,
                format!("expected {what} here"),
            )
            .with_help("a rule and its condition are written on one line"),
        );
        Err(Reported)
    }

    fn parse_or(&mut self, depth: usize) -> PResult<Expr> {
        let mut left = self.parse_and(depth)?;
        while self.same_line() && self.at_word("or") {
            self.bump();
            let right = self.parse_and(depth)?;
            left = Expr::Or(Box::new(left), Box::new(right));
        }
        Ok(left)
    }

    fn parse_and(&mut self, depth: usize) -> PResult<Expr> {
        let mut left = self.parse_not(depth)?;
        while self.same_line() && self.at_word("and") {
            self.bump();
            let right = self.parse_not(depth)?;
            left = Expr::And(Box::new(left), Box::new(right));
        }
        Ok(left)
    }

    fn parse_not(&mut self, depth: usize) -> PResult<Expr> {
        if depth > MAX_DEPTH {
            let span = self.peek().span;
            self.diags.push(Diagnostic::error(
                "condition nested too deeply",
                span,
                format!("more than {MAX_DEPTH} levels of `not` and parentheses"),
            ));
            return Err(Reported);
        }
        self.condition_continues("an operand")?;
        if self.at_word("not") {
            let span = self.bump().span;
            let inner = self.parse_not(depth + 1)?;
            return Ok(Expr::Not(Box::new(inner), span));
        }
        self.parse_atom(depth)
    }

    fn parse_atom(&mut self, depth: usize) -> PResult<Expr> {
        if matches!(self.peek_kind(), TokenKind::LParen) {
            let open = self.bump().span;
            let inner = self.parse_or(depth + 1)?;
            if !self.same_line() || !matches!(self.peek_kind(), TokenKind::RParen) {
                if self.same_line() {
                    self.expected("`)`");
                } else {
                    self.diags.push(
                        Diagnostic::error("unclosed `(` in condition", open, "opened here")
                            .with_help("close it on the same line"),
                    );
                }
                return Err(Reported);
            }
            self.bump();
            return Ok(inner);
        }
        if self.at_word("sql") && matches!(self.peek_at(1).kind, TokenKind::Str(_)) {
            let start = self.bump().span;
            let token = self.bump();
            let TokenKind::Str(text) = token.kind else {
                return Err(Reported);
            };
            return Ok(Expr::Sql(text, start.to(token.span)));
        }
        let left = self.parse_operand()?;
        if !self.same_line() {
            return Ok(Expr::Operand(left));
        }
        if let Some(op) = self.compare_op() {
            let op_span = self.span_from(op.1);
            self.condition_continues("an operand")?;
            let right = self.parse_operand()?;
            return Ok(Expr::Compare {
                left,
                op: op.0,
                op_span,
                right,
            });
        }
        if self.at_word("is") {
            let start = self.bump().span;
            self.condition_continues("`null` or `not null`")?;
            let negated = self.at_word("not");
            if negated {
                self.bump();
            }
            self.condition_continues("`null`")?;
            self.expect_word("null")?;
            return Ok(Expr::IsNull {
                operand: left,
                negated,
                span: self.span_from(start),
            });
        }
        if self.at_word("in") {
            self.bump();
            self.condition_continues("`(`")?;
            self.expect(&TokenKind::LParen, "`(`")?;
            let mut values = Vec::new();
            loop {
                self.condition_continues("a value")?;
                values.push(self.parse_operand()?);
                self.condition_continues("`,` or `)`")?;
                if matches!(self.peek_kind(), TokenKind::Comma) {
                    self.bump();
                    continue;
                }
                self.expect(&TokenKind::RParen, "`,` or `)`")?;
                break;
            }
            return Ok(Expr::In {
                operand: left,
                values,
            });
        }
        Ok(Expr::Operand(left))
    }

    /// A comparison operator at the next token(s), consumed; `<` `>` pairs must touch.
    fn compare_op(&mut self) -> Option<(CompareOp, Span)> {
        let first = self.peek().clone();
        let second = self.peek_at(1).clone();
        let touching = second.span.start == first.span.end && !second.line_start;
        let (op, two) = match (&first.kind, &second.kind) {
            (TokenKind::Eq, _) => (CompareOp::Eq, false),
            (TokenKind::Lt, TokenKind::Gt) if touching => (CompareOp::Ne, true),
            (TokenKind::Lt, TokenKind::Eq) if touching => (CompareOp::Le, true),
            (TokenKind::Lt, _) => (CompareOp::Lt, false),
            (TokenKind::Gt, TokenKind::Eq) if touching => (CompareOp::Ge, true),
            (TokenKind::Gt, _) => (CompareOp::Gt, false),
            _ => return None,
        };
        self.bump();
        if two {
            self.bump();
        }
        Some((op, first.span))
    }

    fn parse_operand(&mut self) -> PResult<ExprOperand> {
        let token = self.peek().clone();
        match token.kind {
            TokenKind::Ident(word) if word == "null" => {
                self.bump();
                Ok(ExprOperand::Null(token.span))
            }
            TokenKind::Ident(name) => {
                self.bump();
                Ok(ExprOperand::Word(Ident {
                    name,
                    span: token.span,
                }))
            }
            TokenKind::Str(text) => {
                self.bump();
                Ok(ExprOperand::Str(text, token.span))
            }
            TokenKind::Int(raw) | TokenKind::Decimal(raw) => {
                self.bump();
                Ok(ExprOperand::Number(raw, token.span))
            }
            _ => {
                Err(self.expected("a column, `current_user`, `current_tenant`, `role` or a value"))
            }
        }
    }
}
