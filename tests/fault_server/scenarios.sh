#!/usr/bin/env bash
# Diagnosis scenarios: start smtp_fault_server with a scripted fault, run the
# Nagios check check_smtp_ports against it, and assert the exact exit code,
# the state word and "PORT CODE" for every port on the first output line.
#
# usage: scenarios.sh --check CHECK --server SERVER --certs DIR NAME
#        scenarios.sh --certs DIR make-certs     (fresh test certificates)
#        scenarios.sh --list                     (scenario names)
#
# Every scenario is a function scenario_NAME below; CMake registers one CTest
# test per function (fault.NAME). Exit 0 pass, 1 fail, 77 skip (the machine
# cannot do what the scenario needs, e.g. network namespaces).
#
# Addresses: 127.0.20.x only (the fault server's loopback range), and in the
# namespace scenarios 10.250.0.1/10.250.0.2 that exist only inside network
# namespaces this script creates and deletes.
set -uo pipefail

SKIP=77
CHECK=
SERVER=
CERTS=
here=$(cd "$(dirname "$0")" && pwd)

# ---- helpers -------------------------------------------------------------

# Print a message and exit as failed.
fail() {
  echo "FAIL: $*" >&2
  exit 1
}

# Print a message and exit as skipped (CTest SKIP_RETURN_CODE 77).
skip() {
  echo "SKIP: $*" >&2
  exit "$SKIP"
}

tmp=$(mktemp -d /tmp/sp-fault.XXXXXX)
pids=()
server_extra=()
SERVER_WRAP=()
last_server_log=/dev/null
netns=()

