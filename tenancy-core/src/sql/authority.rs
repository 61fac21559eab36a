//! Authority rules of the memberships table, generated from the role order (docs/security.md,
//! "Authority inside the database"):
//!
//! - **role ceiling**: a member grants, changes or removes only roles at or below its own, so
//!   only a member of the top role writes top-role rows. Restrictive policies, one per write
//!   command the rules allow, checked on the old row (`USING`) and the new one (`WITH CHECK`);
//! - **a project keeps a member of the top role** (an owner): a deferred constraint trigger
//!   refuses, at commit, a transaction that leaves an existing project without one. Deferred, so
//!   a hand-over (promote the new owner, demote or remove the old one) works in one
//!   transaction; a project deleted in the same transaction is not checked.
//!
//! The admin API refuses the same things first, with typed errors; these rules hold for any SQL
//! the application role runs. Both raise SQLSTATE 42501, which the runtime maps to
//! `Error::Forbidden` (the trigger's message starts with `tenancy authority:`, not with the
//! `tenancy:` of a refused context).

use super::context::{context_call, ContextHelper};
use super::ident::{fit_identifier, ident, literal};
use super::security::{Policy, PolicyKind};
use super::{section_heading, Target};
use crate::model::{
    Command, Model, Table, TableKind, PROJECT_COLUMN, ROLE_COLUMN, ROLE_TYPE, TABLE_SCHEMA,
    TENANT_COLUMN,
};

/// Name of the trigger function (in the helper schema) behind the "keeps a member of the top
/// role" rule, and the suffix of its trigger's name.
pub(crate) const KEEP_TOP_ROLE_FUNCTION: &str = "keep_top_role";

/// `CASE role WHEN 'viewer' THEN <caller is at least viewer in the row's project> ... END`:
/// true when the caller's own role in the row's project (on the tenant memberships table: the
/// caller's tenant-wide role) reaches the row's role; `None` for the other tables.
pub(super) fn ceiling_expression(model: &Model, table: &Table, target: Target) -> Option<String> {
    let column = match table.kind {
        TableKind::Memberships => PROJECT_COLUMN,
        TableKind::TenantMemberships => TENANT_COLUMN,
        _ => return None,
    };
    let schema = &model.settings.helper_schema;
    let mut out = format!("CASE {}", ident(ROLE_COLUMN));
    for role in &model.roles {
        out.push_str(&format!(
            " WHEN {} THEN COALESCE({} = ANY ({}), false)",
            literal(role),
            ident(column),
            context_call(target, schema, ContextHelper::ProjectIds(role))
        ));
    }
    out.push_str(" ELSE false END");
    Some(out)
}

/// The restrictive role-ceiling policies of the two memberships tables, one per write command
/// their rules allow; none for other tables.
pub(super) fn ceiling_policies(model: &Model, table: &Table, target: Target) -> Vec<Policy> {
    let Some(ceiling) = ceiling_expression(model, table, target) else {
        return Vec::new();
    };
    let name = ident(&table.name);
    let app = ident(&model.settings.app_role);
    let mut out = Vec::new();
    for command in [Command::Insert, Command::Update, Command::Delete] {
        if !table.rules.iter().any(|rule| rule.command == command) {
            continue;
        }
        let policy = fit_identifier(&format!(
            "{}_role_ceiling_{}",
            table.name,
            command.keyword()
        ));
        out.push(Policy::for_command(
            policy,
            &name,
            PolicyKind::Restrictive,
            command,
            &app,
            &ceiling,
        ));
    }
    out
}

