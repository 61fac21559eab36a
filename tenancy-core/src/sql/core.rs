//! `0001_tenancy_core.sql`: helper schema, roles, role enum, context helpers, core tables.

use super::context::{context_call, ContextHelper};
use super::ident::{ident, literal};
use super::signed::{connection_hygiene, signed_context_objects, CONTEXT_CONTRACT};
use super::{authority, file_header, section_heading, security, statistics, tables, Target};
use crate::model::{Model, SqlType, TableKind, ROLE_TYPE};

/// The text of `migrations/0001_tenancy_core.sql`.
pub(super) fn core_migration(model: &Model, target: Target) -> String {
    let settings = &model.settings;
    let schema = ident(&settings.helper_schema);
    let owner = ident(&settings.owner_role);
    let app = ident(&settings.app_role);
    let role_type = format!("{schema}.{}", ident(ROLE_TYPE));

    let mut out = file_header(
        "tenancy core: helper schema, roles, context helpers and the core tables.",
        target,
        &settings.helper_schema,
    );
    if target == Target::Citus {
        out.push_str(&super::citus::migration_settings());
    }

    out.push_str(&section_heading(
        "Roles",
        Some(
            "Roles are cluster-wide: create them only if missing (a second database of the\n\
             same cluster applies these migrations too), then force their attributes.\n\
             Both are group roles created NOLOGIN: the application connects as a login role that\n\
             is a member of the app role (`tenancy login-role create`). The app role never\n\
             bypasses row-level security and is never a member of the owner.",
        ),
    ));
    out.push_str(&format!(
        "DO $$\n\
         BEGIN\n\
         \x20 IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = {owner_lit}) THEN\n\
         \x20   CREATE ROLE {owner} NOLOGIN;\n\
         \x20 END IF;\n\
         \x20 IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = {app_lit}) THEN\n\
         \x20   CREATE ROLE {app} NOLOGIN;\n\
         \x20 END IF;\n\
         \x20 IF EXISTS (\n\
         \x20   SELECT 1\n\
         \x20   FROM pg_catalog.pg_auth_members AS m\n\
         \x20   JOIN pg_catalog.pg_roles AS granted ON granted.oid = m.roleid\n\
         \x20   JOIN pg_catalog.pg_roles AS member ON member.oid = m.member\n\
         \x20   WHERE granted.rolname = {owner_lit} AND member.rolname = {app_lit}\n\
         \x20 ) THEN\n\
         \x20   REVOKE {owner} FROM {app};\n\
         \x20 END IF;\n\
         END\n\
         $$;\n\
         \n\
         ALTER ROLE {owner} NOLOGIN NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE;\n\
         ALTER ROLE {app} NOSUPERUSER NOBYPASSRLS NOINHERIT NOCREATEDB NOCREATEROLE NOREPLICATION;\n",
        owner_lit = literal(&settings.owner_role),
        app_lit = literal(&settings.app_role),
    ));

    out.push_str(&section_heading(
        &format!("Helper schema {schema}"),
        Some("Holds the role enum and the context helpers; owned by the owner role."),
    ));
    out.push_str(&format!(
        "CREATE SCHEMA IF NOT EXISTS {schema};\n\
         ALTER SCHEMA {schema} OWNER TO {owner};\n\
         GRANT USAGE ON SCHEMA {schema} TO {app};\n"
    ));

    let uses_vector = model
        .tables
        .iter()
        .flat_map(|t| t.columns.iter())
        .any(|c| matches!(c.ty, SqlType::Vector(_)));
    if uses_vector {
        out.push_str(&section_heading(
            "Extensions",
            Some("pgvector, for the vector columns."),
        ));
        out.push_str("CREATE EXTENSION IF NOT EXISTS vector;\n");
    }

    let role_labels: Vec<String> = model.roles.iter().map(|r| literal(r)).collect();
    out.push_str(&section_heading(
        &format!("Role enum {role_type}"),
        Some("Project roles, from the least to the most privileged; a role includes the ones before it."),
    ));
    out.push_str(&format!(
        "CREATE TYPE {role_type} AS ENUM ({});\n\
         ALTER TYPE {role_type} OWNER TO {owner};\n\
         GRANT USAGE ON TYPE {role_type} TO {app};\n",
        role_labels.join(", ")
    ));

    out.push_str(&context_section(model, target, false));

    for kind in [
        TableKind::Tenants,
        TableKind::Projects,
        TableKind::Memberships,
        TableKind::TenantMemberships,
    ] {
        if let Some(table) = model.core_table(kind) {
            out.push_str(&tables::table_section(model, table, target));
            out.push_str(&security::security_section(model, table, target));
            out.push_str(&statistics::statistics_section(table, &ident(&table.name)));
        }
    }
    // On Citus the trigger runs on the memberships shard and reads the co-located shards of
    // the same tenant (a local task, which Citus allows in a trigger; docs/citus.md).
    out.push_str(&authority::keep_top_role_section(model, target));
    out.push_str(&audit_log_section(model, target));
    out.push_str(&statistics::audit_statistics(model));
    out.push_str(&super::surfaces::large_objects_section(model));
    if target == Target::Citus {
        out.push_str(&super::citus::core_distribution(model));
    }
    out
}

