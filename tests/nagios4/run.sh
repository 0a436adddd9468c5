#!/usr/bin/env bash
# End-to-end: a real nagios4 core runs check_smtp_ports against the test
# Postfix and reports states, output and perfdata through status.dat.
#
# usage: run.sh PLUGIN_DIR TESTENV_DIR
#   PLUGIN_DIR   directory holding check_smtp_ports (copied; nagios4 runs it
#                as the nagios user)
#   TESTENV_DIR  the running mail environment (tests/env/mailenv.sh)
#
# Everything nagios4 writes lives in a fresh temporary directory; nagios4
# runs in the foreground as a child of this script and is stopped on exit.
set -euo pipefail
plugin_dir=$(cd "${1:?usage: run.sh PLUGIN_DIR TESTENV_DIR}" && pwd)
testenv=${2:?usage: run.sh PLUGIN_DIR TESTENV_DIR}
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=/dev/null
. "$testenv/env.sh"

if ! command -v nagios4 >/dev/null; then
  echo "FAIL: nagios4 not installed (scripts/install-deps.sh installs nagios4-core)" >&2
  exit 1
fi
if [ ! -x "$plugin_dir/check_smtp_ports" ]; then
  echo "FAIL: $plugin_dir/check_smtp_ports is not built" >&2
  exit 1
fi

work=$(mktemp -d /tmp/sp-nagios4.XXXXXX)
nagios_pid=
# Stop nagios4 (TERM, then KILL after 10 s) and remove the temporary directory.
cleanup() {
  if [ -n "$nagios_pid" ] && kill -0 "$nagios_pid" 2>/dev/null; then
    kill -TERM "$nagios_pid" 2>/dev/null || true
    for _ in $(seq 100); do
      kill -0 "$nagios_pid" 2>/dev/null || break
      sleep 0.1
    done
    kill -KILL "$nagios_pid" 2>/dev/null || true
    wait "$nagios_pid" 2>/dev/null || true
  fi
  if [ "${SP_KEEP_WORK:-0}" = 1 ]; then
    echo "kept $work" >&2
  else
    rm -rf "$work"
  fi
}
trap cleanup EXIT

mkdir -p "$work/rw" "$work/checkresults" "$work/tmp" "$work/plugins"
# As in a real installation, nagios4 (started as root) drops to the nagios
# user and runs the plugin unprivileged. The plugin, the CA file and the
# object definitions are copied into the work directory so that user can
# reach them wherever the source and build trees live.
cp "$plugin_dir/check_smtp_ports" "$work/plugins/"
cp "$SP_CA_FILE" "$work/ca.pem"
cp "$here/commands.cfg" "$here/objects.cfg" "$work/"
if id nagios >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
  user=nagios
  group=$(id -gn nagios)
else
  user=$(id -un)
  group=$(id -gn)
fi
chown -R "$user:$group" "$work"

cat >"$work/resource.cfg" <<EOF
\$USER1\$=$work/plugins
\$USER2\$=$work/ca.pem
\$USER3\$=$SP_DNS_SERVER
EOF

