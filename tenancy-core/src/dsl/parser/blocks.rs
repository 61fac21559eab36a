//! The `tenancy` settings block and the `adopt` block.

use super::*;

impl Parser<'_> {
    pub(super) fn parse_tenancy_block(&mut self) -> Option<TenancyBlock> {
        let keyword = self.bump().span;
        let open = self.bump().span;
        let mut block = TenancyBlock {
            span: keyword,
            settings: Vec::new(),
            roles: Vec::new(),
        };
        loop {
            let item_start = self.pos;
            match self.peek_kind().clone() {
                TokenKind::RBrace => {
                    self.bump();
                    return Some(block);
                }
                TokenKind::Eof => {
                    self.unclosed(open, "`tenancy` block");
                    return Some(block);
                }
                TokenKind::DocComment(_) => {
                    self.bump();
                }
                TokenKind::Ident(_) if self.at_declaration_start() => {
                    self.unclosed(open, "`tenancy` block");
                    return Some(block);
                }
                TokenKind::Ident(_) => match self.parse_setting(&mut block) {
                    Ok(()) => self.end_of_item("a setting", item_start),
                    Err(Reported) => self.recover_item(item_start),
                },
                _ => {
                    self.expected("a setting (`owner_role = \"...\"`) or `roles = a < b`");
                    self.recover_item(item_start);
                    if self.pos == item_start {
                        self.bump();
                    }
                }
            }
        }
    }

    // ---- adopt block ------------------------------------------------------------------

    /// `adopt { tenant = "..." project = "..." }` (the next tokens are `adopt {`).
    pub(super) fn parse_adopt_block(&mut self) -> AdoptBlock {
        let keyword = self.bump().span;
        let open = self.bump().span;
        let mut block = AdoptBlock {
            span: keyword,
            settings: Vec::new(),
        };
        loop {
            let item_start = self.pos;
            match self.peek_kind().clone() {
                TokenKind::RBrace => {
                    self.bump();
                    return block;
                }
                TokenKind::Eof => {
                    self.unclosed(open, "`adopt` block");
                    return block;
                }
                TokenKind::DocComment(_) => {
                    self.bump();
                }
                TokenKind::Ident(_) if self.at_declaration_start() => {
                    self.unclosed(open, "`adopt` block");
                    return block;
                }
                TokenKind::Ident(_) => match self.parse_string_setting() {
                    Ok(setting) => {
                        block.settings.push(setting);
                        self.end_of_item("a setting", item_start);
                    }
                    Err(Reported) => self.recover_item(item_start),
                },
                _ => {
                    self.expected("`tenant = \"...\"` or `project = \"...\"`");
                    self.recover_item(item_start);
                    if self.pos == item_start {
                        self.bump();
                    }
                }
            }
        }
    }

    /// `key = "value"`.
    pub(super) fn parse_string_setting(&mut self) -> PResult<Setting> {
        let key = self.ident("a setting name")?;
        self.expect(&TokenKind::Eq, "`=`")?;
        let token = self.peek().clone();
        match token.kind {
            TokenKind::Str(value) => {
                self.bump();
                Ok(Setting {
                    key,
                    value,
                    value_span: token.span,
                })
            }
            _ => {
                let err = self.expected("a quoted string");
                self.diags
                    .add_help_to_last(format!("write `{} = \"...\"`", key.name));
                Err(err)
            }
        }
    }

    pub(super) fn parse_setting(&mut self, block: &mut TenancyBlock) -> PResult<()> {
        let key = self.ident("a setting name")?;
        self.expect(&TokenKind::Eq, "`=`")?;
        if key.name == "roles" {
            let mut roles = vec![self.ident("a role name")?];
            while matches!(self.peek_kind(), TokenKind::Lt) {
                self.bump();
                roles.push(self.ident("a role name")?);
            }
            block.roles.push(RolesDecl {
                span: key.span,
                roles,
            });
            return Ok(());
        }
        let token = self.peek().clone();
        match token.kind {
            TokenKind::Str(value) => {
                self.bump();
                block.settings.push(Setting {
                    key,
                    value,
                    value_span: token.span,
                });
                Ok(())
            }
            _ => {
                let err = self.expected("a quoted string");
                self.diags
                    .add_help_to_last(format!("write `{} = \"...\"`", key.name));
                Err(err)
            }
        }
    }
}