# Stop everything this run started and remove its temporary directory.
cleanup() {
  local p n
  for p in "${pids[@]}"; do
    kill "$p" 2>/dev/null
  done
  for p in "${pids[@]}"; do
    wait "$p" 2>/dev/null
  done
  for n in "${netns[@]}"; do
    ip netns del "$n" 2>/dev/null
  done
  rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 1' INT TERM

# Wait (up to 30 s) for a file to exist while process $2 is alive.
wait_for_file() {
  local file=$1 pid=$2 i
  for ((i = 0; i < 600; i++)); do
    [ -e "$file" ] && return 0
    kill -0 "$pid" 2>/dev/null || return 1
    sleep 0.05
  done
  return 1
}

# Start the fault server with the given --listen specs; wait for its ready
# file. Prefix with "netns NAME" to run it inside a namespace.
start_server() {
  local -a pre=()
  if [ "${1:-}" = netns ]; then
    pre=(ip netns exec "$2")
    shift 2
  fi
  local -a args=()
  local spec
  for spec in "$@"; do
    args+=(--listen "$spec")
  done
  local n=${#pids[@]}
  local ready=$tmp/server$n.ready log=$tmp/server$n.log
  "${pre[@]}" "${SERVER_WRAP[@]}" "$SERVER" --cert-prefix "$CERTS/server" --ready-file "$ready" \
    --log "$log" "${server_extra[@]}" "${args[@]}" 2>"$tmp/server$n.err" &
  local pid=$!
  pids+=("$pid")
  if ! wait_for_file "$ready" "$pid"; then
    cat "$tmp/server$n.err" >&2
    fail "fault server did not get ready: $*"
  fi
  last_server_log=$log
  echo "fault server ($pid) ready: $*"
}

# Assert the latest fault server's log has at least COUNT lines matching RE.
expect_server_log() {
  local re=$1 count=${2:-1}
  local got
  got=$(grep -Ec "$re" "$last_server_log")
  echo "server log: $got line(s) match '$re'"
  [ "$got" -ge "$count" ] || fail "server log has $got lines matching '$re', want >= $count"
}

# Run a reference client test of client.py against HOST PORT.
client() {
  local test=$1 host=$2 port=$3
  shift 3
  timeout 90 python3 "$here/client.py" "$test" "$host" "$port" "$(CA)" "$@" ||
    fail "client.py $test $host $port failed"
}

# state_word, expect_check and check_ms: the shared check runner.
# shellcheck source=tests/lib/check_expect.sh
. "$here/../lib/check_expect.sh"

CA() { echo "$CERTS/ca.pem"; }


# Assert the last check output (every line) matches each extended regular
# expression given (case-insensitive).
expect_output() {
  local re
  for re in "$@"; do
    grep -Eqi -- "$re" "$tmp/check.out" || fail "the check's output lacks /$re/"
    echo "output matches /$re/"
  done
}

# Assert the last check's first line (state, codes, each port's detail)
# matches each expression given (case-insensitive).
expect_first_line() {
  local re first
  first=$(head -n 1 "$tmp/check.out")
  for re in "$@"; do
    printf '%s\n' "${first%% | *}" | grep -Eqi -- "$re" ||
      fail "the first line (before the perfdata) lacks /$re/"
    echo "first line matches /$re/"
  done
}

# Assert the last check output matches none of the expressions given.
expect_no_output() {
  local re
  for re in "$@"; do
    if grep -Eqi -- "$re" "$tmp/check.out"; then
      fail "the check's output has /$re/: $(grep -Ei -- "$re" "$tmp/check.out" | head -n 1)"
    fi
    echo "output does not match /$re/"
  done
}

# Assert the hint lines ("hint: ...", shown from -v on) of the last check
# output match each expression given (case-insensitive).
expect_hint() {
  local hints re
  hints=$(grep -E '^ *hint: ' "$tmp/check.out")
  [ -n "$hints" ] || fail "the check's output has no hint line (run it with -v)"
  for re in "$@"; do
    printf '%s\n' "$hints" | grep -Eqi -- "$re" || fail "no hint matches /$re/: $hints"
    echo "hint matches /$re/"
  done
}

# Assert the hint lines of the last check output match none of the
# expressions given.
expect_no_hint() {
  local hints re
  hints=$(grep -E '^ *hint: ' "$tmp/check.out")
  for re in "$@"; do
    if printf '%s\n' "$hints" | grep -Eqi -- "$re"; then
      fail "a hint matches /$re/: $hints"
    fi
    echo "no hint matches /$re/"
  done
}

# Seconds of phase PHASE of PORT in the last check's perfdata, or "".
perf_seconds() {
  head -n 1 "$tmp/check.out" | sed -nE "s/.*'$1_$2'=([0-9.]+)s;.*/\1/p"
}

# Assert phase PHASE of PORT took at least MIN seconds (from the perfdata).
expect_phase_at_least() {
  local port=$1 phase=$2 min=$3 v
  v=$(perf_seconds "$port" "$phase")
  [ -n "$v" ] || fail "no '${port}_${phase}' in the perfdata"
  awk -v v="$v" -v m="$min" 'BEGIN { exit !(v >= m) }' ||
    fail "perfdata ${port}_${phase}=${v}s, want >= ${min}s"
  echo "perfdata: ${port}_${phase}=${v}s (>= ${min}s)"
}

# Assert the last check finished within SECONDS.
expect_finished_within() {
  [ "$check_ms" -le $(($1 * 1000)) ] ||
    fail "the check took ${check_ms} ms, want <= $1 s"
  echo "finished in ${check_ms} ms (<= $1 s)"
}

# ---- scenarios: a good server --------------------------------------------

scenario_starttls_ok() {
  start_server 127.0.20.1:20587=starttls
  expect_check 0 "20587 ok" -- -H 127.0.20.1 -p 20587 --cafile "$(CA)"
}

scenario_starttls_sni_ok() {
  start_server 127.0.20.1:20588=starttls
  expect_check 0 "20588 ok" -- -H 127.0.20.1 -p 20588 --cafile "$(CA)" \
    --sni mail.smtp-probe.test
}

scenario_implicit_465_ok() {
  start_server 127.0.20.2:465=implicit
  expect_check 0 "465 ok" -- -H 127.0.20.2 -p 465 --cafile "$(CA)"
}

# Skip unless the machine has the IPv6 loopback address.
need_ipv6_loopback() {
  ip -6 addr show dev lo 2>/dev/null | grep -q 'inet6 ::1/' ||
    skip "no IPv6 loopback (::1) on this machine"
}

scenario_ipv6_ok() {
  need_ipv6_loopback
  start_server '[::1]:20589=starttls'
  expect_check 0 "20589 ok" -- -H ::1 -p 20589 --cafile "$(CA)"
}

# ---- STARTTLS missing or refused -------------------------------------------

scenario_plain_submission() {
  start_server 127.0.20.1:20001=plain
  expect_check 2 "20001 starttls_unavailable" -- -H 127.0.20.1 -p 20001 \
    --cafile "$(CA)"
}

scenario_plain_relay() {
  start_server 127.0.20.1:20002=plain
  expect_check 1 "20002 starttls_unavailable" -- -H 127.0.20.1 -p 20002 \
    --role relay --cafile "$(CA)"
}

scenario_starttls_454() {
  start_server 127.0.20.1:20003=starttls-454
  expect_check 2 "20003 starttls_unavailable" -- -H 127.0.20.1 -p 20003 \
    --cafile "$(CA)"
}

scenario_ehlo_reject_helo_ok() {
  start_server 127.0.20.1:20004=ehlo-reject-helo-ok
  expect_check 2 "20004 starttls_unavailable" -- -H 127.0.20.1 -p 20004 \
    --cafile "$(CA)"
}

# ---- rejections -------------------------------------------------------------

scenario_greet421() {
  # 421 at the greeting is temporary: deferred, not rejected.
  start_server 127.0.20.1:20005=greet421
  expect_check 2 "20005 deferred" -- -H 127.0.20.1 -p 20005 --cafile "$(CA)" \
    -v
  expect_first_line '4\.3\.2'
}

scenario_greet554() {
  start_server 127.0.20.1:20006=greet554
  expect_check 2 "20006 rejected" -- -H 127.0.20.1 -p 20006 --cafile "$(CA)"
}

scenario_ehlo_helo_reject() {
  start_server 127.0.20.1:20007=ehlo-helo-reject
  expect_check 2 "20007 rejected" -- -H 127.0.20.1 -p 20007 --cafile "$(CA)"
}

# ---- silence, closes, timeouts ----------------------------------------------

scenario_silent_banner_timeout() {
  start_server 127.0.20.1:20008=silent
  expect_check 2 "20008 banner_timeout" -- -H 127.0.20.1 -p 20008 \
    --cafile "$(CA)" --banner-wait 1 -t 5
  # The plaintext wait and the implicit-TLS retry: two connections.
  expect_server_log 'accepted on 127.0.20.1:20008' 2
}

scenario_close() {
  start_server 127.0.20.1:20009=close
  expect_check 2 "20009 connection_closed" -- -H 127.0.20.1 -p 20009 \
    --cafile "$(CA)"
}

scenario_close_after_ehlo() {
  start_server 127.0.20.1:20010=close-after-ehlo
  expect_check 2 "20010 connection_closed" -- -H 127.0.20.1 -p 20010 \
    --cafile "$(CA)"
}

scenario_starttls_stall() {
  start_server 127.0.20.1:20011=starttls-stall
  expect_check 2 "20011 read_timeout" -- -H 127.0.20.1 -p 20011 \
    --cafile "$(CA)" -t 3
}

scenario_starttls_stall_timeout_state() {
  # -t SECONDS:STATE re-maps the timeout codes' state.
  start_server 127.0.20.1:20032=starttls-stall
  expect_check 3 "20032 read_timeout" -- -H 127.0.20.1 -p 20032 \
    --cafile "$(CA)" -t 3:UNKNOWN
}

scenario_connect_refused() {
  # Nothing listens on 127.0.20.3:20099 (no fault server is started on .3).
  expect_check 2 "20099 connect_refused" -- -H 127.0.20.3 -p 20099 \
    --cafile "$(CA)"
}

# ---- protocol errors --------------------------------------------------------

scenario_garbage() {
  start_server 127.0.20.1:20012=garbage
  expect_check 2 "20012 protocol_error" -- -H 127.0.20.1 -p 20012 \
    --cafile "$(CA)"
}

scenario_endless_line() {
  start_server 127.0.20.1:20013=endless-line
  expect_check 2 "20013 protocol_error" -- -H 127.0.20.1 -p 20013 \
    --cafile "$(CA)"
}

scenario_endless_multiline() {
  start_server 127.0.20.1:20014=endless-multiline
  expect_check 2 "20014 protocol_error" -- -H 127.0.20.1 -p 20014 \
    --cafile "$(CA)"
}

scenario_huge_reply() {
  start_server 127.0.20.1:20015=huge-reply
  expect_check 2 "20015 protocol_error" -- -H 127.0.20.1 -p 20015 \
    --cafile "$(CA)"
}

# ---- TLS mode and handshake -------------------------------------------------

scenario_implicit_probed_starttls() {
  start_server 127.0.20.1:20016=implicit
  expect_check 2 "20016 tls_mode_mismatch" -- -H 127.0.20.1 -p 20016 \
    --tls starttls --cafile "$(CA)" --banner-wait 1
}

scenario_starttls_probed_implicit() {
  start_server 127.0.20.1:20017=starttls
  expect_check 2 "20017 tls_mode_mismatch" -- -H 127.0.20.1 -p 20017 \
    --tls implicit --cafile "$(CA)"
}

scenario_starttls_garbage() {
  start_server 127.0.20.1:20018=starttls-garbage
  expect_check 2 "20018 tls_handshake_failed" -- -H 127.0.20.1 -p 20018 \
    --cafile "$(CA)"
}

# ---- certificates -----------------------------------------------------------

scenario_cert_expired() {
  start_server 127.0.20.1:20019=starttls,cert=expired
  expect_check 2 "20019 cert_expired" -- -H 127.0.20.1 -p 20019 \
    --cafile "$(CA)"
}

# The expiring leaf has 2-3 days left (made fresh by the certs fixture):
# thresholds are chosen well clear of that boundary.
scenario_cert_expiring_warning() {
  start_server 127.0.20.1:20020=starttls,cert=expiring
  expect_check 1 "20020 cert_expiring" -- -H 127.0.20.1 -p 20020 \
    --cafile "$(CA)" -D 30,1
}

scenario_cert_expiring_critical() {
  start_server 127.0.20.1:20021=starttls,cert=expiring
  expect_check 2 "20021 cert_expiring" -- -H 127.0.20.1 -p 20021 \
    --cafile "$(CA)" -D 30,7
}

scenario_cert_expiring_below_threshold_ok() {
  start_server 127.0.20.1:20022=starttls,cert=expiring
  expect_check 0 "20022 ok" -- -H 127.0.20.1 -p 20022 --cafile "$(CA)" \
    -D 2,1
}

scenario_cert_wrongname() {
  start_server 127.0.20.1:20023=starttls,cert=wrongname
  expect_check 2 "20023 cert_hostname_mismatch" -- -H 127.0.20.1 -p 20023 \
    --cafile "$(CA)" --sni mail.smtp-probe.test
}

scenario_cert_wrongname_relay() {
  start_server 127.0.20.1:20024=starttls,cert=wrongname
  expect_check 1 "20024 cert_hostname_mismatch" -- -H 127.0.20.1 -p 20024 \
    --cafile "$(CA)" --sni mail.smtp-probe.test --role relay
}

scenario_cert_selfsigned() {
  start_server 127.0.20.1:20025=starttls,cert=selfsigned
  expect_check 2 "20025 cert_untrusted" -- -H 127.0.20.1 -p 20025 \
    --cafile "$(CA)"
}

scenario_cert_selfsigned_no_verify() {
  start_server 127.0.20.1:20033=starttls,cert=selfsigned
  expect_check 0 "20033 ok" -- -H 127.0.20.1 -p 20033 --no-verify
}

scenario_cert_untrusted_no_cafile() {
  # The system store does not know the test CA.
  start_server 127.0.20.1:20026=starttls
  expect_check 2 "20026 cert_untrusted" -- -H 127.0.20.1 -p 20026
}

# ---- AUTH -------------------------------------------------------------------

scenario_auth_before_tls() {
  start_server 127.0.20.1:20027=auth-before-tls
  expect_check 2 "20027 auth_before_tls" -- -H 127.0.20.1 -p 20027 \
    --cafile "$(CA)"
}

# ---- response time ----------------------------------------------------------

scenario_slow_warning() {
  start_server 127.0.20.1:20028=slow,delay=1500
  expect_check 1 "20028 ok" -- -H 127.0.20.1 -p 20028 --cafile "$(CA)" \
    -w 1 -c 20
}

scenario_slow_critical() {
  start_server 127.0.20.1:20029=slow,delay=1500
  expect_check 2 "20029 ok" -- -H 127.0.20.1 -p 20029 --cafile "$(CA)" \
    -w 0.5 -c 1
}

scenario_slow_phase_thresholds() {
  # Per-phase thresholds: the banner (1.2 s late) is over its warning, the
  # TLS handshake (not delayed) is well under its critical.
  start_server 127.0.20.1:20036=slow,delay=1200
  expect_check 1 "20036 ok" -- -H 127.0.20.1 -p 20036 --cafile "$(CA)" \
    --phase-warn banner=1 --phase-crit tls_handshake=20
  grep -q 'banner' "$tmp/check.out" || fail "the summary does not name the banner phase"
}

# ---- several ports at once --------------------------------------------------

scenario_mixed_ports() {
  start_server 127.0.20.9:25=plain 127.0.20.9:465=implicit \
    127.0.20.9:587=starttls 127.0.20.9:2525=greet554
  expect_check 2 "25 starttls_unavailable" "465 ok" "587 ok" "2525 rejected" \
    -- -H 127.0.20.9 -p 25,465,587,2525 --cafile "$(CA)"
}

scenario_mixed_ports_warning() {
  # Relay port without STARTTLS is only a WARNING; the others are fine.
  start_server 127.0.20.8:25=plain 127.0.20.8:465=implicit \
    127.0.20.8:587=starttls
  expect_check 1 "25 starttls_unavailable" "465 ok" "587 ok" \
    -- -H 127.0.20.8 -p 25,465,587 --cafile "$(CA)"
}

# ---- DNS (a private dnsmasq on 127.0.20.53) ---------------------------------

# Start dnsmasq on 127.0.20.53:PORT. It knows fault.smtp-probe.test and
# mail.smtp-probe.test (127.0.20.4), answers NXDOMAIN for *.invalid and, having
# no upstream, REFUSED for every other name.
start_dnsmasq() {
  local port=$1
  shift
  command -v dnsmasq >/dev/null || skip "dnsmasq is not installed"
  dnsmasq --no-daemon --no-resolv --no-hosts --conf-file=/dev/null \
    --listen-address=127.0.20.53 --port="$port" --bind-interfaces \
    --user=root --pid-file= --log-facility="$tmp/dnsmasq.log" --log-queries \
    --local=/invalid/ --local=/smtp-probe.test/ \
    --address=/fault.smtp-probe.test/127.0.20.4 \
    --address=/mail.smtp-probe.test/127.0.20.4 "$@" 2>"$tmp/dnsmasq.err" &
  local pid=$! i
  pids+=("$pid")
  for ((i = 0; i < 200; i++)); do
    kill -0 "$pid" 2>/dev/null || fail "dnsmasq exited: $(cat "$tmp/dnsmasq.err")"
    ss -Hlun "sport = :$port" | grep -q 127.0.20.53 && return 0
    sleep 0.05
  done
  fail "dnsmasq did not listen on 127.0.20.53:$port"
}

# Assert the private resolver's log shows PATTERN (the check really asked).
expect_dns_log() {
  grep -E "$1" "$tmp/dnsmasq.log" | sed 's/^/  dnsmasq| /'
  grep -Eq "$1" "$tmp/dnsmasq.log" || fail "dnsmasq log lacks '$1'"
}

scenario_dns_nxdomain() {
  start_dnsmasq 5300
  expect_check 2 "20701 dns_error" -- -H nosuch.invalid -p 20701 \
    --dns-server 127.0.20.53:5300 --cafile "$(CA)"
  expect_dns_log 'nosuch\.invalid is NXDOMAIN'
}

scenario_dns_refused() {
  start_dnsmasq 5302
  expect_check 2 "20702 dns_error" -- -H other.example -p 20702 \
    --dns-server 127.0.20.53:5302 --cafile "$(CA)"
  expect_dns_log 'query\[A+\] other\.example'
}

scenario_dns_ok() {
  start_dnsmasq 5301
  start_server 127.0.20.4:20700=starttls
  expect_check 0 "20700 ok" -- -H fault.smtp-probe.test -p 20700 \
    --dns-server 127.0.20.53:5301 --cafile "$(CA)" --sni mail.smtp-probe.test
  expect_dns_log 'fault\.smtp-probe\.test is 127\.0\.20\.4'
}

# ---- submission service discovery (RFC 6186; issue 15) --------------------

# Both services on one host: implicit TLS (20950) and STARTTLS (20951),
# the certificate verified for the user's domain, not the SRV target.
scenario_srv_both() {
  start_dnsmasq 5310 \
    --srv-host=_submissions._tcp.mail.smtp-probe.test,fault.smtp-probe.test,20950,0,0 \
    --srv-host=_submission._tcp.mail.smtp-probe.test,fault.smtp-probe.test,20951,0,0
  start_server 127.0.20.4:20950=implicit 127.0.20.4:20951=starttls
  expect_check 0 "20950 ok" "20951 ok" -- --domain-submission mail.smtp-probe.test \
    --dns-server 127.0.20.53:5310 --cafile "$(CA)"
  grep -q '^srv: _submissions._tcp.mail.smtp-probe.test: fault.smtp-probe.test port 20950' \
    "$tmp/check.out" || fail "no srv line for _submissions"
  grep -q '^srv: the certificate is verified for mail.smtp-probe.test' "$tmp/check.out" ||
    fail "the certificate is not verified for the user's domain"
}

# Only _submission: probed, and the missing implicit TLS is said.
scenario_srv_only_starttls() {
  start_dnsmasq 5311 \
    --srv-host=_submission._tcp.mail.smtp-probe.test,fault.smtp-probe.test,20952,0,0
  start_server 127.0.20.4:20952=starttls
  expect_check 0 "20952 ok" -- --domain-submission mail.smtp-probe.test \
    --dns-server 127.0.20.53:5311 --cafile "$(CA)"
  grep -q 'no _submissions._tcp record' "$tmp/check.out" ||
    fail "the missing _submissions record is not reported"
}

# A "." target: the domain says it offers no submission service.
scenario_srv_no_service() {
  start_dnsmasq 5312 --srv-host=_submissions._tcp.mail.smtp-probe.test \
    --srv-host=_submission._tcp.mail.smtp-probe.test
  expect_check 2 -- --domain-submission mail.smtp-probe.test \
    --dns-server 127.0.20.53:5312 --cafile "$(CA)"
  grep -q 'publishes no submission service' "$tmp/check.out" ||
    fail "a \".\" target is not read as no service"
}

# No record at all: nothing to probe, UNKNOWN.
scenario_srv_missing() {
  start_dnsmasq 5313
  expect_check 3 -- --domain-submission mail.smtp-probe.test \
    --dns-server 127.0.20.53:5313 --cafile "$(CA)"
  grep -q 'no _submissions._tcp or _submission._tcp SRV record' "$tmp/check.out" ||
    fail "missing records are not reported"
}

# Records that contradict the server: _submissions names a STARTTLS port.
scenario_srv_contradictory() {
  start_dnsmasq 5314 \
    --srv-host=_submissions._tcp.mail.smtp-probe.test,fault.smtp-probe.test,20953,0,0
  start_server 127.0.20.4:20953=starttls
  expect_check 2 "20953 tls_mode_mismatch" -- --domain-submission mail.smtp-probe.test \
    --dns-server 127.0.20.53:5314 --cafile "$(CA)"
}

scenario_all_addresses() {
  # multi.smtp-probe.test has two addresses: a good server and a refusal.
  start_dnsmasq 5303 --host-record=multi.smtp-probe.test,127.0.20.4 \
    --host-record=multi.smtp-probe.test,127.0.20.3
  start_server 127.0.20.4:20703=starttls
  expect_check 2 "20703@127.0.20.3 connect_refused" "20703@127.0.20.4 ok" \
    -- -H multi.smtp-probe.test -p 20703 --dns-server 127.0.20.53:5303 \
    --cafile "$(CA)" --sni mail.smtp-probe.test --all-addresses
}

# ---- network namespaces -----------------------------------------------------

# Make namespaces $1 (client, 10.250.0.1) and $2 (server, 10.250.0.2) joined
# by a veth pair; neither has any route but the link's own /24. Skips when
# the machine does not allow it.
make_netns_pair() {
  local a=$1 b=$2 old
  command -v ip >/dev/null || skip "iproute2 is not installed"
  # Namespaces left by an earlier run that was killed (its pid is gone).
  for old in $(ip netns list 2>/dev/null | awk '{print $1}' | grep -E '^spf[ab][0-9]+$'); do
    kill -0 "${old#spf?}" 2>/dev/null || ip netns del "$old"
  done
  ip netns add "$a" 2>"$tmp/netns.err" ||
    skip "cannot create network namespaces: $(cat "$tmp/netns.err")"
  netns+=("$a")
  ip netns add "$b" || skip "cannot create a second network namespace"
  netns+=("$b")
  local va=spva$$ vb=spvb$$
  ip link add "$va" netns "$a" type veth peer name "$vb" netns "$b" ||
    skip "cannot create a veth pair"
  ip -n "$a" addr add 10.250.0.1/24 dev "$va"
  ip -n "$b" addr add 10.250.0.2/24 dev "$vb"
  ip -n "$a" link set lo up
  ip -n "$b" link set lo up
  ip -n "$a" link set "$va" up
  ip -n "$b" link set "$vb" up
  ip -n "$a" route | sed 's/^/  route in client ns: /'
}

scenario_connect_timeout() {
  local a=spfa$$ b=spfb$$
  make_netns_pair "$a" "$b"
  command -v nft >/dev/null || skip "nftables is not installed"
  # Drop SYNs to 20590 inside the server namespace; 20591 is not dropped and
  # nobody listens there, so it is refused: proof the link itself works.
  ip netns exec "$b" nft -f - <<'NFT' || skip "cannot load an nftables rule"
table inet spfault {
  chain input {
    type filter hook input priority 0; policy accept;
    tcp dport 20590 tcp flags & (syn | ack) == syn drop
  }
}
NFT
  expect_check netns "$a" 2 "20590 connect_timeout" "20591 connect_refused" \
    -- -H 10.250.0.2 -p 20590,20591 --cafile "$(CA)" -t 3
}

scenario_netns_ok() {
  local a=spfa$$ b=spfb$$
  make_netns_pair "$a" "$b"
  # A good server at 10.250.0.2 (not in the cert: --sni names the cert).
  start_server netns "$b" 10.250.0.2:20592=starttls
  expect_check netns "$a" 0 "20592 ok" -- -H 10.250.0.2 -p 20592 \
    --cafile "$(CA)" --sni mail.smtp-probe.test
}

scenario_network_unreachable() {
  local a=spfa$$ b=spfb$$
  make_netns_pair "$a" "$b"
  # The client namespace has a route to 10.250.0.0/24 only.
  expect_check netns "$a" 2 "20593 network_unreachable" -- -H 10.250.9.9 \
    -p 20593 --cafile "$(CA)" -t 3
}

# ---- port policy (--policy YAML) -------------------------------------------

scenario_policy_ok() {
  start_server 127.0.20.5:20060=starttls
  cat >"$tmp/policy.yml" <<'YAML'
ports:
  20060:
    state: open
    tls: starttls
    auth: after_tls
    mechanisms: [PLAIN, LOGIN]
    min_tls: "1.2"
  20061:
    state: closed
YAML
  expect_check 0 "20060 ok" "20061 ok" -- -H 127.0.20.5 --cafile "$(CA)" \
    --policy "$tmp/policy.yml"
}

scenario_policy_violation() {
  # One deviation per port: no STARTTLS, open but should be closed, a
  # mechanism not allowed, TLS below the minimum, closed but should be open.
  start_server 127.0.20.5:20062=plain 127.0.20.5:20063=starttls \
    127.0.20.5:20064=auth 127.0.20.5:20065=tls10
  cat >"$tmp/policy.yml" <<'YAML'
ports:
  20062:
    tls: starttls
  20063:
    state: closed
  20064:
    mechanisms: [PLAIN, LOGIN]
  20065:
    min_tls: "1.2"
  20066:
    state: open
YAML
  expect_check 2 "20062 policy_violation" "20063 policy_violation" \
    "20064 policy_violation" "20065 policy_violation" \
    "20066 policy_violation" -- -H 127.0.20.5 --cafile "$(CA)" \
    --policy "$tmp/policy.yml"
  local rule
  for rule in 'port 20062 rule tls' 'port 20063 rule state' \
    'port 20064 rule mechanisms' 'port 20065 rule min_tls' \
    'port 20066 rule state'; do
    grep -q "policy_violation: $rule" "$tmp/check.out" ||
      fail "long output lacks 'policy_violation: $rule'"
  done
}

# ---- the fault server's own behaviour (reference clients, no check) ------

scenario_server_dialogue() {
  start_server 127.0.20.6:20901=starttls
  client dialogue 127.0.20.6 20901
}

scenario_server_dialogue_ipv6() {
  need_ipv6_loopback
  start_server '[::1]:20901=starttls'
  client dialogue ::1 20901
}

scenario_server_injection() {
  start_server 127.0.20.6:20902=injection-vulnerable 127.0.20.6:20903=starttls
  client injection 127.0.20.6 20902 vulnerable
  client injection 127.0.20.6 20903 safe
  expect_server_log 'discarding [0-9]+ plaintext bytes pipelined after STARTTLS'
}

scenario_server_auth() {
  local pw=$tmp/password
  (umask 077 && head -c 12 /dev/urandom | base64 | tr -d '/+=\n' >"$pw")
  server_extra=(--auth-password-file "$pw")
  start_server 127.0.20.6:20904=auth
  client auth 127.0.20.6 20904 "$pw"
  if grep -qF "$(cat "$pw")" "$tmp"/server*.log; then
    fail "the password appears in the server log"
  fi
  expect_server_log 'AUTH succeeded' 4
  expect_server_log 'AUTH failed' 4
}

scenario_server_rejects() {
  start_server 127.0.20.6:20905=mail-reject 127.0.20.6:20906=rcpt-reject
  client rejects 127.0.20.6 20905 mail
  client rejects 127.0.20.6 20906 rcpt
}

scenario_server_tls10() {
  start_server 127.0.20.6:20907=tls10
  client tls10 127.0.20.6 20907
}

scenario_server_many_connections() {
  # The benchmark's lean server: 1,200 connections held at once.
  start_server 127.0.20.7:20908=starttls,cert=ecdsa
  client many 127.0.20.7 20908 1200
  expect_server_log ', 1200 open'
}

scenario_server_sigterm() {
  start_server 127.0.20.6:20909=silent
  local pid=${pids[-1]} i
  exec 3<>/dev/tcp/127.0.20.6/20909 # one open connection while stopping
  kill -TERM "$pid"
  for ((i = 0; i < 100; i++)); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.05
  done
  exec 3>&-
  kill -0 "$pid" 2>/dev/null && fail "server still runs 5 s after SIGTERM"
  wait "$pid"
  local rc=$?
  [ $rc = 0 ] || fail "server exited $rc after SIGTERM"
  expect_server_log 'signal 15: stopping'
  echo "PASS: clean exit on SIGTERM"
}

scenario_server_valgrind() {
  # Memory errors and leaks across TLS, AUTH, injection, streams, timers,
  # greeting delays, ClientHello peeks, alerts and temporary failures.
  command -v valgrind >/dev/null || skip "valgrind is not installed"
  local pw=$tmp/password
  (umask 077 && echo "valgrind-pw-$$" >"$pw")
  server_extra=(--auth-password-file "$pw")
  local vg=$tmp/valgrind.txt
  SERVER_WRAP=(valgrind --error-exitcode=9 --leak-check=full
    "--errors-for-leak-kinds=definite,indirect" --log-file="$vg")
  start_server 127.0.20.6:20910=starttls 127.0.20.6:20911=injection-vulnerable \
    127.0.20.6:20912=auth 127.0.20.6:20913=tls10 127.0.20.6:20914=implicit \
    127.0.20.6:20915=huge-reply 127.0.20.6:20916=slow,delay=100 \
    127.0.20.6:20917=starttls-garbage 127.0.20.6:20918=silent \
    127.0.20.6:20935=tls11-close 127.0.20.6:20936=tls-alert \
    127.0.20.6:20937=starttls,greet_delay=200,software=exim \
    127.0.20.6:20938=auth-454 127.0.20.6:20939=sha1-sigalg \
    127.0.20.6:20940=tls11-close,implicit,greet_delay=100
  SERVER_WRAP=()
  local pid=${pids[-1]}
  client dialogue 127.0.20.6 20910
  client injection 127.0.20.6 20911 vulnerable
  client auth 127.0.20.6 20912 "$pw"
  client tls10 127.0.20.6 20913
  client many 127.0.20.6 20916 50
  client tls11close 127.0.20.6 20935
  client tls11close 127.0.20.6 20940 implicit
  client tlsalert 127.0.20.6 20936
  client greetdelay 127.0.20.6 20937 200
  client tempfail 127.0.20.6 20938 auth-454
  client sha1sigalg 127.0.20.6 20939
  # Open, half-done and abandoned connections at shutdown are freed too.
  exec 3<>/dev/tcp/127.0.20.6/20918
  exec 4<>/dev/tcp/127.0.20.6/20915
  printf 'EHLO x\r\n' >&4
  kill -TERM "$pid"
  local i
  for ((i = 0; i < 600; i++)); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.05
  done
  exec 3>&- 4>&-
  wait "$pid"
  local rc=$?
  cat "$vg"
  [ $rc = 0 ] || fail "server under valgrind exited $rc (9: valgrind errors)"
  echo "PASS: valgrind found no errors or leaks"
}

# ---- STARTTLS injection and TLS versions ---------------------------------

scenario_starttls_injection() {
  start_server 127.0.20.1:20030=injection-vulnerable
  expect_check 2 "20030 starttls_injection" -- -H 127.0.20.1 -p 20030 \
    --cafile "$(CA)" --check-injection
  expect_server_log 'keeping [0-9]+ plaintext bytes pipelined after STARTTLS'
}

scenario_starttls_injection_safe() {
  start_server 127.0.20.1:20034=starttls
  expect_check 0 "20034 ok" -- -H 127.0.20.1 -p 20034 --cafile "$(CA)" \
    --check-injection
  # The test really ran: the safe server threw the pipelined bytes away.
  expect_server_log 'discarding [0-9]+ plaintext bytes pipelined after STARTTLS'
}

scenario_tls10_weak_protocol() {
  start_server 127.0.20.1:20031=tls10
  expect_check 1 "20031 tls_weak_protocol" -- -H 127.0.20.1 -p 20031 \
    --cafile "$(CA)"
}

scenario_tls10_min_tls_allowed() {
  start_server 127.0.20.1:20035=tls10
  expect_check 0 "20035 ok" -- -H 127.0.20.1 -p 20035 --cafile "$(CA)" \
    --min-tls 1.0
}

# ---- AUTH, MAIL, RCPT, DATA trials -------------------------------------------

# Write a fresh random password (mode 600) to $tmp/password and pass its
# file to the next fault server.
make_password() {
  (umask 077 && printf 'fault-%s\n' "$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')" >"$tmp/password")
  server_extra=(--auth-password-file "$tmp/password")
}

# Assert the last check output does not contain the password.
expect_no_password_in_output() {
  if grep -qF "$(head -n 1 "$tmp/password")" "$tmp/check.out" "$tmp/check.err"; then
    fail "the password appears in the check's output"
  fi
}

# auth_with MECH PORT: AUTH with that mechanism ("" = the check's choice).
auth_with() {
  local mech=$1 port=$2
  make_password
  start_server "127.0.20.2:$port=auth"
  local -a m=()
  [ -n "$mech" ] && m=(--auth-mech "$mech")
  expect_check 0 "$port ok" -- -H 127.0.20.2 -p "$port" --cafile "$(CA)" \
    --auth-user probe@smtp-probe.test --auth-password-file "$tmp/password" \
    "${m[@]}" -vvv
  expect_no_password_in_output
  expect_server_log "AUTH ${mech:-[A-Z0-9-]+} \\[credentials not logged\\]"
  expect_server_log 'AUTH succeeded'
}

scenario_auth_default_mech() { auth_with "" 20040; }
scenario_auth_plain() { auth_with PLAIN 20041; }
scenario_auth_login() { auth_with LOGIN 20042; }
scenario_auth_cram_md5() { auth_with CRAM-MD5 20043; }
scenario_auth_xoauth2() { auth_with XOAUTH2 20044; }

scenario_auth_failed() {
  make_password
  start_server 127.0.20.2:20045=auth
  (umask 077 && echo "not-the-password" >"$tmp/wrong")
  expect_check 2 "20045 auth_failed" -- -H 127.0.20.2 -p 20045 \
    --cafile "$(CA)" --auth-user probe@smtp-probe.test \
    --auth-password-file "$tmp/wrong"
  expect_server_log 'AUTH failed'
}

scenario_auth_password_env() {
  make_password
  start_server 127.0.20.2:20046=auth
  SMTP_PROBE_PASSWORD=$(head -n 1 "$tmp/password") \
    expect_check 0 "20046 ok" -- -H 127.0.20.2 -p 20046 --cafile "$(CA)" \
    --auth-user probe@smtp-probe.test -vvv
  expect_no_password_in_output
  expect_server_log 'AUTH succeeded'
}

scenario_auth_unavailable() {
  start_server 127.0.20.2:20047=no-auth
  expect_check 2 "20047 auth_unavailable" -- -H 127.0.20.2 -p 20047 \
    --cafile "$(CA)"
}

scenario_auth_not_sent_to_untrusted() {
  # AUTH only goes to a server whose certificate passed.
  make_password
  start_server 127.0.20.2:20048=auth,cert=selfsigned
  expect_check 2 "20048 cert_untrusted" -- -H 127.0.20.2 -p 20048 \
    --cafile "$(CA)" --auth-user probe@smtp-probe.test \
    --auth-password-file "$tmp/password"
  if grep -q 'AUTH' "$last_server_log"; then
    fail "the check sent AUTH to a server with an untrusted certificate"
  fi
}

scenario_mail_reject() {
  start_server 127.0.20.2:20049=mail-reject
  expect_check 2 "20049 rejected" -- -H 127.0.20.2 -p 20049 --cafile "$(CA)" \
    --mail-from probe@smtp-probe.test
}

scenario_rcpt_reject() {
  start_server 127.0.20.2:20050=rcpt-reject
  expect_check 2 "20050 rejected" -- -H 127.0.20.2 -p 20050 --cafile "$(CA)" \
    --mail-from probe@smtp-probe.test --rcpt-to nobody@smtp-probe.test
}

scenario_mail_requires_auth() {
  start_server 127.0.20.2:20051=auth
  expect_check 2 "20051 rejected" -- -H 127.0.20.2 -p 20051 --cafile "$(CA)" \
    --mail-from probe@smtp-probe.test
}

scenario_send_ok() {
  make_password
  start_server 127.0.20.2:20052=auth
  expect_check 0 "20052 ok" -- -H 127.0.20.2 -p 20052 --cafile "$(CA)" \
    --auth-user probe@smtp-probe.test --auth-password-file "$tmp/password" \
    --mail-from probe@smtp-probe.test --rcpt-to postmaster@smtp-probe.test \
    --send
  expect_server_log '< MAIL FROM:<probe@smtp-probe.test>'
  expect_server_log '< RCPT TO:<postmaster@smtp-probe.test>'
  expect_server_log 'message of [0-9]+ bytes ended'
}

# ---- a slow greeting (issue 12) ---------------------------------------------
#
# The greeting comes greet_delay=MS after accept. On STARTTLS ports the
# first connection waits for it until the deadline; the implicit-TLS trial
# runs beside it on a second connection (whose early ClientHello the fault
# server answers, after the greeting, with a 500 as an MTA would). Real port
# numbers 587 and 2525 (the submission role); each scenario has its own
# address, so scenarios can run in parallel (the certificate does not name
# 127.0.20.10+: --sni names it).

# slow_greeting ADDR DELAY_MS EXIT "PAIR"... -- CHECK-ARGS: a server with
# the greeting DELAY_MS late on ADDR:587 and ADDR:2525, and the check on both.
slow_greeting() {
  local addr=$1 delay=$2
  shift 2
  start_server "$addr:587=starttls,greet_delay=$delay" \
    "$addr:2525=starttls,greet_delay=$delay"
  local want=$1
  shift
  expect_check "$want" "$@" -H "$addr" -p 587,2525 --cafile "$(CA)" \
    --sni mail.smtp-probe.test
}

scenario_greet_slow_3s_t10() {
  slow_greeting 127.0.20.4 3000 0 "587 ok" "2525 ok" -- -t 10
  # The wait is the banner phase's: the greeting came 3 s after accept.
  expect_phase_at_least 587 banner 3
  expect_phase_at_least 2525 banner 3
  expect_server_log 'accepted on 127\.0\.20\.4:587' 1
}

scenario_greet_slow_3s_t5() {
  slow_greeting 127.0.20.10 3000 0 "587 ok" "2525 ok" -- -t 5
  expect_phase_at_least 587 banner 3
  expect_phase_at_least 2525 banner 3
}

scenario_greet_slow_8s_t10() {
  slow_greeting 127.0.20.11 8000 0 "587 ok" "2525 ok" -- -t 10
  expect_phase_at_least 587 banner 8
  expect_phase_at_least 2525 banner 8
}

scenario_greet_slow_8s_t5() {
  # The greeting would come after the deadline: banner_timeout, and the
  # check keeps its deadline.
  slow_greeting 127.0.20.12 8000 2 "587 banner_timeout" \
    "2525 banner_timeout" -- -t 5
  expect_finished_within 7
}

scenario_greet_slow_phase_warn() {
  # A greeting inside the deadline but over --phase-warn banner=2.
  slow_greeting 127.0.20.13 3000 1 "587 ok" "2525 ok" -- -t 10 \
    --phase-warn banner=2
  head -n 1 "$tmp/check.out" | grep -q 'banner' ||
    fail "the first line does not name the banner phase"
  expect_phase_at_least 587 banner 3
}

scenario_silent_no_tls_trial() {
  # --no-tls-trial: no implicit-TLS trial, exactly one connection.
  start_server 127.0.20.1:20086=silent
  expect_check 2 "20086 banner_timeout" -- -H 127.0.20.1 -p 20086 \
    --cafile "$(CA)" --no-tls-trial -t 4
  local n
  n=$(grep -Ec 'accepted on 127\.0\.20\.1:20086' "$last_server_log")
  [ "$n" = 1 ] || fail "the server accepted $n connections, want exactly 1"
  echo "server log: exactly one connection"
  expect_finished_within 6
}

# ---- TLS failures identified by the legacy retry (issue 12) ----------------

scenario_tls11_close() {
  # TLS 1.1 only, and a TLS 1.2+ ClientHello gets a close without alert.
  start_server 127.0.20.1:20070=tls11-close
  expect_check 1 "20070 tls_weak_protocol" -- -H 127.0.20.1 -p 20070 \
    --cafile "$(CA)" -v
  expect_first_line 'TLSv1\.1'
  expect_server_log 'offers only TLS 1\.2\+ .*closing without an alert'
  expect_server_log 'offers TLS 1\.1 or lower .*handshake'
}

scenario_tls11_close_implicit() {
  start_server 127.0.20.2:465=tls11-close,implicit
  expect_check 1 "465 tls_weak_protocol" -- -H 127.0.20.2 -p 465 \
    --cafile "$(CA)" -v
  expect_first_line 'TLSv1\.1'
}

scenario_sha1_sigalg() {
  # TLS 1.2 negotiates only on the legacy retry: the server signs with SHA-1.
  start_server 127.0.20.1:20072=sha1-sigalg
  expect_check 2 "20072 tls_handshake_failed" -- -H 127.0.20.1 -p 20072 \
    --cafile "$(CA)" -v
  expect_first_line 'SHA-1'
}

scenario_tls_alert() {
  # A fatal internal_error alert (80) to the ClientHello, as OpenSMTPD on
  # Debian 12 sends when it cannot use its key or certificate.
  start_server 127.0.20.1:20073=tls-alert
  expect_check 2 "20073 tls_handshake_failed" -- -H 127.0.20.1 -p 20073 \
    --cafile "$(CA)" -v
  expect_first_line 'internal_error'
  expect_hint 'log' 'key' 'certificate'
}

# ---- temporary refusals: deferred (issue 12) -------------------------------

# deferred_at PORT MODE EXIT ENHANCED [CHECK-ARGS...]: a 4xx mode on
# 127.0.20.1:PORT gives "PORT deferred" with EXIT, and the enhanced status
# code ENHANCED in the output (-v: the long output has the hint).
deferred_at() {
  local port=$1 mode=$2 want=$3 enhanced=$4
  shift 4
  start_server "127.0.20.1:$port=$mode"
  expect_check "$want" "$port deferred" -- -H 127.0.20.1 -p "$port" \
    --cafile "$(CA)" -v "$@"
  expect_first_line "${enhanced//./\\.}"
}

scenario_deferred_ehlo() {
  deferred_at 20074 ehlo-421 2 4.3.2
}

scenario_deferred_mail() {
  deferred_at 20075 mail-451 2 4.3.0 --mail-from probe@smtp-probe.test
  # Not a policy matter: the load / limits / greylisting hint.
  expect_hint 'load|limit|greylist'
  expect_no_hint 'security policy'
}

scenario_deferred_mail_security_policy() {
  # 4.7.x: the security-policy hint instead of load / greylisting. The
  # server's own words ("Service unavailable, try again later") have none
  # of the words looked for.
  deferred_at 20076 mail-451-47 2 4.7.1 --mail-from probe@smtp-probe.test
  expect_hint 'security|policy'
  expect_no_hint 'greylist'
}

scenario_deferred_rcpt() {
  deferred_at 20077 rcpt-450 2 4.2.1 --mail-from probe@smtp-probe.test \
    --rcpt-to postmaster@smtp-probe.test
}

scenario_deferred_data() {
  deferred_at 20078 data-451 2 4.3.1 --mail-from probe@smtp-probe.test \
    --rcpt-to postmaster@smtp-probe.test --send
}

scenario_deferred_end_of_data() {
  deferred_at 20079 eod-451 2 4.3.0 --mail-from probe@smtp-probe.test \
    --rcpt-to postmaster@smtp-probe.test --send
  expect_server_log 'message of [0-9]+ bytes ended'
}

scenario_deferred_auth() {
  # 454 to AUTH is a temporary failure, not wrong credentials.
  make_password
  start_server 127.0.20.1:20080=auth-454
  expect_check 2 "20080 deferred" -- -H 127.0.20.1 -p 20080 \
    --cafile "$(CA)" --auth-user probe@smtp-probe.test \
    --auth-password-file "$tmp/password" -v
  expect_first_line '4\.7\.0'
  expect_no_output 'auth_failed'
  expect_no_password_in_output
  expect_server_log 'AUTH temporary failure \(454\)'
}

scenario_deferred_relay() {
  # On the relay role a temporary refusal is only a WARNING.
  deferred_at 20081 mail-451 1 4.3.0 --mail-from probe@smtp-probe.test \
    --role relay
}

# ---- AUTH hints (issue 12) ---------------------------------------------------

scenario_auth_unavailable_mech() {
  # AUTH is offered after TLS, but not the mechanism asked for.
  make_password
  start_server 127.0.20.1:20082=auth,mechs=PLAIN+LOGIN
  expect_check 2 "20082 auth_unavailable" -- -H 127.0.20.1 -p 20082 \
    --cafile "$(CA)" --auth-user probe@smtp-probe.test \
    --auth-password-file "$tmp/password" --auth-mech CRAM-MD5 -v
  # The long output lists the capabilities anyway: the mechanisms must be
  # in the detail (first line), --auth-mech in the hint.
  expect_first_line 'PLAIN' 'LOGIN'
  expect_hint '--auth-mech'
  expect_no_password_in_output
  if grep -q '< AUTH' "$last_server_log"; then
    fail "the check sent AUTH with a mechanism the server does not offer"
  fi
}

# auth_before_tls_by SOFTWARE PORT: auth-before-tls with that MTA's
# greeting; the AUTH-before-TLS hint must fit it.
auth_before_tls_by() {
  local sw=$1 port=$2
  start_server "127.0.20.1:$port=auth-before-tls,software=$sw"
  expect_check 2 "$port auth_before_tls" -- -H 127.0.20.1 -p "$port" \
    --cafile "$(CA)" -v
}

scenario_auth_before_tls_exim() {
  auth_before_tls_by exim 20083
  expect_hint 'auth_advertise_hosts'
  expect_no_hint 'smtpd_tls_auth_only'
}

scenario_auth_before_tls_haraka() {
  auth_before_tls_by haraka 20084
  expect_hint 'Haraka'
  expect_no_hint 'smtpd_tls_auth_only' 'auth_advertise_hosts'
}

scenario_auth_before_tls_postfix() {
  auth_before_tls_by postfix 20085
  expect_hint 'smtpd_tls_auth_only'
  expect_no_hint 'auth_advertise_hosts'
}

scenario_auth_before_tls_unknown_software() {
  # The fault server's own greeting names no known MTA: all three hints.
  start_server 127.0.20.1:20087=auth-before-tls
  expect_check 2 "20087 auth_before_tls" -- -H 127.0.20.1 -p 20087 \
    --cafile "$(CA)" -v
  expect_hint 'smtpd_tls_auth_only' 'auth_advertise_hosts' 'Haraka'
}

# ---- PROXY protocol (issue 13) ---------------------------------------------

# The server behind "HAProxy" (listener option proxy) gets a v1 / v2 header
# whose addresses are the socket's own.
scenario_proxy_v1_ok() {
  start_server 127.0.20.5:20941=starttls,proxy
  expect_check 0 "20941 ok" -- -H 127.0.20.5 -p 20941 --cafile "$(CA)" \
    --proxy-protocol v1
  expect_server_log 'PROXY v1 TCP4 127\.0\.0\.1 [0-9]+ -> 127\.0\.20\.5 20941: matches' 1
}

scenario_proxy_v2_ok() {
  start_server 127.0.20.5:20942=starttls,proxy
  expect_check 0 "20942 ok" -- -H 127.0.20.5 -p 20942 --cafile "$(CA)" \
    --proxy-protocol v2
  expect_server_log 'PROXY v2 TCP4 127\.0\.0\.1 [0-9]+ -> 127\.0\.20\.5 20942: matches' 1
}

# A server that expects PROXY and gets none closes before its greeting:
# connection_closed, and the hint names the PROXY protocol.
scenario_proxy_missing() {
  start_server 127.0.20.5:20943=starttls,proxy
  expect_check 2 "20943 connection_closed" -- -H 127.0.20.5 -p 20943 \
    --cafile "$(CA)" -t 10 -v
  grep -q 'hint: .*PROXY protocol' "$tmp/check.out" ||
    fail "the hint does not name the PROXY protocol"
}

# A server that does not expect PROXY answers the header as a command.
scenario_proxy_unexpected() {
  start_server 127.0.20.5:20944=starttls
  expect_check 2 "20944 protocol_error" -- -H 127.0.20.5 -p 20944 \
    --cafile "$(CA)" --proxy-protocol v1 -v
  grep -q 'does not expect the PROXY protocol' "$tmp/check.out" ||
    fail "the detail does not say the server does not expect PROXY"
}

# Every connection sends the header: the implicit-TLS trial beside a late
# greeting, the legacy identification, the injection test.
scenario_proxy_every_connection() {
  start_server 127.0.20.6:20945=starttls,proxy,greet_delay=3000 \
    127.0.20.6:20946=tls11-close,proxy 127.0.20.6:20947=starttls,proxy
  expect_check 0 "20945 ok" -- -H 127.0.20.6 -p 20945 --cafile "$(CA)" \
    --proxy-protocol v1 -t 10
  expect_server_log 'PROXY v1 .* 20945: matches' 2
  expect_check 1 "20946 tls_weak_protocol" -- -H 127.0.20.6 -p 20946 \
    --cafile "$(CA)" --proxy-protocol v2
  expect_server_log 'PROXY v2 .* 20946: matches' 2
  expect_check 0 "20947 ok" -- -H 127.0.20.6 -p 20947 --cafile "$(CA)" \
    --proxy-protocol v1 --check-injection
  expect_server_log 'PROXY v1 .* 20947: matches' 2
}

# ---- the new fault-server modes themselves (reference clients) -------------

scenario_server_greet_delay() {
  start_server 127.0.20.6:20919=starttls,greet_delay=1500
  client greetdelay 127.0.20.6 20919 1500
  expect_server_log 'read [0-9]+ bytes before the greeting \(a TLS record'
}

scenario_server_tls11_close() {
  start_server 127.0.20.6:20920=tls11-close 127.0.20.6:20921=tls11-close,implicit
  client tls11close 127.0.20.6 20920
  client tls11close 127.0.20.6 20921 implicit
  expect_server_log 'offers only TLS 1\.2\+ .*closing without an alert' 2
}

# Run openssl s_client -starttls smtp against 127.0.20.6:PORT with extra
# arguments; its output is in $tmp/s_client.out.
s_client_smtp() {
  local port=$1
  shift
  command -v openssl >/dev/null || skip "openssl is not installed"
  timeout 20 openssl s_client -starttls smtp -connect "127.0.20.6:$port" \
    -servername mail.smtp-probe.test -CAfile "$(CA)" "$@" </dev/null \
    >"$tmp/s_client.out" 2>&1 || true
  grep -E 'Protocol|Peer sign|alert|Cipher is' "$tmp/s_client.out" | sed 's/^/  s_client| /'
}

scenario_server_sha1_sigalg() {
  start_server 127.0.20.6:20922=sha1-sigalg
  client sha1sigalg 127.0.20.6 20922
  # openssl s_client both ways: refused at its default security level,
  # TLS 1.2 signed with RSA+SHA1 at level 0.
  s_client_smtp 20922
  grep -q 'alert handshake failure' "$tmp/s_client.out" ||
    fail "a default s_client was not refused with handshake_failure"
  s_client_smtp 20922 -cipher 'DEFAULT:@SECLEVEL=0'
  grep -q 'Peer signing digest: SHA1' "$tmp/s_client.out" ||
    fail "a SECLEVEL=0 s_client did not get a SHA1 signature"
  grep -Eq 'Protocol +: TLSv1\.2' "$tmp/s_client.out" ||
    fail "a SECLEVEL=0 s_client did not negotiate TLS 1.2"
  echo "PASS: SHA-1 only, refused at the default level, TLS 1.2 at level 0"
}

scenario_server_tls_alert() {
  start_server 127.0.20.6:20923=tls-alert
  client tlsalert 127.0.20.6 20923
  s_client_smtp 20923
  grep -q 'alert internal error' "$tmp/s_client.out" ||
    fail "s_client did not get an internal_error alert"
}

scenario_server_tempfail() {
  local -a modes=(ehlo-421 mail-451 mail-451-47 rcpt-450 data-451 eod-451
    auth-454)
  local -a specs=()
  local i
  for i in "${!modes[@]}"; do
    specs+=("127.0.20.6:$((20924 + i))=${modes[i]}")
  done
  start_server "${specs[@]}"
  for i in "${!modes[@]}"; do
    client tempfail 127.0.20.6 $((20924 + i)) "${modes[i]}"
  done
}

scenario_server_software() {
  start_server 127.0.20.6:20931=auth-before-tls,software=postfix \
    127.0.20.6:20932=auth-before-tls,software=exim \
    127.0.20.6:20933=auth-before-tls,software=haraka \
    127.0.20.6:20934=auth,mechs=PLAIN+LOGIN
  client software 127.0.20.6 20931 postfix
  client software 127.0.20.6 20932 exim
  client software 127.0.20.6 20933 haraka
  client mechs 127.0.20.6 20934 PLAIN,LOGIN
}

# ---- app-settings check (--app-url, --app-setting, --app-framework) ---------
# Each scenario has listeners of its own on 127.0.20.7: implicit-TLS and
# STARTTLS servers probed with wrong and right settings; the verdict is the
# port's detail on the first line, the recommendation still ends it.

# Assert the last check's first line holds TEXT literally (not a regex).
expect_first_line_has() {
  local first
  first=$(head -n 1 "$tmp/check.out")
  case "${first%% | *}" in
  *"$1"*) echo "first line has: $1" ;;
  *) fail "the first line lacks: $1" ;;
  esac
}

