-- Core upgrade: authority rules of the memberships table (core revision 4).
--
-- GENERATED from policies/*.tenancy by `tenancy generate`. DO NOT EDIT:
-- change the policies and generate again.
-- Target: PostgreSQL 15+ (policies call the context helpers as `(SELECT tenancy.fn(...))`,
-- so each is an InitPlan evaluated once per statement).
--
-- Written by `tenancy generate` because the committed snapshot records an older core.
-- Adds the role-ceiling policies and the keep-top-role trigger; no table or row is
-- touched. A project that has no owner today is not repaired: the trigger only refuses
-- a transaction that removes the last one.

-- ----------------------------------------------------------------------------
-- Role ceiling (user_project_roles)
--   A member grants, changes or removes only roles at or below its own (restrictive
--   policies next to the permissive ones of the rules).
-- ----------------------------------------------------------------------------
CREATE POLICY user_project_roles_role_ceiling_insert ON user_project_roles
  AS RESTRICTIVE
  FOR INSERT
  TO tenancy_app
  WITH CHECK (CASE role WHEN 'viewer' THEN COALESCE(project_id = ANY ((SELECT tenancy.project_ids('viewer'))::uuid[]), false) WHEN 'editor' THEN COALESCE(project_id = ANY ((SELECT tenancy.project_ids('editor'))::uuid[]), false) WHEN 'admin' THEN COALESCE(project_id = ANY ((SELECT tenancy.project_ids('admin'))::uuid[]), false) WHEN 'owner' THEN COALESCE(project_id = ANY ((SELECT tenancy.project_ids('owner'))::uuid[]), false) ELSE false END);
CREATE POLICY user_project_roles_role_ceiling_update ON user_project_roles
  AS RESTRICTIVE
  FOR UPDATE
  TO tenancy_app
  USING (CASE role WHEN 'viewer' THEN COALESCE(project_id = ANY ((SELECT tenancy.project_ids('viewer'))::uuid[]), false) WHEN 'editor' THEN COALESCE(project_id = ANY ((SELECT tenancy.project_ids('editor'))::uuid[]), false) WHEN 'admin' THEN COALESCE(project_id = ANY ((SELECT tenancy.project_ids('admin'))::uuid[]), false) WHEN 'owner' THEN COALESCE(project_id = ANY ((SELECT tenancy.project_ids('owner'))::uuid[]), false) ELSE false END)
  WITH CHECK (CASE role WHEN 'viewer' THEN COALESCE(project_id = ANY ((SELECT tenancy.project_ids('viewer'))::uuid[]), false) WHEN 'editor' THEN COALESCE(project_id = ANY ((SELECT tenancy.project_ids('editor'))::uuid[]), false) WHEN 'admin' THEN COALESCE(project_id = ANY ((SELECT tenancy.project_ids('admin'))::uuid[]), false) WHEN 'owner' THEN COALESCE(project_id = ANY ((SELECT tenancy.project_ids('owner'))::uuid[]), false) ELSE false END);
CREATE POLICY user_project_roles_role_ceiling_delete ON user_project_roles
  AS RESTRICTIVE
  FOR DELETE
  TO tenancy_app
  USING (CASE role WHEN 'viewer' THEN COALESCE(project_id = ANY ((SELECT tenancy.project_ids('viewer'))::uuid[]), false) WHEN 'editor' THEN COALESCE(project_id = ANY ((SELECT tenancy.project_ids('editor'))::uuid[]), false) WHEN 'admin' THEN COALESCE(project_id = ANY ((SELECT tenancy.project_ids('admin'))::uuid[]), false) WHEN 'owner' THEN COALESCE(project_id = ANY ((SELECT tenancy.project_ids('owner'))::uuid[]), false) ELSE false END);

-- ----------------------------------------------------------------------------
-- A project keeps a member of the top role (owner; user_project_roles)
--   Checked at commit (deferred), so a hand-over works in one transaction: a transaction
--   that demotes or removes the last member of the top role (the enum's last value) of
--   a project that still exists is refused. Runs with the caller's rights: a caller who
--   may touch top-role rows (the role ceiling) sees every membership of that project.
-- ----------------------------------------------------------------------------
CREATE OR REPLACE FUNCTION tenancy.keep_top_role()
  RETURNS trigger
  LANGUAGE plpgsql
  SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
  IF EXISTS (SELECT 1 FROM public.projects AS p
             WHERE p.tenant_id = OLD.tenant_id AND p.id = OLD.project_id)
     AND NOT EXISTS (SELECT 1 FROM public.user_project_roles AS m
                     WHERE m.tenant_id = OLD.tenant_id AND m.project_id = OLD.project_id
                       AND m.role = pg_catalog.enum_last(NULL::tenancy.project_role)) THEN
    RAISE EXCEPTION 'tenancy authority: project % would be left with no %',
      OLD.project_id, pg_catalog.enum_last(NULL::tenancy.project_role)
      USING ERRCODE = '42501',
            HINT = 'give the role to another member first, in the same transaction';
  END IF;
  RETURN NULL;
END
$$;
ALTER FUNCTION tenancy.keep_top_role() OWNER TO tenancy_owner;
REVOKE ALL ON FUNCTION tenancy.keep_top_role() FROM PUBLIC;
CREATE CONSTRAINT TRIGGER user_project_roles_keep_top_role
  AFTER UPDATE OF role OR DELETE ON public.user_project_roles
  DEFERRABLE INITIALLY DEFERRED
  FOR EACH ROW
  WHEN (OLD.role = pg_catalog.enum_last(NULL::tenancy.project_role))
  EXECUTE FUNCTION tenancy.keep_top_role();

-- ----------------------------------------------------------------------------
-- Provenance of tenancy.audit_log
--   The app role appends audit rows only for a project it holds a role in: no
--   tenant-wide rows and no rows naming a project outside its context. It no longer
--   reads `id` (a global identity: the ids would count every tenant's rows).
-- ----------------------------------------------------------------------------
DROP POLICY audit_log_insert ON tenancy.audit_log;
CREATE POLICY audit_log_insert ON tenancy.audit_log
  AS PERMISSIVE
  FOR INSERT
  TO tenancy_app
  WITH CHECK (actor = ((SELECT tenancy.current_user_id()))::text AND COALESCE(project_id = ANY ((SELECT tenancy.project_ids('viewer'))::uuid[]), false));
REVOKE SELECT ON TABLE tenancy.audit_log FROM tenancy_app;
-- Not `id`: a global identity, its values would count every tenant's audit rows.
GRANT SELECT (tenant_id, project_id, actor, action, subject, at) ON TABLE tenancy.audit_log TO tenancy_app;

-- ----------------------------------------------------------------------------
-- Large objects
--   The app role gets no large-object function: every tenant's requests run as one
--   login role, which would own every large object. Database-wide (function ACLs are
--   per database); the owner role keeps them. Needs a superuser.
-- ----------------------------------------------------------------------------
DO $$
DECLARE
  f pg_catalog.regprocedure;
BEGIN
  IF NOT (SELECT r.rolsuper FROM pg_catalog.pg_roles AS r WHERE r.rolname = CURRENT_USER) THEN
    RAISE WARNING 'tenancy: large-object functions stay executable by PUBLIC: migrate as a superuser (tenancy audit reports TA033)';
    RETURN;
  END IF;
  FOR f IN
    SELECT p.oid::pg_catalog.regprocedure FROM pg_catalog.pg_proc AS p
    WHERE p.pronamespace = 'pg_catalog'::pg_catalog.regnamespace
      AND (p.proname LIKE 'lo\_%' OR p.proname IN ('loread', 'lowrite'))
      -- server-side file access stays with superusers (never granted by default)
      AND p.proname NOT IN ('lo_import', 'lo_export')
    ORDER BY 1
  LOOP
    EXECUTE pg_catalog.format('REVOKE EXECUTE ON FUNCTION %s FROM PUBLIC', f);
    EXECUTE pg_catalog.format('GRANT EXECUTE ON FUNCTION %s TO tenancy_owner', f);
  END LOOP;
END
$$;
