#!/usr/bin/env bash
# TLS to PostgreSQL (#17), from outside, with the real binaries and the local cluster (ssl=on, a
# CA of its own made by postgres.sh):
# - with `sslmode=verify-full&sslrootcert=<the cluster's CA>` the migration CLI migrates a fresh
#   database, and the API, the ingest worker, the notifier and the monitor (with the local
#   Kafka) become ready on it — over TLS (pg_stat_ssl says so for their connections, and none of
#   their output shows the database's password);
# - with another CA (made here), every binary — the monitor's too — refuses at once: it exits
#   non-zero within seconds and says the certificate is not trusted; likewise a host name the
#   certificate does not name (`localhost`: it names 127.0.0.1 only), and an sslrootcert file
#   that does not exist.
set -euo pipefail
source "$(dirname "$0")/env.sh"

if [ "$EXTERNAL_DATABASE" = 1 ]; then
  echo "skipped: check-postgres-tls: DATABASE_URL is set, this PostgreSQL is not ours" >&2
  [ -n "${PINGPIPE_SKIPPED_LOG:-}" ] && echo "check-postgres-tls: external PostgreSQL" >>"$PINGPIPE_SKIPPED_LOG"
  exit 0
fi
bin_dir=${PINGPIPE_BIN_DIR:-$CARGO_TARGET_DIR/debug}
ca=$(readlink -f "$STATE_DIR/postgres")/tls/ca.pem
[ -s "$ca" ] || die "no CA at $ca: postgres.sh up makes it"

work=$(mktemp -d)
pids=()
db=pingpipe_test_tls_$$
export PGPASSWORD; PGPASSWORD=$(cat "$STATE_DIR/secrets/postgres_superuser_password")
admin() { psql -X -q -w -h 127.0.0.1 -p "$PG_PORT" -U postgres -d postgres -v ON_ERROR_STOP=1 "$@"; }
cleanup() {
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  admin -c "DROP DATABASE IF EXISTS $db WITH (FORCE)" >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT

openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 1 \
  -subj "/CN=Some other CA" -keyout "$work/other.key" -out "$work/other-ca.pem" 2>/dev/null
[ "$(admin -At -c 'SHOW ssl')" = on ] \
  || die "the local PostgreSQL runs without TLS (started before postgres.sh turned it on): make down && make up"
admin -c "CREATE DATABASE $db OWNER pingpipe"
base=${DATABASE_URL%/*}/$db
good="$base?sslmode=verify-full&sslrootcert=$ca"
fail=0
bad() { log "FAILED: $*"; fail=1; }

# The migration CLI: migrates over TLS.
DATABASE_URL=$good "$bin_dir/migration" up >"$work/migrate.log" 2>&1 \
  || bad "migration up with verify-full: $(tail -n 3 "$work/migrate.log")"

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
ready() { [ "$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 "http://$1/readyz")" = 200 ]; }

# The long-running binaries, each with the variables it needs; $1 the name, $2 its address.
run() {
  local name=$1 addr=$2; shift 2
  case $name in
    pingpipe-api) exec env PINGPIPE_API_ADDR="$addr" PINGPIPE_API_TOKENS="tls-check-token-0123456789abcdef" "$@" "$bin_dir/$name" ;;
    pingpipe-ingest) exec env "$@" "$bin_dir/$name" --listen "$addr" --topic "$READINESS_TOPIC_TLS" --group "tls-check-$$" ;;
    pingpipe-notify) exec env PINGPIPE_NOTIFY_ADDR="$addr" "$@" "$bin_dir/$name" ;;
    # Fixed mode, an instance of its own: one transactional producer on the local Kafka, no
    # group; the database has no target, so nothing is published.
    pingpipe-monitor) exec env PINGPIPE_MONITOR_ADDR="$addr" PINGPIPE_MONITOR_INSTANCE="tls-check-$$" \
      PINGPIPE_MONITOR_SHARD=0/1 "$@" "$bin_dir/$name" ;;
  esac
}
READINESS_TOPIC_TLS=pingpipe.readiness

# Ready over TLS with the right CA.
for name in pingpipe-api pingpipe-ingest pingpipe-notify pingpipe-monitor; do
  addr=127.0.0.1:$(free_port)
  run "$name" "$addr" DATABASE_URL="$good" >"$work/$name.log" 2>&1 &
  pids+=($!)
  if wait_for 60 ready "$addr"; then
    log "$name is ready on PostgreSQL with verify-full"
  else
    bad "$name did not become ready with verify-full: $(grep -v INFO "$work/$name.log" | tail -n 3)"
  fi
done
tls_connections=$(admin -At -c "SELECT count(*) FROM pg_stat_ssl s JOIN pg_stat_activity a USING (pid) WHERE a.datname = '$db' AND s.ssl")
plain_connections=$(admin -At -c "SELECT count(*) FROM pg_stat_ssl s JOIN pg_stat_activity a USING (pid) WHERE a.datname = '$db' AND NOT s.ssl")
if [ "$tls_connections" -ge 4 ] && [ "$plain_connections" = 0 ]; then
  log "their $tls_connections connections use TLS, none plain"
else
  bad "connections to $db: $tls_connections over TLS, $plain_connections plain"
fi
for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; done
pids=()
pg_pw=$(cat "$STATE_DIR/secrets/postgres_password")
no_password() { # log
  if grep -qF -- "$pg_pw" "$1"; then bad "the database's password shows in $(basename "$1")"; fi
}
for log_file in "$work"/*.log; do no_password "$log_file"; done

# Refused at once, with a clear word, by every binary.
refused() {
  local what=$1 url=$2 expect=$3 name addr rc
  for name in migration pingpipe-api pingpipe-ingest pingpipe-notify pingpipe-monitor; do
    addr=127.0.0.1:$(free_port)
    set +e
    if [ "$name" = migration ]; then
      DATABASE_URL=$url timeout 30 "$bin_dir/migration" status >"$work/refused.log" 2>&1
    else
      run "$name" "$addr" DATABASE_URL="$url" >"$work/refused.log" 2>&1 </dev/null &
      local pid=$! waited=0
      while kill -0 "$pid" 2>/dev/null && [ "$waited" -lt 300 ]; do sleep 0.1; waited=$((waited + 1)); done
      if kill -0 "$pid" 2>/dev/null; then kill -KILL "$pid"; fi
      wait "$pid"
    fi
    rc=$?
    set -e
    no_password "$work/refused.log"
    if [ "$rc" = 0 ] || [ "$rc" = 137 ] || ! grep -q "$expect" "$work/refused.log"; then
      bad "$name with $what: exit $rc, $(grep -v INFO "$work/refused.log" | tail -n 2)"
    else
      log "$name refuses $what (exit $rc): $(grep -o ".\{0,60\}$expect.\{0,40\}" "$work/refused.log" | head -n 1)"
    fi
  done
}
refused "another CA" "$base?sslmode=verify-full&sslrootcert=$work/other-ca.pem" "UnknownIssuer"
refused "a host the certificate does not name" \
  "${base/127.0.0.1/localhost}?sslmode=verify-full&sslrootcert=$ca" "not valid for name"
refused "a missing sslrootcert" "$base?sslmode=verify-full&sslrootcert=$work/none.pem" "none.pem"
exit "$fail"
