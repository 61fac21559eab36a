//! Row-level security policies and grants of one table.

use super::context::{context_call, ContextHelper};
use super::ident::{fit_identifier, ident, ident_list};
use super::Target;
use crate::model::{Command, Model, Rule, Table, TableKind, ID_COLUMN, TENANT_COLUMN, USER_COLUMN};

/// Row-level security (tenant-owned tables) and grants of `table`.
pub(super) fn security_section(model: &Model, table: &Table, target: Target) -> String {
    let name = ident(&table.name);
    let mut out = String::new();

    match table.scope_columns() {
        None => {
            out.push_str(&format!(
                "\n-- {name} is global: no row-level security; every caller with the app role\n\
                 -- may run the granted commands on every row.\n"
            ));
        }
        Some(_) => {
            out.push_str(&format!(
                "\n-- Row-level security: no row outside the current tenant, for any command;\n\
                 -- then one permissive policy per allowed command.\n\
                 ALTER TABLE {name} ENABLE ROW LEVEL SECURITY;\n\
                 ALTER TABLE {name} FORCE ROW LEVEL SECURITY;\n"
            ));
            out.push_str(&super::masked::reader_section(model, table));
            for policy in policies(model, table, target) {
                out.push_str(&policy.create);
            }
            out.push_str(&super::conditions::stamp_trigger_section(model, table));
            out.push_str(&super::column_rights::column_rights_section(
                model, table, target,
            ));
            out.push_str(&super::vector_settings::dimensions_trigger_section(
                model, table,
            ));
        }
    }
    out.push_str(&grants_section(model, table));
    out.push_str(&super::masked::masked_view_section(model, table, target));
    out
}

/// One row-level security policy of a table, as created.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Policy {
    /// The policy's name (unquoted).
    pub name: String,
    /// The full `CREATE POLICY ...;\n` statement.
    pub create: String,
}

/// Whether a policy widens (permissive, OR-ed) or narrows (restrictive, AND-ed) access.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum PolicyKind {
    /// `AS PERMISSIVE`.
    Permissive,
    /// `AS RESTRICTIVE`.
    Restrictive,
}

impl Policy {
    /// `CREATE POLICY <name> ON <table> AS <kind> FOR <command> TO <app>` with `expression` as
    /// `USING` and/or `WITH CHECK`, as the command takes them.
    pub(super) fn for_command(
        name: String,
        table: &str,
        kind: PolicyKind,
        command: Command,
        app: &str,
        expression: &str,
    ) -> Policy {
        let clauses = match command {
            Command::Select | Command::Delete => format!("  USING ({expression})"),
            Command::Insert => format!("  WITH CHECK ({expression})"),
            Command::Update => {
                format!("  USING ({expression})\n  WITH CHECK ({expression})")
            }
        };
        let kind = match kind {
            PolicyKind::Permissive => "PERMISSIVE",
            PolicyKind::Restrictive => "RESTRICTIVE",
        };
        Policy {
            create: format!(
                "CREATE POLICY {} ON {table}\n\
                 \x20 AS {kind}\n\
                 \x20 FOR {}\n\
                 \x20 TO {app}\n\
                 {clauses};\n",
                ident(&name),
                command.sql(),
            ),
            name,
        }
    }
}

/// The policies of a tenant-owned table (the restrictive tenant boundary first, then one
/// permissive policy per allowed command); none for global tables.
pub(super) fn policies(model: &Model, table: &Table, target: Target) -> Vec<Policy> {
    let Some(scope) = table.scope_columns() else {
        return Vec::new();
    };
    let name = ident(&table.name);
    let app = ident(&model.settings.app_role);
    let schema = &model.settings.helper_schema;
    let tenant_check = format!(
        "{} = {}",
        ident(scope.tenant),
        context_call(target, schema, ContextHelper::CurrentTenantId)
    );
    if target == Target::Citus {
        return super::citus::folded_policies(model, table, &tenant_check, |command| {
            rule_expression(model, table, command, target)
        });
    }
    let boundary = policy_name(table, "tenant_boundary");
    // The reader role of the masked view (if any) reads through the same two policies.
    let readers = super::masked::select_policy_roles(model, table);
    let mut out = vec![Policy {
        create: format!(
            "CREATE POLICY {} ON {name}\n\
             \x20 AS RESTRICTIVE\n\
             \x20 FOR ALL\n\
             \x20 TO {readers}\n\
             \x20 USING ({tenant_check})\n\
             \x20 WITH CHECK ({tenant_check});\n",
            ident(&boundary),
        ),
        name: boundary,
    }];
    for command in Command::ALL {
        let Some(expression) = rule_expression(model, table, command, target) else {
            continue;
        };
        let to = if command == Command::Select {
            readers.as_str()
        } else {
            app.as_ref()
        };
        out.push(Policy::for_command(
            policy_name(table, command.keyword()),
            &name,
            PolicyKind::Permissive,
            command,
            to,
            &expression,
        ));
    }
    out.extend(super::authority::ceiling_policies(model, table, target));
    out
}

