//! Access rules: commands, roles, the select rule every table needs.

use super::*;

impl<'a> Checker<'_, 'a> {
    /// Rule: rules name declared roles, at most one rule per command; global tables take
    /// `allow select` only, with no role; every other table names a role.
    pub(super) fn check_rules(&mut self, info: &mut TableInfo<'a>) {
        let mut by_command: HashMap<Command, (Span, Option<&'a Ident>)> = HashMap::new();
        for rule in &info.decl.rules {
            self.check_rule_role(info, rule);
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
                    if let Some((prev, _)) = by_command.get(&command) {
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
                                "keep one rule per command: the lowest role that may run it",
                            ),
                        );
                        continue;
                    }
                    by_command.insert(command, (*span, rule.role.as_ref()));
                }
            }
        }
        info.rules = Command::ALL
            .iter()
            .filter_map(|c| by_command.get(c).map(|(_, role)| (*c, *role)))
            .collect();
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
        if info.kind.is_tenant_owned() && !info.rules.iter().any(|(c, _)| *c == Command::Select) {
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
