-- Incremental migration: only what changed in the policies since the previous one.
--
-- GENERATED from policies/*.tenancy by `tenancy generate`. DO NOT EDIT:
-- change the policies and generate again.
-- Target: PostgreSQL 15+ (policies call the context helpers as `(SELECT tenancy.fn(...))`,
-- so each is an InitPlan evaluated once per statement).
--
-- Changes:
--   * documents: policy documents_tenant_boundary changed
--   * documents: policy documents_select changed
--   * documents: masked columns changed
--   * documents: grants to the app role updated
--
-- Access (what `tenancy diff` reports against the previous model):
--   narrows: viewer may no longer read `source_uri` of `documents`

-- ----------------------------------------------------------------------------
-- Reader role tenancy_app_reader (masked columns of documents)
--   Owns the masked view of documents; NOLOGIN and without members, so no session acts as it.
--   It reads the whole table, under the same boundary and select policies as the app
--   role (they name both).
-- ----------------------------------------------------------------------------
DO $$
BEGIN
  IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = 'tenancy_app_reader') THEN
    CREATE ROLE tenancy_app_reader NOLOGIN;
  END IF;
END
$$;
ALTER ROLE tenancy_app_reader NOLOGIN NOSUPERUSER NOBYPASSRLS NOINHERIT NOCREATEDB NOCREATEROLE NOREPLICATION;
GRANT USAGE ON SCHEMA tenancy TO tenancy_app_reader;
GRANT USAGE ON TYPE tenancy.project_role TO tenancy_app_reader;
GRANT EXECUTE ON FUNCTION tenancy.context_claims(), tenancy.current_tenant_id(),
  tenancy.current_user_id(), tenancy.project_ids(tenancy.project_role) TO tenancy_app_reader;
REVOKE ALL ON TABLE public.documents FROM tenancy_app_reader;
GRANT SELECT ON TABLE public.documents TO tenancy_app_reader;

-- documents: policy documents_tenant_boundary changed (created again below).
DROP POLICY documents_tenant_boundary ON documents;

-- documents: policy documents_select changed (created again below).
DROP POLICY documents_select ON documents;

-- documents: policy documents_tenant_boundary.
CREATE POLICY documents_tenant_boundary ON documents
  AS RESTRICTIVE
  FOR ALL
  TO tenancy_app, tenancy_app_reader
  USING (tenant_id = (SELECT tenancy.current_tenant_id()))
  WITH CHECK (tenant_id = (SELECT tenancy.current_tenant_id()));

-- documents: policy documents_select.
CREATE POLICY documents_select ON documents
  AS PERMISSIVE
  FOR SELECT
  TO tenancy_app, tenancy_app_reader
  USING (COALESCE(project_id = ANY ((SELECT tenancy.project_ids('viewer'))::uuid[]), false));

-- ----------------------------------------------------------------------------
-- Masked columns of documents: source_uri
--   The app role cannot select these columns on the table. The view tenancy.documents_masked shows
--   them where a select rule covering the column admits the caller for that row (role
--   in the row's project, and the rule's condition), NULL elsewhere. Owned by the
--   reader role, to which the boundary and select policies apply as to the app role:
--   the view returns the rows the app role may select, never more.
-- ----------------------------------------------------------------------------
DROP VIEW IF EXISTS tenancy.documents_masked;
CREATE VIEW tenancy.documents_masked
  WITH (security_barrier = true)
  AS SELECT tenant_id,
    project_id,
    id,
    title,
    CASE WHEN COALESCE(project_id = ANY ((SELECT tenancy.project_ids('editor'))::uuid[]), false)
         THEN source_uri END AS source_uri,
    mime_type,
    content_hash,
    metadata,
    created_by,
    created_at,
    updated_at
  FROM public.documents;
ALTER VIEW tenancy.documents_masked OWNER TO tenancy_app_reader;
REVOKE ALL ON TABLE tenancy.documents_masked FROM PUBLIC;
GRANT SELECT ON TABLE tenancy.documents_masked TO tenancy_app;

-- documents: grants refreshed.
-- Grants: only the commands with a rule; UPDATE only on columns that cannot move a row
-- to another tenant or project; never TRUNCATE, REFERENCES or TRIGGER.
REVOKE ALL ON TABLE documents FROM PUBLIC;
REVOKE ALL ON TABLE documents FROM tenancy_app;
GRANT INSERT, DELETE ON TABLE documents TO tenancy_app;
-- SELECT only on the columns every select rule reads (the others: documents_masked).
GRANT SELECT (tenant_id, project_id, id, title, mime_type, content_hash, metadata, created_by, created_at, updated_at) ON TABLE documents TO tenancy_app;
GRANT UPDATE (title, source_uri, mime_type, content_hash, metadata) ON TABLE documents TO tenancy_app;
