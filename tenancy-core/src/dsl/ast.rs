//! The syntax tree: what was written, with spans, before any semantic check.

use super::diagnostic::Span;
use crate::model::{Command, DefaultValue, IndexMethod, OnDelete, TableKind};

/// A word with its place.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ident {
    /// The text.
    pub name: String,
    /// Where it was written.
    pub span: Span,
}

/// One parsed file.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct File {
    /// `tenancy { ... }` blocks (exactly one must exist across all files).
    pub tenancy_blocks: Vec<TenancyBlock>,
    /// Table declarations in source order.
    pub tables: Vec<TableDecl>,
    /// `adopt { tenant = "..." project = "..." }` blocks (at most one across all files).
    pub adopt_blocks: Vec<AdoptBlock>,
}

/// `adopt { tenant = "default" project = "default" }`: where the rows of adopted
/// (pre-tenancy) tables go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdoptBlock {
    /// The `adopt` keyword.
    pub span: Span,
    /// `key = "value"` settings (`tenant`, `project`).
    pub settings: Vec<Setting>,
}

/// `tenancy { key = "value" ... roles = a < b }`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TenancyBlock {
    /// The `tenancy` keyword.
    pub span: Span,
    /// `key = "value"` settings.
    pub settings: Vec<Setting>,
    /// `roles = ...` lines (more than one is an error).
    pub roles: Vec<RolesDecl>,
}

/// `key = "value"`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Setting {
    /// The setting name.
    pub key: Ident,
    /// The value (string literal contents).
    pub value: String,
    /// Where the value was written.
    pub value_span: Span,
}

/// `roles = a < b < c`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RolesDecl {
    /// The `roles` keyword.
    pub span: Span,
    /// Roles, lowest first.
    pub roles: Vec<Ident>,
}

/// `<kind> table <name> { ... }`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableDecl {
    /// `///` documentation above the declaration.
    pub doc: Option<String>,
    /// The kind, or `None` when it was missing or unknown (already reported).
    pub kind: Option<TableKind>,
    /// Where the kind keyword was (or the `table` keyword when it was missing).
    pub kind_span: Span,
    /// The table name.
    pub name: Ident,
    /// `adopts <legacy_table>`: the existing table this one takes over, with the span of
    /// the `adopts` keyword.
    pub adopts: Option<(Ident, Span)>,
    /// Declared columns.
    pub columns: Vec<ColumnDecl>,
    /// Table-level constraints and indexes.
    pub constraints: Vec<Constraint>,
    /// `allow ...` rules.
    pub rules: Vec<RuleDecl>,
}

/// `name type[?] [default v] [references t(c) [on delete x]] [primary key] [unique]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ColumnDecl {
    /// `///` documentation.
    pub doc: Option<String>,
    /// Column name.
    pub name: Ident,
    /// The written type.
    pub ty: TypeExpr,
    /// `?` after the type.
    pub nullable: bool,
    /// `default <value>`.
    pub default: Option<DefaultExpr>,
    /// Column-level `references`.
    pub references: Option<Reference>,
    /// Column-level `primary key` (its span).
    pub primary_key: Option<Span>,
    /// Column-level `unique` (its span).
    pub unique: Option<Span>,
    /// `distance <name>` of a vector column: the name as written.
    pub distance: Option<Ident>,
    /// `per tenant` on a vector column (its span): each tenant chooses its embedding model.
    pub per_tenant: Option<Span>,
    /// `= current_user on insert`: a column the database fills.
    pub stamp: Option<StampDecl>,
}

/// `= <value> on insert|update` after a column's type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StampDecl {
    /// The value word (`current_user`, `now`).
    pub value: Ident,
    /// `insert` or `update`.
    pub when: Ident,
    /// From `=` to the end.
    pub span: Span,
}

/// A written type: `text`, `vector(384)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TypeExpr {
    /// The type name.
    pub name: Ident,
    /// The parenthesised argument (`384`), as written, with its span.
    pub arg: Option<(String, Span)>,
    /// The whole type (name and argument).
    pub span: Span,
}

/// A default value with its place.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DefaultExpr {
    /// The value.
    pub value: DefaultValue,
    /// Where it was written.
    pub span: Span,
}

/// `references table[(cols)] [on delete action]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reference {
    /// The referenced table.
    pub table: Ident,
    /// Target columns, when written.
    pub columns: Option<Vec<Ident>>,
    /// `on delete` action and the span of the action words.
    pub on_delete: Option<(OnDelete, Span)>,
    /// From `references` to the end of the target.
    pub span: Span,
}

/// A table-level item other than a column or a rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Constraint {
    /// `primary key (a, b)`.
    PrimaryKey {
        /// The whole item.
        span: Span,
        /// Key columns.
        columns: Vec<Ident>,
    },
    /// `unique (a, b)`.
    Unique {
        /// The whole item.
        span: Span,
        /// Key columns.
        columns: Vec<Ident>,
    },
    /// `index [gin] (a, b)`.
    Index {
        /// The whole item.
        span: Span,
        /// Access method.
        method: IndexMethod,
        /// Indexed columns.
        columns: Vec<Ident>,
    },
    /// `foreign key (a) references t(x) [on delete ...]`.
    ForeignKey {
        /// The whole item.
        span: Span,
        /// Referencing columns.
        columns: Vec<Ident>,
        /// The target.
        reference: Reference,
    },
}

