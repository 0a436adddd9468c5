#!/usr/bin/env bash
# demo-collectd.sh - run a private collectd with smtp_probe.so for a few
# intervals against the four Postfix ports of the mail environment, print
# the values read back with collectdctl, then stop it.
#
# usage: demo-collectd.sh BUILD_DIR [ENV_DIR]
# Needs SP_POSTFIX_ADDR, SP_CA_FILE, SP_MAIL_NAME, SP_DNS_SERVER in the
# environment, or ENV_DIR/env.sh to read them from (scripts/demo.sh passes
# both). Everything is kept in a temporary directory and removed at the end.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${1:?usage: demo-collectd.sh BUILD_DIR [ENV_DIR]}
envdir=${2:-}
if [ -z "${SP_MAIL_NAME:-}" ] && [ -n "$envdir" ] && [ -r "$envdir/env.sh" ]; then
  # shellcheck disable=SC1091
  . "$envdir/env.sh"
fi
: "${SP_POSTFIX_ADDR:?}" "${SP_CA_FILE:?}" "${SP_MAIL_NAME:?}" "${SP_DNS_SERVER:?}"
so=$build/collectd/smtp_probe.so
[ -r "$so" ] || { echo "demo-collectd: $so not built" >&2; exit 1; }

# shellcheck disable=SC1091  # tests/collectd/collectd-lib.sh, checked there
. "$root/tests/collectd/collectd-lib.sh"
dir=$(mktemp -d /tmp/spc-demo.XXXXXX)
trap 'spc_stop "$dir" || true; rm -rf "$dir"' EXIT

# Two targets: the four ports by name (resolved through the test resolver)
# and one closed port on collectd's own loopback address, to show a failure
# and its notification.
spc_write_conf "$dir" "$so" 2 5 <<EOF2
  <Target "mx">
    Host "$SP_MAIL_NAME"
    Port 25 465 587 2525
    CAFile "$SP_CA_FILE"
    DNSServer "$SP_DNS_SERVER"
    EHLO "probe.smtp-probe.test"
    Timeout 1.5
    CertWarningDays 14
    CertCriticalDays 7
  </Target>
  <Target "closed">
    Host "127.0.30.1"
    Port 2525
    Timeout 1
  </Target>
EOF2
echo "collectd.conf (plugin part):"
sed -n '/<Plugin smtp_probe>/,/^<\/Plugin>/p' "$dir/collectd.conf" | sed 's/^/  /'

spc_start "$dir"
have_rounds() { spc_rows_at_least "$dir" mx-2525 bool-success 3; }
echo "waiting for three probe rounds (Interval 2) ..."
spc_wait_until 60 "three rounds of the mx target" have_rounds

echo
echo "values read back with collectdctl -s SOCK getval $SPC_HOST/smtp_probe-<instance>/<type-instance>:"
collectdctl -s "$dir/collectd.sock" listval | grep "/smtp_probe-" | sort -t/ -k2,2 -k3,3 |
  while read -r id; do
    printf '  %-52s %s\n' "$id" "$(collectdctl -s "$dir/collectd.sock" getval "$id")"
  done
echo
echo "notifications (collectd's logfile plugin):"
grep 'Notification:' "$dir/collectd.log" | sed 's/^/  /' || echo "  (none)"
spc_stop "$dir" || true
