-- tenancy core: helper schema, roles, context helpers and the core tables.
--
-- GENERATED from policies/*.tenancy by `tenancy generate`. DO NOT EDIT:
-- change the policies and generate again.
-- Target: PostgreSQL 15+ (policies call the context helpers as `(SELECT tenancy.fn(...))`,
-- so each is an InitPlan evaluated once per statement).

-- ----------------------------------------------------------------------------
-- Roles
--   Roles are cluster-wide: create them only if missing (a second database of the
--   same cluster applies these migrations too), then force their attributes.
--   The app role never bypasses row-level security and is never a member of the owner.
-- ----------------------------------------------------------------------------
DO $$
BEGIN
  IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = 'tenancy_owner') THEN
    CREATE ROLE tenancy_owner NOLOGIN;
  END IF;
  IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = 'tenancy_app') THEN
    CREATE ROLE tenancy_app LOGIN;
  END IF;
  IF EXISTS (
    SELECT 1
    FROM pg_catalog.pg_auth_members AS m
    JOIN pg_catalog.pg_roles AS granted ON granted.oid = m.roleid
    JOIN pg_catalog.pg_roles AS member ON member.oid = m.member
    WHERE granted.rolname = 'tenancy_owner' AND member.rolname = 'tenancy_app'
  ) THEN
    REVOKE tenancy_owner FROM tenancy_app;
  END IF;
END
$$;

ALTER ROLE tenancy_owner NOLOGIN NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE;
ALTER ROLE tenancy_app LOGIN NOSUPERUSER NOBYPASSRLS NOINHERIT NOCREATEDB NOCREATEROLE NOREPLICATION;

-- ----------------------------------------------------------------------------
-- Helper schema tenancy
--   Holds the role enum and the context helpers; owned by the owner role.
-- ----------------------------------------------------------------------------
CREATE SCHEMA IF NOT EXISTS tenancy;
ALTER SCHEMA tenancy OWNER TO tenancy_owner;
GRANT USAGE ON SCHEMA tenancy TO tenancy_app;

-- ----------------------------------------------------------------------------
-- Extensions
--   pgvector, for the vector columns.
-- ----------------------------------------------------------------------------
CREATE EXTENSION IF NOT EXISTS vector;

-- ----------------------------------------------------------------------------
-- Role enum tenancy.project_role
--   Project roles, from the least to the most privileged; a role includes the ones before it.
-- ----------------------------------------------------------------------------
CREATE TYPE tenancy.project_role AS ENUM ('viewer', 'editor', 'admin', 'owner');
ALTER TYPE tenancy.project_role OWNER TO tenancy_owner;
GRANT USAGE ON TYPE tenancy.project_role TO tenancy_app;

-- ----------------------------------------------------------------------------
-- Context helpers (see docs/context.md)
--   The runtime sets the one setting tenancy.context with SET LOCAL, in the same round trip
--   as BEGIN: 'tenant;user;{projects of the first role or above};{second or above};...'.
--   Policies read it only through these helpers. Unset or '' means no context
--   (NULL / '{}'); a malformed field raises an error. No SET clause: the bodies name
--   functions and types schema-qualified, and a SQL helper without one is inlined into
--   the calling statement (no function call per statement).
-- ----------------------------------------------------------------------------

-- The current tenant's id (field 1), or NULL when it is unset or ''.
CREATE FUNCTION tenancy.current_tenant_id()
  RETURNS uuid
  LANGUAGE sql
  STABLE
AS $$
  SELECT NULLIF(
    pg_catalog.split_part(pg_catalog.current_setting('tenancy.context', true), ';', 1),
    '')::pg_catalog.uuid
$$;

-- The current user's id (field 2), or NULL when it is unset or ''.
CREATE FUNCTION tenancy.current_user_id()
  RETURNS uuid
  LANGUAGE sql
  STABLE
AS $$
  SELECT NULLIF(
    pg_catalog.split_part(pg_catalog.current_setting('tenancy.context', true), ';', 2),
    '')::pg_catalog.uuid
$$;

-- The projects where the current user's role is at least min_role ('{}' when none):
-- field 3 holds the projects of the first role or above, field 4 of the second or above, ...
CREATE FUNCTION tenancy.project_ids(min_role tenancy.project_role)
  RETURNS uuid[]
  LANGUAGE sql
  STABLE
AS $$
  SELECT COALESCE(
    NULLIF(
      pg_catalog.split_part(pg_catalog.current_setting('tenancy.context', true), ';', CASE min_role
        WHEN 'viewer' THEN 3
        WHEN 'editor' THEN 4
        WHEN 'admin' THEN 5
        WHEN 'owner' THEN 6
      END),
      ''),
    '{}')::pg_catalog.uuid[]
$$;

ALTER FUNCTION tenancy.current_tenant_id() OWNER TO tenancy_owner;
REVOKE ALL ON FUNCTION tenancy.current_tenant_id() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION tenancy.current_tenant_id() TO tenancy_app;
ALTER FUNCTION tenancy.current_user_id() OWNER TO tenancy_owner;
REVOKE ALL ON FUNCTION tenancy.current_user_id() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION tenancy.current_user_id() TO tenancy_app;
ALTER FUNCTION tenancy.project_ids(tenancy.project_role) OWNER TO tenancy_owner;
REVOKE ALL ON FUNCTION tenancy.project_ids(tenancy.project_role) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION tenancy.project_ids(tenancy.project_role) TO tenancy_app;

-- ----------------------------------------------------------------------------
-- tenants (the tenants table: one row per tenant)
--   One customer organisation. Rows are visible only inside their own tenant.
-- ----------------------------------------------------------------------------
CREATE TABLE tenants (
  id         uuid NOT NULL DEFAULT gen_random_uuid(),
  name       text NOT NULL,
  slug       text NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now(),
  CONSTRAINT tenants_pkey PRIMARY KEY (id),
  CONSTRAINT tenants_slug_key UNIQUE (slug)
);
ALTER TABLE tenants OWNER TO tenancy_owner;

-- Row-level security: no row outside the current tenant, for any command;
-- then one permissive policy per allowed command.
ALTER TABLE tenants ENABLE ROW LEVEL SECURITY;
ALTER TABLE tenants FORCE ROW LEVEL SECURITY;
CREATE POLICY tenants_tenant_boundary ON tenants
  AS RESTRICTIVE
  FOR ALL
  TO tenancy_app
  USING (id = (SELECT tenancy.current_tenant_id()))
  WITH CHECK (id = (SELECT tenancy.current_tenant_id()));
CREATE POLICY tenants_select ON tenants
  AS PERMISSIVE
  FOR SELECT
  TO tenancy_app
  USING (pg_catalog.cardinality((SELECT tenancy.project_ids('viewer'))::uuid[]) > 0);

-- Grants: only the commands with a rule; UPDATE only on columns that cannot move a row
-- to another tenant or project; never TRUNCATE, REFERENCES or TRIGGER.
REVOKE ALL ON TABLE tenants FROM PUBLIC;
REVOKE ALL ON TABLE tenants FROM tenancy_app;
GRANT SELECT ON TABLE tenants TO tenancy_app;

-- ----------------------------------------------------------------------------
-- projects (the projects table: scoped to a tenant)
--   A product of a tenant; every tenant-owned row belongs to exactly one project.
-- ----------------------------------------------------------------------------
CREATE TABLE projects (
  tenant_id   uuid NOT NULL,
  id          uuid NOT NULL DEFAULT gen_random_uuid(),
  name        text NOT NULL,
  slug        text NOT NULL,
  description text,
  created_at  timestamptz NOT NULL DEFAULT now(),
  CONSTRAINT projects_pkey PRIMARY KEY (tenant_id, id),
  CONSTRAINT projects_slug_key UNIQUE (tenant_id, slug),
  CONSTRAINT projects_tenant_id_fkey FOREIGN KEY (tenant_id)
    REFERENCES tenants (id) ON DELETE CASCADE
);
ALTER TABLE projects OWNER TO tenancy_owner;

-- Row-level security: no row outside the current tenant, for any command;
-- then one permissive policy per allowed command.
ALTER TABLE projects ENABLE ROW LEVEL SECURITY;
ALTER TABLE projects FORCE ROW LEVEL SECURITY;
CREATE POLICY projects_tenant_boundary ON projects
  AS RESTRICTIVE
  FOR ALL
  TO tenancy_app
  USING (tenant_id = (SELECT tenancy.current_tenant_id()))
  WITH CHECK (tenant_id = (SELECT tenancy.current_tenant_id()));
CREATE POLICY projects_select ON projects
  AS PERMISSIVE
  FOR SELECT
  TO tenancy_app
  USING (COALESCE(id = ANY ((SELECT tenancy.project_ids('viewer'))::uuid[]), false));
CREATE POLICY projects_update ON projects
  AS PERMISSIVE
  FOR UPDATE
  TO tenancy_app
  USING (COALESCE(id = ANY ((SELECT tenancy.project_ids('admin'))::uuid[]), false))
  WITH CHECK (COALESCE(id = ANY ((SELECT tenancy.project_ids('admin'))::uuid[]), false));

-- Grants: only the commands with a rule; UPDATE only on columns that cannot move a row
-- to another tenant or project; never TRUNCATE, REFERENCES or TRIGGER.
REVOKE ALL ON TABLE projects FROM PUBLIC;
REVOKE ALL ON TABLE projects FROM tenancy_app;
GRANT SELECT ON TABLE projects TO tenancy_app;
GRANT UPDATE (name, slug, description, created_at) ON TABLE projects TO tenancy_app;

-- ----------------------------------------------------------------------------
-- user_project_roles (the memberships table: scoped to a project)
--   Who holds which role in which project.
-- ----------------------------------------------------------------------------
CREATE TABLE user_project_roles (
  tenant_id  uuid NOT NULL,
  project_id uuid NOT NULL,
  user_id    uuid NOT NULL,
  role       tenancy.project_role NOT NULL,
  granted_by uuid,
  granted_at timestamptz NOT NULL DEFAULT now(),
  CONSTRAINT user_project_roles_pkey PRIMARY KEY (tenant_id, project_id, user_id),
  CONSTRAINT user_project_roles_tenant_id_project_id_fkey FOREIGN KEY (tenant_id, project_id)
    REFERENCES projects (tenant_id, id) ON DELETE CASCADE
);
-- Authorization looks up a user's memberships by (tenant_id, user_id).
CREATE INDEX user_project_roles_user_id_idx ON user_project_roles (tenant_id, user_id);
ALTER TABLE user_project_roles OWNER TO tenancy_owner;

-- Row-level security: no row outside the current tenant, for any command;
-- then one permissive policy per allowed command.
ALTER TABLE user_project_roles ENABLE ROW LEVEL SECURITY;
ALTER TABLE user_project_roles FORCE ROW LEVEL SECURITY;
CREATE POLICY user_project_roles_tenant_boundary ON user_project_roles
  AS RESTRICTIVE
  FOR ALL
  TO tenancy_app
  USING (tenant_id = (SELECT tenancy.current_tenant_id()))
  WITH CHECK (tenant_id = (SELECT tenancy.current_tenant_id()));
CREATE POLICY user_project_roles_select ON user_project_roles
  AS PERMISSIVE
  FOR SELECT
  TO tenancy_app
  USING (COALESCE(project_id = ANY ((SELECT tenancy.project_ids('viewer'))::uuid[]), false) OR user_id = (SELECT tenancy.current_user_id()));
CREATE POLICY user_project_roles_insert ON user_project_roles
  AS PERMISSIVE
  FOR INSERT
  TO tenancy_app
  WITH CHECK (COALESCE(project_id = ANY ((SELECT tenancy.project_ids('admin'))::uuid[]), false));
CREATE POLICY user_project_roles_update ON user_project_roles
  AS PERMISSIVE
  FOR UPDATE
  TO tenancy_app
  USING (COALESCE(project_id = ANY ((SELECT tenancy.project_ids('admin'))::uuid[]), false))
  WITH CHECK (COALESCE(project_id = ANY ((SELECT tenancy.project_ids('admin'))::uuid[]), false));
CREATE POLICY user_project_roles_delete ON user_project_roles
  AS PERMISSIVE
  FOR DELETE
  TO tenancy_app
  USING (COALESCE(project_id = ANY ((SELECT tenancy.project_ids('admin'))::uuid[]), false));

-- Grants: only the commands with a rule; UPDATE only on columns that cannot move a row
-- to another tenant or project; never TRUNCATE, REFERENCES or TRIGGER.
REVOKE ALL ON TABLE user_project_roles FROM PUBLIC;
REVOKE ALL ON TABLE user_project_roles FROM tenancy_app;
GRANT SELECT, INSERT, DELETE ON TABLE user_project_roles TO tenancy_app;
GRANT UPDATE (role, granted_by, granted_at) ON TABLE user_project_roles TO tenancy_app;

-- ----------------------------------------------------------------------------
-- tenancy.audit_log (the audit table: who did what, when)
--   One row per operator command (tenant, project and membership administration, seeds),
--   written in the same transaction as the change. `subject` holds ids only, never
--   personal data. Readable by the app role for its own tenant only.
-- ----------------------------------------------------------------------------
CREATE TABLE tenancy.audit_log (
  tenant_id  uuid NOT NULL,
  id         bigint GENERATED ALWAYS AS IDENTITY,
  project_id uuid,
  actor      text NOT NULL,
  action     text NOT NULL,
  subject    jsonb NOT NULL DEFAULT '{}',
  at         timestamptz NOT NULL DEFAULT now(),
  CONSTRAINT audit_log_pkey PRIMARY KEY (tenant_id, id),
  CONSTRAINT audit_log_actor_check CHECK (actor <> ''),
  CONSTRAINT audit_log_action_check CHECK (action ~ '^[a-z_]+\.[a-z_-]+$')
);
CREATE INDEX audit_log_tenant_id_at_idx ON tenancy.audit_log (tenant_id, at);
ALTER TABLE tenancy.audit_log OWNER TO tenancy_owner;

-- Row-level security: no row outside the current tenant; reads of tenant-wide rows and
-- of the rows of the user's projects; inserts only as the current user.
ALTER TABLE tenancy.audit_log ENABLE ROW LEVEL SECURITY;
ALTER TABLE tenancy.audit_log FORCE ROW LEVEL SECURITY;
CREATE POLICY audit_log_tenant_boundary ON tenancy.audit_log
  AS RESTRICTIVE
  FOR ALL
  TO tenancy_app
  USING (tenant_id = (SELECT tenancy.current_tenant_id()))
  WITH CHECK (tenant_id = (SELECT tenancy.current_tenant_id()));
CREATE POLICY audit_log_select ON tenancy.audit_log
  AS PERMISSIVE
  FOR SELECT
  TO tenancy_app
  USING (project_id IS NULL OR project_id = ANY ((SELECT tenancy.project_ids('viewer'))::uuid[]));
CREATE POLICY audit_log_insert ON tenancy.audit_log
  AS PERMISSIVE
  FOR INSERT
  TO tenancy_app
  WITH CHECK (actor = ((SELECT tenancy.current_user_id()))::text);

-- Grants: read and append only; never UPDATE, DELETE, TRUNCATE, REFERENCES or TRIGGER.
REVOKE ALL ON TABLE tenancy.audit_log FROM PUBLIC;
REVOKE ALL ON TABLE tenancy.audit_log FROM tenancy_app;
GRANT SELECT, INSERT ON TABLE tenancy.audit_log TO tenancy_app;
