-- Core upgrade: no planner statistics on tenant-owned tables (core revision 5).
--
-- GENERATED from policies/*.tenancy by `tenancy generate`. DO NOT EDIT:
-- change the policies and generate again.
-- Target: PostgreSQL 15+ (policies call the context helpers as `(SELECT tenancy.fn(...))`,
-- so each is an InitPlan evaluated once per statement).
--
-- Written by `tenancy generate` because the committed snapshot records an older core.
-- Sets statistics target 0 on every column of every table whose rows belong to a tenant
-- and removes the statistics ANALYZE stored for them: the planner estimates from every
-- tenant's values and EXPLAIN prints the estimates (docs/security.md, "Planner
-- statistics"). Run it as the tables' owner or a superuser; before PostgreSQL 18 only a
-- superuser can remove the stored statistics (anyone else gets a WARNING, and
-- `tenancy audit` reports them, TA034).

-- tenants
ALTER TABLE tenants
  ALTER COLUMN id SET STATISTICS 0,
  ALTER COLUMN name SET STATISTICS 0,
  ALTER COLUMN slug SET STATISTICS 0,
  ALTER COLUMN created_at SET STATISTICS 0;

-- projects
ALTER TABLE projects
  ALTER COLUMN tenant_id SET STATISTICS 0,
  ALTER COLUMN id SET STATISTICS 0,
  ALTER COLUMN name SET STATISTICS 0,
  ALTER COLUMN slug SET STATISTICS 0,
  ALTER COLUMN description SET STATISTICS 0,
  ALTER COLUMN created_at SET STATISTICS 0;

-- user_project_roles
ALTER TABLE user_project_roles
  ALTER COLUMN tenant_id SET STATISTICS 0,
  ALTER COLUMN project_id SET STATISTICS 0,
  ALTER COLUMN user_id SET STATISTICS 0,
  ALTER COLUMN role SET STATISTICS 0,
  ALTER COLUMN granted_by SET STATISTICS 0,
  ALTER COLUMN granted_at SET STATISTICS 0;

-- documents
ALTER TABLE documents
  ALTER COLUMN tenant_id SET STATISTICS 0,
  ALTER COLUMN project_id SET STATISTICS 0,
  ALTER COLUMN id SET STATISTICS 0,
  ALTER COLUMN title SET STATISTICS 0,
  ALTER COLUMN source_uri SET STATISTICS 0,
  ALTER COLUMN mime_type SET STATISTICS 0,
  ALTER COLUMN content_hash SET STATISTICS 0,
  ALTER COLUMN metadata SET STATISTICS 0,
  ALTER COLUMN created_by SET STATISTICS 0,
  ALTER COLUMN created_at SET STATISTICS 0,
  ALTER COLUMN updated_at SET STATISTICS 0;

-- chunks
ALTER TABLE chunks
  ALTER COLUMN tenant_id SET STATISTICS 0,
  ALTER COLUMN project_id SET STATISTICS 0,
  ALTER COLUMN id SET STATISTICS 0,
  ALTER COLUMN document_id SET STATISTICS 0,
  ALTER COLUMN ordinal SET STATISTICS 0,
  ALTER COLUMN content SET STATISTICS 0,
  ALTER COLUMN token_count SET STATISTICS 0,
  ALTER COLUMN embedding SET STATISTICS 0,
  ALTER COLUMN created_at SET STATISTICS 0;

-- queries
ALTER TABLE queries
  ALTER COLUMN tenant_id SET STATISTICS 0,
  ALTER COLUMN project_id SET STATISTICS 0,
  ALTER COLUMN id SET STATISTICS 0,
  ALTER COLUMN asked_by SET STATISTICS 0,
  ALTER COLUMN query_text SET STATISTICS 0,
  ALTER COLUMN top_k SET STATISTICS 0,
  ALTER COLUMN created_at SET STATISTICS 0;

-- responses
ALTER TABLE responses
  ALTER COLUMN tenant_id SET STATISTICS 0,
  ALTER COLUMN project_id SET STATISTICS 0,
  ALTER COLUMN id SET STATISTICS 0,
  ALTER COLUMN query_id SET STATISTICS 0,
  ALTER COLUMN answer_text SET STATISTICS 0,
  ALTER COLUMN model SET STATISTICS 0,
  ALTER COLUMN prompt_tokens SET STATISTICS 0,
  ALTER COLUMN completion_tokens SET STATISTICS 0,
  ALTER COLUMN latency_ms SET STATISTICS 0,
  ALTER COLUMN created_at SET STATISTICS 0;

-- assertions
ALTER TABLE assertions
  ALTER COLUMN tenant_id SET STATISTICS 0,
  ALTER COLUMN project_id SET STATISTICS 0,
  ALTER COLUMN id SET STATISTICS 0,
  ALTER COLUMN response_id SET STATISTICS 0,
  ALTER COLUMN chunk_id SET STATISTICS 0,
  ALTER COLUMN claim SET STATISTICS 0,
  ALTER COLUMN verdict SET STATISTICS 0,
  ALTER COLUMN score SET STATISTICS 0,
  ALTER COLUMN created_at SET STATISTICS 0;

-- tenancy.audit_log
ALTER TABLE tenancy.audit_log
  ALTER COLUMN tenant_id SET STATISTICS 0,
  ALTER COLUMN id SET STATISTICS 0,
  ALTER COLUMN project_id SET STATISTICS 0,
  ALTER COLUMN actor SET STATISTICS 0,
  ALTER COLUMN action SET STATISTICS 0,
  ALTER COLUMN subject SET STATISTICS 0,
  ALTER COLUMN at SET STATISTICS 0;

-- Remove the statistics ANALYZE stored before (SET STATISTICS 0 keeps them).
DO $clear_statistics$
DECLARE
  col record;
  can_clear boolean := pg_catalog.to_regprocedure(
    'pg_catalog.pg_clear_attribute_stats(text,text,text,boolean)') IS NOT NULL;
  is_super boolean := (SELECT rolsuper FROM pg_catalog.pg_roles WHERE rolname = current_user);
BEGIN
  FOR col IN
    SELECT c.oid AS rel, n.nspname::text AS nsp, c.relname::text AS rel_name,
           a.attnum, a.attname::text AS att, a.attstattarget IS DISTINCT FROM 0 AS collects
    FROM pg_catalog.pg_class AS c
    JOIN pg_catalog.pg_namespace AS n ON n.oid = c.relnamespace
    JOIN pg_catalog.pg_attribute AS a ON a.attrelid = c.oid
    WHERE c.oid = ANY (ARRAY['tenants'::regclass, 'projects'::regclass, 'user_project_roles'::regclass, 'documents'::regclass, 'chunks'::regclass, 'queries'::regclass, 'responses'::regclass, 'assertions'::regclass, 'tenancy.audit_log'::regclass])
      AND a.attnum > 0 AND NOT a.attisdropped
    ORDER BY c.oid, a.attnum
  LOOP
    IF col.collects THEN
      EXECUTE pg_catalog.format('ALTER TABLE %I.%I ALTER COLUMN %I SET STATISTICS 0',
        col.nsp, col.rel_name, col.att);
    END IF;
    IF can_clear THEN
      PERFORM pg_catalog.pg_clear_attribute_stats(col.nsp, col.rel_name, col.att, false);
      PERFORM pg_catalog.pg_clear_attribute_stats(col.nsp, col.rel_name, col.att, true);
    ELSIF is_super THEN
      DELETE FROM pg_catalog.pg_statistic
      WHERE starelid = col.rel AND staattnum = col.attnum;
    ELSE
      RAISE WARNING 'tenancy: planner statistics of %.%.% may remain: before PostgreSQL 18 only a superuser can remove them (DELETE FROM pg_catalog.pg_statistic WHERE starelid = %)',
        col.nsp, col.rel_name, col.att, col.rel;
    END IF;
  END LOOP;
END
$clear_statistics$;

-- Fixed estimates, no value: a tenant is a tenth of the table, a project all of its
-- tenant (PostgreSQL 18+; see sql/statistics.rs).
DO $project_estimates$
BEGIN
  IF EXISTS (SELECT 1 FROM pg_catalog.pg_proc WHERE proname = 'pg_restore_attribute_stats'
      AND pronamespace = 'pg_catalog'::regnamespace) THEN
    PERFORM pg_catalog.pg_restore_attribute_stats('schemaname', n.nspname::text,
      'relname', c.relname::text, 'attname', e.att, 'inherited', false,
      'n_distinct', e.n_distinct)
    FROM pg_catalog.pg_class AS c
    JOIN pg_catalog.pg_namespace AS n ON n.oid = c.relnamespace
    CROSS JOIN (VALUES ('tenant_id'::text, 10::real), ('project_id'::text, 1::real))
      AS e(att, n_distinct)
    WHERE c.oid = ANY (ARRAY['user_project_roles'::regclass, 'documents'::regclass, 'chunks'::regclass, 'queries'::regclass, 'responses'::regclass, 'assertions'::regclass]);
  END IF;
END
$project_estimates$;