scenario_app_django() {
  start_server 127.0.20.7:21001=implicit 127.0.20.7:21002=starttls
  local -a d=(--app-framework django --app-setting EMAIL_HOST=127.0.20.7
    --cafile "$(CA)")
  expect_check 2 "21001 tls_mode_mismatch" -- "${d[@]}" \
    --app-setting EMAIL_PORT=21001 --app-setting EMAIL_USE_TLS=True
  expect_first_line_has "21001 tls_mode_mismatch: port 21001 expects implicit TLS, but EMAIL_USE_TLS=True asks for STARTTLS: set EMAIL_USE_SSL=True instead, or use port 587; recommend: none"
  expect_check 0 "21001 ok" -- "${d[@]}" --app-setting EMAIL_PORT=21001 \
    --app-setting EMAIL_USE_SSL=True
  expect_first_line_has "EMAIL_USE_SSL=True (implicit TLS) fits port 21001, which speaks implicit TLS; recommend: 21001 implicit"
  expect_check 2 "21002 tls_mode_mismatch" -- "${d[@]}" \
    --app-setting EMAIL_PORT=21002 --app-setting EMAIL_USE_SSL=True
  expect_first_line_has "port 21002 expects STARTTLS, but EMAIL_USE_SSL=True asks for implicit TLS: set EMAIL_USE_TLS=True instead, or use port 465"
  expect_check 0 "21002 ok" -- "${d[@]}" --app-setting EMAIL_PORT=21002 \
    --app-setting EMAIL_USE_TLS=True
  expect_first_line_has "EMAIL_USE_TLS=True (STARTTLS) fits port 21002, which offers STARTTLS; recommend: 21002 starttls"
  # Neither switch: Django sends plaintext to a STARTTLS port.
  expect_check 2 "21002 tls_mode_mismatch" -- "${d[@]}" \
    --app-setting EMAIL_PORT=21002
  expect_first_line_has "port 21002 expects STARTTLS, but EMAIL_USE_TLS=False (the default) sends plaintext: set EMAIL_USE_TLS=True"
  expect_output "^app settings: django reads EMAIL_USE_TLS=False \(the default\) as plaintext to 127\.0\.20\.7 port 21002"
}

