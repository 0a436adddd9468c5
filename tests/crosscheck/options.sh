#!/usr/bin/env bash
# options.sh - one option vocabulary: the same value is accepted or refused
# the same way, with the same sentence, by all three adapters (issue 13).
#
# usage: options.sh CHECK_SMTP_PORTS SMTP_EXPORTER PLUGIN_SO
#
# For each case (a core key, its spelling in each adapter, a value and the
# core's sentence for it) the Nagios check (exit 3, UNKNOWN with usage),
# `smtp_exporter --config.check` (non-zero, file:line:col: KEY: ...) and a
# real collectd (the block skipped, `Target "NAME": Key: ...` in its log)
# must all refuse it with that sentence; and the good values of the same
# keys are accepted by all three. Nothing is probed but 127.0.0.1 port 1
# (nothing listens: the good cases' probes end at once, refused).
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=tests/collectd/collectd-lib.sh
. "$HERE/../collectd/collectd-lib.sh"

check=${1:?usage: options.sh CHECK EXPORTER PLUGIN_SO}
exporter=${2:?}
plugin_so=${3:?}
[ -x "$check" ] || spc_fail "no $check"
[ -x "$exporter" ] || spc_fail "no $exporter"
[ -r "$plugin_so" ] || spc_fail "no $plugin_so"
command -v collectd >/dev/null || spc_fail "collectd is not installed"

dir=$(mktemp -d /tmp/sp-options.XXXXXX)
cleanup() { spc_cleanup $? "$dir" 15 30; }
trap cleanup EXIT

# NAME|NAGIOS OPTION|COLLECTD KEY|MODULE KEY|VALUE|SENTENCE ("" = accepted).
# A "-" spelling: the adapter has no such option (Nagios has -4/-6 only).
CASES=(
  "min_tls_bad|--min-tls|MinTLS|min_tls_version|1.4|'1.4' is not 1.0, 1.1, 1.2 or 1.3"
  "min_tls_good|--min-tls|MinTLS|min_tls_version|TLSv1.2|"
  "tls_bad|--tls|TLS|tls|sometimes|'sometimes' is not auto, none, starttls or implicit"
  "tls_good|--tls|TLS|tls|starttls|"
  "role_bad|--role|Role|role|king|'king' is not default, submission, implicit or relay"
  "role_good|--role|Role|role|default|"
  "proxy_bad|--proxy-protocol|ProxyProtocol|proxy_protocol|v3|'v3' is not none, v1 or v2"
  "proxy_good|--proxy-protocol|ProxyProtocol|proxy_protocol|v2|"
  "mech_bad|--auth-mech|AuthMechanism|auth_mechanism|DIGEST-MD5|'DIGEST-MD5' is not PLAIN, LOGIN, CRAM-MD5 or XOAUTH2"
  "family_bad|-|AddressFamily|ip_protocol|ipx|'ipx' is not any, ipv4 or ipv6"
  "family_good|-|AddressFamily|ip_protocol|ipv4|"
  "timeout_bad|--timeout|Timeout|timeout|5x|'5x' is not a number of seconds"
  "timeout_good|--timeout|Timeout|timeout|500ms|"
  "days_bad|--cert-days|CertWarningDays|cert_warning_days|-2|'-2' is not a whole number 0-36500, or off"
  "days_good|--cert-days|CertWarningDays|cert_warning_days|off|"
  "ports_bad|--port|Port|ports|70000|'70000' is not a list of ports 1-65535"
  "trial_bad|-|TLSTrial|tls_trial|maybe|'maybe' is not true or false"
  "trial_good|-|TLSTrial|tls_trial|off|"
)

bad=0
# Report one adapter's verdict on one case.
verdict() {
  local adapter=$1 name=$2 ok=$3 what=$4
  if [ "$ok" = 1 ]; then
    echo "ok: $adapter $name: $what"
  else
    echo "FAIL: $adapter $name: $what" >&2
    bad=1
  fi
}

# --- the Nagios check -------------------------------------------------------
for c in "${CASES[@]}"; do
  IFS='|' read -r name nagios _ _ value sentence <<<"$c"
  [ "$nagios" = - ] && continue
  out=$(timeout 30 "$check" -H 127.0.0.1 -p 1 "$nagios" "$value" 2>&1) && rc=0 || rc=$?
  if [ -n "$sentence" ]; then
    ok=0
    [ "$rc" = 3 ] && grep -qF -- "$nagios: $sentence" <<<"$out" &&
      grep -q '^Usage: check_smtp_ports' <<<"$out" && ok=1
    verdict nagios "$name" "$ok" "exit $rc, refused as '$nagios: $sentence'"
  else
    ok=0
    [ "$rc" != 3 ] && ok=1
    verdict nagios "$name" "$ok" "exit $rc, accepted ($(head -n 1 <<<"$out"))"
  fi
done

# --- the exporter -----------------------------------------------------------
for c in "${CASES[@]}"; do
  IFS='|' read -r name _ _ key value sentence <<<"$c"
  yml=$dir/$name.yml
  printf 'modules:\n  m:\n    %s: "%s"\n' "$key" "$value" >"$yml"
  [ "$key" = ports ] && printf 'modules:\n  m:\n    ports: [%s]\n' "$value" >"$yml"
  out=$(timeout 30 "$exporter" --config.check --config.file="$yml" 2>&1) && rc=0 || rc=$?
  if [ -n "$sentence" ]; then
    ok=0
    [ "$rc" != 0 ] && grep -qF -- "$key: $sentence" <<<"$out" && ok=1
    verdict exporter "$name" "$ok" "exit $rc, refused as '$key: $sentence' ($out)"
  else
    ok=0
    [ "$rc" = 0 ] && ok=1
    verdict exporter "$name" "$ok" "exit $rc, accepted ($out)"
  fi
done

# --- collectd: one block per case -------------------------------------------
{
  for c in "${CASES[@]}"; do
    IFS='|' read -r name _ key _ value _ <<<"$c"
    cat <<EOF
  <Target "$name">
    Host "127.0.0.1"
    Port 1
    Interval 5
    Timeout 1
    $key "$value"
  </Target>
EOF
  done
} | spc_write_conf "$dir" "$plugin_so" 5 1
# Port takes numbers in collectd: the bad port is a number there.
sed -i 's/^    Port "70000"$/    Port 70000/' "$dir/collectd.conf"
spc_start "$dir"
initialised() { grep -q "Initialization complete" "$dir/collectd.log"; }
spc_wait_until 30 "collectd's read loop" initialised
for c in "${CASES[@]}"; do
  IFS='|' read -r name _ key _ _ sentence <<<"$c"
  if [ -n "$sentence" ]; then
    ok=0
    grep -F -- "Target \"$name\": $key: $sentence" "$dir/collectd.log" |
      grep -q 'skipping this block' && ok=1
    verdict collectd "$name" "$ok" "refused as '$key: $sentence'"
  else
    ok=1
    grep -qF -- "Target \"$name\":" "$dir/collectd.log" && ok=0
    verdict collectd "$name" "$ok" "accepted (no message for the block)"
  fi
done
spc_stop "$dir" || true

[ "$bad" = 0 ] || spc_fail "the adapters do not accept and refuse the same values the same way"
echo "PASS: ${#CASES[@]} cases, the same verdict and sentence in all three adapters"