/// The context helpers and the signed context they verify (contract v3: key table, verifier,
/// installer, contract marker; the Citus variant in sql/citus.rs) and the connection hygiene
/// grants.
/// `or_replace` writes `CREATE OR REPLACE` functions, for the in-place upgrade.
fn context_section(model: &Model, target: Target, or_replace: bool) -> String {
    let settings = &model.settings;
    let schema = ident(&settings.helper_schema);
    let owner = ident(&settings.owner_role);
    let app = ident(&settings.app_role);
    let role_type = format!("{schema}.{}", ident(ROLE_TYPE));
    let mut out = String::new();
    out.push_str(&section_heading(
        &format!("Signed context, contract v{CONTEXT_CONTRACT} (see docs/context.md)"),
        Some(&format!(
            "The runtime opens a transaction with `BEGIN; SELECT {helper}.install_context('<token>')`:\n\
             a token signed with HMAC-SHA256 under a key only the owner role can read. The installer\n\
             verifies it and stores a seal bound to this transaction and this connection in the\n\
             setting {helper}.context; context_claims() verifies the seal on every use, so a value the\n\
             app role sets or copies itself raises 42501 instead of being trusted.",
            helper = settings.helper_schema
        )),
    ));
    out.push_str(&match target {
        Target::Postgres => {
            signed_context_objects(&settings.helper_schema, &owner, &app, or_replace)
        }
        Target::Citus => {
            super::citus::signed_context_objects(&settings.helper_schema, &owner, &app, or_replace)
        }
    });
    let (source, doc) = (
        format!("{schema}.context_claims()"),
        "Policies read the context only through these helpers, which read only what\n\
             context_claims() verified: 'tenant;user;{projects of the first role or above};\n\
             {second or above};...'. No context means NULL / '{}'; a malformed field raises an\n\
             error. No SET clause: a SQL helper without one is inlined into the calling statement."
            .to_owned(),
    );
    out.push_str(&section_heading(
        "Context helpers (see docs/context.md)",
        Some(&doc),
    ));
    out.push_str(&helper_functions(
        &settings.helper_schema,
        &source,
        &role_type,
        &model.roles,
        &owner,
        &app,
        or_replace,
    ));
    out.push_str(&section_heading(
        "Clean pooled connections",
        Some("Nothing a session creates may outlive its transaction or shadow a table name."),
    ));
    out.push_str(&connection_hygiene());
    out
}

/// The migration that takes a database whose core speaks context contract `from` to the
/// contract this generator writes for `target`, or `None` when there is nothing to do. The
/// helpers keep their identity (`CREATE OR REPLACE`), so every policy that calls them is
/// upgraded with them and no table or row is touched.
pub(super) fn core_upgrade_migration(model: &Model, target: Target, from: u32) -> Option<String> {
    let to = super::context_contract(target);
    if from >= to {
        return None;
    }
    let mut out = file_header(
        &format!("Core upgrade: context contract v{from} -> v{to} (the signed context)."),
        target,
        &model.settings.helper_schema,
    );
    out.push_str(
        "--\n-- Written by `tenancy generate` because the committed snapshot records an older core.\n\
         -- Replaces the context helpers in place (the policies that call them are unchanged),\n\
         -- adds the key table, the verifier and the installer, and revokes TEMP. No table or\n\
         -- row is touched. After it, install a key (`tenancy key install`) before the runtime\n\
         -- starts: a runtime of the older contract stops with a clear error, as does one\n\
         -- without a key.\n",
    );
    out.push_str(&context_section(model, target, true));
    Some(out)
}