scenario_app_same_url() {
  # The same smtp://host:465 URL: implicit TLS for Symfony and Laravel,
  # STARTTLS for nodemailer (without secure) and generic (curl).
  start_server 127.0.20.7:465=implicit 127.0.20.7:587=starttls
  local url=smtp://app@127.0.20.7:465
  expect_check 0 "465 ok" -- --app-framework symfony --app-url "$url" \
    --cafile "$(CA)"
  expect_first_line_has "465 ok"
  expect_first_line_has "smtp:// on port 465 (implicit TLS) fits port 465, which speaks implicit TLS; recommend: 465 implicit"
  expect_check 0 "465 ok" -- --app-framework laravel \
    --app-setting MAIL_HOST=127.0.20.7 --app-setting MAIL_PORT=465 \
    --app-setting MAIL_ENCRYPTION=tls --cafile "$(CA)"
  expect_check 2 "465 tls_mode_mismatch" -- --app-framework nodemailer \
    --app-url "$url" --cafile "$(CA)"
  expect_first_line_has "port 465 expects implicit TLS, but smtp:// (secure=false) asks for STARTTLS: set secure=true instead, or use port 587"
  expect_check 0 "465 ok" -- --app-framework nodemailer --app-url "$url" \
    --app-setting secure=true --cafile "$(CA)"
  expect_first_line_has "secure=true (implicit TLS) fits port 465"
  expect_check 2 "465 tls_mode_mismatch" -- --app-url "$url?encryption=tls" \
    --cafile "$(CA)"
  expect_first_line_has "port 465 expects implicit TLS, but encryption=tls asks for STARTTLS: use smtps:// instead, or use port 587"
  expect_check 0 "465 ok" -- --app-url "smtps://127.0.20.7:465" --cafile "$(CA)"
  # smtps:// on the STARTTLS port, in Symfony's and Laravel's words.
  expect_check 2 "587 tls_mode_mismatch" -- --app-framework symfony \
    --app-url "smtps://127.0.20.7:587" --cafile "$(CA)"
  expect_first_line_has "port 587 expects STARTTLS, but smtps:// asks for implicit TLS: use smtp:// instead, or use port 465"
  expect_check 2 "587 tls_mode_mismatch" -- --app-framework laravel \
    --app-setting MAIL_HOST=127.0.20.7 --app-setting MAIL_PORT=587 \
    --app-setting MAIL_SCHEME=smtps --cafile "$(CA)"
  expect_first_line_has "but MAIL_SCHEME=smtps asks for implicit TLS: set MAIL_SCHEME=smtp instead"
  expect_check 0 "587 ok" -- --app-framework symfony \
    --app-url "smtp://127.0.20.7:587" --cafile "$(CA)"
  expect_first_line_has "smtp:// (STARTTLS) fits port 587, which offers STARTTLS; recommend: 587 starttls"
  expect_check 2 "587 tls_mode_mismatch" -- --app-framework symfony \
    --app-url "smtp://127.0.20.7:587?auto_tls=false" --cafile "$(CA)"
  expect_first_line_has "but auto_tls=false sends plaintext: drop auto_tls=false"
}

