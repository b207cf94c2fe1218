#!/usr/bin/env bash
# Runs every fuzz target in fuzz/ for a short time each (default 10s).
# A run that ends with the fuzzing engine's own "context deadline exceeded"
# and no failing input (its coordinator missed the stop on a loaded
# machine) is run once more; a target that fails twice, or fails with an
# input, fails the script.
set -euo pipefail
cd "$(dirname "$0")/.."
t="${1:-10s}"
for target in $(grep -ho '^func Fuzz[A-Za-z0-9_]*' fuzz/*_test.go | sed 's/^func //' | sort -u); do
  echo "-- $target"
  for attempt in 1 2; do
    if out=$(go test -run='^$' -fuzz="^${target}\$" -fuzztime="$t" ./fuzz/ 2>&1); then
      echo "$out" | tail -2
      break
    fi
    echo "$out" | tail -20
    if [ "$attempt" = 2 ] || ! grep -q 'context deadline exceeded' <<<"$out" || grep -q 'Failing input written' <<<"$out"; then
      exit 1
    fi
    echo "-- $target: the engine missed its deadline without a failing input; once more"
  done
done
