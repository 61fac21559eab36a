//! Concrete witnesses for a change of access: a caller (role in its own project) and a row
//! (the values of the columns the conditions read) that one model admits and the other
//! refuses.
//!
//! The search is exhaustive over a small domain per column: the literals both conditions name
//! (integers also one above and below), the caller's user id, another user's id, the caller's
//! tenant id, `true`/`false` and NULL, filtered by the column's type. Conditions are evaluated
//! with SQL's three-valued logic (a NULL comparison is not true, so the row is refused). A
//! raw SQL condition (`sql "..."`) cannot be evaluated: it is taken as admitting on the side
//! that must admit and refusing on the side that must refuse, and a witness that depends on
//! that is marked unverified.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::condition::{CompareOp, Condition, Literal, Operand, StampValue, StampWhen};
use crate::model::{Command, Model, SqlType, Table};

use super::matrix::RoleAccess;

/// A value of one row column in a counterexample.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "kind", content = "value")]
pub enum Value {
    /// The caller's own user id.
    CallerUserId,
    /// The id of another user (not the caller).
    OtherUserId,
    /// The caller's tenant id.
    CallerTenantId,
    /// NULL.
    Null,
    /// A constant.
    Literal(Literal),
}

impl Value {
    /// In words (`the caller's user id`, `'draft'`, `NULL`).
    pub fn describe(&self) -> String {
        match self {
            Value::CallerUserId => "the caller's user id".to_owned(),
            Value::OtherUserId => "another user's id".to_owned(),
            Value::CallerTenantId => "the caller's tenant id".to_owned(),
            Value::Null => "empty (NULL)".to_owned(),
            Value::Literal(l) => l.to_text(),
        }
    }
}

/// A caller and a row that the new model admits and the old one refuses.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Counterexample {
    /// The caller's role in the row's project (`None`: any caller of the app role, on a
    /// global table).
    pub role: Option<String>,
    /// The row's columns the conditions read, with their values (the row is in the caller's
    /// tenant and project; every other column may hold anything).
    pub row: BTreeMap<String, Value>,
    /// True when the witness depends on a raw SQL condition that could not be evaluated.
    pub unverified: bool,
    /// True on the tenant memberships table: `role` is the caller's tenant-wide role and the
    /// row is any row of the caller's tenant.
    #[serde(skip_serializing_if = "std::ops::Not::not", default)]
    pub tenant_wide: bool,
}

impl Counterexample {
    /// In words: `a caller holding `editor` in project P of tenant T may update, in ...`.
    pub fn describe(&self, table: &str, command: Command) -> String {
        self.describe_as(table, command, "may")
    }

    /// In words, for a caller the model refuses: `... may not update, in ...`.
    pub fn describe_refused(&self, table: &str, command: Command) -> String {
        self.describe_as(table, command, "may not")
    }

    fn describe_as(&self, table: &str, command: Command, may: &str) -> String {
        let who = match &self.role {
            Some(role) if self.tenant_wide => {
                format!("a caller holding `{role}` in every project of tenant T")
            }
            Some(role) => format!("a caller holding `{role}` in project P of tenant T"),
            None => "any caller of the app role".to_owned(),
        };
        let whose = match (&self.role, self.tenant_wide) {
            (Some(_), true) => " of tenant T",
            (Some(_), false) => " of project P",
            (None, _) => "",
        };
        let row = if self.row.is_empty() {
            format!("any row{whose}")
        } else {
            format!(
                "a row{whose} where {}",
                self.row
                    .iter()
                    .map(|(c, v)| format!("`{c}` is {}", v.describe()))
                    .collect::<Vec<_>>()
                    .join(" and ")
            )
        };
        let unverified = if self.unverified {
            " [unverified: depends on raw SQL or a row condition]"
        } else {
            ""
        };
        format!("{who} {may} {command}, in `{table}`, {row}{unverified}")
    }
}

/// The most combinations the search tries before giving up.
const SEARCH_LIMIT: usize = 200_000;