cat >"$work/nagios.cfg" <<EOF
# Private nagios4 instance of the smtp-probe end-to-end test.
cfg_file=$work/commands.cfg
cfg_file=$work/objects.cfg
resource_file=$work/resource.cfg
log_file=$work/nagios.log
debug_file=$work/nagios.debug
debug_level=0
object_cache_file=$work/objects.cache
precached_object_file=$work/objects.precache
status_file=$work/status.dat
temp_file=$work/nagios.tmp
temp_path=$work/tmp
lock_file=$work/nagios.lock
command_file=$work/rw/nagios.cmd
query_socket=$work/rw/nagios.qh
check_result_path=$work/checkresults
state_retention_file=$work/retention.dat
retain_state_information=0
nagios_user=$user
nagios_group=$group
check_external_commands=1
status_update_interval=1
check_result_reaper_frequency=1
max_check_result_reaper_time=5
service_check_timeout=60
host_check_timeout=30
max_service_check_spread=1
max_host_check_spread=1
execute_service_checks=1
execute_host_checks=1
enable_notifications=0
enable_event_handlers=0
enable_flap_detection=0
process_performance_data=0
check_for_updates=0
bare_update_check=0
use_syslog=0
log_rotation_method=n
log_external_commands=1
log_passive_checks=0
interval_length=60
use_timezone=UTC
illegal_macro_output_chars=\`~\$&|'"<>
EOF

# Check the configuration first, so a mistake reads as one.
if ! nagios4 -v "$work/nagios.cfg" >"$work/verify.txt" 2>&1; then
  echo "FAIL: nagios4 -v rejected the configuration:" >&2
  cat "$work/verify.txt" >&2
  exit 1
fi

nagios4 "$work/nagios.cfg" >"$work/stdout.txt" 2>&1 &
nagios_pid=$!

# Wait (at most 30 s) until nagios4 has made its command FIFO and written a
# status file with our services in it.
deadline=$((SECONDS + 30))
until [ -p "$work/rw/nagios.cmd" ] && grep -q 'service_description=SMTP ports' "$work/status.dat" 2>/dev/null; do
  if ! kill -0 "$nagios_pid" 2>/dev/null || [ "$SECONDS" -ge "$deadline" ]; then
    echo "FAIL: nagios4 did not come up" >&2
    cat "$work/stdout.txt" "$work/nagios.log" >&2 2>/dev/null || true
    exit 1
  fi
  sleep 0.2
done

# Ask nagios4 to run a service check now. Opening the FIFO blocks until
# nagios4 reads it, so the write is bounded by a timeout.
force_check() {
  local now line
  now=$(date +%s)
  line=$(printf '[%s] SCHEDULE_FORCED_SVC_CHECK;%s;%s;%s' "$now" "$1" "$2" "$now")
  # shellcheck disable=SC2016  # $1 and $2 expand in the inner shell
  if ! timeout 10 bash -c 'printf "%s\n" "$1" >"$2"' _ "$line" "$work/rw/nagios.cmd"; then
    echo "FAIL: could not write to the nagios4 command file" >&2
    exit 1
  fi
}

# Print one field of one service's servicestatus block in status.dat.
svc_field() {
  awk -v host="$1" -v svc="$2" -v key="$3" '
    /^servicestatus \{/ { inblk = 1; h = ""; s = ""; delete f; next }
    inblk && /^\t}/ {
      if (h == host && s == svc && (key in f)) { print f[key]; exit }
      inblk = 0; next
    }
    inblk {
      line = $0; sub(/^\t/, "", line)
      eq = index(line, "="); k = substr(line, 1, eq - 1); v = substr(line, eq + 1)
      f[k] = v
      if (k == "host_name") h = v
      if (k == "service_description") s = v
    }' "$work/status.dat"
}

# Wait (at most 60 s) until a service has a check result newer than $3.
wait_checked() {
  local host=$1 svc=$2 since=$3 deadline last
  deadline=$((SECONDS + 60))
  while :; do
    last=$(svc_field "$host" "$svc" last_check 2>/dev/null || true)
    if [ "$(svc_field "$host" "$svc" has_been_checked 2>/dev/null || true)" = 1 ] &&
      [ -n "$last" ] && [ "$last" -ge "$since" ]; then
      return 0
    fi
    if ! kill -0 "$nagios_pid" 2>/dev/null || [ "$SECONDS" -ge "$deadline" ]; then
      echo "FAIL: no check result for $host/$svc within 60 s" >&2
      tail -n 30 "$work/nagios.log" >&2 || true
      return 1
    fi
    sleep 0.2
  done
}

fails=0
# Report one assertion: ok/FAIL with a label.
check() {
  local label=$1
  shift
  if "$@"; then
    echo "ok   $label"
  else
    echo "FAIL $label"
    fails=$((fails + 1))
  fi
}

# True when the perfdata string contains the label (quoted or not).
has_perf() { grep -qE "(^| )'?$2'?=" <<<"$1"; }

since=$(date +%s)
force_check mail "SMTP ports"
force_check mail "SMTP submission by name"
force_check mail "SMTP certificate days"
force_check nothing-here "SMTP submission"

for svc in "mail|SMTP ports" "mail|SMTP submission by name" \
  "mail|SMTP certificate days" "nothing-here|SMTP submission"; do
  host=${svc%%|*}
  name=${svc#*|}
  wait_checked "$host" "$name" "$since" || exit 1
  echo "--- $host/$name: state $(svc_field "$host" "$name" current_state)"
  echo "    output:   $(svc_field "$host" "$name" plugin_output)"
  echo "    perfdata: $(svc_field "$host" "$name" performance_data)"
  echo "    long:     $(svc_field "$host" "$name" long_plugin_output | cut -c1-300)"
done

state=$(svc_field mail "SMTP ports" current_state)
out=$(svc_field mail "SMTP ports" plugin_output)
perf=$(svc_field mail "SMTP ports" performance_data)
check "SMTP ports: state 0 (OK)" test "$state" = 0
check "SMTP ports: output starts with SMTP OK" grep -q '^SMTP OK' <<<"$out"
for label in 25_total 465_total 587_total 2525_total 465_tls_handshake \
  587_tls_handshake 2525_tls_handshake 25_tls_handshake 587_starttls; do
  check "SMTP ports: perfdata has $label" has_perf "$perf" "$label"
done

state=$(svc_field mail "SMTP submission by name" current_state)
perf=$(svc_field mail "SMTP submission by name" performance_data)
check "by name: state 0 (OK)" test "$state" = 0
check "by name: perfdata has 587_total" has_perf "$perf" 587_total
check "by name: perfdata has 465_tls_handshake" has_perf "$perf" 465_tls_handshake

state=$(svc_field mail "SMTP certificate days" current_state)
out=$(svc_field mail "SMTP certificate days" plugin_output)
long=$(svc_field mail "SMTP certificate days" long_plugin_output)
perf=$(svc_field mail "SMTP certificate days" performance_data)
check "cert days: state 1 (WARNING)" test "$state" = 1
check "cert days: output says cert_expiring" grep -q 'cert_expiring' <<<"$out"
check "cert days: threshold echoed in perfdata" grep -qE "587_cert_days'?=[0-9]+;3650:;7:" <<<"$perf"
check "cert days: long output reached Nagios" test -n "$long"

state=$(svc_field nothing-here "SMTP submission" current_state)
out=$(svc_field nothing-here "SMTP submission" plugin_output)
check "refused: state 2 (CRITICAL)" test "$state" = 2
check "refused: output says connect_refused" grep -q 'connect_refused' <<<"$out"

if [ "$fails" -ne 0 ]; then
  echo "$fails check(s) failed; nagios log:"
  tail -n 30 "$work/nagios.log"
  exit 1
fi
echo "nagios4 end-to-end: all checks passed"
