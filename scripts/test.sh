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
cargo_deps
log "cargo fmt --check"
cargo fmt --all --check
log "cargo clippy -D warnings"
cargo clippy --quiet --workspace --all-targets -- -D warnings
# A real SMTP server for the e-mail tests: aiosmtpd (PyPI) in a virtual environment of ours.
log "aiosmtpd for the e-mail tests"
export PINGPIPE_PYTHON=$CACHE_DIR/venv/bin/python
if ! "$PINGPIPE_PYTHON" -c "import aiosmtpd" 2>/dev/null; then
  command -v python3 >/dev/null || apt_install python3 python3-venv
  python3 -m venv "$CACHE_DIR/venv" || { apt_install python3-venv && python3 -m venv "$CACHE_DIR/venv"; }
  "$CACHE_DIR/venv/bin/pip" install --quiet --disable-pip-version-check "aiosmtpd==1.4.6"
fi
log "cargo test (PostgreSQL and Kafka are real)"
mkdir -p "$STATE_DIR"
test_log=$STATE_DIR/test.log
# A test that cannot run here (a restart test against an external PostgreSQL, say) returns early,
# and libtest counts it as passed: entity::testing::skip adds a line to this file instead, and the
# summary counts those tests as skipped.
export PINGPIPE_SKIPPED_LOG=$STATE_DIR/skipped.log
: >"$PINGPIPE_SKIPPED_LOG"
set +e
cargo test --workspace --no-fail-fast 2>&1 | tee "$test_log"
test_status=${PIPESTATUS[0]}
set -e

log "every binary answers --help"
cargo build --quiet --workspace --bins
for bin in pingpipe-api pingpipe-monitor pingpipe-ingest pingpipe-notify migration; do
  "$CARGO_TARGET_DIR/debug/$bin" --help >/dev/null || die "$bin --help failed"
done

# Tests written in bash, over the binaries just built; each counts as one test in the summary.
script_passed=0; script_failed=0
script_test() {
  local what=$1; shift
  log "$what"
  if "$@"; then
    script_passed=$((script_passed + 1))
  else
    log "failed: $what"
    script_failed=$((script_failed + 1)); test_status=1
  fi
}
script_test "the README and .env.example list every variable the binaries read" "$ROOT/scripts/check-docs.sh"
script_test "services.sh up restarts exactly the services whose binary changed" "$ROOT/scripts/test-services.sh"
script_test "the local PostgreSQL refuses a socket connection without a password" "$ROOT/scripts/check-postgres-auth.sh"
script_test "every binary connects to PostgreSQL with verify-full and refuses a wrong CA, host or file" "$ROOT/scripts/check-postgres-tls.sh"
script_test "monitor and ingest work through mutual TLS and SASL_SSL/SCRAM with the README's ACLs, and refuse bad credentials" "$ROOT/scripts/check-kafka-security.sh"
script_test "the systemd units pass systemd-analyze verify" "$ROOT/scripts/check-systemd.sh"
script_test "make install puts dist/ where the units and the guide say" "$ROOT/scripts/check-install.sh"

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
# One closing line over every test binary (cargo prints one per binary, the doc-tests' last):
# "test result: ok. N passed; N failed; N ignored; …". Ignored tests did not run: skipped.
read -r passed failed ignored < <(awk '/^test result:/ {p += $4; f += $6; i += $8} END {print p + 0, f + 0, i + 0}' "$test_log")
# Those that skipped themselves are among libtest's passed; they say so in $PINGPIPE_SKIPPED_LOG.
skipped=$(wc -l <"$PINGPIPE_SKIPPED_LOG")
passed=$((passed - skipped)); skipped=$((skipped + ignored))
while IFS=$'\t' read -r test reason; do log "skipped: $test: $reason"; done <"$PINGPIPE_SKIPPED_LOG"
# node's test runner ends with "ℹ pass N", "ℹ fail N", "ℹ cancelled N" (never finished, e.g. when
# a hook failed: not passed), "ℹ skipped N" and "ℹ todo N" (neither ran).
read -r ui_passed ui_failed ui_skipped < <(awk '$1 != "ℹ" {next}
  $2 == "pass" {p += $3} $2 == "fail" || $2 == "cancelled" {f += $3} $2 == "skipped" || $2 == "todo" {s += $3}
  END {print p + 0, f + 0, s + 0}' "$ui_log")
passed=$((passed + ui_passed + script_passed))
failed=$((failed + ui_failed + script_failed))
skipped=$((skipped + ui_skipped))
[ "$test_status" = 0 ] || log "make test failed"
echo "tests: $passed passed, $failed failed, $skipped skipped"
exit "$test_status"
