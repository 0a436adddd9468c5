#!/usr/bin/env bash
# fault.sh - a real collectd loads smtp_probe.so and probes the team's
# fault server (smtp_fault_server) for AUTH, STARTTLS injection, TLS
# versions and a port policy.
#
# usage: fault.sh PLUGIN_SO FAULT_SERVER MAKE_CERTS_SH
#
# Checks, against a private collectd (Interval 1) and a private fault server
# on 127.0.30.4-5 (collectd's loopback range), with certificates made by
# tests/env/make-certs.sh in the temp directory:
#  - AUTH with the right password (AuthPasswordFile, mode 600): success 1
#    and a latency-auth value;
#  - AUTH with a wrong password: success 0 and a FAILURE notification with
#    auth_failed;
#  - a group/world-readable password file: a warning naming block and key,
#    the probe still runs;
#  - an inline AuthPassword: refused, naming block and key;
#  - CheckInjection against injection-vulnerable: a FAILURE notification
#    with starttls_injection;
#  - tls10: tls_weak_protocol by default, success 1 with MinTLS "1.0";
#  - a PolicyFile with one violation (a port the policy says is closed
#    answers): one notification naming port and rule, sent once; the
#    policy's other ports (open as expected, closed as expected) succeed;
#  - no password shows anywhere collectd wrote: its log (which holds every
#    notification), its stdout/stderr, the csv files.
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source-path=SCRIPTDIR
. "$HERE/collectd-lib.sh"

plugin_so=$1
fault_server=$2
make_certs=$3
[ -r "$plugin_so" ] || spc_fail "no $plugin_so"
[ -x "$fault_server" ] || spc_fail "no $fault_server"
[ -r "$make_certs" ] || spc_fail "no $make_certs"

dir=$(mktemp -d /tmp/spc-fault.XXXXXX)
server_pid=
cleanup() { spc_cleanup $? "$dir" 25 30 "$server_pid"; }
trap cleanup EXIT

bash "$make_certs" "$dir/certs" >"$dir/make-certs.log" 2>&1 ||
  spc_fail "make-certs.sh failed: $(tail -n 5 "$dir/make-certs.log")"

# Fresh random passwords, mode 600; an open (0644) copy of the right one.
mkdir -m 700 "$dir/secrets"
random_pw() { printf 'spc-%s\n' "$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')"; }
(umask 077 && random_pw >"$dir/secrets/password" && random_pw >"$dir/secrets/wrong")
cp "$dir/secrets/password" "$dir/secrets/password-open"
chmod 644 "$dir/secrets/password-open"
password=$(head -n 1 "$dir/secrets/password")
wrong=$(head -n 1 "$dir/secrets/wrong")
inline="spc-inline-$(head -c 6 /dev/urandom | od -An -tx1 | tr -d ' \n')"

# The fault server: AUTH, injection, TLS 1.0 on 127.0.30.4; the policy's
# ports on 127.0.30.5 (2592 answers although the policy says closed; 2593
# is closed and the policy agrees).
"$fault_server" --cert-prefix "$dir/certs/server" \
  --auth-password-file "$dir/secrets/password" \
  --ready-file "$dir/server.ready" --log "$dir/server.log" \
  --listen 127.0.30.4:2587=auth \
  --listen 127.0.30.4:2588=auth \
  --listen 127.0.30.4:2589=injection-vulnerable \
  --listen 127.0.30.4:2590=tls10 \
  --listen 127.0.30.4:2591=auth \
  --listen 127.0.30.5:2591=starttls \
  --listen 127.0.30.5:2592=starttls \
  2>"$dir/server.err" &
server_pid=$!
server_ready() {
  kill -0 "$server_pid" 2>/dev/null || spc_fail "fault server exited: $(cat "$dir/server.err")"
  test -e "$dir/server.ready"
}
spc_wait_until 30 "fault server ready" server_ready

cat >"$dir/policy.yml" <<'YAML'
ports:
  2591:
    state: open
    tls: starttls
    min_tls: "1.2"
  2592:
    state: closed
  2593:
    state: closed
YAML

# Every target checks the certificate against the name it is made for.
common="SNI \"mail.smtp-probe.test\"
    CAFile \"$dir/certs/ca.pem\"
    Timeout 0.9"
spc_write_conf "$dir" "$plugin_so" 1 2 <<EOF
  <Target "auth">
    Host "127.0.30.4"
    Port 2587
    $common
    AuthUser "probe@smtp-probe.test"
    AuthPasswordFile "$dir/secrets/password"
    AuthMechanism "PLAIN"
    MailFrom "probe@smtp-probe.test"
  </Target>
  <Target "wrong">
    Host "127.0.30.4"
    Port 2588
    $common
    AuthUser "probe@smtp-probe.test"
    AuthPasswordFile "$dir/secrets/wrong"
  </Target>
  <Target "open">
    Host "127.0.30.4"
    Port 2591
    $common
    AuthUser "probe@smtp-probe.test"
    AuthPasswordFile "$dir/secrets/password-open"
  </Target>
  <Target "inline">
    Host "127.0.30.4"
    Port 2591
    AuthUser "probe@smtp-probe.test"
    AuthPassword "$inline"
  </Target>
  <Target "inject">
    Host "127.0.30.4"
    Port 2589
    $common
    CheckInjection true
  </Target>
  <Target "weak">
    Host "127.0.30.4"
    Port 2590
    $common
  </Target>
  <Target "weak10">
    Host "127.0.30.4"
    Port 2590
    $common
    MinTLS "1.0"
  </Target>
  <Target "pol">
    Host "127.0.30.5"
    PolicyFile "$dir/policy.yml"
    $common
  </Target>
