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
# The monitors' membership topic: one partition per shard (group mode, #15).
MONITOR_SHARDS_TOPIC=${PINGPIPE_MONITOR_SHARDS_TOPIC:-pingpipe.monitor-shards}
MONITOR_SHARDS=${PINGPIPE_MONITOR_SHARDS:-64}

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
  # Plain on loopback: with TLS (sslmode=prefer, the driver's default, now that the cluster
  # offers it) the ingest benchmark fell from ~56k to ~28k rows/s, the machine half idle —
  # waiting on round trips, not computing. TLS is for networks: see the README.
  DATABASE_URL="postgres://pingpipe:$(cat "$STATE_DIR/secrets/postgres_password")@127.0.0.1:$PG_PORT/pingpipe?sslmode=disable"
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

# What cargo needs beyond Rust: librdkafka is built here against the system's OpenSSL (TLS and
# SASL/SCRAM to the broker), found with pkg-config.
cargo_deps() {
  apt_install build-essential pkg-config libssl-dev
}

# Waits until "$@" succeeds, at most $1 seconds; returns 1 on timeout.
wait_for() {
  local deadline=$(( $(date +%s) + $1 )); shift
  until "$@" >/dev/null 2>&1; do
    [ "$(date +%s)" -ge "$deadline" ] && return 1
    sleep 0.5
  done
}

# pid_is PID EXPECTED...: true when process PID is running with every EXPECTED among its
# arguments (/proc/PID/cmdline). An EXPECTED without a slash also matches an argument's last path
# component, so a binary is recognised whichever directory it was started from. A pid alone
# proves nothing: once our process has exited the kernel may give its number to any other
# program, and `kill` would then hit that one. A zombie has an empty command line: not running.
pid_is() {
  local pid=$1 want arg found; shift
  [[ $pid =~ ^[0-9]+$ ]] || return 1
  local args=()
  mapfile -d '' -t args 2>/dev/null <"/proc/$pid/cmdline" || return 1
  [ ${#args[@]} -gt 0 ] || return 1
  for want in "$@"; do
    found=0
    for arg in "${args[@]}"; do
      if [ "$arg" = "$want" ] || { [[ $want != */* ]] && [ "${arg##*/}" = "$want" ]; }; then
        found=1; break
      fi
    done
    [ "$found" = 1 ] || return 1
  done
}

# The command line of process $1, arguments joined by spaces, cut at 100 characters (for logs).
cmdline_of() {
  { tr '\0\n' '  ' 2>/dev/null <"/proc/$1/cmdline" || true; } | sed 's/ $//' | cut -c1-100
}

# pid_alive PIDFILE EXPECTED...: true when pid file PIDFILE names a running process whose command
# line has every EXPECTED (see pid_is). Otherwise the pid file is stale: it is removed (with a
# word when its pid now belongs to another program) and nothing is signalled.
pid_alive() {
  local pidfile=$1 pid cmd; shift
  [ -f "$pidfile" ] || return 1
  pid=$(cat "$pidfile")
  pid_is "$pid" "$@" && return 0
  cmd=
  [[ ! $pid =~ ^[0-9]+$ ]] || cmd=$(cmdline_of "$pid")
  [ -z "$cmd" ] || log "$pidfile names pid $pid, which is now another program ($cmd): stale, removed"
  rm -f "$pidfile"
  return 1
}

# stop_pid PIDFILE GRACE EXPECTED...: stops the process of pid file PIDFILE if it is still the
# expected one (see pid_alive): SIGTERM, then SIGKILL after GRACE seconds; removes the pid file.
stop_pid() {
  local pidfile=$1 grace=$2 pid; shift 2
  pid_alive "$pidfile" "$@" || return 0
  pid=$(cat "$pidfile")
  kill -TERM "$pid" 2>/dev/null || true
  # The same check while waiting: the number may pass to another program as soon as ours exits.
  if ! wait_for "$grace" pid_gone "$pid" "$@"; then
    log "pid $pid did not stop within ${grace}s; killing it"
    ! pid_is "$pid" "$@" || kill -KILL "$pid" 2>/dev/null || true
  fi
  rm -f "$pidfile"
}

pid_gone() { ! pid_is "$@"; }
