-- Core upgrade: project membership as an index condition in the policies (core revision 6).
--
-- GENERATED from policies/*.tenancy by `tenancy generate`. DO NOT EDIT:
-- change the policies and generate again.
-- Target: PostgreSQL 15+ (policies call the context helpers as `(SELECT tenancy.fn(...))`,
-- so each is an InitPlan evaluated once per statement).
--
-- Written by `tenancy generate` because the committed snapshot records an older core.
-- The permissive policies tested membership as `COALESCE(project_id = ANY (..), false)`,
-- which PostgreSQL evaluates on every row the scan returns; now as `project_id = ANY (..)`,
-- which it uses as an index condition. NULL and false refuse a row alike, so every
-- policy admits exactly the rows it admitted before. Each policy is dropped and
-- created again in this migration's transaction; no table or row is touched.

-- projects: policy projects_select.
DROP POLICY projects_select ON projects;
CREATE POLICY projects_select ON projects
  AS PERMISSIVE
  FOR SELECT
  TO tenancy_app
  USING (id = ANY ((SELECT tenancy.project_ids('viewer'))::uuid[]));

-- projects: policy projects_update.
DROP POLICY projects_update ON projects;
CREATE POLICY projects_update ON projects
  AS PERMISSIVE
  FOR UPDATE
  TO tenancy_app
  USING (id = ANY ((SELECT tenancy.project_ids('admin'))::uuid[]))
  WITH CHECK (id = ANY ((SELECT tenancy.project_ids('admin'))::uuid[]));

-- user_project_roles: policy user_project_roles_select.
DROP POLICY user_project_roles_select ON user_project_roles;
CREATE POLICY user_project_roles_select ON user_project_roles
  AS PERMISSIVE
  FOR SELECT
  TO tenancy_app
  USING (project_id = ANY ((SELECT tenancy.project_ids('viewer'))::uuid[]) OR user_id = (SELECT tenancy.current_user_id()));

-- user_project_roles: policy user_project_roles_insert.
DROP POLICY user_project_roles_insert ON user_project_roles;
CREATE POLICY user_project_roles_insert ON user_project_roles
  AS PERMISSIVE
  FOR INSERT
  TO tenancy_app
  WITH CHECK (project_id = ANY ((SELECT tenancy.project_ids('admin'))::uuid[]));

-- user_project_roles: policy user_project_roles_update.
DROP POLICY user_project_roles_update ON user_project_roles;
CREATE POLICY user_project_roles_update ON user_project_roles
  AS PERMISSIVE
  FOR UPDATE
  TO tenancy_app
  USING (project_id = ANY ((SELECT tenancy.project_ids('admin'))::uuid[]))
  WITH CHECK (project_id = ANY ((SELECT tenancy.project_ids('admin'))::uuid[]));

-- user_project_roles: policy user_project_roles_delete.
DROP POLICY user_project_roles_delete ON user_project_roles;
CREATE POLICY user_project_roles_delete ON user_project_roles
  AS PERMISSIVE
  FOR DELETE
  TO tenancy_app
  USING (project_id = ANY ((SELECT tenancy.project_ids('admin'))::uuid[]));

-- documents: policy documents_select.
DROP POLICY documents_select ON documents;
CREATE POLICY documents_select ON documents
  AS PERMISSIVE
  FOR SELECT
  TO tenancy_app, tenancy_app_reader
  USING (project_id = ANY ((SELECT tenancy.project_ids('viewer'))::uuid[]));

-- documents: policy documents_insert.
DROP POLICY documents_insert ON documents;
CREATE POLICY documents_insert ON documents
  AS PERMISSIVE
  FOR INSERT
  TO tenancy_app
  WITH CHECK (project_id = ANY ((SELECT tenancy.project_ids('editor'))::uuid[]));

-- documents: policy documents_update.
DROP POLICY documents_update ON documents;
CREATE POLICY documents_update ON documents
  AS PERMISSIVE
  FOR UPDATE
  TO tenancy_app
  USING ((project_id = ANY ((SELECT tenancy.project_ids('editor'))::uuid[]) AND created_by = (SELECT tenancy.current_user_id())) OR (project_id = ANY ((SELECT tenancy.project_ids('admin'))::uuid[])))
  WITH CHECK ((project_id = ANY ((SELECT tenancy.project_ids('editor'))::uuid[]) AND created_by = (SELECT tenancy.current_user_id())) OR (project_id = ANY ((SELECT tenancy.project_ids('admin'))::uuid[])));

-- documents: policy documents_delete.
DROP POLICY documents_delete ON documents;
CREATE POLICY documents_delete ON documents
  AS PERMISSIVE
  FOR DELETE
  TO tenancy_app
  USING (project_id = ANY ((SELECT tenancy.project_ids('admin'))::uuid[]));

-- chunks: policy chunks_select.
DROP POLICY chunks_select ON chunks;
CREATE POLICY chunks_select ON chunks
  AS PERMISSIVE
  FOR SELECT
  TO tenancy_app
  USING (project_id = ANY ((SELECT tenancy.project_ids('viewer'))::uuid[]));

-- chunks: policy chunks_insert.
DROP POLICY chunks_insert ON chunks;
CREATE POLICY chunks_insert ON chunks
  AS PERMISSIVE
  FOR INSERT
  TO tenancy_app
  WITH CHECK (project_id = ANY ((SELECT tenancy.project_ids('editor'))::uuid[]));

-- chunks: policy chunks_update.
DROP POLICY chunks_update ON chunks;
CREATE POLICY chunks_update ON chunks
  AS PERMISSIVE
  FOR UPDATE
  TO tenancy_app
  USING (project_id = ANY ((SELECT tenancy.project_ids('editor'))::uuid[]))
  WITH CHECK (project_id = ANY ((SELECT tenancy.project_ids('editor'))::uuid[]));

-- chunks: policy chunks_delete.
DROP POLICY chunks_delete ON chunks;
CREATE POLICY chunks_delete ON chunks
  AS PERMISSIVE
  FOR DELETE
  TO tenancy_app
  USING (project_id = ANY ((SELECT tenancy.project_ids('editor'))::uuid[]));

-- queries: policy queries_select.
DROP POLICY queries_select ON queries;
CREATE POLICY queries_select ON queries
  AS PERMISSIVE
  FOR SELECT
  TO tenancy_app
  USING (project_id = ANY ((SELECT tenancy.project_ids('viewer'))::uuid[]));

-- queries: policy queries_insert.
DROP POLICY queries_insert ON queries;
CREATE POLICY queries_insert ON queries
  AS PERMISSIVE
  FOR INSERT
  TO tenancy_app
  WITH CHECK (project_id = ANY ((SELECT tenancy.project_ids('viewer'))::uuid[]) AND asked_by = (SELECT tenancy.current_user_id()));

-- queries: policy queries_delete.
DROP POLICY queries_delete ON queries;
CREATE POLICY queries_delete ON queries
  AS PERMISSIVE
  FOR DELETE
  TO tenancy_app
  USING (project_id = ANY ((SELECT tenancy.project_ids('admin'))::uuid[]));

-- responses: policy responses_select.
DROP POLICY responses_select ON responses;
CREATE POLICY responses_select ON responses
  AS PERMISSIVE
  FOR SELECT
  TO tenancy_app
  USING (project_id = ANY ((SELECT tenancy.project_ids('viewer'))::uuid[]));

-- responses: policy responses_insert.
DROP POLICY responses_insert ON responses;
CREATE POLICY responses_insert ON responses
  AS PERMISSIVE
  FOR INSERT
  TO tenancy_app
  WITH CHECK (project_id = ANY ((SELECT tenancy.project_ids('editor'))::uuid[]));

-- responses: policy responses_delete.
DROP POLICY responses_delete ON responses;
CREATE POLICY responses_delete ON responses
  AS PERMISSIVE
  FOR DELETE
  TO tenancy_app
  USING (project_id = ANY ((SELECT tenancy.project_ids('admin'))::uuid[]));

-- assertions: policy assertions_select.
DROP POLICY assertions_select ON assertions;
CREATE POLICY assertions_select ON assertions
  AS PERMISSIVE
  FOR SELECT
  TO tenancy_app
  USING (project_id = ANY ((SELECT tenancy.project_ids('viewer'))::uuid[]));

-- assertions: policy assertions_insert.
DROP POLICY assertions_insert ON assertions;
CREATE POLICY assertions_insert ON assertions
  AS PERMISSIVE
  FOR INSERT
  TO tenancy_app
  WITH CHECK (project_id = ANY ((SELECT tenancy.project_ids('editor'))::uuid[]));

-- assertions: policy assertions_update.
DROP POLICY assertions_update ON assertions;
CREATE POLICY assertions_update ON assertions
  AS PERMISSIVE
  FOR UPDATE
  TO tenancy_app
  USING (project_id = ANY ((SELECT tenancy.project_ids('editor'))::uuid[]))
  WITH CHECK (project_id = ANY ((SELECT tenancy.project_ids('editor'))::uuid[]));

-- assertions: policy assertions_delete.
DROP POLICY assertions_delete ON assertions;
CREATE POLICY assertions_delete ON assertions
  AS PERMISSIVE
  FOR DELETE
  TO tenancy_app
  USING (project_id = ANY ((SELECT tenancy.project_ids('admin'))::uuid[]));
