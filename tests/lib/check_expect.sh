#!/usr/bin/env bash
# check_expect.sh - run the Nagios check and assert its verdict, for the
# test scripts that drive check_smtp_ports (tests/fault_server/scenarios.sh,
# tests/mta/*.sh). Sourced; the caller defines fail, skip, $CHECK (the
# check's binary) and $tmp (a private directory). The last check's output
# stays in $tmp/check.out (stderr in $tmp/check.err), its run time in
# check_ms.

# Milliseconds the last expect_check's check ran.
check_ms=0

# State word for a Nagios exit code.
state_word() {
  case $1 in
  0) echo OK ;;
  1) echo WARNING ;;
  2) echo CRITICAL ;;
  *) echo UNKNOWN ;;
  esac
}

# expect_check EXIT "PORT CODE"... -- CHECK-ARGS...
# Run the check (-t 30 unless the arguments give -t) under a 60 s watchdog
# and assert its exit code, its first line's state word and each PORT CODE.
# Prefix with "netns NAME" to run the check inside a namespace.
# shellcheck disable=SC2154 # CHECK and tmp are the caller's
expect_check() {
  local -a pre=()
  if [ "$1" = netns ]; then
    pre=(ip netns exec "$2")
    shift 2
  fi
  local want=$1
  shift
  local -a pairs=()
  while [ $# -gt 0 ] && [ "$1" != -- ]; do
    pairs+=("$1")
    shift
  done
  [ "${1:-}" = -- ] || fail "expect_check: missing --"
  shift
  [ -x "$CHECK" ] || skip "check_smtp_ports '$CHECK' is not built yet"
  local -a args=("$@")
  local has_t=0 a
  for a in "${args[@]}"; do
    [ "$a" = -t ] && has_t=1
  done
  [ $has_t = 1 ] || args+=(-t 30)
  echo "+ check_smtp_ports ${args[*]}"
  local out rc start
  start=$(date +%s%N)
  out=$("${pre[@]}" timeout 60 "$CHECK" "${args[@]}" 2>"$tmp/check.err")
  rc=$?
  check_ms=$((($(date +%s%N) - start) / 1000000))
  echo "  (finished in ${check_ms} ms)"
  printf '%s\n' "$out" >"$tmp/check.out"
  printf '%s\n' "$out" | while IFS= read -r l; do echo "  | $l"; done
  sed 's/^/  stderr| /' "$tmp/check.err"
  [ $rc -ne 124 ] || fail "check_smtp_ports did not finish within 60 s"
  local first
  first=$(printf '%s\n' "$out" | head -n 1)
  local word
  word=$(state_word "$want")
  local ok=1
  if [ "$rc" != "$want" ]; then
    echo "FAIL: exit code $rc, want $want ($word)" >&2
    ok=0
  fi
  if ! printf '%s\n' "$first" | grep -q "^SMTP $word - "; then
    echo "FAIL: first line does not start with 'SMTP $word - '" >&2
    ok=0
  fi
  local pair
  for pair in "${pairs[@]}"; do
    if ! printf '%s\n' "$first" | grep -Eq "(^|[ ;,])${pair}(\$|[ :;,])"; then
      echo "FAIL: first line does not show '$pair'" >&2
      ok=0
    fi
  done
  [ $ok = 1 ] || fail "check output did not match"
  echo "PASS: exit $rc, ${pairs[*]}"
}
