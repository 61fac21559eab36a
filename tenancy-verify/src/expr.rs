//! Policy expressions as PostgreSQL's own parser reads them (`pg_query`), reduced to the few
//! forms a tenancy policy is made of. Anything else is kept as [`Unsupported`]: the proof then
//! fails closed for the commands that expression decides.

use pg_query::protobuf::{
    a_const, AExprKind, BoolExprType, BoolTestType, NullTestType, SubLinkType,
};
use pg_query::{Node, NodeEnum};
use serde::Serialize;
use tenancy_core::condition::CompareOp;

/// A policy expression in the forms the proof evaluates.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Expr {
    /// A constant.
    Const(Constant),
    /// A column of the row.
    Column(String),
    /// Every argument holds.
    And(Vec<Expr>),
    /// Some argument holds.
    Or(Vec<Expr>),
    /// Does not hold.
    Not(Box<Expr>),
    /// `left op right`.
    Compare(Box<Expr>, CompareOp, Box<Expr>),
    /// `left = ANY (array)`.
    EqualsAny(Box<Expr>, Box<Expr>),
    /// `operand IN (values)` (`negated`: `NOT IN`).
    In(Box<Expr>, Vec<Expr>, bool),
    /// `operand IS [NOT] NULL` (`true`: `IS NOT NULL`).
    IsNull(Box<Expr>, bool),
    /// `operand IS [NOT] TRUE|FALSE`: (expected value, negated).
    IsBool(Box<Expr>, bool, bool),
    /// The first argument that is not NULL.
    Coalesce(Vec<Expr>),
    /// `CASE [arg] WHEN .. THEN .. ELSE .. END`.
    Case {
        /// The tested value of a simple `CASE`.
        arg: Option<Box<Expr>>,
        /// `(WHEN, THEN)` pairs.
        whens: Vec<(Expr, Expr)>,
        /// `ELSE` (NULL when absent).
        otherwise: Option<Box<Expr>>,
    },
    /// The helper `current_tenant_id()`.
    CurrentTenant,
    /// The helper `current_user_id()`.
    CurrentUser,
    /// The helper `project_ids(<role>)`: the caller's projects where its role is at least
    /// the argument.
    ProjectIds(Box<Expr>),
    /// `cardinality(array)`.
    Cardinality(Box<Expr>),
}

/// A constant of a policy expression.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "kind", content = "value")]
pub enum Constant {
    /// NULL.
    Null,
    /// `true` / `false`.
    Bool(bool),
    /// An integer.
    Int(i64),
    /// A decimal, as written.
    Decimal(String),
    /// A string (also uuids, dates and enum labels).
    Text(String),
}

/// Why an expression is outside what the proof evaluates.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Unsupported(pub String);

type Parsed = Result<Expr, Unsupported>;

fn unsupported<T>(what: impl Into<String>) -> Result<T, Unsupported> {
    Err(Unsupported(what.into()))
}

/// Reads the parsed expression `node` of a policy whose helpers live in `helper_schema`.
pub fn from_node(node: &Node, helper_schema: &str) -> Parsed {
    Reader { helper_schema }.expr(node)
}

/// Parses `text` (a policy's `USING` or `WITH CHECK` expression as `pg_policies` prints it)
/// with PostgreSQL's parser.
pub fn parse_text(text: &str, helper_schema: &str) -> Parsed {
    let parsed = pg_query::parse(&format!("SELECT {text}"), 0)
        .map_err(|e| Unsupported(format!("PostgreSQL's parser refuses it: {e}")))?;
    let target = parsed
        .protobuf
        .stmts
        .first()
        .and_then(|s| s.stmt.as_ref())
        .and_then(|s| match &s.node {
            Some(NodeEnum::SelectStmt(select)) if select.target_list.len() == 1 => {
                select.target_list.first()
            }
            _ => None,
        })
        .and_then(|t| match &t.node {
            Some(NodeEnum::ResTarget(r)) => r.val.as_deref(),
            _ => None,
        });
    match target {
        Some(node) => from_node(node, helper_schema),
        None => unsupported("not a single expression"),
    }
}

/// The names of a qualified name list (`[schema, name]`), as strings.
pub(crate) fn names(nodes: &[Node]) -> Vec<String> {
    nodes
        .iter()
        .filter_map(|n| match &n.node {
            Some(NodeEnum::String(s)) => Some(s.sval.clone()),
            _ => None,
        })
        .collect()
}

struct Reader<'a> {
    helper_schema: &'a str,
}

