-- Incremental migration: only what changed in the policies since the previous one.
--
-- GENERATED from policies/*.tenancy by `tenancy generate`. DO NOT EDIT:
-- change the policies and generate again.
-- Target: PostgreSQL 15+ (policies call the context helpers as `(SELECT tenancy.fn(...))`,
-- so each is an InitPlan evaluated once per statement).
--
-- Changes:
--   * projects: constraint projects_id_check added
--   * projects: policy projects_select changed
--   * projects: policy projects_update changed
--   * tenant_user_roles: new tenant_memberships table
--
-- Access (what `tenancy diff` reports against the previous model):
--   neutral: table `tenant_user_roles` is new
--   widens: admin, owner may now select `tenant_user_roles`: was refused, now every row of the caller's projects
--     counterexample: a caller holding `admin` in every project of tenant T may select, in `tenant_user_roles`, any row of tenant T
--   widens: admin, owner may now insert `tenant_user_roles`: was refused, now every row of the caller's projects
--     counterexample: a caller holding `admin` in every project of tenant T may insert, in `tenant_user_roles`, any row of tenant T
--   widens: admin, owner may now update `tenant_user_roles`: was refused, now every row of the caller's projects
--     counterexample: a caller holding `admin` in every project of tenant T may update, in `tenant_user_roles`, any row of tenant T
--   widens: admin, owner may now delete `tenant_user_roles`: was refused, now every row of the caller's projects
--     counterexample: a caller holding `admin` in every project of tenant T may delete, in `tenant_user_roles`, any row of tenant T

-- projects: policy projects_select changed (created again below).
DROP POLICY projects_select ON projects;

-- projects: policy projects_update changed (created again below).
DROP POLICY projects_update ON projects;

-- projects: constraint projects_id_check (fails if existing rows violate it).
ALTER TABLE projects ADD CONSTRAINT projects_id_check CHECK (id <> tenant_id);

-- ----------------------------------------------------------------------------
-- tenant_user_roles (the tenant memberships table: a role in every project of the tenant)
--   Who holds a role in every project of a tenant (an organisation's administrators, an
--   auditor who reads everything): the role counts in each project of the tenant, those
--   created later included.
-- ----------------------------------------------------------------------------
CREATE TABLE tenant_user_roles (
  tenant_id  uuid NOT NULL,
  user_id    uuid NOT NULL,
  role       tenancy.project_role NOT NULL,
  granted_by uuid DEFAULT tenancy.current_user_id(),
  granted_at timestamptz NOT NULL DEFAULT now(),
  CONSTRAINT tenant_user_roles_pkey PRIMARY KEY (tenant_id, user_id),
  CONSTRAINT tenant_user_roles_tenant_id_fkey FOREIGN KEY (tenant_id)
    REFERENCES tenants (id) ON DELETE CASCADE
);
ALTER TABLE tenant_user_roles OWNER TO tenancy_owner;

-- Row-level security: no row outside the current tenant, for any command;
-- then one permissive policy per allowed command.
ALTER TABLE tenant_user_roles ENABLE ROW LEVEL SECURITY;
ALTER TABLE tenant_user_roles FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_user_roles_tenant_boundary ON tenant_user_roles
  AS RESTRICTIVE
  FOR ALL
  TO tenancy_app
  USING (tenant_id = (SELECT tenancy.current_tenant_id()))
  WITH CHECK (tenant_id = (SELECT tenancy.current_tenant_id()));
CREATE POLICY tenant_user_roles_select ON tenant_user_roles
  AS PERMISSIVE
  FOR SELECT
  TO tenancy_app
  USING (tenant_id = ANY ((SELECT tenancy.project_ids('admin'))::uuid[]) OR user_id = (SELECT tenancy.current_user_id()));
CREATE POLICY tenant_user_roles_insert ON tenant_user_roles
  AS PERMISSIVE
  FOR INSERT
  TO tenancy_app
  WITH CHECK (tenant_id = ANY ((SELECT tenancy.project_ids('admin'))::uuid[]));
CREATE POLICY tenant_user_roles_update ON tenant_user_roles
  AS PERMISSIVE
  FOR UPDATE
  TO tenancy_app
  USING (tenant_id = ANY ((SELECT tenancy.project_ids('admin'))::uuid[]))
  WITH CHECK (tenant_id = ANY ((SELECT tenancy.project_ids('admin'))::uuid[]));
CREATE POLICY tenant_user_roles_delete ON tenant_user_roles
  AS PERMISSIVE
  FOR DELETE
  TO tenancy_app
  USING (tenant_id = ANY ((SELECT tenancy.project_ids('admin'))::uuid[]));
CREATE POLICY tenant_user_roles_role_ceiling_insert ON tenant_user_roles
  AS RESTRICTIVE
  FOR INSERT
  TO tenancy_app
  WITH CHECK (CASE role WHEN 'viewer' THEN COALESCE(tenant_id = ANY ((SELECT tenancy.project_ids('viewer'))::uuid[]), false) WHEN 'editor' THEN COALESCE(tenant_id = ANY ((SELECT tenancy.project_ids('editor'))::uuid[]), false) WHEN 'admin' THEN COALESCE(tenant_id = ANY ((SELECT tenancy.project_ids('admin'))::uuid[]), false) WHEN 'owner' THEN COALESCE(tenant_id = ANY ((SELECT tenancy.project_ids('owner'))::uuid[]), false) ELSE false END);
CREATE POLICY tenant_user_roles_role_ceiling_update ON tenant_user_roles
  AS RESTRICTIVE
  FOR UPDATE
  TO tenancy_app
  USING (CASE role WHEN 'viewer' THEN COALESCE(tenant_id = ANY ((SELECT tenancy.project_ids('viewer'))::uuid[]), false) WHEN 'editor' THEN COALESCE(tenant_id = ANY ((SELECT tenancy.project_ids('editor'))::uuid[]), false) WHEN 'admin' THEN COALESCE(tenant_id = ANY ((SELECT tenancy.project_ids('admin'))::uuid[]), false) WHEN 'owner' THEN COALESCE(tenant_id = ANY ((SELECT tenancy.project_ids('owner'))::uuid[]), false) ELSE false END)
  WITH CHECK (CASE role WHEN 'viewer' THEN COALESCE(tenant_id = ANY ((SELECT tenancy.project_ids('viewer'))::uuid[]), false) WHEN 'editor' THEN COALESCE(tenant_id = ANY ((SELECT tenancy.project_ids('editor'))::uuid[]), false) WHEN 'admin' THEN COALESCE(tenant_id = ANY ((SELECT tenancy.project_ids('admin'))::uuid[]), false) WHEN 'owner' THEN COALESCE(tenant_id = ANY ((SELECT tenancy.project_ids('owner'))::uuid[]), false) ELSE false END);
CREATE POLICY tenant_user_roles_role_ceiling_delete ON tenant_user_roles
  AS RESTRICTIVE
  FOR DELETE
  TO tenancy_app
  USING (CASE role WHEN 'viewer' THEN COALESCE(tenant_id = ANY ((SELECT tenancy.project_ids('viewer'))::uuid[]), false) WHEN 'editor' THEN COALESCE(tenant_id = ANY ((SELECT tenancy.project_ids('editor'))::uuid[]), false) WHEN 'admin' THEN COALESCE(tenant_id = ANY ((SELECT tenancy.project_ids('admin'))::uuid[]), false) WHEN 'owner' THEN COALESCE(tenant_id = ANY ((SELECT tenancy.project_ids('owner'))::uuid[]), false) ELSE false END);

-- Stamped columns: granted_by, granted_at.
-- Inside a request context the database writes them, whatever the statement says
-- (`on insert`: once; `on update`: on every write). Maintenance work without a
-- context (the owner role) writes what it gives; their defaults fill what it omits.
-- No SET clause: every name is schema-qualified, operators included. (A SET
-- search_path here would make the context helper it calls plan again on every call,
-- as its cached plans depend on the search_path.)
CREATE OR REPLACE FUNCTION tenancy.tenant_user_roles_stamp()
  RETURNS trigger
  LANGUAGE plpgsql
AS $$
DECLARE
  caller pg_catalog.uuid := tenancy.current_user_id();
BEGIN
  IF caller IS NULL THEN
    RETURN NEW;
  END IF;
  IF TG_OP OPERATOR(pg_catalog.=) 'INSERT' THEN
    NEW.granted_by := caller;
    NEW.granted_at := pg_catalog.now();
  ELSE
    NEW.granted_by := caller;
    NEW.granted_at := pg_catalog.now();
  END IF;
  RETURN NEW;
END
$$;
ALTER FUNCTION tenancy.tenant_user_roles_stamp() OWNER TO tenancy_owner;
REVOKE ALL ON FUNCTION tenancy.tenant_user_roles_stamp() FROM PUBLIC;
DROP TRIGGER IF EXISTS tenant_user_roles_stamp ON tenant_user_roles;
CREATE TRIGGER tenant_user_roles_stamp
  BEFORE INSERT OR UPDATE ON tenant_user_roles
  FOR EACH ROW
  EXECUTE FUNCTION tenancy.tenant_user_roles_stamp();

-- Grants: only the commands with a rule; UPDATE only on columns that cannot move a row
-- to another tenant or project; never TRUNCATE, REFERENCES or TRIGGER.
REVOKE ALL ON TABLE tenant_user_roles FROM PUBLIC;
REVOKE ALL ON TABLE tenant_user_roles FROM tenancy_app;
GRANT SELECT, INSERT, DELETE ON TABLE tenant_user_roles TO tenancy_app;
GRANT UPDATE (role) ON TABLE tenant_user_roles TO tenancy_app;

-- No planner statistics: under row-level security the planner still estimates from
-- every tenant's values, and EXPLAIN would print them (docs/security.md).
ALTER TABLE tenant_user_roles
  ALTER COLUMN tenant_id SET STATISTICS 0,
  ALTER COLUMN user_id SET STATISTICS 0,
  ALTER COLUMN role SET STATISTICS 0,
  ALTER COLUMN granted_by SET STATISTICS 0,
  ALTER COLUMN granted_at SET STATISTICS 0;

-- projects: policy projects_select.
CREATE POLICY projects_select ON projects
  AS PERMISSIVE
  FOR SELECT
  TO tenancy_app
  USING ((id = ANY ((SELECT tenancy.project_ids('viewer'))::uuid[]) OR tenant_id = ANY ((SELECT tenancy.project_ids('viewer'))::uuid[])));

-- projects: policy projects_update.
CREATE POLICY projects_update ON projects
  AS PERMISSIVE
  FOR UPDATE
  TO tenancy_app
  USING ((id = ANY ((SELECT tenancy.project_ids('admin'))::uuid[]) OR tenant_id = ANY ((SELECT tenancy.project_ids('admin'))::uuid[])))
  WITH CHECK ((id = ANY ((SELECT tenancy.project_ids('admin'))::uuid[]) OR tenant_id = ANY ((SELECT tenancy.project_ids('admin'))::uuid[])));