scenario_app_spring() {
  start_server 127.0.20.7:21003=implicit 127.0.20.7:21004=starttls
  local -a s=(--app-framework spring --app-setting spring.mail.host=127.0.20.7
    --cafile "$(CA)")
  expect_check 2 "21003 tls_mode_mismatch" -- "${s[@]}" \
    --app-setting spring.mail.port=21003 \
    --app-setting spring.mail.properties.mail.smtp.starttls.enable=true
  expect_first_line_has "port 21003 expects implicit TLS, but spring.mail.properties.mail.smtp.starttls.enable=true asks for STARTTLS: set mail.smtp.ssl.enable=true instead, or use port 587"
  expect_check 0 "21003 ok" -- "${s[@]}" --app-setting spring.mail.port=21003 \
    --app-setting mail.smtp.ssl.enable=true
  expect_check 0 "21004 ok" -- "${s[@]}" --app-setting spring.mail.port=21004 \
    --app-setting mail.smtp.starttls.enable=true
  expect_check 2 "21004 tls_mode_mismatch" -- "${s[@]}" \
    --app-setting spring.mail.port=21004 --app-setting mail.smtp.ssl.enable=true
  expect_first_line_has "set mail.smtp.starttls.enable=true instead, or use port 465"
}

scenario_app_plaintext_server() {
  # A server without STARTTLS: settings that require it cannot work,
  # settings that merely try it send in plaintext.
  start_server 127.0.20.7:21007=plain
  expect_check 2 "21007 starttls_unavailable" -- --app-framework nodemailer \
    --app-url smtp://127.0.20.7:21007 --app-setting requireTLS=true \
    --cafile "$(CA)"
  expect_first_line_has "port 21007 offers no STARTTLS, but requireTLS=true requires it"
  expect_check 2 "21007 starttls_unavailable" -- --app-framework nodemailer \
    --app-url smtp://127.0.20.7:21007 --cafile "$(CA)"
  expect_first_line_has "sends in plaintext: the server should offer STARTTLS"
}