impl Reader<'_> {
    fn boxed(&self, node: Option<&Node>) -> Result<Box<Expr>, Unsupported> {
        match node {
            Some(n) => Ok(Box::new(self.expr(n)?)),
            None => unsupported("an empty operand"),
        }
    }

    fn all(&self, nodes: &[Node]) -> Result<Vec<Expr>, Unsupported> {
        nodes.iter().map(|n| self.expr(n)).collect()
    }

    fn expr(&self, node: &Node) -> Parsed {
        let Some(inner) = &node.node else {
            return unsupported("an empty node");
        };
        match inner {
            NodeEnum::AConst(c) => Ok(Expr::Const(constant(c)?)),
            NodeEnum::ColumnRef(c) => match names(&c.fields).last() {
                Some(column) if names(&c.fields).len() == c.fields.len() => {
                    Ok(Expr::Column(column.clone()))
                }
                _ => unsupported("a column reference with `*`"),
            },
            NodeEnum::TypeCast(cast) => self.expr(
                cast.arg
                    .as_deref()
                    .ok_or_else(|| Unsupported("an empty cast".into()))?,
            ),
            NodeEnum::BoolExpr(b) => {
                let args = self.all(&b.args)?;
                match b.boolop() {
                    BoolExprType::AndExpr => Ok(Expr::And(args)),
                    BoolExprType::OrExpr => Ok(Expr::Or(args)),
                    BoolExprType::NotExpr => match args.into_iter().next() {
                        Some(a) => Ok(Expr::Not(Box::new(a))),
                        None => unsupported("NOT without an argument"),
                    },
                    BoolExprType::Undefined => unsupported("an unknown boolean operator"),
                }
            }
            NodeEnum::AExpr(a) => self.a_expr(a),
            NodeEnum::NullTest(t) => Ok(Expr::IsNull(
                self.boxed(t.arg.as_deref())?,
                t.nulltesttype() == NullTestType::IsNotNull,
            )),
            NodeEnum::BooleanTest(t) => {
                let arg = self.boxed(t.arg.as_deref())?;
                match t.booltesttype() {
                    BoolTestType::IsTrue => Ok(Expr::IsBool(arg, true, false)),
                    BoolTestType::IsNotTrue => Ok(Expr::IsBool(arg, true, true)),
                    BoolTestType::IsFalse => Ok(Expr::IsBool(arg, false, false)),
                    BoolTestType::IsNotFalse => Ok(Expr::IsBool(arg, false, true)),
                    _ => unsupported("IS [NOT] UNKNOWN"),
                }
            }
            NodeEnum::CoalesceExpr(c) => Ok(Expr::Coalesce(self.all(&c.args)?)),
            NodeEnum::CaseExpr(c) => {
                let arg = match c.arg.as_deref() {
                    Some(a) => Some(Box::new(self.expr(a)?)),
                    None => None,
                };
                let mut whens = Vec::new();
                for w in &c.args {
                    match &w.node {
                        Some(NodeEnum::CaseWhen(w)) => whens.push((
                            *self.boxed(w.expr.as_deref())?,
                            *self.boxed(w.result.as_deref())?,
                        )),
                        _ => return unsupported("a CASE branch"),
                    }
                }
                let otherwise = match c.defresult.as_deref() {
                    Some(d) => Some(Box::new(self.expr(d)?)),
                    None => None,
                };
                Ok(Expr::Case {
                    arg,
                    whens,
                    otherwise,
                })
            }
            NodeEnum::SubLink(s) => {
                if s.sub_link_type() != SubLinkType::ExprSublink {
                    return unsupported("a sub-select other than `(SELECT expression)`");
                }
                let select = match s.subselect.as_deref().and_then(|n| n.node.as_ref()) {
                    Some(NodeEnum::SelectStmt(select)) => select,
                    _ => return unsupported("a sub-select"),
                };
                let plain = select.from_clause.is_empty()
                    && select.where_clause.is_none()
                    && select.with_clause.is_none()
                    && select.group_clause.is_empty()
                    && select.having_clause.is_none()
                    && select.values_lists.is_empty()
                    && select.larg.is_none()
                    && select.target_list.len() == 1;
                if !plain {
                    return unsupported("a sub-select that reads tables");
                }
                match select.target_list.first().and_then(|t| t.node.as_ref()) {
                    Some(NodeEnum::ResTarget(r)) => self.boxed(r.val.as_deref()).map(|b| *b),
                    _ => unsupported("a sub-select"),
                }
            }
            NodeEnum::FuncCall(f) => self.call(f),
            other => unsupported(format!("{:?}", node_kind(other))),
        }
    }

    fn a_expr(&self, a: &pg_query::protobuf::AExpr) -> Parsed {
        let op = names(&a.name);
        let op = op.last().map(String::as_str).unwrap_or("");
        let qualified_ok = match names(&a.name).first().map(String::as_str) {
            Some("pg_catalog") | None => true,
            Some(_) => names(&a.name).len() == 1,
        };
        if !qualified_ok {
            return unsupported(format!("the operator `{op}` of another schema"));
        }
        match a.kind() {
            AExprKind::AexprOp => {
                let compare = match op {
                    "=" => CompareOp::Eq,
                    "<>" | "!=" => CompareOp::Ne,
                    "<" => CompareOp::Lt,
                    "<=" => CompareOp::Le,
                    ">" => CompareOp::Gt,
                    ">=" => CompareOp::Ge,
                    _ => return unsupported(format!("the operator `{op}`")),
                };
                Ok(Expr::Compare(
                    self.boxed(a.lexpr.as_deref())?,
                    compare,
                    self.boxed(a.rexpr.as_deref())?,
                ))
            }
            AExprKind::AexprOpAny if op == "=" => Ok(Expr::EqualsAny(
                self.boxed(a.lexpr.as_deref())?,
                self.boxed(a.rexpr.as_deref())?,
            )),
            AExprKind::AexprIn => {
                let values = match a.rexpr.as_deref().and_then(|n| n.node.as_ref()) {
                    Some(NodeEnum::List(list)) => self.all(&list.items)?,
                    _ => return unsupported("IN without a list"),
                };
                Ok(Expr::In(
                    self.boxed(a.lexpr.as_deref())?,
                    values,
                    op == "<>",
                ))
            }
            _ => unsupported(format!("the operator form `{op}`")),
        }
    }

    fn call(&self, f: &pg_query::protobuf::FuncCall) -> Parsed {
        let name = names(&f.funcname);
        let (schema, function) = match name.as_slice() {
            [function] => (None, function.as_str()),
            [schema, function] => (Some(schema.as_str()), function.as_str()),
            _ => return unsupported("a function name"),
        };
        let helper = schema == Some(self.helper_schema);
        match (function, f.args.as_slice()) {
            ("current_tenant_id", []) if helper => Ok(Expr::CurrentTenant),
            ("current_user_id", []) if helper => Ok(Expr::CurrentUser),
            ("project_ids", [role]) if helper => Ok(Expr::ProjectIds(Box::new(self.expr(role)?))),
            ("cardinality", [array]) if matches!(schema, None | Some("pg_catalog")) => {
                Ok(Expr::Cardinality(Box::new(self.expr(array)?)))
            }
            _ => unsupported(format!("the function `{}`", name.join("."))),
        }
    }
}

