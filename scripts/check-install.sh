#!/usr/bin/env bash
# Checks scripts/install.sh (`make install`) on a dist/ tree of its own — stub binaries, a small
# dashboard, the real unit templates and environment file example — never the real dist/, and
# into a temporary DESTDIR, never the machine: every file lands where install.sh and deploy.md
# say; the units and the example name the real paths (no @…@ placeholder left, no DESTDIR in
# them), and every path under the prefix that a unit names exists once installed; an existing
# pingpipe.env is left as it is; installing again removes files gone from the dashboard;
# SYSTEMDUNITDIR moves the units; without a dist/ it says to run `make release`. The installed
# units then pass `systemd-analyze verify` without a word (skipped, saying so, without
# systemd-analyze). Also: every variable the example sets is one .env.example documents.
set -euo pipefail
source "$(dirname "$0")/env.sh"

BINARIES="pingpipe-api pingpipe-monitor pingpipe-ingest pingpipe-notify pingpipe-migrate"
WORK=$(mktemp -d "${TMPDIR:-/tmp}/pingpipe-check-install.XXXXXX")
trap 'rm -rf "$WORK"' EXIT

problems=0
problem() { echo "check-install: $*" >&2; problems=$((problems + 1)); }
expect_file() { [ -f "$1" ] || problem "${2:-$1} is missing"; }

# The fake dist/, laid out as scripts/release.sh lays out the real one.
DIST=$WORK/dist
mkdir -p "$DIST/bin" "$DIST/etc/pingpipe" "$DIST/share/pingpipe/systemd" \
  "$DIST/share/pingpipe/frontend/status" "$DIST/share/doc/pingpipe"
for name in $BINARIES; do
  printf '#!/bin/sh\n# stub %s\nexit 0\n' "$name" >"$DIST/bin/$name"
  chmod 0755 "$DIST/bin/$name"
done
cp "$ROOT"/deploy/systemd/*.service "$DIST/share/pingpipe/systemd/"
cp "$ROOT/deploy/pingpipe.env.example" "$DIST/etc/pingpipe/"
echo '<!doctype html><title>stub</title>' >"$DIST/share/pingpipe/frontend/index.html"
echo '<!doctype html><title>stub status</title>' >"$DIST/share/pingpipe/frontend/status/index.html"
for doc in README.md deploy.md env.example; do echo "stub $doc" >"$DIST/share/doc/pingpipe/$doc"; done

# Installed as a package build would: DESTDIR is a staging folder, PREFIX the path on the target.
# PREFIX is a temporary path too, linked to its staged copy afterwards, so that systemd-analyze
# finds the binaries at the paths the units name.
DEST=$WORK/dest
PREFIX=$WORK/prefix
log "install.sh with DESTDIR=$DEST PREFIX=$PREFIX"
DESTDIR=$DEST PREFIX=$PREFIX "$ROOT/scripts/install.sh" "$DIST" >"$WORK/install.out" 2>&1 \
  || { cat "$WORK/install.out" >&2; die "install.sh failed"; }

UNITDIR=$DEST$PREFIX/lib/systemd/system
for name in $BINARIES; do
  exe=$DEST$PREFIX/bin/$name
  if [ ! -x "$exe" ]; then
    problem "\$PREFIX/bin/$name is missing or not executable"
  elif ! cmp -s "$DIST/bin/$name" "$exe"; then
    problem "\$PREFIX/bin/$name differs from dist/bin/$name"
  fi
done
units=()
for template in "$ROOT"/deploy/systemd/*.service; do
  units+=("${template##*/}")
  expect_file "$UNITDIR/${template##*/}" "\$PREFIX/lib/systemd/system/${template##*/}"
done
expect_file "$DEST/etc/pingpipe/pingpipe.env.example" "\$DESTDIR/etc/pingpipe/pingpipe.env.example"
[ ! -e "$DEST/etc/pingpipe/pingpipe.env" ] || problem "install.sh created /etc/pingpipe/pingpipe.env (it must only install the example)"
expect_file "$DEST$PREFIX/share/pingpipe/frontend/index.html" "\$PREFIX/share/pingpipe/frontend/index.html"
expect_file "$DEST$PREFIX/share/pingpipe/frontend/status/index.html" "\$PREFIX/share/pingpipe/frontend/status/index.html"
for doc in README.md deploy.md env.example; do
  expect_file "$DEST$PREFIX/share/doc/pingpipe/$doc" "\$PREFIX/share/doc/pingpipe/$doc"
done

