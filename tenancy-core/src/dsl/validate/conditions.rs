//! Row conditions (`where ...`) and stamped columns (`= current_user on insert`): type checks
//! against the table's columns and the role order, and the conversion into model values.

use super::*;
use crate::condition::{CompareOp, Condition, Literal, Operand, Stamp, StampValue, StampWhen};
use crate::dsl::ast::{Expr, ExprOperand, StampDecl};

/// Words with a meaning of their own inside a condition.
const CONDITION_WORDS: [&str; 3] = ["current_user", "current_tenant", "role"];

/// An operand with its type: `None` for an untyped literal (a string or number that takes the
/// other side's type).
struct Typed {
    operand: Operand,
    ty: Option<SqlType>,
    /// The literal as written, when it is one (checked once the other side's type is known).
    literal: Option<ExprOperand>,
    /// NOT NULL column, `current_user`/`current_tenant` (never null inside a scope).
    not_null: bool,
}

impl<'a> Checker<'_, 'a> {
    /// Rule: `= current_user` stamps a `uuid` column, `= now()` a `timestamptz` one, `on insert`
    /// or `on update`; no default beside it; only on tenant-owned tables.
    pub(super) fn check_stamp(
        &mut self,
        kind: TableKind,
        column: &ColumnDecl,
        ty: Option<SqlType>,
        stamp: &StampDecl,
    ) -> Option<Stamp> {
        let value = match stamp.value.name.as_str() {
            "current_user" => StampValue::CurrentUser,
            "now" => StampValue::Now,
            other => {
                let mut d = Diagnostic::error(
                    format!("unknown stamp `{other}`"),
                    stamp.value.span,
                    "the database can stamp `current_user` or `now()`",
                );
                if let Some(s) = suggest(other, &["current_user", "now"]) {
                    d = d.with_help(format!("did you mean `{s}`?"));
                }
                self.error(d);
                return None;
            }
        };
        let when = match stamp.when.name.as_str() {
            "insert" => StampWhen::Insert,
            "update" => StampWhen::Update,
            other => {
                self.error(
                    Diagnostic::error(
                        format!("unknown stamp time `on {other}`"),
                        stamp.when.span,
                        "expected `insert` or `update`",
                    )
                    .with_help("`on insert` writes the value once; `on update` on every write"),
                );
                return None;
            }
        };
        let wanted = match value {
            StampValue::CurrentUser => SqlType::Uuid,
            StampValue::Now => SqlType::Timestamptz,
        };
        if let Some(ty) = ty {
            if ty != wanted {
                self.error(
                    Diagnostic::error(
                        format!(
                            "`{}` cannot stamp column `{}` of type {}",
                            value.dsl_name(),
                            column.name.name,
                            ty.dsl_name()
                        ),
                        stamp.span,
                        format!("`{}` is a {}", value.dsl_name(), wanted.dsl_name()),
                    )
                    .with_help(format!(
                        "declare the column as `{} {}`",
                        column.name.name,
                        wanted.dsl_name()
                    )),
                );
                return None;
            }
        }
        if let Some(default) = &column.default {
            self.error(
                Diagnostic::error(
                    format!(
                        "column `{}` has both a default and a stamp",
                        column.name.name
                    ),
                    default.span,
                    "the stamp already decides the value",
                )
                .with_secondary(stamp.span, "stamped here")
                .with_help("remove the default"),
            );
            return None;
        }
        if !kind.is_tenant_owned() {
            self.error(
                Diagnostic::error(
                    "a global table cannot have stamped columns",
                    stamp.span,
                    "global tables are written only by migrations, with no request context",
                )
                .with_help("remove the stamp"),
            );
            return None;
        }
        Some(Stamp { value, when })
    }

    /// Type-checks the `where` condition of a rule whose least role is `min_role`.
    pub(super) fn check_condition(
        &mut self,
        info: &TableInfo<'a>,
        expr: &Expr,
        min_role: Option<&str>,
    ) -> Option<Condition> {
        if info.kind != TableKind::Scoped {
            self.error(
                Diagnostic::error(
                    format!(
                        "rules on the {} table `{}` cannot have a condition",
                        info.kind.keyword(),
                        info.name()
                    ),
                    expr.span(),
                    "row conditions are for scoped tables",
                )
                .with_note(
                    "the core tables have fixed rules (and the authority rules of the role order)",
                )
                .with_help("remove the `where` part"),
            );
            return None;
        }
        let condition = self.condition(info, expr)?;
        if let Some(min_role) = min_role {
            self.check_role_reach(expr, &condition, min_role);
        }
        Some(condition)
    }

    fn condition(&mut self, info: &TableInfo<'a>, expr: &Expr) -> Option<Condition> {
        match expr {
            Expr::And(a, b) => {
                let (a, b) = (self.condition(info, a), self.condition(info, b));
                Some(Condition::And(Box::new(a?), Box::new(b?)))
            }
            Expr::Or(a, b) => {
                let (a, b) = (self.condition(info, a), self.condition(info, b));
                Some(Condition::Or(Box::new(a?), Box::new(b?)))
            }
            Expr::Not(e, _) => Some(Condition::Not(Box::new(self.condition(info, e)?))),
            Expr::Sql(text, span) => {
                if text.trim().is_empty() || text.chars().any(super::columns::forbidden_in_doc) {
                    self.error(
                        Diagnostic::error(
                            "invalid `sql` condition",
                            *span,
                            "empty, or holds a control character",
                        )
                        .with_help("write one SQL boolean expression on one line"),
                    );
                    return None;
                }
                if text.contains(';') || text.contains("--") || text.contains("/*") {
                    self.error(
                        Diagnostic::error(
                            "an `sql` condition is one expression",
                            *span,
                            "`;` and comments are not allowed here",
                        )
                        .with_help("write a single boolean expression"),
                    );
                    return None;
                }
                Some(Condition::Sql(text.clone()))
            }
            Expr::Operand(ExprOperand::Word(word)) if word.name == "role" => {
                self.error(
                    Diagnostic::error(
                        "`role` needs a comparison",
                        word.span,
                        "the caller's role compared with what?",
                    )
                    .with_help("write e.g. `role >= editor`"),
                );
                None
            }
            Expr::Operand(operand) => {
                let typed = self.operand(info, operand)?;
                match (&typed.operand, typed.ty) {
                    (Operand::Column(c), Some(SqlType::Boolean)) => {
                        Some(Condition::Flag(c.clone()))
                    }
                    (Operand::Literal(_), _) => {
                        self.error(
                            Diagnostic::error(
                                "a condition that is a constant",
                                operand.span(),
                                "always the same for every row",
                            )
                            .with_help("remove the condition, or remove the rule"),
                        );
                        None
                    }
                    (_, ty) => {
                        self.error(
                            Diagnostic::error(
                                format!("`{}` is not a condition", typed.operand),
                                operand.span(),
                                format!(
                                    "a {}, not a boolean",
                                    ty.map_or_else(|| "value".to_owned(), SqlType::dsl_name)
                                ),
                            )
                            .with_help(format!(
                                "compare it, e.g. `{} = ...` or `{} is not null`",
                                typed.operand, typed.operand
                            )),
                        );
                        None
                    }
                }
            }
            Expr::Compare {
                left,
                op,
                op_span,
                right,
            } => self.comparison(info, left, *op, *op_span, right),
            Expr::IsNull {
                operand,
                negated,
                span,
            } => {
                let typed = self.operand(info, operand)?;
                if matches!(typed.operand, Operand::Literal(_)) {
                    self.error(Diagnostic::error(
                        "`is null` tests a column",
                        operand.span(),
                        "a constant",
                    ));
                    return None;
                }
                if typed.not_null {
                    let whole = operand.span().to(*span);
                    if *negated {
                        self.diags.push(
                            Diagnostic::warning(
                                format!("`{}` is never null", typed.operand),
                                whole,
                                "always true",
                            )
                            .with_help("remove this part of the condition"),
                        );
                    } else {
                        self.error(
                            Diagnostic::error(
                                format!("`{}` is never null", typed.operand),
                                whole,
                                "never true: the rule would never apply to a row",
                            )
                            .with_help("remove this part, or make the column nullable (`type?`)"),
                        );
                        return None;
                    }
                }
                Some(Condition::IsNull {
                    operand: typed.operand,
                    negated: *negated,
                })
            }
            Expr::In { operand, values } => {
                let typed = self.operand(info, operand)?;
                let Some(ty) = typed
                    .ty
                    .filter(|_| !matches!(typed.operand, Operand::Literal(_)))
                else {
                    self.error(Diagnostic::error(
                        "`in` tests a column",
                        operand.span(),
                        "not a column",
                    ));
                    return None;
                };
                let mut out = Vec::new();
                for value in values {
                    out.push(self.literal_of(value, ty, &typed.operand)?);
                }
                Some(Condition::In {
                    operand: typed.operand,
                    values: out,
                })
            }
        }
    }

    fn comparison(
        &mut self,
        info: &TableInfo<'a>,
        left: &ExprOperand,
        op: CompareOp,
        op_span: Span,
        right: &ExprOperand,
    ) -> Option<Condition> {
        if let ExprOperand::Word(word) = left {
            if word.name == "role" {
                return self.role_comparison(op, right);
            }
        }
        if let ExprOperand::Word(word) = right {
            if word.name == "role" {
                self.error(
                    Diagnostic::error("write the role on the left", word.span, "here")
                        .with_help("write e.g. `role >= editor`"),
                );
                return None;
            }
        }
        for side in [left, right] {
            if let ExprOperand::Null(span) = side {
                self.error(
                    Diagnostic::error(
                        "comparison with `null` is never true",
                        *span,
                        "SQL compares nothing equal to null",
                    )
                    .with_help(if op == CompareOp::Ne {
                        "write `... is not null`"
                    } else {
                        "write `... is null`"
                    }),
                );
                return None;
            }
        }
        let (l, r) = (self.operand(info, left), self.operand(info, right));
        let (l, r) = (l?, r?);
        let ty = l.ty.or(r.ty);
        if let Some(ty) = ty {
            if op.is_ordering() && !is_ordered(ty) {
                self.error(
                    Diagnostic::error(
                        format!("`{}` cannot order {} values", op.symbol(), ty.dsl_name()),
                        op_span,
                        "no useful order",
                    )
                    .with_help("use `=` or `<>`"),
                );
                return None;
            }
            if !is_comparable(ty) {
                self.error(
                    Diagnostic::error(
                        format!("{} values cannot be compared in a condition", ty.dsl_name()),
                        left.span().to(right.span()),
                        "not comparable",
                    )
                    .with_help("conditions compare ids, text, numbers, dates and flags"),
                );
                return None;
            }
        }
        let (l, r) = match (l.ty, r.ty) {
            (None, None) => {
                self.error(
                    Diagnostic::error(
                        "comparison of two constants",
                        left.span().to(right.span()),
                        "the same for every row",
                    )
                    .with_help("compare a column with a value"),
                );
                return None;
            }
            (Some(ty), None) => {
                let operand = self.literal_of(r.literal.as_ref()?, ty, &l.operand)?;
                (l.operand, operand)
            }
            (None, Some(ty)) => {
                let operand = self.literal_of(l.literal.as_ref()?, ty, &r.operand)?;
                (operand, r.operand)
            }
            (Some(a), Some(b)) => {
                let both_literals = matches!(l.operand, Operand::Literal(_))
                    && matches!(r.operand, Operand::Literal(_));
                if both_literals {
                    self.error(Diagnostic::error(
                        "comparison of two constants",
                        left.span().to(right.span()),
                        "the same for every row",
                    ));
                    return None;
                }
                if a != b && !(is_numeric(a) && is_numeric(b)) {
                    self.error(
                        Diagnostic::error(
                            format!(
                                "cannot compare `{}` ({}) with `{}` ({})",
                                l.operand,
                                a.dsl_name(),
                                r.operand,
                                b.dsl_name()
                            ),
                            left.span().to(right.span()),
                            "mismatched types",
                        )
                        .with_help("compare values of the same type"),
                    );
                    return None;
                }
                (l.operand, r.operand)
            }
        };
        Some(Condition::Compare {
            left: l,
            op,
            right: r,
        })
    }

    /// `role op <role>`.
    fn role_comparison(&mut self, op: CompareOp, right: &ExprOperand) -> Option<Condition> {
        let ExprOperand::Word(role) = right else {
            self.error(
                Diagnostic::error(
                    "`role` is compared with a role name",
                    right.span(),
                    "not a role",
                )
                .with_help("write e.g. `role >= editor`"),
            );
            return None;
        };
        if let Some(roles) = &self.roles {
            if !roles.contains(&role.name) {
                let mut d = Diagnostic::error(
                    format!("unknown role `{}`", role.name),
                    role.span,
                    "not declared in the `tenancy` block",
                );
                d = match suggest(&role.name, roles) {
                    Some(s) => d.with_help(format!("did you mean `{s}`?")),
                    None => d.with_help(format!("the roles are {}", roles.join(" < "))),
                };
                self.error(d);
                return None;
            }
        }
        Some(Condition::Role {
            op,
            role: role.name.clone(),
        })
    }

    /// An operand: a column, `current_user`, `current_tenant`, `true`/`false` or a literal.
    fn operand(&mut self, info: &TableInfo<'a>, operand: &ExprOperand) -> Option<Typed> {
        match operand {
            ExprOperand::Word(word) => match word.name.as_str() {
                "current_user" => Some(Typed {
                    operand: Operand::CurrentUser,
                    ty: Some(SqlType::Uuid),
                    literal: None,
                    not_null: true,
                }),
                "current_tenant" => Some(Typed {
                    operand: Operand::CurrentTenant,
                    ty: Some(SqlType::Uuid),
                    literal: None,
                    not_null: true,
                }),
                "true" | "false" => Some(Typed {
                    operand: Operand::Literal(Literal::Bool(word.name == "true")),
                    ty: Some(SqlType::Boolean),
                    literal: None,
                    not_null: true,
                }),
                "role" => {
                    self.error(
                        Diagnostic::error("`role` is compared with a role name", word.span, "here")
                            .with_help("write e.g. `role >= editor`, on the left"),
                    );
                    None
                }
                name => match info.column(name) {
                    Some((ty, nullable)) => {
                        if let Some(SqlType::Vector(_)) = ty {
                            self.error(Diagnostic::error(
                                format!("vector column `{name}` cannot be used in a condition"),
                                word.span,
                                "not comparable",
                            ));
                            return None;
                        }
                        Some(Typed {
                            operand: Operand::Column(name.to_owned()),
                            ty: Some(ty?),
                            literal: None,
                            not_null: !nullable,
                        })
                    }
                    None => {
                        let mut candidates = info.column_names();
                        candidates.extend(CONDITION_WORDS);
                        let mut d = Diagnostic::error(
                            format!(
                                "unknown column `{name}` in a condition on `{}`",
                                info.name()
                            ),
                            word.span,
                            "not a column of this table",
                        );
                        d = match suggest(name, &candidates) {
                            Some(s) => d.with_help(format!("did you mean `{s}`?")),
                            None => d.with_help(format!(
                                "the columns are {}; or `current_user`, `current_tenant`, `role`",
                                info.column_names().join(", ")
                            )),
                        };
                        self.error(d);
                        None
                    }
                },
            },
            ExprOperand::Str(_, _) | ExprOperand::Number(_, _) => Some(Typed {
                operand: Operand::Literal(Literal::Bool(false)),
                ty: None,
                literal: Some(operand.clone()),
                not_null: true,
            }),
            ExprOperand::Null(span) => {
                self.error(
                    Diagnostic::error(
                        "`null` is not a value here",
                        *span,
                        "never equal to anything",
                    )
                    .with_help("write `... is null`"),
                );
                None
            }
        }
    }

    /// A literal checked against `ty` (the type of `against`).
    fn literal_of(
        &mut self,
        value: &ExprOperand,
        ty: SqlType,
        against: &Operand,
    ) -> Option<Operand> {
        let bad = |this: &mut Self, why: String| {
            this.error(
                Diagnostic::error(
                    format!("this value does not fit `{against}` ({})", ty.dsl_name()),
                    value.span(),
                    why,
                )
                .with_help(format!("write a {} value", ty.dsl_name())),
            );
            None
        };
        use SqlType as T;
        let literal = match (value, ty) {
            (ExprOperand::Word(w), T::Boolean) if w.name == "true" || w.name == "false" => {
                Literal::Bool(w.name == "true")
            }
            (ExprOperand::Str(s, _), T::Text) => Literal::String(s.clone()),
            (ExprOperand::Str(s, _), T::Uuid) if is_uuid(s) => Literal::String(s.clone()),
            (ExprOperand::Str(s, _), T::Date) if is_date(s) => Literal::String(s.clone()),
            (ExprOperand::Str(s, _), T::Timestamptz)
                if s.len() >= 10 && is_date(&s[..10]) && s.is_char_boundary(10) =>
            {
                Literal::String(s.clone())
            }
            (ExprOperand::Number(n, _), T::SmallInt | T::Integer | T::BigInt) => {
                let Ok(v) = n.parse::<i64>() else {
                    return bad(self, "not an integer".to_owned());
                };
                let fits = match ty {
                    T::SmallInt => i16::try_from(v).is_ok(),
                    T::Integer => i32::try_from(v).is_ok(),
                    _ => true,
                };
                if !fits {
                    return bad(self, format!("out of range for {}", ty.dsl_name()));
                }
                Literal::Integer(v)
            }
            (ExprOperand::Number(n, _), T::Real | T::Double) => match n.parse::<i64>() {
                Ok(v) => Literal::Integer(v),
                Err(_) => Literal::Decimal(n.clone()),
            },
            (ExprOperand::Str(_, _), T::Uuid | T::Date | T::Timestamptz) => {
                return bad(self, format!("not a valid {}", ty.dsl_name()));
            }
            (ExprOperand::Word(w), _) => {
                return bad(self, format!("`{}` is not a constant", w.name));
            }
            _ => return bad(self, "wrong kind of value".to_owned()),
        };
        Some(Operand::Literal(literal))
    }

    /// A `role` part that can never hold, or always holds, for a rule naming `min_role`.
    fn check_role_reach(&mut self, expr: &Expr, condition: &Condition, min_role: &str) {
        let Some(roles) = self.roles.clone() else {
            return;
        };
        let Some(min) = roles.iter().position(|r| r == min_role) else {
            return;
        };
        // Only the top-level conjuncts decide alone whether the rule can apply.
        let mut conjuncts: Vec<(&Expr, &Condition)> = Vec::new();
        collect_conjuncts(expr, condition, &mut conjuncts);
        for (part, cond) in conjuncts {
            let Condition::Role { op, role } = cond else {
                continue;
            };
            let Some(rank) = roles.iter().position(|r| r == role) else {
                continue;
            };
            let reachable: Vec<usize> = (min..roles.len()).filter(|r| op.holds(*r, rank)).collect();
            if reachable.is_empty() {
                self.error(
                    Diagnostic::error(
                        "this rule can never apply",
                        part.span(),
                        format!("the rule is for `{min_role}` and above, so this never holds"),
                    )
                    .with_help("fix the role in `to ...` or in the condition"),
                );
            } else if reachable.len() == roles.len() - min {
                self.diags.push(
                    Diagnostic::warning(
                        "this part of the condition always holds",
                        part.span(),
                        format!("every role from `{min_role}` up satisfies it"),
                    )
                    .with_help("remove it"),
                );
            }
        }
    }
}

fn collect_conjuncts<'e>(
    expr: &'e Expr,
    condition: &'e Condition,
    out: &mut Vec<(&'e Expr, &'e Condition)>,
) {
    match (expr, condition) {
        (Expr::And(ea, eb), Condition::And(ca, cb)) => {
            collect_conjuncts(ea, ca, out);
            collect_conjuncts(eb, cb, out);
        }
        _ => out.push((expr, condition)),
    }
}

fn is_numeric(ty: SqlType) -> bool {
    matches!(
        ty,
        SqlType::SmallInt | SqlType::Integer | SqlType::BigInt | SqlType::Real | SqlType::Double
    )
}

/// Types with a meaningful order for `<`/`>`.
fn is_ordered(ty: SqlType) -> bool {
    is_numeric(ty) || matches!(ty, SqlType::Text | SqlType::Date | SqlType::Timestamptz)
}

/// Types a condition may compare at all.
fn is_comparable(ty: SqlType) -> bool {
    !matches!(ty, SqlType::Jsonb | SqlType::Bytea | SqlType::Vector(_))
}
