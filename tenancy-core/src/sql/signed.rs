//! Context contract v3 (docs/context.md): the signed context. The runtime sends a token signed
//! with HMAC-SHA256 under a key only the owner role can read; `install_context` verifies it
//! once per transaction and stores a seal bound to this backend and this transaction, which
//! `context_claims` verifies again on every helper call. The helpers read only what
//! `context_claims` returns, so a context the app role writes itself (SET, set_config, PGOPTIONS)
//! or copies from another transaction or connection raises 42501 instead of being trusted.

use super::ident::{ident, literal};

/// The context contract the generated schema speaks on plain PostgreSQL. The runtime refuses a
/// database whose `context_contract()` returns another number.
pub const CONTEXT_CONTRACT: u32 = 3;

/// The contract of a database generated before `context_contract()` existed.
pub const UNSIGNED_CONTEXT_CONTRACT: u32 = 2;

/// `pg_catalog.encode(HMAC-SHA256(key, <domain>;<message>), 'hex')` over the pads of a key held
/// in the PL/pgSQL variables `inner_pad`/`outer_pad`.
pub(super) fn hmac_hex(domain: &str, message: &str) -> String {
    format!(
        "pg_catalog.encode(pg_catalog.sha256(outer_pad OPERATOR(pg_catalog.||) \
         pg_catalog.sha256(inner_pad OPERATOR(pg_catalog.||) \
         pg_catalog.convert_to('{domain};' OPERATOR(pg_catalog.||) {message}, 'UTF8'))), 'hex')"
    )
}

/// The transaction's identity as text: its start time in microseconds since the epoch.
const TRANSACTION_START_US: &str = "(pg_catalog.date_part('epoch', pg_catalog.now()) \
     OPERATOR(pg_catalog.*) 1000000)::pg_catalog.int8::pg_catalog.text";

/// This backend's process id as text.
const BACKEND_PID: &str = "pg_catalog.pg_backend_pid()::pg_catalog.text";

/// The PL/pgSQL that turns the parameter `secret` into HMAC-SHA256's inner and outer pads
/// (`DECLARE` through the pad loop; the key installers of both targets store them).
pub(super) const KEY_PADS: &str = "DECLARE\n\
         \x20 key bytea := secret;\n\
         \x20 inner_pad bytea;\n\
         \x20 outer_pad bytea;\n\
         BEGIN\n\
         \x20 IF key IS NULL OR octet_length(key) < 32 THEN\n\
         \x20   RAISE EXCEPTION 'tenancy: a context key needs at least 32 bytes' USING ERRCODE = '22023';\n\
         \x20 END IF;\n\
         \x20 IF octet_length(key) > 64 THEN\n\
         \x20   key := sha256(key);\n\
         \x20 END IF;\n\
         \x20 key := key || decode(repeat('00', 64 - octet_length(key)), 'hex');\n\
         \x20 inner_pad := key;\n\
         \x20 outer_pad := key;\n\
         \x20 FOR i IN 0..63 LOOP\n\
         \x20   inner_pad := set_byte(inner_pad, i, get_byte(key, i) # 54);\n\
         \x20   outer_pad := set_byte(outer_pad, i, get_byte(key, i) # 92);\n\
         \x20 END LOOP;\n";