/// The "a project keeps a member of the top role" trigger function and constraint trigger,
/// with a heading; empty when the model has no memberships or projects table. The top role is
/// read from the enum (`enum_last`), so adding or reordering roles needs no new trigger.
///
/// On Citus the trigger is not deferred: it fires at the end of each statement, on the worker
/// holding the memberships shard, and reads the co-located shards of the same tenant (a local
/// task, which Citus allows in a trigger). A deferred trigger would fire at COMMIT on the
/// worker, which for a single-shard transaction Citus sends after the coordinator has
/// committed (one-phase commit): the worker still rolls back, but the caller gets "could not
/// commit transaction for shard" instead of the refusal. So on Citus a hand-over promotes the
/// new member of the top role before the old one steps down, and transactions without a
/// request context (operators, whose bulk steps rely on the deferral) are left to the operator
/// commands' own check.
pub(super) fn keep_top_role_section(model: &Model, target: Target) -> String {
    let (Some(memberships), Some(projects), Some(top)) = (
        model.core_table(TableKind::Memberships),
        model.core_table(TableKind::Projects),
        model.roles.last(),
    ) else {
        return String::new();
    };
    let settings = &model.settings;
    let schema = ident(&settings.helper_schema);
    let owner = ident(&settings.owner_role);
    let function = format!("{schema}.{}", ident(KEEP_TOP_ROLE_FUNCTION));
    let role_type = format!("{schema}.{}", ident(ROLE_TYPE));
    let top_role = format!("pg_catalog.enum_last(NULL::{role_type})");
    let qualified = |table: &str| format!("{}.{}", ident(TABLE_SCHEMA), ident(table));
    let members = qualified(&memberships.name);
    let projects = qualified(&projects.name);
    let (tenant, project, role) = (
        ident(TENANT_COLUMN),
        ident(PROJECT_COLUMN),
        ident(ROLE_COLUMN),
    );
    let trigger_name = fit_identifier(&format!("{}_{KEEP_TOP_ROLE_FUNCTION}", memberships.name));
    let trigger = ident(&trigger_name);
    let (note, timing) = match target {
        Target::Postgres => (
            "Checked at commit (deferred), so a hand-over works in one transaction: a transaction\n\
             that demotes or removes the last member of the top role (the enum's last value) of\n\
             a project that still exists is refused. Runs with the caller's rights: a caller who\n\
             may touch top-role rows (the role ceiling) sees every membership of that project.",
            "DEFERRABLE INITIALLY DEFERRED",
        ),
        Target::Citus => (
            "Checked at the end of each statement, on the worker holding the memberships shard\n\
             (Citus commits a single-shard transaction on the worker after the coordinator, so a\n\
             deferred check could not refuse it cleanly; see docs/citus.md): a statement that\n\
             demotes or removes the last member of the top role (the enum's last value) of a\n\
             project that still exists is refused; a hand-over promotes the new member first.\n\
             Transactions without a request context (operators) are not checked here: their\n\
             bulk steps remove memberships before the project, and the operator commands check\n\
             the last owner themselves. Runs with the caller's rights: a caller who may touch\n\
             top-role rows (the role ceiling) sees every membership of that project.",
            "NOT DEFERRABLE",
        ),
    };
    let mut out = section_heading(
        &format!(
            "A project keeps a member of the top role ({top}; {})",
            memberships.name
        ),
        Some(note),
    );
    // On Citus, operator transactions (no request context) are not checked by the trigger:
    // their bulk steps (a tenant's deletion, a project's move) remove a project's memberships
    // before the project in one transaction, which only a deferred check lets through. The
    // operator commands check the last owner themselves; the app role always has a context.
    let operators = match target {
        Target::Postgres => String::new(),
        Target::Citus => format!(
            "\x20 IF {}.current_tenant_id() IS NULL THEN\n\
             \x20   RETURN NULL;\n\
             \x20 END IF;\n",
            schema
        ),
    };
    out.push_str(&format!(
        "CREATE OR REPLACE FUNCTION {function}()\n\
         \x20 RETURNS trigger\n\
         \x20 LANGUAGE plpgsql\n\
         \x20 SET search_path = pg_catalog, pg_temp\n\
         AS $$\n\
         BEGIN\n\
         {operators}\
         \x20 IF EXISTS (SELECT 1 FROM {projects} AS p\n\
         \x20            WHERE p.{tenant} = OLD.{tenant} AND p.id = OLD.{project})\n\
         \x20    AND NOT EXISTS (SELECT 1 FROM {members} AS m\n\
         \x20                    WHERE m.{tenant} = OLD.{tenant} AND m.{project} = OLD.{project}\n\
         \x20                      AND m.{role} = {top_role}) THEN\n\
         \x20   RAISE EXCEPTION 'tenancy authority: project % would be left with no %',\n\
         \x20     OLD.{project}, {top_role}\n\
         \x20     USING ERRCODE = '42501',\n\
         \x20           HINT = 'give the role to another member first, in the same transaction';\n\
         \x20 END IF;\n\
         \x20 RETURN NULL;\n\
         END\n\
         $$;\n\
         ALTER FUNCTION {function}() OWNER TO {owner};\n\
         REVOKE ALL ON FUNCTION {function}() FROM PUBLIC;\n\
         CREATE CONSTRAINT TRIGGER {trigger}\n\
         \x20 AFTER UPDATE OF {role} OR DELETE ON {members}\n\
         \x20 {timing}\n\
         \x20 FOR EACH ROW\n\
         \x20 WHEN (OLD.{role} = {top_role})\n\
         \x20 EXECUTE FUNCTION {function}();\n"
    ));
    out
}

/// The body of the core upgrade to the authority rules: the ceiling policies of the
/// memberships table, the keep-top-role trigger and the audit table's insert policy.
pub(super) fn authority_upgrade(model: &Model, target: Target) -> String {
    let mut out = String::new();
    if let Some(memberships) = model.core_table(TableKind::Memberships) {
        out.push_str(&section_heading(
            &format!("Role ceiling ({})", memberships.name),
            Some(
                "A member grants, changes or removes only roles at or below its own (restrictive\n\
                 policies next to the permissive ones of the rules).",
            ),
        ));
        for policy in ceiling_policies(model, memberships, target) {
            out.push_str(&policy.create);
        }
    }
    out.push_str(&keep_top_role_section(model, target));
    let audit_table = format!(
        "{}.{}",
        ident(&model.settings.helper_schema),
        ident(super::core::AUDIT_TABLE)
    );
    out.push_str(&section_heading(
        &format!("Provenance of {audit_table}"),
        Some(
            "The app role appends audit rows only for a project it holds a role in: no\n\
             tenant-wide rows and no rows naming a project outside its context. It no longer\n\
             reads `id` (a global identity: the ids would count every tenant's rows).",
        ),
    ));
    out.push_str(&format!("DROP POLICY audit_log_insert ON {audit_table};\n"));
    out.push_str(&super::core::audit_insert_policy(model, target));
    out.push_str(&format!(
        "REVOKE SELECT ON TABLE {audit_table} FROM {};\n",
        ident(&model.settings.app_role)
    ));
    out.push_str(&super::core::audit_select_grant(model));
    out.push_str(&super::surfaces::large_objects_section(model));
    out
}
