#!/usr/bin/env bash
# The local PostgreSQL: a cluster of our own in $STATE_DIR/postgres, on 127.0.0.1:$PG_PORT, with
# a `pingpipe` role (LOGIN CREATEDB, generated password) owning a `pingpipe` database.
# Usage: postgres.sh up|down|restart|status
set -euo pipefail
source "$(dirname "$0")/env.sh"

PG_DIR=$STATE_DIR/postgres
set_paths() {
  # Through the link, if there is one: the postgres user may not be able to walk $STATE_DIR.
  local real; real=$(readlink -f "$PG_DIR" 2>/dev/null || echo "$PG_DIR")
  PG_DATA=$real/data
  PG_SOCK=$real/run
  PG_LOG=$real/postgres.log
  PG_TLS=$real/tls
}
set_paths

# pg_ctl trusts postmaster.pid whenever a process with that number exists, and PostgreSQL refuses
# to start while it does: after a crash and a reboot, an unrelated program that got the number
# would be reported as our server, sent the stop signal, or block the start. Such a pid file is
# stale and goes (PostgreSQL clears one whose process is gone by itself). Only the program is
# checked, and only a readable command line counts: deleting the file of a live postmaster would
# let a second one start on the same data, so when in doubt the file stays.
forget_stale_pid() {
  local pidfile=$PG_DATA/postmaster.pid pid cmd
  [ -f "$pidfile" ] || return 0
  pid=$(head -n 1 "$pidfile")
  [[ $pid =~ ^[0-9]+$ ]] || return 0
  cmd=$(cmdline_of "$pid")
  [ -n "$cmd" ] || return 0
  pid_is "$pid" postgres && return 0
  log "$pidfile names pid $pid, which is now another program ($cmd): stale, removed"
  as_pg rm -f "$pidfile"
}

pg_bindir() {
  ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1
}

# PostgreSQL refuses to run as root: as root, its files belong to the `postgres` user.
# TLS for clients that ask for it (sslmode=require/verify-full): a CA of this cluster's own and
# a certificate for 127.0.0.1 (the address clients use; not `localhost`) signed by it, made once. Clients verify the server
# with sslrootcert=$PG_TLS/ca.pem (see the README's "TLS to PostgreSQL"); others connect as before.
make_tls() {
  [ -s "$PG_TLS/server.pem" ] && [ -s "$PG_TLS/ca.pem" ] && return 0
  command -v openssl >/dev/null || apt_install openssl
  local tmp; tmp=$(mktemp -d)
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 3650 \
    -subj "/CN=Pingpipe local PostgreSQL CA" -keyout "$tmp/ca.key" -out "$tmp/ca.pem" \
    -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null
  openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
    -subj "/CN=127.0.0.1" -keyout "$tmp/server.key" -out "$tmp/server.csr" 2>/dev/null
  printf '%s\n' "subjectAltName=IP:127.0.0.1" "basicConstraints=CA:FALSE" \
    "keyUsage=critical,digitalSignature" "extendedKeyUsage=serverAuth" >"$tmp/ext"
  openssl x509 -req -in "$tmp/server.csr" -CA "$tmp/ca.pem" -CAkey "$tmp/ca.key" -CAcreateserial \
    -days 3650 -extfile "$tmp/ext" -out "$tmp/server.pem" 2>/dev/null
  mkdir -p "$PG_TLS"
  # PostgreSQL refuses a key others can read; the CA's key is not kept.
  install -m 0644 "$tmp/ca.pem" "$tmp/server.pem" "$PG_TLS/"
  install -m 0600 "$tmp/server.key" "$PG_TLS/"
  if [ "$(id -u)" = 0 ]; then chown -R postgres:postgres "$PG_TLS"; fi
  rm -rf "$tmp"
}