/// A row (values of `columns` of `table`) that `admits` for `role` in `admitting` and
/// `refuses` in `refusing` refuses; `None` when the domain holds none.
pub fn find(
    admitting: (&Model, &RoleAccess),
    refusing: (&Model, &RoleAccess),
    table: &Table,
    command: Command,
    role: &str,
) -> Option<Counterexample> {
    let (new_model, new_access) = admitting;
    let (old_model, old_access) = refusing;
    let new_conditions = disjuncts(new_access)?;
    let old_conditions = disjuncts(old_access).unwrap_or_default();
    let old_admits_all = matches!(old_access, RoleAccess::AllRows);
    if old_admits_all {
        return None;
    }
    // A disjunct both sides share decides nothing: where it holds, both admit.
    let new_only: Vec<&Condition> = new_conditions
        .iter()
        .filter(|c| !old_conditions.contains(c))
        .collect();
    let old_only: Vec<&Condition> = old_conditions
        .iter()
        .filter(|c| !new_conditions.contains(c))
        .collect();
    let new_all = new_conditions.is_empty();
    let mut columns: Vec<&str> = Vec::new();
    for c in new_only.iter().chain(old_only.iter()) {
        for column in c.columns() {
            if !columns.contains(&column) {
                columns.push(column);
            }
        }
    }
    let literals: Vec<&Literal> = new_only
        .iter()
        .chain(old_only.iter())
        .flat_map(|c| literals_of(c))
        .collect();
    let domains: Vec<Vec<Value>> = columns
        .iter()
        .map(|c| domain(table, c, command, &literals))
        .collect();
    let total = domains
        .iter()
        .try_fold(1usize, |acc, d| acc.checked_mul(d.len().max(1)))?;
    if total > SEARCH_LIMIT || domains.iter().any(Vec::is_empty) {
        return None;
    }
    let new_rank = new_model.role_rank(role);
    let old_rank = old_model.role_rank(role);
    let mut index = vec![0usize; domains.len()];
    for _ in 0..total {
        let row: BTreeMap<&str, &Value> = columns
            .iter()
            .zip(index.iter().zip(&domains))
            .map(|(c, (i, d))| (*c, &d[*i]))
            .collect();
        let eval = |model: &Model, rank: Option<usize>, c: &Condition, sql: bool| {
            Eval {
                model,
                rank,
                row: &row,
                sql,
            }
            .condition(c)
                == Some(true)
        };
        let new_admits =
            |sql: bool| new_all || new_only.iter().any(|c| eval(new_model, new_rank, c, sql));
        let old_admits = |sql: bool| old_only.iter().any(|c| eval(old_model, old_rank, c, sql));
        if new_admits(true) && !old_admits(false) {
            let verified = new_admits(false) && !old_admits(true);
            return Some(Counterexample {
                tenant_wide: false,
                role: Some(role.to_owned()),
                row: row
                    .into_iter()
                    .map(|(c, v)| (c.to_owned(), v.clone()))
                    .collect(),
                unverified: !verified,
            });
        }
        // next combination
        for (i, d) in index.iter_mut().zip(&domains) {
            *i += 1;
            if *i < d.len() {
                break;
            }
            *i = 0;
        }
    }
    None
}

/// The candidate values the search tries for `column` of `table` under `command` (the
/// domain described in the module doc), given the literals of the conditions involved; empty
/// when the table has no such column.
pub fn column_domain(
    table: &Table,
    column: &str,
    command: Command,
    literals: &[&Literal],
) -> Vec<Value> {
    domain(table, column, command, literals)
}

/// The literals `condition` names (the seeds of [`column_domain`]).
pub fn condition_literals(condition: &Condition) -> Vec<&Literal> {
    literals_of(condition)
}

/// Whether `condition` admits `row` for a caller whose role in the row's project has rank
/// `rank` in `model` (SQL's three-valued logic: `Some(false)` for a NULL result); `None`
/// when the answer depends on raw SQL the search cannot evaluate.
pub fn evaluate(
    model: &Model,
    rank: Option<usize>,
    row: &BTreeMap<&str, &Value>,
    condition: &Condition,
) -> Option<bool> {
    let eval = |sql: bool| {
        Eval {
            model,
            rank,
            row,
            sql,
        }
        .condition(condition)
            == Some(true)
    };
    let (admitting, refusing) = (eval(true), eval(false));
    (admitting == refusing).then_some(admitting)
}