fn constant(c: &pg_query::protobuf::AConst) -> Result<Constant, Unsupported> {
    if c.isnull {
        return Ok(Constant::Null);
    }
    match &c.val {
        Some(a_const::Val::Ival(i)) => Ok(Constant::Int(i64::from(i.ival))),
        Some(a_const::Val::Fval(f)) => Ok(Constant::Decimal(f.fval.clone())),
        Some(a_const::Val::Boolval(b)) => Ok(Constant::Bool(b.boolval)),
        Some(a_const::Val::Sval(s)) => Ok(Constant::Text(s.sval.clone())),
        Some(a_const::Val::Bsval(_)) | None => unsupported("a bit-string constant"),
    }
}

/// The node's kind, for messages (`SubLink`, `RowExpr`, ...).
fn node_kind(node: &NodeEnum) -> String {
    let debug = format!("{node:?}");
    debug
        .split(|c: char| !c.is_alphanumeric() && c != '_')
        .next()
        .unwrap_or("expression")
        .to_owned()
}

impl Expr {
    /// The row columns the expression reads.
    pub fn columns(&self) -> Vec<String> {
        let mut out = Vec::new();
        self.walk(&mut |e| {
            if let Expr::Column(c) = e {
                if !out.contains(c) {
                    out.push(c.clone());
                }
            }
        });
        out
    }

    /// The constants the expression names.
    pub fn constants(&self) -> Vec<Constant> {
        let mut out = Vec::new();
        self.walk(&mut |e| {
            if let Expr::Const(c) = e {
                if !out.contains(c) {
                    out.push(c.clone());
                }
            }
        });
        out
    }

    fn walk(&self, f: &mut dyn FnMut(&Expr)) {
        f(self);
        match self {
            Expr::And(v) | Expr::Or(v) | Expr::Coalesce(v) => v.iter().for_each(|e| e.walk(f)),
            Expr::Not(e) | Expr::IsNull(e, _) | Expr::IsBool(e, ..) => e.walk(f),
            Expr::ProjectIds(e) | Expr::Cardinality(e) => e.walk(f),
            Expr::Compare(a, _, b) | Expr::EqualsAny(a, b) => {
                a.walk(f);
                b.walk(f);
            }
            Expr::In(a, v, _) => {
                a.walk(f);
                v.iter().for_each(|e| e.walk(f));
            }
            Expr::Case {
                arg,
                whens,
                otherwise,
            } => {
                if let Some(a) = arg {
                    a.walk(f);
                }
                for (w, t) in whens {
                    w.walk(f);
                    t.walk(f);
                }
                if let Some(o) = otherwise {
                    o.walk(f);
                }
            }
            Expr::Const(_) | Expr::Column(_) | Expr::CurrentTenant | Expr::CurrentUser => {}
        }
    }
}