scenario_app_secrets() {
  # A password on the command line is refused without being echoed; from
  # --app-settings-file it is the AUTH secret and never printed.
  make_password
  local pw
  pw=$(head -n 1 "$tmp/password")
  start_server 127.0.20.7:21005=auth
  expect_check 3 -- --app-url "smtp://probe%40smtp-probe.test:$pw@127.0.20.7:21005"
  expect_no_password_in_output
  expect_output "--auth-password-file" "--app-settings-file" "^Usage: "
  expect_check 3 -- --app-framework django --app-setting EMAIL_HOST=127.0.20.7 \
    --app-setting "EMAIL_HOST_PASSWORD=$pw"
  expect_no_password_in_output
  expect_output "EMAIL_HOST_PASSWORD: a password is not taken from the command line"
  (umask 077 && cat >"$tmp/app.env" <<ENV
# .env of a Django app
EMAIL_HOST = '127.0.20.7'
EMAIL_PORT = 21005
EMAIL_HOST_USER = 'probe@smtp-probe.test'
EMAIL_HOST_PASSWORD = '$pw'
EMAIL_USE_TLS = True
DB_PASSWORD=$pw
ENV
  )
  expect_check 0 "21005 ok" -- --app-framework django \
    --app-settings-file "$tmp/app.env" --cafile "$(CA)" -vvv
  expect_no_password_in_output
  expect_output "AUTH: [A-Z0-9-]+ accepted"
  expect_server_log 'AUTH succeeded'
  # The same file with another password: AUTH is tried with it (and fails).
  sed -i "s/^EMAIL_HOST_PASSWORD = .*/EMAIL_HOST_PASSWORD = 'wrong-one'/" "$tmp/app.env"
  expect_check 2 "21005 auth_failed" -- --app-framework django \
    --app-settings-file "$tmp/app.env" --cafile "$(CA)" -vvv
  expect_no_output "wrong-one"
}

