-- Core upgrade: context contract v2 -> v3 (the signed context).
--
-- GENERATED from policies/*.tenancy by `tenancy generate`. DO NOT EDIT:
-- change the policies and generate again.
-- Target: PostgreSQL 15+ (policies call the context helpers as `(SELECT tenancy.fn(...))`,
-- so each is an InitPlan evaluated once per statement).
--
-- Written by `tenancy generate` because the committed snapshot records an older core.
-- Replaces the context helpers in place (the policies that call them are unchanged),
-- adds the key table, the verifier and the installer, and revokes TEMP. No table or
-- row is touched. After it, install a key (`tenancy key install`) before the runtime
-- starts: a runtime of the older contract stops with a clear error, as does one
-- without a key.

-- ----------------------------------------------------------------------------
-- Signed context, contract v3 (see docs/context.md)
--   The runtime opens a transaction with `BEGIN; SELECT tenancy.install_context('<token>')`:
--   a token signed with HMAC-SHA256 under a key only the owner role can read. The installer
--   verifies it and stores a seal bound to this transaction and this connection in the
--   setting tenancy.context; context_claims() verifies the seal on every use, so a value the
--   app role sets or copies itself raises 42501 instead of being trusted.
-- ----------------------------------------------------------------------------

-- The signing keys. Only the owner role reads this table; the app role has no grant on it.
-- A key is stored as its two HMAC pads (the key XOR 0x36 and XOR 0x5c, 64 bytes each),
-- which are as secret as the key. Install keys with `tenancy key install`.
CREATE TABLE IF NOT EXISTS tenancy.context_keys (
  kid        text NOT NULL,
  inner_pad  bytea NOT NULL,
  outer_pad  bytea NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now(),
  retired_at timestamptz,
  CONSTRAINT context_keys_pkey PRIMARY KEY (kid),
  CONSTRAINT context_keys_kid_check CHECK (kid ~ '^[A-Za-z0-9_-]{1,64}$'),
  CONSTRAINT context_keys_pads_check CHECK (octet_length(inner_pad) = 64 AND octet_length(outer_pad) = 64)
);
ALTER TABLE tenancy.context_keys OWNER TO tenancy_owner;
REVOKE ALL ON TABLE tenancy.context_keys FROM PUBLIC;

-- Adds a key (operator connection: the owner role or a superuser). At least 32 bytes;
-- longer than 64 bytes is hashed first, as HMAC does.
CREATE OR REPLACE FUNCTION tenancy.install_context_key(key_id text, secret bytea)
  RETURNS void
  LANGUAGE plpgsql
  SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  key bytea := secret;
  inner_pad bytea;
  outer_pad bytea;
BEGIN
  IF key IS NULL OR octet_length(key) < 32 THEN
    RAISE EXCEPTION 'tenancy: a context key needs at least 32 bytes' USING ERRCODE = '22023';
  END IF;
  IF octet_length(key) > 64 THEN
    key := sha256(key);
  END IF;
  key := key || decode(repeat('00', 64 - octet_length(key)), 'hex');
  inner_pad := key;
  outer_pad := key;
  FOR i IN 0..63 LOOP
    inner_pad := set_byte(inner_pad, i, get_byte(key, i) # 54);
    outer_pad := set_byte(outer_pad, i, get_byte(key, i) # 92);
  END LOOP;
  INSERT INTO tenancy.context_keys (kid, inner_pad, outer_pad) VALUES (key_id, inner_pad, outer_pad);
END
$$;

-- The verified claims of this transaction's context: 'tenant;user;{..};{..}...' (the
-- fields of docs/context.md), or NULL when no context is set ('' or unset). Anything else
-- in the setting must be the seal install_context wrote in this very transaction on this
-- very connection, under a key of the key table: '<hmac>.<kid>;<transaction start in
-- microseconds>;<backend pid>;<claims>'. Otherwise it raises 42501 (no rows, no write).
-- SECURITY DEFINER (it reads the key table) without a SET clause, which would cost a
-- configuration save and restore per call: every name in it is schema-qualified,
-- operators included, and the app role can create objects nowhere.
CREATE OR REPLACE FUNCTION tenancy.context_claims()
  RETURNS pg_catalog.text
  LANGUAGE plpgsql
  STABLE
  SECURITY DEFINER
AS $$
DECLARE
  seal pg_catalog.text := pg_catalog.current_setting('tenancy.context', true);
  body pg_catalog.text;
  inner_pad pg_catalog.bytea;
  outer_pad pg_catalog.bytea;
BEGIN
  IF seal IS NULL OR seal OPERATOR(pg_catalog.=) '' THEN
    RETURN NULL;
  END IF;
  body := pg_catalog.substr(seal, 66);
  SELECT k.inner_pad, k.outer_pad INTO inner_pad, outer_pad
    FROM tenancy.context_keys AS k
    WHERE k.kid OPERATOR(pg_catalog.=) pg_catalog.split_part(body, ';', 1);
  IF inner_pad IS NULL
     OR pg_catalog.substr(seal, 65, 1) OPERATOR(pg_catalog.<>) '.'
     OR pg_catalog.split_part(body, ';', 2) OPERATOR(pg_catalog.<>) (pg_catalog.date_part('epoch', pg_catalog.now()) OPERATOR(pg_catalog.*) 1000000)::pg_catalog.int8::pg_catalog.text
     OR pg_catalog.split_part(body, ';', 3) OPERATOR(pg_catalog.<>) pg_catalog.pg_backend_pid()::pg_catalog.text
     OR pg_catalog.substr(seal, 1, 64) OPERATOR(pg_catalog.<>) pg_catalog.encode(pg_catalog.sha256(outer_pad OPERATOR(pg_catalog.||) pg_catalog.sha256(inner_pad OPERATOR(pg_catalog.||) pg_catalog.convert_to('seal;' OPERATOR(pg_catalog.||) body, 'UTF8'))), 'hex')
  THEN
    IF pg_catalog.substr(seal, 1, 8) OPERATOR(pg_catalog.=) 'refused;' THEN
      RAISE EXCEPTION 'tenancy: %', pg_catalog.substr(seal, 9) USING ERRCODE = '42501';
    END IF;
    RAISE EXCEPTION 'tenancy: the context was not installed by this transaction'
      USING ERRCODE = '42501',
            DETAIL = 'The setting tenancy.context holds a value that install_context did not write in this transaction on this connection (forged, edited, or copied from another transaction).',
            HINT = 'Open transactions with the tenancy runtime; never set tenancy.context by hand.';
  END IF;
  RETURN pg_catalog.substr(body, pg_catalog.length(pg_catalog.split_part(body, ';', 1))
    OPERATOR(pg_catalog.+) pg_catalog.length(pg_catalog.split_part(body, ';', 2))
    OPERATOR(pg_catalog.+) pg_catalog.length(pg_catalog.split_part(body, ';', 3)) OPERATOR(pg_catalog.+) 4);
END
$$;

-- Verifies a token minted by the runtime and installs its claims for the rest of the
-- transaction. Token: '<hmac>.<kid>;<expires, unix seconds>;<binding>;<claims>', the
-- HMAC-SHA256 over 'token;' and everything after the dot, under an active key; binding
-- '*' or this backend's pid. An unknown or retired key, a signature that does not
-- verify, an expired token or another connection's token install a refusal instead
-- ('refused;<reason>'), which context_claims raises (42501) on the first policy that
-- reads the context: the BEGIN round trip itself never fails, so a refused transaction
-- is rolled back like any other. A second context in a transaction that already carries
-- one raises at once. The runtime calls it in the same simple query as BEGIN.
CREATE OR REPLACE FUNCTION tenancy.install_context(token pg_catalog.text)
  RETURNS void
  LANGUAGE plpgsql
  VOLATILE
  SECURITY DEFINER
AS $$
DECLARE
  body pg_catalog.text := pg_catalog.substr(token, 66);
  key_id pg_catalog.text := pg_catalog.split_part(body, ';', 1);
  expires pg_catalog.text := pg_catalog.split_part(body, ';', 2);
  binding pg_catalog.text := pg_catalog.split_part(body, ';', 3);
  current_seal pg_catalog.text := pg_catalog.current_setting('tenancy.context', true);
  inner_pad pg_catalog.bytea;
  outer_pad pg_catalog.bytea;
BEGIN
  SELECT k.inner_pad, k.outer_pad INTO inner_pad, outer_pad
    FROM tenancy.context_keys AS k
    WHERE k.kid OPERATOR(pg_catalog.=) key_id AND k.retired_at IS NULL;
  IF inner_pad IS NULL THEN
    PERFORM pg_catalog.set_config('tenancy.context', 'refused;' OPERATOR(pg_catalog.||) pg_catalog.format('the context token names key "%s", which is not an active key of this database', key_id), true);
    RETURN;
  END IF;
  IF pg_catalog.substr(token, 65, 1) OPERATOR(pg_catalog.<>) '.'
     OR pg_catalog.substr(token, 1, 64) OPERATOR(pg_catalog.<>) pg_catalog.encode(pg_catalog.sha256(outer_pad OPERATOR(pg_catalog.||) pg_catalog.sha256(inner_pad OPERATOR(pg_catalog.||) pg_catalog.convert_to('token;' OPERATOR(pg_catalog.||) body, 'UTF8'))), 'hex') THEN
    PERFORM pg_catalog.set_config('tenancy.context', 'refused;' OPERATOR(pg_catalog.||) 'the context token''s signature does not verify (forged, edited, or signed with another key)', true);
    RETURN;
  END IF;
  IF expires OPERATOR(pg_catalog.!~) '^[0-9]{1,15}$'
     OR expires::pg_catalog.int8 OPERATOR(pg_catalog.<) pg_catalog.date_part('epoch', pg_catalog.now()) THEN
    PERFORM pg_catalog.set_config('tenancy.context', 'refused;' OPERATOR(pg_catalog.||) 'the context token expired', true);
    RETURN;
  END IF;
  IF binding OPERATOR(pg_catalog.<>) '*' AND binding OPERATOR(pg_catalog.<>) pg_catalog.pg_backend_pid()::pg_catalog.text THEN
    PERFORM pg_catalog.set_config('tenancy.context', 'refused;' OPERATOR(pg_catalog.||) 'the context token was minted for another connection', true);
    RETURN;
  END IF;
  IF current_seal IS NOT NULL AND current_seal OPERATOR(pg_catalog.<>) ''
     AND pg_catalog.split_part(pg_catalog.substr(current_seal, 66), ';', 2) OPERATOR(pg_catalog.=) (pg_catalog.date_part('epoch', pg_catalog.now()) OPERATOR(pg_catalog.*) 1000000)::pg_catalog.int8::pg_catalog.text
     AND pg_catalog.split_part(pg_catalog.substr(current_seal, 66), ';', 3) OPERATOR(pg_catalog.=) pg_catalog.pg_backend_pid()::pg_catalog.text THEN
    RAISE EXCEPTION 'tenancy: this transaction already carries a context; open a new transaction for another one'
      USING ERRCODE = '42501';
  END IF;
  body := key_id OPERATOR(pg_catalog.||) ';' OPERATOR(pg_catalog.||) (pg_catalog.date_part('epoch', pg_catalog.now()) OPERATOR(pg_catalog.*) 1000000)::pg_catalog.int8::pg_catalog.text
    OPERATOR(pg_catalog.||) ';' OPERATOR(pg_catalog.||) pg_catalog.pg_backend_pid()::pg_catalog.text OPERATOR(pg_catalog.||) ';'
    OPERATOR(pg_catalog.||) pg_catalog.substr(body, pg_catalog.length(key_id) OPERATOR(pg_catalog.+)
      pg_catalog.length(expires) OPERATOR(pg_catalog.+) pg_catalog.length(binding) OPERATOR(pg_catalog.+) 4);
  PERFORM pg_catalog.set_config('tenancy.context', pg_catalog.encode(pg_catalog.sha256(outer_pad OPERATOR(pg_catalog.||) pg_catalog.sha256(inner_pad OPERATOR(pg_catalog.||) pg_catalog.convert_to('seal;' OPERATOR(pg_catalog.||) body, 'UTF8'))), 'hex') OPERATOR(pg_catalog.||) '.' OPERATOR(pg_catalog.||) body, true);
END
$$;

-- The context contract this schema speaks; the runtime refuses to start on another.
CREATE OR REPLACE FUNCTION tenancy.context_contract()
  RETURNS integer
  LANGUAGE sql
  IMMUTABLE
AS $$
  SELECT 3
$$;

ALTER FUNCTION tenancy.install_context_key(text, bytea) OWNER TO tenancy_owner;
REVOKE ALL ON FUNCTION tenancy.install_context_key(text, bytea) FROM PUBLIC;
ALTER FUNCTION tenancy.context_claims() OWNER TO tenancy_owner;
REVOKE ALL ON FUNCTION tenancy.context_claims() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION tenancy.context_claims() TO tenancy_app;
ALTER FUNCTION tenancy.install_context(text) OWNER TO tenancy_owner;
REVOKE ALL ON FUNCTION tenancy.install_context(text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION tenancy.install_context(text) TO tenancy_app;
ALTER FUNCTION tenancy.context_contract() OWNER TO tenancy_owner;
REVOKE ALL ON FUNCTION tenancy.context_contract() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION tenancy.context_contract() TO tenancy_app;

-- ----------------------------------------------------------------------------
-- Context helpers (see docs/context.md)
--   Policies read the context only through these helpers, which read only what
--   context_claims() verified: 'tenant;user;{projects of the first role or above};
--   {second or above};...'. No context means NULL / '{}'; a malformed field raises an
--   error. No SET clause: a SQL helper without one is inlined into the calling statement.
-- ----------------------------------------------------------------------------

-- The current tenant's id (field 1), or NULL when it is unset or ''.
CREATE OR REPLACE FUNCTION tenancy.current_tenant_id()
  RETURNS uuid
  LANGUAGE sql
  STABLE
AS $$
  SELECT NULLIF(
    pg_catalog.split_part(tenancy.context_claims(), ';', 1),
    '')::pg_catalog.uuid
$$;

-- The current user's id (field 2), or NULL when it is unset or ''.
CREATE OR REPLACE FUNCTION tenancy.current_user_id()
  RETURNS uuid
  LANGUAGE sql
  STABLE
AS $$
  SELECT NULLIF(
    pg_catalog.split_part(tenancy.context_claims(), ';', 2),
    '')::pg_catalog.uuid
$$;

-- The projects where the current user's role is at least min_role ('{}' when none):
-- field 3 holds the projects of the first role or above, field 4 of the second or above, ...
CREATE OR REPLACE FUNCTION tenancy.project_ids(min_role tenancy.project_role)
  RETURNS uuid[]
  LANGUAGE sql
  STABLE
AS $$
  SELECT COALESCE(
    NULLIF(
      pg_catalog.split_part(tenancy.context_claims(), ';', CASE min_role
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
-- Clean pooled connections
--   Nothing a session creates may outlive its transaction or shadow a table name.
-- ----------------------------------------------------------------------------

-- No TEMP for PUBLIC (the app role included): a temporary table named like a tenant
-- table would shadow it for the rest of a pooled session. Grant TEMP to nobody the app
-- role inherits; `tenancy audit` reports a role that can still create temporary tables.
DO $$
BEGIN
  EXECUTE pg_catalog.format('REVOKE TEMPORARY ON DATABASE %I FROM PUBLIC', pg_catalog.current_database());
END
$$;
REVOKE CREATE ON SCHEMA public FROM PUBLIC;
