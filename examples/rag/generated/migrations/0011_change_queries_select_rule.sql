-- Incremental migration: only what changed in the policies since the previous one.
--
-- GENERATED from policies/*.tenancy by `tenancy generate`. DO NOT EDIT:
-- change the policies and generate again.
-- Target: PostgreSQL 15+ (policies call the context helpers as `(SELECT tenancy.fn(...))`,
-- so each is an InitPlan evaluated once per statement).
--
-- Changes:
--   * queries: policy queries_select changed
--
-- Access (what `tenancy diff` reports against the previous model):
--   narrows: viewer may select fewer rows of `queries`: was every row of the caller's projects, now rows where its `asked_by` is the caller's user id

-- queries: policy queries_select changed (created again below).
DROP POLICY queries_select ON queries;

-- queries: policy queries_select.
CREATE POLICY queries_select ON queries
  AS PERMISSIVE
  FOR SELECT
  TO tenancy_app
  USING ((project_id = ANY ((SELECT tenancy.project_ids('viewer'))::uuid[]) AND asked_by = (SELECT tenancy.current_user_id())) OR (project_id = ANY ((SELECT tenancy.project_ids('editor'))::uuid[])));
