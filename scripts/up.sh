#!/usr/bin/env bash
# `make up`: PostgreSQL and Kafka (unless DATABASE_URL / KAFKA_BOOTSTRAP_SERVERS point elsewhere),
# the schema migrated, the results topic created, the API, the ingest worker, the monitor and the notification worker started; returns once all of it is
# healthy and prints where each part listens. Running it again changes nothing that is already up,
# except that a service whose binary was rebuilt since it started is restarted (services.sh).
# PINGPIPE_PROFILE=release runs the optimised binaries of dist/, built by scripts/release.sh
# (`make release`) each time, instead of cargo's debug build (services.sh).
set -euo pipefail
source "$(dirname "$0")/env.sh"

# Which build runs; an unknown PINGPIPE_PROFILE stops here, before anything starts.
profile=$("$ROOT/scripts/services.sh" profile)
mkdir -p "$STATE_DIR"
"$ROOT/scripts/postgres.sh" up
"$ROOT/scripts/kafka.sh" up
source "$ROOT/scripts/env.sh" # picks up the generated database password

"$ROOT/scripts/services.sh" build
"$ROOT/scripts/services.sh" migrate
"$ROOT/scripts/services.sh" up

# Connection settings for tools and tests: `source .pingpipe/env`.
(umask 077; {
  printf 'export DATABASE_URL=%q\n' "$DATABASE_URL"
  printf 'export KAFKA_BOOTSTRAP_SERVERS=%q\n' "$KAFKA_BOOTSTRAP_SERVERS"
} >"$STATE_DIR/env")

redacted_db=$(printf '%s' "$DATABASE_URL" | sed -E 's#(://[^:/@]+):[^@]*@#\1:***@#')
cat <<MSG

Pingpipe is up.
  PostgreSQL   $redacted_db   (password in .pingpipe/secrets; \`source .pingpipe/env\` sets DATABASE_URL)
  Kafka        $KAFKA_BOOTSTRAP_SERVERS   topic $RESULTS_TOPIC
  Dashboard    http://${PINGPIPE_API_ADDR:-127.0.0.1:8080}/
  GraphQL      http://${PINGPIPE_API_ADDR:-127.0.0.1:8080}/graphql   (GraphiQL in a browser; POST for scripts)
  API token    $(if [ -n "${PINGPIPE_API_TOKENS:-}" ]; then echo "as configured in PINGPIPE_API_TOKENS"; else cat "$STATE_DIR/secrets/api_token"; fi)   (send \`Authorization: Bearer <token>\` with mutations)
  Monitor      http://${PINGPIPE_MONITOR_ADDR:-127.0.0.1:9101}/metrics   (/healthz, /readyz; group mode: start more anywhere with the same PINGPIPE_MONITOR_INSTANCE)
  Ingest       http://${PINGPIPE_INGEST_ADDR:-127.0.0.1:9102}/metrics   (/healthz, /readyz)
  Notify       http://${PINGPIPE_NOTIFY_ADDR:-127.0.0.1:9103}/metrics   (/healthz, /readyz)
  Build        $profile
  Logs         $STATE_DIR/logs/, $STATE_DIR/postgres/postgres.log, $STATE_DIR/kafka/logs/server.log
Stop it with \`make down\`.
MSG
