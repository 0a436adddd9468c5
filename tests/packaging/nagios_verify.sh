#!/usr/bin/env bash
# nagios_verify.sh SRCDIR - Nagios 4 accepts the example command and service
# definitions (packaging/examples/nagios): `nagios4 -v` on a private
# nagios.cfg in a temporary directory (verification only, no daemon), with
# minimal generic-host/generic-service templates standing in for Debian's.
set -euo pipefail
ex=$1/packaging/examples/nagios
nagios=$(command -v nagios4 || command -v nagios || true)
[ -n "$nagios" ] || { echo "nagios4 not installed (package nagios4-core)"; exit 1; }
dir=$(mktemp -d /tmp/sp-nagios.XXXXXX)
trap 'rm -rf "$dir"' EXIT
cat >"$dir/templates.cfg" <<'CFG'
define timeperiod {
    timeperiod_name 24x7
    alias           Always
    sunday          00:00-24:00
    monday          00:00-24:00
    tuesday         00:00-24:00
    wednesday       00:00-24:00
    thursday        00:00-24:00
    friday          00:00-24:00
    saturday        00:00-24:00
}
define command {
    command_name    notify-nobody
    command_line    /bin/true
}
define contact {
    contact_name                    nobody
    host_notifications_enabled      0
    service_notifications_enabled   0
    host_notification_period        24x7
    service_notification_period     24x7
    host_notification_options       n
    service_notification_options    n
    host_notification_commands      notify-nobody
    service_notification_commands   notify-nobody
}
define host {
    name                    generic-host
    register                0
    check_command           notify-nobody
    max_check_attempts      3
    check_period            24x7
    notification_period     24x7
    contacts                nobody
}
define service {
    name                    generic-service
    register                0
    max_check_attempts      3
    check_interval          5
    retry_interval          1
    check_period            24x7
    notification_period     24x7
    contacts                nobody
}
CFG
# shellcheck disable=SC2016  # a literal Nagios macro
printf '$USER1$=/usr/lib/nagios/plugins\n' >"$dir/resource.cfg"
cat >"$dir/nagios.cfg" <<CFG
log_file=$dir/nagios.log
cfg_file=$dir/templates.cfg
cfg_file=$ex/commands.cfg
cfg_file=$ex/services.cfg
resource_file=$dir/resource.cfg
status_file=$dir/status.dat
temp_file=$dir/nagios.tmp
temp_path=$dir
lock_file=$dir/nagios.lock
state_retention_file=$dir/retention.dat
object_cache_file=$dir/objects.cache
precached_object_file=$dir/objects.precache
command_file=$dir/nagios.cmd
check_result_path=$dir
nagios_user=$(id -un)
nagios_group=$(id -gn)
check_external_commands=0
illegal_macro_output_chars=\`~\$&|'"<>
CFG
out=$("$nagios" -v "$dir/nagios.cfg" 2>&1) || { echo "$out"; echo "FAIL: nagios4 -v"; exit 1; }
echo "$out" | grep -E 'Total (Warnings|Errors)|Checked [0-9]+ (services|hosts|commands)'
grep -q 'Total Warnings: 0' <<<"$out" || { echo "$out"; echo "FAIL: warnings"; exit 1; }
grep -q 'Checked 2 services' <<<"$out" || { echo "FAIL: expected 2 services"; exit 1; }
# The example commands are the ones the nagios4 end-to-end test runs.
e2e=$1/tests/nagios4/commands.cfg
if [ -f "$e2e" ]; then
  grep 'command_line' "$ex/commands.cfg" | while read -r _ line; do
    grep -qF "$line" "$e2e" || { echo "FAIL: '$line' is not in tests/nagios4/commands.cfg"; exit 1; }
  done
  echo "ok: example command lines match tests/nagios4/commands.cfg"
fi
echo "ok: Nagios examples verify"
