-- The RAG service's schema as it exists in production BEFORE tenancy: one customer, no
-- tenant_id/project_id, its own single-column keys and foreign keys. This is what
-- `examples/legacy/policies` adopts (see docs/dsl.md, "Adopting existing tables").
--
-- It is deliberately the schema of a real service that grew over time, not a clean one:
--   * responses.query_id is nullable although every response answers a query (the NOT NULL
--     was never added); the policies declare it NOT NULL, so the adoption's validate phase
--     counts the NULLs and stops if there are any;
--   * assertions.chunk_id has no foreign key (chunks were re-ingested without cleaning up);
--     the policies declare one, so the validate phase counts orphans and stops if any;
--   * indexes are single-column (created_at, asked_by, response_id): the adoption replaces
--     them with the policies' indexes, led by (tenant_id, project_id).
--
-- Apply it to an empty database as a superuser: psql -v ON_ERROR_STOP=1 -f schema.sql

CREATE EXTENSION IF NOT EXISTS vector;

CREATE TABLE documents (
    id           uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    title        text NOT NULL,
    source_uri   text,
    mime_type    text NOT NULL DEFAULT 'text/plain',
    content_hash text NOT NULL UNIQUE,
    metadata     jsonb NOT NULL DEFAULT '{}',
    created_by   uuid NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    updated_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX documents_created_at_idx ON documents (created_at);

CREATE TABLE chunks (
    id          uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    document_id uuid NOT NULL REFERENCES documents (id) ON DELETE CASCADE,
    ordinal     integer NOT NULL,
    content     text NOT NULL,
    token_count integer NOT NULL,
    embedding   vector(384),
    created_at  timestamptz NOT NULL DEFAULT now(),
    UNIQUE (document_id, ordinal)
);

CREATE TABLE queries (
    id         uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    asked_by   uuid NOT NULL,
    query_text text NOT NULL,
    top_k      integer NOT NULL DEFAULT 10,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX queries_asked_by_idx ON queries (asked_by);

CREATE TABLE responses (
    id                uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    query_id          uuid REFERENCES queries (id) ON DELETE CASCADE,
    answer_text       text NOT NULL,
    model             text NOT NULL,
    prompt_tokens     integer NOT NULL DEFAULT 0,
    completion_tokens integer NOT NULL DEFAULT 0,
    latency_ms        integer,
    created_at        timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE assertions (
    id          uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    response_id uuid NOT NULL REFERENCES responses (id) ON DELETE CASCADE,
    chunk_id    uuid,
    claim       text NOT NULL,
    verdict     text NOT NULL DEFAULT 'unverified',
    score       real,
    created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX assertions_response_id_idx ON assertions (response_id);
