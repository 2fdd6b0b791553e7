#!/usr/bin/env bash
# The dashboard's npm packages (uPlot for the page; React, GraphiQL and graphql-ws for
# GraphiQL's page; playwright-core for the tests) and its browser tests.
# Usage: frontend.sh deps|test
set -euo pipefail
source "$(dirname "$0")/env.sh"

FRONTEND=$ROOT/frontend

# npm ci when node_modules is missing or older than the lock file, or a vendored file is missing
# (a checkout from before that file was vendored); it also copies the browser files into
# frontend/public/vendor (package.json's postinstall).
deps() {
  command -v npm >/dev/null || apt_install nodejs npm
  if [ ! -f "$FRONTEND/node_modules/.package-lock.json" ] \
    || [ "$FRONTEND/package-lock.json" -nt "$FRONTEND/node_modules/.package-lock.json" ] \
    || [ ! -f "$FRONTEND/public/vendor/uPlot.esm.js" ] \
    || [ ! -f "$FRONTEND/public/vendor/graphiql.min.js" ]; then
    log "installing the dashboard's npm packages"
    (cd "$FRONTEND" && npm ci --no-audit --no-fund --loglevel=error)
  fi
}

# The browser tests need Debian's Chromium (playwright-core never downloads a browser here) and
# the debug binaries; PostgreSQL and Kafka are those of `make test`.
run_tests() {
  deps
  command -v chromium >/dev/null || apt_install chromium
  export PINGPIPE_BIN_DIR=$CARGO_TARGET_DIR/debug
  export PINGPIPE_SCREENSHOTS=$STATE_DIR/screenshots
  (cd "$FRONTEND" && npm test --silent)
}

case "${1:-}" in
  deps) deps ;;
  test) run_tests ;;
  *) echo "usage: $0 deps|test" >&2; exit 2 ;;
esac
