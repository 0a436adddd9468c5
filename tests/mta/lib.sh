# shellcheck shell=bash
# lib.sh - helpers shared by tests/mta/*.sh (sourced): a private temporary
# directory, the test CA, a password file, readiness, and expect_check, the
# same assertion as tests/fault_server/scenarios.sh's (exit code, state word
# and "PORT CODE" on the check's first line) plus phase assertions on the
# perfdata of that first line.
#
# The caller sets CHECK (check_smtp_ports) and MTA_NAME (for messages), and
# may append pids to MTA_PIDS and commands to MTA_STOP (run first at exit).

SKIP=77
MTA_PIDS=()
MTA_STOP=()
MTA_LOGS=()
# Debian's python3: aiosmtpd is in its dist-packages (a python3 earlier in
# PATH, pyenv say, would not see it).
PY=/usr/bin/python3
MTA_HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

mta_say() { echo "$MTA_NAME: $*" >&2; }

# Print a message and exit as failed.
fail() {
  echo "FAIL: $*" >&2
  exit 1
}

# Print a message and exit as skipped (CTest SKIP_RETURN_CODE 77): only for
# what this machine cannot do at all, never for a missing package.
skip() {
  echo "SKIP: $*" >&2
  exit "$SKIP"
}

# Make the private directory $tmp (mode 755: a daemon's own user must be
# able to reach its files there) and arrange the cleanup.
mta_init() {
  tmp=$(mktemp -d "/tmp/sp-mta-$MTA_NAME.XXXXXX")
  chmod 755 "$tmp"
  trap mta_cleanup EXIT
  trap 'exit 1' INT TERM
}

# Stop everything this run started (MTA_STOP commands, then MTA_PIDS),
# print the daemons' logs when failing, remove $tmp (kept with SP_MTA_KEEP=1).
mta_cleanup() {
  local rc=$? c p f
  for c in "${MTA_STOP[@]}"; do eval "$c" || true; done
  for p in "${MTA_PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${MTA_PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
  if [ "$rc" -ne 0 ] && [ "$rc" -ne "$SKIP" ]; then
    for f in "${MTA_LOGS[@]}"; do
      if [ -s "$f" ]; then
        mta_say "last lines of $f:"
        tail -n 30 "$f" >&2
      fi
    done
  fi
  if [ "${SP_MTA_KEEP:-0}" = 1 ]; then mta_say "kept $tmp"; else rm -rf "$tmp"; fi
  exit "$rc"
}

# The test CA and leaves (tests/env/make-certs.sh) in $tmp/certs. The
# leaf server.pem names mail.smtp-probe.test (not our addresses): every
# check passes --sni mail.smtp-probe.test. wrongname.pem names only
# other.example, expired.pem expired in 2021.
mta_certs() {
  bash "$1" "$tmp/certs" || fail "make-certs.sh failed"
  # shellcheck disable=SC2034 # for the sourcing script
  CA=$tmp/certs/ca.pem
}

# A random password in FILE (mode 600, first line); never on a command line.
mta_password() {
  (umask 077 && openssl rand -hex 16 >"$1")
  chmod 600 "$1"
}

# Wait (at most SECONDS) until every SPEC of wait_ready.py answers.
mta_wait_ready() {
  local secs=$1
  shift
  "$PY" "$MTA_HERE/wait_ready.py" "$secs" "$@" || fail "$MTA_NAME did not get ready"
}

# state_word and expect_check: the shared check runner (the output stays
# in $tmp/check.out for expect_phases / expect_output).
# shellcheck source=tests/lib/check_expect.sh
. "$(dirname "${BASH_SOURCE[0]}")/../lib/check_expect.sh"

# expect_phases PORT PHASE...: the last check's perfdata (first line) has
# exactly these phases for PORT, in this order ('PORT_PHASE'=...s).
expect_phases() {
  local port=$1 got want
  shift
  want="$*"
  got=$(head -n 1 "$tmp/check.out" | sed 's/^[^|]*|//' | tr ' ' '\n' |
    sed -n "s/^'${port}_\([a-z_]*\)'=[0-9.]*s;.*/\1/p" | tr '\n' ' ')
  got=${got% }
  [ "$got" = "$want" ] || fail "port $port phases '$got', want '$want'"
  echo "PASS: $port phases: $got"
}

