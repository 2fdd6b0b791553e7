#!/usr/bin/env bash
# Pingpipe's own processes, started in the background by `make up` from the debug build.
# Usage: services.sh up|down|status
set -euo pipefail
source "$(dirname "$0")/env.sh"

RUN_DIR=$STATE_DIR/run
LOG_DIR=$STATE_DIR/logs
BIN=$CARGO_TARGET_DIR/debug
MONITOR_ADDR=${PINGPIPE_MONITOR_ADDR:-127.0.0.1:9101}
INGEST_ADDR=${PINGPIPE_INGEST_ADDR:-127.0.0.1:9102}
API_ADDR=${PINGPIPE_API_ADDR:-127.0.0.1:8080}
SERVICES="api ingest monitor"

# start NAME READY_URL COMMAND...: runs COMMAND detached, logs to $LOG_DIR/NAME.log, waits for READY_URL.
start() {
  local name=$1 ready=$2; shift 2
  local pidfile=$RUN_DIR/$name.pid
  mkdir -p "$RUN_DIR" "$LOG_DIR"
  if pid_alive "$pidfile"; then
    log "$name already running (pid $(cat "$pidfile"))"
  else
    log "starting $name"
    setsid "$@" >>"$LOG_DIR/$name.log" 2>&1 </dev/null &
    echo $! >"$pidfile"
  fi
  wait_for 60 curl -fsS "$ready" || die "$name is not ready at $ready within 60s; see $LOG_DIR/$name.log"
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
  PINGPIPE_API_ADDR=$API_ADDR PINGPIPE_API_FRONTEND_DIR=${PINGPIPE_API_FRONTEND_DIR:-$ROOT/frontend/public} \
    start api "http://$API_ADDR/readyz" "$BIN/pingpipe-api"
  PINGPIPE_INGEST_ADDR=$INGEST_ADDR start ingest "http://$INGEST_ADDR/readyz" "$BIN/pingpipe-ingest" --instance local
  PINGPIPE_MONITOR_ADDR=$MONITOR_ADDR start monitor "http://$MONITOR_ADDR/readyz" "$BIN/pingpipe-monitor"
}

down() {
  # The monitor first, so that the ingest worker can still store its last results.
  for name in monitor ingest api; do
    if pid_alive "$RUN_DIR/$name.pid"; then
      log "stopping $name"
      stop_pid "$RUN_DIR/$name.pid" 30
    fi
  done
}

status() {
  local rc=0
  # The monitor first, so that the ingest worker can still store its last results.
  for name in $SERVICES; do
    if pid_alive "$RUN_DIR/$name.pid"; then
      echo "$name: running (pid $(cat "$RUN_DIR/$name.pid"), log $LOG_DIR/$name.log)"
    else
      echo "$name: stopped"; rc=1
    fi
  done
  return $rc
}

case "${1:-}" in
  up) up ;;
  down) down ;;
  status) status ;;
  *) echo "usage: $0 up|down|status" >&2; exit 2 ;;
esac
