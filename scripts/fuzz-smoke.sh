#!/usr/bin/env bash
# Runs every fuzz target in fuzz/ for a short time each (default 10s).
set -euo pipefail
cd "$(dirname "$0")/.."
t="${1:-10s}"
for target in $(grep -ho '^func Fuzz[A-Za-z0-9_]*' fuzz/*_test.go | sed 's/^func //' | sort -u); do
  echo "-- $target"
  go test -run='^$' -fuzz="^${target}\$" -fuzztime="$t" ./fuzz/
done
