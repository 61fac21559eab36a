//! The proof: for every tenant-owned table of the model, every command and every caller and
//! row of a small, exhaustive set of worlds, what the deployed policies admit is evaluated and
//! compared with the model's access matrix ([`AccessMatrix`], the matrix of `ACCESS.md` and
//! `tenancy diff`).
//!
//! A world is a caller (its role in project P of tenant T, or no role there) and a row: its
//! tenant (T or another tenant T2), its project (P, a project Q of T where the caller holds no
//! role, or P itself on a row of T2, which a foreign key would refuse but the boundary must
//! refuse on its own), and the values of the columns the policies and the model's conditions
//! read (the domain of [`counterexample::column_domain`]: their literals, the caller's and
//! another user's id, `true`/`false`, NULL). The helpers are the context the runtime
//! installs: `current_tenant_id()` is T, `current_user_id()` the caller, `project_ids(r)` is
//! `{P}` when the caller's role reaches `r` and empty otherwise. On the tenant memberships
//! table the caller's role is its tenant-wide role and `project_ids(r)` is `{T}` when that
//! role reaches `r` (the runtime lists the tenant id at those ranks, docs/context.md).

use std::collections::{BTreeMap, BTreeSet};

use tenancy_core::access::counterexample::{self, Value};
use tenancy_core::access::{AccessMatrix, RoleAccess};
use tenancy_core::condition::{CompareOp, Condition, Literal};
use tenancy_core::model::{
    Command, Model, Table, TableKind, ID_COLUMN, PROJECT_COLUMN, ROLE_COLUMN, TENANT_COLUMN,
    USER_COLUMN,
};
use tenancy_core::output::GeneratedFile;
use tenancy_core::sql::{generate_migrations, Target};

use crate::deployed::{Deployed, DeployedPolicy, PolicyExpr};
use crate::expr::{Constant, Expr};
use crate::report::{CommandProof, Failure, FailureKind, Phase, Report, Witness};

/// The most worlds tried for one command before the proof gives up on it.
const WORLD_LIMIT: usize = 500_000;

/// Proves that `deployed` enforces `model` (generated for `target`): see the module doc.
pub fn verify(model: &Model, deployed: &Deployed, target: Target) -> Report {
    let matrix = AccessMatrix::of(model);
    let generated = generated_policy_names(model, target);
    let mut report = Report {
        source: deployed.source.clone(),
        proofs: Vec::new(),
        failures: Vec::new(),
    };
    for table in model.tables_in_dependency_order() {
        if table.kind == TableKind::Global {
            continue;
        }
        let Some(state) = deployed.table(&table.name) else {
            report.failures.push(Failure {
                table: table.name.clone(),
                command: None,
                phase: None,
                kind: FailureKind::MissingTable,
                message: format!("table `{}` is not deployed", table.name),
                counterexample: None,
            });
            continue;
        };
        let Some(access) = matrix.table(&table.name) else {
            continue;
        };
        let prover = Prover {
            model,
            table,
            policies: state.policies.iter().filter(|p| p.applies).collect(),
            rls_enabled: state.rls_enabled,
            privileges: &state.privileges,
        };
        for command in Command::ALL {
            let Some(command_access) = access.command(command) else {
                continue;
            };
            for phase in Phase::of(command) {
                let raw_sql = std::cell::Cell::new(false);
                let mut outcome = prover.prove(command, phase, command_access, &raw_sql);
                let proven = outcome.is_empty();
                report.failures.append(&mut outcome);
                report.proofs.push(CommandProof {
                    table: table.name.clone(),
                    command,
                    phase,
                    proven,
                    rights: crate::report::rights_summary(command_access),
                    raw_sql_unchecked: raw_sql.get(),
                });
            }
        }
        // Permissive policies the generator does not write.
        let expected = generated.get(&table.name);
        for policy in state.policies.iter().filter(|p| p.permissive && p.applies) {
            if expected.is_some_and(|names| names.contains(&policy.name)) {
                continue;
            }
            let commands: Vec<Command> = Command::ALL
                .into_iter()
                .filter(|c| policy.command.covers(*c))
                .collect();
            let witness = commands.iter().find_map(|c| {
                let command_access = access.command(*c)?;
                Phase::of(*c).into_iter().find_map(|phase| {
                    prover
                        .widening_by(policy, *c, phase, command_access)
                        .map(|w| (*c, phase, w))
                })
            });
            let (command, phase, counterexample) = match witness {
                Some((c, p, w)) => (Some(c), Some(p), Some(w)),
                None => (commands.first().copied(), None, None),
            };
            let admits = match (&counterexample, command) {
                (Some(w), Some(c)) => format!(": {}", w.describe(&table.name, c)),
                _ => ": it admits no row the model refuses, but nothing generated it".to_owned(),
            };
            report.failures.push(Failure {
                table: table.name.clone(),
                command,
                phase,
                kind: FailureKind::ExtraPolicy,
                message: format!(
                    "permissive policy `{}` on `{}` is not in the model{admits}",
                    policy.name, table.name
                ),
                counterexample,
            });
        }
    }
    report
}

