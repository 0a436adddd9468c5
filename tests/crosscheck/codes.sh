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
# one (CRAM-MD5). A table case x adapter -> "code state" is printed. The AUTH passwords (right and
# wrong, from files) must not show in the check's -vvv output, the
# exporter's debug pages and log, nor collectd's log and output.
# Loopback only; every daemon is stopped by the EXIT trap.
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# The collectd helpers (private PluginDir with hard links, start, stop,
# getval, bounded waits) are the collectd tests' own.
# shellcheck source=tests/collectd/collectd-lib.sh
. "$HERE/../collectd/collectd-lib.sh"

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
EXPORTER_LISTEN=$ADDR:9870
NAME=mail.smtp-probe.test
USER_ID=probe@smtp-probe.test

dir=$(mktemp -d /tmp/sp-crosscheck.XXXXXX)
server_pid=
exporter_pid=
# Stop collectd, the exporter and the fault server; remove the directory.
cleanup() {
  local rc=$?
  if [ "$rc" -ne 0 ]; then
    for f in collectd.log exporter.log server.err; do
      if [ -s "$dir/$f" ]; then
        spc_say "last lines of $f:"
        tail -n 20 "$dir/$f" >&2
      fi
    done
  fi
  spc_stop "$dir" 10 || true
  spc_kill_helper "$exporter_pid"
  spc_kill_helper "$server_pid"
  if [ "${SPC_KEEP:-0}" = 1 ]; then spc_say "kept $dir"; else rm -rf "$dir"; fi
}
trap cleanup EXIT

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

# The cases: NAME PORT MODE EXPECTED-CODE OPTIONS. OPTIONS are words, each
# turned into every adapter's syntax below:
#   auth=FILE      AUTH as probe@smtp-probe.test with the password in FILE
#   mech=M         AUTH mechanism
#   seen_mech=M    no mechanism given; the default must pick M
#   from / rcpt    MAIL FROM / RCPT TO trial
#   inject         STARTTLS injection test
#   policy=FILE    port policy
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

# ---- the fault server ---------------------------------------------------
listen=()
for c in "${CASES[@]}"; do
  read -r _ port mode _ <<<"$c"
  listen+=(--listen "$ADDR:$port=$mode")
done
"$fault_server" --cert-prefix "$dir/certs/server" --auth-password-file "$PW" \
  --ready-file "$dir/server.ready" --log "$dir/server.log" "${listen[@]}" \
  2>"$dir/server.err" &
server_pid=$!
# True once the fault server wrote its ready file; fails when it died.
server_ready() {
  kill -0 "$server_pid" 2>/dev/null || spc_fail "fault server exited: $(cat "$dir/server.err")"
  test -e "$dir/server.ready"
}
spc_wait_until 30 "fault server ready" server_ready

# ---- the three configurations -------------------------------------------
declare -A WANT NAGIOS_ARGS
{
  echo "modules:"
} >"$dir/exporter.yml"
: >"$dir/collectd-targets"
for c in "${CASES[@]}"; do
  read -r name port _ want opts <<<"$c"
  WANT[$name]=$want
  # With a policy every adapter probes the ports the policy names (the
  # check and collectd refuse an explicit port next to it).
  case $opts in
  *policy=*) nargs="-H $ADDR --cafile $CA --sni $NAME -t 20" ;;
  *) nargs="-H $ADDR -p $port --cafile $CA --sni $NAME -t 20" ;;
  esac
  {
    echo "  $name:"
    echo "    timeout: 20s"
    echo "    server_name: $NAME"
    echo "    ca_file: $CA"
  } >>"$dir/exporter.yml"
  {
    echo "  <Target \"$name\">"
    echo "    Host \"$ADDR\""
    # With a PolicyFile the policy names the ports (Port is refused).
    case $opts in *policy=*) ;; *) echo "    Port $port" ;; esac
    echo "    SNI \"$NAME\""
    echo "    CAFile \"$CA\""
    echo "    Timeout 0.9"
  } >>"$dir/collectd-targets"
  for o in $opts; do
    case $o in
    - | seen_mech=*) ;;
    auth=*)
      nargs+=" --auth-user $USER_ID --auth-password-file ${o#auth=}"
      printf '    auth_user: %s\n    auth_password_file: %s\n' "$USER_ID" "${o#auth=}" >>"$dir/exporter.yml"
      printf '    AuthUser "%s"\n    AuthPasswordFile "%s"\n' "$USER_ID" "${o#auth=}" >>"$dir/collectd-targets"
      ;;
    mech=*)
      nargs+=" --auth-mech ${o#mech=}"
      printf '    auth_mechanism: %s\n' "${o#mech=}" >>"$dir/exporter.yml"
      printf '    AuthMechanism "%s"\n' "${o#mech=}" >>"$dir/collectd-targets"
      ;;
    from)
      nargs+=" --mail-from $USER_ID"
      printf '    mail_from: %s\n' "$USER_ID" >>"$dir/exporter.yml"
      printf '    MailFrom "%s"\n' "$USER_ID" >>"$dir/collectd-targets"
      ;;
    rcpt)
      nargs+=" --rcpt-to nobody@smtp-probe.test"
      printf '    rcpt_to: nobody@smtp-probe.test\n' >>"$dir/exporter.yml"
      printf '    RcptTo "nobody@smtp-probe.test"\n' >>"$dir/collectd-targets"
      ;;
    inject)
      nargs+=" --check-injection"
      printf '    check_injection: true\n' >>"$dir/exporter.yml"
      printf '    CheckInjection true\n' >>"$dir/collectd-targets"
      ;;
    policy=*)
      nargs+=" --policy ${o#policy=}"
      printf '    policy_file: %s\n' "${o#policy=}" >>"$dir/exporter.yml"
      printf '    PolicyFile "%s"\n' "${o#policy=}" >>"$dir/collectd-targets"
      ;;
    *) spc_fail "unknown case option $o" ;;
    esac
  done
  echo "  </Target>" >>"$dir/collectd-targets"
  NAGIOS_ARGS[$name]=$nargs
