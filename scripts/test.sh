#!/usr/bin/env bash
# `make test`: starts what the tests need (unless it already runs or is external), then fmt,
# clippy and every test of the workspace against the real PostgreSQL and Kafka. Exits non-zero
# on any failure; stops again whatever it started itself.
set -euo pipefail
source "$(dirname "$0")/env.sh"

started=()
cleanup() {
  for part in "${started[@]}"; do "$ROOT/scripts/$part.sh" down || true; done
}
trap cleanup EXIT

for part in postgres kafka; do
  if ! "$ROOT/scripts/$part.sh" status >/dev/null 2>&1; then
    started+=("$part")
  fi
  "$ROOT/scripts/$part.sh" up
done
source "$ROOT/scripts/env.sh" # picks up the generated database password

cd "$ROOT"
log "cargo fmt --check"
cargo fmt --all --check
log "cargo clippy -D warnings"
cargo clippy --quiet --workspace --all-targets -- -D warnings
log "cargo test (PostgreSQL and Kafka are real)"
mkdir -p "$STATE_DIR"
test_log=$STATE_DIR/test.log
set +e
cargo test --workspace --no-fail-fast 2>&1 | tee "$test_log"
test_status=${PIPESTATUS[0]}
set -e

log "every binary answers --help"
cargo build --quiet --workspace --bins
for bin in pingpipe-api pingpipe-monitor pingpipe-ingest migration; do
  "$CARGO_TARGET_DIR/debug/$bin" --help >/dev/null || die "$bin --help failed"
done

log "browser tests of the dashboard (Chromium, against the real stack)"
ui_log=$STATE_DIR/ui-test.log
set +e
"$ROOT/scripts/frontend.sh" test 2>&1 | tee "$ui_log"
ui_status=${PIPESTATUS[0]}
set -e
[ "$ui_status" = 0 ] || { log "browser tests failed"; test_status=1; }

# Stop what we started first, so that the summary is the last line printed.
cleanup
trap - EXIT
# One closing line over every test binary (cargo prints one per binary, the doc-tests' last).
read -r passed failed < <(awk '/^test result:/ {p += $4; f += $6} END {print p + 0, f + 0}' "$test_log")
# node's test runner ends with "ℹ pass N" and "ℹ fail N".
read -r ui_passed ui_failed < <(awk '$2 == "pass" {p = $3} $2 == "fail" {f = $3} END {print p + 0, f + 0}' "$ui_log")
passed=$((passed + ui_passed)); failed=$((failed + ui_failed))
[ "$test_status" = 0 ] || log "cargo test failed"
echo "tests: $passed passed, $failed failed"
exit "$test_status"
