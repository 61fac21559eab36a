#!/usr/bin/env bash
# Server-side cost of one get-by-key transaction, in CPU instructions counted by callgrind:
# no network, no client, no scheduler noise, so differences of a few percent are real.
#
#   bench-isolation/server-instructions.sh [REPETITIONS]     (default 200; needs valgrind)
#
# Builds a throwaway cluster (the PostgreSQL 18 + pgvector binaries of scripts/pg-up) in a
# temporary directory, applies generated/migrations, loads one project of 20,000 chunks, then
# runs a single-user backend (`postgres --single`) under callgrind for each variant:
#   plain    superuser: BEGIN; EXECUTE get; COMMIT
#   context  superuser: the runtime's context statement (contract 3: BEGIN; /*1 KB pad*/
#            SELECT "tenancy".install_context('<token>'))
#   layer    application role (row-level security): the context statement, EXECUTE get, COMMIT
#   naive, wrapped, postgrest   the peer designs of bench-isolation/peers.sql (issue 22)
# `get` is Chunks::GET_IN_PROJECT_SQL (or with TENANCY_OPERATION=update an UPDATE ... RETURNING
# by key, as Chunks::update sends it), PREPAREd (after 5 executions it runs a cached generic
# plan, as through sqlx). Each variant runs 10 and 10 + REPETITIONS transactions; the report is
# the difference divided by REPETITIONS, counted inside exec_simple_query (the single-user
# backend reads its input one character at a time; that reading is left out).
# The tenant, project and user ids are fixed; TENANCY_MIGRATIONS and TENANCY_CONTEXT_STATEMENT
# (see below) measure another design.
#
# Contract 3 (the default, every file of generated/migrations): the bench key (kid
# bench-isolation, the secret of bench-isolation/src/data.rs) is installed in the database and
# the token is minted here (python3 hmac, the format of docs/context.md) with an expiry ten
# years ahead, so the same statement is valid in every repetition.
# TENANCY_CONTEXT=v2: contract 2, the design before the signed context: only the migrations
# before *_core_context_v3.sql (0001 + 0002) and `BEGIN; SET LOCAL tenancy.context = '<claims>'`
# (the same claims). TENANCY_OPERATION=get|update picks the statement (below).
#
#   for op in get update; do for c in v2 v3; do
#       TENANCY_CONTEXT=$c TENANCY_OPERATION=$op bench-isolation/server-instructions.sh; done; done
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)"
# shellcheck source=scripts/pg-common.sh
source "$repo/scripts/pg-common.sh"
reps="${1:-200}"
command -v valgrind >/dev/null || die "valgrind is needed (apt-get install valgrind)"
command -v callgrind_annotate >/dev/null || die "callgrind_annotate is needed (valgrind)"

server_user_setup
ensure_venv
work="$(mktemp -d /tmp/tenancy-instructions.XXXXXX)"
trap 'as_server "$PG_BIN/pg_ctl" -D "$work/data" stop -m immediate >/dev/null 2>&1 || true; [ -n "${TENANCY_KEEP:-}" ] || rm -rf "$work"' EXIT
chmod 777 "$work"
as_server "$PG_BIN/initdb" -D "$work/data" -U postgres -A trust -E UTF8 --locale=C >/dev/null
port=55490
while port_in_use "$port"; do port=$((port + 1)); done
as_server "$PG_BIN/pg_ctl" -D "$work/data" -o "-p $port -k $work -c listen_addresses=127.0.0.1" \
    -l "$work/server.log" start >/dev/null
