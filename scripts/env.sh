# Sourced by every script: where state lives, which ports the local stack uses, and the
# connection settings of whatever stack is in use. Every value can be overridden from the
# environment; DATABASE_URL / KAFKA_BOOTSTRAP_SERVERS set by the caller mean "use that one,
# start nothing of that kind".

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
export ROOT

# All state of the local stack: one git-ignored folder (`make clean` removes it).
STATE_DIR=${PINGPIPE_STATE_DIR:-$ROOT/.pingpipe}
# Downloaded Kafka jars and the cargo target dir live outside the clone, shared by clones.
CACHE_DIR=${PINGPIPE_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/pingpipe}
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$CACHE_DIR/target}

PG_PORT=${PINGPIPE_PG_PORT:-54329}
KAFKA_PORT=${PINGPIPE_KAFKA_PORT:-9092}
KAFKA_CONTROLLER_PORT=${PINGPIPE_KAFKA_CONTROLLER_PORT:-9093}
KAFKA_VERSION=4.1.2
KAFKA_HEAP=${PINGPIPE_KAFKA_HEAP:-768m}
RESULTS_TOPIC=${PINGPIPE_RESULTS_TOPIC:-pingpipe.results}
RESULTS_PARTITIONS=${PINGPIPE_RESULTS_PARTITIONS:-6}

# Remember whether the caller brought their own services, before we fill the variables in; the
# answer (1 or 0) is exported so scripts started from this one keep it.
if [ -z "${PINGPIPE_EXTERNAL_DATABASE+set}" ]; then
  PINGPIPE_EXTERNAL_DATABASE=$([ -n "${DATABASE_URL:-}" ] && echo 1 || echo 0)
fi
if [ -z "${PINGPIPE_EXTERNAL_KAFKA+set}" ]; then
  PINGPIPE_EXTERNAL_KAFKA=$([ -n "${KAFKA_BOOTSTRAP_SERVERS:-}" ] && echo 1 || echo 0)
fi
export PINGPIPE_EXTERNAL_DATABASE PINGPIPE_EXTERNAL_KAFKA
EXTERNAL_DATABASE=$PINGPIPE_EXTERNAL_DATABASE
EXTERNAL_KAFKA=$PINGPIPE_EXTERNAL_KAFKA

if [ "$EXTERNAL_DATABASE" = 0 ] && [ -f "$STATE_DIR/secrets/postgres_password" ]; then
  DATABASE_URL="postgres://pingpipe:$(cat "$STATE_DIR/secrets/postgres_password")@127.0.0.1:$PG_PORT/pingpipe"
  export DATABASE_URL
fi
export KAFKA_BOOTSTRAP_SERVERS=${KAFKA_BOOTSTRAP_SERVERS:-127.0.0.1:$KAFKA_PORT}

log() { printf '%s %s\n' "$(date -u +%H:%M:%S)" "$*" >&2; }
die() { log "error: $*"; exit 1; }

# Runs a command as root: directly when we are root, through sudo otherwise.
as_root() {
  if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi
}

# Installs Debian packages that are missing (the apt lists are refreshed once per call).
apt_install() {
  local missing=()
  for pkg in "$@"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' || missing+=("$pkg")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  log "installing Debian packages: ${missing[*]}"
  as_root apt-get update -q >/dev/null
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${missing[@]}" >/dev/null
}

# Waits until "$@" succeeds, at most $1 seconds; returns 1 on timeout.
wait_for() {
  local deadline=$(( $(date +%s) + $1 )); shift
  until "$@" >/dev/null 2>&1; do
    [ "$(date +%s)" -ge "$deadline" ] && return 1
    sleep 0.5
  done
}

# True when the process in pid file $1 is alive.
pid_alive() {
  [ -f "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null
}

# Stops the process in pid file $1: SIGTERM, then SIGKILL after $2 seconds.
stop_pid() {
  local pidfile=$1 grace=${2:-20} pid
  pid_alive "$pidfile" || { rm -f "$pidfile"; return 0; }
  pid=$(cat "$pidfile")
  kill -TERM "$pid" 2>/dev/null || true
  if ! wait_for "$grace" bash -c "! kill -0 $pid"; then
    log "pid $pid did not stop within ${grace}s; killing it"
    kill -KILL "$pid" 2>/dev/null || true
  fi
  rm -f "$pidfile"
}
