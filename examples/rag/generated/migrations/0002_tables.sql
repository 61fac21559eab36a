-- Tables declared in the policies (scoped and global), in dependency order.
--
-- GENERATED from policies/*.tenancy by `tenancy generate`. DO NOT EDIT:
-- change the policies and generate again.
-- Target: PostgreSQL 15+ (policies call the context helpers as `(SELECT tenancy.fn(...))`,
-- so each is an InitPlan evaluated once per statement).

-- ----------------------------------------------------------------------------
-- documents (scoped to a project)
--   A source document ingested into a project.
-- ----------------------------------------------------------------------------
CREATE TABLE documents (
  tenant_id    uuid NOT NULL,
  project_id   uuid NOT NULL,
  id           uuid NOT NULL DEFAULT gen_random_uuid(),
  title        text NOT NULL,
  source_uri   text,
  mime_type    text NOT NULL DEFAULT 'text/plain',
  content_hash text NOT NULL,
  metadata     jsonb NOT NULL DEFAULT '{}',
  created_by   uuid NOT NULL,
  created_at   timestamptz NOT NULL DEFAULT now(),
  updated_at   timestamptz NOT NULL DEFAULT now(),
  CONSTRAINT documents_pkey PRIMARY KEY (tenant_id, project_id, id),
  CONSTRAINT documents_content_hash_key UNIQUE (tenant_id, project_id, content_hash),
  CONSTRAINT documents_tenant_id_project_id_fkey FOREIGN KEY (tenant_id, project_id)
    REFERENCES projects (tenant_id, id) ON DELETE CASCADE
);
CREATE INDEX documents_created_at_idx ON documents (tenant_id, project_id, created_at);
ALTER TABLE documents OWNER TO tenancy_owner;

-- Row-level security: no row outside the current tenant, for any command;
-- then one permissive policy per allowed command.
ALTER TABLE documents ENABLE ROW LEVEL SECURITY;
ALTER TABLE documents FORCE ROW LEVEL SECURITY;
CREATE POLICY documents_tenant_boundary ON documents
  AS RESTRICTIVE
  FOR ALL
  TO tenancy_app
  USING (tenant_id = (SELECT tenancy.current_tenant_id()))
  WITH CHECK (tenant_id = (SELECT tenancy.current_tenant_id()));
CREATE POLICY documents_select ON documents
  AS PERMISSIVE
  FOR SELECT
  TO tenancy_app
  USING (COALESCE(project_id = ANY ((SELECT tenancy.project_ids('viewer'))::uuid[]), false));
CREATE POLICY documents_insert ON documents
  AS PERMISSIVE
  FOR INSERT
  TO tenancy_app
  WITH CHECK (COALESCE(project_id = ANY ((SELECT tenancy.project_ids('editor'))::uuid[]), false));
CREATE POLICY documents_update ON documents
  AS PERMISSIVE
  FOR UPDATE
  TO tenancy_app
  USING (COALESCE(project_id = ANY ((SELECT tenancy.project_ids('editor'))::uuid[]), false))
  WITH CHECK (COALESCE(project_id = ANY ((SELECT tenancy.project_ids('editor'))::uuid[]), false));
CREATE POLICY documents_delete ON documents
  AS PERMISSIVE
  FOR DELETE
  TO tenancy_app
  USING (COALESCE(project_id = ANY ((SELECT tenancy.project_ids('admin'))::uuid[]), false));

-- Grants: only the commands with a rule; UPDATE only on columns that cannot move a row
-- to another tenant or project; never TRUNCATE, REFERENCES or TRIGGER.
REVOKE ALL ON TABLE documents FROM PUBLIC;
REVOKE ALL ON TABLE documents FROM tenancy_app;
GRANT SELECT, INSERT, DELETE ON TABLE documents TO tenancy_app;
GRANT UPDATE (title, source_uri, mime_type, content_hash, metadata, created_by, created_at, updated_at) ON TABLE documents TO tenancy_app;

-- ----------------------------------------------------------------------------
-- chunks (scoped to a project)
--   A retrievable slice of a document, with its embedding.
-- ----------------------------------------------------------------------------
CREATE TABLE chunks (
  tenant_id   uuid NOT NULL,
  project_id  uuid NOT NULL,
  id          uuid NOT NULL DEFAULT gen_random_uuid(),
  document_id uuid NOT NULL,
  ordinal     integer NOT NULL,
  content     text NOT NULL,
  token_count integer NOT NULL,
  embedding   vector(384),
  created_at  timestamptz NOT NULL DEFAULT now(),
  CONSTRAINT chunks_pkey PRIMARY KEY (tenant_id, project_id, id),
  CONSTRAINT chunks_document_id_ordinal_key UNIQUE (tenant_id, project_id, document_id, ordinal),
  CONSTRAINT chunks_tenant_id_project_id_fkey FOREIGN KEY (tenant_id, project_id)
    REFERENCES projects (tenant_id, id) ON DELETE CASCADE,
  CONSTRAINT chunks_document_id_fkey FOREIGN KEY (tenant_id, project_id, document_id)
    REFERENCES documents (tenant_id, project_id, id) ON DELETE CASCADE
);
ALTER TABLE chunks OWNER TO tenancy_owner;

-- Row-level security: no row outside the current tenant, for any command;
-- then one permissive policy per allowed command.
ALTER TABLE chunks ENABLE ROW LEVEL SECURITY;
ALTER TABLE chunks FORCE ROW LEVEL SECURITY;
CREATE POLICY chunks_tenant_boundary ON chunks
  AS RESTRICTIVE
  FOR ALL
  TO tenancy_app
  USING (tenant_id = (SELECT tenancy.current_tenant_id()))
  WITH CHECK (tenant_id = (SELECT tenancy.current_tenant_id()));
CREATE POLICY chunks_select ON chunks
  AS PERMISSIVE
  FOR SELECT
  TO tenancy_app
  USING (COALESCE(project_id = ANY ((SELECT tenancy.project_ids('viewer'))::uuid[]), false));
CREATE POLICY chunks_insert ON chunks
  AS PERMISSIVE
  FOR INSERT
  TO tenancy_app
  WITH CHECK (COALESCE(project_id = ANY ((SELECT tenancy.project_ids('editor'))::uuid[]), false));
CREATE POLICY chunks_update ON chunks
  AS PERMISSIVE
  FOR UPDATE
  TO tenancy_app
  USING (COALESCE(project_id = ANY ((SELECT tenancy.project_ids('editor'))::uuid[]), false))
  WITH CHECK (COALESCE(project_id = ANY ((SELECT tenancy.project_ids('editor'))::uuid[]), false));
CREATE POLICY chunks_delete ON chunks
  AS PERMISSIVE
  FOR DELETE
  TO tenancy_app
  USING (COALESCE(project_id = ANY ((SELECT tenancy.project_ids('editor'))::uuid[]), false));

-- Grants: only the commands with a rule; UPDATE only on columns that cannot move a row
-- to another tenant or project; never TRUNCATE, REFERENCES or TRIGGER.
REVOKE ALL ON TABLE chunks FROM PUBLIC;
REVOKE ALL ON TABLE chunks FROM tenancy_app;
GRANT SELECT, INSERT, DELETE ON TABLE chunks TO tenancy_app;
GRANT UPDATE (document_id, ordinal, content, token_count, embedding, created_at) ON TABLE chunks TO tenancy_app;

-- ----------------------------------------------------------------------------
-- queries (scoped to a project)
--   A question asked against a project's corpus.
-- ----------------------------------------------------------------------------
CREATE TABLE queries (
  tenant_id  uuid NOT NULL,
  project_id uuid NOT NULL,
  id         uuid NOT NULL DEFAULT gen_random_uuid(),
  asked_by   uuid NOT NULL,
  query_text text NOT NULL,
  top_k      integer NOT NULL DEFAULT 10,
  created_at timestamptz NOT NULL DEFAULT now(),
  CONSTRAINT queries_pkey PRIMARY KEY (tenant_id, project_id, id),
  CONSTRAINT queries_tenant_id_project_id_fkey FOREIGN KEY (tenant_id, project_id)
    REFERENCES projects (tenant_id, id) ON DELETE CASCADE
);
CREATE INDEX queries_asked_by_idx ON queries (tenant_id, project_id, asked_by);
ALTER TABLE queries OWNER TO tenancy_owner;

-- Row-level security: no row outside the current tenant, for any command;
-- then one permissive policy per allowed command.
ALTER TABLE queries ENABLE ROW LEVEL SECURITY;
ALTER TABLE queries FORCE ROW LEVEL SECURITY;
CREATE POLICY queries_tenant_boundary ON queries
  AS RESTRICTIVE
  FOR ALL
  TO tenancy_app
  USING (tenant_id = (SELECT tenancy.current_tenant_id()))
  WITH CHECK (tenant_id = (SELECT tenancy.current_tenant_id()));
CREATE POLICY queries_select ON queries
  AS PERMISSIVE
  FOR SELECT
  TO tenancy_app
  USING (COALESCE(project_id = ANY ((SELECT tenancy.project_ids('viewer'))::uuid[]), false));
CREATE POLICY queries_insert ON queries
  AS PERMISSIVE
  FOR INSERT
  TO tenancy_app
  WITH CHECK (COALESCE(project_id = ANY ((SELECT tenancy.project_ids('viewer'))::uuid[]), false));
CREATE POLICY queries_delete ON queries
  AS PERMISSIVE
  FOR DELETE
  TO tenancy_app
  USING (COALESCE(project_id = ANY ((SELECT tenancy.project_ids('admin'))::uuid[]), false));

-- Grants: only the commands with a rule; UPDATE only on columns that cannot move a row
-- to another tenant or project; never TRUNCATE, REFERENCES or TRIGGER.
REVOKE ALL ON TABLE queries FROM PUBLIC;
REVOKE ALL ON TABLE queries FROM tenancy_app;
GRANT SELECT, INSERT, DELETE ON TABLE queries TO tenancy_app;

-- ----------------------------------------------------------------------------
-- responses (scoped to a project)
--   A generated answer to a query.
-- ----------------------------------------------------------------------------
CREATE TABLE responses (
  tenant_id         uuid NOT NULL,
  project_id        uuid NOT NULL,
  id                uuid NOT NULL DEFAULT gen_random_uuid(),
  query_id          uuid NOT NULL,
  answer_text       text NOT NULL,
  model             text NOT NULL,
  prompt_tokens     integer NOT NULL DEFAULT 0,
  completion_tokens integer NOT NULL DEFAULT 0,
  latency_ms        integer,
  created_at        timestamptz NOT NULL DEFAULT now(),
  CONSTRAINT responses_pkey PRIMARY KEY (tenant_id, project_id, id),
  CONSTRAINT responses_tenant_id_project_id_fkey FOREIGN KEY (tenant_id, project_id)
    REFERENCES projects (tenant_id, id) ON DELETE CASCADE,
  CONSTRAINT responses_query_id_fkey FOREIGN KEY (tenant_id, project_id, query_id)
    REFERENCES queries (tenant_id, project_id, id) ON DELETE CASCADE
);
-- Index for the foreign key (cascading deletes, joins).
CREATE INDEX responses_query_id_idx ON responses (tenant_id, project_id, query_id);
ALTER TABLE responses OWNER TO tenancy_owner;

-- Row-level security: no row outside the current tenant, for any command;
-- then one permissive policy per allowed command.
ALTER TABLE responses ENABLE ROW LEVEL SECURITY;
ALTER TABLE responses FORCE ROW LEVEL SECURITY;
CREATE POLICY responses_tenant_boundary ON responses
  AS RESTRICTIVE
  FOR ALL
  TO tenancy_app
  USING (tenant_id = (SELECT tenancy.current_tenant_id()))
  WITH CHECK (tenant_id = (SELECT tenancy.current_tenant_id()));
CREATE POLICY responses_select ON responses
  AS PERMISSIVE
  FOR SELECT
  TO tenancy_app
  USING (COALESCE(project_id = ANY ((SELECT tenancy.project_ids('viewer'))::uuid[]), false));
CREATE POLICY responses_insert ON responses
  AS PERMISSIVE
  FOR INSERT
  TO tenancy_app
  WITH CHECK (COALESCE(project_id = ANY ((SELECT tenancy.project_ids('editor'))::uuid[]), false));
CREATE POLICY responses_delete ON responses
  AS PERMISSIVE
  FOR DELETE
  TO tenancy_app
  USING (COALESCE(project_id = ANY ((SELECT tenancy.project_ids('admin'))::uuid[]), false));

-- Grants: only the commands with a rule; UPDATE only on columns that cannot move a row
-- to another tenant or project; never TRUNCATE, REFERENCES or TRIGGER.
REVOKE ALL ON TABLE responses FROM PUBLIC;
REVOKE ALL ON TABLE responses FROM tenancy_app;
GRANT SELECT, INSERT, DELETE ON TABLE responses TO tenancy_app;

-- ----------------------------------------------------------------------------
-- assertions (scoped to a project)
--   A checked claim in a response: which chunk supports it and the verdict.
-- ----------------------------------------------------------------------------
CREATE TABLE assertions (
  tenant_id   uuid NOT NULL,
  project_id  uuid NOT NULL,
  id          uuid NOT NULL DEFAULT gen_random_uuid(),
  response_id uuid NOT NULL,
  chunk_id    uuid,
  claim       text NOT NULL,
  verdict     text NOT NULL DEFAULT 'unverified',
  score       real,
  created_at  timestamptz NOT NULL DEFAULT now(),
  CONSTRAINT assertions_pkey PRIMARY KEY (tenant_id, project_id, id),
  CONSTRAINT assertions_tenant_id_project_id_fkey FOREIGN KEY (tenant_id, project_id)
    REFERENCES projects (tenant_id, id) ON DELETE CASCADE,
  CONSTRAINT assertions_response_id_fkey FOREIGN KEY (tenant_id, project_id, response_id)
    REFERENCES responses (tenant_id, project_id, id) ON DELETE CASCADE,
  CONSTRAINT assertions_chunk_id_fkey FOREIGN KEY (tenant_id, project_id, chunk_id)
    REFERENCES chunks (tenant_id, project_id, id) ON DELETE SET NULL (chunk_id)
);
CREATE INDEX assertions_response_id_idx ON assertions (tenant_id, project_id, response_id);
-- Index for the foreign key (cascading deletes, joins).
CREATE INDEX assertions_chunk_id_idx ON assertions (tenant_id, project_id, chunk_id);
ALTER TABLE assertions OWNER TO tenancy_owner;

-- Row-level security: no row outside the current tenant, for any command;
-- then one permissive policy per allowed command.
ALTER TABLE assertions ENABLE ROW LEVEL SECURITY;
ALTER TABLE assertions FORCE ROW LEVEL SECURITY;
CREATE POLICY assertions_tenant_boundary ON assertions
  AS RESTRICTIVE
  FOR ALL
  TO tenancy_app
  USING (tenant_id = (SELECT tenancy.current_tenant_id()))
  WITH CHECK (tenant_id = (SELECT tenancy.current_tenant_id()));
CREATE POLICY assertions_select ON assertions
  AS PERMISSIVE
  FOR SELECT
  TO tenancy_app
  USING (COALESCE(project_id = ANY ((SELECT tenancy.project_ids('viewer'))::uuid[]), false));
CREATE POLICY assertions_insert ON assertions
  AS PERMISSIVE
  FOR INSERT
  TO tenancy_app
  WITH CHECK (COALESCE(project_id = ANY ((SELECT tenancy.project_ids('editor'))::uuid[]), false));
CREATE POLICY assertions_update ON assertions
  AS PERMISSIVE
  FOR UPDATE
  TO tenancy_app
  USING (COALESCE(project_id = ANY ((SELECT tenancy.project_ids('editor'))::uuid[]), false))
  WITH CHECK (COALESCE(project_id = ANY ((SELECT tenancy.project_ids('editor'))::uuid[]), false));
CREATE POLICY assertions_delete ON assertions
  AS PERMISSIVE
  FOR DELETE
  TO tenancy_app
  USING (COALESCE(project_id = ANY ((SELECT tenancy.project_ids('admin'))::uuid[]), false));

-- Grants: only the commands with a rule; UPDATE only on columns that cannot move a row
-- to another tenant or project; never TRUNCATE, REFERENCES or TRIGGER.
REVOKE ALL ON TABLE assertions FROM PUBLIC;
REVOKE ALL ON TABLE assertions FROM tenancy_app;
GRANT SELECT, INSERT, DELETE ON TABLE assertions TO tenancy_app;
GRANT UPDATE (response_id, chunk_id, claim, verdict, score, created_at) ON TABLE assertions TO tenancy_app;

-- ----------------------------------------------------------------------------
-- embedding_models (global: shared by every tenant)
--   Embedding models known to the platform, shared by every tenant.
-- ----------------------------------------------------------------------------
CREATE TABLE embedding_models (
  name       text NOT NULL,
  dimensions integer NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now(),
  CONSTRAINT embedding_models_pkey PRIMARY KEY (name)
);
ALTER TABLE embedding_models OWNER TO tenancy_owner;

-- embedding_models is global: no row-level security; every caller with the app role
-- may run the granted commands on every row.

-- Grants: only the commands with a rule; UPDATE only on columns that cannot move a row
-- to another tenant or project; never TRUNCATE, REFERENCES or TRIGGER.
REVOKE ALL ON TABLE embedding_models FROM PUBLIC;
REVOKE ALL ON TABLE embedding_models FROM tenancy_app;
GRANT SELECT ON TABLE embedding_models TO tenancy_app;