EOF

spc_start "$dir"

have_success() { spc_getval "$dir" "$1" bool-success >/dev/null; }
# Wait for a success value of an instance and assert it.
# usage: expect_success INSTANCE 0|1
expect_success() {
  spc_wait_until 30 "$1 success value" have_success "$1"
  local s
  s=$(spc_getval "$dir" "$1" bool-success)
  awk -v v="$s" -v w="$2" 'BEGIN { exit !(v == w) }' ||
    spc_fail "$1 success = $s, want $2: $(grep "plugin_instance = $1," "$dir/collectd.log" | tail -n 1)"
}
# True when the log holds a notification of that severity for an instance
# and type instance whose message matches RE.
# usage: notified SEVERITY INSTANCE TYPE_INSTANCE RE
notified() {
  grep -Eq "Notification: severity = $1, .*plugin_instance = $2, type = bool, type_instance = $3, message = .*$4" \
    "$dir/collectd.log"
}
# Count such notifications.
count_notified() {
  grep -Ec "Notification: severity = $1, .*plugin_instance = $2, type = bool, type_instance = $3, message = .*$4" \
    "$dir/collectd.log" || true
}

# The inline password is refused, naming block and key.
grep -q 'Target "inline": AuthPassword: no passwords in the configuration' "$dir/collectd.log" ||
  spc_fail "inline AuthPassword not refused: $(grep smtp_probe "$dir/collectd.log" | head -n 5)"
echo "ok: inline AuthPassword refused with block and key"

# The readable password file: a warning, and the probe runs.
grep -q 'Target "open": AuthPasswordFile: .*readable by group or others' "$dir/collectd.log" ||
  spc_fail "no warning about the readable password file"
expect_success open-2591 1
echo "ok: readable password file: warning naming block and key, probe runs"

# AUTH with the right password: success 1 and the auth phase's latency.
expect_success auth-2587 1
v=$(spc_getval "$dir" auth-2587 latency-auth) || spc_fail "no auth-2587 latency-auth"
awk -v v="$v" 'BEGIN { exit !(v > 0 && v < 1) }' || spc_fail "auth-2587 latency-auth = $v"
spc_getval "$dir" auth-2587 latency-mail_from >/dev/null || spc_fail "no auth-2587 latency-mail_from"
grep -q 'AUTH succeeded' "$dir/server.log" || spc_fail "the fault server saw no successful AUTH"
echo "ok: auth-2587: success 1, latency-auth $v, latency-mail_from"

# A wrong password: success 0 and a FAILURE notification with auth_failed.
expect_success wrong-2588 0
spc_wait_until 30 "auth_failed notification" notified FAILURE wrong-2588 success auth_failed
echo "ok: wrong-2588: success 0, FAILURE notification with auth_failed"

# STARTTLS injection.
expect_success inject-2589 0
spc_wait_until 30 "starttls_injection notification" notified FAILURE inject-2589 success starttls_injection
echo "ok: inject-2589: FAILURE notification with starttls_injection"

# TLS 1.0: weak by default (TLS 1.2 minimum), accepted with MinTLS "1.0".
expect_success weak-2590 0
spc_wait_until 30 "tls_weak_protocol notification" notified "(WARNING|FAILURE)" weak-2590 success tls_weak_protocol
expect_success weak10-2590 1
echo "ok: tls10: tls_weak_protocol notification by default, success 1 with MinTLS 1.0"

# The policy: 2591 open as expected, 2593 closed as expected, 2592 answers
# although the policy says closed: one deviation (port 2592, rule state).
expect_success pol-2591 1
expect_success pol-2593 1
expect_success pol-2592 0
spc_wait_until 30 "policy deviation notification" \
  notified FAILURE pol-2592 policy 'pol port 2592: CRITICAL policy_violation: rule state: '
rows=$(spc_csv_rows "$dir" pol-2592 bool-success)
spc_wait_until 30 "3 more pol-2592 rounds" \
  spc_rows_at_least "$dir" pol-2592 bool-success $((rows + 3))
n=$(count_notified FAILURE pol-2592 policy 'rule state')
[ "$n" -eq 1 ] || spc_fail "the deviation was notified $n times, want once"
n=$(count_notified '[A-Z]+' 'pol-259[13]' policy '.')
[ "$n" -eq 0 ] || spc_fail "$n policy notifications for ports that follow the policy"
echo "ok: pol: one deviation notified once (port 2592, rule state); 2591 and 2593 succeed"

spc_stop "$dir" || spc_fail "collectd exited with an error"

# No password anywhere collectd wrote (log with every notification,
# stdout/stderr, csv), nor the inline one.
for f in "$dir/collectd.log" "$dir/collectd.stdout" "$dir/csv"; do
  [ -e "$f" ] || spc_fail "$f is missing: cannot search it for passwords"
done
for secret in "$password" "$wrong" "$inline"; do
  # judge by what grep printed: its exit status is 2 when any file is
  # unreadable, whether or not it found the secret elsewhere
  grep -rlF -- "$secret" "$dir/collectd.log" "$dir/collectd.stdout" "$dir/csv" >"$dir/leaks" 2>/dev/null || true
  if [ -s "$dir/leaks" ]; then
    spc_fail "a password appears in: $(tr '\n' ' ' <"$dir/leaks")"
  fi
done
grep -q 'Notification:' "$dir/collectd.log" || spc_fail "no notification logged at all"
echo "ok: no password in collectd's log, notifications, output or csv files"
echo "PASS"
