-- Incremental migration: only what changed in the policies since the previous one.
--
-- GENERATED from policies/*.tenancy by `tenancy generate`. DO NOT EDIT:
-- change the policies and generate again.
-- Target: PostgreSQL 15+ (policies call the context helpers as `(SELECT tenancy.fn(...))`,
-- so each is an InitPlan evaluated once per statement).
--
-- Changes:
--   * user_project_roles.granted_by: default changed
--   * user_project_roles: stamped columns changed
--   * user_project_roles: grants to the app role updated
--   * documents.created_by: default changed
--   * documents: policy documents_update changed
--   * documents: stamped columns changed
--   * documents: grants to the app role updated
--   * queries.asked_by: default changed
--   * queries: policy queries_insert changed
--   * queries: stamped columns changed

-- documents: policy documents_update changed (created again below).
DROP POLICY documents_update ON documents;

-- queries: policy queries_insert changed (created again below).
DROP POLICY queries_insert ON queries;

-- user_project_roles.granted_by: default changed (existing rows keep their value).
ALTER TABLE user_project_roles ALTER COLUMN granted_by SET DEFAULT tenancy.current_user_id();

-- documents.created_by: default changed (existing rows keep their value).
ALTER TABLE documents ALTER COLUMN created_by SET DEFAULT tenancy.current_user_id();

-- queries.asked_by: default changed (existing rows keep their value).
ALTER TABLE queries ALTER COLUMN asked_by SET DEFAULT tenancy.current_user_id();

-- Stamped columns: granted_by, granted_at.
-- Inside a request context the database writes them, whatever the statement says
-- (`on insert`: once; `on update`: on every write). Maintenance work without a
-- context (the owner role) writes what it gives; their defaults fill what it omits.
-- No SET clause: every name is schema-qualified, operators included. (A SET
-- search_path here would make the context helper it calls plan again on every call,
-- as its cached plans depend on the search_path.)
CREATE OR REPLACE FUNCTION tenancy.user_project_roles_stamp()
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
ALTER FUNCTION tenancy.user_project_roles_stamp() OWNER TO tenancy_owner;
REVOKE ALL ON FUNCTION tenancy.user_project_roles_stamp() FROM PUBLIC;
DROP TRIGGER IF EXISTS user_project_roles_stamp ON user_project_roles;
CREATE TRIGGER user_project_roles_stamp
  BEFORE INSERT OR UPDATE ON user_project_roles
  FOR EACH ROW
  EXECUTE FUNCTION tenancy.user_project_roles_stamp();

-- documents: policy documents_update.
CREATE POLICY documents_update ON documents
  AS PERMISSIVE
  FOR UPDATE
  TO tenancy_app
  USING ((COALESCE(project_id = ANY ((SELECT tenancy.project_ids('editor'))::uuid[]), false) AND created_by = (SELECT tenancy.current_user_id())) OR (COALESCE(project_id = ANY ((SELECT tenancy.project_ids('admin'))::uuid[]), false)))
  WITH CHECK ((COALESCE(project_id = ANY ((SELECT tenancy.project_ids('editor'))::uuid[]), false) AND created_by = (SELECT tenancy.current_user_id())) OR (COALESCE(project_id = ANY ((SELECT tenancy.project_ids('admin'))::uuid[]), false)));

-- Stamped columns: created_by, created_at, updated_at.
-- Inside a request context the database writes them, whatever the statement says
-- (`on insert`: once; `on update`: on every write). Maintenance work without a
-- context (the owner role) writes what it gives; their defaults fill what it omits.
-- No SET clause: every name is schema-qualified, operators included. (A SET
-- search_path here would make the context helper it calls plan again on every call,
-- as its cached plans depend on the search_path.)
CREATE OR REPLACE FUNCTION tenancy.documents_stamp()
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
    NEW.created_by := caller;
    NEW.created_at := pg_catalog.now();
    NEW.updated_at := pg_catalog.now();
  ELSE
    NEW.created_by := OLD.created_by;
    NEW.created_at := OLD.created_at;
    NEW.updated_at := pg_catalog.now();
  END IF;
  RETURN NEW;
END
$$;
ALTER FUNCTION tenancy.documents_stamp() OWNER TO tenancy_owner;
REVOKE ALL ON FUNCTION tenancy.documents_stamp() FROM PUBLIC;
DROP TRIGGER IF EXISTS documents_stamp ON documents;
CREATE TRIGGER documents_stamp
  BEFORE INSERT OR UPDATE ON documents
  FOR EACH ROW
  EXECUTE FUNCTION tenancy.documents_stamp();

-- queries: policy queries_insert.
CREATE POLICY queries_insert ON queries
  AS PERMISSIVE
  FOR INSERT
  TO tenancy_app
  WITH CHECK (COALESCE(project_id = ANY ((SELECT tenancy.project_ids('viewer'))::uuid[]), false) AND asked_by = (SELECT tenancy.current_user_id()));

-- Stamped columns: asked_by.
-- Inside a request context the database writes them, whatever the statement says
-- (`on insert`: once; `on update`: on every write). Maintenance work without a
-- context (the owner role) writes what it gives; their defaults fill what it omits.
-- No SET clause: every name is schema-qualified, operators included. (A SET
-- search_path here would make the context helper it calls plan again on every call,
-- as its cached plans depend on the search_path.)
CREATE OR REPLACE FUNCTION tenancy.queries_stamp()
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
    NEW.asked_by := caller;
  ELSE
    NEW.asked_by := OLD.asked_by;
  END IF;
  RETURN NEW;
END
$$;
ALTER FUNCTION tenancy.queries_stamp() OWNER TO tenancy_owner;
REVOKE ALL ON FUNCTION tenancy.queries_stamp() FROM PUBLIC;
DROP TRIGGER IF EXISTS queries_stamp ON queries;
CREATE TRIGGER queries_stamp
  BEFORE INSERT OR UPDATE ON queries
  FOR EACH ROW
  EXECUTE FUNCTION tenancy.queries_stamp();

-- user_project_roles: grants refreshed.
-- Grants: only the commands with a rule; UPDATE only on columns that cannot move a row
-- to another tenant or project; never TRUNCATE, REFERENCES or TRIGGER.
REVOKE ALL ON TABLE user_project_roles FROM PUBLIC;
REVOKE ALL ON TABLE user_project_roles FROM tenancy_app;
GRANT SELECT, INSERT, DELETE ON TABLE user_project_roles TO tenancy_app;
GRANT UPDATE (role) ON TABLE user_project_roles TO tenancy_app;

-- documents: grants refreshed.
-- Grants: only the commands with a rule; UPDATE only on columns that cannot move a row
-- to another tenant or project; never TRUNCATE, REFERENCES or TRIGGER.
REVOKE ALL ON TABLE documents FROM PUBLIC;
REVOKE ALL ON TABLE documents FROM tenancy_app;
GRANT SELECT, INSERT, DELETE ON TABLE documents TO tenancy_app;
GRANT UPDATE (title, source_uri, mime_type, content_hash, metadata) ON TABLE documents TO tenancy_app;
