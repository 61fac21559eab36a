//! Row conditions of rules (`allow update to editor where created_by = current_user`) and
//! stamped columns (`created_by uuid = current_user on insert`), as validated model values.
//!
//! The validator builds these from the DSL (`crate::dsl::validate`); the SQL emitter renders
//! them into policy expressions and column defaults (`crate::sql`), and `tenancy explain`
//! prints them in plain words ([`Condition::describe`]).

use std::fmt;

/// A checked boolean expression over one row and the request context.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Condition {
    /// Both hold.
    And(Box<Condition>, Box<Condition>),
    /// At least one holds.
    Or(Box<Condition>, Box<Condition>),
    /// Does not hold (SQL `NOT`: a NULL comparison stays not true).
    Not(Box<Condition>),
    /// `left op right`.
    Compare {
        /// Left operand.
        left: Operand,
        /// The operator.
        op: CompareOp,
        /// Right operand.
        right: Operand,
    },
    /// `operand is [not] null`.
    IsNull {
        /// The operand tested.
        operand: Operand,
        /// `is not null`.
        negated: bool,
    },
    /// `operand in (v, ...)`.
    In {
        /// The operand tested.
        operand: Operand,
        /// The candidates (literals).
        values: Vec<Operand>,
    },
    /// A boolean column used as a flag (`archived`).
    Flag(String),
    /// `role op <role>`: the caller's role in the row's project compared with a role.
    Role {
        /// The operator.
        op: CompareOp,
        /// The role compared with.
        role: String,
    },
    /// `sql "..."`: an expression the generator does not check (the escape hatch).
    Sql(String),
}

/// An operand of a comparison.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Operand {
    /// A column of the row.
    Column(String),
    /// The caller's user id (`current_user`).
    CurrentUser,
    /// The caller's tenant id (`current_tenant`).
    CurrentTenant,
    /// A literal of the other side's type.
    Literal(Literal),
}

/// A literal value in a condition.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Literal {
    /// `'text'` (also dates, timestamps and uuids, checked against the column's type).
    String(String),
    /// An integer.
    Integer(i64),
    /// A decimal, as written.
    Decimal(String),
    /// `true` / `false`.
    Bool(bool),
}

/// A comparison operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CompareOp {
    /// `=`
    Eq,
    /// `<>`
    Ne,
    /// `<`
    Lt,
    /// `<=`
    Le,
    /// `>`
    Gt,
    /// `>=`
    Ge,
}

impl CompareOp {
    /// The spelling in the DSL and in SQL.
    pub fn symbol(self) -> &'static str {
        match self {
            CompareOp::Eq => "=",
            CompareOp::Ne => "<>",
            CompareOp::Lt => "<",
            CompareOp::Le => "<=",
            CompareOp::Gt => ">",
            CompareOp::Ge => ">=",
        }
    }

    /// True when the operator needs an ordered type.
    pub fn is_ordering(self) -> bool {
        !matches!(self, CompareOp::Eq | CompareOp::Ne)
    }

    /// Whether `left op right` holds for two ranks.
    pub fn holds(self, left: usize, right: usize) -> bool {
        match self {
            CompareOp::Eq => left == right,
            CompareOp::Ne => left != right,
            CompareOp::Lt => left < right,
            CompareOp::Le => left <= right,
            CompareOp::Gt => left > right,
            CompareOp::Ge => left >= right,
        }
    }

    /// In plain words (`is at least`, ...).
    fn words(self) -> &'static str {
        match self {
            CompareOp::Eq => "is",
            CompareOp::Ne => "is not",
            CompareOp::Lt => "is below",
            CompareOp::Le => "is at most",
            CompareOp::Gt => "is above",
            CompareOp::Ge => "is at least",
        }
    }
}

impl Literal {
    /// The literal as written in the DSL (and as a SQL constant: strings quoted, `''` doubled).
    pub fn to_text(&self) -> String {
        match self {
            Literal::String(s) => format!("'{}'", s.replace('\'', "''")),
            Literal::Integer(i) => i.to_string(),
            Literal::Decimal(d) => d.clone(),
            Literal::Bool(b) => b.to_string(),
        }
    }
}

impl fmt::Display for Operand {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Operand::Column(c) => f.write_str(c),
            Operand::CurrentUser => f.write_str("current_user"),
            Operand::CurrentTenant => f.write_str("current_tenant"),
            Operand::Literal(l) => f.write_str(&l.to_text()),
        }
    }
}

impl Operand {
    /// In plain words, for `tenancy explain`.
    fn describe(&self) -> String {
        match self {
            Operand::Column(c) => format!("its `{c}`"),
            Operand::CurrentUser => "the caller's user id".to_owned(),
            Operand::CurrentTenant => "the caller's tenant id".to_owned(),
            Operand::Literal(l) => l.to_text(),
        }
    }
}

impl Condition {
    /// Binding strength, for printing without redundant parentheses.
    fn precedence(&self) -> u8 {
        match self {
            Condition::Or(..) => 1,
            Condition::And(..) => 2,
            Condition::Not(_) => 3,
            _ => 4,
        }
    }

