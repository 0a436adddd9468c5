#!/usr/bin/env bash
# codes.sh - every authentication/posture diagnosis code is produced, the
# same, by all three adapters: the Nagios check, the Prometheus exporter and
# the collectd plugin (in a real collectd).
#
# usage: codes.sh CHECK_SMTP_PORTS SMTP_EXPORTER PLUGIN_SO FAULT_SERVER MAKE_CERTS_SH
#
# One smtp_fault_server on 127.0.70.1 (one listener per case), one exporter
# on 127.0.70.1:9870 (one module per case), one private collectd (Interval 1,
# one <Target> per case). For each case the code each adapter reports must
# be the expected one (so all three agree):
#   Nagios: the first line's "PORT CODE";
#   exporter: smtp_probe_diagnosis_info{port="PORT",code="CODE"} 1;
#   collectd: the success notification of that target ("... port PORT:
#     STATE CODE: ..."), or success 1 for ok (no notification is sent for
#     a port that starts OK).
# The state must agree too (check state = exporter smtp_probe_state;
# collectd severity OKAY/WARNING/FAILURE). For the AUTH cases the fault
# server's log, sliced per adapter, must show that adapter authenticating
# with the named mechanism (PLAIN, LOGIN, CRAM-MD5, XOAUTH2) or the default
# one (CRAM-MD5). A table case x adapter -> "code state" is printed. The
# AUTH passwords (right and wrong, from files) must not show in the check's
# -vvv output, the exporter's debug pages and log, nor collectd's log and
# output. The adapters are run by lib.sh.
#
# A second round (issue 12: a slow greeting) runs the same way in $dir/slow
# against a second fault server on 127.0.70.2 (real ports 587 and 2525, the
# submission role), a second exporter on 127.0.70.2:9870 and a second
# collectd: the greeting 3 s late on 587 and on 2525 with the adapters'
# timeouts at 10 s is ok; 8 s late with a 5 s timeout is banner_timeout.
# The main round also has a temporary refusal (451 at MAIL: deferred).
# Loopback only; every daemon is stopped by the EXIT trap.
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# The collectd helpers (private PluginDir with hard links, start, stop,
# getval, bounded waits) are the collectd tests' own.
# shellcheck source=tests/collectd/collectd-lib.sh
. "$HERE/../collectd/collectd-lib.sh"
# shellcheck source=tests/crosscheck/lib.sh
. "$HERE/lib.sh"

check=${1:?usage: codes.sh CHECK EXPORTER PLUGIN_SO FAULT_SERVER MAKE_CERTS}
exporter=${2:?}
plugin_so=${3:?}
fault_server=${4:?}
make_certs=${5:?}
[ -x "$check" ] || spc_fail "no $check"
[ -x "$exporter" ] || spc_fail "no $exporter"
[ -r "$plugin_so" ] || spc_fail "no $plugin_so"
[ -x "$fault_server" ] || spc_fail "no $fault_server"
[ -r "$make_certs" ] || spc_fail "no $make_certs"
command -v collectd >/dev/null || spc_fail "collectd is not installed"
command -v curl >/dev/null || spc_fail "curl is not installed"

ADDR=127.0.70.1
TLS_NAME=mail.smtp-probe.test
USER_ID=probe@smtp-probe.test

dir=$(mktemp -d /tmp/sp-crosscheck.XXXXXX)
top_dir=$dir
# The EXIT trap: stop the second round's collectd when it is running, then
# clean everything up from the top directory (lib.sh's xc_cleanup).
codes_cleanup() {
  local rc=$?
  if [ "$dir" != "$top_dir" ]; then
    spc_stop "$dir" 10 || true
    dir=$top_dir
  fi
  set +e
  (exit "$rc")
  xc_cleanup
}
trap codes_cleanup EXIT

bash "$make_certs" "$dir/certs" >"$dir/make-certs.log" 2>&1 ||
  spc_fail "make-certs.sh failed: $(tail -n 5 "$dir/make-certs.log")"
CA=$dir/certs/ca.pem

# Fresh random passwords, mode 600, in files only.
mkdir -m 700 "$dir/secrets"
random_pw() { printf 'xc-%s\n' "$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')"; }
(umask 077 && random_pw >"$dir/secrets/password" && random_pw >"$dir/secrets/wrong")
password=$(head -n 1 "$dir/secrets/password")
wrong=$(head -n 1 "$dir/secrets/wrong")
PW=$dir/secrets/password
WRONG=$dir/secrets/wrong