/// The grants of `table` to the app role: a block that revokes everything, then grants
/// exactly what the rules allow (so it also brings an existing table up to date).
pub(super) fn grants_section(model: &Model, table: &Table) -> String {
    let name = ident(&table.name);
    let app = ident(&model.settings.app_role);
    let mut out = format!(
        "\n-- Grants: only the commands with a rule; UPDATE only on columns that cannot move a row\n\
         -- to another tenant or project; never TRUNCATE, REFERENCES or TRIGGER.\n\
         REVOKE ALL ON TABLE {name} FROM PUBLIC;\n\
         REVOKE ALL ON TABLE {name} FROM {app};\n"
    );
    let masked = !table.masked_columns().is_empty();
    let whole_table: Vec<&str> = granted_commands(table)
        .into_iter()
        .filter(|c| *c != Command::Update && !(masked && *c == Command::Select))
        .map(Command::sql)
        .collect();
    if !whole_table.is_empty() {
        out.push_str(&format!(
            "GRANT {} ON TABLE {name} TO {app};\n",
            whole_table.join(", ")
        ));
    }
    if masked && granted_commands(table).contains(&Command::Select) {
        out.push_str(&format!(
            "-- SELECT only on the columns every select rule reads (the others: {}).\n\
             GRANT SELECT ({}) ON TABLE {name} TO {app};\n",
            super::masked::masked_view_name(table),
            ident_list(&super::masked::granted_select_columns(table))
        ));
    }
    if granted_commands(table).contains(&Command::Update) {
        let columns = super::column_rights::granted_update_columns(table);
        if columns.is_empty() {
            out.push_str("-- UPDATE has a rule but no column may change: not granted.\n");
        } else {
            out.push_str(&format!(
                "GRANT UPDATE ({}) ON TABLE {name} TO {app};\n",
                ident_list(&columns)
            ));
        }
    }
    if granted_commands(table).is_empty() {
        out.push_str(&format!("-- No rules: every command is denied to {app}.\n"));
    }
    out
}

/// `<table>_<suffix>`, fitted to 63 bytes.
fn policy_name(table: &Table, suffix: &str) -> String {
    fit_identifier(&format!("{}_{suffix}", table.name))
}

/// The permissive policies of `table` that test the caller's project role against the row's
/// project (one per command with a rule), as [`policies`] creates them: what core revision 6
/// re-creates.
pub(super) fn role_policies(model: &Model, table: &Table, target: Target) -> Vec<Policy> {
    let names: Vec<String> = Command::ALL
        .iter()
        .map(|command| policy_name(table, command.keyword()))
        .collect();
    policies(model, table, target)
        .into_iter()
        .filter(|p| names.contains(&p.name) && p.create.contains(" = ANY ("))
        .collect()
}

/// The commands granted to the app role: those with a rule, plus SELECT on the memberships
/// tables, which the runtime's authorization step always needs (a user reads their own rows).
pub(crate) fn granted_commands(table: &Table) -> Vec<Command> {
    Command::ALL
        .into_iter()
        .filter(|c| {
            table.rule(*c).is_some() || (is_membership_kind(table.kind) && *c == Command::Select)
        })
        .collect()
}

/// The two membership tables: a user always reads their own rows there.
fn is_membership_kind(kind: TableKind) -> bool {
    matches!(kind, TableKind::Memberships | TableKind::TenantMemberships)
}

/// What `table`'s rules test the caller's role on: the row's project; the tenant itself on
/// the tenant memberships table (the runtime lists the tenant id at the ranks of the caller's
/// tenant-wide role, docs/context.md); the project or its tenant on the projects table of a
/// model with tenant-wide roles; any project on the tenants table.
pub(super) fn role_test<'t>(model: &Model, table: &'t Table) -> RoleTest<'t> {
    match table.kind {
        TableKind::TenantMemberships => RoleTest::Column(TENANT_COLUMN),
        TableKind::Projects if model.core_table(TableKind::TenantMemberships).is_some() => {
            RoleTest::ProjectOrTenant
        }
        _ => match table.scope_columns().and_then(|scope| scope.project) {
            Some(project) => RoleTest::Column(project),
            None => RoleTest::AnyProject,
        },
    }
}

/// What a rule's role test compares with the caller's project lists (the context's
/// `project_ids(role)`), per kind of table.
#[derive(Clone, Copy, Debug)]
pub(super) enum RoleTest<'t> {
    /// The row's column must be listed: a scoped table's project column, the tenant column of
    /// the tenant memberships table.
    Column(&'t str),
    /// The projects table of a model with tenant-wide roles: the project's id or its
    /// tenant's id must be listed (a tenant-wide member sees every project of the tenant).
    ProjectOrTenant,
    /// The tenants table: the caller holds the role in at least one project.
    AnyProject,
}