/// The names of the policies the generator writes for `model`, by table.
fn generated_policy_names(model: &Model, target: Target) -> BTreeMap<String, BTreeSet<String>> {
    let files: Vec<(String, String)> = generate_migrations(model, target)
        .into_iter()
        .map(|GeneratedFile { path, contents }| (path.display().to_string(), contents))
        .collect();
    let mut out: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    if let Ok(generated) = Deployed::from_sql(&files, model) {
        for table in &model.tables {
            if let Some(state) = generated.table(&table.name) {
                out.insert(
                    table.name.clone(),
                    state.policies.iter().map(|p| p.name.clone()).collect(),
                );
            }
        }
    }
    out
}

/// The tenant of a row in a world.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RowTenant {
    /// The caller's tenant T.
    Caller,
    /// Another tenant T2.
    Other,
}

/// The project of a row in a world.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RowProject {
    /// Project P, where the caller holds its role.
    P,
    /// Another project Q (of the row's tenant), where the caller holds no role.
    Q,
}

/// An identity in a world.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Id {
    Tenant(RowTenant),
    Project(RowProject),
    CallerUser,
    OtherUser,
}

/// A value during evaluation.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Cell {
    Null,
    Bool(bool),
    Int(i64),
    Decimal(String),
    Text(String),
    Id(Id),
    Ids(Vec<Id>),
}

/// One caller and row.
struct World<'v> {
    rank: Option<usize>,
    tenant: RowTenant,
    project: RowProject,
    /// Memberships: the row's user is the caller.
    own_user: bool,
    /// Memberships: the row's role.
    row_role: Option<usize>,
    /// The other columns read.
    values: BTreeMap<&'v str, &'v Value>,
}

struct Prover<'a> {
    model: &'a Model,
    table: &'a Table,
    policies: Vec<&'a DeployedPolicy>,
    rls_enabled: bool,
    privileges: &'a BTreeSet<Command>,
}

