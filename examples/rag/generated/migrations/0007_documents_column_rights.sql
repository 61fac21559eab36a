-- Incremental migration: only what changed in the policies since the previous one.
--
-- GENERATED from policies/*.tenancy by `tenancy generate`. DO NOT EDIT:
-- change the policies and generate again.
-- Target: PostgreSQL 15+ (policies call the context helpers as `(SELECT tenancy.fn(...))`,
-- so each is an InitPlan evaluated once per statement).
--
-- Changes:
--   * documents: column rights changed

-- Column rights on documents: source_uri, mime_type, content_hash.
-- Policies decide which rows an update reaches; this trigger refuses a change to a
-- column that no rule covering it allows the caller (role in the row's project and
-- the rule's condition, on the row as it was). Sessions row-level security does not
-- apply to (maintenance) are not checked. Every name is schema-qualified, operators
-- included, so no search_path can redirect them.
CREATE OR REPLACE FUNCTION tenancy.documents_column_rights()
  RETURNS trigger
  LANGUAGE plpgsql
AS $$
BEGIN
  IF NOT pg_catalog.row_security_active(TG_RELID) THEN
    RETURN NEW;
  END IF;
  IF ((NEW.source_uri IS NULL) OPERATOR(pg_catalog.<>) (OLD.source_uri IS NULL)
      OR NEW.source_uri OPERATOR(pg_catalog.<>) OLD.source_uri) THEN
    IF NOT (
      COALESCE(OLD.project_id OPERATOR(pg_catalog.=) ANY ((SELECT tenancy.project_ids('admin'))::pg_catalog.uuid[]), false)) THEN
      RAISE EXCEPTION USING ERRCODE = '42501', MESSAGE = 'permission denied to change column source_uri of table documents', HINT = 'allowed to: admin';
    END IF;
  END IF;
  IF ((NEW.mime_type IS NULL) OPERATOR(pg_catalog.<>) (OLD.mime_type IS NULL)
      OR NEW.mime_type OPERATOR(pg_catalog.<>) OLD.mime_type) THEN
    IF NOT (
      COALESCE(OLD.project_id OPERATOR(pg_catalog.=) ANY ((SELECT tenancy.project_ids('admin'))::pg_catalog.uuid[]), false)) THEN
      RAISE EXCEPTION USING ERRCODE = '42501', MESSAGE = 'permission denied to change column mime_type of table documents', HINT = 'allowed to: admin';
    END IF;
  END IF;
  IF ((NEW.content_hash IS NULL) OPERATOR(pg_catalog.<>) (OLD.content_hash IS NULL)
      OR NEW.content_hash OPERATOR(pg_catalog.<>) OLD.content_hash) THEN
    IF NOT (
      COALESCE(OLD.project_id OPERATOR(pg_catalog.=) ANY ((SELECT tenancy.project_ids('admin'))::pg_catalog.uuid[]), false)) THEN
      RAISE EXCEPTION USING ERRCODE = '42501', MESSAGE = 'permission denied to change column content_hash of table documents', HINT = 'allowed to: admin';
    END IF;
  END IF;
  RETURN NEW;
END
$$;
ALTER FUNCTION tenancy.documents_column_rights() OWNER TO tenancy_owner;
REVOKE ALL ON FUNCTION tenancy.documents_column_rights() FROM PUBLIC;
DROP TRIGGER IF EXISTS documents_column_rights ON documents;
CREATE TRIGGER documents_column_rights
  BEFORE UPDATE ON documents
  FOR EACH ROW
  EXECUTE FUNCTION tenancy.documents_column_rights();