psql=("$PG_BIN/psql" -X -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$port" -U postgres)
"${psql[@]}" -d postgres -c "CREATE DATABASE bench"
migrations="${TENANCY_MIGRATIONS:-$repo/examples/rag/generated/migrations}"
case "${TENANCY_CONTEXT:-v3}" in
    v3) ;;
    v2) [ -z "${TENANCY_MIGRATIONS:-}" ] || die "TENANCY_CONTEXT=v2 picks its own migrations"
        migrations="$work/migrations-v2"
        mkdir "$migrations"
        for file in "$repo"/examples/rag/generated/migrations/*.sql; do
            case "$file" in *_core_context_v3.sql) break ;; esac
            cp "$file" "$migrations/"
        done
        ;;
    *) die "TENANCY_CONTEXT is v2 or v3" ;;
esac
for file in "$migrations"/*.sql; do
    "${psql[@]}" -d bench -f "$file" >/dev/null
done
key_id=bench-isolation
key_hex=62656e63682d69736f6c6174696f6e206b6579202d206e6f742073656372657421
signed="$("${psql[@]}" -d bench -At -c \
    "SELECT to_regprocedure('tenancy.install_context(text)') IS NOT NULL")"
if [ "$signed" = t ]; then
    "${psql[@]}" -d bench -c "SELECT tenancy.install_context_key('$key_id', decode('$key_hex', 'hex'))" >/dev/null
fi
tenant=11111111-1111-1111-1111-111111111111
project=22222222-2222-2222-2222-222222222222
user=33333333-3333-3333-3333-333333333333
"${psql[@]}" -d bench <<SQL
INSERT INTO tenants (id, name, slug) VALUES ('$tenant', 't', 't');
INSERT INTO projects (tenant_id, id, name, slug) VALUES ('$tenant', '$project', 'p', 'p');
INSERT INTO documents (tenant_id, project_id, id, title, content_hash, created_by)
  SELECT '$tenant', '$project', md5('d' || g)::uuid, 'doc ' || g, md5('h' || g), '$user'
  FROM generate_series(1, 1000) AS g;
INSERT INTO chunks (tenant_id, project_id, id, document_id, ordinal, content, token_count)
  SELECT '$tenant', '$project', md5('c' || g)::uuid, md5('d' || (g % 1000 + 1))::uuid, g,
         'content ' || g, 10
  FROM generate_series(1, 20000) AS g;
SQL
# The peer designs of issue 22 (bench-isolation/peers.sql) next to the generated policies, and
# the user's membership they look up (the layer reads the project from its signed context).
"${psql[@]}" -d bench -f "$repo/bench-isolation/peers.sql" >/dev/null
"${psql[@]}" -d bench <<SQL
INSERT INTO user_project_roles (tenant_id, project_id, user_id, role)
  VALUES ('$tenant', '$project', '$user', 'owner');
VACUUM ANALYZE;
SQL
as_server "$PG_BIN/pg_ctl" -D "$work/data" stop >/dev/null

key="$(python3 -c "import hashlib,uuid;print(uuid.UUID(hashlib.md5(b'c1').hexdigest()))")"
columns="tenant_id, project_id, id, document_id, ordinal, content, token_count, embedding, created_at"
case "${TENANCY_OPERATION:-get}" in
    get) # Chunks::GET_IN_PROJECT_SQL
        get="SELECT $columns FROM chunks WHERE tenant_id = \$1 AND project_id = \$2 AND id = \$3 LIMIT 1"
        ;;
    update) # Chunks::UPDATE_SQL with only `content` set, as Chunks::update sends it
        get="UPDATE chunks SET content = CASE WHEN true THEN 'updated' ELSE content END WHERE tenant_id = \$1 AND project_id = \$2 AND id = \$3 RETURNING $columns"
        ;;
    *) die "TENANCY_OPERATION is get or update" ;;
esac
execute="EXECUTE get('$tenant', '$project', '$key')"
# What Tenancy::begin sends for an owner of the project (one role level per rank): the signed
# statement on a contract-3 database (a pad of 1024 bytes, PostgreSQL's default
# track_activity_query_size, as the runtime sends), contract 2's SET LOCAL otherwise.
# TENANCY_CONTEXT_STATEMENT overrides it, with TENANCY_MIGRATIONS, to measure another design
# (the report's before/after numbers: the migrations and runtime statement of older commits).
claims="$tenant;$user;{$project};{$project};{$project};{$project}"
if [ "$signed" = t ]; then
    default_context="$(python3 - "$key_hex" "$key_id" "$claims" <<'PY'
import hashlib, hmac, sys, time
secret, kid, claims = bytes.fromhex(sys.argv[1]), sys.argv[2], sys.argv[3]
body = f"{kid};{int(time.time()) + 10 * 365 * 86400};*;{claims}"
mac = hmac.new(secret, b"token;" + body.encode(), hashlib.sha256).hexdigest()
print(f"BEGIN; /*{'.' * 1024}*/ SELECT \"tenancy\".install_context('{mac}.{body}')")
PY
)"
else
    default_context="BEGIN; SET LOCAL tenancy.context = '$claims'"
