#!/usr/bin/env bash
# `make down`: stops everything `make up` started. Data stays; `make clean` removes it.
set -euo pipefail
source "$(dirname "$0")/env.sh"

"$ROOT/scripts/services.sh" down
"$ROOT/scripts/kafka.sh" down
"$ROOT/scripts/postgres.sh" down
log "stopped; data kept in $STATE_DIR"