/// The core upgrade to revision 4: the authority rules of the memberships table (role ceiling,
/// a project keeps an owner) on a database whose core predates them. Adds policies and a
/// trigger; no table or row is touched.
pub(super) fn authority_upgrade_migration(model: &Model, target: Target) -> String {
    let mut out = file_header(
        "Core upgrade: authority rules of the memberships table (core revision 4).",
        target,
        &model.settings.helper_schema,
    );
    out.push_str(
        "--\n-- Written by `tenancy generate` because the committed snapshot records an older core.\n\
         -- Adds the role-ceiling policies and the keep-top-role trigger; no table or row is\n\
         -- touched. A project that has no owner today is not repaired: the trigger only refuses\n\
         -- a transaction that removes the last one.\n",
    );
    out.push_str(&authority::authority_upgrade(model, target));
    out
}

/// The core upgrade to revision 5: no planner statistics on the tenant-owned tables (see
/// `sql/statistics.rs`), including the ones ANALYZE stored before. No row is touched.
pub(super) fn statistics_upgrade_migration(model: &Model, target: Target) -> String {
    let mut out = file_header(
        "Core upgrade: no planner statistics on tenant-owned tables (core revision 5).",
        target,
        &model.settings.helper_schema,
    );
    out.push_str(
        "--\n-- Written by `tenancy generate` because the committed snapshot records an older core.\n\
         -- Sets statistics target 0 on every column of every table whose rows belong to a tenant\n\
         -- and removes the statistics ANALYZE stored for them: the planner estimates from every\n\
         -- tenant's values and EXPLAIN prints the estimates (docs/security.md, \"Planner\n\
         -- statistics\"). Run it as the tables' owner or a superuser; before PostgreSQL 18 only a\n\
         -- superuser can remove the stored statistics (anyone else gets a WARNING, and\n\
         -- `tenancy audit` reports them, TA034).\n",
    );
    out.push_str(&statistics::statistics_upgrade(model));
    out
}

/// The core upgrade to revision 6: the permissive policies test project membership as
/// `project_id = ANY (..)`, an index condition, instead of `COALESCE(project_id = ANY (..),
/// false)`, a per-row filter (`conditions::role_member`). Each policy is dropped and created
/// again in the migration's transaction; no table or row is touched. On Citus the policies
/// already had that form: nothing changes there.
pub(super) fn policy_index_upgrade_migration(model: &Model, target: Target) -> String {
    let mut out = file_header(
        "Core upgrade: project membership as an index condition in the policies (core revision 6).",
        target,
        &model.settings.helper_schema,
    );
    out.push_str(
        "--\n-- Written by `tenancy generate` because the committed snapshot records an older core.\n\
         -- The permissive policies tested membership as `COALESCE(project_id = ANY (..), false)`,\n\
         -- which PostgreSQL evaluates on every row the scan returns; now as `project_id = ANY (..)`,\n\
         -- which it uses as an index condition. NULL and false refuse a row alike, so every\n\
         -- policy admits exactly the rows it admitted before. Each policy is dropped and\n\
         -- created again in this migration's transaction; no table or row is touched.\n",
    );
    if target == Target::Citus {
        out.push_str(
            "-- Citus: the policies already test membership this way; nothing to change.\n",
        );
        return out;
    }
    for table in model
        .tables_in_dependency_order()
        .into_iter()
        .filter(|t| t.scope_columns().is_some())
    {
        let name = ident(&table.name);
        for policy in security::role_policies(model, table, target) {
            out.push_str(&format!(
                "\n-- {}: policy {}.\nDROP POLICY {} ON {name};\n{}",
                table.name,
                policy.name,
                ident(&policy.name),
                policy.create
            ));
        }
    }
    out
}

/// The app role reads every column of the audit table but `id`: the identity counts every
/// tenant's rows, so the ids a tenant sees would reveal the platform's audit volume.
pub(super) fn audit_select_grant(model: &Model) -> String {
    let table = format!(
        "{}.{}",
        ident(&model.settings.helper_schema),
        ident(AUDIT_TABLE)
    );
    let app = ident(&model.settings.app_role);
    format!(
        "-- Not `id`: a global identity, its values would count every tenant's audit rows.\n\
         GRANT SELECT (tenant_id, project_id, actor, action, subject, at) ON TABLE {table} TO {app};\n"
    )
}

