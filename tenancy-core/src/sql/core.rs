//! `0001_tenancy_core.sql`: helper schema, roles, role enum, context helpers, core tables.

use super::context::{context_call, ContextHelper};
use super::ident::{ident, literal};
use super::{file_header, section_heading, security, tables, Target};
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

    out.push_str(&section_heading(
        "Roles",
        Some(
            "Roles are cluster-wide: create them only if missing (a second database of the\n\
             same cluster applies these migrations too), then force their attributes.\n\
             The app role never bypasses row-level security and is never a member of the owner.",
        ),
    ));
    out.push_str(&format!(
        "DO $$\n\
         BEGIN\n\
         \x20 IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = {owner_lit}) THEN\n\
         \x20   CREATE ROLE {owner} NOLOGIN;\n\
         \x20 END IF;\n\
         \x20 IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = {app_lit}) THEN\n\
         \x20   CREATE ROLE {app} LOGIN;\n\
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
         ALTER ROLE {app} LOGIN NOSUPERUSER NOBYPASSRLS NOINHERIT NOCREATEDB NOCREATEROLE NOREPLICATION;\n",
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

    out.push_str(&section_heading(
        "Context helpers (see docs/context.md)",
        Some(
            "The runtime sets the context with SET LOCAL; policies read it only through these.\n\
             Unset or '' means no context (NULL / '{}'); a malformed value raises an error.\n\
             No SET clause: the bodies name functions and types schema-qualified, and a SQL\n\
             helper without one is inlined into the calling statement (no call per statement).",
        ),
    ));
    out.push_str(&helper_functions(
        &settings.helper_schema,
        &role_type,
        &owner,
        &app,
    ));

    for kind in [
        TableKind::Tenants,
        TableKind::Projects,
        TableKind::Memberships,
    ] {
        if let Some(table) = model.core_table(kind) {
            out.push_str(&tables::table_section(model, table, target));
            out.push_str(&security::security_section(model, table, target));
        }
    }
    out.push_str(&audit_log_section(model, target));
    out
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
    let current_user = context_call(target, helper_schema, ContextHelper::CurrentUserId);
    let tenant_check = format!("tenant_id = {current_tenant}");
    let lowest_role = model.roles.first().map(String::as_str).unwrap_or("viewer");
    let visible_projects = context_call(
        target,
        helper_schema,
        ContextHelper::ProjectIds(lowest_role),
    );
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
         -- of the rows of the user's projects; inserts only as the current user.\n\
         ALTER TABLE {table} ENABLE ROW LEVEL SECURITY;\n\
         ALTER TABLE {table} FORCE ROW LEVEL SECURITY;\n\
         CREATE POLICY audit_log_tenant_boundary ON {table}\n\
         \x20 AS RESTRICTIVE\n\
         \x20 FOR ALL\n\
         \x20 TO {app}\n\
         \x20 USING ({tenant_check})\n\
         \x20 WITH CHECK ({tenant_check});\n\
         CREATE POLICY audit_log_select ON {table}\n\
         \x20 AS PERMISSIVE\n\
         \x20 FOR SELECT\n\
         \x20 TO {app}\n\
         \x20 USING (project_id IS NULL OR project_id = ANY ({visible_projects}));\n\
         CREATE POLICY audit_log_insert ON {table}\n\
         \x20 AS PERMISSIVE\n\
         \x20 FOR INSERT\n\
         \x20 TO {app}\n\
         \x20 WITH CHECK (actor = ({current_user})::text);\n\
         \n\
         -- Grants: read and append only; never UPDATE, DELETE, TRUNCATE, REFERENCES or TRIGGER.\n\
         REVOKE ALL ON TABLE {table} FROM PUBLIC;\n\
         REVOKE ALL ON TABLE {table} FROM {app};\n\
         GRANT SELECT, INSERT ON TABLE {table} TO {app};\n"
    ));
    out
}

/// The three helper functions, their owner and their grants.
fn helper_functions(helper_schema: &str, role_type: &str, owner: &str, app: &str) -> String {
    let schema = ident(helper_schema);
    let setting = |name: &str| literal(&format!("{helper_schema}.{name}"));
    let mut out = String::new();
    for (function, setting_name, what) in [
        ("current_tenant_id", "tenant_id", "tenant"),
        ("current_user_id", "user_id", "user"),
    ] {
        out.push_str(&format!(
            "\n-- The current {what}'s id, or NULL when {setting_name} is unset or ''.\n\
             CREATE FUNCTION {schema}.{function}()\n\
             \x20 RETURNS uuid\n\
             \x20 LANGUAGE sql\n\
             \x20 STABLE\n\
             AS $$\n\
             \x20 SELECT NULLIF(pg_catalog.current_setting({}, true), '')::pg_catalog.uuid\n\
             $$;\n",
            setting(setting_name)
        ));
    }
    out.push_str(&format!(
        "\n-- The projects where the current user's role is at least min_role ('{{}}' when none).\n\
         -- {roles_setting} is 'uuid:role,uuid:role,...'; every entry is parsed, so a\n\
         -- malformed one raises even when its role is below min_role.\n\
         CREATE FUNCTION {schema}.project_ids(min_role {role_type})\n\
         \x20 RETURNS uuid[]\n\
         \x20 LANGUAGE plpgsql\n\
         \x20 STABLE\n\
         AS $$\n\
         DECLARE\n\
         \x20 raw_setting pg_catalog.text := pg_catalog.current_setting({roles_setting}, true);\n\
         \x20 entry pg_catalog.text;\n\
         \x20 entry_project_id pg_catalog.uuid;\n\
         \x20 entry_role {role_type};\n\
         \x20 result pg_catalog.uuid[] := '{{}}';\n\
         BEGIN\n\
         \x20 IF raw_setting IS NULL OR raw_setting = '' THEN\n\
         \x20   RETURN result;\n\
         \x20 END IF;\n\
         \x20 FOREACH entry IN ARRAY pg_catalog.string_to_array(raw_setting, ',') LOOP\n\
         \x20   IF pg_catalog.cardinality(pg_catalog.string_to_array(entry, ':')) <> 2 THEN\n\
         \x20     RAISE EXCEPTION 'malformed %: %', {roles_setting}, entry\n\
         \x20       USING ERRCODE = 'invalid_parameter_value';\n\
         \x20   END IF;\n\
         \x20   entry_project_id := pg_catalog.split_part(entry, ':', 1)::pg_catalog.uuid;\n\
         \x20   entry_role := pg_catalog.split_part(entry, ':', 2)::{role_type};\n\
         \x20   IF entry_role >= min_role THEN\n\
         \x20     result := pg_catalog.array_append(result, entry_project_id);\n\
         \x20   END IF;\n\
         \x20 END LOOP;\n\
         \x20 RETURN result;\n\
         END\n\
         $$;\n",
        roles_setting = setting("project_roles"),
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