# What the rendered files say.
rendered=("$DEST/etc/pingpipe/pingpipe.env.example")
for unit in "${units[@]}"; do [ -f "$UNITDIR/$unit" ] && rendered+=("$UNITDIR/$unit"); done
for file in "${rendered[@]}"; do
  short=${file#"$DEST"}
  while IFS= read -r left; do problem "$short:${left%%:*}: placeholder ${left#*:} left"; done \
    < <(grep -noE '@[A-Z][A-Z_]*@' "$file" || true)
  ! grep -qF "$DEST" "$file" || problem "$short names the DESTDIR ($DEST): paths must be those of the target"
done
api=$UNITDIR/pingpipe-api.service
for line in "ExecStart=$PREFIX/bin/pingpipe-api" "EnvironmentFile=/etc/pingpipe/pingpipe.env" \
  "Environment=PINGPIPE_API_FRONTEND_DIR=$PREFIX/share/pingpipe/frontend" \
  "Documentation=file://$PREFIX/share/doc/pingpipe/deploy.md"; do
  grep -qxF -- "$line" "$api" || problem "pingpipe-api.service: no \`$line\` line"
done
# Every path under the prefix that a unit names (binaries, the dashboard, the docs) was installed.
for unit in "${units[@]}"; do
  [ -f "$UNITDIR/$unit" ] || continue
  while IFS= read -r path; do
    [ -e "$DEST$path" ] || problem "$unit names $path, which install.sh did not install"
  done < <(grep -oE "$PREFIX/[A-Za-z0-9/._-]+" "$UNITDIR/$unit" | sort -u)
done

# The example names only variables that .env.example documents (and so the README, check-docs.sh).
for name in $(grep -oE '^#? *[A-Z_][A-Z0-9_]*=' "$ROOT/deploy/pingpipe.env.example" | tr -d '#= ' | sort -u); do
  grep -qE "^#? *$name=" "$ROOT/.env.example" || problem "deploy/pingpipe.env.example sets $name, which .env.example does not document"
done

# Again, over what the first run left and an operator's own pingpipe.env, units elsewhere.
(umask 077; echo "DATABASE_URL=postgres://operator:secret@db/pingpipe" >"$DEST/etc/pingpipe/pingpipe.env")
cp "$DEST/etc/pingpipe/pingpipe.env" "$WORK/operator.env"
mkdir -p "$DEST$PREFIX/share/pingpipe/frontend"
echo stale >"$DEST$PREFIX/share/pingpipe/frontend/gone.js"
log "install.sh again, SYSTEMDUNITDIR=$WORK/units, over an existing pingpipe.env"
DESTDIR=$DEST PREFIX=$PREFIX SYSTEMDUNITDIR=$WORK/units "$ROOT/scripts/install.sh" "$DIST" >"$WORK/install.out" 2>&1 \
  || { cat "$WORK/install.out" >&2; die "install.sh failed the second time"; }
cmp -s "$WORK/operator.env" "$DEST/etc/pingpipe/pingpipe.env" || problem "install.sh changed an existing pingpipe.env"
[ ! -e "$DEST$PREFIX/share/pingpipe/frontend/gone.js" ] || problem "a file no longer in dist/'s dashboard is still installed"
for unit in "${units[@]}"; do
  expect_file "$DEST$WORK/units/$unit" "SYSTEMDUNITDIR/$unit"
done

# Without a dist/: a clear refusal.
if out=$(DESTDIR=$WORK/nothing "$ROOT/scripts/install.sh" "$WORK/no-dist" 2>&1); then
  problem "install.sh without a dist/ succeeded"
elif ! grep -qF 'make release' <<<"$out"; then
  problem "install.sh without a dist/ did not say to run \`make release\`: $out"
fi

if [ "$problems" -gt 0 ]; then
  echo "check-install: $problems problem(s)" >&2
  exit 1
fi

if ! command -v systemd-analyze >/dev/null; then
  echo "skipped: systemd-analyze not installed (installed files checked, units not verified)" >&2
  [ -n "${PINGPIPE_SKIPPED_LOG:-}" ] && echo "check-install: systemd-analyze not installed" >>"$PINGPIPE_SKIPPED_LOG"
  exit 0
fi
ln -s "$DEST$PREFIX" "$PREFIX"
set +e
output=$(cd "$UNITDIR" && systemd-analyze verify "${units[@]/#/./}" 2>&1)
status=$?
set -e
if [ "$status" != 0 ] || [ -n "$output" ]; then
  echo "check-install: systemd-analyze verify of the installed units exited $status and printed (every line counts as a failure):" >&2
  printf '%s\n' "$output" | sed 's/^/  /' >&2
  exit 1
fi
log "install: every file where documented, no placeholder left, pingpipe.env kept; the ${#units[@]} installed units pass systemd-analyze verify"
