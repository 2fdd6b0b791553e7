#!/usr/bin/env bash
# Test of services.sh, which `make up` runs after building: a second `up` with nothing changed
# leaves every service running as it is; after one binary changes, `up` restarts exactly that
# service; a pid file whose pid belongs to another program is stale (that program is neither
# taken for a service nor signalled); PINGPIPE_PROFILE=release runs the binaries and the dashboard
# of a release tree (PINGPIPE_DIST_DIR), its migration CLI named pingpipe-migrate. Run by
# `make test` on its PostgreSQL and Kafka; by hand: `make up`, then `scripts/test-services.sh`.
#
# It runs a stack of its own beside whatever `make up` started, and disturbs nothing of it: its
# own state dir (pid files, logs) in a temporary folder, copies of the debug binaries (so that it
# can change one, and a concurrent cargo build changes none), free loopback ports, a fresh
# database and topic, its own consumer group and monitor instance (the monitor's
# transactional.id, which would otherwise fence the monitor of `make up`). Everything it started
# is stopped, and its folder and database removed, however it ends.
set -euo pipefail
source "$(dirname "$0")/env.sh"

[ -n "${DATABASE_URL:-}" ] || die "DATABASE_URL is not set: run this through \`make test\`, or \`make up\` first"
for bin in pingpipe-api pingpipe-ingest pingpipe-monitor pingpipe-notify migration; do
  [ -x "$CARGO_TARGET_DIR/debug/$bin" ] || die "$CARGO_TARGET_DIR/debug/$bin is missing: build the binaries first"
done
command -v psql >/dev/null || die "psql is missing (Debian's postgresql-client)"

WORK=$(mktemp -d "${TMPDIR:-/tmp}/pingpipe-test-services.XXXXXX")
id=$(basename "$WORK" | cut -d. -f2 | tr '[:upper:]' '[:lower:]')
db=pingpipe_svc_$id
admin_url=$DATABASE_URL
decoy=