# The cases: NAME PORT FAULT-SERVER-MODE EXPECTED-CODE OPTIONS (see lib.sh).
CASES=(
  "ok_auth 2601 auth ok auth=$PW mech=PLAIN from"
  "ok_login 2610 auth ok auth=$PW mech=LOGIN from"
  "ok_cram 2611 auth ok auth=$PW mech=CRAM-MD5 from"
  "ok_xoauth2 2612 auth ok auth=$PW mech=XOAUTH2 from"
  "weak_tls 2602 tls10 tls_weak_protocol -"
  "auth_plaintext 2603 auth-before-tls auth_before_tls -"
  "no_auth 2604 no-auth auth_unavailable auth=$PW"
  "wrong_password 2605 auth auth_failed auth=$WRONG seen_mech=CRAM-MD5"
  "injection 2606 injection-vulnerable starttls_injection inject"
  "policy 2607 starttls policy_violation policy=$dir/policy.yml"
  "mail_reject 2608 mail-reject rejected from"
  "rcpt_reject 2609 rcpt-reject rejected from rcpt"
  "deferred_mail 2613 mail-451 deferred from"
)

# The policy of case "policy": 2607 must be closed, but it answers.
cat >"$dir/policy.yml" <<'YAML'
ports:
  2607:
    state: closed
YAML

# The AUTH outcomes in a slice of the fault server's log, for one port:
# "MECH:succeeded" / "MECH:failed", one per line, sorted, unique.
# usage: auth_seen FIRST_LINE LAST_LINE PORT
auth_seen() {
  sed -n "$1,$2p" "$dir/server.log" | awk -v port="$3" '
    $4 == "accepted" && $5 == "on" { on[$3] = $6 }
    $4 == "<" && $5 == "AUTH" && on[$3] ~ (":" port "$") { mech[$3] = $6 }
    $4 == "AUTH" && ($3 in mech) { print mech[$3] ":" $5; delete mech[$3] }
  ' | sort -u
}
# Lines in the fault server's log so far.
log_lines() { wc -l <"$dir/server.log"; }
# After one adapter's phase (log lines FIRST..LAST): for every case that
# names a mechanism, that adapter's AUTHs on the case's port all used it
# and succeeded (or, for a wrong password, failed); otherwise the adapter's
# answer for the case becomes "?(auth ...)".
# usage: check_mechs ARRAY_NAME FIRST LAST
check_mechs() {
  local -n _res=$1
  local c name port want opts o m seen expect
  for c in "${CASES[@]}"; do
    read -r name port _ want opts <<<"$c"
    m=
    for o in $opts; do
      case $o in mech=*) m=${o#mech=} ;; seen_mech=*) m=${o#seen_mech=} ;; esac
    done
    [ -n "$m" ] || continue
    expect="$m:succeeded"
    [ "$want" = auth_failed ] && expect="$m:failed"
    seen=$(auth_seen "$2" "$3" "$port" | tr '\n' ' ')
    [ "$seen" = "$expect " ] || _res["$name"]="?(auth seen: ${seen:-none})"
  done
}

# Called by lib.sh after each adapter's phase: the mechanisms in the slice
# of the server log that phase wrote.
XC_LOG_FROM=1
xc_phase_done() {
  local to
  to=$(log_lines)
  check_mechs "$1" "$XC_LOG_FROM" "$to"
  XC_LOG_FROM=$((to + 1))
}

# ---- the fault server ---------------------------------------------------
# Start a fault server in $dir with one listener ADDR:PORT=MODE per case
# (MODE may carry listener options: starttls,greet_delay=3000) and wait
# until it is ready.
start_fault_server() {
  local c port mode
  local -a listen=()
  for c in "${CASES[@]}"; do
    read -r _ port mode _ <<<"$c"
    listen+=(--listen "$ADDR:$port=$mode")
  done
  "$fault_server" --cert-prefix "$top_dir/certs/server" --auth-password-file "$PW" \
    --ready-file "$dir/server.ready" --log "$dir/server.log" "${listen[@]}" \
    2>"$dir/server.err" &
  server_pid=$!
  XC_PIDS+=("$server_pid")
  spc_wait_until 30 "fault server ready" server_ready
}
# True once the fault server wrote its ready file; fails when it died.
server_ready() {
  kill -0 "$server_pid" 2>/dev/null || spc_fail "fault server exited: $(cat "$dir/server.err")"
  test -e "$dir/server.ready"
}
start_fault_server

# ---- the three adapters ------------------------------------------------
xc_configure
xc_run_nagios "$check"
xc_run_exporter "$exporter" "$ADDR:9870"
xc_run_collectd "$plugin_so"
xc_table

