#!/usr/bin/env bash
# Run one fuzz harness for a fixed time.
#
# usage: tests/fuzz/run.sh [--build DIR | --bin FILE] [--work DIR] NAME SECONDS
#
#   --build DIR  the SP_FUZZ=ON build (default: $SP_FUZZ_BUILD or build-fuzz
#                next to the sources); the harness is DIR/fuzz/fuzz_NAME
#   --bin FILE   the harness binary itself (CTest passes this)
#   --work DIR   where the growing corpus and crash files go
#                (default: the build's fuzz/work)
#
# New inputs go to WORK/NAME/corpus (never into the committed seed corpus
# tests/fuzz/corpus/NAME, which is read too); a crash, leak or timeout
# leaves WORK/NAME/artifacts/crash-* (or leak-*, timeout-*) and makes this
# script fail. The last line is a summary: execs, execs/s, outcome.
# FUZZ_KEEP_GOING=1 uses libFuzzer's fork mode and keeps fuzzing after a
# crash (every crash is kept in artifacts/).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
build=${SP_FUZZ_BUILD:-$here/../../build-fuzz}
bin=""
work=""
while [ $# -gt 2 ]; do
  case $1 in
  --build) build=$2; shift 2 ;;
  --bin) bin=$2; shift 2 ;;
  --work) work=$2; shift 2 ;;
  *) echo "run.sh: unknown option $1" >&2; exit 2 ;;
  esac
done
name=${1:?usage: run.sh [--build DIR|--bin FILE] [--work DIR] NAME SECONDS}
secs=${2:?usage: run.sh [--build DIR|--bin FILE] [--work DIR] NAME SECONDS}
case $secs in '' | *[!0-9]*) echo "run.sh: SECONDS must be a number" >&2; exit 2 ;; esac
[ -n "$bin" ] || bin=$build/fuzz/fuzz_$name
[ -n "$work" ] || work=$(dirname "$bin")/work
if [ ! -x "$bin" ]; then
  echo "run.sh: no harness $bin (configure with CC=clang -DSP_FUZZ=ON)" >&2
  exit 2
fi
help=$("$bin" -help=1 2>&1 || true)
if ! grep -q max_total_time <<<"$help"; then
  echo "run.sh: $bin is a replay build, not libFuzzer (SP_FUZZ=OFF)" >&2
  exit 2
fi
seeds=$here/corpus/$name
corpus=$work/$name/corpus
artifacts=$work/$name/artifacts
mkdir -p "$corpus" "$artifacts"
log=$work/$name/last-run.log
# Regression inputs are not fed here: an open one would stop the run at
# once (fuzz.regress.NAME replays them).
inputs=("$corpus" "$seeds")
keep=()
if [ "${FUZZ_KEEP_GOING:-0}" = 1 ]; then
  # Fork mode: record every crash and go on (to find more than one).
  keep=(-fork=1 -ignore_crashes=1 -ignore_timeouts=1 -ignore_ooms=1)
fi

# -timeout: one input may take at most 10 s (the probe's deadline is 2 s);
# -rss_limit_mb: catches unbounded growth; -max_len: replies beyond the
# caps need room, the probe harness gets more.
maxlen=4096
[ "$name" = probe ] && maxlen=16384
[ "$name" = reply ] && maxlen=40000
set +e
"$bin" -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 \
  -max_len=$maxlen -print_final_stats=1 -artifact_prefix="$artifacts/" \
  ${keep[@]+"${keep[@]}"} "${inputs[@]}" >"$log" 2>&1
rc=$?
set -e
tail -n 25 "$log"
execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n1)
speed=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -n1)
if [ -z "$execs" ]; then
  # Fork mode prints "#EXECS: cov: ..." progress lines instead.
  execs=$(grep -oE '^#[0-9]+' "$log" | tail -n1 | tr -d '#' || true)
  [ -n "$execs" ] && speed=$((execs / (secs > 0 ? secs : 1)))
fi
found=$(find "$artifacts" -type f | wc -l)
outcome=ok
[ "$rc" -eq 0 ] || outcome="FAILED (exit $rc, artifacts in $artifacts)"
echo "fuzz summary: $name ${secs}s execs=${execs:-?} execs/s=${speed:-?} artifacts=$found $outcome"
exit "$rc"