as_pg() {
  if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

# The superuser's password: every connection, the local socket's included, authenticates with a
# password (scram-sha-256), so no local user or program reaches the superuser by the socket alone.
SUPERUSER_PWFILE=$STATE_DIR/secrets/postgres_superuser_password

psql_admin() {
  as_pg env PGPASSWORD="$(cat "$SUPERUSER_PWFILE")" \
    "$(pg_bindir)/psql" -X -q -w -v ON_ERROR_STOP=1 -h "$PG_SOCK" -p "$PG_PORT" -U postgres -d postgres "$@"
}

# A cluster made before passwords were required trusts the socket: give the superuser its
# password (while the socket still trusts) and switch every `local` line to scram-sha-256.
require_passwords() {
  local bin=$1 hba=$PG_DATA/pg_hba.conf
  as_pg grep -Eq '^local[[:space:]].*[[:space:]]trust[[:space:]]*$' "$hba" || return 0
  log "PostgreSQL: the local socket trusted every connection; requiring passwords from now on"
  as_pg "$bin/psql" -X -q -v ON_ERROR_STOP=1 -h "$PG_SOCK" -p "$PG_PORT" -U postgres -d postgres \
    -v pw="$(cat "$SUPERUSER_PWFILE")" <<'SQL'
SELECT format('ALTER ROLE postgres PASSWORD %L', :'pw') \gexec
SQL
  as_pg sed -i -E 's/^(local[[:space:]].*[[:space:]])trust[[:space:]]*$/\1scram-sha-256/' "$hba"
  as_pg "$bin/pg_ctl" -D "$PG_DATA" reload >/dev/null
}

# As root, the postgres user must reach the data dir. If a parent of the clone is closed to it,
# the cluster lives in a private folder under /var/tmp, linked from $STATE_DIR/postgres.
prepare_dir() {
  mkdir -p "$STATE_DIR/secrets"
  chmod 700 "$STATE_DIR/secrets"
  [ "$(id -u)" = 0 ] || { mkdir -p "$PG_DIR"; return; }
  if [ ! -e "$PG_DIR" ]; then
    mkdir -p "$PG_DIR"
    chown postgres: "$PG_DIR"
    if ! runuser -u postgres -- test -w "$PG_DIR"; then
      rmdir "$PG_DIR"
      # An unpredictable name, created new (0700, by mktemp): nobody can plant a link there
      # beforehand for the chown below to follow.
      local alt
      alt=$(mktemp -d /var/tmp/pingpipe-postgres.XXXXXXXXXX)
      chown postgres: "$alt"
      ln -s "$alt" "$PG_DIR"
      log "postgres cannot reach $STATE_DIR; its cluster lives in $alt (linked)"
    fi
  fi
}

up() {
  [ "$EXTERNAL_DATABASE" = 1 ] && { log "DATABASE_URL is set: using it, starting no PostgreSQL"; return; }
  [ -n "$(pg_bindir)" ] || apt_install postgresql
  local bin; bin=$(pg_bindir)
  [ -n "$bin" ] || die "PostgreSQL's server binaries are missing after installing postgresql"
  prepare_dir
  set_paths
  [ -s "$SUPERUSER_PWFILE" ] || (umask 077; head -c 18 /dev/urandom | base64 | tr '+/' '-_' >"$SUPERUSER_PWFILE")
  if [ ! -f "$PG_DATA/PG_VERSION" ]; then
    log "initialising a PostgreSQL cluster in $PG_DATA"
    as_pg mkdir -p "$PG_DATA" "$PG_SOCK"
    # initdb reads the superuser's password from a file the postgres user can read: a private
    # copy, removed right after.
    local pwcopy; pwcopy=$(as_pg mktemp)
    cat "$SUPERUSER_PWFILE" | as_pg tee "$pwcopy" >/dev/null
    as_pg "$bin/initdb" -D "$PG_DATA" -U postgres -E UTF8 --locale=C.UTF-8 \
      --auth-local=scram-sha-256 --auth-host=scram-sha-256 --pwfile="$pwcopy" \
      >"$STATE_DIR/initdb.log" 2>&1 || { as_pg rm -f "$pwcopy"; die "initdb failed; see $STATE_DIR/initdb.log"; }
    as_pg rm -f "$pwcopy"
  fi
  as_pg mkdir -p "$PG_SOCK"
  make_tls
  forget_stale_pid
  if ! as_pg "$bin/pg_ctl" -D "$PG_DATA" status >/dev/null 2>&1; then
    log "starting PostgreSQL on 127.0.0.1:$PG_PORT"
    # Durability on; more connections for parallel tests; checkpoints spaced out for a
    # write-heavy load (fewer full-page writes in the WAL).
    as_pg "$bin/pg_ctl" -D "$PG_DATA" -l "$PG_LOG" -w -t 60 \
      -o "-c listen_addresses=127.0.0.1 -p $PG_PORT -k $PG_SOCK -c max_connections=200 -c shared_buffers=256MB -c max_wal_size=4GB -c checkpoint_timeout=15min -c wal_buffers=16MB -c ssl=on -c ssl_cert_file=$PG_TLS/server.pem -c ssl_key_file=$PG_TLS/server.key" \
      start >/dev/null || die "PostgreSQL did not start; see $PG_LOG"
  fi
  require_passwords "$bin"
  local pwfile=$STATE_DIR/secrets/postgres_password
  [ -s "$pwfile" ] || (umask 077; head -c 18 /dev/urandom | base64 | tr '+/' '-_' >"$pwfile")
  local pw; pw=$(cat "$pwfile")
  psql_admin -v pw="$pw" <<'SQL'
SELECT format('CREATE ROLE pingpipe LOGIN CREATEDB PASSWORD %L', :'pw')
WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'pingpipe') \gexec
SELECT format('ALTER ROLE pingpipe PASSWORD %L', :'pw') \gexec
SELECT 'CREATE DATABASE pingpipe OWNER pingpipe'
WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = 'pingpipe') \gexec
SQL
  wait_for 30 "$bin/pg_isready" -h 127.0.0.1 -p "$PG_PORT" -d pingpipe \
    || die "PostgreSQL does not answer on 127.0.0.1:$PG_PORT"
}