/// `CREATE POLICY audit_log_insert ...;\n`: the app role appends rows only as the current
/// user and only for a project it holds a role in; a tenant-wide row (no project) or a row of
/// a project outside the context is refused.
pub(super) fn audit_insert_policy(model: &Model, target: Target) -> String {
    let helper_schema = &model.settings.helper_schema;
    let table = format!("{}.{}", ident(helper_schema), ident(AUDIT_TABLE));
    let app = ident(&model.settings.app_role);
    let current_user = context_call(target, helper_schema, ContextHelper::CurrentUserId);
    let lowest_role = model.roles.first().map(String::as_str).unwrap_or("viewer");
    let member_projects = context_call(
        target,
        helper_schema,
        ContextHelper::ProjectIds(lowest_role),
    );
    // Citus creates every policy as PERMISSIVE on the shards (sql/citus.rs): the tenant
    // boundary is part of each policy there.
    let tenant_check = match target {
        Target::Postgres => String::new(),
        Target::Citus => format!(
            "tenant_id = {} AND ",
            context_call(target, helper_schema, ContextHelper::CurrentTenantId)
        ),
    };
    format!(
        "CREATE POLICY audit_log_insert ON {table}\n\
         \x20 AS PERMISSIVE\n\
         \x20 FOR INSERT\n\
         \x20 TO {app}\n\
         \x20 WITH CHECK ({tenant_check}actor = ({current_user})::text \
         AND COALESCE(project_id = ANY ({member_projects}), false));\n"
    )
}

/// Name of the audit table, in the helper schema: `<helper_schema>.audit_log`.
pub(super) const AUDIT_TABLE: &str = "audit_log";

/// The audit table of the operator commands (`tenancy tenant|project|member ...`, seeds):
/// who did what, when, in which tenant. Tenant-owned and append-only for the app role: it may
/// read the rows of its own tenant (tenant-wide rows and rows of projects where the user holds
/// any role) and insert rows of its own tenant whose actor is the current user; never update or
/// delete. No foreign key to the tenants table, so the record of an offboarding outlives the
/// tenant's rows.
fn audit_log_section(model: &Model, target: Target) -> String {
    let settings = &model.settings;
    let helper_schema = &settings.helper_schema;
    let table = format!("{}.{}", ident(helper_schema), ident(AUDIT_TABLE));
    let owner = ident(&settings.owner_role);
    let app = ident(&settings.app_role);
    let current_tenant = context_call(target, helper_schema, ContextHelper::CurrentTenantId);
    let tenant_check = format!("tenant_id = {current_tenant}");
    let lowest_role = model.roles.first().map(String::as_str).unwrap_or("viewer");
    let visible_projects = context_call(
        target,
        helper_schema,
        ContextHelper::ProjectIds(lowest_role),
    );
    let insert_policy = audit_insert_policy(model, target);
    // Citus creates every policy as PERMISSIVE on the shards (sql/citus.rs): no restrictive
    // boundary there, the tenant check is part of each policy instead.
    let (boundary, select_tenant) = match target {
        Target::Postgres => (
            format!(
                "CREATE POLICY audit_log_tenant_boundary ON {table}\n\
                 \x20 AS RESTRICTIVE\n\
                 \x20 FOR ALL\n\
                 \x20 TO {app}\n\
                 \x20 USING ({tenant_check})\n\
                 \x20 WITH CHECK ({tenant_check});\n"
            ),
            String::new(),
        ),
        Target::Citus => (String::new(), format!("{tenant_check} AND ")),
    };
    let select_using = match target {
        Target::Postgres => format!("project_id IS NULL OR project_id = ANY ({visible_projects})"),
        Target::Citus => {
            format!("{select_tenant}(project_id IS NULL OR project_id = ANY ({visible_projects}))")
        }
    };
    let select_grant = audit_select_grant(model);
    let mut out = section_heading(
        &format!("{table} (the audit table: who did what, when)"),
        Some(
            "One row per operator command (tenant, project and membership administration, seeds),\n\
             written in the same transaction as the change. `subject` holds ids only, never\n\
             personal data. Readable by the app role for its own tenant only.",
        ),
    );
    out.push_str(&format!(
        "CREATE TABLE {table} (\n\
         \x20 tenant_id  uuid NOT NULL,\n\
         \x20 id         bigint GENERATED ALWAYS AS IDENTITY,\n\
         \x20 project_id uuid,\n\
         \x20 actor      text NOT NULL,\n\
         \x20 action     text NOT NULL,\n\
         \x20 subject    jsonb NOT NULL DEFAULT '{{}}',\n\
         \x20 at         timestamptz NOT NULL DEFAULT now(),\n\
         \x20 CONSTRAINT audit_log_pkey PRIMARY KEY (tenant_id, id),\n\
         \x20 CONSTRAINT audit_log_actor_check CHECK (actor <> ''),\n\
         \x20 CONSTRAINT audit_log_action_check CHECK (action ~ '^[a-z_]+\\.[a-z_-]+$')\n\
         );\n\
         CREATE INDEX audit_log_tenant_id_at_idx ON {table} (tenant_id, at);\n\
         ALTER TABLE {table} OWNER TO {owner};\n\
         \n\
         -- Row-level security: no row outside the current tenant; reads of tenant-wide rows and\n\
         -- of the rows of the user's projects; inserts only as the current user, naming a\n\
         -- project the user holds a role in (tenant-wide rows come from the operator path).\n\
         ALTER TABLE {table} ENABLE ROW LEVEL SECURITY;\n\
         ALTER TABLE {table} FORCE ROW LEVEL SECURITY;\n\
         {boundary}\
         CREATE POLICY audit_log_select ON {table}\n\
         \x20 AS PERMISSIVE\n\
         \x20 FOR SELECT\n\
         \x20 TO {app}\n\
         \x20 USING ({select_using});\n\
         {insert_policy}\
         \n\
         -- Grants: read and append only; never UPDATE, DELETE, TRUNCATE, REFERENCES or TRIGGER.\n\
         REVOKE ALL ON TABLE {table} FROM PUBLIC;\n\
         REVOKE ALL ON TABLE {table} FROM {app};\n\
         GRANT INSERT ON TABLE {table} TO {app};\n\
         {select_grant}"
    ));
    out
}