# Everything this test started, whatever state it got to. Only our own processes: those of our
# pid files (services.sh checks that each pid still runs its pingpipe binary) and the decoy, by
# its pid.
cleanup() {
  local rc=$?
  # The state dir named here, not inherited: never the one of `make up`, whenever this runs.
  PINGPIPE_STATE_DIR=$WORK/state "$ROOT/scripts/services.sh" down >/dev/null 2>&1 || true
  [ -z "$decoy" ] || kill "$decoy" 2>/dev/null || true
  psql "$admin_url" -q -c "DROP DATABASE IF EXISTS $db WITH (FORCE)" >/dev/null 2>&1 || true
  if [ "$rc" != 0 ] && [ -d "$WORK/state/logs" ]; then
    log "the services' logs, for the failure above:"
    tail -n 20 "$WORK"/state/logs/*.log >&2 || true
  fi
  rm -rf "$WORK"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

fail() { log "FAILED: $*"; exit 1; }

# free_port TAKEN...: a loopback port nothing listens on (bash connects to it: refused means
# free), none of TAKEN.
free_port() {
  local port
  while :; do
    port=$((20000 + RANDOM % 30000))
    [[ " $* " == *" $port "* ]] && continue
    (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null || { echo "$port"; return; }
  done
}

# The stack: its own database, topic, state, binaries, ports, group and monitor instance.
psql "$admin_url" -q -c "CREATE DATABASE $db" >/dev/null
DATABASE_URL=$(printf '%s' "$admin_url" | sed -E "s#/[^/?]*(\?|\$)#/$db\1#")
export DATABASE_URL
"$CARGO_TARGET_DIR/debug/migration" up >/dev/null
export PINGPIPE_RESULTS_TOPIC=pingpipe.test-services-$id
"$ROOT/scripts/kafka.sh" create-topic "$PINGPIPE_RESULTS_TOPIC" 1
export PINGPIPE_STATE_DIR=$WORK/state PINGPIPE_BIN_DIR=$WORK/bin
mkdir -p "$PINGPIPE_BIN_DIR"
for bin in pingpipe-api pingpipe-ingest pingpipe-monitor pingpipe-notify; do
  cp "$CARGO_TARGET_DIR/debug/$bin" "$PINGPIPE_BIN_DIR/"
done
api_port=$(free_port); ingest_port=$(free_port "$api_port"); monitor_port=$(free_port "$api_port" "$ingest_port")
notify_port=$(free_port "$api_port" "$ingest_port" "$monitor_port")
export PINGPIPE_API_ADDR=127.0.0.1:$api_port PINGPIPE_INGEST_ADDR=127.0.0.1:$ingest_port
export PINGPIPE_MONITOR_ADDR=127.0.0.1:$monitor_port PINGPIPE_NOTIFY_ADDR=127.0.0.1:$notify_port
export PINGPIPE_API_TOKENS=test-services-$id
export PINGPIPE_INGEST_GROUP=pingpipe-test-services-$id
export PINGPIPE_MONITOR_INSTANCE=test-services-$id
RUN=$PINGPIPE_STATE_DIR/run
mkdir -p "$RUN"

pid_of() { cat "$RUN/$1.pid"; }

# up: runs `services.sh up`, keeping what it said in $WORK/up.log.
up() {
  "$ROOT/scripts/services.sh" up 2>"$WORK/up.log" || { cat "$WORK/up.log" >&2; fail "services.sh up failed"; }
}

# A program that is not ours, whose pid a stale pid file names (as after a reboot).
sleep 120 &
decoy=$!
wait_for 10 pid_is "$decoy" sleep || fail "the decoy did not start"

log "a pid file naming another program is stale: up starts the service, the program lives"
echo "$decoy" >"$RUN/api.pid"
up
kill -0 "$decoy" 2>/dev/null || fail "the program named by a stale pid file was signalled"
[ "$(pid_of api)" != "$decoy" ] || fail "a pid file naming another program was taken for the api"
grep -q "names pid $decoy, which is now another program" "$WORK/up.log" || fail "the stale pid file went unmentioned"
declare -A first=()
for name in api ingest monitor notify; do
  first[$name]=$(pid_of "$name")
  pid_is "${first[$name]}" "pingpipe-$name" || fail "$name is not running after up"
done

log "up with nothing changed: every service keeps running as it is"
up
for name in api ingest monitor notify; do
  [ "$(pid_of "$name")" = "${first[$name]}" ] || fail "$name was restarted although nothing changed"
  pid_is "${first[$name]}" "pingpipe-$name" || fail "$name stopped although nothing changed"
done
! grep -q "starting\|restarting" "$WORK/up.log" || fail "up with nothing changed started something: $(cat "$WORK/up.log")"

log "the ingest binary changes (replaced, as cargo does): up restarts the ingest worker alone"
new=$PINGPIPE_BIN_DIR/.pingpipe-ingest.new
cp "$PINGPIPE_BIN_DIR/pingpipe-ingest" "$new"
printf 'rebuilt\n' >>"$new" # trailing bytes: a different file that still runs
mv -f "$new" "$PINGPIPE_BIN_DIR/pingpipe-ingest"
up
ingest=$(pid_of ingest)
[ "$ingest" != "${first[ingest]}" ] || fail "the ingest worker was not restarted after its binary changed"
pid_is "$ingest" pingpipe-ingest || fail "the restarted ingest worker is not running"
pid_gone "${first[ingest]}" pingpipe-ingest || fail "the old ingest worker still runs"
cmp -s "/proc/$ingest/exe" "$PINGPIPE_BIN_DIR/pingpipe-ingest" || fail "the ingest worker does not run the new binary"
for name in api monitor notify; do
  [ "$(pid_of "$name")" = "${first[$name]}" ] || fail "$name was restarted although only the ingest binary changed"
done
grep -q "ingest runs another build" "$WORK/up.log" || fail "up did not say why it restarted the ingest worker"

log "down with a pid file naming another program: the services stop, the program lives"
"$ROOT/scripts/services.sh" down 2>/dev/null
for name in api monitor notify; do
  pid_gone "${first[$name]}" "pingpipe-$name" || fail "$name still runs after down"
done
pid_gone "$ingest" pingpipe-ingest || fail "ingest still runs after down"
echo "$decoy" >"$RUN/monitor.pid"
"$ROOT/scripts/services.sh" down 2>/dev/null
kill -0 "$decoy" 2>/dev/null || fail "down signalled the program named by a stale pid file"
[ ! -e "$RUN/monitor.pid" ] || fail "the stale pid file was not removed"
echo "$decoy" >"$RUN/ingest.pid"
if "$ROOT/scripts/services.sh" status >"$WORK/status.out" 2>/dev/null; then
  fail "status says running with no service running"
fi
grep -qx "ingest: stopped" "$WORK/status.out" || fail "status took another program for the ingest worker"
log "PINGPIPE_PROFILE=release: migrate and up run the release tree's binaries and dashboard"
# A tree laid out as `make release` makes dist/, of the debug binaries (an optimised build takes
# minutes): what is checked is that the release profile runs this tree, and nothing else.
"$ROOT/scripts/services.sh" down 2>/dev/null
dist=$WORK/dist
mkdir -p "$dist/bin" "$dist/share/pingpipe"
for bin in pingpipe-api pingpipe-ingest pingpipe-monitor pingpipe-notify; do
  cp "$CARGO_TARGET_DIR/debug/$bin" "$dist/bin/"
done
cp "$CARGO_TARGET_DIR/debug/migration" "$dist/bin/pingpipe-migrate"
cp -R "$ROOT/frontend/public" "$dist/share/pingpipe/frontend"
marker="<!-- the release tree of test-services $id -->"
printf '%s\n' "$marker" >>"$dist/share/pingpipe/frontend/index.html"
release() {
  env -u PINGPIPE_BIN_DIR -u PINGPIPE_API_FRONTEND_DIR PINGPIPE_PROFILE=release PINGPIPE_DIST_DIR="$dist" \
    "$ROOT/scripts/services.sh" "$@"
}
[ "$(release profile)" = "release (binaries from $dist/bin)" ] || fail "services.sh profile says $(release profile)"
release migrate 2>"$WORK/migrate.log" || { cat "$WORK/migrate.log" >&2; fail "migrate with the release profile failed"; }
grep -qF "$dist/bin/pingpipe-migrate" "$WORK/migrate.log" || fail "migrate did not run the tree's pingpipe-migrate: $(cat "$WORK/migrate.log")"
release up 2>"$WORK/up.log" || { cat "$WORK/up.log" >&2; fail "up with the release profile failed"; }
for name in api ingest monitor notify; do
  exe=$(readlink "/proc/$(pid_of "$name")/exe" || true)
  [ "$exe" = "$dist/bin/pingpipe-$name" ] || fail "$name runs ${exe:-nothing}, not $dist/bin/pingpipe-$name"
done
curl -fsS --max-time 5 "http://$PINGPIPE_API_ADDR/" | grep -qF "$marker" \
  || fail "the API does not serve the dashboard of the release tree"
release down 2>/dev/null
rm -rf "$dist/bin"
if release up 2>"$WORK/up.log"; then fail "up with the release profile and no binaries succeeded"; fi
grep -q "make release" "$WORK/up.log" || fail "up without release binaries did not say to run make release: $(cat "$WORK/up.log")"
log "services: restarts exactly what changed, pid files are checked, the release profile runs its tree"