down() {
  [ "$EXTERNAL_DATABASE" = 1 ] && return
  local bin; bin=$(pg_bindir)
  [ -n "$bin" ] && [ -f "$PG_DATA/PG_VERSION" ] || return 0
  forget_stale_pid
  if as_pg "$bin/pg_ctl" -D "$PG_DATA" status >/dev/null 2>&1; then
    log "stopping PostgreSQL"
    as_pg "$bin/pg_ctl" -D "$PG_DATA" -m fast -w -t 60 stop >/dev/null
  fi
}

# Restarts the local cluster (tests use it to prove recovery without a worker restart).
restart() {
  [ "$EXTERNAL_DATABASE" = 1 ] && die "DATABASE_URL points elsewhere: not restarting it"
  local bin; bin=$(pg_bindir)
  [ -f "$PG_DATA/PG_VERSION" ] || die "no local PostgreSQL cluster in $PG_DATA"
  forget_stale_pid
  log "restarting PostgreSQL"
  as_pg "$bin/pg_ctl" -D "$PG_DATA" -m fast -w -t 60 restart >/dev/null
}

status() {
  if [ "$EXTERNAL_DATABASE" = 1 ]; then echo "postgres: external (DATABASE_URL)"; return; fi
  local bin; bin=$(pg_bindir)
  forget_stale_pid
  if [ -n "$bin" ] && [ -f "$PG_DATA/PG_VERSION" ] && as_pg "$bin/pg_ctl" -D "$PG_DATA" status >/dev/null 2>&1; then
    echo "postgres: running on 127.0.0.1:$PG_PORT (data $PG_DATA)"
  else
    echo "postgres: stopped"
    return 1
  fi
}

case "${1:-}" in
  up) up ;;
  down) down ;;
  restart) restart ;;
  status) status ;;
  *) echo "usage: $0 up|down|restart|status" >&2; exit 2 ;;
esac
