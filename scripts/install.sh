#!/usr/bin/env bash
# `make install`: copies what `make release` put in dist/ under a prefix, the units' and the
# environment file's @BINDIR@-style placeholders filled with the real paths:
#   $PREFIX/bin/pingpipe-{api,monitor,ingest,notify,migrate}
#   $PREFIX/share/pingpipe/frontend/        the dashboard (the api unit points the api at it)
#   $PREFIX/share/doc/pingpipe/             README.md, deploy.md, env.example
#   $SYSTEMDUNITDIR/pingpipe-*.service      default $PREFIX/lib/systemd/system
#   $SYSCONFDIR/pingpipe/pingpipe.env.example   default /etc; an existing pingpipe.env is never touched
# Every path is written under $DESTDIR when set (staging for a package; the paths inside the files
# stay those without it). Installing again replaces the binaries, the units, the example and the
# dashboard and docs folders (files since removed from them go). Enables and starts nothing.
# Usage: [DESTDIR=…] [PREFIX=/usr/local] [SYSCONFDIR=/etc] [SYSTEMDUNITDIR=…] install.sh [DIST]
# (DIST: another tree laid out as dist/, as scripts/check-install.sh makes one)
set -euo pipefail
source "$(dirname "$0")/env.sh"

DIST=$(realpath -m -- "${1:-${PINGPIPE_DIST_DIR:-$ROOT/dist}}")
DESTDIR=${DESTDIR:-}
PREFIX=${PREFIX:-/usr/local}
SYSCONFDIR=${SYSCONFDIR:-/etc}
SYSTEMDUNITDIR=${SYSTEMDUNITDIR:-$PREFIX/lib/systemd/system}
BINDIR=$PREFIX/bin
DATADIR=$PREFIX/share
DOCDIR=$DATADIR/doc/pingpipe
BINARIES="pingpipe-api pingpipe-monitor pingpipe-ingest pingpipe-notify pingpipe-migrate"

for var in PREFIX SYSCONFDIR SYSTEMDUNITDIR; do
  [[ ${!var} == /* ]] || die "$var=${!var} is not an absolute path"
  # The value goes into sed replacements and unit files: keep it to plain path characters.
  [[ ${!var} =~ ^[A-Za-z0-9/._+-]+$ ]] || die "$var=${!var}: only letters, digits and / . _ + - please"
done
[ -z "$DESTDIR" ] || [[ $DESTDIR == /* ]] || die "DESTDIR=$DESTDIR is not an absolute path"

[ -d "$DIST" ] || die "$DIST is missing: run \`make release\` first"
for name in $BINARIES; do
  [ -x "$DIST/bin/$name" ] || die "$DIST/bin/$name is missing: run \`make release\` first"
done
for dir in share/pingpipe/frontend share/pingpipe/systemd share/doc/pingpipe; do
  [ -d "$DIST/$dir" ] || die "$DIST/$dir is missing: run \`make release\` first"
done
[ -f "$DIST/etc/pingpipe/pingpipe.env.example" ] || die "$DIST/etc/pingpipe/pingpipe.env.example is missing: run \`make release\` first"

# render FROM TO: a copy of FROM (mode 0644) with the placeholders filled; fails on any it does not know.
render() {
  local left
  sed -e "s|@BINDIR@|$BINDIR|g" -e "s|@SYSCONFDIR@|$SYSCONFDIR|g" \
    -e "s|@DATADIR@|$DATADIR|g" -e "s|@DOCDIR@|$DOCDIR|g" "$1" >"$2.tmp"
  if left=$(grep -noE '@[A-Z][A-Z_]*@' "$2.tmp"); then
    rm -f "$2.tmp"
    die "$1 has placeholders install.sh does not know: $(tr '\n' ' ' <<<"$left")"
  fi
  chmod 0644 "$2.tmp"
  mv -f "$2.tmp" "$2"
}

# replace_tree FROM TO: TO becomes a copy of FROM (directories 0755, files 0644).
replace_tree() {
  rm -rf "$2"
  mkdir -p "$2"
  cp -R "$1/." "$2/"
  find "$2" -type d -exec chmod 0755 {} + -o -type f -exec chmod 0644 {} +
}

log "installing $DIST under ${DESTDIR}$PREFIX"
install -d -m 0755 "$DESTDIR$BINDIR" "$DESTDIR$SYSTEMDUNITDIR" "$DESTDIR$SYSCONFDIR/pingpipe" \
  "$DESTDIR$DATADIR/pingpipe"
# install(1) replaces a file rather than writing into it, so a binary that is running is fine.
for name in $BINARIES; do
  install -m 0755 "$DIST/bin/$name" "$DESTDIR$BINDIR/$name"
done
units=()
for unit in "$DIST"/share/pingpipe/systemd/*.service; do
  render "$unit" "$DESTDIR$SYSTEMDUNITDIR/${unit##*/}"
  units+=("${unit##*/}")
done
render "$DIST/etc/pingpipe/pingpipe.env.example" "$DESTDIR$SYSCONFDIR/pingpipe/pingpipe.env.example"
replace_tree "$DIST/share/pingpipe/frontend" "$DESTDIR$DATADIR/pingpipe/frontend"
replace_tree "$DIST/share/doc/pingpipe" "$DESTDIR$DOCDIR"

echo "installed under ${DESTDIR:-/}:"
echo "  $BINDIR/{${BINARIES// /,}}"
echo "  $SYSTEMDUNITDIR/{$(IFS=,; echo "${units[*]}")}"
echo "  $SYSCONFDIR/pingpipe/pingpipe.env.example"
echo "  $DATADIR/pingpipe/frontend/"
echo "  $DOCDIR/"
case "$SYSTEMDUNITDIR" in
  /etc/systemd/system | /usr/local/lib/systemd/system | /usr/lib/systemd/system | /lib/systemd/system) ;;
  *) log "note: systemd does not look for units in $SYSTEMDUNITDIR; link them (systemctl link) or install with SYSTEMDUNITDIR=/etc/systemd/system" ;;
esac
if [ -n "$DESTDIR" ]; then
  exit 0
fi
if [ -f "$SYSCONFDIR/pingpipe/pingpipe.env" ]; then
  echo "$SYSCONFDIR/pingpipe/pingpipe.env exists and was left as it is; compare it with the new example."
else
  echo "Next: install -m 0600 $SYSCONFDIR/pingpipe/pingpipe.env.example $SYSCONFDIR/pingpipe/pingpipe.env, and edit it."
fi
echo "Then: systemctl daemon-reload; systemctl enable --now pingpipe-migrate (one machine only),"
echo "      and pingpipe-api, pingpipe-monitor, pingpipe-ingest, pingpipe-notify where each runs ($DOCDIR/deploy.md)."