/// Whether some of `conditions` admits `row` ([`evaluate`] of each, ORed): `Some(true)` when
/// one does, `None` when none does but some answer depends on raw SQL.
pub fn evaluate_any(
    model: &Model,
    rank: Option<usize>,
    row: &BTreeMap<&str, &Value>,
    conditions: &[Condition],
) -> Option<bool> {
    let answers: Vec<Option<bool>> = conditions
        .iter()
        .map(|c| evaluate(model, rank, row, c))
        .collect();
    if answers.contains(&Some(true)) {
        Some(true)
    } else if answers.contains(&None) {
        None
    } else {
        Some(false)
    }
}

/// The conditions of an access (`Some(empty)`: every row); `None` when denied.
fn disjuncts(access: &RoleAccess) -> Option<Vec<Condition>> {
    match access {
        RoleAccess::Denied => None,
        RoleAccess::AllRows => Some(Vec::new()),
        RoleAccess::Rows(conditions) => Some(conditions.clone()),
    }
}

fn literals_of(condition: &Condition) -> Vec<&Literal> {
    fn add(o: &Operand) -> Option<&Literal> {
        match o {
            Operand::Literal(l) => Some(l),
            _ => None,
        }
    }
    let mut out = Vec::new();
    let mut stack = vec![condition];
    while let Some(c) = stack.pop() {
        match c {
            Condition::And(a, b) | Condition::Or(a, b) => {
                stack.push(a);
                stack.push(b);
            }
            Condition::Not(a) => stack.push(a),
            Condition::Compare { left, right, .. } => {
                out.extend(add(left));
                out.extend(add(right));
            }
            Condition::In { values, .. } => out.extend(values.iter().filter_map(add)),
            _ => {}
        }
    }
    out
}

/// The candidate values of `column`, most natural first, NULL last.
fn domain(table: &Table, column: &str, command: Command, literals: &[&Literal]) -> Vec<Value> {
    let Some(col) = table.column(column) else {
        return Vec::new();
    };
    if command == Command::Insert {
        // The database writes stamped columns on insert, whatever the caller sends.
        if let Some(stamp) = col.stamp {
            if stamp.value == StampValue::CurrentUser
                && matches!(stamp.when, StampWhen::Insert | StampWhen::Update)
            {
                return vec![Value::CallerUserId];
            }
        }
    }
    let mut out: Vec<Value> = Vec::new();
    let mut push = |v: Value| {
        if !out.contains(&v) {
            out.push(v);
        }
    };
    match col.ty {
        SqlType::Uuid => {
            push(Value::CallerUserId);
            push(Value::OtherUserId);
            push(Value::CallerTenantId);
            for l in literals {
                if let Literal::String(_) = l {
                    push(Value::Literal((*l).clone()));
                }
            }
        }
        SqlType::Boolean => {
            push(Value::Literal(Literal::Bool(true)));
            push(Value::Literal(Literal::Bool(false)));
        }
        SqlType::SmallInt | SqlType::Integer | SqlType::BigInt => {
            for l in literals {
                if let Literal::Integer(i) = l {
                    push(Value::Literal(Literal::Integer(*i)));
                    push(Value::Literal(Literal::Integer(i.saturating_sub(1))));
                    push(Value::Literal(Literal::Integer(i.saturating_add(1))));
                }
            }
            push(Value::Literal(Literal::Integer(0)));
        }
        SqlType::Real | SqlType::Double => {
            for l in literals {
                if matches!(l, Literal::Integer(_) | Literal::Decimal(_)) {
                    push(Value::Literal((*l).clone()));
                }
            }
            push(Value::Literal(Literal::Integer(0)));
        }
        _ => {
            for l in literals {
                if let Literal::String(_) = l {
                    push(Value::Literal((*l).clone()));
                }
            }
            if matches!(col.ty, SqlType::Text) {
                push(Value::Literal(Literal::String("x".to_owned())));
            }
        }
    }
    if col.nullable {
        push(Value::Null);
    }
    out
}