# expect_phase_min PORT PHASE[+PHASE...] SECONDS: that phase (or the sum of
# those phases) took at least SECONDS.
expect_phase_min() {
  local port=$1 phases=$2 min=$3 ph v sum=0
  for ph in ${phases//+/ }; do
    v=$(head -n 1 "$tmp/check.out" | sed 's/^[^|]*|//' | tr ' ' '\n' |
      sed -n "s/^'${port}_${ph}'=\([0-9.]*\)s;.*/\1/p")
    [ -n "$v" ] || fail "no perfdata for ${port}_${ph}"
    sum=$(awk -v a="$sum" -v b="$v" 'BEGIN { printf "%.6f", a + b }')
  done
  awk -v v="$sum" -v m="$min" 'BEGIN { exit !(v >= m) }' ||
    fail "${port} ${phases} = ${sum}s, want >= ${min}s"
  echo "PASS: ${port} ${phases} = ${sum}s >= ${min}s"
}

# expect_output REGEX: some line of the last check's output matches
# (grep -E).
expect_output() {
  grep -Eq -- "$1" "$tmp/check.out" || fail "check output has no line matching '$1'"
  echo "PASS: output shows '$1'"
}

# expect_no_secret FILE: the secret in FILE is in no check output.
expect_no_secret() {
  local s
  s=$(head -n 1 "$1")
  if grep -qF -- "$s" "$tmp/check.out" "$tmp/check.err"; then
    fail "the password from $1 shows in the check's output"
  fi
}

# The checks every good MTA instance passes, on the address $GOOD with the
# caller's common, auth and starttls_phases arrays, USER_ID, PW and WRONG:
# 465, 587 and 2525 OK with every phase, AUTH PLAIN and a test message
# (never AUTH before TLS), AUTH LOGIN on LOGIN_PORT, a wrong password on
# WRONG_PORT refused; no password in any output.
# usage: expect_good_submission_ports LOGIN_PORT WRONG_PORT
# shellcheck disable=SC2154 # common, auth, starttls_phases: the caller's
expect_good_submission_ports() {
  local login_port=$1 wrong_port=$2
  expect_check 0 "465 ok" "587 ok" "2525 ok" -- -H "$GOOD" -p 465,587,2525 \
    "${common[@]}" "${auth[@]}" --mail-from "$USER_ID" --rcpt-to "postmaster@smtp-probe.test" --send
  expect_phases 465 connect banner tls_handshake ehlo_tls auth mail_from rcpt_to total
  expect_phases 587 "${starttls_phases[@]}" auth mail_from rcpt_to total
  expect_phases 2525 "${starttls_phases[@]}" auth mail_from rcpt_to total
  expect_output '^465 implicit: OK ok$'
  expect_output '^587 submission: OK ok$'
  expect_output '^2525 submission: OK ok$'
  expect_output 'AUTH: PLAIN accepted'
  expect_output 'test message accepted'
  expect_no_secret "$PW"
  if grep -E 'capabilities before TLS: .*AUTH' "$tmp/check.out"; then
    fail "$MTA_NAME offered AUTH before TLS on $GOOD"
  fi

  expect_check 0 "$login_port ok" -- -H "$GOOD" -p "$login_port" "${common[@]}" "${auth[@]}" --auth-mech LOGIN
  expect_output 'AUTH: LOGIN accepted'
  expect_no_secret "$PW"

  echo "=== $GOOD: a wrong password ==="
  expect_check 2 "$wrong_port auth_failed" -- -H "$GOOD" -p "$wrong_port" "${common[@]}" \
    --auth-user "$USER_ID" --auth-password-file "$WRONG"
  expect_no_secret "$WRONG"
}
