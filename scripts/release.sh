#!/usr/bin/env bash
# `make release`: the five binaries built optimised (`cargo build --release --locked`: exactly
# the versions of Cargo.lock) and put together with the dashboard's files, the systemd units, an
# environment file and the docs in dist/, laid out as under an install prefix:
#   dist/bin/                     pingpipe-api, -monitor, -ingest, -notify, -migrate (cargo's `migration`)
#   dist/etc/pingpipe/            pingpipe.env.example (for /etc/pingpipe/pingpipe.env)
#   dist/share/pingpipe/frontend/ the dashboard (PINGPIPE_API_FRONTEND_DIR)
#   dist/share/pingpipe/systemd/  the units, still with @BINDIR@-style placeholders (install.sh fills them)
#   dist/share/doc/pingpipe/      README.md, deploy.md (links fitted), env.example (every variable)
# Each run makes dist/ anew: a binary only if it changed, the rest made aside and renamed into
# place, so that a running `PINGPIPE_PROFILE=release make up` (dist/bin, the dashboard of
# dist/share) is not left without its files. `make install` copies dist/ under a prefix. Prints
# what it made, with sizes.
set -euo pipefail
source "$(dirname "$0")/env.sh"

# Resolved once (a relative PINGPIPE_DIST_DIR is taken from the current folder).
DIST=$(realpath -m -- "${PINGPIPE_DIST_DIR:-$ROOT/dist}")
# Whatever else lies in the tree is removed below: another folder is taken only when it is empty
# or a tree this script made (it leaves a mark).
if [ "$DIST" != "$(realpath -m -- "$ROOT/dist")" ] && [ -d "$DIST" ] && [ -n "$(ls -A "$DIST")" ] && [ ! -e "$DIST/.pingpipe-dist" ]; then
  die "PINGPIPE_DIST_DIR=$DIST holds other files: name an empty or new folder, or one \`make release\` made"
fi
# The cargo binary and the name it has in dist/ (and once installed).
BINARIES="pingpipe-api:pingpipe-api pingpipe-monitor:pingpipe-monitor pingpipe-ingest:pingpipe-ingest
  pingpipe-notify:pingpipe-notify migration:pingpipe-migrate"

cargo_deps
# The dashboard's vendored files (public/vendor/, from npm) are part of what the api serves.
"$ROOT/scripts/frontend.sh" deps
for file in uPlot.esm.js graphiql.min.js; do
  [ -f "$ROOT/frontend/public/vendor/$file" ] || die "frontend/public/vendor/$file is missing after \`scripts/frontend.sh deps\`"
done

bin_args=()
for pair in $BINARIES; do bin_args+=(--bin "${pair%%:*}"); done
# Cargo's own progress, not --quiet: an optimised first build takes minutes.
log "building the release binaries (cargo, target dir $CARGO_TARGET_DIR)"
cargo build --manifest-path "$ROOT/Cargo.toml" --release --locked --workspace "${bin_args[@]}"

# A binary is replaced only when it changed (install -C), so that a service that
# `PINGPIPE_PROFILE=release make up` started keeps running the file dist/ has.
mkdir -p "$DIST/bin"
touch "$DIST/.pingpipe-dist"
names=" "
for pair in $BINARIES; do
  install -C -m 0755 "$CARGO_TARGET_DIR/release/${pair%%:*}" "$DIST/bin/${pair#*:}"
  names+="${pair#*:} "
done
for exe in "$DIST"/bin/*; do
  [[ $names == *" ${exe##*/} "* ]] || rm -rf "$exe"
done

# Everything else is made afresh in a folder of its own inside dist/ (the same file system, so
# a rename moves it) and then renamed into place: that API serves dist/share/pingpipe/frontend
# and finds the old files or the new ones, the folder missing only between two renames.
NEXT=$(mktemp -d "$DIST/.next.XXXXXX")
PREVIOUS=$(mktemp -d "$DIST/.previous.XXXXXX")
trap 'rm -rf "$NEXT" "$PREVIOUS"' EXIT
mkdir -p "$NEXT/etc/pingpipe" "$NEXT/share/pingpipe/systemd" "$NEXT/share/doc/pingpipe"
cp -R "$ROOT/frontend/public" "$NEXT/share/pingpipe/frontend"
install -m 0644 "$ROOT"/deploy/systemd/*.service "$NEXT/share/pingpipe/systemd/"
install -m 0644 "$ROOT/deploy/pingpipe.env.example" "$NEXT/etc/pingpipe/pingpipe.env.example"
install -m 0644 "$ROOT/README.md" "$NEXT/share/doc/pingpipe/"
# Installed, deploy.md lies beside README.md, not in a docs/ folder below it: its links to the
# README lose their `../`.
sed 's|](\.\./README\.md|](README.md|g' "$ROOT/docs/deploy.md" >"$NEXT/share/doc/pingpipe/deploy.md"
chmod 0644 "$NEXT/share/doc/pingpipe/deploy.md"
install -m 0644 "$ROOT/.env.example" "$NEXT/share/doc/pingpipe/env.example"
for part in etc share; do
  if [ -e "$DIST/$part" ]; then mv -T "$DIST/$part" "$PREVIOUS/$part"; fi
  mv -T "$NEXT/$part" "$DIST/$part"
done
# Whatever else lies in dist/ goes: the old trees, and what an interrupted run left behind.
find "$DIST" -mindepth 1 -maxdepth 1 ! -name bin ! -name etc ! -name share ! -name .pingpipe-dist -exec rm -rf {} +

# A byte count for people: 800B, 4.0KiB, 22.4MiB.
size() {
  if [ "$1" -lt 1024 ]; then echo "${1}B"; else numfmt --to=iec-i --suffix=B --round=nearest --format='%.1f' "$1"; fi
}
tree_size() { size "$(du -sb "$1" | cut -f1)"; }
echo "dist/ ($DIST), $(tree_size "$DIST"):"
for exe in "$DIST"/bin/*; do
  printf '  %-38s %10s\n' "bin/${exe##*/}" "$(size "$(stat -c %s "$exe")")"
done
printf '  %-38s %10s  (%s files)\n' "share/pingpipe/frontend/" "$(tree_size "$DIST/share/pingpipe/frontend")" \
  "$(find "$DIST/share/pingpipe/frontend" -type f | wc -l)"
printf '  %-38s %10s  (%s)\n' "share/pingpipe/systemd/" "$(tree_size "$DIST/share/pingpipe/systemd")" \
  "$(cd "$DIST/share/pingpipe/systemd" && echo *)"
printf '  %-38s %10s\n' "etc/pingpipe/pingpipe.env.example" "$(tree_size "$DIST/etc/pingpipe/pingpipe.env.example")"
printf '  %-38s %10s  (%s)\n' "share/doc/pingpipe/" "$(tree_size "$DIST/share/doc/pingpipe")" \
  "$(cd "$DIST/share/doc/pingpipe" && echo *)"
echo "Run it with \`PINGPIPE_PROFILE=release make up\`; install it with \`make install\` (PREFIX=/usr/local)."
