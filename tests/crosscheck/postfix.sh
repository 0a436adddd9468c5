#!/usr/bin/env bash
# postfix.sh - the three adapters (the Nagios check, the exporter, the
# collectd plugin in a real collectd) against the shared real Postfix
# (fixture mailenv): the same code and state from each.
#
# usage: postfix.sh CHECK_SMTP_PORTS SMTP_EXPORTER PLUGIN_SO ENV_SH
#
# Cases: AUTH with every mechanism Postfix offers (PLAIN, LOGIN, CRAM-MD5)
# on 587, 465 and 2525 -> ok, and each adapter says it used that mechanism
# (check: "AUTH: M accepted"; exporter: smtp_probe_auth_used_info; collectd:
# an auth latency); a wrong password -> auth_failed; AUTH asked on 25 (no
# AUTH there) -> auth_unavailable (WARNING for the relay role); RCPT TO a
# foreign domain without AUTH -> rejected (554 relay access denied), with
# AUTH -> MAIL FROM ok, RCPT TO rejected all the same (550: the test
# environment delivers nothing). The SASL password and the wrong one never show in any adapter's
# output. Postfix on 127.0.10.1; the exporter on 127.0.70.1:9871.
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=tests/collectd/collectd-lib.sh
. "$HERE/../collectd/collectd-lib.sh"
# shellcheck source=tests/crosscheck/lib.sh
. "$HERE/lib.sh"

xc_postfix_args "$@"

dir=$(mktemp -d /tmp/sp-crosscheck-pf.XXXXXX)
trap xc_cleanup EXIT

# A wrong password: a fresh random file, mode 600.
mkdir -m 700 "$dir/secrets"
(umask 077 && printf 'xc-%s\n' "$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')" >"$dir/secrets/wrong")
WRONG=$dir/secrets/wrong
password=$(head -n 1 "$PW")
wrong=$(head -n 1 "$WRONG")

# NAME PORT - EXPECTED-CODE OPTIONS (see lib.sh).
CASES=()
for p in 587 465 2525; do
  for m in PLAIN LOGIN CRAM-MD5; do
    n=$(printf '%s' "$m" | tr 'A-Z-' 'a-z_')
    CASES+=("s${p}_$n $p - ok auth=$PW mech=$m")
  done
done
CASES+=(
  "s587_wrong 587 - auth_failed auth=$WRONG"
  "s465_wrong 465 - auth_failed auth=$WRONG"
  "s25_auth 25 - auth_unavailable auth=$PW"
  "s25_relay 25 - rejected from rcpt"
  "s587_relay 587 - rejected from rcpt"
  "s587_mail_auth 587 - ok auth=$PW from"
  "s587_rcpt_auth 587 - rejected auth=$PW from rcpt"
)

# Called by lib.sh after the check's and the exporter's phase: for every ok
# case naming a mechanism, that adapter says it authenticated with it.
xc_phase_done() {
  local -n _res=$1
  local c name port want opts o m
  for c in "${CASES[@]}"; do
    read -r name port _ want opts <<<"$c"
    m=
    for o in $opts; do case $o in mech=*) m=${o#mech=} ;; esac; done
    if [ -z "$m" ] || [ "$want" != ok ]; then continue; fi
    case $1 in
    GOT_NAGIOS)
      grep -q "AUTH: $m accepted" "$dir/nagios-$name.out" ||
        _res["$name"]="?(no 'AUTH: $m accepted')"
      ;;
    GOT_EXPORTER)
      grep -q "^smtp_probe_auth_used_info{port=\"$port\",mechanism=\"$m\"} 1$" "$dir/exporter-$name.prom" ||
        _res["$name"]="?(no auth_used_info $m)"
      ;;
    esac
  done
}

xc_configure
xc_run_nagios "$check"
xc_run_exporter "$exporter" 127.0.70.1:9871
xc_run_collectd "$plugin_so"
xc_table
xc_no_secrets "$password" "$wrong"

[ "$XC_BAD" -eq 0 ] || spc_fail "$XC_BAD problem(s)"
echo "PASS: ${#CASES[@]} cases against Postfix, three adapters agree, no password in any output"