impl Prover<'_> {
    /// The expression of `policy` that decides `phase`: `USING` for rows read, `WITH CHECK`
    /// (else `USING`, as PostgreSQL does) for rows written.
    fn expr_of<'p>(&self, policy: &'p DeployedPolicy, phase: Phase) -> Option<&'p PolicyExpr> {
        match phase {
            Phase::Existing => policy.using.as_ref(),
            Phase::New => policy.check.as_ref().or(policy.using.as_ref()),
        }
    }

    fn applicable(&self, command: Command) -> impl Iterator<Item = &&DeployedPolicy> {
        self.policies
            .iter()
            .filter(move |p| p.command.covers(command))
    }

    /// Every failure of one command and phase (empty: proven).
    /// Sets `raw_sql` when the model's answer depended on raw SQL somewhere (those worlds are
    /// checked for the boundary only).
    fn prove(
        &self,
        command: Command,
        phase: Phase,
        access: &tenancy_core::access::CommandAccess,
        raw_sql: &std::cell::Cell<bool>,
    ) -> Vec<Failure> {
        let table = &self.table.name;
        let failure = |kind: FailureKind, message: String, witness: Option<Witness>| Failure {
            table: table.clone(),
            command: Some(command),
            phase: Some(phase),
            kind,
            message,
            counterexample: witness,
        };
        // Every expression that decides this command must be readable.
        for policy in self.applicable(command) {
            if let Some(Err(why)) = self.expr_of(policy, phase).map(|e| &e.expr) {
                return vec![failure(
                    FailureKind::Unprovable,
                    format!(
                        "{command} on `{table}` cannot be proven: policy `{}` uses {} ({})",
                        policy.name,
                        why.0,
                        self.expr_of(policy, phase)
                            .map(|e| e.text.as_str())
                            .unwrap_or("")
                    ),
                    None,
                )];
            }
        }
        let granted = self.privileges.contains(&command);
        let mut boundary = None;
        let mut widened = None;
        let mut narrowed = None;
        let result = self.each_world(command, phase, None, access, |world, witness| {
            let deployed = self.deployed_admits(world, command, phase, granted, None)?;
            let model = self.model_admits(world, command, access);
            if model.is_none() {
                raw_sql.set(true);
            }
            if deployed && world.tenant == RowTenant::Other && boundary.is_none() {
                boundary = Some(witness());
            }
            match model {
                Some(false) if deployed && widened.is_none() => widened = Some(witness()),
                Some(true) if !deployed && narrowed.is_none() => narrowed = Some(witness()),
                _ => {}
            }
            Ok(boundary.is_some() && widened.is_some() && narrowed.is_some())
        });
        if let Err(why) = result {
            return vec![failure(
                FailureKind::Unprovable,
                format!("{command} on `{table}` cannot be proven: {why}"),
                None,
            )];
        }
        let rls = if self.rls_enabled {
            String::new()
        } else {
            format!(" (row-level security is not enabled on `{table}`)")
        };
        let mut out = Vec::new();
        if let Some(w) = boundary {
            out.push(failure(
                FailureKind::Boundary,
                format!(
                    "the tenant boundary is not a conjunct of what {command} admits{rls}: {}",
                    w.describe(table, command)
                ),
                Some(w),
            ));
        }
        if let Some(w) = widened {
            // A boundary breach is also a widening; report the widening only when it shows
            // something else (a row of the caller's own tenant).
            if w.tenant == "T" || out.is_empty() {
                out.push(failure(
                    FailureKind::Widened,
                    format!(
                        "the deployed policies admit more than the model{rls}: {}",
                        w.describe(table, command)
                    ),
                    Some(w),
                ));
            }
        }
        if let Some(w) = narrowed {
            out.push(failure(
                FailureKind::Narrowed,
                format!(
                    "the deployed policies refuse what the model grants: {}",
                    w.describe_refused(table, command)
                ),
                Some(w),
            ));
        }
        out
    }

    /// A world where `policy` alone (with the restrictive policies) admits a row the model
    /// refuses.
    fn widening_by(
        &self,
        policy: &DeployedPolicy,
        command: Command,
        phase: Phase,
        access: &tenancy_core::access::CommandAccess,
    ) -> Option<Witness> {
        let granted = self.privileges.contains(&command);
        let mut found = None;
        let _ = self.each_world(command, phase, Some(policy), access, |world, witness| {
            let deployed = self.deployed_admits(world, command, phase, granted, Some(policy))?;
            if deployed && self.model_admits(world, command, access) == Some(false) {
                found = Some(witness());
                return Ok(true);
            }
            Ok(false)
        });
        found
    }

    /// Calls `visit` for every world until it returns `Ok(true)`.
    fn each_world(
        &self,
        command: Command,
        phase: Phase,
        only: Option<&DeployedPolicy>,
        access: &tenancy_core::access::CommandAccess,
        mut visit: impl FnMut(&World<'_>, &dyn Fn() -> Witness) -> Result<bool, String>,
    ) -> Result<(), String> {
        let structural = structural_columns(self.table.kind);
        // The columns read and the literals seeding their domains.
        let mut columns: Vec<String> = Vec::new();
        let mut literals: Vec<Literal> = Vec::new();
        let exprs: Vec<&Expr> = self
            .applicable(command)
            .copied()
            .chain(only)
            .filter_map(|p| self.expr_of(p, phase))
            .filter_map(|e| e.expr.as_ref().ok())
            .collect();
        for e in &exprs {
            columns.extend(e.columns());
            literals.extend(e.constants().into_iter().filter_map(|c| match c {
                Constant::Bool(b) => Some(Literal::Bool(b)),
                Constant::Int(i) => Some(Literal::Integer(i)),
                Constant::Decimal(d) => Some(Literal::Decimal(d)),
                Constant::Text(t) => Some(Literal::String(t)),
                Constant::Null => None,
            }));
        }
        let conditions = model_conditions(access);
        for c in &conditions {
            columns.extend(c.columns().into_iter().map(str::to_owned));
            literals.extend(counterexample::condition_literals(c).into_iter().cloned());
        }
        let mut seen = BTreeSet::new();
        columns.retain(|c| !structural.contains(&c.as_str()) && seen.insert(c.clone()));
        let literal_refs: Vec<&Literal> = literals.iter().collect();
        let mut domains: Vec<Vec<Value>> = Vec::new();
        for c in &columns {
            let domain = counterexample::column_domain(self.table, c, command, &literal_refs);
            if domain.is_empty() {
                return Err(format!(
                    "a policy reads `{c}`, which is not a column of the model's `{}`",
                    self.table.name
                ));
            }
            domains.push(domain);
        }
        let ranks: Vec<Option<usize>> = std::iter::once(None)
            .chain((0..self.model.roles.len()).map(Some))
            .collect();
        let places: &[(RowTenant, RowProject)] = match self.table.kind {
            TableKind::Tenants | TableKind::TenantMemberships => &[
                (RowTenant::Caller, RowProject::P),
                (RowTenant::Other, RowProject::P),
            ],
            _ => &[
                (RowTenant::Caller, RowProject::P),
                (RowTenant::Caller, RowProject::Q),
                (RowTenant::Other, RowProject::P),
                (RowTenant::Other, RowProject::Q),
            ],
        };
        let memberships = matches!(
            self.table.kind,
            TableKind::Memberships | TableKind::TenantMemberships
        );
        let users: &[bool] = if memberships { &[true, false] } else { &[true] };
        let row_roles: Vec<Option<usize>> = if memberships {
            (0..self.model.roles.len()).map(Some).collect()
        } else {
            vec![None]
        };
        let total = domains
            .iter()
            .try_fold(1usize, |acc, d| acc.checked_mul(d.len()))
            .filter(|n| {
                n.checked_mul(ranks.len() * places.len() * users.len() * row_roles.len())
                    .is_some_and(|all| all <= WORLD_LIMIT)
            })
            .ok_or_else(|| "too many combinations of the columns its policies read".to_owned())?;
        for rank in &ranks {
            for (tenant, project) in places {
                for own_user in users {
                    for row_role in &row_roles {
                        let mut index = vec![0usize; domains.len()];
                        for _ in 0..total {
                            let values: BTreeMap<&str, &Value> = columns
                                .iter()
                                .zip(index.iter().zip(&domains))
                                .map(|(c, (i, d))| (c.as_str(), &d[*i]))
                                .collect();
                            let world = World {
                                rank: *rank,
                                tenant: *tenant,
                                project: *project,
                                own_user: *own_user,
                                row_role: *row_role,
                                values,
                            };
                            let witness = || self.witness(&world);
                            if visit(&world, &witness)? {
                                return Ok(());
                            }
                            for (i, d) in index.iter_mut().zip(&domains) {
                                *i += 1;
                                if *i < d.len() {
                                    break;
                                }
                                *i = 0;
                            }
                        }
                    }
                }
            }
        }
        Ok(())
    }

    fn witness(&self, world: &World<'_>) -> Witness {
        let mut row: BTreeMap<String, String> = world
            .values
            .iter()
            .map(|(c, v)| ((*c).to_owned(), v.describe()))
            .collect();
        if matches!(
            self.table.kind,
            TableKind::Memberships | TableKind::TenantMemberships
        ) {
            row.insert(
                USER_COLUMN.to_owned(),
                if world.own_user {
                    "the caller's user id".to_owned()
                } else {
                    "another user's id".to_owned()
                },
            );
            if let Some(role) = world.row_role.and_then(|r| self.model.roles.get(r)) {
                row.insert(ROLE_COLUMN.to_owned(), format!("'{role}'"));
            }
        }
        Witness {
            role: world.rank.and_then(|r| self.model.roles.get(r).cloned()),
            tenant: match world.tenant {
                RowTenant::Caller => "T",
                RowTenant::Other => "T2",
            }
            .to_owned(),
            project: (!matches!(
                self.table.kind,
                TableKind::Tenants | TableKind::TenantMemberships
            ))
            .then(|| {
                match world.project {
                    RowProject::P => "P",
                    RowProject::Q => "Q",
                }
                .to_owned()
            }),
            row,
        }
    }

    /// What the model grants in `world`: `None` when it depends on raw SQL.
    fn model_admits(
        &self,
        world: &World<'_>,
        command: Command,
        access: &tenancy_core::access::CommandAccess,
    ) -> Option<bool> {
        if !access.granted || world.tenant != RowTenant::Caller {
            return Some(false);
        }
        let role_admits = || -> Option<bool> {
            let Some(rank) = world.rank else {
                return Some(false);
            };
            let role = self.model.roles.get(rank)?;
            match access.access_of(role) {
                RoleAccess::Denied => Some(false),
                RoleAccess::AllRows => Some(true),
                RoleAccess::Rows(conditions) => {
                    counterexample::evaluate_any(self.model, Some(rank), &world.values, &conditions)
                }
            }
        };
        let admitted = match self.table.kind {
            TableKind::Tenants => role_admits()?,
            TableKind::TenantMemberships => {
                role_admits()? || (access.own_memberships && world.own_user)
            }
            TableKind::Global => true,
            _ => {
                let in_project = world.project == RowProject::P && role_admits()?;
                let own = access.own_memberships && world.own_user;
                in_project || own
            }
        };
        // The role ceiling (docs/security.md, "Authority inside the database"): a member
        // writes or removes only membership rows of a role at or below its own.
        let within = matches!((world.rank, world.row_role), (Some(r), Some(row)) if row <= r);
        let ceiling = command == Command::Select
            || match self.table.kind {
                TableKind::Memberships => world.project == RowProject::P && within,
                TableKind::TenantMemberships => within,
                _ => true,
            };
        Some(admitted && ceiling)
    }

    /// What the deployed policies admit in `world` (with `only`, that permissive policy
    /// alone next to the restrictive ones).
    fn deployed_admits(
        &self,
        world: &World<'_>,
        command: Command,
        phase: Phase,
        granted: bool,
        only: Option<&DeployedPolicy>,
    ) -> Result<bool, String> {
        if !granted {
            return Ok(false);
        }
        if !self.rls_enabled {
            return Ok(only.is_none());
        }
        let eval = Evaluator {
            model: self.model,
            table: self.table,
            world,
        };
        let mut permissive = false;
        let candidates: Vec<&DeployedPolicy> = match only {
            Some(p) => vec![p],
            None => self
                .applicable(command)
                .filter(|p| p.permissive)
                .copied()
                .collect(),
        };
        for p in candidates {
            if let Some(e) = self.expr_of(p, phase) {
                if eval.truth(e)? {
                    permissive = true;
                    break;
                }
            }
        }
        if !permissive {
            return Ok(false);
        }
        for p in self.applicable(command).filter(|p| !p.permissive) {
            if let Some(e) = self.expr_of(p, phase) {
                if !eval.truth(e)? {
                    return Ok(false);
                }
            }
        }
        Ok(true)
    }
}