/// `context_claims()`, the verifier behind every context helper, on both targets: the claims of
/// the seal `install_context` wrote in this transaction, NULL without a context, 42501 for
/// anything else. `binding` are the SQL expressions the seal's second and third fields must
/// equal (this transaction's identity on the target); `installed_in` says where, for the error
/// detail. The caller writes the comment above it.
#[allow(clippy::too_many_arguments)]
pub(super) fn context_claims_function(
    create: &str,
    schema: &str,
    setting: &str,
    keys: &str,
    helper_schema: &str,
    binding: [&str; 2],
    installed_in: &str,
) -> String {
    let seal_mac = hmac_hex("seal", "body");
    let [first, second] = binding;
    format!(
        "{create} {schema}.context_claims()\n\
         \x20 RETURNS pg_catalog.text\n\
         \x20 LANGUAGE plpgsql\n\
         \x20 STABLE\n\
         \x20 SECURITY DEFINER\n\
         AS $$\n\
         DECLARE\n\
         \x20 seal pg_catalog.text := pg_catalog.current_setting({setting}, true);\n\
         \x20 body pg_catalog.text;\n\
         \x20 inner_pad pg_catalog.bytea;\n\
         \x20 outer_pad pg_catalog.bytea;\n\
         BEGIN\n\
         \x20 IF seal IS NULL OR seal OPERATOR(pg_catalog.=) '' THEN\n\
         \x20   RETURN NULL;\n\
         \x20 END IF;\n\
         \x20 body := pg_catalog.substr(seal, 66);\n\
         \x20 SELECT k.inner_pad, k.outer_pad INTO inner_pad, outer_pad\n\
         \x20   FROM {keys} AS k\n\
         \x20   WHERE k.kid OPERATOR(pg_catalog.=) pg_catalog.split_part(body, ';', 1);\n\
         \x20 IF inner_pad IS NULL\n\
         \x20    OR pg_catalog.substr(seal, 65, 1) OPERATOR(pg_catalog.<>) '.'\n\
         \x20    OR pg_catalog.split_part(body, ';', 2) OPERATOR(pg_catalog.<>) {first}\n\
         \x20    OR pg_catalog.split_part(body, ';', 3) OPERATOR(pg_catalog.<>) {second}\n\
         \x20    OR pg_catalog.substr(seal, 1, 64) OPERATOR(pg_catalog.<>) {seal_mac}\n\
         \x20 THEN\n\
         \x20   IF pg_catalog.substr(seal, 1, 8) OPERATOR(pg_catalog.=) 'refused;' THEN\n\
         \x20     RAISE EXCEPTION 'tenancy: %', pg_catalog.substr(seal, 9) USING ERRCODE = '42501';\n\
         \x20   END IF;\n\
         \x20   RAISE EXCEPTION 'tenancy: the context was not installed by this transaction'\n\
         \x20     USING ERRCODE = '42501',\n\
         \x20           DETAIL = 'The setting {helper_schema}.context holds a value that install_context did not write {installed_in} (forged, edited, or copied from another transaction).',\n\
         \x20           HINT = 'Open transactions with the tenancy runtime; never set {helper_schema}.context by hand.';\n\
         \x20 END IF;\n\
         \x20 RETURN pg_catalog.substr(body, pg_catalog.length(pg_catalog.split_part(body, ';', 1))\n\
         \x20   OPERATOR(pg_catalog.+) pg_catalog.length(pg_catalog.split_part(body, ';', 2))\n\
         \x20   OPERATOR(pg_catalog.+) pg_catalog.length(pg_catalog.split_part(body, ';', 3)) OPERATOR(pg_catalog.+) 4);\n\
         END\n\
         $$;\n"
    )
}