/// Evaluates a condition on one row for one caller (SQL's three-valued logic: `None` is NULL).
struct Eval<'a> {
    model: &'a Model,
    rank: Option<usize>,
    row: &'a BTreeMap<&'a str, &'a Value>,
    /// What a raw SQL condition is taken to be.
    sql: bool,
}

impl Eval<'_> {
    fn condition(&self, condition: &Condition) -> Option<bool> {
        match condition {
            Condition::And(a, b) => match (self.condition(a), self.condition(b)) {
                (Some(false), _) | (_, Some(false)) => Some(false),
                (Some(true), Some(true)) => Some(true),
                _ => None,
            },
            Condition::Or(a, b) => match (self.condition(a), self.condition(b)) {
                (Some(true), _) | (_, Some(true)) => Some(true),
                (Some(false), Some(false)) => Some(false),
                _ => None,
            },
            Condition::Not(a) => self.condition(a).map(|v| !v),
            Condition::Compare { left, op, right } => {
                compare(&self.operand(left)?, *op, &self.operand(right)?)
            }
            Condition::IsNull { operand, negated } => {
                let null = self.operand(operand).is_none();
                Some(null != *negated)
            }
            Condition::In { operand, values } => {
                let left = self.operand(operand)?;
                let mut unknown = false;
                for v in values {
                    match self
                        .operand(v)
                        .and_then(|r| compare(&left, CompareOp::Eq, &r))
                    {
                        Some(true) => return Some(true),
                        None => unknown = true,
                        Some(false) => {}
                    }
                }
                if unknown {
                    None
                } else {
                    Some(false)
                }
            }
            Condition::Flag(column) => match self.row.get(column.as_str()) {
                Some(Value::Literal(Literal::Bool(b))) => Some(*b),
                _ => None,
            },
            Condition::Role { op, role } => {
                let caller = self.rank?;
                let other = self.model.role_rank(role)?;
                Some(op.holds(caller, other))
            }
            Condition::Sql(_) => Some(self.sql),
        }
    }

    /// The operand's value; `None` for NULL.
    fn operand(&self, operand: &Operand) -> Option<Value> {
        let value = match operand {
            Operand::Column(c) => (*self.row.get(c.as_str())?).clone(),
            Operand::CurrentUser => Value::CallerUserId,
            Operand::CurrentTenant => Value::CallerTenantId,
            Operand::Literal(l) => Value::Literal(l.clone()),
        };
        (value != Value::Null).then_some(value)
    }
}

/// `left op right` for two non-NULL values; `None` when they cannot be ordered.
fn compare(left: &Value, op: CompareOp, right: &Value) -> Option<bool> {
    use std::cmp::Ordering;
    let ordering = match (left, right) {
        (Value::Literal(a), Value::Literal(b)) => match (a, b) {
            (Literal::Integer(x), Literal::Integer(y)) => x.cmp(y),
            (Literal::String(x), Literal::String(y)) => x.cmp(y),
            (Literal::Bool(x), Literal::Bool(y)) => x.cmp(y),
            (a, b) => {
                let (x, y) = (number(a)?, number(b)?);
                x.partial_cmp(&y)?
            }
        },
        (a, b) if a == b => Ordering::Equal,
        // Distinct ids: unequal, and never ordered by a condition the validator accepts.
        _ if !op.is_ordering() => Ordering::Less,
        _ => return None,
    };
    Some(match op {
        CompareOp::Eq => ordering == Ordering::Equal,
        CompareOp::Ne => ordering != Ordering::Equal,
        CompareOp::Lt => ordering == Ordering::Less,
        CompareOp::Le => ordering != Ordering::Greater,
        CompareOp::Gt => ordering == Ordering::Greater,
        CompareOp::Ge => ordering != Ordering::Less,
    })
}

fn number(literal: &Literal) -> Option<f64> {
    match literal {
        Literal::Integer(i) => Some(*i as f64),
        Literal::Decimal(d) => d.parse().ok(),
        _ => None,
    }
}