scenario_app_bad_input() {
  # Bad input: UNKNOWN with the usage line, and nothing probed.
  local -a bad=(
    "--app-framework rails --app-url smtp://127.0.20.7:21006"
    "--app-framework django"
    "--app-url ftp://127.0.20.7"
    "--app-url smtp://127.0.20.7:99999"
    "--app-url smtp://127.0.20.7:21006 -p 587"
    "--app-url smtp://127.0.20.7:21006 --tls implicit"
    "--app-url smtp://127.0.20.7:21006 -H 127.0.20.8"
    "--app-framework django --app-setting EMAIL_PORT=587"
    "--app-framework django --app-setting EMAIL_HOST=127.0.20.7 --app-setting EMAIL_USE_TLS=True --app-setting EMAIL_USE_SSL=True"
    "--app-framework django --app-setting secure=true --app-setting EMAIL_HOST=h"
    "--app-settings-file /nonexistent/app.env"
  )
  local b
  for b in "${bad[@]}"; do
    # shellcheck disable=SC2086 # each entry is a list of words
    expect_check 3 -- $b
    expect_output "^Usage: check_smtp_ports"
  done
}

# ---- the recommendation ("recommend: PORT MODE", issue 15) ------------------
# One case per recommendation, each on an address of its own with the real
# port numbers (the recommendation is about 587, 465 and 2525).

