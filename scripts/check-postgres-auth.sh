#!/usr/bin/env bash
# The local PostgreSQL asks every connection for a password, the socket's included: without one,
# psql over the socket is refused — as the postgres OS user too, who used to be trusted (and so
# anyone who could run a program as it had the superuser, `COPY … TO PROGRAM` included). With
# the superuser's password it is let in, so the refusal is about the password, not the socket.
set -euo pipefail
source "$(dirname "$0")/env.sh"

if [ "$EXTERNAL_DATABASE" = 1 ]; then
  echo "skipped: check-postgres-auth: DATABASE_URL is set, this PostgreSQL is not ours" >&2
  [ -n "${PINGPIPE_SKIPPED_LOG:-}" ] && echo "check-postgres-auth: external PostgreSQL" >>"$PINGPIPE_SKIPPED_LOG"
  exit 0
fi
bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
sock=$(readlink -f "$STATE_DIR/postgres")/run
as_pg() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
try() { as_pg env -u PGPASSWORD "$@" "$bin/psql" -X -q -w -h "$sock" -p "$PG_PORT" -U postgres -d postgres -c 'SELECT 1' >/dev/null 2>&1; }

if try; then
  log "psql over the local socket got in without a password"
  exit 1
fi
if ! try PGPASSWORD="$(cat "$STATE_DIR/secrets/postgres_superuser_password")"; then
  log "psql over the local socket was refused even with the superuser's password"
  exit 1
fi
log "the local socket asks for a password (refused without, accepted with)"
