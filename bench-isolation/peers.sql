-- The peer designs of issue 22 (BENCHMARKS.md, "Against the peers"), added next to the
-- generated policies of the bench database (which apply TO tenancy_app only), on the same
-- tables and the same data. Used by bench-isolation (`--peers-only` and the full run) and by
-- bench-isolation/server-instructions.sh (`TENANCY_VARIANT`).
--
-- Supabase style: the request's JWT claims as a JSON setting (`request.jwt.claims`, what
-- PostgREST installs), read by `auth.uid()`-like helpers written as Supabase ships them
-- (STABLE SQL functions over current_setting); the tenant from the claims' app_metadata; the
-- project membership as `project_id IN (SELECT project_id FROM memberships WHERE user_id =
-- auth.uid() ...)`, one permissive policy per command. Two forms:
--   peer_naive    the helpers called directly (what most policies in the wild look like);
--   peer_wrapped  every helper call wrapped as `(SELECT helper())`, the guide's advice, so
--                 PostgreSQL evaluates it once per statement (an InitPlan).
-- The guide's index advice: every column a policy compares is indexed (tenant_id and
-- project_id lead the primary keys already; memberships get an index on user_id below).
-- PostgREST style uses the peer_wrapped policies; it differs in how the claims arrive (a
-- separate `SELECT set_config('request.jwt.claims', $1, true)` per transaction, see
-- bench-isolation/src/peers.rs).

DO $roles$
BEGIN
  IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = 'peer_naive') THEN
    CREATE ROLE peer_naive LOGIN NOSUPERUSER NOBYPASSRLS;
  END IF;
  IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = 'peer_wrapped') THEN
    CREATE ROLE peer_wrapped LOGIN NOSUPERUSER NOBYPASSRLS;
  END IF;
END
$roles$;

CREATE SCHEMA IF NOT EXISTS peer_auth;

-- Supabase's auth.jwt() and auth.uid(), as shipped.
CREATE OR REPLACE FUNCTION peer_auth.jwt() RETURNS jsonb LANGUAGE sql STABLE AS $$
  SELECT coalesce(nullif(current_setting('request.jwt.claim', true), ''),
                  nullif(current_setting('request.jwt.claims', true), ''))::jsonb
$$;
CREATE OR REPLACE FUNCTION peer_auth.uid() RETURNS uuid LANGUAGE sql STABLE AS $$
  SELECT coalesce(nullif(current_setting('request.jwt.claim.sub', true), ''),
                  (nullif(current_setting('request.jwt.claims', true), '')::jsonb ->> 'sub'))::uuid
$$;
-- The tenant, from the claims' app_metadata (Supabase's documented place for it).
CREATE OR REPLACE FUNCTION peer_auth.tenant_id() RETURNS uuid LANGUAGE sql STABLE AS $$
  SELECT (peer_auth.jwt() -> 'app_metadata' ->> 'tenant_id')::uuid
$$;

GRANT USAGE ON SCHEMA peer_auth TO peer_naive, peer_wrapped;
GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA peer_auth TO peer_naive, peer_wrapped;
GRANT SELECT, INSERT, UPDATE, DELETE ON chunks, documents TO peer_naive, peer_wrapped;
GRANT SELECT ON user_project_roles TO peer_naive, peer_wrapped;

CREATE INDEX IF NOT EXISTS user_project_roles_peer_user_id_idx ON user_project_roles (user_id);

DO $policies$
DECLARE
  v record;
  t text;
  member text;
  editor text;
BEGIN
  FOR v IN
    SELECT * FROM (VALUES
      ('peer_naive', 'peer_auth.tenant_id()', 'peer_auth.uid()'),
      ('peer_wrapped', '(SELECT peer_auth.tenant_id())', '(SELECT peer_auth.uid())')
    ) AS v(role, tenant, uid)
  LOOP
    -- A member sees its own memberships (the sub-select below reads them under RLS).
    EXECUTE format(
      'CREATE POLICY %I ON user_project_roles FOR SELECT TO %I USING (user_id = %s)',
      v.role || '_own', v.role, v.uid);
    member := format(
      'tenant_id = %s AND project_id IN (SELECT m.project_id FROM user_project_roles AS m '
      'WHERE m.user_id = %s)', v.tenant, v.uid);
    editor := format(
      'tenant_id = %s AND project_id IN (SELECT m.project_id FROM user_project_roles AS m '
      'WHERE m.user_id = %s AND m.role >= ''editor'')', v.tenant, v.uid);
    FOREACH t IN ARRAY ARRAY['chunks', 'documents'] LOOP
      EXECUTE format('CREATE POLICY %I ON %I FOR SELECT TO %I USING (%s)',
        v.role || '_select', t, v.role, member);
      EXECUTE format('CREATE POLICY %I ON %I FOR INSERT TO %I WITH CHECK (%s)',
        v.role || '_insert', t, v.role, editor);
      EXECUTE format('CREATE POLICY %I ON %I FOR UPDATE TO %I USING (%s) WITH CHECK (%s)',
        v.role || '_update', t, v.role, editor, editor);
      EXECUTE format('CREATE POLICY %I ON %I FOR DELETE TO %I USING (%s)',
        v.role || '_delete', t, v.role, editor);
    END LOOP;
  END LOOP;
END
$policies$;

ANALYZE user_project_roles;