scenario_recommend_all_ports() {
  start_server 127.0.20.6:25=starttls 127.0.20.6:465=implicit \
    127.0.20.6:587=starttls 127.0.20.6:2525=starttls
  expect_check 0 "25 ok" "465 ok" "587 ok" "2525 ok" -- -H 127.0.20.6 \
    -p 25,465,587,2525 --cafile "$(CA)" -v
  expect_first_line '; recommend: 587 starttls$'
  expect_output '^recommendation: use 587 starttls \(works\); 465 implicit TLS also works$'
}

scenario_recommend_only_465() {
  # 587 offers no STARTTLS; 465 speaks implicit TLS.
  start_server 127.0.20.5:465=implicit 127.0.20.5:587=plain
  expect_check 2 "587 starttls_unavailable" "465 ok" -- -H 127.0.20.5 \
    -p 587,465 --cafile "$(CA)" -v
  expect_first_line '; recommend: 465 implicit$'
  expect_output '^recommendation: use 465 implicit TLS \(works\) \(587: starttls_unavailable\)$'
}

scenario_recommend_none_refused() {
  # Nothing listens on 127.0.20.3 (no fault server is started there).
  expect_check 2 "587 connect_refused" "465 connect_refused" -- \
    -H 127.0.20.3 -p 587,465 --cafile "$(CA)" -v
  expect_first_line '; recommend: none$'
  expect_output '^recommendation: no port works for an app: check .* first \(587 connect_refused\)$'
}

scenario_recommend_none_tls_pairing() {
  # Each port speaks the other's TLS mode: check the pairing first.
  start_server 127.0.20.1:587=implicit 127.0.20.1:465=starttls
  expect_check 2 "587 tls_mode_mismatch" "465 tls_mode_mismatch" -- \
    -H 127.0.20.1 -p 587,465 --cafile "$(CA)" -v
  expect_first_line '; recommend: none$'
  expect_output '^recommendation: no port works for an app: check the pairing of port and TLS mode first \(587 tls_mode_mismatch\)$'
}

scenario_recommend_netns_2525() {
  # 587 dropped by an nftables rule in the server's namespace, 2525 open:
  # the check (in the client namespace) recommends 2525 and says why.
  local a=spfa$$ b=spfb$$
  make_netns_pair "$a" "$b"
  command -v nft >/dev/null || skip "nftables is not installed"
  ip netns exec "$b" nft -f - <<'NFT' || skip "cannot load an nftables rule"
table inet sprec {
  chain input {
    type filter hook input priority 0; policy accept;
    tcp dport 587 tcp flags & (syn | ack) == syn drop
  }
}
NFT
  start_server netns "$b" 10.250.0.2:587=starttls 10.250.0.2:2525=starttls
  expect_check netns "$a" 2 "587 connect_timeout" "2525 ok" -- \
    -H 10.250.0.2 -p 587,2525 --cafile "$(CA)" --sni mail.smtp-probe.test \
    -t 3 -v
  expect_first_line '; recommend: 2525 starttls$'
  expect_output '^recommendation: 587 connect_timeout from here, 2525 works: egress blocks 587, use 2525 starttls$'
}

# ---- main -------------------------------------------------------------------

# Names of all scenarios, one a line.
list_scenarios() {
  declare -F | sed -n 's/^declare -f scenario_//p'
}

while [ $# -gt 0 ]; do
  case $1 in
  --check) CHECK=$2; shift 2 ;;
  --server) SERVER=$2; shift 2 ;;
  --certs) CERTS=$2; shift 2 ;;
  --list) list_scenarios; exit 0 ;;
  -*) fail "unknown option $1" ;;
  *) break ;;
  esac
done
name=${1:?usage: scenarios.sh --check CHECK --server SERVER --certs DIR NAME}

if [ "$name" = make-certs ]; then
  [ -n "$CERTS" ] || fail "--certs DIR is needed"
  # Fresh every run: the expiring leaf must have 2-3 days left.
  rm -rf "$CERTS"
  bash "$here/../env/make-certs.sh" "$CERTS" || fail "make-certs.sh failed"
  exit 0
fi

declare -F "scenario_$name" >/dev/null || fail "no scenario '$name'"
[ -x "$SERVER" ] || fail "fault server '$SERVER' is not built"
[ -e "$CERTS/ca.pem" ] || fail "no certificates in '$CERTS' (run make-certs)"
echo "scenario $name"
"scenario_$name"