# ---- round 2: a slow greeting on 587 and 2525 (issue 12) ----------------
# Per case: the timeout of every adapter (check -t, exporter module
# timeout, collectd Timeout with an Interval 2 s longer).
declare -A SLOW_TIMEOUT=([greet3s_587]=10 [greet3s_2525]=10 [greet8s_t5]=5)
# Rewrite the timeouts lib.sh's xc_configure wrote (-t 20, timeout: 20s,
# Timeout 0.9) for the cases of SLOW_TIMEOUT.
set_slow_timeouts() {
  local name t
  for name in "${!SLOW_TIMEOUT[@]}"; do
    t=${SLOW_TIMEOUT[$name]}
    NAGIOS_ARGS[$name]=${NAGIOS_ARGS[$name]/ -t 20/ -t $t}
  done
  local map
  map=$(for name in "${!SLOW_TIMEOUT[@]}"; do echo "$name ${SLOW_TIMEOUT[$name]}"; done)
  awk -v map="$map" '
    BEGIN { n = split(map, w, /[ \n]/); for (i = 1; i < n; i += 2) t[w[i]] = w[i + 1] }
    /^  [A-Za-z0-9_]+:$/ { cur = substr($1, 1, length($1) - 1) }
    $0 == "    timeout: 20s" && (cur in t) { print "    timeout: " t[cur] "s"; next }
    { print }' "$dir/exporter.yml" >"$dir/exporter.yml.new"
  mv "$dir/exporter.yml.new" "$dir/exporter.yml"
  awk -v map="$map" '
    BEGIN { n = split(map, w, /[ \n]/); for (i = 1; i < n; i += 2) t[w[i]] = w[i + 1] }
    /^  <Target "/ { cur = $2; gsub(/[">]/, "", cur) }
    $0 == "    Timeout 0.9" && (cur in t) {
      print "    Timeout " t[cur]; print "    Interval " t[cur] + 2; next
    }
    { print }' "$dir/collectd-targets" >"$dir/collectd-targets.new"
  mv "$dir/collectd-targets.new" "$dir/collectd-targets"
  for name in "${!SLOW_TIMEOUT[@]}"; do
    t=${SLOW_TIMEOUT[$name]}
    if ! grep -q -- "-t $t\$" <<<"${NAGIOS_ARGS[$name]}" ||
      ! grep -q "^    timeout: ${t}s\$" "$dir/exporter.yml" ||
      ! grep -q "^    Timeout $t\$" "$dir/collectd-targets"; then
      spc_fail "could not set the timeouts of case $name"
    fi
  done
}
main_cases=("${CASES[@]}")
main_addr=$ADDR
ADDR=127.0.70.2
dir=$top_dir/slow
mkdir "$dir"
CASES=(
  "greet3s_587 587 starttls,greet_delay=3000 ok -"
  "greet3s_2525 2525 starttls,greet_delay=3000 ok -"
  "greet8s_t5 2614 starttls,greet_delay=8000 banner_timeout -"
)
start_fault_server
xc_configure
set_slow_timeouts
XC_LOG_FROM=1
xc_run_nagios "$check"
xc_run_exporter "$exporter" "$ADDR:9870"
xc_run_collectd "$plugin_so"
xc_table
# Every adapter waited for the late greetings: each accepted one
# connection per 3 s case at least (the check, the exporter twice: with
# and without debug, collectd).
for port in 587 2525; do
  n=$(grep -c "accepted on $ADDR:$port " "$dir/server.log" || true)
  if [ "$n" -lt 4 ]; then
    spc_say "FAIL: the slow server on port $port saw $n connections, want >= 4"
    XC_BAD=$((XC_BAD + 1))
  fi
done
slow_cases=${#CASES[@]}
dir=$top_dir
CASES=("${main_cases[@]}")
ADDR=$main_addr

# ---- no password in anything the adapters wrote -------------------------
xc_no_secrets "$password" "$wrong"
bad=$XC_BAD

# The secrets were really used: the server saw the right password succeed.
grep -q 'AUTH succeeded' "$dir/server.log" || {
  spc_say "FAIL: the fault server saw no successful AUTH"
  bad=$((bad + 1))
}
# The outputs searched for the password do show the AUTH exchange (masked).
grep -q 'C: AUTH PLAIN ' "$dir/nagios-ok_auth.out" || {
  spc_say "FAIL: check -vvv shows no AUTH command for ok_auth"
  bad=$((bad + 1))
}
grep -q '^C: AUTH PLAIN <masked>$' "$dir/exporter-ok_auth.debug" || {
  spc_say "FAIL: exporter debug page shows no masked AUTH for ok_auth"
  bad=$((bad + 1))
}

if [ "$bad" -ne 0 ]; then
  spc_fail "$bad problem(s)"
fi
echo "PASS: ${#CASES[@]} + $slow_cases cases, three adapters agree, no password in any output"
