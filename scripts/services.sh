#!/usr/bin/env bash
# Pingpipe's own processes (API, ingest worker, monitor, notification worker), started in the
# background by `make up`, and the build they run from, which PINGPIPE_PROFILE picks: `debug` (the
# default) is cargo's debug build with the dashboard of frontend/public; `release` is dist/ as
# `make release` (scripts/release.sh) makes it: optimised binaries, the dashboard's copy there.
# `build` makes the profile's binaries, `migrate` applies the migrations with its migration CLI,
# `profile` prints which build runs. `down` and `status` find the services whatever they run from.
# Usage: services.sh build|migrate|up|down|status|profile
set -euo pipefail
source "$(dirname "$0")/env.sh"

RUN_DIR=$STATE_DIR/run
LOG_DIR=$STATE_DIR/logs
# PINGPIPE_BIN_DIR overrides the profile's binaries, as for the browser tests
# (scripts/test-services.sh runs copies of the debug binaries that it can change).
PROFILE=${PINGPIPE_PROFILE:-debug}
case "$PROFILE" in
  debug)
    BIN=${PINGPIPE_BIN_DIR:-$CARGO_TARGET_DIR/debug}
    MIGRATE=$BIN/migration
    FRONTEND_DIR=$ROOT/frontend/public
    BUILD_HINT="build them with \`cargo build --bins\` (or \`make up\`)" ;;
  release)
    # PINGPIPE_DIST_DIR: another tree laid out as dist/ (test-services.sh makes one).
    DIST=$(realpath -m -- "${PINGPIPE_DIST_DIR:-$ROOT/dist}")
    BIN=${PINGPIPE_BIN_DIR:-$DIST/bin}
    MIGRATE=$BIN/pingpipe-migrate
    FRONTEND_DIR=$DIST/share/pingpipe/frontend
    BUILD_HINT="build them with \`make release\` (or \`PINGPIPE_PROFILE=release make up\`)" ;;
  *) die "PINGPIPE_PROFILE=$PROFILE is not a profile: debug (the default: cargo's debug build) or release (dist/ of \`make release\`)" ;;
esac
MONITOR_ADDR=${PINGPIPE_MONITOR_ADDR:-127.0.0.1:9101}
INGEST_ADDR=${PINGPIPE_INGEST_ADDR:-127.0.0.1:9102}
NOTIFY_ADDR=${PINGPIPE_NOTIFY_ADDR:-127.0.0.1:9103}
API_ADDR=${PINGPIPE_API_ADDR:-127.0.0.1:8080}
SERVICES="api ingest monitor notify"

# The identity of an executable: its content, whatever cargo did to its mtime.
identity() {
  sha256sum <"$1" | cut -d' ' -f1
}

# start NAME READY_URL COMMAND...: runs COMMAND detached, logs to $LOG_DIR/NAME.log, waits for
# READY_URL. A service already running from the same binary is left alone; one whose binary
# changed since it started (a rebuild after a code change) is stopped and started again, so that
# `make up` always runs what was just built. The identity of the binary it started from is kept
# beside its pid file ($RUN_DIR/NAME.sha256); the pid file must name a running pingpipe-NAME (see
# pid_alive in env.sh).
start() {
  local name=$1 ready=$2; shift 2
  local pidfile=$RUN_DIR/$name.pid idfile=$RUN_DIR/$name.sha256 exe=$1 current
  mkdir -p "$RUN_DIR" "$LOG_DIR"
  [ -x "$exe" ] || die "$exe is missing: $BUILD_HINT"
  current=$(identity "$exe")
  if pid_alive "$pidfile" "pingpipe-$name"; then
    if [ "$(cat "$idfile" 2>/dev/null)" = "$current" ]; then
      log "$name already running (pid $(cat "$pidfile"))"
    else
      log "$name runs another build than $exe (changed since it started); restarting it"
      stop_pid "$pidfile" 30 "pingpipe-$name"
    fi
  fi
  if [ ! -f "$pidfile" ]; then
    log "starting $name"
    echo "$current" >"$idfile"
    setsid "$@" >>"$LOG_DIR/$name.log" 2>&1 </dev/null &
    echo $! >"$pidfile"
  fi
  wait_for 60 curl -fsS "$ready" || die "$name is not ready at $ready within 60s; see $LOG_DIR/$name.log"
}

