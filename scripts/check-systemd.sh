#!/usr/bin/env bash
# Checks the systemd unit templates (deploy/systemd/*.service): rendered as install.sh renders
# them, with a temporary prefix in which the five binaries of dist/bin are stub executables,
# `systemd-analyze verify` must succeed and print nothing — a warning (an unknown key, a value
# it cannot parse and ignores, a command that is missing) fails the check like an error. Each
# unit must also keep what deployment relies on: DynamicUser, ProtectSystem=strict,
# NoNewPrivileges, the environment file, a restart policy (the long-running parts) or a oneshot
# (pingpipe-migrate), and the order after the migrations. Builds nothing, starts nothing.
# Installs systemd-analyze (Debian's systemd) when missing; where it cannot, says "skipped" and
# exits 0.
# Usage: check-systemd.sh [UNIT_DIR]   (deploy/systemd by default)
set -euo pipefail
source "$(dirname "$0")/env.sh"

UNIT_DIR=${1:-$ROOT/deploy/systemd}
BINARIES="pingpipe-api pingpipe-monitor pingpipe-ingest pingpipe-notify pingpipe-migrate"

# Debian's systemd package has it (no service manager is started by installing it).
if ! command -v systemd-analyze >/dev/null && command -v apt-get >/dev/null; then
  apt_install systemd || true
fi
if ! command -v systemd-analyze >/dev/null; then
  echo "skipped: systemd-analyze not installed" >&2
  [ -n "${PINGPIPE_SKIPPED_LOG:-}" ] && echo "check-systemd: systemd-analyze not installed" >>"$PINGPIPE_SKIPPED_LOG"
  exit 0
fi
shopt -s nullglob
templates=("$UNIT_DIR"/*.service)
[ ${#templates[@]} -gt 0 ] || die "no *.service files in $UNIT_DIR"

WORK=$(mktemp -d "${TMPDIR:-/tmp}/pingpipe-check-systemd.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
PREFIX=$WORK/prefix
mkdir -p "$PREFIX/bin" "$WORK/units"
for name in $BINARIES; do
  printf '#!/bin/sh\nexit 0\n' >"$PREFIX/bin/$name"
  chmod 0755 "$PREFIX/bin/$name"
done

problems=0
problem() { echo "check-systemd: $*" >&2; problems=$((problems + 1)); }

# The placeholders install.sh fills (its render()), here with the temporary prefix.
for template in "${templates[@]}"; do
  unit=$WORK/units/${template##*/}
  sed -e "s|@BINDIR@|$PREFIX/bin|g" -e "s|@SYSCONFDIR@|$PREFIX/etc|g" \
    -e "s|@DATADIR@|$PREFIX/share|g" -e "s|@DOCDIR@|$PREFIX/share/doc/pingpipe|g" "$template" >"$unit"
  while IFS= read -r left; do
    problem "${template##*/}:${left%%:*}: placeholder ${left#*:} is not one install.sh fills"
  done < <(grep -noE '@[A-Z][A-Z_]*@' "$unit" || true)
done

# has UNIT LINE: the unit has LINE, whole, as one of its lines.
has() { grep -qxF -- "$2" "$1"; }
for unit in "$WORK"/units/*.service; do
  name=${unit##*/}
  for line in DynamicUser=yes ProtectSystem=strict NoNewPrivileges=yes \
    "EnvironmentFile=$PREFIX/etc/pingpipe/pingpipe.env"; do
    has "$unit" "$line" || problem "$name: no \`$line\` line"
  done
  if [ "$name" = pingpipe-migrate.service ]; then
    has "$unit" Type=oneshot || problem "$name: not Type=oneshot"
  else
    grep -qE '^Restart=(on-failure|always)$' "$unit" || problem "$name: no Restart=on-failure (or always)"
    grep -qE '^After=.*\bpingpipe-migrate\.service\b' "$unit" || problem "$name: not ordered After=pingpipe-migrate.service"
  fi
done

# Run from the folder of the units, so that what verify prints names them by their own name.
log "systemd-analyze verify ${templates[*]##*/} ($(systemd-analyze --version | head -n 1))"
set +e
output=$(cd "$WORK/units" && systemd-analyze verify ./*.service 2>&1)
status=$?
set -e
if [ "$status" != 0 ] || [ -n "$output" ]; then
  problem "systemd-analyze verify exited $status and printed (every line counts as a failure):"
  printf '%s\n' "$output" | sed 's/^/  /' >&2
fi

if [ "$problems" -gt 0 ]; then
  echo "check-systemd: $problems problem(s) in the units of $UNIT_DIR" >&2
  exit 1
fi
log "systemd: the ${#templates[@]} units of $UNIT_DIR pass systemd-analyze verify without a word"