/// A command in a rule: one command or `all`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CommandSpec {
    /// One command.
    One(Command),
    /// `all`: every command.
    All,
}

impl CommandSpec {
    /// The commands this stands for.
    pub fn commands(self) -> Vec<Command> {
        match self {
            CommandSpec::One(c) => vec![c],
            CommandSpec::All => Command::ALL.to_vec(),
        }
    }
}

/// `allow cmd[, cmd...] [to role]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleDecl {
    /// The whole rule.
    pub span: Span,
    /// Commands with their spans.
    pub commands: Vec<(CommandSpec, Span)>,
    /// The minimum role (`to role`), required except on global tables.
    pub role: Option<Ident>,
    /// `where <condition>`.
    pub condition: Option<Expr>,
    /// `(a, b)` after the commands: the columns the rule covers.
    pub columns: Option<Vec<Ident>>,
}

/// A condition as written (`where ...`), before type checking.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Expr {
    /// `a and b`
    And(Box<Expr>, Box<Expr>),
    /// `a or b`
    Or(Box<Expr>, Box<Expr>),
    /// `not a` (span of `not`)
    Not(Box<Expr>, Span),
    /// `left op right`
    Compare {
        /// Left operand.
        left: ExprOperand,
        /// Operator.
        op: crate::condition::CompareOp,
        /// Where the operator is.
        op_span: Span,
        /// Right operand.
        right: ExprOperand,
    },
    /// `operand is [not] null`
    IsNull {
        /// Operand.
        operand: ExprOperand,
        /// `is not null`.
        negated: bool,
        /// From `is` to `null`.
        span: Span,
    },
    /// `operand in (a, b)`
    In {
        /// Operand.
        operand: ExprOperand,
        /// Candidates.
        values: Vec<ExprOperand>,
    },
    /// A single operand used as a condition (a boolean column).
    Operand(ExprOperand),
    /// `sql "..."` (span of the whole item)
    Sql(String, Span),
}

impl Expr {
    /// True when the condition holds a `sql "..."` part anywhere.
    pub fn contains_sql(&self) -> bool {
        match self {
            Expr::And(a, b) | Expr::Or(a, b) => a.contains_sql() || b.contains_sql(),
            Expr::Not(a, _) => a.contains_sql(),
            Expr::Sql(..) => true,
            Expr::Compare { .. } | Expr::IsNull { .. } | Expr::In { .. } | Expr::Operand(_) => {
                false
            }
        }
    }
}

/// An operand as written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExprOperand {
    /// A word: a column, `current_user`, `current_tenant`, `role`, `true`/`false`, or a role
    /// name (on the right of `role >= ...`).
    Word(Ident),
    /// A string literal.
    Str(String, Span),
    /// A number (integer or decimal), as written.
    Number(String, Span),
    /// `null`.
    Null(Span),
}

impl ExprOperand {
    /// Where the operand was written.
    pub fn span(&self) -> Span {
        match self {
            ExprOperand::Word(i) => i.span,
            ExprOperand::Str(_, s) | ExprOperand::Number(_, s) | ExprOperand::Null(s) => *s,
        }
    }
}

impl Expr {
    /// Moves every span of the expression to `span` (a condition read from a string literal
    /// is reported at the literal).
    pub fn respan(&mut self, span: Span) {
        fn operand(o: &mut ExprOperand, span: Span) {
            match o {
                ExprOperand::Word(i) => i.span = span,
                ExprOperand::Str(_, s) | ExprOperand::Number(_, s) | ExprOperand::Null(s) => {
                    *s = span
                }
            }
        }
        match self {
            Expr::And(a, b) | Expr::Or(a, b) => {
                a.respan(span);
                b.respan(span);
            }
            Expr::Not(e, s) => {
                *s = span;
                e.respan(span);
            }
            Expr::Compare {
                left,
                op_span,
                right,
                ..
            } => {
                operand(left, span);
                *op_span = span;
                operand(right, span);
            }
            Expr::IsNull {
                operand: o,
                span: s,
                ..
            } => {
                operand(o, span);
                *s = span;
            }
            Expr::In { operand: o, values } => {
                operand(o, span);
                values.iter_mut().for_each(|v| operand(v, span));
            }
            Expr::Operand(o) => operand(o, span),
            Expr::Sql(_, s) => *s = span,
        }
    }

    /// From the first to the last token of the expression.
    pub fn span(&self) -> Span {
        match self {
            Expr::And(a, b) | Expr::Or(a, b) => a.span().to(b.span()),
            Expr::Not(e, s) => s.to(e.span()),
            Expr::Compare { left, right, .. } => left.span().to(right.span()),
            Expr::IsNull { operand, span, .. } => operand.span().to(*span),
            Expr::In { operand, values } => values
                .last()
                .map_or(operand.span(), |v| operand.span().to(v.span())),
            Expr::Operand(o) => o.span(),
            Expr::Sql(_, s) => *s,
        }
    }
}