    /// The condition in the DSL's own spelling (stable: used in comments and messages).
    pub fn to_dsl(&self) -> String {
        let child = |c: &Condition, min: u8| {
            if c.precedence() < min {
                format!("({})", c.to_dsl())
            } else {
                c.to_dsl()
            }
        };
        match self {
            Condition::And(a, b) => format!("{} and {}", child(a, 2), child(b, 3)),
            Condition::Or(a, b) => format!("{} or {}", child(a, 1), child(b, 2)),
            Condition::Not(c) => format!("not {}", child(c, 3)),
            Condition::Compare { left, op, right } => format!("{left} {} {right}", op.symbol()),
            Condition::IsNull { operand, negated } => {
                format!("{operand} is {}null", if *negated { "not " } else { "" })
            }
            Condition::In { operand, values } => format!(
                "{operand} in ({})",
                values
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            Condition::Flag(column) => column.clone(),
            Condition::Role { op, role } => format!("role {} {role}", op.symbol()),
            Condition::Sql(text) => format!("sql {}", Literal::String(text.clone()).to_text()),
        }
    }

    /// The condition in plain words, for reviewers (`tenancy explain`).
    pub fn describe(&self) -> String {
        let child = |c: &Condition, min: u8| {
            if c.precedence() < min {
                format!("({})", c.describe())
            } else {
                c.describe()
            }
        };
        match self {
            Condition::And(a, b) => format!("{} and {}", child(a, 2), child(b, 3)),
            Condition::Or(a, b) => format!("{} or {}", child(a, 1), child(b, 2)),
            Condition::Not(c) => format!("not {}", child(c, 3)),
            Condition::Compare { left, op, right } => {
                format!("{} {} {}", left.describe(), op.words(), right.describe())
            }
            Condition::IsNull { operand, negated } => format!(
                "{} is {}empty",
                operand.describe(),
                if *negated { "not " } else { "" }
            ),
            Condition::In { operand, values } => format!(
                "{} is one of {}",
                operand.describe(),
                values
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            Condition::Flag(column) => format!("its `{column}` is true"),
            Condition::Role { op, role } => {
                format!(
                    "the caller's role in the row's project {} {role}",
                    op.words()
                )
            }
            Condition::Sql(text) => format!("UNCHECKED SQL: {text}"),
        }
    }

    /// True when the condition (or a part of it) is raw SQL the generator did not check.
    pub fn is_unchecked(&self) -> bool {
        match self {
            Condition::And(a, b) | Condition::Or(a, b) => a.is_unchecked() || b.is_unchecked(),
            Condition::Not(c) => c.is_unchecked(),
            Condition::Sql(_) => true,
            _ => false,
        }
    }

    /// The columns of the row the condition reads, in order of first use.
    pub fn columns(&self) -> Vec<&str> {
        let mut out: Vec<&str> = Vec::new();
        self.collect_columns(&mut out);
        out
    }

    fn collect_columns<'a>(&'a self, out: &mut Vec<&'a str>) {
        let mut add = |o: &'a Operand| {
            if let Operand::Column(c) = o {
                if !out.contains(&c.as_str()) {
                    out.push(c);
                }
            }
        };
        match self {
            Condition::And(a, b) | Condition::Or(a, b) => {
                a.collect_columns(out);
                b.collect_columns(out);
            }
            Condition::Not(c) => c.collect_columns(out),
            Condition::Compare { left, right, .. } => {
                add(left);
                add(right);
            }
            Condition::IsNull { operand, .. } => add(operand),
            Condition::In { operand, values } => {
                add(operand);
                values.iter().for_each(add);
            }
            Condition::Flag(c) => {
                if !out.contains(&c.as_str()) {
                    out.push(c);
                }
            }
            Condition::Role { .. } | Condition::Sql(_) => {}
        }
    }
}

/// What the database writes into a stamped column.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StampValue {
    /// The caller's user id from the verified context (`current_user`, a `uuid` column).
    CurrentUser,
    /// The transaction's start time (`now()`, a `timestamptz` column).
    Now,
}

impl StampValue {
    /// The DSL spelling.
    pub fn dsl_name(self) -> &'static str {
        match self {
            StampValue::CurrentUser => "current_user",
            StampValue::Now => "now()",
        }
    }
}

/// When the database writes a stamped column.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StampWhen {
    /// `on insert`: set when the row is created, never changed afterwards.
    Insert,
    /// `on update`: set when the row is created and again by every update.
    Update,
}

/// `= <value> on insert|update`: a column the database fills; the application role can neither
/// name it in an INSERT nor change it in an UPDATE.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct Stamp {
    /// What is written.
    pub value: StampValue,
    /// When it is written.
    pub when: StampWhen,
}

impl Stamp {
    /// The DSL spelling (`= current_user on insert`).
    pub fn to_dsl(self) -> String {
        let when = match self.when {
            StampWhen::Insert => "insert",
            StampWhen::Update => "update",
        };
        format!("= {} on {when}", self.value.dsl_name())
    }
}
