//! Access rules: commands, roles, the select rule every table needs.

use super::*;

impl<'a> Checker<'_, 'a> {
    /// Rule: rules name declared roles; global tables take `allow select` only, with no
    /// role; every other table names a role. A command may have several rules when they
    /// differ (their union is allowed), but at most one without a condition.
    pub(super) fn check_rules(&mut self, info: &mut TableInfo<'a>) {
        // (command, span of the command, role, condition as written (DSL spelling), columns)
        type Seen = (
            Command,
            Span,
            Option<String>,
            Option<String>,
            Option<Vec<String>>,
        );
        let mut seen: Vec<Seen> = Vec::new();
        let mut rules: Vec<RuleInfo<'a>> = Vec::new();
        for rule in &info.decl.rules {
            self.check_rule_role(info, rule);
            let condition = rule.condition.as_ref().and_then(|expr| {
                let min_role = rule.role.as_ref().map(|r| r.name.as_str());
                self.check_condition(info, expr, min_role)
            });
            // A condition with errors (already reported) still counts as a conditioned rule,
            // so no follow-on warning says the command has no rule.
            let condition = match (&rule.condition, condition) {
                (Some(_), None) => Some(crate::condition::Condition::Sql(String::new())),
                (_, checked) => checked,
            };
            let written = condition.as_ref().map(crate::condition::Condition::to_dsl);
            let role = rule.role.as_ref().map(|r| r.name.clone());
            for (spec, span) in &rule.commands {
                for command in spec.commands() {
                    if info.kind == TableKind::Global && command != Command::Select {
                        self.error(
                            Diagnostic::error(
                                format!("global table `{}` cannot allow `{command}`", info.name()),
                                *span,
                                "global tables are read-only for the application",
                            )
                            .with_note("a global table is shared by all tenants: a write by one tenant would change every tenant's data")
                            .with_help("write `allow select`; change global rows in migrations, as the owner role"),
                        );
                        continue;
                    }
                    let columns = self.check_rule_columns(info, rule, command);
                    // Two rules clash when both allow every row and every column, or when
                    // they say the same thing twice.
                    let listed = rule.columns.is_some();
                    let clash = seen.iter().find(|(c, _, r, w, cols)| {
                        *c == command
                            && ((w.is_none() && written.is_none() && cols.is_none() && !listed)
                                || (*r == role && *w == written && *cols == columns))
                    });
                    if let Some((_, prev, _, _, _)) = clash {
                        self.error(
                            Diagnostic::error(
                                format!(
                                    "duplicate rule for `{command}` on table `{}`",
                                    info.name()
                                ),
                                *span,
                                format!("`{command}` allowed again here"),
                            )
                            .with_secondary(*prev, "first allowed here")
                            .with_help(
                                "keep one rule per command without a condition: the lowest role that may run it",
                            ),
                        );
                        continue;
                    }
                    seen.push((
                        command,
                        *span,
                        role.clone(),
                        written.clone(),
                        columns.clone(),
                    ));
                    rules.push(RuleInfo {
                        command,
                        role: rule.role.as_ref(),
                        condition: condition.clone(),
                        columns,
                    });
                }
            }
        }
        self.check_shadowed_rules(&rules, info);
        let rank = |r: &RuleInfo<'_>| {
            let roles = self.roles.as_deref().unwrap_or_default();
            r.role
                .and_then(|role| roles.iter().position(|x| *x == role.name))
                .unwrap_or(0)
        };
        // Canonical command order, least role first, unconditioned first (stable otherwise).
        let mut ordered: Vec<(usize, usize, RuleInfo<'a>)> = rules
            .into_iter()
            .map(|r| (rank(&r), usize::from(r.condition.is_some()), r))
            .collect();
        // Without a role order (a derived table checked alone) rules keep their order.
        let known = self.roles.is_some();
        ordered.sort_by_key(|(rank, conditioned, r)| {
            let command = Command::ALL
                .iter()
                .position(|c| *c == r.command)
                .unwrap_or(0);
            if known {
                (command, *rank, *conditioned)
            } else {
                (command, 0, 0)
            }
        });
        info.rules = ordered.into_iter().map(|(_, _, r)| r).collect();
    }

    /// Warning: a conditioned rule whose role an unconditioned rule of the same command
    /// already covers adds nothing.
    fn check_shadowed_rules(&mut self, rules: &[RuleInfo<'a>], info: &TableInfo<'a>) {
        let Some(roles) = self.roles.clone() else {
            return;
        };
        let rank =
            |role: Option<&Ident>| role.and_then(|r| roles.iter().position(|x| *x == r.name));
        for rule in rules.iter().filter(|r| r.condition.is_some()) {
            let covered = rules.iter().any(|other| {
                other.command == rule.command
                    && other.condition.is_none()
                    && other.columns.is_none()
                    && matches!((rank(other.role), rank(rule.role)), (Some(a), Some(b)) if a <= b)
            });
            if let (true, Some(role)) = (covered, rule.role) {
                self.diags.push(
                    Diagnostic::warning(
                        format!(
                            "this `{}` rule on `{}` adds nothing",
                            rule.command,
                            info.name()
                        ),
                        role.span,
                        "a rule without a condition already allows this role",
                    )
                    .with_help("remove the rule, or raise the role of the unconditioned one"),
                );
            }
        }
    }

    /// The role part of one rule (see [`Checker::check_rules`]).
    pub(super) fn check_rule_role(&mut self, info: &TableInfo<'a>, rule: &RuleDecl) {
        match (&rule.role, info.kind) {
            (Some(role), TableKind::Global) => {
                let commands: Vec<String> = rule
                    .commands
                    .iter()
                    .map(|(spec, _)| match spec {
                        crate::dsl::ast::CommandSpec::One(c) => c.keyword().to_owned(),
                        crate::dsl::ast::CommandSpec::All => "all".to_owned(),
                    })
                    .collect();
                self.error(
                    Diagnostic::error(
                        format!("a rule on global table `{}` names a role", info.name()),
                        role.span,
                        "global tables have no project, so no project role applies",
                    )
                    .with_help(format!(
                        "remove `to {}`: write `allow {}`",
                        role.name,
                        commands.join(", ")
                    )),
                );
            }
            (None, kind) if kind != TableKind::Global => {
                let lowest = self
                    .roles
                    .as_ref()
                    .and_then(|r| r.first().cloned())
                    .unwrap_or_else(|| "viewer".to_owned());
                self.error(
                    Diagnostic::error(
                        format!("rule on table `{}` names no role", info.name()),
                        rule.span,
                        "who may do this?",
                    )
                    .with_help(format!(
                        "name the lowest role allowed, e.g. `... to {lowest}`"
                    )),
                );
            }
            (Some(role), _) => {
                let Some(roles) = &self.roles else { return };
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
                }
            }
            (None, _) => {}
        }
    }

    /// Warning: a tenant-owned table with no `select` rule can never be read.
    pub(super) fn check_select_rule(&mut self, info: &TableInfo<'a>) {
        if info.kind.is_tenant_owned() && !info.rules.iter().any(|r| r.command == Command::Select) {
            let lowest = self
                .roles
                .as_ref()
                .and_then(|r| r.first().cloned())
                .unwrap_or_else(|| "viewer".to_owned());
            self.diags.push(
                Diagnostic::warning(
                    format!("nobody can read table `{}`", info.name()),
                    info.decl.name.span,
                    "no `allow select` rule",
                )
                .with_note("commands without a rule are denied to every role")
                .with_help(format!(
                    "add `allow select to {lowest}` if members should read it"
                )),
            );
        }
    }

    // ---- foreign keys -------------------------------------------------------------------
}
