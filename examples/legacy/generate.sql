-- Realistic data for the pre-tenancy schema (examples/legacy/schema.sql), generated on the
-- server with generate_series: a million chunks take well under a minute.
--
-- Deterministic: setseed() fixes random(), and ids are derived from the row numbers
-- (md5 -> uuid), so the same settings always give the same rows.
--
-- Sizes come from custom settings of the session (defaults in brackets), e.g.
--   PGOPTIONS='-c legacy.documents=20000 -c legacy.chunks_per_document=50' \
--     psql -v ON_ERROR_STOP=1 -f examples/legacy/generate.sql
--
--   legacy.documents            [200]  documents
--   legacy.chunks_per_document  [10]   chunks per document (so chunks = documents * this)
--   legacy.queries              [100]  queries; each has one response
--   legacy.assertions_per_response [3] assertions per response, each citing a chunk
--   legacy.embeddings           [on]   'off' leaves chunks.embedding NULL (faster, smaller)
--
-- Shapes: titles and contents are words drawn from a small vocabulary, 80% of documents
-- are text/plain and the rest PDF or HTML, chunk token counts follow the content length,
-- created_at spreads over the last year, documents come from 50 authors and queries from
-- 30 users, 10% of responses have no latency recorded, 5% of assertions cite no chunk.

DO $$
DECLARE
  documents integer := COALESCE(NULLIF(current_setting('legacy.documents', true), ''), '200')::integer;
  per_document integer := COALESCE(NULLIF(current_setting('legacy.chunks_per_document', true), ''), '10')::integer;
  queries integer := COALESCE(NULLIF(current_setting('legacy.queries', true), ''), '100')::integer;
  per_response integer := COALESCE(NULLIF(current_setting('legacy.assertions_per_response', true), ''), '3')::integer;
  embeddings boolean := COALESCE(NULLIF(current_setting('legacy.embeddings', true), ''), 'on')::boolean;
  words text[] := ARRAY['tenant', 'policy', 'vector', 'index', 'query', 'row', 'level', 'security',
    'chunk', 'document', 'embedding', 'retrieval', 'answer', 'model', 'context', 'project',
    'postgres', 'migration', 'schema', 'search', 'latency', 'token', 'claim', 'source'];
BEGIN
  PERFORM setseed(0.42);

  INSERT INTO documents (id, title, source_uri, mime_type, content_hash, metadata, created_by,
                         created_at, updated_at)
  SELECT md5('document' || d)::uuid,
         initcap(words[1 + (d * 7) % 24] || ' ' || words[1 + (d * 13) % 24] || ' ' || d),
         CASE WHEN d % 4 = 0 THEN NULL ELSE 'https://docs.example.com/' || d END,
         CASE WHEN d % 10 < 8 THEN 'text/plain' WHEN d % 10 = 8 THEN 'application/pdf' ELSE 'text/html' END,
         md5('content' || d),
         jsonb_build_object('language', CASE WHEN d % 5 = 0 THEN 'de' ELSE 'en' END, 'pages', 1 + d % 40),
         md5('author' || d % 50)::uuid,
         now() - (random() * interval '365 days'),
         now() - (random() * interval '30 days')
  FROM generate_series(1, documents) AS d;

  INSERT INTO chunks (id, document_id, ordinal, content, token_count, embedding, created_at)
  SELECT md5('chunk' || d || ':' || o)::uuid,
         md5('document' || d)::uuid,
         o,
         content,
         length(content) / 4 + 1,
         CASE WHEN embeddings THEN
           -- correlated with the row (o), so it is evaluated per row, not once
           (SELECT array_agg(random()::real) FROM generate_series(1, 384) WHERE o > 0)::vector(384)
         END,
         now() - (random() * interval '365 days')
  FROM generate_series(1, documents) AS d
  CROSS JOIN generate_series(1, per_document) AS o
  CROSS JOIN LATERAL (
    SELECT repeat(words[1 + (d + o) % 24] || ' ' || words[1 + (d * o) % 24] || ' ', 20 + (d + o) % 60) AS content
  ) AS c;

  INSERT INTO queries (id, asked_by, query_text, top_k, created_at)
  SELECT md5('query' || q)::uuid,
         md5('user' || q % 30)::uuid,
         'what does ' || words[1 + q % 24] || ' mean for ' || words[1 + (q * 5) % 24] || '?',
         CASE WHEN q % 3 = 0 THEN 5 ELSE 10 END,
         now() - (random() * interval '180 days')
  FROM generate_series(1, queries) AS q;

  INSERT INTO responses (id, query_id, answer_text, model, prompt_tokens, completion_tokens,
                         latency_ms, created_at)
  SELECT md5('response' || q)::uuid,
         md5('query' || q)::uuid,
         'It means ' || words[1 + (q * 3) % 24] || ' ' || words[1 + (q * 11) % 24] || '.',
         CASE WHEN q % 2 = 0 THEN 'gpt-4o-mini' ELSE 'llama-3-8b' END,
         200 + q % 800,
         20 + q % 300,
         CASE WHEN q % 10 = 0 THEN NULL ELSE 300 + (random() * 2000)::integer END,
         now() - (random() * interval '180 days')
  FROM generate_series(1, queries) AS q;

  INSERT INTO assertions (id, response_id, chunk_id, claim, verdict, score, created_at)
  SELECT md5('assertion' || q || ':' || a)::uuid,
         md5('response' || q)::uuid,
         CASE WHEN (q + a) % 20 = 0 THEN NULL
              ELSE md5('chunk' || 1 + (q * 7 + a) % documents || ':' || 1 + (q + a) % per_document)::uuid END,
         'Claim ' || a || ' of answer ' || q,
         (ARRAY['supported', 'unsupported', 'unverified'])[1 + (q + a) % 3],
         CASE WHEN (q + a) % 3 = 2 THEN NULL ELSE round(random()::numeric, 3)::real END,
         now() - (random() * interval '180 days')
  FROM generate_series(1, queries) AS q
  CROSS JOIN generate_series(1, per_response) AS a;
END
$$;

ANALYZE documents, chunks, queries, responses, assertions;