/// The conditions of every role's access to a command.
fn model_conditions(access: &tenancy_core::access::CommandAccess) -> Vec<Condition> {
    let mut out = Vec::new();
    for entry in &access.roles {
        if let RoleAccess::Rows(conditions) = &entry.access {
            for c in conditions {
                if !out.contains(c) {
                    out.push(c.clone());
                }
            }
        }
    }
    out
}

/// The columns a world sets itself (scope, key, membership user and role).
fn structural_columns(kind: TableKind) -> &'static [&'static str] {
    match kind {
        TableKind::Tenants => &[ID_COLUMN],
        TableKind::Projects => &[TENANT_COLUMN, ID_COLUMN],
        TableKind::Memberships => &[TENANT_COLUMN, PROJECT_COLUMN, USER_COLUMN, ROLE_COLUMN],
        TableKind::TenantMemberships => &[TENANT_COLUMN, USER_COLUMN, ROLE_COLUMN],
        TableKind::Scoped => &[TENANT_COLUMN, PROJECT_COLUMN],
        TableKind::Global => &[],
    }
}

struct Evaluator<'a, 'w> {
    model: &'a Model,
    table: &'a Table,
    world: &'a World<'w>,
}

impl Evaluator<'_, '_> {
    fn truth(&self, e: &PolicyExpr) -> Result<bool, String> {
        let expr = e.expr.as_ref().map_err(|u| u.0.clone())?;
        Ok(self.eval(expr)? == Cell::Bool(true))
    }