/// The permissive policy expression of `command`, or `None` when the command is denied.
fn rule_expression(
    model: &Model,
    table: &Table,
    command: Command,
    target: Target,
) -> Option<String> {
    let schema = &model.settings.helper_schema;
    table.scope_columns()?;
    let by_role = rules_expression(model, table, command, target, role_test(model, table));
    let own_membership =
        (is_membership_kind(table.kind) && command == Command::Select).then(|| {
            format!(
                "{} = {}",
                ident(USER_COLUMN),
                context_call(target, schema, ContextHelper::CurrentUserId)
            )
        });
    match (by_role, own_membership) {
        (Some(role), Some(own)) => Some(format!("{role} OR {own}")),
        (Some(one), None) | (None, Some(one)) => Some(one),
        (None, None) => None,
    }
}

/// The union of `command`'s rules: each rule's role test, AND its condition when it has
/// one, OR-ed together into one permissive expression; `None` without a rule.
fn rules_expression(
    model: &Model,
    table: &Table,
    command: Command,
    target: Target,
    test: RoleTest<'_>,
) -> Option<String> {
    rules_union(model, target, test, &table.rules_for(command))
}

/// The union of `rules` (of one command): each rule's role test, AND its condition when it
/// has one, OR-ed together; `None` for no rule.
pub(super) fn rules_union(
    model: &Model,
    target: Target,
    test: RoleTest<'_>,
    rules: &[&Rule],
) -> Option<String> {
    let schema = &model.settings.helper_schema;
    if rules.is_empty() {
        return None;
    }
    // A rule admits nothing that an unconditioned rule of a lower (or the same, earlier)
    // role does not already admit: leave it out of the expression (one InitPlan less).
    let rank = |rule: &Rule| model.role_rank(&rule.min_role).unwrap_or(0);
    // The validator's canonical order (least role first, unconditioned first), whatever
    // order the rules come in.
    let mut rules: Vec<&Rule> = rules.to_vec();
    rules.sort_by_key(|r| (rank(r), r.condition.is_some()));
    let needed: Vec<&Rule> = rules
        .iter()
        .enumerate()
        .filter(|(i, rule)| {
            !rules.iter().enumerate().any(|(j, other)| {
                j != *i
                    && other.condition.is_none()
                    && (rank(other) < rank(rule)
                        || (rank(other) == rank(rule) && (rule.condition.is_some() || j < *i)))
            })
        })
        .map(|(_, rule)| *rule)
        .collect();
    let parts: Vec<String> = needed
        .iter()
        .map(|rule| {
            // An index condition, not a per-row filter: `role_member` says why that is safe
            // under generic plans. (Row conditions keep `role_at_least`'s COALESCE: they may
            // negate it.)
            let role = match test {
                RoleTest::Column(column) => {
                    super::conditions::role_member(model, target, column, &rule.min_role)
                }
                RoleTest::ProjectOrTenant => format!(
                    "({} OR {})",
                    super::conditions::role_member(model, target, ID_COLUMN, &rule.min_role),
                    super::conditions::role_member(model, target, TENANT_COLUMN, &rule.min_role)
                ),
                RoleTest::AnyProject => format!(
                    "pg_catalog.cardinality({}) > 0",
                    context_call(target, schema, ContextHelper::ProjectIds(&rule.min_role))
                ),
            };
            match &rule.condition {
                Some(condition) => format!(
                    "{role} AND {}",
                    super::conditions::condition_sql(model, target, condition)
                ),
                None => role,
            }
        })
        .collect();
    Some(if parts.len() == 1 {
        parts.into_iter().next().unwrap_or_default()
    } else {
        parts
            .iter()
            .map(|p| format!("({p})"))
            .collect::<Vec<_>>()
            .join(" OR ")
    })
}

/// The columns the app role may UPDATE: every column except the scope columns, the
/// primary key and the stamped columns, so no update can move a row to another tenant or
/// project, change its identity or rewrite its provenance (the membership's `role` stays
/// updatable).
pub(crate) fn updatable_columns(table: &Table) -> Vec<String> {
    let mut fixed = table.effective_primary_key();
    fixed.extend(table.stamped_columns().into_iter().map(|c| c.name.clone()));
    if let Some(scope) = table.scope_columns() {
        fixed.push(scope.tenant.to_owned());
        fixed.extend(scope.project.map(str::to_owned));
    }
    table
        .all_columns()
        .into_iter()
        .map(|c| c.name)
        .filter(|c| !fixed.contains(c))
        .collect()
}