done

# ---- Nagios -------------------------------------------------------------
# Each adapter's answer per case is "CODE STATE" (state OK, WARNING,
# CRITICAL or UNKNOWN; collectd's FAILURE severity covers the last two).
declare -A GOT_NAGIOS GOT_EXPORTER GOT_COLLECTD
STATES=(OK WARNING CRITICAL UNKNOWN)
from=$(($(log_lines) + 1))
for c in "${CASES[@]}"; do
  read -r name port _ <<<"$c"
  rc=0
  # shellcheck disable=SC2086 # the words are built above, no spaces inside
  timeout 60 "$check" ${NAGIOS_ARGS[$name]} -vvv >"$dir/nagios-$name.out" 2>"$dir/nagios-$name.err" || rc=$?
  first=$(head -n 1 "$dir/nagios-$name.out")
  # "SMTP STATE - PORT CODE..." -> "CODE STATE"; the exit code must match.
  got=$(printf '%s\n' "$first" | sed -nE "s/^SMTP ([A-Z]+) - $port ([a-z_]+).*/\2 \1/p")
  if [ -n "$got" ] && [ "$rc" -le 3 ] && [ "${got#* }" = "${STATES[$rc]}" ]; then
    GOT_NAGIOS[$name]=$got
  else
    GOT_NAGIOS[$name]="?(rc $rc: ${first:0:60})"
  fi
done
check_mechs GOT_NAGIOS "$from" "$(log_lines)"
from=$(($(log_lines) + 1))

# ---- the exporter -------------------------------------------------------
"$exporter" --config.file="$dir/exporter.yml" --web.listen-address="$EXPORTER_LISTEN" \
  --log.level=debug >"$dir/exporter.log" 2>&1 &
exporter_pid=$!
# True once the exporter answers /-/healthy; fails when it died.
exporter_ready() {
  kill -0 "$exporter_pid" 2>/dev/null || spc_fail "exporter exited: $(tail -n 5 "$dir/exporter.log")"
  curl -sf -o /dev/null --max-time 2 "http://$EXPORTER_LISTEN/-/healthy"
}
spc_wait_until 30 "exporter healthy" exporter_ready
for c in "${CASES[@]}"; do
  read -r name port _ _ opts <<<"$c"
  target=$ADDR:$port
  case $opts in *policy=*) target=$ADDR ;; esac
  url="http://$EXPORTER_LISTEN/probe?target=$target&module=$name"
  http=$(curl -s --max-time 40 -o "$dir/exporter-$name.prom" -w '%{http_code}' "$url") || http=000
  curl -s --max-time 40 -o "$dir/exporter-$name.debug" "$url&debug=true" || true
  code=$(sed -nE "s/^smtp_probe_diagnosis_info\{port=\"$port\",code=\"([a-z_]+)\"\} 1$/\1/p" \
    "$dir/exporter-$name.prom" | head -n 1)
  state=$(sed -nE "s/^smtp_probe_state\{port=\"$port\"\} ([0-3])$/\1/p" "$dir/exporter-$name.prom" | head -n 1)
  if [ -n "$code" ] && [ -n "$state" ]; then
    GOT_EXPORTER[$name]="$code ${STATES[$state]}"
  else
    GOT_EXPORTER[$name]="?(HTTP $http)"
  fi
done
check_mechs GOT_EXPORTER "$from" "$(log_lines)"
from=$(($(log_lines) + 1))