/// The key table, the key installer, the verifier, the installer and the contract marker,
/// with owners and grants. `or_replace` makes the functions `CREATE OR REPLACE` (the upgrade
/// migration); the key table is created only if missing.
pub(super) fn signed_context_objects(
    helper_schema: &str,
    owner: &str,
    app: &str,
    or_replace: bool,
) -> String {
    let schema = ident(helper_schema);
    let setting = literal(&format!("{helper_schema}.context"));
    let create = if or_replace {
        "CREATE OR REPLACE FUNCTION"
    } else {
        "CREATE FUNCTION"
    };
    let keys = format!("{schema}.context_keys");
    let key_pads = KEY_PADS;
    let seal_mac = hmac_hex("seal", "body");
    let context_claims = context_claims_function(
        create,
        &schema,
        &setting,
        &keys,
        helper_schema,
        [TRANSACTION_START_US, BACKEND_PID],
        "in this transaction on this connection",
    );
    let token_mac = hmac_hex("token", "body");
    let mut out = String::new();
    out.push_str(&format!(
        "\n-- The signing keys. Only the owner role reads this table; the app role has no grant on it.\n\
         -- A key is stored as its two HMAC pads (the key XOR 0x36 and XOR 0x5c, 64 bytes each),\n\
         -- which are as secret as the key. Install keys with `tenancy key install`.\n\
         CREATE TABLE IF NOT EXISTS {keys} (\n\
         \x20 kid        text NOT NULL,\n\
         \x20 inner_pad  bytea NOT NULL,\n\
         \x20 outer_pad  bytea NOT NULL,\n\
         \x20 created_at timestamptz NOT NULL DEFAULT now(),\n\
         \x20 retired_at timestamptz,\n\
         \x20 CONSTRAINT context_keys_pkey PRIMARY KEY (kid),\n\
         \x20 CONSTRAINT context_keys_kid_check CHECK (kid ~ '^[A-Za-z0-9_-]{{1,64}}$'),\n\
         \x20 CONSTRAINT context_keys_pads_check CHECK (octet_length(inner_pad) = 64 AND octet_length(outer_pad) = 64)\n\
         );\n\
         ALTER TABLE {keys} OWNER TO {owner};\n\
         REVOKE ALL ON TABLE {keys} FROM PUBLIC;\n\
         \n\
         -- Adds a key (operator connection: the owner role or a superuser). At least 32 bytes;\n\
         -- longer than 64 bytes is hashed first, as HMAC does.\n\
         {create} {schema}.install_context_key(key_id text, secret bytea)\n\
         \x20 RETURNS void\n\
         \x20 LANGUAGE plpgsql\n\
         \x20 SET search_path = pg_catalog, pg_temp\n\
         AS $$\n\
         {key_pads}\
         \x20 INSERT INTO {keys} (kid, inner_pad, outer_pad) VALUES (key_id, inner_pad, outer_pad);\n\
         END\n\
         $$;\n\
         \n\
         -- The verified claims of this transaction's context: 'tenant;user;{{..}};{{..}}...' (the\n\
         -- fields of docs/context.md), or NULL when no context is set ('' or unset). Anything else\n\
         -- in the setting must be the seal install_context wrote in this very transaction on this\n\
         -- very connection, under a key of the key table: '<hmac>.<kid>;<transaction start in\n\
         -- microseconds>;<backend pid>;<claims>'. Otherwise it raises 42501 (no rows, no write).\n\
         -- SECURITY DEFINER (it reads the key table) without a SET clause, which would cost a\n\
         -- configuration save and restore per call: every name in it is schema-qualified,\n\
         -- operators included, and the app role can create objects nowhere.\n\
         {context_claims}\
         \n\
         -- Verifies a token minted by the runtime and installs its claims for the rest of the\n\
         -- transaction. Token: '<hmac>.<kid>;<expires, unix seconds>;<binding>;<claims>', the\n\
         -- HMAC-SHA256 over 'token;' and everything after the dot, under an active key; binding\n\
         -- '*' or this backend's pid. An unknown or retired key, a signature that does not\n\
         -- verify, an expired token or another connection's token install a refusal instead\n\
         -- ('refused;<reason>'), which context_claims raises (42501) on the first policy that\n\
         -- reads the context: the BEGIN round trip itself never fails, so a refused transaction\n\
         -- is rolled back like any other. A second context in a transaction that already carries\n\
         -- one raises at once. The runtime calls it in the same simple query as BEGIN.\n\
         {create} {schema}.install_context(token pg_catalog.text)\n\
         \x20 RETURNS void\n\
         \x20 LANGUAGE plpgsql\n\
         \x20 VOLATILE\n\
         \x20 SECURITY DEFINER\n\
         AS $$\n\
         DECLARE\n\
         \x20 body pg_catalog.text := pg_catalog.substr(token, 66);\n\
         \x20 key_id pg_catalog.text := pg_catalog.split_part(body, ';', 1);\n\
         \x20 expires pg_catalog.text := pg_catalog.split_part(body, ';', 2);\n\
         \x20 binding pg_catalog.text := pg_catalog.split_part(body, ';', 3);\n\
         \x20 current_seal pg_catalog.text := pg_catalog.current_setting({setting}, true);\n\
         \x20 inner_pad pg_catalog.bytea;\n\
         \x20 outer_pad pg_catalog.bytea;\n\
         BEGIN\n\
         \x20 SELECT k.inner_pad, k.outer_pad INTO inner_pad, outer_pad\n\
         \x20   FROM {keys} AS k\n\
         \x20   WHERE k.kid OPERATOR(pg_catalog.=) key_id AND k.retired_at IS NULL;\n\
         \x20 IF inner_pad IS NULL THEN\n\
\x20   PERFORM pg_catalog.set_config({setting}, 'refused;' OPERATOR(pg_catalog.||) pg_catalog.format('the context token names key \"%s\", which is not an active key of this database', key_id), true);\n\
         \x20   RETURN;\n\
         \x20 END IF;\n\
         \x20 IF pg_catalog.substr(token, 65, 1) OPERATOR(pg_catalog.<>) '.'\n\
         \x20    OR pg_catalog.substr(token, 1, 64) OPERATOR(pg_catalog.<>) {token_mac} THEN\n\
\x20   PERFORM pg_catalog.set_config({setting}, 'refused;' OPERATOR(pg_catalog.||) 'the context token''s signature does not verify (forged, edited, or signed with another key)', true);\n\
         \x20   RETURN;\n\
         \x20 END IF;\n\
         \x20 IF expires OPERATOR(pg_catalog.!~) '^[0-9]{{1,15}}$'\n\
         \x20    OR expires::pg_catalog.int8 OPERATOR(pg_catalog.<) pg_catalog.date_part('epoch', pg_catalog.now()) THEN\n\
\x20   PERFORM pg_catalog.set_config({setting}, 'refused;' OPERATOR(pg_catalog.||) 'the context token expired', true);\n\
         \x20   RETURN;\n\
         \x20 END IF;\n\
         \x20 IF binding OPERATOR(pg_catalog.<>) '*' AND binding OPERATOR(pg_catalog.<>) {BACKEND_PID} THEN\n\
\x20   PERFORM pg_catalog.set_config({setting}, 'refused;' OPERATOR(pg_catalog.||) 'the context token was minted for another connection', true);\n\
         \x20   RETURN;\n\
         \x20 END IF;\n\
         \x20 IF current_seal IS NOT NULL AND current_seal OPERATOR(pg_catalog.<>) ''\n\
         \x20    AND pg_catalog.split_part(pg_catalog.substr(current_seal, 66), ';', 2) OPERATOR(pg_catalog.=) {TRANSACTION_START_US}\n\
         \x20    AND pg_catalog.split_part(pg_catalog.substr(current_seal, 66), ';', 3) OPERATOR(pg_catalog.=) {BACKEND_PID} THEN\n\
         \x20   RAISE EXCEPTION 'tenancy: this transaction already carries a context; open a new transaction for another one'\n\
         \x20     USING ERRCODE = '42501';\n\
         \x20 END IF;\n\
         \x20 body := key_id OPERATOR(pg_catalog.||) ';' OPERATOR(pg_catalog.||) {TRANSACTION_START_US}\n\
         \x20   OPERATOR(pg_catalog.||) ';' OPERATOR(pg_catalog.||) {BACKEND_PID} OPERATOR(pg_catalog.||) ';'\n\
         \x20   OPERATOR(pg_catalog.||) pg_catalog.substr(body, pg_catalog.length(key_id) OPERATOR(pg_catalog.+)\n\
         \x20     pg_catalog.length(expires) OPERATOR(pg_catalog.+) pg_catalog.length(binding) OPERATOR(pg_catalog.+) 4);\n\
         \x20 PERFORM pg_catalog.set_config({setting}, {seal_mac} OPERATOR(pg_catalog.||) '.' OPERATOR(pg_catalog.||) body, true);\n\
         END\n\
         $$;\n\
         \n\
         -- The context contract this schema speaks; the runtime refuses to start on another.\n\
         {create} {schema}.context_contract()\n\
         \x20 RETURNS integer\n\
         \x20 LANGUAGE sql\n\
         \x20 IMMUTABLE\n\
         AS $$\n\
         \x20 SELECT {CONTEXT_CONTRACT}\n\
         $$;\n\
         \n\
         ALTER FUNCTION {schema}.install_context_key(text, bytea) OWNER TO {owner};\n\
         REVOKE ALL ON FUNCTION {schema}.install_context_key(text, bytea) FROM PUBLIC;\n\
         ALTER FUNCTION {schema}.context_claims() OWNER TO {owner};\n\
         REVOKE ALL ON FUNCTION {schema}.context_claims() FROM PUBLIC;\n\
         GRANT EXECUTE ON FUNCTION {schema}.context_claims() TO {app};\n\
         ALTER FUNCTION {schema}.install_context(text) OWNER TO {owner};\n\
         REVOKE ALL ON FUNCTION {schema}.install_context(text) FROM PUBLIC;\n\
         GRANT EXECUTE ON FUNCTION {schema}.install_context(text) TO {app};\n\
         ALTER FUNCTION {schema}.context_contract() OWNER TO {owner};\n\
         REVOKE ALL ON FUNCTION {schema}.context_contract() FROM PUBLIC;\n\
         GRANT EXECUTE ON FUNCTION {schema}.context_contract() TO {app};\n"
    ));
    out
}

/// Clean pooled connections: no role may create temporary objects in this database (a temp
/// table shadows an unqualified table name for the rest of the session), and nobody but the
/// owner creates in `public`. Needs the database owner or a superuser, as every migration does.
pub(super) fn connection_hygiene() -> String {
    "\n-- No TEMP for PUBLIC (the app role included): a temporary table named like a tenant\n\
     -- table would shadow it for the rest of a pooled session. Grant TEMP to nobody the app\n\
     -- role inherits; `tenancy audit` reports a role that can still create temporary tables.\n\
     DO $$\n\
     BEGIN\n\
     \x20 EXECUTE pg_catalog.format('REVOKE TEMPORARY ON DATABASE %I FROM PUBLIC', pg_catalog.current_database());\n\
     END\n\
     $$;\n\
     REVOKE CREATE ON SCHEMA public FROM PUBLIC;\n"
        .to_owned()
}
