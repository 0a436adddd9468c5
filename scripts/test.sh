#!/usr/bin/env bash
# THE test command (what CI runs; the CI tier). Run as root from the
# repository (a fresh clone is fine). Exits non-zero when anything fails.
#
#   1. install dependencies (scripts/install-deps.sh, idempotent)
#   2. normal build, warnings as errors: every CTest test, real daemons
#      included (Postfix, dnsmasq, collectd, nagios4, Prometheus)
#   3. AddressSanitizer + UndefinedBehaviorSanitizer build: the unit tests,
#      the engine's timer test, the fault-server scenarios, the
#      hostile-server and fuzz-regression
#      tests (the real-daemon tests stay on the normal build: collectd
#      cannot dlopen an ASan plugin, and valgrind does not run under ASan)
#   4. libFuzzer build (clang): every harness fuzzes for 20 s from the
#      committed seed corpus
#
# Environment: SP_BUILD_DIR (default: build), SP_JOBS (default: 2),
#              SP_CTEST_ARGS (extra ctest arguments for step 2),
#              SP_TIERS (default "normal asan fuzz": which of 2-4 to run).
set -euo pipefail
cd "$(dirname "$0")/.."

build=${SP_BUILD_DIR:-build}
jobs=${SP_JOBS:-2}
tiers=${SP_TIERS:-normal asan fuzz}

bash scripts/install-deps.sh

# Configure a build directory afresh when it was made from another tree.
configure() {
  local dir=$1
  shift
  if [ -f "$dir/CMakeCache.txt" ] &&
    ! grep -q "^CMAKE_HOME_DIRECTORY:INTERNAL=$PWD\$" "$dir/CMakeCache.txt"; then
    rm -rf "$dir"
  fi
  cmake -S . -B "$dir" "$@"
}

if [[ " $tiers " == *" normal "* ]]; then
  echo "=== tier: normal build, every test ==="
  configure "$build" -DSP_WERROR=ON
  cmake --build "$build" -j"$jobs"
  # shellcheck disable=SC2086
  ctest --test-dir "$build" --output-on-failure ${SP_CTEST_ARGS:-}
fi

if [[ " $tiers " == *" asan "* ]]; then
  echo "=== tier: ASan + UBSan build: unit, engine, fault, hostile, fuzz replays ==="
  configure "$build-asan" -DSP_WERROR=ON -DSP_SANITIZE=ON
  cmake --build "$build-asan" -j"$jobs"
  ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
    UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
    ctest --test-dir "$build-asan" --output-on-failure -j"$jobs" \
    -R '^(unit|engine|fault|hostile|fuzz\.regress)\.' -E 'valgrind'
fi

if [[ " $tiers " == *" fuzz "* ]]; then
  echo "=== tier: libFuzzer, 20 s per harness ==="
  CC=clang configure "$build-fuzz" -DSP_FUZZ=ON -DSP_SANITIZE=ON
  cmake --build "$build-fuzz" -j"$jobs" --target fuzz_harnesses
  ctest --test-dir "$build-fuzz" --output-on-failure -R '^fuzz\.'
fi