# ---- collectd -----------------------------------------------------------
spc_write_conf "$dir" "$plugin_so" 1 2 <"$dir/collectd-targets"
spc_start "$dir"
# "CODE SEVERITY" of the latest success notification of a target, or "".
notified() {
  grep -E "Notification: severity = [A-Z]+, .*plugin_instance = $1-$2, type = bool, type_instance = success, message = " \
    "$dir/collectd.log" | tail -n 1 |
    sed -nE "s/.*severity = ([A-Z]+), .*message = $1 port $2: [A-Z]+ ([a-z_]+):.*/\2 \1/p" || true
}
# True once a target's latest notification carries the expected code, or,
# for ok, once it has success 1 and no notification (a port that starts OK
# is not notified). A round lost to a slow moment (Timeout 0.9 s on a busy
# machine) is followed by a notification of the next round's code, so the
# latest one counts; a code that stays wrong is reported after the deadline.
# usage: collectd_has_code NAME PORT WANT
collectd_has_code() {
  local n v
  n=$(notified "$1" "$2")
  [ "${n%% *}" = "$3" ] && return 0
  [ "$3" = ok ] && [ -z "$n" ] || return 1
  v=$(spc_getval "$dir" "$1-$2" bool-success 2>/dev/null) || return 1
  awk -v v="$v" 'BEGIN { exit !(v == 1) }'
}
for c in "${CASES[@]}"; do
  read -r name port _ <<<"$c"
  (spc_wait_until 30 "collectd code for $name" collectd_has_code "$name" "$port" "${WANT[$name]}") || true
  got=$(notified "$name" "$port")
  if [ -z "$got" ]; then
    # No notification: OK when the port has success 1.
    v=$(spc_getval "$dir" "$name-$port" bool-success 2>/dev/null) || v=none
    if awk -v v="$v" 'BEGIN { exit !(v == 1) }'; then got="ok OKAY"; else got="?(success $v)"; fi
  fi
  GOT_COLLECTD[$name]=$got
done
# ok_auth really authenticated in collectd too: it has an auth latency.
spc_getval "$dir" ok_auth-2601 latency-auth >/dev/null ||
  GOT_COLLECTD[ok_auth]="?(no latency-auth)"
spc_stop "$dir" 30 || spc_fail "collectd exited with an error"
check_mechs GOT_COLLECTD "$from" "$(log_lines)"

# ---- the table ----------------------------------------------------------
# True when collectd's severity is the one for a check state.
severity_fits() {
  case "$1:$2" in
  OKAY:OK | WARNING:WARNING | FAILURE:CRITICAL | FAILURE:UNKNOWN) return 0 ;;
  *) return 1 ;;
  esac
}
bad=0
printf '%-15s %-5s %-18s %-27s %-27s %-27s\n' case port expected nagios exporter collectd
for c in "${CASES[@]}"; do
  read -r name port _ <<<"$c"
  w=${WANT[$name]}
  n=${GOT_NAGIOS[$name]} e=${GOT_EXPORTER[$name]} d=${GOT_COLLECTD[$name]}
  mark=""
  if [ "${n%% *}" != "$w" ] || [ "${e%% *}" != "$w" ] || [ "${d%% *}" != "$w" ]; then
    mark="  <-- CODE MISMATCH"
    bad=$((bad + 1))
  elif [ "${n#* }" != "${e#* }" ] || ! severity_fits "${d#* }" "${n#* }"; then
    mark="  <-- STATE MISMATCH"
    bad=$((bad + 1))
  fi
  printf '%-15s %-5s %-18s %-27s %-27s %-27s%s\n' "$name" "$port" "$w" "$n" "$e" "$d" "$mark"
done

# ---- no password in anything the adapters wrote -------------------------
for secret in "$password" "$wrong"; do
  if grep -rlF -- "$secret" "$dir"/nagios-* "$dir"/exporter-* "$dir/exporter.log" \
    "$dir/collectd.log" "$dir/collectd.stdout" "$dir/csv" >"$dir/leaks" 2>/dev/null; then
    spc_say "FAIL: a password appears in: $(tr '\n' ' ' <"$dir/leaks")"
    bad=$((bad + 1))
  fi
done
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
# The debug pages were really written (the leak check read something).
for c in "${CASES[@]}"; do
  read -r name _ <<<"$c"
  [ -s "$dir/exporter-$name.debug" ] || {
    spc_say "FAIL: no exporter debug page for $name"
    bad=$((bad + 1))
  }
done

if [ "$bad" -ne 0 ]; then
  spc_fail "$bad problem(s)"
fi
echo "PASS: ${#CASES[@]} cases, three adapters agree, no password in any output"