    fn column(&self, name: &str) -> Result<Cell, String> {
        let project = |p: RowProject| Cell::Id(Id::Project(p));
        let kind = self.table.kind;
        let structural = match (kind, name) {
            (TableKind::Tenants, ID_COLUMN) => Some(Cell::Id(Id::Tenant(self.world.tenant))),
            (TableKind::Projects, ID_COLUMN) => Some(project(self.world.project)),
            (TableKind::Memberships | TableKind::Scoped, PROJECT_COLUMN) => {
                Some(project(self.world.project))
            }
            (
                TableKind::Projects
                | TableKind::Memberships
                | TableKind::TenantMemberships
                | TableKind::Scoped,
                TENANT_COLUMN,
            ) => Some(Cell::Id(Id::Tenant(self.world.tenant))),
            (TableKind::Memberships | TableKind::TenantMemberships, USER_COLUMN) => {
                Some(Cell::Id(if self.world.own_user {
                    Id::CallerUser
                } else {
                    Id::OtherUser
                }))
            }
            (TableKind::Memberships | TableKind::TenantMemberships, ROLE_COLUMN) => self
                .world
                .row_role
                .and_then(|r| self.model.roles.get(r))
                .map(|r| Cell::Text(r.clone())),
            _ => None,
        };
        if let Some(cell) = structural {
            return Ok(cell);
        }
        match self.world.values.get(name) {
            Some(v) => Ok(match v {
                Value::CallerUserId => Cell::Id(Id::CallerUser),
                Value::OtherUserId => Cell::Id(Id::OtherUser),
                Value::CallerTenantId => Cell::Id(Id::Tenant(RowTenant::Caller)),
                Value::Null => Cell::Null,
                Value::Literal(Literal::Bool(b)) => Cell::Bool(*b),
                Value::Literal(Literal::Integer(i)) => Cell::Int(*i),
                Value::Literal(Literal::Decimal(d)) => Cell::Decimal(d.clone()),
                Value::Literal(Literal::String(s)) => Cell::Text(s.clone()),
            }),
            None => Err(format!("the column `{name}`")),
        }
    }