/// The three helper functions, their owner and their grants.
///
/// All three read the claims in `source` (docs/context.md):
/// `tenant;user;{projects at rank 0 or above};{rank 1 or above};...`, one field per role of
/// `roles`, least privileged first. Each is a single SQL expression without a SET clause, so
/// PostgreSQL inlines it into the calling statement's InitPlan.
fn helper_functions(
    helper_schema: &str,
    source: &str,
    role_type: &str,
    roles: &[String],
    owner: &str,
    app: &str,
    or_replace: bool,
) -> String {
    let schema = ident(helper_schema);
    let create = if or_replace {
        "CREATE OR REPLACE FUNCTION"
    } else {
        "CREATE FUNCTION"
    };
    // `indent` is the indentation of the lines after the first.
    let field = |position: &str, indent: &str| {
        format!(
            "NULLIF(\n\
             {indent}  pg_catalog.split_part({source}, ';', {position}),\n\
             {indent}  '')"
        )
    };
    let mut out = String::new();
    for (function, position, what) in [
        ("current_tenant_id", "1", "tenant"),
        ("current_user_id", "2", "user"),
    ] {
        out.push_str(&format!(
            "\n-- The current {what}'s id (field {position}), or NULL when it is unset or ''.\n\
             {create} {schema}.{function}()\n\
             \x20 RETURNS uuid\n\
             \x20 LANGUAGE sql\n\
             \x20 STABLE\n\
             AS $$\n\
             \x20 SELECT {}::pg_catalog.uuid\n\
             $$;\n",
            field(position, "  ")
        ));
    }
    let positions: String = roles
        .iter()
        .enumerate()
        .map(|(rank, role)| format!("\n        WHEN {} THEN {}", literal(role), rank + 3))
        .collect();
    out.push_str(&format!(
        "\n-- The projects where the current user's role is at least min_role ('{{}}' when none):\n\
         -- field 3 holds the projects of the first role or above, field 4 of the second or above, ...\n\
         {create} {schema}.project_ids(min_role {role_type})\n\
         \x20 RETURNS uuid[]\n\
         \x20 LANGUAGE sql\n\
         \x20 STABLE\n\
         AS $$\n\
         \x20 SELECT COALESCE(\n\
         \x20   {},\n\
         \x20   '{{}}')::pg_catalog.uuid[]\n\
         $$;\n",
        field(&format!("CASE min_role{positions}\n      END"), "    ")
    ));
    out.push('\n');
    for signature in [
        format!("{schema}.current_tenant_id()"),
        format!("{schema}.current_user_id()"),
        format!("{schema}.project_ids({role_type})"),
    ] {
        out.push_str(&format!(
            "ALTER FUNCTION {signature} OWNER TO {owner};\n\
             REVOKE ALL ON FUNCTION {signature} FROM PUBLIC;\n\
             GRANT EXECUTE ON FUNCTION {signature} TO {app};\n"
        ));
    }
    out
}
