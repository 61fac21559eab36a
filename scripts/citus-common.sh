# Shared by scripts/citus-up and scripts/citus-down (sourced, not executed).
# Expects $repo. The 3-node Citus cluster (coordinator + 2 workers, Debian PostgreSQL 15) is
# started from the prebuilt Citus + pgvector of the shared folder (its README); nothing of it is
# copied into this repository (Citus is AGPL-3.0).

CITUS_PORT="${TENANCY_CITUS_PORT:-9700}"
LOCK_FILE="/tmp/tenancy-citus-$CITUS_PORT.lock"

log() { echo "$(basename "$0"): $*" >&2; }
die() { log "error: $*"; exit 1; }

# The shared build: TENANCY_CITUS_BUILD, else ../shared/citus-pg15 next to the checkout, else
# /work/shared/citus-pg15.
find_build() {
    local dir
    for dir in "${TENANCY_CITUS_BUILD:-}" "$repo/../shared/citus-pg15" /work/shared/citus-pg15; do
        if [ -n "$dir" ] && [ -x "$dir/cluster.sh" ] && [ -f "$dir/install.sh" ]; then
            CITUS_BUILD="$(cd "$dir" && pwd -P)"
            return 0
        fi
    done
    return 1
}

take_lock() {
    exec 8>"$LOCK_FILE"
    flock -w 300 8 || die "timed out waiting for $LOCK_FILE (another citus-up or citus-down)"
}
