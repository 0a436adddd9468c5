#!/usr/bin/env bash
# Provider presets (--provider) against loopback fault servers: a private
# dnsmasq on 127.0.90.53 points the presets' host names (smtp.gmail.com,
# smtp.sendgrid.net, smtp.fastmail.com) at 127.0.90.x, where
# smtp_fault_server answers with the providers leaf of the test CA. Nothing
# leaves loopback: dnsmasq has no upstream (every other name is REFUSED).
#
# usage: presets.sh --check CHECK --server SERVER --certs DIR NAME
#        presets.sh --certs DIR make-certs
# One CTest test per case_NAME function (presets.NAME). Exit 0 pass, 1 fail,
# 77 skip.
set -uo pipefail

SKIP=77
# shellcheck disable=SC2034 # CHECK is read by check_expect.sh
CHECK=
SERVER=
CERTS=
here=$(cd "$(dirname "$0")" && pwd)

# Print a message and exit as failed.
fail() {
  echo "FAIL: $*" >&2
  exit 1
}

# Print a message and exit as skipped.
skip() {
  echo "SKIP: $*" >&2
  exit "$SKIP"
}

tmp=$(mktemp -d /tmp/sp-presets.XXXXXX)
pids=()

# Stop what this run started and remove its directory.
cleanup() {
  local p
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null; done
  rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 1' INT TERM

# shellcheck source=tests/lib/check_expect.sh
. "$here/../lib/check_expect.sh"

# Start the fault server with the given --listen specs (the providers leaf).
start_server() {
  local -a args=()
  local spec n=${#pids[@]} i
  for spec in "$@"; do args+=(--listen "$spec"); done
  "$SERVER" --cert-prefix "$CERTS/providers" --ready-file "$tmp/s$n.ready" \
    --log "$tmp/s$n.log" "${args[@]}" 2>"$tmp/s$n.err" &
  pids+=("$!")
  for ((i = 0; i < 600; i++)); do
    [ -e "$tmp/s$n.ready" ] && return 0
    kill -0 "${pids[-1]}" 2>/dev/null || break
    sleep 0.05
  done
  cat "$tmp/s$n.err" >&2
  fail "fault server did not get ready: $*"
}

# Start dnsmasq on 127.0.90.53:PORT with the preset names on loopback.
start_dnsmasq() {
  local port=$1 i
  command -v dnsmasq >/dev/null || skip "dnsmasq is not installed"
  dnsmasq --no-daemon --no-resolv --no-hosts --conf-file=/dev/null \
    --listen-address=127.0.90.53 --port="$port" --bind-interfaces \
    --user=root --pid-file= --log-facility="$tmp/dnsmasq.log" --log-queries \
    --address=/smtp.gmail.com/127.0.90.1 --address=/smtp.sendgrid.net/127.0.90.2 \
    --address=/smtp.fastmail.com/127.0.90.3 2>"$tmp/dnsmasq.err" &
  pids+=("$!")
  for ((i = 0; i < 200; i++)); do
    kill -0 "${pids[-1]}" 2>/dev/null || fail "dnsmasq exited: $(cat "$tmp/dnsmasq.err")"
    ss -Hlun "sport = :$port" | grep -q 127.0.90.53 && return 0
    sleep 0.05
  done
  fail "dnsmasq did not listen on 127.0.90.53:$port"
}

# Assert the last check's output matches each expression given.
expect_output() {
  local re
  for re in "$@"; do
    grep -Eqi -- "$re" "$tmp/check.out" || fail "the check's output lacks /$re/"
    echo "output matches /$re/"
  done
}

# The common check arguments: the private resolver and the test CA.
dns() { echo "--dns-server 127.0.90.53:$1 --cafile $CERTS/ca.pem"; }

# ---- cases ----------------------------------------------------------------

# A server that does what Gmail documents: 587 STARTTLS, 465 implicit, AUTH
# after TLS; no -H, so the preset's own host is resolved and probed.
case_gmail_conforming() {
  start_dnsmasq 5391
  start_server 127.0.90.1:587=starttls 127.0.90.1:465=implicit
  # shellcheck disable=SC2046
  expect_check 0 "587 ok" "465 ok" -- --provider gmail $(dns 5391)
  grep -q 'smtp.gmail.com is 127.0.90.1' "$tmp/dnsmasq.log" || fail "smtp.gmail.com not asked"
}

# Every port SendGrid documents (587, 465, 2525, 25), alias spelling.
case_sendgrid_conforming() {
  start_dnsmasq 5392
  start_server 127.0.90.2:587=starttls 127.0.90.2:465=implicit \
    127.0.90.2:2525=starttls 127.0.90.2:25=starttls
  # shellcheck disable=SC2046
  expect_check 0 "587 ok" "465 ok" "2525 ok" "25 ok" -- --provider Twilio-SendGrid $(dns 5392)
}

# Fastmail's 465 speaking STARTTLS instead of implicit TLS: a
# policy_violation naming Fastmail; 587 stays ok.
case_fastmail_465_not_implicit() {
  start_dnsmasq 5393
  start_server 127.0.90.3:587=starttls 127.0.90.3:465=starttls
  # shellcheck disable=SC2046
  expect_check 2 "587 ok" "465 policy_violation" -- --provider fastmail $(dns 5393)
  expect_output "465 policy_violation: Fastmail documents otherwise: tls: implicit TLS expected"
}

# Gmail's preset with SendGrid's host: flagged on every port, though the
# server itself conforms.
case_wrong_provider_host() {
  start_dnsmasq 5394
  start_server 127.0.90.2:587=starttls 127.0.90.2:465=implicit
  # shellcheck disable=SC2046
  expect_check 2 "587 policy_violation" "465 policy_violation" -- \
    --provider gmail -H smtp.sendgrid.net $(dns 5394)
  expect_output "this host \(smtp.sendgrid.net\) is SendGrid's, not Gmail's"
}

# A user's providers file (SMTP_PROBE_PROVIDERS) replaces the built-in row:
# with 465 documented as STARTTLS the same server conforms; a broken file
# is refused with its line.
case_user_file() {
  start_dnsmasq 5395
  start_server 127.0.90.3:587=starttls 127.0.90.3:465=starttls
  cat >"$tmp/providers.yml" <<'YML'
providers:
  fastmail:
    name: Fastmail (site copy)
    host: smtp.fastmail.com
    source: https://example.invalid/our-notes
    as_of: "2026-01"
    ports:
      465: {tls: starttls, auth: after_tls}
      587: {tls: starttls, auth: after_tls}
YML
  export SMTP_PROBE_PROVIDERS=$tmp/providers.yml
  # shellcheck disable=SC2046
  expect_check 0 "587 ok" "465 ok" -- --provider fastmail $(dns 5395)
  printf 'providers:\n  x: [\n' >"$tmp/providers.yml"
  # shellcheck disable=SC2046
  expect_check 3 -- --provider fastmail $(dns 5395)
  expect_output "providers.yml line"
  unset SMTP_PROBE_PROVIDERS
}

# ---- main -------------------------------------------------------------------

while [ $# -gt 0 ]; do
  case $1 in
  --check)
    # shellcheck disable=SC2034 # read by check_expect.sh
    CHECK=$2
    shift 2
    ;;
  --server) SERVER=$2; shift 2 ;;
  --certs) CERTS=$2; shift 2 ;;
  *) break ;;
  esac
done
name=${1:?usage: presets.sh --check CHECK --server SERVER --certs DIR NAME}
if [ "$name" = make-certs ]; then
  rm -rf "$CERTS"
  exec bash "$here/../env/make-certs.sh" "$CERTS"
fi
[ "$(id -u)" = 0 ] || skip "needs root (ports 25/465/587 on loopback)"
declare -F "case_$name" >/dev/null || fail "no case $name"
"case_$name"
echo "PASS: presets.$name"