    fn eval(&self, e: &Expr) -> Result<Cell, String> {
        Ok(match e {
            Expr::Const(c) => match c {
                Constant::Null => Cell::Null,
                Constant::Bool(b) => Cell::Bool(*b),
                Constant::Int(i) => Cell::Int(*i),
                Constant::Decimal(d) => Cell::Decimal(d.clone()),
                Constant::Text(t) => Cell::Text(t.clone()),
            },
            Expr::Column(c) => self.column(c)?,
            Expr::And(args) => {
                let mut null = false;
                for a in args {
                    match self.eval(a)? {
                        Cell::Bool(false) => return Ok(Cell::Bool(false)),
                        Cell::Null => null = true,
                        Cell::Bool(true) => {}
                        _ => return Err("AND of a value that is not boolean".into()),
                    }
                }
                if null {
                    Cell::Null
                } else {
                    Cell::Bool(true)
                }
            }
            Expr::Or(args) => {
                let mut null = false;
                for a in args {
                    match self.eval(a)? {
                        Cell::Bool(true) => return Ok(Cell::Bool(true)),
                        Cell::Null => null = true,
                        Cell::Bool(false) => {}
                        _ => return Err("OR of a value that is not boolean".into()),
                    }
                }
                if null {
                    Cell::Null
                } else {
                    Cell::Bool(false)
                }
            }
            Expr::Not(a) => match self.eval(a)? {
                Cell::Bool(b) => Cell::Bool(!b),
                Cell::Null => Cell::Null,
                _ => return Err("NOT of a value that is not boolean".into()),
            },
            Expr::Compare(a, op, b) => self.compare(&self.eval(a)?, *op, &self.eval(b)?)?,
            Expr::EqualsAny(a, b) => match (self.eval(a)?, self.eval(b)?) {
                (Cell::Null, _) | (_, Cell::Null) => Cell::Null,
                (x, Cell::Ids(ids)) => Cell::Bool(ids.iter().any(|id| Cell::Id(*id) == x)),
                _ => return Err("`= ANY` over a value that is not a helper's array".into()),
            },
            Expr::In(a, values, negated) => {
                let left = self.eval(a)?;
                let mut result = Cell::Bool(false);
                for v in values {
                    match self.compare(&left, CompareOp::Eq, &self.eval(v)?)? {
                        Cell::Bool(true) => {
                            result = Cell::Bool(true);
                            break;
                        }
                        Cell::Null => result = Cell::Null,
                        _ => {}
                    }
                }
                match (result, negated) {
                    (Cell::Bool(b), true) => Cell::Bool(!b),
                    (r, _) => r,
                }
            }
            Expr::IsNull(a, negated) => Cell::Bool((self.eval(a)? == Cell::Null) != *negated),
            Expr::IsBool(a, value, negated) => {
                Cell::Bool((self.eval(a)? == Cell::Bool(*value)) != *negated)
            }
            Expr::Coalesce(args) => {
                for a in args {
                    let v = self.eval(a)?;
                    if v != Cell::Null {
                        return Ok(v);
                    }
                }
                Cell::Null
            }
            Expr::Case {
                arg,
                whens,
                otherwise,
            } => {
                let tested = match arg {
                    Some(a) => Some(self.eval(a)?),
                    None => None,
                };
                for (when, then) in whens {
                    let hit = match &tested {
                        Some(t) => self.compare(t, CompareOp::Eq, &self.eval(when)?)?,
                        None => self.eval(when)?,
                    };
                    if hit == Cell::Bool(true) {
                        return self.eval(then);
                    }
                }
                match otherwise {
                    Some(o) => self.eval(o)?,
                    None => Cell::Null,
                }
            }
            Expr::CurrentTenant => Cell::Id(Id::Tenant(RowTenant::Caller)),
            Expr::CurrentUser => Cell::Id(Id::CallerUser),
            Expr::ProjectIds(role) => {
                let Cell::Text(role) = self.eval(role)? else {
                    return Err("`project_ids` of a value that is not a role".into());
                };
                let Some(min) = self.model.role_rank(&role) else {
                    return Err(format!(
                        "`project_ids('{role}')`, a role the model does not have"
                    ));
                };
                let reaches = self.world.rank.is_some_and(|r| r >= min);
                Cell::Ids(
                    if reaches && self.table.kind == TableKind::TenantMemberships {
                        vec![Id::Tenant(RowTenant::Caller)]
                    } else if reaches {
                        vec![Id::Project(RowProject::P)]
                    } else {
                        Vec::new()
                    },
                )
            }
            Expr::Cardinality(a) => match self.eval(a)? {
                Cell::Ids(ids) => Cell::Int(i64::try_from(ids.len()).unwrap_or(i64::MAX)),
                Cell::Null => Cell::Null,
                _ => return Err("`cardinality` of a value that is not a helper's array".into()),
            },
        })
    }

