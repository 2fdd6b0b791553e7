#!/usr/bin/env bash
# Checks that the README's configuration tables and .env.example document exactly the environment
# variables Pingpipe reads. What the binaries read is taken from their --help (clap prints
# `[env: NAME=…]` for every option that has a variable, including those of subcommands), so a new
# option cannot be forgotten in the docs, nor a removed one linger there. Builds nothing: it runs
# the debug binaries of the last build. Prints every problem, naming the variable; exits 1 if any.
# Usage: check-docs.sh [README [ENV_EXAMPLE]]   (the checkout's own files by default)
set -euo pipefail
source "$(dirname "$0")/env.sh"

README=${1:-$ROOT/README.md}
ENV_EXAMPLE=${2:-$ROOT/.env.example}
BIN=${PINGPIPE_BIN_DIR:-$CARGO_TARGET_DIR/debug}
BINARIES="pingpipe-api pingpipe-monitor pingpipe-ingest pingpipe-notify migration"
# Read by every binary, but not through clap, so absent from --help: the log filter
# (tracing-subscriber's EnvFilter) reads RUST_LOG.
NOT_IN_HELP="RUST_LOG"

problems=0
problem() { echo "check-docs: $*" >&2; problems=$((problems + 1)); }

# The variables named in a --help text: `[env: NAME=value]`, or `[env: NAME]` for hidden values.
# Lines are joined first, in case the help was wrapped inside the bracket.
env_names() {
  tr -s ' \n' '  ' | grep -oE '\[env: [A-Za-z_][A-Za-z0-9_]*' | cut -c7- || true
}

# The subcommands a --help lists under "Commands:" (clap's own `help` aside): the lines indented
# by two spaces (a wrapped description continues further in).
subcommands() {
  sed -n '/^Commands:/,/^$/p' | awk 'NR > 1 && /^  [^ ]/ {print $1}' | grep -vx help || true
}

# read_by[NAME]: the binaries that read NAME (through an option of theirs or of a subcommand).
declare -A read_by=()
for bin in $BINARIES; do
  exe=$BIN/$bin
  [ -x "$exe" ] || die "$exe is missing: build the binaries first (cargo build --workspace --bins)"
  help=$("$exe" --help) || die "$bin --help failed"
  names=$(env_names <<<"$help")
  for sub in $(subcommands <<<"$help"); do
    sub_help=$("$exe" "$sub" --help) || die "$bin $sub --help failed"
    names+=$'\n'$(env_names <<<"$sub_help")
  done
  for name in $(printf '%s\n' $names $NOT_IN_HELP | sort -u); do
    read_by[$name]="${read_by[$name]:+${read_by[$name]}, }$bin"
  done
done

# The README's "## Configuration" section has two tables, under "### Read by the binaries" and
# "### Read by the scripts only"; a row's first cell names one or more variables in backticks.
table_names() {
  awk -v want="$1" '
    /^## / { in_config = ($0 == "## Configuration"); sub_section = ""; next }
    /^### / { sub_section = $0; next }
    in_config && sub_section == want && /^\| *`/ {
      split($0, cells, "|")
      cell = cells[2]
      while (match(cell, /`[A-Za-z_][A-Za-z0-9_]*`/)) {
        print substr(cell, RSTART + 1, RLENGTH - 2)
        cell = substr(cell, RSTART + RLENGTH)
      }
    }' "$README" | sort -u
}
binaries_table=$(table_names "### Read by the binaries")
scripts_table=$(table_names "### Read by the scripts only")
[ -n "$binaries_table" ] || die "$README has no table under \"## Configuration\" / \"### Read by the binaries\""

# .env.example: each variable as a (commented-out) assignment, `# NAME=value`.
example=$(grep -oE '^#? *[A-Z_][A-Z0-9_]*=' "$ENV_EXAMPLE" | tr -d '#= ' | sort -u)

has() { grep -qxF "$1" <<<"$2"; }

for name in $(printf '%s\n' "${!read_by[@]}" | sort); do
  has "$name" "$binaries_table" \
    || problem "$name (read by ${read_by[$name]}) is missing from the table \"Read by the binaries\" in $README"
  has "$name" "$example" \
    || problem "$name (read by ${read_by[$name]}) is missing from $ENV_EXAMPLE"
done

for name in $binaries_table; do
  [ -n "${read_by[$name]:-}" ] \
    || problem "$name is in the table \"Read by the binaries\" in $README, but no binary's --help names it (removed or renamed? if only the scripts read it, move it to \"Read by the scripts only\")"
done

for name in $scripts_table; do
  if [ -n "${read_by[$name]:-}" ]; then
    problem "$name is in the table \"Read by the scripts only\" in $README, but ${read_by[$name]} reads it: move it to \"Read by the binaries\""
  elif ! grep -qw -- "$name" "$ROOT"/scripts/*.sh; then
    problem "$name is in the table \"Read by the scripts only\" in $README, but no script in scripts/ reads it"
  fi
  has "$name" "$example" || problem "$name (read by the scripts) is missing from $ENV_EXAMPLE"
done

for name in $example; do
  has "$name" "$binaries_table" || has "$name" "$scripts_table" \
    || problem "$name is in $ENV_EXAMPLE but in neither configuration table of $README"
done

if [ "$problems" -gt 0 ]; then
  echo "check-docs: $problems problem(s): the configuration tables in $README and $ENV_EXAMPLE must list every variable the binaries read (see their --help)" >&2
  exit 1
fi
log "docs: all $(printf '%s\n' "${!read_by[@]}" | wc -l) variables the binaries read, and $(wc -w <<<"$scripts_table") of the scripts, are in the README and .env.example"
