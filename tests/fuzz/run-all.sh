#!/usr/bin/env bash
# Run every fuzz harness of an SP_FUZZ=ON build for SECONDS each, one
# after the other, and print one summary line per harness.
#
# usage: tests/fuzz/run-all.sh [--build DIR] SECONDS
#
# Exit status: 0 when no harness found anything, 1 otherwise.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
build=${SP_FUZZ_BUILD:-$here/../../build-fuzz}
if [ "${1:-}" = --build ]; then
  build=$2
  shift 2
fi
secs=${1:?usage: run-all.sh [--build DIR] SECONDS}
status=0
summary=()
for bin in "$build"/fuzz/fuzz_*; do
  [ -x "$bin" ] || continue
  name=${bin##*/fuzz_}
  echo "=== $name ($secs s)"
  if out=$(bash "$here/run.sh" --bin "$bin" "$name" "$secs"); then :; else status=1; fi
  echo "$out" | tail -n 3
  summary+=("$(echo "$out" | grep '^fuzz summary:' || echo "fuzz summary: $name no summary")")
done
if [ ${#summary[@]} -eq 0 ]; then
  echo "run-all.sh: no harnesses in $build/fuzz (configure with CC=clang -DSP_FUZZ=ON)" >&2
  exit 2
fi
printf '%s\n' "${summary[@]}"
exit "$status"