# The profile's binaries. Cargo's own progress, not --quiet: a first build takes minutes, and
# silence looks like a hang.
build() {
  if [ "$PROFILE" = release ]; then
    "$ROOT/scripts/release.sh"
    return
  fi
  cargo_deps
  log "building the binaries (cargo, target dir $CARGO_TARGET_DIR)"
  cargo build --manifest-path "$ROOT/Cargo.toml" --workspace --bins
  "$ROOT/scripts/frontend.sh" deps
}

migrate() {
  [ -x "$MIGRATE" ] || die "$MIGRATE is missing: $BUILD_HINT"
  log "migrating the database ($MIGRATE)"
  "$MIGRATE" up >&2 || die "migrations failed"
}

up() {
  command -v curl >/dev/null || apt_install curl
  # A token for mutations, generated once, unless the caller configured their own.
  if [ -z "${PINGPIPE_API_TOKENS:-}" ]; then
    local tokenfile=$STATE_DIR/secrets/api_token
    mkdir -p "$STATE_DIR/secrets"
    [ -s "$tokenfile" ] || (umask 077; head -c 24 /dev/urandom | base64 | tr '+/' '-_' >"$tokenfile")
    PINGPIPE_API_TOKENS=$(cat "$tokenfile")
    export PINGPIPE_API_TOKENS
  fi
  PINGPIPE_API_ADDR=$API_ADDR PINGPIPE_API_FRONTEND_DIR=${PINGPIPE_API_FRONTEND_DIR:-$FRONTEND_DIR} \
    start api "http://$API_ADDR/readyz" "$BIN/pingpipe-api"
  PINGPIPE_INGEST_ADDR=$INGEST_ADDR start ingest "http://$INGEST_ADDR/readyz" "$BIN/pingpipe-ingest" --instance local
  PINGPIPE_MONITOR_ADDR=$MONITOR_ADDR start monitor "http://$MONITOR_ADDR/readyz" "$BIN/pingpipe-monitor"
  # Messages link to the dashboard's address.
  PINGPIPE_NOTIFY_ADDR=$NOTIFY_ADDR PINGPIPE_PUBLIC_URL=${PINGPIPE_PUBLIC_URL:-http://$API_ADDR} \
    start notify "http://$NOTIFY_ADDR/readyz" "$BIN/pingpipe-notify"
}

down() {
  # The monitor first, so that the ingest worker can still store its last results.
  for name in monitor ingest notify api; do
    if pid_alive "$RUN_DIR/$name.pid" "pingpipe-$name"; then
      log "stopping $name"
      stop_pid "$RUN_DIR/$name.pid" 30 "pingpipe-$name"
    fi
    rm -f "$RUN_DIR/$name.sha256"
  done
}

status() {
  local rc=0
  for name in $SERVICES; do
    if pid_alive "$RUN_DIR/$name.pid" "pingpipe-$name"; then
      # The binary it runs: "(deleted)" after it, when a build has replaced it since.
      echo "$name: running (pid $(cat "$RUN_DIR/$name.pid"), $(readlink "/proc/$(cat "$RUN_DIR/$name.pid")/exe" 2>/dev/null || echo "binary unknown"), log $LOG_DIR/$name.log)"
    else
      echo "$name: stopped"; rc=1
    fi
  done
  return $rc
}

case "${1:-}" in
  build) build ;;
  migrate) migrate ;;
  up) up ;;
  down) down ;;
  status) status ;;
  profile) echo "$PROFILE (binaries from $BIN)" ;;
  *) echo "usage: $0 build|migrate|up|down|status|profile" >&2; exit 2 ;;
esac
