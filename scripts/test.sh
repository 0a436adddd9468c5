#!/usr/bin/env bash
# THE test command (what CI runs): install dependencies, configure with
# warnings as errors, build, run every CTest test. Run as root from the
# repository (a fresh clone is fine). Exits non-zero when anything fails.
#
# Environment: SP_BUILD_DIR (default: build), SP_JOBS (default: 2),
#              SP_CTEST_ARGS (extra ctest arguments, e.g. "-R nagios4").
set -euo pipefail
cd "$(dirname "$0")/.."

build=${SP_BUILD_DIR:-build}
jobs=${SP_JOBS:-2}

bash scripts/install-deps.sh
cmake -S . -B "$build" -DSP_WERROR=ON
cmake --build "$build" -j"$jobs"
# shellcheck disable=SC2086
ctest --test-dir "$build" --output-on-failure ${SP_CTEST_ARGS:-}