fi
context="${TENANCY_CONTEXT_STATEMENT:-$default_context}"

instructions() { # name setup body count -> exec_simple_query instructions
    local name="$1" setup="$2" body="$3" count="$4" input="$work/$1.$4.sql" out="$work/$1.$4.out"
    { printf '%s\n' "$setup"; for _ in $(seq "$count"); do printf '%s\n' "$body"; done; } >"$input"
    chmod 644 "$input"
    as_server valgrind --tool=callgrind --callgrind-out-file="$out" \
        "$PG_BIN/postgres" --single -D "$work/data" bench <"$input" >"$work/$1.$4.log" 2>&1
    if [ "$(grep -c "$key" "$work/$1.$4.log")" -lt "$count" ]; then
        die "$name: the get did not return its row (see $work/$1.$4.log)"
    fi
    callgrind_annotate --inclusive=yes "$out" 2>/dev/null |
        awk '/exec_simple_query/ { gsub(",", "", $1); print $1; exit }'
}
per_transaction() { # name setup body
    local few many
    few="$(instructions "$1" "$2" "$3" 10)"
    many="$(instructions "$1" "$2" "$3" $((10 + reps)))"
    echo $(((many - few) / reps))
}

plain="$(per_transaction plain "PREPARE get(uuid, uuid, uuid) AS $get" "BEGIN
$execute
COMMIT")"
with_context="$(per_transaction context "PREPARE get(uuid, uuid, uuid) AS $get" "$context
$execute
COMMIT")"
layer="$(per_transaction layer "SET ROLE tenancy_app
PREPARE get(uuid, uuid, uuid) AS $get" "$context
$execute
COMMIT")"
# Peers (issue 22): Supabase-style policies with the claims set in the transaction-opening
# query, helpers called directly (naive) or wrapped as (SELECT helper()); PostgREST: the
# wrapped policies, the claims installed by a separate prepared set_config statement.
claims_json="{\"sub\":\"$user\",\"role\":\"authenticated\",\"app_metadata\":{\"tenant_id\":\"$tenant\"}}"
peer_begin="BEGIN; SELECT pg_catalog.set_config('request.jwt.claims', '$claims_json', true)"
naive="$(per_transaction naive "SET ROLE peer_naive
PREPARE get(uuid, uuid, uuid) AS $get" "$peer_begin
$execute
COMMIT")"
wrapped="$(per_transaction wrapped "SET ROLE peer_wrapped
PREPARE get(uuid, uuid, uuid) AS $get" "$peer_begin
$execute
COMMIT")"
postgrest="$(per_transaction postgrest "SET ROLE peer_wrapped
PREPARE get(uuid, uuid, uuid) AS $get
PREPARE claims(text) AS SELECT pg_catalog.set_config('request.jwt.claims', \$1, true)" "BEGIN
EXECUTE claims('$claims_json')
$execute
COMMIT")"
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2fx", a / b }'; }
if [ "$signed" = t ]; then design="contract 3 (signed)"; else design="contract 2 (SET LOCAL)"; fi
[ -z "${TENANCY_CONTEXT_STATEMENT:-}" ] || design="$design, TENANCY_CONTEXT_STATEMENT"
echo "| variant (one ${TENANCY_OPERATION:-get}-by-key transaction, $reps repetitions; $design) | server instructions | vs plain |"
echo "|---|---:|---:|"
echo "| plain: superuser, BEGIN + ${TENANCY_OPERATION:-get} + COMMIT | $plain | 1.00x |"
echo "| + context statement (superuser) | $with_context | $(ratio "$with_context" "$plain") |"
echo "| full layer: application role, context + ${TENANCY_OPERATION:-get} under row-level security | $layer | $(ratio "$layer" "$plain") |"
echo "| Supabase naive: peer_naive, claims in the BEGIN query, helpers called directly | $naive | $(ratio "$naive" "$plain") |"
echo "| Supabase wrapped: peer_wrapped, claims in the BEGIN query, (SELECT helper()) | $wrapped | $(ratio "$wrapped" "$plain") |"
echo "| PostgREST: peer_wrapped, claims by a separate set_config statement | $postgrest | $(ratio "$postgrest" "$plain") |"