    fn compare(&self, a: &Cell, op: CompareOp, b: &Cell) -> Result<Cell, String> {
        use std::cmp::Ordering;
        let ordering = match (a, b) {
            (Cell::Null, _) | (_, Cell::Null) => return Ok(Cell::Null),
            (Cell::Int(x), Cell::Int(y)) => x.cmp(y),
            (Cell::Bool(x), Cell::Bool(y)) => x.cmp(y),
            (Cell::Text(x), Cell::Text(y)) => {
                match (self.model.role_rank(x), self.model.role_rank(y)) {
                    // Role labels compare in the enum's order.
                    (Some(rx), Some(ry)) => rx.cmp(&ry),
                    _ => x.cmp(y),
                }
            }
            (Cell::Int(_) | Cell::Decimal(_), Cell::Int(_) | Cell::Decimal(_)) => {
                let number = |c: &Cell| match c {
                    Cell::Int(i) => Some(*i as f64),
                    Cell::Decimal(d) => d.parse::<f64>().ok(),
                    _ => None,
                };
                match (number(a), number(b)) {
                    (Some(x), Some(y)) => x.partial_cmp(&y).unwrap_or(Ordering::Equal),
                    _ => return Err("a number that cannot be read".into()),
                }
            }
            (x, y) if x == y => Ordering::Equal,
            // Distinct identities (or an identity and a constant): unequal, never ordered.
            _ if !op.is_ordering() => Ordering::Less,
            _ => return Err("an ordering of identities".into()),
        };
        Ok(Cell::Bool(match op {
            CompareOp::Eq => ordering == Ordering::Equal,
            CompareOp::Ne => ordering != Ordering::Equal,
            CompareOp::Lt => ordering == Ordering::Less,
            CompareOp::Le => ordering != Ordering::Greater,
            CompareOp::Gt => ordering == Ordering::Greater,
            CompareOp::Ge => ordering != Ordering::Less,
        }))
    }
}
